//! The simulated status of workload kinds, shaped as each kind's controller writes it: one
//! function per kind, for each phase of its rollout.

use std::hash::Hash;

use serde_json::{Map, Value, json};

use super::{now_rfc3339, short_hash};

/// What a simulated status shows: a rollout under way (`update`: of an object that was ready,
/// so the old pods still serve), done, or failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Phase {
    Pending { update: bool },
    Ready,
    Failed,
}

impl Phase {
    /// Whether the workload serves: it is ready, or mid-update with the old pods still running.
    fn serving(self) -> bool {
        !matches!(self, Phase::Pending { update: false } | Phase::Failed)
    }
}

/// The simulated status of workload kinds; `None` for kinds whose status is not simulated.
pub(super) fn sim_status(group: &str, kind: &str, obj: &Value, phase: Phase) -> Option<Value> {
    let status = match (group, kind) {
        ("apps", "Deployment") => deployment(obj, phase),
        ("apps", "StatefulSet") => stateful_set(obj, phase),
        ("apps", "DaemonSet") => daemon_set(obj, phase),
        ("batch", "Job") => job(obj, phase),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj, phase),
        _ => return None,
    };
    Some(Value::Object(status))
}

fn deployment(obj: &Value, phase: Phase) -> Map<String, Value> {
    let r = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let rs = template_revision(obj);
    let mut s = Map::new();
    s.insert("observedGeneration".into(), json!(generation(obj)));
    let (replicas, updated, ready, unavailable) = match phase {
        Phase::Ready => (r, r, r, 0),
        Phase::Pending { update: false } | Phase::Failed => (r, r, 0, r),
        Phase::Pending { update: true } => {
            // A rolling update: the old pods still serve, one new pod is surging.
            let surge = if r > 0 { 1 } else { 0 };
            (r + surge, surge, r, surge)
        }
    };
    put_nonzero(&mut s, "replicas", replicas);
    put_nonzero(&mut s, "updatedReplicas", updated);
    put_nonzero(&mut s, "readyReplicas", ready);
    put_nonzero(&mut s, "availableReplicas", ready);
    put_nonzero(&mut s, "unavailableReplicas", unavailable);
    let available = if phase.serving() {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            true,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            true,
        )
    };
    let (status, reason, progress) = match phase {
        Phase::Ready => (
            "True",
            "NewReplicaSetAvailable",
            "has successfully progressed",
        ),
        Phase::Pending { .. } => ("True", "ReplicaSetUpdated", "is progressing"),
        Phase::Failed => (
            "False",
            "ProgressDeadlineExceeded",
            "has timed out progressing",
        ),
    };
    let message = format!("ReplicaSet \"{rs}\" {progress}.");
    let progressing = condition("Progressing", status, reason, &message, true);
    s.insert("conditions".into(), json!([available, progressing]));
    s
}

fn stateful_set(obj: &Value, phase: Phase) -> Map<String, Value> {
    let r = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = generation(obj);
    let rev = template_revision(obj);
    let mut s = Map::new();
    s.insert("observedGeneration".into(), json!(generation));
    s.insert("replicas".into(), json!(r));
    let (ready, updated, current_revision) = match phase {
        Phase::Ready => (r, r, rev.clone()),
        Phase::Pending { update: false } | Phase::Failed => (0, r, rev.clone()),
        // Nothing updated yet: the current revision is still the previous generation's.
        Phase::Pending { update: true } => (r, 0, revision(obj, &(generation - 1))),
    };
    put_nonzero(&mut s, "readyReplicas", ready);
    put_nonzero(&mut s, "currentReplicas", r);
    put_nonzero(&mut s, "updatedReplicas", updated);
    s.insert("availableReplicas".into(), json!(ready));
    s.insert("currentRevision".into(), json!(current_revision));
    s.insert("updateRevision".into(), json!(rev));
    s.insert("collisionCount".into(), json!(0));
    s
}

