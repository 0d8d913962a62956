//! The object store: what it holds, how time changes it (readiness flips, namespace purges),
//! lists and their selectors, and the checks and defaults an object gets before it is stored.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    Applied, RecordedRequest,
    discovery::{ResType, builtin_types},
    now_rfc3339,
    pods::ImageFailure,
    routing::Resp,
    status::{Phase, sim_status},
};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) group: String,
    pub(super) plural: String,
    pub(super) namespace: Option<String>,
    pub(super) name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Progress {
    /// Becomes ready (or failed) at `at`; `None` = never.
    Pending {
        at: Option<Instant>,
        fail: bool,
        update: bool,
    },
    Ready,
    Failed,
}

pub(super) struct Obj {
    pub(super) kind: String,
    pub(super) value: Value,
    pub(super) progress: Progress,
    /// For namespaces being deleted: when they vanish.
    pub(super) delete_at: Option<Instant>,
}

/// One change to an object, as watches see it.
pub(super) struct Change {
    pub(super) rv: u64,
    pub(super) kind: &'static str,
    pub(super) key: Key,
    /// The object before the change (`None` when created).
    pub(super) old: Option<Value>,
    /// The object after the change; for a deletion, the last state with the deletion's version.
    pub(super) object: Value,
}

pub(super) struct ApiState {
    pub(super) builtins: Vec<ResType>,
    pub(super) objects: BTreeMap<Key, Obj>,
    pub(super) applied: Vec<Applied>,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) ready_delay: Duration,
    pub(super) ns_delete_delay: Duration,
    pub(super) require_token: bool,
    /// Images that cannot run (`set_image_failure`), in the order set.
    pub(super) image_failures: Vec<ImageFailure>,
    /// Current log text by container name (`set_container_log`).
    pub(super) container_logs: BTreeMap<String, String>,
    pub(super) rv: u64,
    /// Every change, in resourceVersion order.
    pub(super) changes: Vec<Change>,
    /// Pinged after every change, and when the server stops.
    pub(super) changed: watch::Sender<()>,
    pub(super) stopped: bool,
}

pub(super) fn ns_key(name: &str) -> Key {
    Key {
        group: String::new(),
        plural: "namespaces".into(),
        namespace: None,
        name: name.into(),
    }
}

/// Equality- and set-based label selectors (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`).
/// Field selectors such as `metadata.name=web` or `status.phase!=Active` (`=`, `==`, `!=`).
fn field_selector_matches(selector: &str, obj: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            let (path, want, equal) = match t.split_once("!=") {
                Some((p, v)) => (p, v, false),
                None => match t.split_once("==").or_else(|| t.split_once('=')) {
                    Some((p, v)) => (p, v, true),
                    None => return false,
                },
            };
            let pointer = format!("/{}", path.trim().replace('.', "/"));
            let have = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (have == want.trim()) == equal
        })
}

fn selector_matches(selector: &str, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    // Split on commas outside parentheses.
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .all(|t| {
            let set = |s: &str| -> BTreeSet<String> {
                s.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .collect()
            };
            if let Some((k, v)) = t.split_once(" notin ") {
                return !get(k.trim()).is_some_and(|x| set(v).contains(x));
            }
            if let Some((k, v)) = t.split_once(" in ") {
                return get(k.trim()).is_some_and(|x| set(v).contains(x));
            }
            if let Some((k, v)) = t.split_once("!=") {
                return get(k.trim()) != Some(v.trim());
            }
            if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                return get(k.trim()) == Some(v.trim());
            }
            if let Some(k) = t.strip_prefix('!') {
                return get(k.trim()).is_none();
            }
            get(t).is_some()
        })
}

/// Whether an object is in the collection a list or watch asks for.
pub(super) fn in_collection(
    rt: &ResType,
    ns: Option<&str>,
    params: &BTreeMap<String, String>,
    key: &Key,
    obj: &Value,
) -> bool {
    let param = |p: &str| params.get(p).map_or("", String::as_str);
    key.group == rt.group
        && key.plural == rt.plural
        && (ns.is_none() || key.namespace.as_deref() == ns)
        && selector_matches(param("labelSelector"), &obj["metadata"]["labels"])
        && field_selector_matches(param("fieldSelector"), obj)
}

