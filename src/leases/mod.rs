//! The lease domain: grants, the FIFO wait, renewal, release and expiry. It decides; the store
//! persists; the API only validates and maps errors; what the pool knows (degraded profiles,
//! current images, stale clusters) it reads through [`PoolView`].
//!
//! Words used here, and only in these senses:
//! - an [`Ask`] is what a caller asks Acquire for, as the API validated it (defaults not applied);
//! - [`Terms`] are what a lease is granted on: holder, TTL and request id, the profile's
//!   defaults applied. A waiter in the queue carries its terms;
//! - a [`Grant`] is a lease granted to one caller and not yet delivered. It is the only owner
//!   of "no lease is left behind": dropped undelivered, it is *taken back* (the lease row goes,
//!   the cluster is ready again); `deliver` hands it over for good;
//! - a [`Place`](queue::Place) is a caller's place in the queue; dropped, the caller leaves it;
//! - an *overlay* puts the caller's own images ([`ImageOverride`]) into the granted cluster
//!   before it is delivered; from its start the grant is *dirty*: taken back, its cluster is
//!   recycled instead of ready again;
//! - `NewLease` (store) is the row a grant inserts.
mod grant;
mod queue;
mod record;
mod report;
pub mod token;

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::{
    sync::{Notify, mpsc, watch},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::info;

pub use grant::{Grant, Overlaid};
use grant::{TakeBack, Unanswered};
use queue::Queue;
pub use report::{ClusterReport, ProfileReport};

use crate::{
    Error, Result,
    artifacts::{self, Collected},
    config::{Config, Profile},
    overlay::{self, ImageOverride, Override},
    pool::StepEvent,
    store::{ClusterRow, EndReason, LeaseRow, NewLease, StepRow, Store},
    time::{self, Millis, millis},
};

/// Beyond collecting's bound, for the release that follows it: the lease must not expire
/// between the two.
const COLLECT_SLACK: Duration = Duration::from_secs(30);

/// What a caller asks Acquire for, validated by the API.
#[derive(Debug, Clone)]
pub struct Ask {
    pub profile: String,
    pub holder: String,
    /// `None`: the profile's default.
    pub ttl: Option<Duration>,
    /// `None`: the profile's default; zero answers at once.
    pub wait: Option<Duration>,
    pub request_id: Option<String>,
    /// The caller's own images in place of the profile's (none: the cluster as built).
    pub images: Vec<ImageOverride>,
}

/// What a lease is granted on.
#[derive(Debug, Clone)]
pub struct Terms {
    pub holder: String,
    pub ttl: Duration,
    pub request_id: Option<String>,
}

/// Where a waiting caller stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// 1 = next to be served.
    pub position: u32,
    pub waiting: u32,
    pub build: Option<BuildProgress>,
}

/// The build expected to serve a waiting caller.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildProgress {
    pub cluster: String,
    pub elapsed: Duration,
    /// The newest running step: phase, step, how long it has run.
    pub step: Option<(String, String, Duration)>,
}

/// What the lease domain reads of the pool's own state.
pub trait PoolView: Send + Sync + 'static {
    /// Why Acquire of `profile` fails fast when nothing is ready, while it does.
    fn degraded_reason(&self, profile: &str) -> Option<String>;
    /// The images fresh clusters of `profile` are built from, once known.
    fn current_images(&self, profile: &str) -> Option<String>;
    /// A ready or leased cluster built from older images than the current ones.
    fn is_stale(&self, cluster: &ClusterRow) -> bool;
}

/// What the lease domain needs to put a caller's images into its cluster (the pool's
/// provisioner does the work).
pub trait Overlays: Send + Sync + 'static {
    /// The image ID of each reference on the daemon's Docker host, `None` for one it lacks.
    fn find_images(
        &self,
        references: &[String],
    ) -> impl Future<Output = Result<Vec<Option<String>>>> + Send;
    /// Runs the overlay on the lease's cluster as a run of its own, telling `observer` each
    /// step as it starts and ends; returns the run's steps.
    fn overlay(
        &self,
        lease: &LeaseRow,
        profile: &Arc<Profile>,
        overrides: &[Override],
        observer: mpsc::UnboundedSender<StepEvent>,
    ) -> impl Future<Output = Result<Vec<StepRow>>> + Send;
    /// The cluster's artifacts directory on the host.
    fn artifacts_dir(&self, cluster: &str) -> PathBuf;
    /// The cluster's artifacts directory, emptied (and made, mode 0700) for a new lease.
    fn fresh_artifacts(&self, cluster: &str) -> Result<PathBuf>;
    /// Writes `record` as `lease.json` into the lease's artifacts directory, then the
    /// cluster's logs and events, the deploy steps `flush` stopped first. Cut short when
    /// dropped: what `report` holds by then was written.
    fn collect(
        &self,
        lease: &LeaseRow,
        profile: &Arc<Profile>,
        flush: &[String],
        record: &[u8],
        report: &mut Collected,
    ) -> impl Future<Output = ()> + Send;
}

