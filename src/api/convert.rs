//! Domain → proto, at the edge.
use std::time::Duration;

use infrad_client::proto;

use crate::{
    leases::{Grant, Overlaid, ProfileReport},
    store::{ClusterState, FailureRow, StepRow},
    time::Millis,
    time::{self, duration_between},
    timings::{self, PhaseStats},
};

pub(super) fn timestamp(ms: Millis) -> prost_types::Timestamp {
    time::to_system_time(ms).into()
}

pub(super) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).unwrap_or_default()
}

pub(super) fn lease(grant: &Grant) -> proto::Lease {
    let lease = grant.lease().clone();
    let overlay = grant.overlay();
    proto::Lease {
        images: images(lease.cluster_images.as_deref(), overlay),
        lease_id: lease.id,
        token: lease.token,
        profile: lease.profile,
        cluster: lease.cluster_name,
        kubeconfig: lease.kubeconfig.unwrap_or_default(),
        expires_at: Some(timestamp(lease.expires_at)),
        holder: lease.holder,
        acquired_at: Some(timestamp(lease.acquired_at)),
        build: Some(run_timings(grant.build())),
        overlay: overlay.map(|o| run_timings(&o.steps)),
        artifacts_dir: grant
            .artifacts_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    }
}

fn run_timings(steps: &[StepRow]) -> proto::BuildTimings {
    proto::BuildTimings {
        total: Some(duration(timings::run_total(steps))),
        phases: timings::phases_of_run(steps)
            .into_iter()
            .map(|phase| proto::PhaseTiming {
                phase: phase.phase,
                duration: Some(duration(phase.duration)),
                steps: phase
                    .steps
                    .into_iter()
                    .map(|(step, took)| proto::StepTiming {
                        step,
                        duration: Some(duration(took)),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn collected(c: crate::artifacts::Collected) -> proto::Collected {
    proto::Collected {
        artifacts_dir: c.dir.display().to_string(),
        pods: c.pods,
        logs: c.logs,
        problems: c.problems,
        took: Some(duration(c.took)),
    }
}

/// The cluster's images as built (`name@id,…`), each replaced by the caller's if overridden.
fn images(built: Option<&str>, overlay: Option<&Overlaid>) -> Vec<proto::LeaseImage> {
    let overrides = overlay.map_or(&[][..], |o| &o.images[..]);
    built
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| part.rsplit_once('@'))
        .map(
            |(name, id)| match overrides.iter().find(|o| o.name == name) {
                Some(o) => proto::LeaseImage {
                    name: o.name.clone(),
                    image_id: o.image_id.clone(),
                    reference: o.reference.clone(),
                    tag: o.tag.clone(),
                },
                None => proto::LeaseImage {
                    name: name.to_string(),
                    image_id: id.to_string(),
                    reference: String::new(),
                    tag: name.to_string(),
                },
            },
        )
        .collect()
}

fn cluster_state(state: ClusterState) -> proto::ClusterState {
    match state {
        ClusterState::Building => proto::ClusterState::Building,
        ClusterState::Ready => proto::ClusterState::Ready,
        ClusterState::Leased => proto::ClusterState::Leased,
        ClusterState::Recycling => proto::ClusterState::Recycling,
        // Status lists live clusters only; a failed build is reported as the profile's failure.
        ClusterState::Failed | ClusterState::Deleted | ClusterState::Gone => {
            proto::ClusterState::Unspecified
        }
    }
}

fn phase_stats(stats: PhaseStats) -> proto::PhaseStats {
    proto::PhaseStats {
        phase: stats.phase,
        runs: stats.runs,
        p50: Some(duration(stats.p50)),
        p95: Some(duration(stats.p95)),
        last: Some(duration(stats.last)),
    }
}

fn failure(row: FailureRow) -> proto::BuildFailure {
    proto::BuildFailure {
        phase: row.failure.phase,
        step: row.failure.step,
        error: row.failure.error,
        exit_code: row.failure.exit_code,
        at: Some(timestamp(row.at)),
        consecutive_failures: row.consecutive,
    }
}

pub(super) fn profile_status(report: ProfileReport) -> proto::ProfileStatus {
    let now = time::now();
    proto::ProfileStatus {
        profile: report.profile,
        counts: Some(proto::PoolCounts {
            ready: report.counts.ready,
            leased: report.counts.leased,
            building: report.counts.building,
            recycling: report.counts.recycling,
            failed: report.failure.as_ref().map_or(0, |f| f.consecutive),
            waiting: report.waiting,
        }),
        clusters: report
            .clusters
            .into_iter()
            .map(|c| proto::ClusterInfo {
                name: c.cluster.name,
                state: cluster_state(c.cluster.state).into(),
                created_at: Some(timestamp(c.cluster.created_at)),
                age: Some(duration(duration_between(c.cluster.created_at, now))),
                holder: c.holder.unwrap_or_default(),
                stale: c.stale,
            })
            .collect(),
        leases: report
            .leases
            .into_iter()
            .map(|l| proto::LeaseInfo {
                lease_id: l.id,
                holder: l.holder,
                cluster: l.cluster_name,
                acquired_at: Some(timestamp(l.acquired_at)),
                expires_at: Some(timestamp(l.expires_at)),
            })
            .collect(),
        phase_stats: report.phase_stats.into_iter().map(phase_stats).collect(),
        degraded: report.degraded.is_some(),
        degraded_reason: report.degraded.unwrap_or_default(),
        last_failure: report.failure.map(failure),
        warm: report.warm,
        max: report.max,
    }
}
