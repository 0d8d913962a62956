//! When an applied object counts as ready, judged from its status as the API server reports it.
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet, and why.
    NotReady(String),
    /// Never will be without a change (a failed Job, a Deployment past its progress deadline).
    Failed(String),
}

/// Deployment available with all replicas updated, StatefulSet/DaemonSet ready, Job complete,
/// CRD established; any other kind once it exists.
pub fn readiness(kind: &str, object: &Value) -> Readiness {
    let status = object.get("status").unwrap_or(&Value::Null);
    let int = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64).unwrap_or(0);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = int(status, "observedGeneration");
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let stale = matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet") && observed < generation;
    if stale {
        return Readiness::NotReady(format!("generation {generation} not observed yet"));
    }
    let ready = |ok: bool, why: String| {
        if ok {
            Readiness::Ready
        } else {
            Readiness::NotReady(why)
        }
    };
    match kind {
        "Deployment" => {
            if condition_reason(status, "Progressing") == Some("ProgressDeadlineExceeded") {
                return Readiness::Failed("progress deadline exceeded".into());
            }
            let (updated, available) = (
                int(status, "updatedReplicas"),
                int(status, "availableReplicas"),
            );
            // As `kubectl rollout status`: no old replicas left, every updated one available.
            let total = status
                .get("replicas")
                .and_then(Value::as_i64)
                .unwrap_or(updated);
            ready(
                updated >= replicas
                    && total <= updated
                    && available >= updated
                    && condition(status, "Available"),
                format!("{available}/{replicas} available, {updated} updated, {total} in total"),
            )
        }
        "StatefulSet" => {
            let ready_replicas = int(status, "readyReplicas");
            ready(
                ready_replicas >= replicas && int(status, "updatedReplicas") >= replicas,
                format!("{ready_replicas}/{replicas} ready"),
            )
        }
        "DaemonSet" => {
            let desired = int(status, "desiredNumberScheduled");
            let number_ready = int(status, "numberReady");
            ready(
                desired > 0
                    && number_ready >= desired
                    && int(status, "updatedNumberScheduled") >= desired,
                format!("{number_ready}/{desired} ready"),
            )
        }
        "Job" => {
            if condition(status, "Failed") {
                return Readiness::Failed("failed".into());
            }
            ready(condition(status, "Complete"), "not complete".into())
        }
        "CustomResourceDefinition" => {
            ready(condition(status, "Established"), "not established".into())
        }
        _ => Readiness::Ready,
    }
}

/// The reason of a condition of this type, whatever its status.
fn condition_reason<'a>(status: &'a Value, kind: &str) -> Option<&'a str> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("reason")?
        .as_str()
}

fn condition(status: &Value, kind: &str) -> bool {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployments_need_every_replica_updated_and_available() {
        let mut d = json!({
            "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True"}]}
        });
        assert_eq!(
            readiness("Deployment", &d),
            Readiness::NotReady("generation 2 not observed yet".into())
        );
        d["status"]["observedGeneration"] = json!(2);
        assert_eq!(readiness("Deployment", &d), Readiness::Ready);
        d["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            readiness("Deployment", &d),
            Readiness::NotReady("1/2 available, 2 updated, 2 in total".into())
        );
    }

    #[test]
    fn a_rolling_update_is_not_ready_while_old_replicas_remain() {
        let rolling = json!({
            "metadata": {"generation": 2}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True"}]}
        });
        assert!(matches!(
            readiness("Deployment", &rolling),
            Readiness::NotReady(_)
        ));
        let stuck = json!({"status": {"conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
        assert_eq!(
            readiness("Deployment", &stuck),
            Readiness::Failed("progress deadline exceeded".into())
        );
    }

    #[test]
    fn jobs_complete_and_crds_establish() {
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(readiness("Job", &done), Readiness::Ready);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(
            readiness("Job", &failed),
            Readiness::Failed("failed".into())
        );
        let crd = json!({"status": {"conditions": [{"type": "Established", "status": "False"}]}});
        assert_eq!(
            readiness("CustomResourceDefinition", &crd),
            Readiness::NotReady("not established".into())
        );
    }

    #[test]
    fn sets_count_ready_members_and_other_kinds_are_ready_once_applied() {
        let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 3},
                         "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 3}});
        assert_eq!(
            readiness("StatefulSet", &sts),
            Readiness::NotReady("2/3 ready".into())
        );
        let ds = json!({"metadata": {"generation": 1},
                        "status": {"observedGeneration": 1, "desiredNumberScheduled": 1, "numberReady": 1, "updatedNumberScheduled": 1}});
        assert_eq!(readiness("DaemonSet", &ds), Readiness::Ready);
        assert_eq!(readiness("ConfigMap", &json!({})), Readiness::Ready);
    }
}
