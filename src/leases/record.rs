//! `lease.json`: what a collected artifacts directory says about the lease it came from — the
//! lease (never its token or kubeconfig), the build that made its cluster and the overlay that
//! put the caller's images in, step by step.
use serde::Serialize;

use crate::{
    store::{LeaseRow, RunOutcome, StepRow},
    time::{Millis, duration_between, millis, to_system_time},
    timings,
};

#[derive(Serialize)]
struct Record<'a> {
    lease_id: &'a str,
    profile: &'a str,
    cluster: &'a str,
    holder: &'a str,
    request_id: Option<&'a str>,
    acquired_at: String,
    expires_at: String,
    collected_at: String,
    /// `name@image-id` of each image the cluster was built from.
    built_from: Vec<&'a str>,
    build: Run<'a>,
    overlay: Option<Run<'a>>,
}

#[derive(Serialize)]
struct Run<'a> {
    total_ms: i64,
    phases: Vec<Phase>,
    steps: Vec<Step<'a>>,
}

#[derive(Serialize)]
struct Phase {
    phase: String,
    ms: i64,
}

#[derive(Serialize)]
struct Step<'a> {
    phase: &'a str,
    step: &'a str,
    started_at: String,
    ms: Option<i64>,
    outcome: RunOutcome,
}

/// Milliseconds: step times are compared with each other.
fn rfc3339(ms: Millis) -> String {
    humantime::format_rfc3339_millis(to_system_time(ms)).to_string()
}

fn run(steps: &[StepRow]) -> Run<'_> {
    Run {
        total_ms: millis(timings::run_total(steps)),
        phases: timings::phases_of_run(steps)
            .into_iter()
            .map(|p| Phase {
                phase: p.phase,
                ms: millis(p.duration),
            })
            .collect(),
        steps: steps
            .iter()
            .map(|s| Step {
                phase: &s.phase,
                step: &s.step,
                started_at: rfc3339(s.started_at),
                ms: s
                    .ended_at
                    .map(|end| millis(duration_between(s.started_at, end))),
                outcome: s.outcome,
            })
            .collect(),
    }
}

/// The record of `lease`, pretty-printed; `overlay` counts only if it ran for this lease.
pub(super) fn lease_json(
    lease: &LeaseRow,
    build: &[StepRow],
    overlay: &[StepRow],
    now: Millis,
) -> Vec<u8> {
    let this_lease = overlay
        .first()
        .is_some_and(|s| s.started_at >= lease.acquired_at);
    let record = Record {
        lease_id: &lease.id,
        profile: &lease.profile,
        cluster: &lease.cluster_name,
        holder: &lease.holder,
        request_id: lease.request_id.as_deref(),
        acquired_at: rfc3339(lease.acquired_at),
        expires_at: rfc3339(lease.expires_at),
        collected_at: rfc3339(now),
        built_from: lease
            .cluster_images
            .as_deref()
            .map(|i| i.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
        build: run(build),
        overlay: this_lease.then(|| run(overlay)),
    };
    let mut json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    json.push(b'\n');
    json
}
