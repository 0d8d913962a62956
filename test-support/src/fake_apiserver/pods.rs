//! Simulated Pods: one per workload (Deployment, StatefulSet, DaemonSet, Job), computed on
//! each read from the workload and its rollout, never stored; and the image failures
//! (`set_image_failure`) that keep a workload from ever becoming ready.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hash, Hasher},
};

use serde_json::{Value, json};

use super::{
    discovery::ResType,
    objects::{ApiState, Key, Obj, Progress, in_collection},
    routing::{Resp, not_found},
    short_hash,
};

/// Containers whose image starts with `prefix` cannot run: they wait with `reason` and
/// `message`.
pub(super) struct ImageFailure {
    pub(super) prefix: String,
    pub(super) reason: String,
    pub(super) message: String,
}

impl ImageFailure {
    /// A crash loop means the container did run (and exit), unlike an image that cannot start.
    fn crash_loop(&self) -> bool {
        self.reason == "CrashLoopBackOff"
    }
}

/// The first rule (in the order set) that the container's image fails.
fn failure<'a>(rules: &'a [ImageFailure], container: &Value) -> Option<&'a ImageFailure> {
    let image = container["image"].as_str()?;
    rules.iter().find(|r| image.starts_with(&r.prefix))
}

/// The pod template's containers: its init containers (`true`) first, then the others.
fn containers<'a>(workload: &'a Value) -> impl Iterator<Item = (bool, &'a Value)> + 'a {
    let spec = &workload["spec"]["template"]["spec"];
    let init = spec["initContainers"].as_array().into_iter().flatten();
    let main = spec["containers"].as_array().into_iter().flatten();
    init.map(|c| (true, c)).chain(main.map(|c| (false, c)))
}

/// Whether a workload's pod template runs an image that fails: then it never becomes ready.
pub(super) fn held(rules: &[ImageFailure], workload: &Value) -> bool {
    containers(workload).any(|(_, c)| failure(rules, c).is_some())
}

/// The kinds whose pods are simulated.
fn has_pod(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
    )
}

