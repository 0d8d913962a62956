//! `reset` recycling: delete every namespace the test run added, wait until they are gone,
//! re-check that the deploy steps are still ready. Any failure makes the pool recreate.
use std::{path::Path, time::Duration};

use super::step_failure;
use crate::{
    config::DeployStep,
    pool::ProvisionResult,
    tools::kube::{Kube, ObjectRef, read_documents},
};

/// Bound on waiting for deleted namespaces to disappear.
const NAMESPACE_DELETION: Duration = Duration::from_secs(120);

/// Remembers the namespaces a ready cluster has.
pub(super) async fn record_baseline(kube: &Kube, file: &Path) -> ProvisionResult<()> {
    let fail = step_failure("deploy", "namespace baseline");
    let namespaces = kube.namespaces().await.map_err(&fail)?;
    std::fs::write(file, namespaces.join("\n")).map_err(|e| {
        fail(crate::tools::ToolError::new(format!(
            "writing {}: {e}",
            file.display()
        )))
    })
}

pub(super) async fn run(kube: &Kube, baseline: &Path, steps: &[DeployStep]) -> ProvisionResult<()> {
    let fail = step_failure("recycle", "reset");
    let kept = std::fs::read_to_string(baseline).map_err(|e| {
        fail(crate::tools::ToolError::new(format!(
            "no namespace baseline {}: {e}",
            baseline.display()
        )))
    })?;
    let kept: Vec<&str> = kept.lines().collect();
    let added: Vec<String> = kube
        .namespaces()
        .await
        .map_err(&fail)?
        .into_iter()
        .filter(|n| !kept.contains(&n.as_str()))
        .collect();
    kube.delete_namespaces(&added, NAMESPACE_DELETION)
        .await
        .map_err(&fail)?;
    for step in steps {
        let mut objects: Vec<ObjectRef> = Vec::new();
        for file in &step.manifests {
            objects.extend(
                read_documents(file)
                    .map_err(&fail)?
                    .into_iter()
                    .map(|(o, _)| o),
            );
        }
        kube.wait_ready(&objects, step.timeout)
            .await
            .map_err(&fail)?;
    }
    Ok(())
}
