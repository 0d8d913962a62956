//! `infrad status`: a readable table, or JSON with `--json`.
use std::{
    fmt::Write,
    time::{Duration, SystemTime},
};

use infrad_client::{Client, proto};
use serde_json::{Value, json};

use super::{RefreshArgs, StatusArgs};
use crate::store::RunFailure;

pub async fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.addr).await?;
    let profiles = client.refresh(args.profile.as_deref()).await?;
    println!("rebuilding the images of: {}", profiles.join(", "));
    Ok(())
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.addr).await?;
    let status = client.status(args.profile.as_deref()).await?;
    if args.json {
        let profiles: Vec<Value> = status.profiles.iter().map(profile_json).collect();
        println!("{:#}", json!({ "profiles": profiles }));
    } else {
        print!("{}", table(&status, SystemTime::now()));
    }
    Ok(())
}

fn secs(d: Option<&prost_types::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(*d).ok())
        .unwrap_or_default()
}

fn time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

/// `1m 30s`: whole seconds are enough for people.
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Value {
    time(t).map_or(Value::Null, |t| {
        Value::String(humantime::format_rfc3339_seconds(t).to_string())
    })
}

fn state_name(state: i32) -> &'static str {
    match proto::ClusterState::try_from(state) {
        Ok(proto::ClusterState::Building) => "building",
        Ok(proto::ClusterState::Ready) => "ready",
        Ok(proto::ClusterState::Leased) => "leased",
        Ok(proto::ClusterState::Recycling) => "recycling",
        _ => "unknown",
    }
}

fn profile_json(p: &proto::ProfileStatus) -> Value {
    let counts = p.counts.unwrap_or_default();
    json!({
        "profile": p.profile,
        "warm": p.warm,
        "max": p.max,
        "degraded": p.degraded,
        "degraded_reason": (!p.degraded_reason.is_empty()).then_some(&p.degraded_reason),
        "counts": {
            "ready": counts.ready, "leased": counts.leased, "building": counts.building,
            "recycling": counts.recycling, "failed": counts.failed, "waiting": counts.waiting,
        },
        "last_failure": p.last_failure.as_ref().map(|f| json!({
            "phase": f.phase, "step": f.step, "error": f.error, "exit_code": f.exit_code,
            "at": rfc3339(f.at.as_ref()), "consecutive_failures": f.consecutive_failures,
        })),
        "clusters": p.clusters.iter().map(|c| json!({
            "name": c.name, "state": state_name(c.state), "created_at": rfc3339(c.created_at.as_ref()),
            "age_seconds": secs(c.age.as_ref()).as_secs_f64(),
            "holder": (!c.holder.is_empty()).then_some(&c.holder),
            "stale": c.stale,
        })).collect::<Vec<_>>(),
        "leases": p.leases.iter().map(|l| json!({
            "lease_id": l.lease_id, "holder": l.holder, "cluster": l.cluster,
            "acquired_at": rfc3339(l.acquired_at.as_ref()), "expires_at": rfc3339(l.expires_at.as_ref()),
        })).collect::<Vec<_>>(),
        "phase_stats": p.phase_stats.iter().map(|s| json!({
            "phase": s.phase, "runs": s.runs,
            "p50_seconds": secs(s.p50.as_ref()).as_secs_f64(),
            "p95_seconds": secs(s.p95.as_ref()).as_secs_f64(),
            "last_seconds": secs(s.last.as_ref()).as_secs_f64(),
        })).collect::<Vec<_>>(),
    })
}