/// The object as a GET or watch shows it: with the `apiVersion` asked for.
pub(super) fn with_api_version(rt: &ResType, obj: &Value) -> Value {
    let mut v = obj.clone();
    v["apiVersion"] = json!(rt.api_version());
    v
}

impl ApiState {
    pub(super) fn new() -> ApiState {
        let mut st = ApiState {
            builtins: builtin_types(),
            objects: BTreeMap::new(),
            applied: Vec::new(),
            requests: Vec::new(),
            ready_delay: Duration::ZERO,
            ns_delete_delay: Duration::from_millis(200),
            require_token: false,
            image_failures: Vec::new(),
            container_logs: BTreeMap::new(),
            rv: 1000,
            changes: Vec::new(),
            changed: watch::channel(()).0,
            stopped: false,
        };
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            st.insert_namespace(ns);
        }
        st
    }

    pub(super) fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Logs a change (made at the object's new resourceVersion) and wakes the watches.
    pub(super) fn record(
        &mut self,
        kind: &'static str,
        key: &Key,
        old: Option<Value>,
        object: &Value,
    ) {
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        self.changes.push(Change {
            rv: rv.parse().unwrap(),
            kind,
            key: key.clone(),
            old,
            object: object.clone(),
        });
        self.changed.send_replace(());
    }

    /// Removes an object for good, at a new resourceVersion.
    pub(super) fn remove(&mut self, key: &Key) {
        if let Some(o) = self.objects.remove(key) {
            let mut v = o.value.clone();
            v["metadata"]["resourceVersion"] = json!(self.next_rv());
            self.record("DELETED", key, Some(o.value), &v);
        }
    }

    /// The next time something changes by itself (a readiness flip, a namespace purge).
    pub(super) fn next_due(&self) -> Option<Instant> {
        let due = |o: &Obj| match o.progress {
            Progress::Pending { at, .. } => at.into_iter().chain(o.delete_at).min(),
            _ => o.delete_at,
        };
        self.objects.values().filter_map(due).min()
    }

    fn insert_namespace(&mut self, name: &str) {
        let rv = self.next_rv();
        let v = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "resourceVersion": rv,
                "creationTimestamp": now_rfc3339(),
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        self.record("ADDED", &ns_key(name), None, &v);
        self.objects.insert(
            ns_key(name),
            Obj {
                kind: "Namespace".into(),
                value: v,
                progress: Progress::Ready,
                delete_at: None,
            },
        );
        self.namespace_side_objects(name);
    }

    /// What a namespace's controllers add at once: the `default` ServiceAccount and the
    /// `kube-root-ca.crt` ConfigMap.
    pub(super) fn namespace_side_objects(&mut self, ns: &str) {
        let sa = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": { "name": "default", "namespace": ns },
        });
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "kube-root-ca.crt", "namespace": ns,
                "annotations": { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." },
            },
            "data": { "ca.crt": "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n" },
        });
        for (plural, kind, mut v) in [
            ("serviceaccounts", "ServiceAccount", sa),
            ("configmaps", "ConfigMap", cm),
        ] {
            let rv = self.next_rv();
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            v["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
            v["metadata"]["resourceVersion"] = json!(rv);
            v["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            let key = Key {
                group: String::new(),
                plural: plural.into(),
                namespace: Some(ns.into()),
                name,
            };
            self.record("ADDED", &key, None, &v);
            self.objects.insert(
                key,
                Obj {
                    kind: kind.into(),
                    value: v,
                    progress: Progress::Ready,
                    delete_at: None,
                },
            );
        }
    }

    /// Lets time pass: purges namespaces whose deletion delay is over, flips readiness.
    pub(super) fn tick(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .objects
            .iter()
            .filter(|(k, o)| {
                k.group.is_empty()
                    && k.plural == "namespaces"
                    && o.delete_at.is_some_and(|t| t <= now)
            })
            .map(|(k, _)| k.name.clone())
            .collect();
        for ns in gone {
            let in_ns = |k: &&Key| k.namespace.as_ref() == Some(&ns);
            let mut keys: Vec<Key> = self.objects.keys().filter(in_ns).cloned().collect();
            keys.push(ns_key(&ns)); // The namespace goes last.
            keys.iter().for_each(|k| self.remove(k));
        }
        let ApiState { objects, rv, .. } = self;
        let mut flipped = Vec::new();
        for (k, o) in objects.iter_mut() {
            if let Progress::Pending {
                at: Some(at), fail, ..
            } = o.progress
                && at <= now
            {
                let phase = if fail { Phase::Failed } else { Phase::Ready };
                o.progress = if fail {
                    Progress::Failed
                } else {
                    Progress::Ready
                };
                if let Some(status) = sim_status(&k.group, &o.kind, &o.value, phase) {
                    let old = o.value.clone();
                    o.value["status"] = status;
                    *rv += 1;
                    o.value["metadata"]["resourceVersion"] = json!(rv.to_string());
                    flipped.push((k.clone(), old, o.value.clone()));
                }
            }
        }
        for (k, old, v) in flipped {
            self.record("MODIFIED", &k, Some(old), &v);
        }
    }

    pub(super) fn list(
        &self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Resp {
        let items = self
            .objects
            .iter()
            .filter(|(k, o)| in_collection(rt, ns, params, k, &o.value))
            .map(|(_, o)| o.value.clone());
        self.list_of(rt, items)
    }

    /// A `<Kind>List` of `items`, shaped as the real server shapes them.
    pub(super) fn list_of(&self, rt: &ResType, items: impl Iterator<Item = Value>) -> Resp {
        let items: Vec<Value> = items
            .map(|mut v| {
                if let Some(m) = v.as_object_mut() {
                    if rt.custom {
                        m.insert("apiVersion".into(), json!(rt.api_version()));
                    } else {
                        // Built-in lists carry no kind/apiVersion on their items.
                        m.remove("apiVersion");
                        m.remove("kind");
                    }
                }
                v
            })
            .collect();
        Resp::json(
            200,
            &json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": { "resourceVersion": self.rv.to_string() },
                "items": items,
            }),
        )
    }
}