/// A DaemonSet on the one node of a kind cluster.
fn daemon_set(obj: &Value, phase: Phase) -> Map<String, Value> {
    let ready = i64::from(phase.serving());
    let mut s = Map::new();
    s.insert("currentNumberScheduled".into(), json!(1));
    s.insert("numberMisscheduled".into(), json!(0));
    s.insert("desiredNumberScheduled".into(), json!(1));
    s.insert("numberReady".into(), json!(ready));
    s.insert("observedGeneration".into(), json!(generation(obj)));
    if !matches!(phase, Phase::Pending { update: true }) {
        s.insert("updatedNumberScheduled".into(), json!(1));
    }
    put_nonzero(&mut s, "numberAvailable", ready);
    put_nonzero(&mut s, "numberUnavailable", 1 - ready);
    s
}

fn job(obj: &Value, phase: Phase) -> Map<String, Value> {
    let spec = &obj["spec"];
    let completions = spec["completions"].as_i64().unwrap_or(1);
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1);
    let mut s = Map::new();
    let start = obj["metadata"]["creationTimestamp"].clone();
    s.insert("startTime".into(), start);
    match phase {
        Phase::Pending { .. } => {
            put_nonzero(&mut s, "active", parallelism.min(completions).max(1));
        }
        Phase::Ready => {
            s.insert("completionTime".into(), json!(now_rfc3339()));
            put_nonzero(&mut s, "succeeded", completions);
            s.insert(
                "conditions".into(),
                job_conditions(
                    ["SuccessCriteriaMet", "Complete"],
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            );
        }
        Phase::Failed => {
            put_nonzero(
                &mut s,
                "failed",
                spec["backoffLimit"].as_i64().unwrap_or(6) + 1,
            );
            s.insert(
                "conditions".into(),
                job_conditions(
                    ["FailureTarget", "Failed"],
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
            );
        }
    }
    s.insert("terminating".into(), json!(0));
    s.insert("ready".into(), json!(0));
    s.insert("uncountedTerminatedPods".into(), json!({}));
    s
}

/// A finished Job's conditions: the criterion met, then the outcome, both for `reason`.
fn job_conditions(types: [&str; 2], reason: &str, message: &str) -> Value {
    let conditions: Vec<Value> = types
        .iter()
        .map(|t| {
            let mut c = condition(t, "True", reason, message, false);
            c["lastProbeTime"] = c["lastTransitionTime"].clone();
            c
        })
        .collect();
    json!(conditions)
}

fn crd(obj: &Value, phase: Phase) -> Map<String, Value> {
    let spec = &obj["spec"];
    let names = &spec["names"];
    let storage: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == json!(true))
        .map(|v| v["name"].clone())
        .collect();
    let mut s = Map::new();
    match phase {
        Phase::Ready => {
            let mut accepted = json!({ "plural": names["plural"], "singular": names["singular"], "kind": names["kind"], "listKind": names["listKind"] });
            for k in ["shortNames", "categories"] {
                if names[k].is_array() {
                    accepted[k] = names[k].clone();
                }
            }
            s.insert(
                "conditions".into(),
                json!([
                    condition(
                        "NamesAccepted",
                        "True",
                        "NoConflicts",
                        "no conflicts found",
                        false
                    ),
                    condition(
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                        false
                    ),
                ]),
            );
            s.insert("acceptedNames".into(), accepted);
        }
        _ => {
            s.insert("acceptedNames".into(), json!({ "plural": "", "kind": "" }));
        }
    }
    s.insert("storedVersions".into(), json!(storage));
    s
}

/// `metadata.generation`, 1 when absent.
fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

/// `NAME-HASH`, as controllers name what they make for a workload (ReplicaSets, revisions).
fn revision(obj: &Value, of: &impl Hash) -> String {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    format!("{name}-{}", short_hash(of))
}

/// The revision of the object's current pod template.
fn template_revision(obj: &Value) -> String {
    revision(obj, &obj["spec"]["template"].to_string())
}

/// Puts `n` into `m` unless it is zero (Kubernetes' `omitempty` on status counts).
fn put_nonzero(m: &mut Map<String, Value>, k: &str, n: i64) {
    if n != 0 {
        m.insert(k.into(), json!(n));
    }
}

fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update_time: bool,
) -> Value {
    let now = now_rfc3339();
    let mut c = json!({ "type": kind, "status": status });
    if with_update_time {
        c["lastUpdateTime"] = json!(now);
    }
    c["lastTransitionTime"] = json!(now);
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    c
}
