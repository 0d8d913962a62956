//! Container logs (`pods/{name}/log`) of the simulated pods, as the kubelet would serve them:
//! `container` (required when the pod has more than one), `previous` (only for a container
//! that restarted), `limitBytes`, `timestamps`; the errors a real server gives, as `Status`.
//! The text of a container's current log is set per container name (`set_container_log`),
//! else one line saying what runs; a previous log says that run exited.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    discovery::ResType,
    objects::ApiState,
    routing::{Resp, not_found},
};

fn bad_request(message: String) -> Resp {
    Resp::status(400, "BadRequest", message, None)
}

impl ApiState {
    pub(super) fn pod_log(
        &self,
        rt: &ResType,
        ns: &str,
        name: &str,
        params: &BTreeMap<String, String>,
    ) -> Resp {
        let Some(pod) = self.pod(rt, ns, name) else {
            return not_found(rt, name);
        };
        let spec = &pod["spec"];
        let names: Vec<&str> = ["initContainers", "containers"]
            .iter()
            .filter_map(|k| spec[k].as_array())
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match params.get("container") {
            Some(c) => c.as_str(),
            None if names.len() == 1 => names[0],
            None => {
                return bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                ));
            }
        };
        if !names.contains(&container) {
            return bad_request(format!("container {container} is not valid for pod {name}"));
        }
        let status = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .filter_map(|k| pod["status"][k].as_array())
            .flatten()
            .find(|s| s["name"] == container)
            .cloned()
            .unwrap_or(Value::Null);
        let previous = params.get("previous").is_some_and(|p| p == "true");
        let text = if previous {
            if status["restartCount"].as_i64().unwrap_or(0) == 0 {
                return bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ));
            }
            format!("{container} of {name}: this run exited with code 1\n")
        } else {
            if status["containerID"].is_null() {
                let reason = status["state"]["waiting"]["reason"]
                    .as_str()
                    .unwrap_or("ContainerCreating");
                return bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
                ));
            }
            self.container_logs
                .get(container)
                .cloned()
                .unwrap_or_else(|| format!("{container} of {name}: running\n"))
        };
        let text = if params.get("timestamps").is_some_and(|t| t == "true") {
            let at = pod["status"]["startTime"].as_str().unwrap_or_default();
            text.lines().map(|l| format!("{at} {l}\n")).collect()
        } else {
            text
        };
        let mut body = text.into_bytes();
        if let Some(limit) = params.get("limitBytes").and_then(|l| l.parse().ok()) {
            body.truncate(limit);
        }
        Resp {
            code: 200,
            content_type: "text/plain",
            body,
            watch: None,
        }
    }
}
