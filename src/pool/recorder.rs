//! Records a pipeline run's steps (start, end, outcome) as they happen.
use tracing::warn;

use crate::{store::Store, time};

use super::provisioner::ProvisionResult;

pub struct Recorder {
    store: Store,
    run_id: i64,
}

impl Recorder {
    pub fn new(store: Store, run_id: i64) -> Self {
        Self { store, run_id }
    }

    /// Runs one step of `phase`, recording when it started and ended and how.
    /// Timings are not worth failing a build over, so a store error is logged and the step runs.
    pub async fn step<T>(
        &self,
        phase: &str,
        step: &str,
        work: impl Future<Output = ProvisionResult<T>>,
    ) -> ProvisionResult<T> {
        let id = self
            .store
            .step_started(self.run_id, phase, step, time::now())
            .await
            .inspect_err(|e| warn!(error = %e, phase, step, "cannot record step start"))
            .ok();
        let result = work.await;
        if let Some(id) = id
            && let Err(e) = self.store.step_ended(id, result.is_ok(), time::now()).await
        {
            warn!(error = %e, phase, step, "cannot record step end");
        }
        result
    }
}
