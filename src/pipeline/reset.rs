//! `reset` recycling: delete every namespace the test run added, wait until they are gone, then
//! apply every deploy step's own manifests again and wait until they are ready (which also
//! undoes an overlay). Any failure makes the pool recreate.
use std::{path::Path, time::Duration};

use futures::FutureExt;

use super::{deploy, step_failure};
use crate::{
    config::DeployStep,
    pool::ProvisionResult,
    tools::{ToolError, kube::Kube},
};

/// Bound on waiting for deleted namespaces to disappear.
const NAMESPACE_DELETION: Duration = Duration::from_secs(120);

/// Remembers the namespaces a ready cluster has.
pub(super) async fn record_baseline(kube: &Kube, file: &Path) -> ProvisionResult<()> {
    let fail = step_failure("deploy", "namespace baseline");
    let namespaces = kube.namespaces().await.map_err(&fail)?;
    std::fs::write(file, namespaces.join("\n"))
        .map_err(|e| fail(ToolError::new(format!("writing {}: {e}", file.display()))))
}

/// The namespaces the cluster has now and did not have when it became ready: the test run's.
pub(super) async fn added_namespaces(
    kube: &Kube,
    baseline: &Path,
) -> Result<Vec<String>, ToolError> {
    let kept = std::fs::read_to_string(baseline).map_err(|e| {
        ToolError::new(format!("no namespace baseline {}: {e}", baseline.display()))
    })?;
    let kept: Vec<&str> = kept.lines().collect();
    Ok(kube
        .namespaces()
        .await?
        .into_iter()
        .filter(|n| !kept.contains(&n.as_str()))
        .collect())
}

pub(super) async fn run(
    kube: &Kube,
    baseline: &Path,
    steps: &[DeployStep],
    overlaid: &[String],
) -> ProvisionResult<()> {
    let fail = step_failure("recycle", "reset");
    let added = added_namespaces(kube, baseline).await.map_err(&fail)?;
    kube.delete_namespaces(&added, NAMESPACE_DELETION)
        .await
        .map_err(&fail)?;
    // Every step's own manifests again: server-side apply restores what the test run changed
    // in infrad's fields and undoes an overlay (whose Jobs are created anew).
    let fail = &fail;
    deploy::in_order(steps, |step| {
        let recreate_jobs = overlaid.contains(&step.name);
        Some(
            async move {
                let documents = deploy::documents(step).map_err(fail)?;
                let objects = kube
                    .apply_documents(documents, recreate_jobs)
                    .await
                    .map_err(fail)?;
                kube.wait_ready(&objects, step.timeout).await.map_err(fail)
            }
            .boxed(),
        )
    })
    .await
}
