//! What Status shows of one profile.
use super::PoolView;
use crate::{
    Result,
    config::Profile,
    store::{ClusterRow, ClusterState, FailureRow, LeaseRow, StateCounts, Store},
    timings::{self, PhaseStats},
};

/// How many recent successful runs the timing statistics cover.
const STATS_RUNS: u32 = 20;

#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub cluster: ClusterRow,
    /// Holder of its live lease, when leased.
    pub holder: Option<String>,
    /// Built from images older than the profile's current ones.
    pub stale: bool,
}

#[derive(Debug, Clone)]
pub struct ProfileReport {
    pub profile: String,
    pub warm: u32,
    pub max: u32,
    pub counts: StateCounts,
    pub waiting: u32,
    /// Why Acquire fails fast, when it does.
    pub degraded: Option<String>,
    /// The current streak of failed builds, if the newest build failed.
    pub failure: Option<FailureRow>,
    pub clusters: Vec<ClusterReport>,
    pub leases: Vec<LeaseRow>,
    pub phase_stats: Vec<PhaseStats>,
}

pub(super) async fn profile_report(
    store: &Store,
    profile: &Profile,
    waiting: usize,
    pool: &impl PoolView,
) -> Result<ProfileReport> {
    let leases = store.live_leases(Some(&profile.name)).await?;
    let clusters = store
        .clusters(Some(&profile.name), &ClusterState::LIVE)
        .await?
        .into_iter()
        .map(|cluster| ClusterReport {
            stale: pool.is_stale(&cluster),
            holder: leases
                .iter()
                .find(|l| l.cluster_id == cluster.id)
                .map(|l| l.holder.clone()),
            cluster,
        })
        .collect();
    Ok(ProfileReport {
        profile: profile.name.clone(),
        warm: profile.pool.warm,
        max: profile.pool.max,
        counts: store.counts(&profile.name).await?,
        waiting: u32::try_from(waiting).unwrap_or(u32::MAX),
        degraded: pool.degraded_reason(&profile.name),
        failure: store.failure_streak(&profile.name).await?,
        clusters,
        leases,
        phase_stats: timings::phase_stats(&store.recent_steps(&profile.name, STATS_RUNS).await?),
    })
}
