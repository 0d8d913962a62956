//! Keeps each profile's pool at its warm size: builds clusters through the [`Provisioner`],
//! recycles them when leases end, backs off and degrades when builds keep failing, and
//! reconciles the store with the provisioner's own list at start-up.
mod demand;
mod overlayer;
mod provisioner;
mod reconcile;
mod recorder;
mod state;

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, error, info, info_span, warn};

pub use demand::Demand;
pub use overlayer::Overlayer;
pub use provisioner::{Built, ClusterSpec, ProvisionResult, Provisioner};
pub use recorder::{Recorder, StepEvent};
pub use state::{PoolApi, PoolState};

use crate::{
    Result,
    config::{Config, Profile, Recycle},
    leases::PoolView,
    store::{ClusterRow, ClusterState, StateCounts, Store},
    time,
};

/// How often the pool looks at expiries and sizes even when nothing woke it.
const TICK: Duration = Duration::from_millis(250);
/// Pause before retrying a failed delete of a cluster.
const DESTROY_RETRY: Duration = Duration::from_secs(5);
/// While tools are missing, how often to look for them again.
const PREFLIGHT_RETRY: Duration = Duration::from_secs(10);
/// Busy-set key of a profile's running image refresh.
const REFRESH: &str = "refresh:";

pub struct Pool<P, D> {
    inner: Arc<Inner<P, D>>,
}