fn hash64(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// 64 hex digits, stable for `v` (container IDs, image digests).
fn hex64(v: &impl Hash) -> String {
    (0..4u8)
        .map(|i| format!("{:016x}", hash64(&(i, v))))
        .collect()
}

/// Where one container is.
#[derive(Clone, Copy)]
enum State<'a> {
    /// Not started yet, waiting for this reason.
    Waiting(&'static str),
    /// Its image fails.
    Fails(&'a ImageFailure),
    Running,
    /// Exited with this code.
    Exited(i64),
}

/// One entry of `containerStatuses` (or `initContainerStatuses`), and whether the container
/// has run at all.
fn container_status(c: &Value, state: State<'_>, init: bool, since: &Value) -> (Value, bool) {
    let name = c["name"].as_str().unwrap_or_default();
    let image = c["image"].as_str().unwrap_or_default();
    let id = format!("containerd://{}", hex64(&(name, image, since.to_string())));
    let exited = |code: i64| {
        let reason = if code == 0 { "Completed" } else { "Error" };
        json!({ "terminated": {
            "exitCode": code, "reason": reason,
            "startedAt": since, "finishedAt": since, "containerID": id,
        } })
    };
    let (state_json, last, ready, started, restarts, ran) = match state {
        State::Waiting(reason) => (
            json!({ "waiting": { "reason": reason } }),
            json!({}),
            false,
            false,
            0,
            false,
        ),
        State::Fails(rule) => (
            json!({ "waiting": { "reason": rule.reason, "message": rule.message } }),
            if rule.crash_loop() {
                exited(1)
            } else {
                json!({})
            },
            false,
            false,
            if rule.crash_loop() { 3 } else { 0 },
            rule.crash_loop(),
        ),
        State::Running => (
            json!({ "running": { "startedAt": since } }),
            json!({}),
            true,
            true,
            0,
            true,
        ),
        // An init container that completed counts as ready; an exited container does not.
        State::Exited(code) => (exited(code), json!({}), init && code == 0, false, 0, true),
    };
    let mut s = json!({
        "name": name,
        "state": state_json,
        "lastState": last,
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "imageID": if ran { format!("sha256:{}", hex64(&image)) } else { String::new() },
    });
    if ran {
        s["containerID"] = json!(id);
    }
    if !init {
        s["started"] = json!(started);
    }
    (s, ran)
}

fn statuses(cs: &[&Value], states: &[State<'_>], init: bool, since: &Value) -> Vec<(Value, bool)> {
    (cs.iter().zip(states))
        .map(|(c, s)| container_status(c, *s, init, since))
        .collect()
}

/// The names of the containers whose status `pred` holds for.
fn names_where(statuses: &[(Value, bool)], pred: impl Fn(&Value) -> bool) -> Vec<String> {
    (statuses.iter().filter(|(s, _)| pred(s)))
        .map(|(s, _)| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn pod_condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    since: &Value,
) -> Value {
    let mut c = json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": since,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's status, from how far its workload's rollout is.
fn pod_status(o: &Obj, rules: &[ImageFailure], since: &Value, ip: &str) -> Value {
    let job = o.kind == "Job";
    let (mut inits, mut mains): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
    for (init, c) in containers(&o.value) {
        if init { inits.push(c) } else { mains.push(c) }
    }
    let done = State::Exited(0);
    // States of the init containers (they run one at a time) and of the others.
    let (init_states, main_states): (Vec<State<'_>>, Vec<State<'_>>) = match o.progress {
        Progress::Ready if job => (vec![done; inits.len()], vec![done; mains.len()]),
        Progress::Ready => (vec![done; inits.len()], vec![State::Running; mains.len()]),
        Progress::Failed => (vec![done; inits.len()], vec![State::Exited(1); mains.len()]),
        Progress::Pending { .. } => {
            let init_fail = inits.iter().position(|c| failure(rules, c).is_some());
            let any_fail = init_fail.is_some() || mains.iter().any(|c| failure(rules, c).is_some());
            // Where initialization stops: at a failing init container, or at the first one
            // while the pod is being created; `None` once every init container has completed.
            let stuck = init_fail.or(if any_fail || inits.is_empty() {
                None
            } else {
                Some(0)
            });
            let init_states = (0..inits.len())
                .map(|i| match stuck {
                    Some(s) if i < s => done,
                    Some(s) if i == s => failure(rules, inits[i])
                        .map_or(State::Waiting("ContainerCreating"), State::Fails),
                    Some(_) => State::Waiting("PodInitializing"),
                    None => done,
                })
                .collect();
            let main_states = mains
                .iter()
                .map(|c| match (stuck, failure(rules, c)) {
                    (Some(_), _) => State::Waiting("PodInitializing"),
                    (None, Some(rule)) => State::Fails(rule),
                    // Beside a failing container the others run.
                    (None, None) if any_fail => State::Running,
                    (None, None) => State::Waiting("ContainerCreating"),
                })
                .collect();
            (init_states, main_states)
        }
    };
    let init_statuses = statuses(&inits, &init_states, true, since);
    let main_statuses = statuses(&mains, &main_states, false, since);
    let uninitialized = names_where(&init_statuses, |s| {
        s["state"]["terminated"]["exitCode"] != json!(0)
    });
    let unready = names_where(&main_statuses, |s| s["ready"] != json!(true));
    let all_ran = main_statuses.iter().all(|(_, ran)| *ran);
    let finished = matches!(o.progress, Progress::Ready | Progress::Failed) && job;
    let phase = match o.progress {
        Progress::Ready if job => "Succeeded",
        Progress::Failed if job => "Failed",
        Progress::Ready | Progress::Failed => "Running",
        Progress::Pending { .. } if uninitialized.is_empty() && all_ran => "Running",
        Progress::Pending { .. } => "Pending",
    };
    // The sandbox is up unless it is still being made or the pod has finished.
    let creating = main_states
        .iter()
        .chain(&init_states)
        .any(|s| matches!(s, State::Waiting("ContainerCreating")));
    let sandbox = !creating && !finished;
    let list = |names: &[String]| format!("[{}]", names.join(" "));
    let (ready_reason, ready_message) = match (phase, unready.is_empty()) {
        (_, true) => (None, None),
        ("Succeeded", _) => (Some("PodCompleted"), None),
        ("Failed", _) => (Some("PodFailed"), None),
        _ => (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                list(&unready)
            )),
        ),
    };
    let initialized = pod_condition(
        "Initialized",
        uninitialized.is_empty(),
        (!uninitialized.is_empty()).then_some("ContainersNotInitialized"),
        (!uninitialized.is_empty()).then(|| {
            format!(
                "containers with incomplete status: {}",
                list(&uninitialized)
            )
        }),
        since,
    );
    let conditions = json!([
        pod_condition("PodReadyToStartContainers", sandbox, None, None, since),
        initialized,
        pod_condition(
            "Ready",
            unready.is_empty(),
            ready_reason,
            ready_message.clone(),
            since
        ),
        pod_condition(
            "ContainersReady",
            unready.is_empty(),
            ready_reason,
            ready_message,
            since
        ),
        pod_condition("PodScheduled", true, None, None, since),
    ]);
    let mut s = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "172.18.0.2",
        "hostIPs": [{ "ip": "172.18.0.2" }],
    });
    // A finished pod keeps the address it had.
    if !creating {
        s["podIP"] = json!(ip);
        s["podIPs"] = json!([{ "ip": ip }]);
    }
    s["startTime"] = since.clone();
    if !init_statuses.is_empty() {
        let v: Vec<Value> = init_statuses.into_iter().map(|(s, _)| s).collect();
        s["initContainerStatuses"] = json!(v);
    }
    let v: Vec<Value> = main_statuses.into_iter().map(|(s, _)| s).collect();
    s["containerStatuses"] = json!(v);
    s["qosClass"] = json!("BestEffort");
    s
}

/// The pod of a workload, as a GET shows it; `None` for other kinds and scaled-to-zero ones.
fn pod_of(key: &Key, o: &Obj, rules: &[ImageFailure]) -> Option<(Key, Value)> {
    let w = &o.value;
    if !has_pod(&key.group, &o.kind) || w["spec"]["replicas"].as_i64() == Some(0) {
        return None;
    }
    let template = &w["spec"]["template"];
    // Named for the template, as a ReplicaSet's pods are: a new template is a new pod.
    let name = format!(
        "{}-{}",
        key.name,
        short_hash(&(&o.kind, template.to_string()))
    );
    let since = w["metadata"]["creationTimestamp"].clone();
    let mut owner = json!({ "apiVersion": w["apiVersion"], "kind": o.kind, "name": key.name });
    if let Some(uid) = w["metadata"]["uid"].as_str() {
        owner["uid"] = json!(uid);
    }
    owner["controller"] = json!(true);
    owner["blockOwnerDeletion"] = json!(true);
    let uid = uuid::Uuid::from_u64_pair(
        hash64(&(&name, &w["metadata"]["uid"].to_string())),
        hash64(&name),
    );
    let mut meta = json!({
        "name": name,
        "namespace": key.namespace,
        "uid": uid.to_string(),
        // The workload's: the pod changes exactly when the workload does.
        "resourceVersion": w["metadata"]["resourceVersion"],
        "creationTimestamp": since,
    });
    if template["metadata"]["labels"].is_object() {
        meta["labels"] = template["metadata"]["labels"].clone();
    }
    meta["ownerReferences"] = json!([owner]);
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    // The defaults a real server fills in, and where the one node of a kind cluster put it.
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("serviceAccountName", json!("default")),
        ("schedulerName", json!("default-scheduler")),
        ("nodeName", json!("kind-control-plane")),
    ] {
        if spec[k].is_null() {
            spec[k] = v;
        }
    }
    let ip = format!("10.244.0.{}", 2 + hash64(&name) % 250);
    let status = pod_status(o, rules, &since, &ip);
    let pod_key = Key {
        group: String::new(),
        plural: "pods".into(),
        namespace: key.namespace.clone(),
        name: name.clone(),
    };
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": status,
    });
    Some((pod_key, pod))
}