/// Who watches one Acquire: its waiter id once it queues, each overlay step as it runs.
#[derive(Default)]
pub struct Watchers {
    pub queued: Option<watch::Sender<Option<u64>>>,
    pub steps: Option<mpsc::UnboundedSender<StepEvent>>,
}

/// What the API needs of the lease domain (implemented by [`Leases`]).
pub trait LeaseApi: Send + Sync + 'static {
    fn acquire(&self, ask: Ask) -> impl Future<Output = Result<Grant>> + Send {
        self.acquire_watched(ask, Watchers::default())
    }
    /// Acquire, telling `watchers` where it stands.
    fn acquire_watched(
        &self,
        ask: Ask,
        watchers: Watchers,
    ) -> impl Future<Output = Result<Grant>> + Send;
    /// Where a waiting caller stands and how the build expected to serve it is going;
    /// `None` once it no longer waits.
    fn progress(
        &self,
        profile: &str,
        waiter: u64,
    ) -> impl Future<Output = Result<Option<Progress>>> + Send;
    /// Returns the new expiry.
    fn renew(
        &self,
        lease_id: &str,
        token: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<Millis>> + Send;
    /// Ends the lease; with `collect` (the deploy steps to flush), its artifacts are collected
    /// first and said what of. Releasing a released lease again succeeds, collecting nothing.
    fn release(
        &self,
        lease_id: &str,
        token: &str,
        collect: Option<Vec<String>>,
    ) -> impl Future<Output = Result<Option<Collected>>> + Send;
    fn status(
        &self,
        profile: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ProfileReport>>> + Send;
}

pub struct Leases<V, O> {
    store: Store,
    config: Arc<Config>,
    queues: std::collections::HashMap<String, Arc<Queue>>,
    pool: Arc<V>,
    overlays: O,
    /// Wakes the pool: a lease ended or demand changed.
    pool_wake: Arc<Notify>,
    /// Grants being taken back in the background.
    take_backs: TaskTracker,
    /// Leases whose artifacts are being collected: one release at a time each.
    collecting: std::sync::Mutex<std::collections::HashSet<String>>,
    shutdown: CancellationToken,
}

/// A lease's place in [`Leases::collecting`], given up when dropped.
struct Collecting<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    lease_id: String,
}

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.lease_id);
    }
}

impl<V: PoolView, O: Overlays> Leases<V, O> {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        pool: Arc<V>,
        overlays: O,
        pool_wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Self {
        let queues = config
            .profiles
            .keys()
            .map(|name| (name.clone(), Arc::default()))
            .collect();
        Self {
            store,
            config,
            queues,
            pool,
            overlays,
            pool_wake,
            take_backs: TaskTracker::new(),
            collecting: std::sync::Mutex::default(),
            shutdown,
        }
    }

    fn profile(&self, name: &str) -> Result<&Arc<Profile>> {
        self.config
            .profile(name)
            .ok_or_else(|| Error::UnknownProfile(name.to_string()))
    }

    fn queue(&self, profile: &str) -> Result<&Arc<Queue>> {
        self.queues
            .get(profile)
            .ok_or_else(|| Error::UnknownProfile(profile.to_string()))
    }

    /// Callers waiting for a cluster of `profile`.
    pub fn waiting(&self, profile: &str) -> usize {
        self.queues.get(profile).map_or(0, |q| q.len())
    }