struct Inner<P, D> {
    store: Store,
    config: Arc<Config>,
    state: Arc<PoolState>,
    leases: Arc<D>,
    provisioner: Arc<P>,
    /// Pipelines running at once, daemon-wide.
    builds: Arc<Semaphore>,
    wake: Arc<Notify>,
    host: String,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl<P: Provisioner, D: Demand> Pool<P, D> {
    /// `state` is shared with the lease domain and the API; `wake` is the notifier they hold.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        state: Arc<PoolState>,
        leases: Arc<D>,
        provisioner: P,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Self {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Self {
            inner: Arc::new(Inner {
                builds: Arc::new(Semaphore::new(config.daemon.max_concurrent_builds)),
                store,
                config,
                state,
                leases,
                provisioner: Arc::new(provisioner),
                wake,
                host,
                tasks: TaskTracker::new(),
                shutdown,
            }),
        }
    }

    /// Start-up, before the daemon serves: the store agrees with what exists, and missing
    /// tools are known.
    pub async fn start(&self) {
        let inner = &self.inner;
        if let Err(e) = inner.reconcile().await {
            error!(error = %e, "start-up reconciliation failed");
        }
        if let Err(e) = inner.leases.expire_due().await {
            error!(error = %e, "cannot expire leases");
        }
        inner.check_tools().await;
    }

    /// Runs until shutdown (after [`Pool::start`]), then waits for its tasks, which are
    /// cancelled (their child processes killed); warm clusters are left for the next start.
    pub async fn run(self) {
        let inner = &self.inner;
        loop {
            if let Err(e) = Arc::clone(inner).tick().await {
                error!(error = %e, "pool round failed");
            }
            tokio::select! {
                () = inner.shutdown.cancelled() => break,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
        inner.tasks.close();
        inner.tasks.wait().await;
        info!("pool stopped");
    }
}

impl<P: Provisioner, D: Demand> Inner<P, D> {
    async fn tick(self: Arc<Self>) -> Result<()> {
        self.leases.expire_due().await?;
        let last_missing = self.state.tools_missing_since();
        if last_missing.is_some_and(|at| at.elapsed() >= PREFLIGHT_RETRY) {
            self.check_tools().await;
        }
        for cluster in self
            .store
            .clusters(None, &[ClusterState::Recycling])
            .await?
        {
            if self.state.claim(&cluster.id)
                && let Some(profile) = self.config.profile(&cluster.profile).cloned()
            {
                let this = Arc::clone(&self);
                let span = info_span!("recycle", cluster = %cluster.name);
                self.spawn(this.recycle(cluster, profile).instrument(span));
            }
        }
        for profile in self
            .state
            .take_refresh_due(self.config.daemon.refresh_interval)
        {
            if let Some(profile) = self.config.profile(&profile).cloned()
                && self.state.claim(&format!("{REFRESH}{}", profile.name))
            {
                let this = Arc::clone(&self);
                let span = info_span!("refresh", profile = %profile.name);
                self.spawn(this.refresh(profile).instrument(span));
            }
        }
        for profile in self.config.profiles.values() {
            // A cluster can become ready again without a build (a grant taken back): serve
            // whoever waits on every round, not only when a build ends.
            if self.leases.waiting(&profile.name) > 0
                && let Err(e) = self.leases.dispatch(&profile.name).await
            {
                error!(error = %e, profile = %profile.name, "cannot serve waiting callers");
            }
            self.state.set_current_images(
                &profile.name,
                self.provisioner.current_images(&profile.name),
            );
            // One snapshot for both decisions, so they cannot disagree about the pool.
            let counts = self.store.counts(&profile.name).await?;
            let stale: Vec<ClusterRow> = self
                .store
                .clusters(Some(&profile.name), &[ClusterState::Ready])
                .await?
                .into_iter()
                .filter(|c| self.state.is_stale(c))
                .collect();
            // A replacement starting to build holds the next retirement back.
            let started = Arc::clone(&self)
                .fill(profile, &counts, stale.len())
                .await?;
            if started == 0 {
                self.retire_stale(&counts, &stale).await?;
            }
        }
        Ok(())
    }

    async fn refresh(self: Arc<Self>, profile: Arc<Profile>) {
        info!("rebuilding images");
        match self.provisioner.refresh(&profile).await {
            Ok(()) => info!("images rebuilt"),
            Err(e) => warn!(step = %e.step, error = %e.error, "image refresh failed"),
        }
        self.state.unclaim(&format!("{REFRESH}{}", profile.name));
        self.wake.notify_one();
    }

    /// Replaces stale ready clusters one at a time: one goes only while nothing of the profile
    /// is being built or recycled, and the pool then builds a fresh one in its place.
    async fn retire_stale(&self, counts: &StateCounts, stale: &[ClusterRow]) -> Result<()> {
        let tools_missing = self.state.tools_missing_since().is_some();
        if tools_missing || counts.building > 0 || counts.recycling > 0 {
            return Ok(());
        }
        if let Some(oldest) = stale.first() {
            info!(cluster = %oldest.name, "replacing a stale cluster");
            self.store
                .set_state(
                    &oldest.id,
                    ClusterState::Ready,
                    ClusterState::Recycling,
                    time::now(),
                )
                .await?;
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Spawns a task that stops (is dropped) on shutdown.
    fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = work => {}
            }
        });
    }

    /// Starts builds until the profile has its warm clusters (or one per waiter), within `max`
    /// and the daemon-wide build limit.
    /// Returns how many builds it started.
    async fn fill(
        self: Arc<Self>,
        profile: &Arc<Profile>,
        counts: &StateCounts,
        stale_ready: usize,
    ) -> Result<u32> {
        let backing_off = self.state.backing_off(&profile.name);
        let tools_missing = self.state.tools_missing_since().is_some();
        if backing_off || tools_missing || self.shutdown.is_cancelled() {
            return Ok(0);
        }
        let stale = u32::try_from(stale_ready).unwrap_or(counts.ready);
        let fresh_ready = counts.ready.saturating_sub(stale);
        let waiting = u32::try_from(self.leases.waiting(&profile.name)).unwrap_or(u32::MAX);
        let wanted = profile
            .pool
            .warm
            .max(waiting)
            .saturating_sub(fresh_ready + counts.building);
        let room = profile.pool.max.saturating_sub(counts.live());
        let mut started = 0;
        for _ in 0..wanted.min(room) {
            let Ok(permit) = Arc::clone(&self.builds).try_acquire_owned() else {
                break;
            };
            let short_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
            let cluster = ClusterSpec {
                id: short_id.to_string(),
                name: format!("infrad-{}-{short_id}", profile.name),
                profile: Arc::clone(profile),
            };
            let run_id = self
                .store
                .insert_building(
                    &cluster.id,
                    &cluster.name,
                    &profile.name,
                    &self.host,
                    time::now(),
                )
                .await?;
            self.state.claim(&cluster.id);
            let span = info_span!("build", cluster = %cluster.name, run_id);
            let this = Arc::clone(&self);
            self.spawn(this.build(cluster, run_id, permit).instrument(span));
            started += 1;
        }
        Ok(started)
    }

    async fn build(
        self: Arc<Self>,
        cluster: ClusterSpec,
        run_id: i64,
        _permit: OwnedSemaphorePermit,
    ) {
        info!("build started");
        let recorder = Recorder::new(self.store.clone(), run_id);
        let outcome = self.provisioner.build(&cluster, &recorder).await;
        let profile = &cluster.profile;
        let stored = match outcome {
            Ok(built) => {
                info!("cluster ready");
                self.state.back_off(&profile.name, None);
                match self
                    .store
                    .mark_ready(
                        &cluster.id,
                        run_id,
                        &built.kubeconfig,
                        &built.images,
                        time::now(),
                    )
                    .await
                {
                    Ok(_) => self.refresh_degraded(profile).await,
                    Err(e) => Err(e),
                }
            }
            Err(failure) => {
                warn!(phase = %failure.phase, step = %failure.step, error = %failure.error, "build failed");
                if let Err(e) = self.provisioner.destroy(&cluster.name).await {
                    warn!(error = %e.error, "cannot delete the half-built cluster");
                }
                match self
                    .store
                    .mark_failed(&cluster.id, run_id, &failure, time::now())
                    .await
                {
                    Ok(()) => self.after_failure(profile).await,
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = stored {
            error!(error = %e, "cannot record the build's outcome");
        }
        if let Err(e) = self.leases.dispatch(&profile.name).await {
            error!(error = %e, "cannot serve waiting callers");
        }
        self.state.unclaim(&cluster.id);
        self.wake.notify_one();
    }

    /// Backs off before the next build and degrades the profile after too many failures.
    async fn after_failure(&self, profile: &Profile) -> Result<()> {
        let streak = self.store.failure_streak(&profile.name).await?;
        let failures = streak.as_ref().map_or(1, |s| s.consecutive);
        let delay = backoff(profile, failures);
        info!(failures, retry_in = %humantime::format_duration(delay), "next build backs off");
        self.state.back_off(&profile.name, Some(delay));
        self.refresh_degraded(profile).await
    }

    /// Looks for the tools; while they are missing every profile is degraded, saying what to
    /// install, and no build starts.
    async fn check_tools(&self) {
        match self.provisioner.preflight().await {
            Ok(()) => {
                self.state.set_tools_missing(false);
                // Degraded again only if the build history says so.
                for profile in self.config.profiles.values() {
                    if let Err(e) = self.refresh_degraded(profile).await {
                        error!(error = %e, profile = %profile.name, "cannot read build history");
                    }
                }
            }
            Err(failure) => {
                self.state.set_tools_missing(true);
                let reason = format!("cannot build clusters: {}", failure.error);
                for profile in self.config.profiles.keys() {
                    self.degrade(profile, Some(reason.clone())).await;
                }
            }
        }
    }

    /// Degraded exactly while the current failure streak reaches the profile's limit.
    async fn refresh_degraded(&self, profile: &Profile) -> Result<()> {
        let reason = self
            .store
            .failure_streak(&profile.name)
            .await?
            .filter(|s| s.consecutive >= profile.pool.degraded_after)
            .map(|s| {
                format!(
                    "{} builds failed in a row; last failure in {}",
                    s.consecutive, s.failure
                )
            });
        self.degrade(&profile.name, reason).await;
        Ok(())
    }

    /// Marks a profile degraded (its waiters are answered with why) or healthy again.
    async fn degrade(&self, profile: &str, reason: Option<String>) {
        let degraded = reason.is_some();
        self.state.set_degraded(profile, reason);
        if degraded {
            self.leases.fail_waiters(profile).await;
        }
    }

    /// A leased cluster came back: reset it or replace it, as the profile says.
    async fn recycle(self: Arc<Self>, cluster: ClusterRow, profile: Arc<Profile>) {
        // A cluster that was never ready has nothing worth resetting, and a stale one must go.
        let reset = profile.pool.recycle == Recycle::Reset
            && cluster.ready_at.is_some()
            && !self.state.is_stale(&cluster);
        if reset {
            let spec = ClusterSpec {
                id: cluster.id.clone(),
                name: cluster.name.clone(),
                profile: Arc::clone(&profile),
            };
            match self.provisioner.reset(&spec).await {
                Ok(()) => {
                    let back = self
                        .store
                        .set_state(
                            &cluster.id,
                            ClusterState::Recycling,
                            ClusterState::Ready,
                            time::now(),
                        )
                        .await;
                    match back {
                        Ok(_) => {
                            info!("cluster reset and ready again");
                            if let Err(e) = self.leases.dispatch(&profile.name).await {
                                error!(error = %e, "cannot serve waiting callers");
                            }
                        }
                        Err(e) => error!(error = %e, "cannot record the reset"),
                    }
                    self.state.unclaim(&cluster.id);
                    self.wake.notify_one();
                    return;
                }
                Err(e) => warn!(error = %e.error, "reset failed; recreating the cluster"),
            }
        }
        match self.provisioner.destroy(&cluster.name).await {
            Ok(()) => {
                let deleted = self
                    .store
                    .set_state(
                        &cluster.id,
                        ClusterState::Recycling,
                        ClusterState::Deleted,
                        time::now(),
                    )
                    .await;
                if let Err(e) = deleted {
                    error!(error = %e, "cannot record the deletion");
                }
                info!("cluster deleted");
            }
            Err(e) => {
                warn!(error = %e.error, "cannot delete the cluster; retrying");
                tokio::time::sleep(DESTROY_RETRY).await;
            }
        }
        self.state.unclaim(&cluster.id);
        self.wake.notify_one();
    }
}

/// Doubles from `retry_backoff` with each failure, up to `retry_backoff_max`.
fn backoff(profile: &Profile, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    profile
        .pool
        .retry_backoff
        .saturating_mul(1 << doublings)
        .min(profile.pool.retry_backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let config = Config::parse(
            std::path::Path::new("t.toml"),
            "[profiles.p.pool]\nretry_backoff = \"1s\"\nretry_backoff_max = \"5s\"\n",
        )
        .unwrap();
        let profile = config.profile("p").unwrap();
        let delays: Vec<u64> = (1..=5).map(|n| backoff(profile, n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
    }
}
