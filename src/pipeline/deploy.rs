//! Phase 4: deploy steps in parallel, each starting once every step in its `after` is ready.
//! The first failure cancels the others (their futures are dropped).
use std::collections::HashMap;

use futures::{
    FutureExt,
    future::{BoxFuture, Shared, try_join_all},
};

use super::step_failure;
use crate::{
    config::DeployStep,
    pool::{ProvisionResult, Recorder},
    tools::kube::Kube,
};

type StepFuture<'a> = Shared<BoxFuture<'a, ProvisionResult<()>>>;

pub(super) async fn run(
    kube: &Kube,
    steps: &[DeployStep],
    recorder: &Recorder,
) -> ProvisionResult<()> {
    let mut futures: HashMap<&str, StepFuture<'_>> = HashMap::new();
    // Config validation refused cycles, so repeated passes place every step.
    while futures.len() < steps.len() {
        for step in steps {
            if futures.contains_key(step.name.as_str())
                || !step.after.iter().all(|a| futures.contains_key(a.as_str()))
            {
                continue;
            }
            let after: Vec<StepFuture<'_>> = step
                .after
                .iter()
                .map(|a| futures[a.as_str()].clone())
                .collect();
            let future = async move {
                try_join_all(after).await?;
                recorder
                    .step("deploy", &step.name, async {
                        let fail = step_failure("deploy", &step.name);
                        let applied = kube.apply_files(&step.manifests).await.map_err(&fail)?;
                        kube.wait_ready(&applied, step.timeout).await.map_err(&fail)
                    })
                    .await
            };
            futures.insert(&step.name, future.boxed().shared());
        }
    }
    try_join_all(futures.into_values()).await.map(drop)
}
