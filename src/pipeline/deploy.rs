//! Phase 4: deploy steps in parallel, each starting once every step in its `after` is ready and,
//! if it uses any of the profile's images, once they are loaded. The first failure cancels the
//! others (their futures are dropped). The overlay and reset walk the steps in the same order.
use std::collections::HashMap;

use futures::{
    FutureExt,
    future::{BoxFuture, Shared, try_join_all},
};

use super::step_failure;
use crate::{
    config::DeployStep,
    pool::{ProvisionResult, Recorder},
    tools::{
        ToolError,
        kube::{Kube, ObjectRef, read_documents},
    },
};

/// A step (or the load phase) that others may wait for.
pub(super) type StepFuture<'a> = Shared<BoxFuture<'a, ProvisionResult<()>>>;

pub(super) async fn run<'a>(
    kube: &'a Kube,
    steps: &'a [DeployStep],
    recorder: &'a Recorder,
    loaded: StepFuture<'a>,
) -> ProvisionResult<()> {
    in_order(steps, |step| {
        let loaded = loaded.clone();
        Some(
            async move {
                if !step.images.is_empty() {
                    loaded.await?;
                }
                recorder
                    .step("deploy", &step.name, async {
                        let fail = step_failure("deploy", &step.name);
                        let applied = kube.apply_files(&step.manifests).await.map_err(&fail)?;
                        kube.wait_ready(&applied, step.timeout).await.map_err(&fail)
                    })
                    .await
            }
            .boxed(),
        )
    })
    .await
}

/// Runs each step's `work` once every step in its `after` is done, independent ones at once;
/// a step with no work (`None`) is done at once.
pub(super) async fn in_order<'a>(
    steps: &'a [DeployStep],
    work: impl Fn(&'a DeployStep) -> Option<BoxFuture<'a, ProvisionResult<()>>>,
) -> ProvisionResult<()> {
    let mut futures: HashMap<&str, StepFuture<'a>> = HashMap::new();
    // Config validation refused cycles, so repeated passes place every step.
    while futures.len() < steps.len() {
        for step in steps {
            if futures.contains_key(step.name.as_str())
                || !step.after.iter().all(|a| futures.contains_key(a.as_str()))
            {
                continue;
            }
            let after: Vec<StepFuture<'a>> = step
                .after
                .iter()
                .map(|a| futures[a.as_str()].clone())
                .collect();
            let own = work(step);
            let future = async move {
                try_join_all(after).await?;
                match own {
                    Some(own) => own.await,
                    None => Ok(()),
                }
            };
            futures.insert(&step.name, future.boxed().shared());
        }
    }
    try_join_all(futures.into_values()).await.map(drop)
}

/// The documents of a step's manifests, read from disk.
pub(super) fn documents(
    step: &DeployStep,
) -> Result<Vec<(ObjectRef, serde_json::Value)>, ToolError> {
    let mut documents = Vec::new();
    for file in &step.manifests {
        documents.extend(read_documents(file)?);
    }
    Ok(documents)
}

pub(super) fn objects(step: &DeployStep) -> Result<Vec<ObjectRef>, ToolError> {
    Ok(documents(step)?.into_iter().map(|(o, _)| o).collect())
}
