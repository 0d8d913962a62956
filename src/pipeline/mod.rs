//! The four-phase pipeline that builds clusters (build images ‖ → create cluster → load
//! images ‖ → deploy services ‖).
//!
//! Not built yet: until it is, every build fails with a message saying so, which degrades
//! the profile. The daemon never claims a cluster it did not build.
use crate::{
    pool::{Built, ClusterSpec, ProvisionResult, Provisioner, Recorder},
    store::RunFailure,
};

/// Builds clusters with docker and kind.
#[derive(Debug, Default)]
pub struct Pipeline;

const NOT_BUILT: &str =
    "this infrad cannot build clusters yet: the four-phase pipeline is not implemented";

impl Provisioner for Pipeline {
    async fn build(&self, _cluster: &ClusterSpec, recorder: &Recorder) -> ProvisionResult<Built> {
        recorder
            .step("build", "pipeline", async { Err(not_built("pipeline")) })
            .await
    }

    async fn reset(&self, _cluster: &ClusterSpec) -> ProvisionResult<()> {
        Err(not_built("reset"))
    }

    async fn destroy(&self, _name: &str) -> ProvisionResult<()> {
        // Nothing this pipeline made can exist.
        Ok(())
    }

    async fn list(&self) -> ProvisionResult<Vec<String>> {
        Ok(Vec::new())
    }
}

fn not_built(step: &str) -> RunFailure {
    RunFailure {
        phase: "build".into(),
        step: step.into(),
        exit_code: None,
        error: NOT_BUILT.into(),
    }
}