    /// Answers every caller waiting for `profile` with why it is degraded. The pool marks the
    /// profile degraded first; this then takes the grant lock that Acquire checks under, so no
    /// caller joins the queue of a profile just degraded. A profile healthy again by then
    /// keeps its waiters.
    pub async fn fail_waiters(&self, profile: &str) {
        if let Some(queue) = self.queues.get(profile) {
            let _serial = queue.grant_lock.lock().await;
            let Some(reason) = self.pool.degraded_reason(profile) else {
                return;
            };
            for waiter in queue.drain() {
                let _ = waiter.tx.send(Err(reason.clone()));
            }
        }
    }

    fn check_ttl(profile: &Profile, ttl: Option<Duration>) -> Result<Duration> {
        let max = profile.pool.max_lease_ttl;
        match ttl {
            None => Ok(profile.pool.lease_ttl),
            Some(ttl) if ttl.is_zero() || ttl > max => Err(Error::InvalidArgument(format!(
                "ttl must be more than 0s and at most {} (the maximum of profile {:?})",
                humantime::format_duration(max),
                profile.name
            ))),
            Some(ttl) => Ok(ttl),
        }
    }

    fn take_back(&self) -> TakeBack {
        TakeBack {
            store: self.store.clone(),
            pool_wake: Arc::clone(&self.pool_wake),
            tasks: self.take_backs.clone(),
        }
    }

    /// Waits (at most `limit`) for grants being taken back in the background: the daemon
    /// calls it before it closes the store.
    pub async fn finish_take_backs(&self, limit: Duration) {
        self.take_backs.close();
        if tokio::time::timeout(limit, self.take_backs.wait())
            .await
            .is_err()
        {
            tracing::warn!("grants still being taken back at shutdown end with their TTL");
        }
    }

    async fn grant_now(&self, profile: &str, terms: &Terms) -> Result<Option<Grant>> {
        let (id, token) = (token::new_lease_id(), token::new_token());
        let fresh = self.pool.current_images(profile);
        let lease = NewLease {
            fresh_images: fresh.as_deref(),
            id: &id,
            token: &token,
            profile,
            holder: &terms.holder,
            request_id: terms.request_id.as_deref(),
            ttl_ms: millis(terms.ttl),
        };
        // Armed before the store commits: a call dropped meanwhile leaves no lease behind.
        let owner = Unanswered::new(id.clone(), self.take_back());
        let granted = self.store.grant(&lease, time::now()).await?;
        Ok(match granted {
            Some(lease) if lease.id == id => Some(Grant::new(lease, owner)),
            // The lease an earlier call with the same request id got: not ours to take back.
            Some(lease) => Some(Grant::new(lease, owner.disarm())),
            None => {
                owner.disarm();
                None
            }
        })
    }

    /// Adds the timings of the build that made the grant's cluster. A store error drops the
    /// grant, which takes it back.
    async fn with_build(&self, grant: Grant) -> Result<Grant> {
        let build = self.store.build_steps(&grant.lease().cluster_id).await?;
        Ok(grant.with_build(build))
    }

    /// Serves waiting callers of `profile` from its ready clusters, first come first served.
    pub async fn dispatch(&self, profile: &str) -> Result<()> {
        let queue = self.queue(profile)?;
        let _serial = queue.grant_lock.lock().await;
        while let Some(waiter) = queue.pop_front() {
            let granted = self.grant_now(profile, &waiter.terms).await;
            let Ok(Some(grant)) = granted else {
                // Nothing ready (or the store failed): the waiter keeps its place.
                queue.push_front(waiter);
                return granted.map(drop);
            };
            if let Err(Ok(grant)) = waiter.tx.send(Ok(grant)) {
                // The caller left between the pop and the grant.
                grant.take_back().await;
            }
        }
        Ok(())
    }

    /// The caller's images checked against the profile and found on the host, before anything
    /// is granted.
    async fn find_overrides(
        &self,
        profile: &Profile,
        asked: &[ImageOverride],
        wait: Option<Duration>,
    ) -> Result<Vec<Override>> {
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        overlay::check(profile, asked)?;
        if wait.is_some_and(|w| w.is_zero()) {
            return Err(Error::InvalidArgument(
                "wait must be more than 0s with images: it bounds loading and deploying them too"
                    .into(),
            ));
        }
        let references: Vec<String> = asked.iter().map(|a| a.reference.clone()).collect();
        let ids = self.overlays.find_images(&references).await?;
        asked
            .iter()
            .zip(ids)
            .map(|(asked, id)| match id {
                Some(id) => Ok(Override::new(asked, &id)),
                None => Err(Error::ImageNotFound {
                    reference: asked.reference.clone(),
                }),
            })
            .collect()
    }