pub(super) fn check_type(rt: &ResType, obj: &Value) -> Option<Resp> {
    let gv = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    if gv != rt.api_version() || kind != rt.kind {
        let gv_str = if gv.contains('/') {
            gv.to_string()
        } else {
            format!("/{gv}")
        };
        return Some(Resp::bad_request(format!(
            "invalid object type: {gv_str}, Kind={kind}"
        )));
    }
    None
}

pub(super) fn check_name(rt: &ResType, obj: &Value, ns: Option<&str>, name: &str) -> Option<Resp> {
    let obj_name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if obj_name != name {
        return Some(Resp::bad_request(format!(
            "the name of the object ({obj_name}) does not match the name on the URL ({name})"
        )));
    }
    if rt.namespaced
        && let (Some(ns), Some(obj_ns)) = (ns, obj["metadata"]["namespace"].as_str())
        && !obj_ns.is_empty()
        && obj_ns != ns
    {
        return Some(Resp::bad_request(format!(
            "the namespace of the object ({obj_ns}) does not match the namespace on the URL ({ns})"
        )));
    }
    None
}

/// The defaults a real API server fills in that readiness depends on.
pub(super) fn apply_defaults(rt: &ResType, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            let name = obj["metadata"]["name"].clone();
            let labels = &mut obj["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = name;
        }
        ("apps", "Deployment") | ("apps", "StatefulSet") => {
            let spec = &mut obj["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            // `kubectl rollout status` refuses a StatefulSet without its rolling update.
            if rt.kind == "StatefulSet" && spec["updateStrategy"].is_null() {
                spec["updateStrategy"] =
                    json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } });
            }
        }
        ("batch", "Job") => {
            let spec = &mut obj["spec"];
            if spec["completions"].is_null() && spec["parallelism"].is_null() {
                spec["completions"] = json!(1);
                spec["parallelism"] = json!(1);
            } else if spec["parallelism"].is_null() {
                spec["parallelism"] = json!(1);
            }
            if spec["backoffLimit"].is_null() {
                spec["backoffLimit"] = json!(6);
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let names = &mut obj["spec"]["names"];
            if names.is_object() {
                if names["singular"].is_null() {
                    names["singular"] =
                        json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
                }
                if names["listKind"].is_null() {
                    names["listKind"] = json!(format!(
                        "{}List",
                        names["kind"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        _ => {}
    }
}