fn table(status: &proto::StatusResponse, now: SystemTime) -> String {
    let mut out = String::new();
    if status.profiles.is_empty() {
        out.push_str("no profiles\n");
    }
    for p in &status.profiles {
        let c = p.counts.unwrap_or_default();
        let _ = writeln!(
            out,
            "profile {}{}: {} ready, {} leased, {} building, {} recycling, {} failed in a row, {} waiting (warm {}, max {})",
            p.profile,
            if p.degraded { " [DEGRADED]" } else { "" },
            c.ready,
            c.leased,
            c.building,
            c.recycling,
            c.failed,
            c.waiting,
            p.warm,
            p.max
        );
        if p.degraded {
            let _ = writeln!(out, "  degraded: {}", p.degraded_reason);
        }
        if let Some(f) = &p.last_failure {
            let failure = RunFailure {
                phase: f.phase.clone(),
                step: f.step.clone(),
                exit_code: f.exit_code,
                error: f.error.clone(),
            };
            let _ = writeln!(out, "  last failure: {failure}");
        }
        if !p.clusters.is_empty() {
            let _ = writeln!(
                out,
                "  {:<36} {:<16} {:<12} HOLDER",
                "CLUSTER", "STATE", "AGE"
            );
            for cl in &p.clusters {
                let state = if cl.stale {
                    format!("{} (stale)", state_name(cl.state))
                } else {
                    state_name(cl.state).to_string()
                };
                let _ = writeln!(
                    out,
                    "  {:<36} {:<16} {:<12} {}",
                    cl.name,
                    state,
                    human(secs(cl.age.as_ref())),
                    cl.holder
                );
            }
        }
        if !p.leases.is_empty() {
            let _ = writeln!(
                out,
                "  {:<36} {:<24} {:<36} TIME LEFT",
                "LEASE", "HOLDER", "CLUSTER"
            );
            for l in &p.leases {
                let left = time(l.expires_at.as_ref())
                    .and_then(|t| t.duration_since(now).ok())
                    .map_or_else(|| "expiring".to_string(), human);
                let _ = writeln!(
                    out,
                    "  {:<36} {:<24} {:<36} {}",
                    l.lease_id, l.holder, l.cluster, left
                );
            }
        }
        if !p.phase_stats.is_empty() {
            let _ = writeln!(
                out,
                "  {:<10} {:>5} {:>10} {:>10} {:>10}",
                "PHASE", "RUNS", "P50", "P95", "LAST"
            );
            for s in &p.phase_stats {
                let _ = writeln!(
                    out,
                    "  {:<10} {:>5} {:>10} {:>10} {:>10}",
                    s.phase,
                    s.runs,
                    human(secs(s.p50.as_ref())),
                    human(secs(s.p95.as_ref())),
                    human(secs(s.last.as_ref()))
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(secs: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration {
            seconds: secs,
            nanos: 0,
        })
    }

    fn sample(now: SystemTime) -> proto::StatusResponse {
        let in_90s: prost_types::Timestamp = (now + Duration::from_secs(90)).into();
        proto::StatusResponse {
            profiles: vec![proto::ProfileStatus {
                profile: "demo".into(),
                counts: Some(proto::PoolCounts {
                    ready: 1,
                    leased: 1,
                    ..Default::default()
                }),
                clusters: vec![proto::ClusterInfo {
                    name: "infrad-demo-1a2b3c4d".into(),
                    state: proto::ClusterState::Leased.into(),
                    age: duration(330),
                    holder: "job-42".into(),
                    ..Default::default()
                }],
                leases: vec![proto::LeaseInfo {
                    lease_id: "0b9a52cd-63f5-4a4e-8a8f-4b3f4a4e8a8f".into(),
                    holder: "job-42".into(),
                    cluster: "infrad-demo-1a2b3c4d".into(),
                    expires_at: Some(in_90s),
                    ..Default::default()
                }],
                phase_stats: vec![proto::PhaseStats {
                    phase: "build".into(),
                    runs: 3,
                    p50: duration(180),
                    p95: duration(200),
                    last: duration(170),
                }],
                degraded: true,
                last_failure: Some(proto::BuildFailure {
                    phase: "cluster".into(),
                    step: "kind create".into(),
                    error: "boom".into(),
                    exit_code: Some(1),
                    ..Default::default()
                }),
                warm: 1,
                degraded_reason: "3 builds failed in a row".into(),
                max: 2,
            }],
        }
    }

    #[test]
    fn table_shows_counts_clusters_leases_and_timings() {
        let now = SystemTime::now();
        let text = table(&sample(now), now);
        assert!(
            text.starts_with("profile demo [DEGRADED]: 1 ready, 1 leased"),
            "{text}"
        );
        assert!(
            text.contains("last failure: phase cluster step kind create (exit code 1): boom"),
            "{text}"
        );
        assert!(text.contains("infrad-demo-1a2b3c4d"));
        assert!(text.contains("leased           5m 30s"), "{text}");
        assert!(text.contains("1m 30s"), "time left: {text}");
        assert!(text.contains("3m 20s"), "p95: {text}");
    }

    #[test]
    fn json_names_states_and_never_a_token() {
        let now = SystemTime::now();
        let value = profile_json(&sample(now).profiles[0]);
        assert_eq!(value["clusters"][0]["state"], "leased");
        assert_eq!(value["counts"]["leased"], 1);
        assert_eq!(value["phase_stats"][0]["p50_seconds"], 180.0);
        assert!(!value.to_string().contains("token"));
    }
}
