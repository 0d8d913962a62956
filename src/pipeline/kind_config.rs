//! The kind config a cluster is created with: the profile's own file as written, plus, for a
//! profile with artifacts, a mount of the cluster's artifacts directory on every node (kind's
//! default of one control-plane node when the file lists none, or there is no file).
use std::path::Path;

use serde_json::{Value, json};

use crate::tools::ToolError;

/// The YAML text of the config: `user` (a file) with `host_dir` mounted at `node_path`.
pub(super) fn with_mount(
    user: Option<&Path>,
    host_dir: &Path,
    node_path: &str,
) -> Result<String, ToolError> {
    let mut config = match user {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| ToolError::new(format!("reading {}: {e}", file.display())))?;
            serde_saphyr::from_str::<Value>(&text)
                .map_err(|e| ToolError::new(format!("{}: {e}", file.display())))?
        }
        None => json!({ "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4" }),
    };
    let Some(fields) = config.as_object_mut() else {
        return Err(ToolError::new(
            "the kind config is not a mapping".to_string(),
        ));
    };
    let nodes = fields
        .entry("nodes")
        .or_insert_with(|| json!([{ "role": "control-plane" }]));
    let mount = json!({ "hostPath": host_dir, "containerPath": node_path });
    for node in nodes.as_array_mut().into_iter().flatten() {
        let Some(node) = node.as_object_mut() else {
            continue;
        };
        match node.entry("extraMounts").or_insert_with(|| json!([])) {
            Value::Array(mounts) => mounts.push(mount.clone()),
            other => *other = json!([mount]),
        }
    }
    serde_saphyr::to_string(&config).map_err(|e| ToolError::new(format!("kind config: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap()
    }

    #[test]
    fn without_a_file_the_one_default_node_gets_the_mount() {
        let text = with_mount(None, Path::new("/state/c/artifacts"), "/infrad/artifacts").unwrap();
        let config = parse(&text);
        assert_eq!(config["kind"], "Cluster");
        assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(
            config["nodes"],
            json!([{ "role": "control-plane", "extraMounts": [
                { "hostPath": "/state/c/artifacts", "containerPath": "/infrad/artifacts" }
            ] }])
        );
    }

    #[test]
    fn every_node_gets_the_mount_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kind.yaml");
        std::fs::write(
            &file,
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
             networking:\n  apiServerPort: 6443\n\
             nodes:\n- role: control-plane\n  extraMounts:\n  - hostPath: /data\n    containerPath: /data\n\
             - role: worker\n  labels:\n    tier: db\n",
        )
        .unwrap();
        let text = with_mount(Some(&file), Path::new("/a"), "/infrad/artifacts").unwrap();
        let config = parse(&text);
        let ours = json!({ "hostPath": "/a", "containerPath": "/infrad/artifacts" });
        assert_eq!(config["networking"]["apiServerPort"], 6443);
        assert_eq!(
            config["nodes"][0]["extraMounts"],
            json!([{ "hostPath": "/data", "containerPath": "/data" }, ours])
        );
        assert_eq!(config["nodes"][1]["role"], "worker");
        assert_eq!(config["nodes"][1]["labels"]["tier"], "db");
        assert_eq!(config["nodes"][1]["extraMounts"], json!([ours]));
    }
}
