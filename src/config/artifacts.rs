//! `[profiles.P.artifacts]`: a host directory per cluster mounted on every node, for what
//! workloads leave behind (E2E coverage). The mount is added to the profile's kind config at
//! each build; one already there at the same place is a conflict, found here at load time.
use std::{path::Path, time::Duration};

use serde_json::Value;

use super::{Artifacts, error::Unlocated, raw::RawArtifacts};

/// Kept of each container's log: enough for a failing suite's story, not a disk's worth.
const DEFAULT_MAX_LOG_BYTES: u64 = 5 * 1024 * 1024;
/// Flushing waits for pods to exit (their grace period is 30 s by default), then logs.
const DEFAULT_COLLECT_TIMEOUT: Duration = Duration::from_secs(120);

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
    let max_log_bytes = match raw.max_log_bytes {
        None => DEFAULT_MAX_LOG_BYTES,
        Some(v) if *v.get_ref() == 0 => {
            return Err(Unlocated::new(
                v.span(),
                format!("profiles.{profile}.artifacts.max_log_bytes"),
                "must be at least 1 (bytes kept of each container's log)",
            ));
        }
        Some(v) => v.into_inner(),
    };
    let collect_timeout = match raw.collect_timeout {
        None => DEFAULT_COLLECT_TIMEOUT,
        Some(v) if v.get_ref().0.is_zero() => {
            return Err(Unlocated::new(
                v.span(),
                format!("profiles.{profile}.artifacts.collect_timeout"),
                "must be longer than 0s (it bounds flushing and collecting at release)",
            ));
        }
        Some(v) => v.into_inner().0,
    };
    Ok(Some(Artifacts {
        node_path,
        max_log_bytes,
        collect_timeout,
    }))
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
