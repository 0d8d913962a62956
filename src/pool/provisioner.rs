//! The boundary between the pool and whatever makes clusters (the four-phase pipeline).
use std::{path::PathBuf, sync::Arc};

use crate::{artifacts::Collected, config::Profile, overlay::Override, store::RunFailure};

use super::Recorder;

/// One cluster the pool asks for.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub id: String,
    /// `infrad-<profile>-<short id>`.
    pub name: String,
    pub profile: Arc<Profile>,
}

/// A cluster that is ready to lease.
#[derive(Debug, Clone)]
pub struct Built {
    pub kubeconfig: String,
    /// What it was built from (image names and IDs); clusters of older images are stale.
    pub images: String,
}

pub type ProvisionResult<T> = std::result::Result<T, RunFailure>;

/// Makes, resets, lists and destroys clusters. Futures are dropped to cancel them (on
/// shutdown): an implementation must kill its child processes when that happens.
pub trait Provisioner: Send + Sync + 'static {
    /// Checks that the tools are there; the error says what to install.
    fn preflight(&self) -> impl Future<Output = ProvisionResult<()>> + Send {
        async { Ok(()) }
    }

    /// Rebuilds the profile's images now, so that new inputs reach the pool.
    fn refresh(&self, profile: &Arc<Profile>) -> impl Future<Output = ProvisionResult<()>> + Send {
        let _ = profile;
        async { Ok(()) }
    }

    /// What a cluster of `profile` built now would be made from ([`Built::images`]), once known.
    fn current_images(&self, profile: &str) -> Option<String> {
        let _ = profile;
        None
    }

    /// Runs the pipeline for `cluster`, recording each step through `recorder`.
    fn build(
        &self,
        cluster: &ClusterSpec,
        recorder: &Recorder,
    ) -> impl Future<Output = ProvisionResult<Built>> + Send;

    /// The image ID of each local image reference (a tag or an ID) on the host the images are
    /// loaded from; `None` for one it does not have.
    fn find_images(
        &self,
        references: &[String],
    ) -> impl Future<Output = ProvisionResult<Vec<Option<String>>>> + Send;

    /// Puts a caller's images into the cluster leased to it, recording each step through
    /// `recorder`: loaded, and the deploy steps that use them applied again with them.
    fn overlay(
        &self,
        cluster: &ClusterSpec,
        overrides: &[Override],
        recorder: &Recorder,
    ) -> impl Future<Output = ProvisionResult<()>> + Send;

    /// Brings a used cluster back to the state it had when it became ready (undoing an
    /// overlay).
    fn reset(&self, cluster: &ClusterSpec) -> impl Future<Output = ProvisionResult<()>> + Send;

    /// Deletes a cluster; deleting one that does not exist succeeds.
    fn destroy(&self, name: &str) -> impl Future<Output = ProvisionResult<()>> + Send;

    /// Names of the clusters that exist now, made by infrad or not.
    fn list(&self) -> impl Future<Output = ProvisionResult<Vec<String>>> + Send;

    /// The host directory a cluster's nodes mount for artifacts (profiles with artifacts).
    fn artifacts_dir(&self, cluster: &str) -> PathBuf;

    /// Writes the leased cluster's pod logs and events into `report.dir`, the workloads of
    /// the deploy steps `flush` scaled to 0 first; notes in `report` what was written and
    /// what could not be. Cut short when dropped.
    fn collect(
        &self,
        cluster: &ClusterSpec,
        flush: &[String],
        report: &mut Collected,
    ) -> impl Future<Output = ()> + Send;
}

/// A shared provisioner provisions too (a test keeps a handle while the daemon runs it).
impl<P: Provisioner> Provisioner for Arc<P> {
    fn preflight(&self) -> impl Future<Output = ProvisionResult<()>> + Send {
        P::preflight(self)
    }

    fn refresh(&self, profile: &Arc<Profile>) -> impl Future<Output = ProvisionResult<()>> + Send {
        P::refresh(self, profile)
    }

    fn current_images(&self, profile: &str) -> Option<String> {
        P::current_images(self, profile)
    }

    fn build(
        &self,
        cluster: &ClusterSpec,
        recorder: &Recorder,
    ) -> impl Future<Output = ProvisionResult<Built>> + Send {
        P::build(self, cluster, recorder)
    }

    fn find_images(
        &self,
        references: &[String],
    ) -> impl Future<Output = ProvisionResult<Vec<Option<String>>>> + Send {
        P::find_images(self, references)
    }

    fn overlay(
        &self,
        cluster: &ClusterSpec,
        overrides: &[Override],
        recorder: &Recorder,
    ) -> impl Future<Output = ProvisionResult<()>> + Send {
        P::overlay(self, cluster, overrides, recorder)
    }

    fn reset(&self, cluster: &ClusterSpec) -> impl Future<Output = ProvisionResult<()>> + Send {
        P::reset(self, cluster)
    }

    fn destroy(&self, name: &str) -> impl Future<Output = ProvisionResult<()>> + Send {
        P::destroy(self, name)
    }

    fn list(&self) -> impl Future<Output = ProvisionResult<Vec<String>>> + Send {
        P::list(self)
    }

    fn artifacts_dir(&self, cluster: &str) -> PathBuf {
        P::artifacts_dir(self, cluster)
    }

    fn collect(
        &self,
        cluster: &ClusterSpec,
        flush: &[String],
        report: &mut Collected,
    ) -> impl Future<Output = ()> + Send {
        P::collect(self, cluster, flush, report)
    }
}
