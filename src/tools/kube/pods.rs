//! Why a workload is not ready, from its pods: container waiting reasons (`CrashLoopBackOff`,
//! `ErrImageNeverPull`, …) and failed exits, as `kubectl describe` would show them. Some of
//! them never clear without a change, so waiting on stops at once.
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};
use serde_json::Value;

use super::{Kube, ObjectRef, kube_error};
use crate::tools::ToolError;

/// Waiting reasons that only a new image or spec clears: an image that is not on the node
/// (kind clusters never pull profile images) or cannot be named, a container that cannot start.
const HOPELESS: [&str; 5] = [
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// One container of one pod that is not running as it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub container: String,
    pub reason: String,
    pub message: String,
}

impl PodProblem {
    /// Whether waiting longer cannot help.
    pub fn hopeless(&self) -> bool {
        HOPELESS.contains(&self.reason.as_str())
    }
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pod {} container {}: {}",
            self.pod, self.container, self.reason
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl Kube {
    /// The problems of a workload's pods (those its selector matches); none for other kinds.
    pub async fn pod_problems(&self, object: &ObjectRef) -> Result<Vec<PodProblem>, ToolError> {
        match self.pod_selector(object).await? {
            Some(selector) => self.problems_of(object, &selector).await,
            None => Ok(Vec::new()),
        }
    }

    /// The label selector of a workload's pods; `None` for other kinds or one not found.
    /// Listed by name, as readiness is watched: a GET would look like polling the object.
    pub(super) async fn pod_selector(
        &self,
        object: &ObjectRef,
    ) -> Result<Option<String>, ToolError> {
        if !matches!(
            object.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job"
        ) {
            return Ok(None);
        }
        let list = self
            .api(object)
            .await?
            .list(&ListParams::default().fields(&format!("metadata.name={}", object.name)))
            .await
            .map_err(|e| kube_error(&format!("reading {object}"), e))?;
        Ok(list
            .items
            .first()
            .and_then(|w| label_selector(&serde_json::to_value(w).unwrap_or_default())))
    }

    /// The problems of the pods `selector` matches in the object's namespace.
    pub(super) async fn problems_of(
        &self,
        object: &ObjectRef,
        selector: &str,
    ) -> Result<Vec<PodProblem>, ToolError> {
        let namespace = object.namespace.as_deref().unwrap_or("default");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| kube_error(&format!("listing the pods of {object}"), e))?;
        Ok(list
            .items
            .iter()
            .flat_map(|pod| problems(&serde_json::to_value(pod).unwrap_or_default()))
            .collect())
    }
}

/// `spec.selector.matchLabels` (a Job's too) as a label selector, `a=1,b=2`.
fn label_selector(workload: &Value) -> Option<String> {
    let labels = workload
        .pointer("/spec/selector/matchLabels")?
        .as_object()?;
    let terms: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// The containers of one pod (init containers first) that wait or exited with an error.
fn problems(pod: &Value) -> Vec<PodProblem> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|key| pod.pointer(&format!("/status/{key}"))?.as_array())
        .flatten()
        .filter_map(|status| {
            let state = status.get("state")?;
            let (reason, message) = if let Some(waiting) = state.get("waiting") {
                (text(waiting, "reason"), text(waiting, "message"))
            } else {
                let done = state.get("terminated")?;
                let code = done.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
                if code == 0 {
                    return None;
                }
                (text(done, "reason"), format!("exit code {code}"))
            };
            // Being created is not a problem, only slow.
            if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing" {
                return None;
            }
            Some(PodProblem {
                pod: name.to_string(),
                container: text(status, "name"),
                reason,
                message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn waiting_reasons_and_failed_exits_are_problems_creation_is_not() {
        let pod = json!({
            "metadata": {"name": "we-1"},
            "status": {
                "initContainerStatuses": [
                    {"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
                ],
                "containerStatuses": [
                    {"name": "we", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}},
                    {"name": "side", "state": {"waiting": {"reason": "ContainerCreating"}}},
                    {"name": "job", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}},
                    {"name": "ok", "state": {"running": {}}}
                ]
            }
        });
        let found = problems(&pod);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].to_string(),
            "pod we-1 container we: ErrImageNeverPull: not present"
        );
        assert!(found[0].hopeless());
        assert_eq!(
            found[1].to_string(),
            "pod we-1 container job: Error: exit code 2"
        );
        assert!(!found[1].hopeless());
    }

    #[test]
    fn the_selector_is_the_match_labels() {
        let workload = json!({"spec": {"selector": {"matchLabels": {"app": "we", "tier": "x"}}}});
        assert_eq!(label_selector(&workload).unwrap(), "app=we,tier=x");
        assert!(label_selector(&json!({"spec": {}})).is_none());
    }
}