impl ApiState {
    /// Adds an image failure: workloads still rolling out that run such an image now never
    /// finish (as `ready-after: never`); new ones are held when applied (`ready_at`).
    pub(super) fn add_image_failure(&mut self, rule: ImageFailure) {
        self.image_failures.push(rule);
        for o in self.objects.values_mut() {
            if let Progress::Pending {
                at: Some(_),
                update,
                ..
            } = o.progress
                && held(&self.image_failures, &o.value)
            {
                o.progress = Progress::Pending {
                    at: None,
                    fail: false,
                    update,
                };
            }
        }
    }

    /// The pods in `ns` (every namespace when `None`) that the selectors in `params` select,
    /// sorted by namespace and name.
    fn pods(
        &self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> BTreeMap<Key, Value> {
        self.objects
            .iter()
            .filter(|(k, _)| ns.is_none() || k.namespace.as_deref() == ns)
            .filter_map(|(k, o)| pod_of(k, o, &self.image_failures))
            .filter(|(k, v)| in_collection(rt, ns, params, k, v))
            .collect()
    }

    pub(super) fn list_pods(
        &self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Resp {
        self.list_of(rt, self.pods(rt, ns, params).into_values())
    }

    pub(super) fn pod(&self, rt: &ResType, ns: &str, name: &str) -> Option<Value> {
        let pods = self.pods(rt, Some(ns), &BTreeMap::new());
        pods.into_iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    pub(super) fn get_pod(&self, rt: &ResType, ns: &str, name: &str) -> Resp {
        match self.pod(rt, ns, name) {
            Some(v) => Resp::json(200, &v),
            None => not_found(rt, name),
        }
    }
}