    /// A grant made ready to deliver: its build's timings, and the caller's images put in
    /// before `deadline`. A failed or late overlay drops the grant, which recycles the cluster.
    async fn hand_over(
        &self,
        grant: Grant,
        profile: &Arc<Profile>,
        overrides: &[Override],
        (started, wait): (Instant, Duration),
        observer: Option<&mpsc::UnboundedSender<StepEvent>>,
    ) -> Result<Grant> {
        let deadline = started + wait;
        let mut grant = self.with_build(grant).await?;
        if profile.artifacts.is_some() {
            // Fresh per lease: nothing of an earlier holder's run is taken for this one's.
            let dir = self.overlays.fresh_artifacts(&grant.lease().cluster_name)?;
            grant = grant.with_artifacts(dir);
        }
        if overrides.is_empty() {
            return Ok(grant);
        }
        grant.dirty();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let lease = grant.lease().clone();
        let work = self.overlays.overlay(&lease, profile, overrides, tx);
        tokio::pin!(work);
        // The step running, to name if the wait runs out.
        let mut running = String::from("none yet");
        let mut tell = |event: StepEvent| {
            if let StepEvent::Started { phase, step, .. } = &event {
                running = format!("{phase} {step}");
            }
            if let Some(observer) = observer {
                let _ = observer.send(event);
            }
        };
        let outcome = tokio::time::timeout_at(deadline, async {
            loop {
                tokio::select! {
                    biased;
                    Some(event) = rx.recv() => tell(event),
                    done = &mut work => break done,
                }
            }
        })
        .await;
        while let Ok(event) = rx.try_recv() {
            tell(event);
        }
        let cluster = lease.cluster_name.clone();
        match outcome {
            Ok(steps) => Ok(grant.with_overlay(Overlaid {
                images: overrides.to_vec(),
                steps: steps?,
            })),
            Err(_) => Err(Error::OverlayTimedOut {
                cluster,
                wait,
                step: running,
            }),
        }
    }

    async fn no_cluster(&self, profile: &Profile, waited: Duration) -> Result<Error> {
        Ok(Error::NoCluster {
            profile: profile.name.clone(),
            waited,
            counts: self.store.counts(&profile.name).await?,
            max: profile.pool.max,
        })
    }

    /// The stored lease, if `token` proves ownership of it.
    async fn owned_lease(&self, lease_id: &str, token: &str) -> Result<LeaseRow> {
        let lease = self
            .store
            .lease(lease_id)
            .await?
            .ok_or_else(|| Error::LeaseNotFound(lease_id.to_string()))?;
        if !token::tokens_match(token, &lease.token) {
            return Err(Error::WrongToken(lease_id.to_string()));
        }
        Ok(lease)
    }

