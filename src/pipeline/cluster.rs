//! Phase 2: `kind create cluster` with a kubeconfig of its own, an API readiness check of our
//! own (kind's `--wait` running out still exits 0), then the bootstrap manifests.
use std::{fs::Permissions, os::unix::fs::PermissionsExt, path::Path};

use super::step_failure;
use crate::{
    pool::{ClusterSpec, ProvisionResult, Recorder},
    tools::{
        kind::{CreateSpec, Kind},
        kube::Kube,
    },
};

pub(super) async fn create(
    kind: &Kind,
    cluster: &ClusterSpec,
    kubeconfig: &Path,
    recorder: &Recorder,
) -> ProvisionResult<Kube> {
    let recipe = &cluster.profile.cluster;
    recorder
        .step("cluster", "kind create cluster", async {
            let spec = CreateSpec {
                name: &cluster.name,
                config: recipe.config.as_deref(),
                node_image: &recipe.node_image,
                wait: recipe.create_wait,
                kubeconfig,
            };
            kind.create(&spec)
                .await
                .map_err(step_failure("cluster", "kind create cluster"))?;
            // It holds the cluster's credentials.
            std::fs::set_permissions(kubeconfig, Permissions::from_mode(0o600)).map_err(|e| {
                step_failure("cluster", "kind create cluster")(crate::tools::ToolError::new(
                    format!("kubeconfig {}: {e}", kubeconfig.display()),
                ))
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
