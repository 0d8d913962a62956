//! [`Grant`]: the one owner of "no lease is left behind".
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::{
    overlay::Override,
    store::{LeaseRow, StepRow, Store},
    time,
};

/// A lease granted to one caller and not yet delivered to it. Dropped undelivered — the caller
/// hung up, its deadline passed, the daemon is stopping, a stream could not send it — the lease
/// is taken back and its cluster is ready again. [`Grant::deliver`] is the only way out.
#[derive(Debug)]
pub struct Grant {
    lease: LeaseRow,
    build: Vec<StepRow>,
    overlay: Option<Overlaid>,
    artifacts_dir: Option<PathBuf>,
    owner: Unanswered,
}

/// What an overlay put into the grant's cluster: the caller's images and the run's steps.
#[derive(Debug, Clone)]
pub struct Overlaid {
    pub images: Vec<Override>,
    pub steps: Vec<StepRow>,
}

/// The duty to take a lease back, from before the store grants it (a call cancelled while the
/// grant commits leaves nothing behind) until it is delivered. Empty for a lease an earlier call
/// with the same request id got: it belongs to that call, and is never taken back for this one.
#[derive(Debug)]
pub(super) struct Unanswered {
    lease_id: String,
    take_back: Option<TakeBack>,
    /// The caller's images went into the cluster: taken back, it is recycled, not ready.
    dirty: bool,
}

/// What taking a grant back needs: the store, a nudge for the pool to serve the cluster, and
/// the tracker the daemon waits on before it closes the store.
#[derive(Clone)]
pub(super) struct TakeBack {
    pub store: Store,
    pub pool_wake: Arc<Notify>,
    pub tasks: TaskTracker,
}

impl std::fmt::Debug for TakeBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TakeBack")
    }
}

impl TakeBack {
    async fn run(self, lease_id: String, dirty: bool) {
        info!(
            lease_id,
            dirty, "the caller never received its lease; taking it back"
        );
        match self
            .store
            .take_back_grant(&lease_id, dirty, time::now())
            .await
        {
            Ok(()) => self.pool_wake.notify_one(),
            Err(e) => warn!(error = %e, lease_id, "cannot take back a grant; it ends with its TTL"),
        }
    }
}

impl Unanswered {
    /// Armed for `lease_id`, a lease about to be granted.
    pub(super) fn new(lease_id: String, take_back: TakeBack) -> Self {
        Self {
            lease_id,
            take_back: Some(take_back),
            dirty: false,
        }
    }

    /// Nothing to take back (no lease was granted, or it is another call's).
    pub(super) fn disarm(mut self) -> Self {
        self.take_back = None;
        self
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let Some(take_back) = self.take_back.take() else {
            return;
        };
        let lease_id = std::mem::take(&mut self.lease_id);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(
                take_back
                    .tasks
                    .clone()
                    .spawn_on(take_back.run(lease_id, self.dirty), &runtime),
            ),
            Err(_) => warn!(
                lease_id,
                "no runtime to take back a grant; it ends with its TTL"
            ),
        }
    }
}

impl Grant {
    pub(super) fn new(lease: LeaseRow, owner: Unanswered) -> Self {
        Self {
            lease,
            build: Vec::new(),
            overlay: None,
            artifacts_dir: None,
            owner,
        }
    }

    pub(super) fn with_build(mut self, build: Vec<StepRow>) -> Self {
        self.build = build;
        self
    }

    pub fn lease(&self) -> &LeaseRow {
        &self.lease
    }

    /// The steps of the run that built the lease's cluster.
    pub fn build(&self) -> &[StepRow] {
        &self.build
    }

    /// From now on the cluster holds the caller's images: taken back, it is recycled.
    pub(super) fn dirty(&mut self) {
        self.owner.dirty = true;
    }

    pub(super) fn with_overlay(mut self, overlay: Overlaid) -> Self {
        self.overlay = Some(overlay);
        self
    }

    pub(super) fn with_artifacts(mut self, dir: PathBuf) -> Self {
        self.artifacts_dir = Some(dir);
        self
    }

    /// The cluster's artifacts directory, for a profile with artifacts.
    pub fn artifacts_dir(&self) -> Option<&Path> {
        self.artifacts_dir.as_deref()
    }

    /// What an overlay put into the cluster, if the caller asked for its own images.
    pub fn overlay(&self) -> Option<&Overlaid> {
        self.overlay.as_ref()
    }

    /// The caller has its lease: from now on only Release or expiry ends it.
    pub fn deliver(mut self) {
        self.owner.take_back = None;
    }

    /// Takes the grant back now and waits until the store has it (where a caller must not
    /// return before, such as at shutdown, when the store closes next).
    pub async fn take_back(mut self) {
        if let Some(take_back) = self.owner.take_back.take() {
            take_back.run(self.lease.id.clone(), self.owner.dirty).await;
        }
    }
}
