//! Phase 2: `kind create cluster` with a kubeconfig of its own, an API readiness check of our
//! own (kind's `--wait` running out still exits 0), then the bootstrap manifests.
use std::{fs::Permissions, os::unix::fs::PermissionsExt, path::Path};

use super::{kind_config, step_failure};
use crate::{
    pool::{ClusterSpec, ProvisionResult, Recorder},
    private,
    tools::{
        ToolError,
        kind::{CreateSpec, Kind},
        kube::Kube,
    },
};

/// Creates the artifacts directory (mode 0700: what workloads leave may be private) and the
/// kind config (0600) that mounts it on every node.
fn write_kind_config(
    user: Option<&Path>,
    dir: &Path,
    config: &Path,
    node_path: &str,
) -> Result<(), ToolError> {
    fn io(what: &Path) -> impl Fn(std::io::Error) -> ToolError + '_ {
        move |e| ToolError::new(format!("{}: {e}", what.display()))
    }
    private::dir(dir).map_err(io(dir))?;
    let text = kind_config::with_mount(user, dir, node_path)?;
    private::write(config, text.as_bytes()).map_err(io(config))
}

/// Where a cluster's own files go.
pub(super) struct ClusterFiles<'a> {
    pub kubeconfig: &'a Path,
    /// Made and used only for a profile with artifacts: the directory, and the kind config
    /// that mounts it.
    pub artifacts: &'a Path,
    pub kind_config: &'a Path,
}

pub(super) async fn create(
    kind: &Kind,
    cluster: &ClusterSpec,
    files: &ClusterFiles<'_>,
    recorder: &Recorder,
) -> ProvisionResult<Kube> {
    let recipe = &cluster.profile.cluster;
    let kubeconfig = files.kubeconfig;
    recorder
        .step("cluster", "kind create cluster", async {
            let fail = step_failure("cluster", "kind create cluster");
            let config = match &cluster.profile.artifacts {
                Some(artifacts) => {
                    let (dir, config) = (files.artifacts, files.kind_config);
                    write_kind_config(recipe.config.as_deref(), dir, config, &artifacts.node_path)
                        .map_err(&fail)?;
                    Some(config)
                }
                None => recipe.config.as_deref(),
            };
            let spec = CreateSpec {
                name: &cluster.name,
                config,
                node_image: &recipe.node_image,
                wait: recipe.create_wait,
                kubeconfig,
            };
            kind.create(&spec).await.map_err(&fail)?;
            // It holds the cluster's credentials.
            std::fs::set_permissions(kubeconfig, Permissions::from_mode(0o600)).map_err(|e| {
                fail(ToolError::new(format!(
                    "kubeconfig {}: {e}",
                    kubeconfig.display()
                )))
            })
        })
        .await?;
    let kube = recorder
        .step("cluster", "api ready", async {
            let fail = step_failure("cluster", "api ready");
            let kube = Kube::from_kubeconfig(kubeconfig).await.map_err(&fail)?;
            kube.wait_api(recipe.ready_timeout).await.map_err(&fail)?;
            Ok(kube)
        })
        .await?;
    let bootstrap = &cluster.profile.bootstrap;
    if !bootstrap.manifests.is_empty() {
        recorder
            .step("cluster", "bootstrap", async {
                let fail = step_failure("cluster", "bootstrap");
                let applied = kube
                    .apply_files(&bootstrap.manifests)
                    .await
                    .map_err(&fail)?;
                kube.wait_ready(&applied, bootstrap.timeout)
                    .await
                    .map_err(&fail)
            })
            .await?;
    }
    Ok(kube)
}
