//! Collecting at release, into the cluster's artifacts directory: the workloads of the steps
//! to flush stopped (their logs taken first: a stopped pod's log goes with it), then
//! `logs/<namespace>/<pod>/<container>.log` of every pod of the profile's deploy steps and of
//! the namespaces the test run added, and `events.txt`. What cannot be had is a problem
//! noted; the rest goes on.
use std::{collections::BTreeSet, path::PathBuf};

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::{Pipeline, deploy, overlay, reset};
use crate::{
    artifacts::Collected,
    config::DeployStep,
    image_ref,
    pool::ClusterSpec,
    private,
    tools::kube::{Kube, ObjectRef},
};

/// Kinds a flush stops: scaled to 0, their pods exit (a DaemonSet cannot be scaled; a Job
/// ends by itself).
const FLUSHED: [&str; 2] = ["Deployment", "StatefulSet"];

pub(super) async fn collect(
    pipeline: &Pipeline,
    cluster: &ClusterSpec,
    flush: &[String],
    report: &mut Collected,
) {
    let Some(settings) = &cluster.profile.artifacts else {
        return;
    };
    let kube = match pipeline.kube(&cluster.name, "collect").await {
        Ok(kube) => kube,
        Err(failure) => {
            report.problems.push(failure.error);
            return;
        }
    };
    let mut logs = Logs {
        dir: report.dir.join("logs"),
        max_bytes: settings.max_log_bytes,
        seen: BTreeSet::new(),
    };
    let steps = &cluster.profile.deploy;
    let overlaid = overlay::read_record(&pipeline.overlay_path(&cluster.name));
    for step in steps.iter().filter(|s| flush.contains(&s.name)) {
        flush_step(&kube, step, overlaid.as_ref(), &mut logs, report).await;
    }
    for step in steps {
        match deploy::objects(step) {
            Ok(objects) => {
                for object in objects {
                    match kube.workload_pods(&object).await {
                        Ok(pods) => logs.of_pods(&kube, &pods, report).await,
                        Err(e) => report.problems.push(e.message),
                    }
                }
            }
            Err(e) => report.problems.push(e.message),
        }
    }
    let added = reset::added_namespaces(&kube, &pipeline.baseline_path(&cluster.name)).await;
    let added = added.unwrap_or_else(|e| {
        report.problems.push(e.message);
        Vec::new()
    });
    for namespace in added {
        match kube.namespace_pods(&namespace).await {
            Ok(pods) => logs.of_pods(&kube, &pods, report).await,
            Err(e) => report.problems.push(e.message),
        }
    }
    match kube.events().await {
        Ok(events) => {
            let values: Vec<Value> = events
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect();
            let file = report.dir.join("events.txt");
            if let Err(e) = private::write(&file, events_text(&values).as_bytes()) {
                report
                    .problems
                    .push(format!("writing {}: {e}", file.display()));
            }
        }
        Err(e) => report.problems.push(e.message),
    }
}

