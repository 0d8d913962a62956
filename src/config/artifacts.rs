//! `[profiles.P.artifacts]`: a host directory per cluster mounted on every node, for what
//! workloads leave behind (E2E coverage). The mount is added to the profile's kind config at
//! each build; one already there at the same place is a conflict, found here at load time.
use std::path::Path;

use serde_json::Value;

use super::{Artifacts, error::Unlocated, raw::RawArtifacts};

pub(super) fn validate(
    profile: &str,
    raw: Option<RawArtifacts>,
    kind_config: Option<&Path>,
) -> Result<Option<Artifacts>, Unlocated> {
    let Some(raw) = raw else { return Ok(None) };
    let key = format!("profiles.{profile}.artifacts.node_path");
    let span = raw.node_path.span();
    let node_path = raw.node_path.into_inner();
    let path = Path::new(&node_path);
    // Checked on the text: `Path` drops a `.` in the middle.
    let plain = node_path
        .strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|s| !matches!(s, "" | "." | "..")));
    if !plain {
        return Err(Unlocated::new(
            span,
            key,
            format!(
                "{node_path:?} is not a path on the node: write an absolute path below /, without '.' or '..', such as \"/infrad/artifacts\""
            ),
        ));
    }
    if let Some(file) = kind_config
        && let Some(conflict) = conflicting_mount(file, path)
            .map_err(|message| Unlocated::new(span.clone(), key.clone(), message))?
    {
        return Err(Unlocated::new(
            span,
            key,
            format!(
                "{node_path:?} overlaps {conflict} in the kind config {}: infrad mounts the artifacts directory there on every node; choose another node_path or drop that mount",
                file.display()
            ),
        ));
    }
    Ok(Some(Artifacts { node_path }))
}

/// The key (`nodes[i].extraMounts[j].containerPath`) of a mount at, above or below `node_path`.
fn conflicting_mount(file: &Path, node_path: &Path) -> Result<Option<String>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the kind config {}: {e}", file.display()))?;
    let config: Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("the kind config {} is not YAML: {e}", file.display()))?;
    let nodes = config["nodes"].as_array().into_iter().flatten();
    for (i, node) in nodes.enumerate() {
        let mounts = node["extraMounts"].as_array().into_iter().flatten();
        for (j, mount) in mounts.enumerate() {
            let Some(at) = mount["containerPath"].as_str() else {
                continue;
            };
            let at = Path::new(at);
            if at.starts_with(node_path) || node_path.starts_with(at) {
                return Ok(Some(format!("nodes[{i}].extraMounts[{j}].containerPath")));
            }
        }
    }
    Ok(None)
}
