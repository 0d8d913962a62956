//! What the pool knows beyond the store, in one place behind one lock: degraded profiles,
//! current images, asked-for refreshes, backoff, missing tools and the clusters it works on.
//! The lease domain reads it through [`PoolView`]; the API asks for refreshes through
//! [`PoolApi`].
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{Error, Result, config::Config, leases::PoolView, store::ClusterRow};

/// The pool commands the API offers.
pub trait PoolApi: Send + Sync + 'static {
    /// Asks for the images of one profile (or all) to be rebuilt; returns the profiles.
    fn refresh(&self, profile: Option<&str>) -> Result<Vec<String>>;
}

pub struct PoolState {
    facts: Mutex<Facts>,
    config: Arc<Config>,
    wake: Arc<Notify>,
}

struct Facts {
    /// Profiles whose Acquire fails fast, with the reason.
    degraded: HashMap<String, String>,
    /// Per profile, the images clusters are built from now; others are stale.
    current_images: HashMap<String, String>,
    /// Profiles whose images are to be rebuilt (`infrad refresh`).
    refresh_requests: BTreeSet<String>,
    /// When images were last refreshed on the configured interval.
    last_refresh: Instant,
    /// Per profile: no new build before this instant (backoff after failures).
    not_before: HashMap<String, Instant>,
    /// When the tools were last found missing; no builds start meanwhile.
    tools_missing: Option<Instant>,
    /// Clusters (and profile refreshes) with a task at work on them.
    busy: HashSet<String>,
}

impl PoolState {
    pub fn new(config: Arc<Config>, wake: Arc<Notify>) -> Self {
        Self {
            facts: Mutex::new(Facts {
                degraded: HashMap::new(),
                current_images: HashMap::new(),
                refresh_requests: BTreeSet::new(),
                last_refresh: Instant::now(),
                not_before: HashMap::new(),
                tools_missing: None,
                busy: HashSet::new(),
            }),
            config,
            wake,
        }
    }

    fn facts(&self) -> MutexGuard<'_, Facts> {
        // Every update is a single assignment: a panic elsewhere leaves the facts consistent.
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a profile degraded (with why) or healthy again.
    pub(super) fn set_degraded(&self, profile: &str, reason: Option<String>) {
        let mut facts = self.facts();
        match reason {
            Some(reason) => {
                if facts.degraded.get(profile) != Some(&reason) {
                    warn!(profile, reason, "profile degraded");
                    facts.degraded.insert(profile.to_string(), reason);
                }
            }
            None => {
                if facts.degraded.remove(profile).is_some() {
                    info!(profile, "profile is healthy again");
                }
            }
        }
    }

    pub(super) fn set_current_images(&self, profile: &str, images: Option<String>) {
        let mut facts = self.facts();
        match images {
            Some(images) => facts.current_images.insert(profile.to_string(), images),
            None => facts.current_images.remove(profile),
        };
    }

    /// Profiles whose images are to be rebuilt now: asked for, or due by `interval`.
    pub(super) fn take_refresh_due(&self, interval: Option<Duration>) -> Vec<String> {
        let mut facts = self.facts();
        let mut due: Vec<String> = std::mem::take(&mut facts.refresh_requests)
            .into_iter()
            .collect();
        if let Some(interval) = interval
            && facts.last_refresh.elapsed() >= interval
        {
            facts.last_refresh = Instant::now();
            due.extend(self.config.profiles.keys().cloned());
        }
        due
    }

    /// Marks a cluster (or a profile's refresh) as worked on; false if a task already has it.
    pub(super) fn claim(&self, key: &str) -> bool {
        self.facts().busy.insert(key.to_string())
    }

    pub(super) fn unclaim(&self, key: &str) {
        self.facts().busy.remove(key);
    }

    pub(super) fn backing_off(&self, profile: &str) -> bool {
        self.facts()
            .not_before
            .get(profile)
            .is_some_and(|t| Instant::now() < *t)
    }

    /// No build of `profile` starts for `delay`; `None` lifts the backoff.
    pub(super) fn back_off(&self, profile: &str, delay: Option<Duration>) {
        let mut facts = self.facts();
        match delay {
            Some(delay) => facts
                .not_before
                .insert(profile.to_string(), Instant::now() + delay),
            None => facts.not_before.remove(profile),
        };
    }

    /// When the tools were last found missing, while they are.
    pub(super) fn tools_missing_since(&self) -> Option<Instant> {
        self.facts().tools_missing
    }

    pub(super) fn set_tools_missing(&self, missing: bool) {
        self.facts().tools_missing = missing.then(Instant::now);
    }
}

impl PoolView for PoolState {
    fn degraded_reason(&self, profile: &str) -> Option<String> {
        self.facts().degraded.get(profile).cloned()
    }

    fn current_images(&self, profile: &str) -> Option<String> {
        self.facts().current_images.get(profile).cloned()
    }

    fn is_stale(&self, cluster: &ClusterRow) -> bool {
        let current = self.current_images(&cluster.profile);
        match (current, &cluster.images) {
            (Some(current), Some(built)) => cluster.ready_at.is_some() && *built != current,
            _ => false,
        }
    }
}

impl PoolApi for PoolState {
    fn refresh(&self, profile: Option<&str>) -> Result<Vec<String>> {
        let profiles: Vec<String> = match profile {
            Some(name) => vec![
                self.config
                    .profile(name)
                    .ok_or_else(|| Error::UnknownProfile(name.to_string()))?
                    .name
                    .clone(),
            ],
            None => self.config.profiles.keys().cloned().collect(),
        };
        self.facts()
            .refresh_requests
            .extend(profiles.iter().cloned());
        self.wake.notify_one();
        Ok(profiles)
    }
}