/// Scales the step's Deployments and StatefulSets to 0, after taking their pods' logs, and
/// waits until their pods are gone. The step's own documents are applied with `replicas: 0`
/// (images as its overlay put them), so that reset's apply of them brings the replicas back,
/// to what the manifest says or, where it says nothing, to the default.
async fn flush_step(
    kube: &Kube,
    step: &DeployStep,
    overlaid: Option<&overlay::Record>,
    logs: &mut Logs,
    report: &mut Collected,
) {
    let mut documents = match deploy::documents(step) {
        Ok(documents) => documents,
        Err(e) => return report.problems.push(e.message),
    };
    documents.retain(|(object, _)| FLUSHED.contains(&object.kind.as_str()));
    let renames: Vec<(String, String)> = overlaid
        .filter(|r| r.steps.contains(&step.name))
        .map(|r| {
            r.overrides
                .iter()
                .map(|o| (o.name.clone(), o.tag.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (object, body) in &mut documents {
        match kube.workload_pods(object).await {
            Ok(pods) => logs.of_pods(kube, &pods, report).await,
            Err(e) => report.problems.push(e.message),
        }
        image_ref::rewrite(body, &renames);
        body["spec"]["replicas"] = 0.into();
    }
    let objects: Vec<ObjectRef> = documents.iter().map(|(o, _)| o.clone()).collect();
    if let Err(e) = kube.apply_documents(documents, false).await {
        return report
            .problems
            .push(format!("flush {}: {}", step.name, e.message));
    }
    for object in &objects {
        if let Err(e) = kube.wait_no_pods(object).await {
            report
                .problems
                .push(format!("flush {}: {}", step.name, e.message));
        }
    }
}

/// Writes container logs, each pod once.
struct Logs {
    dir: PathBuf,
    max_bytes: u64,
    seen: BTreeSet<(String, String)>,
}

impl Logs {
    async fn of_pods(&mut self, kube: &Kube, pods: &[Pod], report: &mut Collected) {
        for pod in pods {
            self.of_pod(kube, pod, report).await;
        }
    }

    /// Each container's log, and its previous one if it restarted.
    async fn of_pod(&mut self, kube: &Kube, pod: &Pod, report: &mut Collected) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if ![&namespace, &name].iter().all(|n| path_safe(n))
            || !self.seen.insert((namespace.clone(), name.clone()))
        {
            return;
        }
        report.pods += 1;
        for (container, restarts) in containers(pod) {
            if !path_safe(&container) {
                continue;
            }
            let runs = [(false, ""), (true, ".previous")];
            for (previous, suffix) in runs.iter().take(if restarts > 0 { 2 } else { 1 }) {
                let file = self
                    .dir
                    .join(&namespace)
                    .join(&name)
                    .join(format!("{container}{suffix}.log"));
                let written = match kube
                    .container_log(&namespace, &name, &container, *previous)
                    .await
                {
                    Ok(log) => write_log(&file, &capped(&log, self.max_bytes)),
                    Err(e) => Err(e.message),
                };
                match written {
                    Ok(()) => report.logs += 1,
                    Err(problem) => report.problems.push(problem),
                }
            }
        }
    }
}

fn write_log(file: &std::path::Path, log: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", file.display());
    if let Some(dir) = file.parent() {
        private::dir(dir).map_err(fail)?;
    }
    private::write(file, log.as_bytes()).map_err(fail)
}

/// Names from the API server become path segments: nothing that could leave the directory.
fn path_safe(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Each container of the pod (init containers first) with its restart count.
fn containers(pod: &Pod) -> Vec<(String, i32)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let status = pod.status.as_ref();
    let restarts = |name: &str| {
        status
            .into_iter()
            .flat_map(|s| {
                let init = s.init_container_statuses.iter().flatten();
                init.chain(s.container_statuses.iter().flatten())
            })
            .find(|c| c.name == name)
            .map_or(0, |c| c.restart_count)
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| (c.name.clone(), restarts(&c.name)))
        .collect()
}

/// The last `max` bytes of a log, from a line start, said to be cut: the end of a log tells
/// why a suite failed.
fn capped(log: &str, max: u64) -> std::borrow::Cow<'_, str> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if log.len() <= max {
        return log.into();
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    if let Some(newline) = log[start..].find('\n')
        && start + newline + 1 < log.len()
    {
        start += newline + 1;
    }
    format!(
        "[infrad: the first {start} bytes of this log are cut (max_log_bytes = {max})]\n{}",
        &log[start..]
    )
    .into()
}

/// One line per event, oldest first: time, type, reason, object, count, message.
fn events_text(events: &[Value]) -> String {
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut lines: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let at = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .map(|p| text(e, p))
            .find(|t| !t.is_empty())
            .unwrap_or_else(|| "-".into());
            let namespace = text(e, "/involvedObject/namespace");
            let object = format!(
                "{}{}/{}",
                if namespace.is_empty() {
                    String::new()
                } else {
                    format!("{namespace} ")
                },
                text(e, "/involvedObject/kind"),
                text(e, "/involvedObject/name")
            );
            let count = e.get("count").and_then(Value::as_i64).unwrap_or(1);
            let line = format!(
                "{at}\t{}\t{}\t{object}\tx{count}\t{}",
                text(e, "/type"),
                text(e, "/reason"),
                text(e, "/message").replace('\n', " ")
            );
            (at, line)
        })
        .collect();
    lines.sort();
    let mut out = String::from("TIME\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE\n");
    for (_, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_long_log_keeps_its_end_from_a_line_start() {
        assert_eq!(capped("short\n", 100), "short\n");
        let log = "first line\nsecond line\nthird line\n";
        let cut = capped(log, 16);
        assert_eq!(
            cut,
            "[infrad: the first 23 bytes of this log are cut (max_log_bytes = 16)]\nthird line\n"
        );
        // Never inside a character.
        let wide = capped("ééééé", 3);
        assert!(wide.ends_with("é"), "{wide}");
    }

    #[test]
    fn events_are_one_line_each_oldest_first() {
        let events = [
            json!({"lastTimestamp": "2026-12-04T10:00:02Z", "type": "Warning", "reason": "BackOff",
                   "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "demo"},
                   "count": 3, "message": "Back-off\nrestarting"}),
            json!({"eventTime": "2026-12-04T10:00:01.000000Z", "type": "Normal", "reason": "Scheduled",
                   "involvedObject": {"kind": "Node", "name": "kind-control-plane"}, "message": "ok"}),
        ];
        let text = events_text(&events);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("2026-12-04T10:00:01"), "{text}");
        assert!(
            lines[1].contains("Node/kind-control-plane\tx1\tok"),
            "{text}"
        );
        assert!(
            lines[2].contains("Warning\tBackOff\tdemo Pod/web-1\tx3\tBack-off restarting"),
            "{text}"
        );
    }

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        assert!(path_safe("web-7d4b9"));
        for bad in ["", ".", "..", "a/b"] {
            assert!(!path_safe(bad), "{bad:?}");
        }
    }
}
