//! The lease domain: grants, the FIFO wait, renewal, release, expiry and the degraded state.
//! It decides; the store persists; the API only validates and maps errors.
mod queue;
mod report;
pub mod token;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use queue::Wanted;
use queue::{Granted, Outcome, Queue};
pub use report::{ClusterReport, ProfileReport, is_stale};

use crate::{
    Error, Result,
    config::{Config, Profile},
    store::{EndReason, LeaseRow, NewLease, StepRow, Store},
    time::{self, Millis, millis},
};

/// What Acquire asks for, validated by the API.
#[derive(Debug, Clone)]
pub struct AcquireParams {
    pub profile: String,
    pub holder: String,
    /// `None`: the profile's default.
    pub ttl: Option<Duration>,
    /// `None`: the profile's default; zero answers at once.
    pub wait: Option<Duration>,
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

/// A granted lease with the timings of the build that made its cluster.
#[derive(Debug, Clone)]
pub struct Grant {
    pub lease: LeaseRow,
    pub build: Vec<StepRow>,
}

/// What the API needs of the lease domain (implemented by [`Leases`]).
pub trait LeaseApi: Send + Sync + 'static {
    fn acquire(&self, params: AcquireParams) -> impl Future<Output = Result<Grant>> + Send {
        async move {
            let (queued, _) = watch::channel(None);
            self.acquire_watched(params, &queued).await
        }
    }
    /// Acquire, publishing the caller's waiter id on `queued` if it has to wait.
    fn acquire_watched(
        &self,
        params: AcquireParams,
        queued: &watch::Sender<Option<u64>>,
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
    fn release(&self, lease_id: &str, token: &str) -> impl Future<Output = Result<()>> + Send;
    fn status(
        &self,
        profile: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ProfileReport>>> + Send;
    /// Takes back a grant whose caller is known never to have received it.
    fn abandon(&self, lease_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Asks for the images of one profile (or all) to be rebuilt; returns the profiles.
    fn refresh(&self, profile: Option<&str>) -> Result<Vec<String>>;
}

pub struct Leases {
    store: Store,
    config: Arc<Config>,
    queues: HashMap<String, Arc<Queue>>,
    /// Profiles whose Acquire fails fast, with the reason.
    degraded: RwLock<HashMap<String, String>>,
    /// Per profile, the images clusters are built from now; others are stale.
    current_images: RwLock<HashMap<String, String>>,
    /// Profiles whose images are to be rebuilt (`infrad refresh`).
    refresh_requests: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Wakes the pool: a lease ended or demand changed.
    pool_wake: Arc<Notify>,
    shutdown: CancellationToken,
}

impl Leases {
    pub fn new(
        store: Store,
        config: Arc<Config>,
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
            degraded: RwLock::default(),
            current_images: RwLock::default(),
            refresh_requests: std::sync::Mutex::default(),
            pool_wake,
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

    pub fn degraded_reason(&self, profile: &str) -> Option<String> {
        let degraded = self.degraded.read().unwrap_or_else(|e| e.into_inner());
        degraded.get(profile).cloned()
    }

    /// Marks a profile degraded (its waiters fail at once) or healthy again.
    pub fn set_degraded(&self, profile: &str, reason: Option<String>) {
        let mut degraded = self.degraded.write().unwrap_or_else(|e| e.into_inner());
        match reason {
            Some(reason) => {
                if let Some(queue) = self.queues.get(profile) {
                    for waiter in queue.drain() {
                        let _ = waiter.tx.send(Err(reason.clone()));
                    }
                }
                if degraded
                    .insert(profile.to_string(), reason.clone())
                    .as_ref()
                    != Some(&reason)
                {
                    warn!(profile, reason, "profile degraded");
                }
            }
            None => {
                if degraded.remove(profile).is_some() {
                    info!(profile, "profile is healthy again");
                }
            }
        }
    }

    /// The images a fresh cluster of `profile` is built from, once known.
    pub fn current_images(&self, profile: &str) -> Option<String> {
        let current = self
            .current_images
            .read()
            .unwrap_or_else(|e| e.into_inner());
        current.get(profile).cloned()
    }

    pub fn set_current_images(&self, profile: &str, images: Option<String>) {
        let mut current = self
            .current_images
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match images {
            Some(images) => current.insert(profile.to_string(), images),
            None => current.remove(profile),
        };
    }

    /// Profiles whose refresh was asked for since the last call.
    pub fn take_refresh_requests(&self) -> Vec<String> {
        let mut requests = self
            .refresh_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *requests).into_iter().collect()
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

    async fn grant_now(&self, profile: &str, wanted: &Wanted) -> Result<Option<Granted>> {
        let (id, token) = (token::new_lease_id(), token::new_token());
        let fresh = self.current_images(profile);
        let lease = NewLease {
            fresh_images: fresh.as_deref(),
            id: &id,
            token: &token,
            profile,
            holder: &wanted.holder,
            request_id: wanted.request_id.as_deref(),
            ttl_ms: millis(wanted.ttl),
        };
        let granted = self.store.grant(&lease, time::now()).await?;
        Ok(granted.map(|lease| Granted {
            fresh: lease.id == id,
            lease,
        }))
    }

    /// A new grant on its way to the caller: taken back if the call is dropped (or fails)
    /// before it is handed over.
    async fn hand_over(&self, granted: Granted) -> Result<Grant> {
        let lease = granted.lease;
        let mut undo = UndoGrant(
            granted
                .fresh
                .then(|| (self.store.clone(), lease.id.clone())),
        );
        let grant = self.with_build(lease).await?;
        undo.0 = None;
        Ok(grant)
    }

    async fn with_build(&self, lease: LeaseRow) -> Result<Grant> {
        let build = self.store.build_steps(&lease.cluster_id).await?;
        Ok(Grant { lease, build })
    }

    /// Serves waiting callers of `profile` from its ready clusters, first come first served.
    pub async fn dispatch(&self, profile: &str) -> Result<()> {
        let queue = self.queue(profile)?;
        let _serial = queue.grant_lock.lock().await;
        while let Some(waiter) = queue.pop_front() {
            let granted = self.grant_now(profile, &waiter.wanted).await;
            let Ok(Some(granted)) = granted else {
                // Nothing ready (or the store failed): the waiter keeps its place.
                queue.push_front(waiter);
                return granted.map(drop);
            };
            if let Err(Ok(granted)) = waiter.tx.send(Ok(granted))
                && granted.fresh
            {
                // The caller left between the pop and the grant.
                self.store
                    .undo_grant(&granted.lease.id, time::now())
                    .await?;
            }
        }
        Ok(())
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

/// Hands back a grant its caller never took: the caller gave up (deadline, disconnect) while
/// the grant was on its way, and no lease may be left behind.
struct PendingGrant {
    rx: Option<oneshot::Receiver<Outcome>>,
    queue: Arc<Queue>,
    id: u64,
    store: Store,
}

impl PendingGrant {
    /// Leaves the queue; returns a grant that arrived meanwhile, if any.
    fn leave(&mut self) -> Option<Outcome> {
        self.queue.remove(self.id);
        let mut rx = self.rx.take()?;
        rx.close();
        rx.try_recv().ok()
    }
}

impl Drop for PendingGrant {
    fn drop(&mut self) {
        if let Some(Ok(granted)) = self.leave() {
            drop(UndoGrant(
                granted
                    .fresh
                    .then(|| (self.store.clone(), granted.lease.id)),
            ));
        }
    }
}

/// Takes a grant back when dropped while armed (`Some`).
struct UndoGrant(Option<(Store, String)>);

impl Drop for UndoGrant {
    fn drop(&mut self) {
        if let Some((store, lease_id)) = self.0.take() {
            debug!(lease_id, "caller left; taking back its grant");
            tokio::spawn(async move {
                if let Err(e) = store.undo_grant(&lease_id, time::now()).await {
                    warn!(error = %e, lease_id, "could not take back an abandoned grant");
                }
            });
        }
    }
}

impl LeaseApi for Leases {
    async fn acquire_watched(
        &self,
        params: AcquireParams,
        queued: &watch::Sender<Option<u64>>,
    ) -> Result<Grant> {
        let profile = self.profile(&params.profile)?.clone();
        let wanted = Wanted {
            holder: params.holder,
            ttl: Self::check_ttl(&profile, params.ttl)?,
            request_id: params.request_id,
        };
        if let Some(request_id) = &wanted.request_id
            && let Some(lease) = self
                .store
                .lease_by_request(&profile.name, &wanted.holder, request_id)
                .await?
        {
            // A retry that comes after its lease ended must not look like a live grant.
            if let Some(lost) = self.lost(&lease, time::now()).await? {
                return Err(lost);
            }
            return self.with_build(lease).await;
        }
        let wait = params.wait.unwrap_or(profile.pool.acquire_wait);
        let queue = self.queue(&profile.name)?.clone();
        let (id, rx) = {
            let _serial = queue.grant_lock.lock().await;
            // Nobody ahead: take a ready cluster at once if there is one.
            if queue.is_empty()
                && let Some(granted) = self.grant_now(&profile.name, &wanted).await?
            {
                return self.hand_over(granted).await;
            }
            // Degraded fails fast only when nothing is ready: a ready cluster never hangs.
            if let Some(reason) = self.degraded_reason(&profile.name) {
                return Err(Error::Degraded {
                    profile: profile.name.clone(),
                    reason,
                });
            }
            if wait.is_zero() {
                return Err(self.no_cluster(&profile, wait).await?);
            }
            queue.push(wanted)
        };
        self.pool_wake.notify_one();
        queued.send_replace(Some(id));
        let mut pending = PendingGrant {
            rx: Some(rx),
            queue,
            id,
            store: self.store.clone(),
        };
        let rx = pending.rx.as_mut().expect("receiver is set");
        let outcome = tokio::select! {
            outcome = rx => outcome.ok(),
            () = tokio::time::sleep(wait) => pending.leave(),
            () = self.shutdown.cancelled() => {
                if let Some(Ok(granted)) = pending.leave()
                    && granted.fresh
                {
                    self.store.undo_grant(&granted.lease.id, time::now()).await?;
                }
                return Err(Error::ShuttingDown);
            }
        };
        pending.rx = None;
        match outcome {
            Some(Ok(granted)) => self.hand_over(granted).await,
            Some(Err(reason)) => Err(Error::Degraded {
                profile: profile.name.clone(),
                reason,
            }),
            None => Err(self.no_cluster(&profile, wait).await?),
        }
    }

    async fn progress(&self, profile: &str, waiter: u64) -> Result<Option<Progress>> {
        let queue = self.queue(profile)?;
        let Some((position, waiting)) = queue.place(waiter) else {
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
        // It ended between the read and the write.
        let lease = self.owned_lease(lease_id, token).await?;
        Err(self
            .lost(&lease, time::now())
            .await?
            .unwrap_or(Error::LeaseLost {
                reason: EndReason::Expired,
                at: lease.expires_at,
            }))
    }

    async fn release(&self, lease_id: &str, token: &str) -> Result<()> {
        // A second round only when the lease ended between the read and the write.
        loop {
            let lease = self.owned_lease(lease_id, token).await?;
            if lease.end_reason == Some(EndReason::Released) {
                return Ok(());
            }
            if let Some(lost) = self.lost(&lease, time::now()).await? {
                return Err(lost);
            }
            let now = time::now();
            if let Some(cluster_id) = self
                .store
                .end_lease(lease_id, EndReason::Released, now)
                .await?
            {
                info!(lease_id, cluster = %lease.cluster_name, cluster_id, "lease released");
                self.pool_wake.notify_one();
                return Ok(());
            }
        }
    }

    async fn abandon(&self, lease_id: &str) -> Result<()> {
        info!(
            lease_id,
            "caller left before receiving its lease; taking it back"
        );
        self.store.undo_grant(lease_id, time::now()).await?;
        self.pool_wake.notify_one();
        Ok(())
    }

    fn refresh(&self, profile: Option<&str>) -> Result<Vec<String>> {
        let profiles: Vec<String> = match profile {
            Some(name) => vec![self.profile(name)?.name.clone()],
            None => self.config.profiles.keys().cloned().collect(),
        };
        self.refresh_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(profiles.iter().cloned());
        self.pool_wake.notify_one();
        Ok(profiles)
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
                    report::Live {
                        waiting: self.waiting(&profile.name),
                        degraded: self.degraded_reason(&profile.name),
                        current_images: self.current_images(&profile.name),
                    },
                )
                .await?,
            );
        }
        Ok(reports)
    }
}
