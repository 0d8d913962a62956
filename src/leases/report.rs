//! What Status shows of one profile.
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

/// What only the running daemon knows of a profile.
pub(super) struct Live {
    pub waiting: usize,
    pub degraded: Option<String>,
    pub current_images: Option<String>,
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
    live: Live,
) -> Result<ProfileReport> {
    let leases = store.live_leases(Some(&profile.name)).await?;
    let clusters = store
        .clusters(Some(&profile.name), &ClusterState::LIVE)
        .await?
        .into_iter()
        .map(|cluster| ClusterReport {
            stale: is_stale(&cluster, live.current_images.as_deref()),
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
        waiting: u32::try_from(live.waiting).unwrap_or(u32::MAX),
        degraded: live.degraded,
        failure: store.failure_streak(&profile.name).await?,
        clusters,
        leases,
        phase_stats: timings::phase_stats(&store.recent_steps(&profile.name, STATS_RUNS).await?),
    })
}

/// A ready or leased cluster built from other images than the current ones.
pub fn is_stale(cluster: &ClusterRow, current_images: Option<&str>) -> bool {
    match (current_images, &cluster.images) {
        (Some(current), Some(built)) => cluster.ready_at.is_some() && built != current,
        _ => false,
    }
}
