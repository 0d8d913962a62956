//! Records a pipeline run's steps (start, end, outcome) as they happen, and tells an observer
//! (a progress display) if there is one.
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use crate::{
    store::{RunOutcome, Store},
    time,
};

use super::provisioner::ProvisionResult;

/// A step starting or ending, for whoever watches a build.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEvent {
    Started {
        phase: String,
        step: String,
        at: SystemTime,
    },
    Ended {
        phase: String,
        step: String,
        at: SystemTime,
        took: Duration,
        /// The error, if the step failed.
        error: Option<String>,
    },
}

pub struct Recorder {
    /// Where steps are stored, and under which run; `None` records nothing.
    run: Option<(Store, i64)>,
    observer: Option<UnboundedSender<StepEvent>>,
}

impl Recorder {
    pub fn new(store: Store, run_id: i64) -> Self {
        Self {
            run: Some((store, run_id)),
            observer: None,
        }
    }

    /// For work outside any cluster's run (an image refresh): logged, not stored.
    pub fn detached() -> Self {
        Self {
            run: None,
            observer: None,
        }
    }

    /// Also sends every step's start and end to `observer`.
    pub fn observed(mut self, observer: UnboundedSender<StepEvent>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn tell(&self, event: StepEvent) {
        if let Some(observer) = &self.observer {
            let _ = observer.send(event);
        }
    }

    /// Runs one step of `phase`, recording when it started and ended and how.
    /// Timings are not worth failing a build over, so a store error is logged and the step runs.
    pub async fn step<T>(
        &self,
        phase: &str,
        step: &str,
        work: impl Future<Output = ProvisionResult<T>>,
    ) -> ProvisionResult<T> {
        let started = Instant::now();
        self.tell(StepEvent::Started {
            phase: phase.into(),
            step: step.into(),
            at: SystemTime::now(),
        });
        let id = match &self.run {
            Some((store, run_id)) => store
                .step_started(*run_id, phase, step, time::now())
                .await
                .inspect_err(|e| warn!(error = %e, phase, step, "cannot record step start"))
                .ok(),
            None => None,
        };
        let result = work.await;
        if let (Some(id), Some((store, _))) = (id, &self.run)
            && let Err(e) = store.step_ended(id, outcome(&result), time::now()).await
        {
            warn!(error = %e, phase, step, "cannot record step end");
        }
        let took = started.elapsed();
        info!(phase, step, took = %humantime::format_duration(Duration::from_millis(took.as_millis() as u64)), ok = result.is_ok(), "step ended");
        self.tell(StepEvent::Ended {
            phase: phase.into(),
            step: step.into(),
            at: SystemTime::now(),
            took,
            error: result.as_ref().err().map(|f| f.error.clone()),
        });
        result
    }
}

fn outcome<T>(result: &ProvisionResult<T>) -> RunOutcome {
    match result {
        Ok(_) => RunOutcome::Succeeded,
        Err(_) => RunOutcome::Failed,
    }
}