    /// Why `lease` is no longer live, if it is not; a lease past its expiry is reclaimed here
    /// rather than waiting for the pool's next round.
    async fn lost(&self, lease: &LeaseRow, now: Millis) -> Result<Option<Error>> {
        match (lease.end_reason, lease.ended_at) {
            (Some(EndReason::Expired), _) => Ok(Some(Error::LeaseLost {
                reason: EndReason::Expired,
                at: lease.expires_at,
            })),
            (Some(reason), Some(at)) => Ok(Some(Error::LeaseLost { reason, at })),
            _ if lease.expires_at <= now => {
                self.expire_due().await?;
                Ok(Some(Error::LeaseLost {
                    reason: EndReason::Expired,
                    at: lease.expires_at,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Collects the lease's artifacts, within the profile's bound. The lease stays live
    /// meanwhile (its expiry is pushed past the bound), so the pool cannot recycle the cluster
    /// underneath; a second release of it waits its turn by being refused.
    async fn collect(&self, lease: &LeaseRow, flush: &[String]) -> Result<Collected> {
        let started = Instant::now();
        let profile = self.profile(&lease.profile)?;
        let Some(settings) = &profile.artifacts else {
            return Err(Error::NoArtifacts {
                profile: profile.name.clone(),
            });
        };
        artifacts::check_flush(profile, flush)?;
        let _collecting = {
            let mut set = self
                .collecting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !set.insert(lease.id.clone()) {
                return Err(Error::ReleaseUnderWay(lease.id.clone()));
            }
            Collecting {
                set: &self.collecting,
                lease_id: lease.id.clone(),
            }
        };
        let now = time::now();
        let until = lease
            .expires_at
            .max(now.saturating_add(millis(settings.collect_timeout + COLLECT_SLACK)));
        if !self.store.renew(&lease.id, until, now).await? {
            return Err(self.ended_meanwhile(&lease.id, &lease.token).await?);
        }
        let build = self.store.build_steps(&lease.cluster_id).await?;
        let overlay = self.store.overlay_steps(&lease.cluster_id).await?;
        let record = record::lease_json(lease, &build, &overlay, now);
        let mut report = Collected::new(self.overlays.artifacts_dir(&lease.cluster_name));
        let work = self
            .overlays
            .collect(lease, profile, flush, &record, &mut report);
        if tokio::time::timeout(settings.collect_timeout, work)
            .await
            .is_err()
        {
            report.problems.push(format!(
                "collecting stopped at the profile's collect_timeout of {}; what was written by then is kept",
                humantime::format_duration(settings.collect_timeout)
            ));
        }
        report.took = started.elapsed();
        info!(
            lease_id = %lease.id,
            cluster = %lease.cluster_name,
            pods = report.pods,
            logs = report.logs,
            problems = report.problems.len(),
            "artifacts collected"
        );
        Ok(report)
    }

    /// Why a lease found live a moment ago refused a write: it ended between the read and
    /// the write.
    async fn ended_meanwhile(&self, lease_id: &str, token: &str) -> Result<Error> {
        let lease = self.owned_lease(lease_id, token).await?;
        Ok(self
            .lost(&lease, time::now())
            .await?
            .unwrap_or(Error::LeaseLost {
                reason: EndReason::Expired,
                at: lease.expires_at,
            }))
    }

    /// Ends every lease past its expiry; their clusters go to recycling.
    pub async fn expire_due(&self) -> Result<usize> {
        let expired = self.store.expire_due(time::now()).await?;
        for profile in &expired {
            info!(profile, "lease expired; its cluster is recycled");
        }
        if !expired.is_empty() {
            self.pool_wake.notify_one();
        }
        Ok(expired.len())
    }
}

impl<V: PoolView, O: Overlays> LeaseApi for Leases<V, O> {
    async fn acquire_watched(&self, ask: Ask, watchers: Watchers) -> Result<Grant> {
        let started = Instant::now();
        let profile = self.profile(&ask.profile)?.clone();
        let terms = Terms {
            holder: ask.holder,
            ttl: Self::check_ttl(&profile, ask.ttl)?,
            request_id: ask.request_id,
        };
        let overrides = self.find_overrides(&profile, &ask.images, ask.wait).await?;
        if let Some(request_id) = &terms.request_id
            && let Some(lease) = self
                .store
                .lease_by_request(&profile.name, &terms.holder, request_id)
                .await?
        {
            // A retry that comes after its lease ended must not look like a live grant.
            if let Some(lost) = self.lost(&lease, time::now()).await? {
                return Err(lost);
            }
            // The first call put its images in (or failed, and left no lease).
            let not_ours = Unanswered::new(lease.id.clone(), self.take_back()).disarm();
            let mut grant = Grant::new(lease, not_ours);
            if profile.artifacts.is_some() {
                // Not emptied: the first call's caller may be writing there already.
                let dir = self.overlays.artifacts_dir(&grant.lease().cluster_name);
                grant = grant.with_artifacts(dir);
            }
            return self.with_build(grant).await;
        }
        let wait = ask.wait.unwrap_or(profile.pool.acquire_wait);
        let hand_over = |grant| {
            let steps = watchers.steps.as_ref();
            self.hand_over(grant, &profile, &overrides, (started, wait), steps)
        };
        let queue = self.queue(&profile.name)?;
        let mut place = {
            let _serial = queue.grant_lock.lock().await;
            // Nobody ahead: take a ready cluster at once if there is one.
            if queue.is_empty()
                && let Some(grant) = self.grant_now(&profile.name, &terms).await?
            {
                drop(_serial);
                return hand_over(grant).await;
            }
            // Degraded fails fast only when nothing is ready: a ready cluster never hangs.
            if let Some(reason) = self.pool.degraded_reason(&profile.name) {
                return Err(Error::Degraded {
                    profile: profile.name.clone(),
                    reason,
                });
            }
            if wait.is_zero() {
                return Err(self.no_cluster(&profile, wait).await?);
            }
            queue.push(terms)
        };
        self.pool_wake.notify_one();
        if let Some(queued) = &watchers.queued {
            queued.send_replace(Some(place.id));
        }
        let outcome = tokio::select! {
            outcome = place.served() => outcome,
            () = tokio::time::sleep_until(started + wait) => place.leave(),
            () = self.shutdown.cancelled() => {
                if let Some(Ok(grant)) = place.leave() {
                    grant.take_back().await;
                }
                return Err(Error::ShuttingDown);
            }
        };
        match outcome {
            Some(Ok(grant)) => hand_over(grant).await,
            Some(Err(reason)) => Err(Error::Degraded {
                profile: profile.name.clone(),
                reason,
            }),
            None => Err(self.no_cluster(&profile, wait).await?),
        }
    }

    async fn progress(&self, profile: &str, waiter: u64) -> Result<Option<Progress>> {
        let queue = self.queue(profile)?;
        let Some((position, waiting)) = queue.position(waiter) else {
            return Ok(None);
        };
        let now = time::now();
        // Builds finish in about the order they started: the position-th serves this caller.
        let build = self
            .store
            .building_progress(profile)
            .await?
            .into_iter()
            .nth(position - 1)
            .map(|row| BuildProgress {
                elapsed: time::duration_between(row.created_at, now),
                step: match (row.phase, row.step, row.step_started_at) {
                    (Some(phase), Some(step), Some(at)) => {
                        Some((phase, step, time::duration_between(at, now)))
                    }
                    _ => None,
                },
                cluster: row.name,
            });
        Ok(Some(Progress {
            position: u32::try_from(position).unwrap_or(u32::MAX),
            waiting: u32::try_from(waiting).unwrap_or(u32::MAX),
            build,
        }))
    }

    async fn renew(&self, lease_id: &str, token: &str, ttl: Option<Duration>) -> Result<Millis> {
        let lease = self.owned_lease(lease_id, token).await?;
        let now = time::now();
        if let Some(lost) = self.lost(&lease, now).await? {
            return Err(lost);
        }
        let ttl = Self::check_ttl(self.profile(&lease.profile)?, ttl)?;
        let expires_at = now.saturating_add(millis(ttl));
        if self.store.renew(lease_id, expires_at, now).await? {
            return Ok(expires_at);
        }
        Err(self.ended_meanwhile(lease_id, token).await?)
    }

    async fn release(
        &self,
        lease_id: &str,
        token: &str,
        collect: Option<Vec<String>>,
    ) -> Result<Option<Collected>> {
        let mut collected = None;
        // A second round only when the lease ended between the read and the write.
        loop {
            let lease = self.owned_lease(lease_id, token).await?;
            if lease.end_reason == Some(EndReason::Released) {
                return Ok(collected);
            }
            if let Some(lost) = self.lost(&lease, time::now()).await? {
                return Err(lost);
            }
            if let Some(flush) = &collect
                && collected.is_none()
            {
                collected = Some(self.collect(&lease, flush).await?);
                continue;
            }
            let now = time::now();
            if let Some(cluster_id) = self
                .store
                .end_lease(lease_id, EndReason::Released, now)
                .await?
            {
                info!(lease_id, cluster = %lease.cluster_name, cluster_id, "lease released");
                self.pool_wake.notify_one();
                return Ok(collected);
            }
        }
    }

    async fn status(&self, profile: Option<&str>) -> Result<Vec<ProfileReport>> {
        let profiles: Vec<&Arc<Profile>> = match profile {
            Some(name) => vec![self.profile(name)?],
            None => self.config.profiles.values().collect(),
        };
        let mut reports = Vec::with_capacity(profiles.len());
        for profile in profiles {
            reports.push(
                report::profile_report(
                    &self.store,
                    profile,
                    self.waiting(&profile.name),
                    self.pool.as_ref(),
                )
                .await?,
            );
        }
        Ok(reports)
    }
}
