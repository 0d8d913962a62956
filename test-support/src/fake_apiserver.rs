//! An in-process fake Kubernetes API server (plain HTTP on 127.0.0.1:0) serving what kube-rs
//! uses: `/version`, health, discovery (legacy and aggregated v2), server-side apply, merge
//! patch, create, get, list, watch and delete, with Kubernetes-shaped JSON and `Status` errors.
//!
//! Workload status is simulated: an object is "not ready yet" until a delay after the apply that
//! last changed its spec (`set_ready_delay`, default 0; per object the annotation
//! `infrad.test/ready-after` = milliseconds, `never`, `fail` or `fail:MS`), then "ready".
//! Time moves lazily: transitions happen at the start of the next request or helper call.
//!
//! Faithful details worth knowing (a real API server behaves the same way):
//! - status integers that are zero are omitted (`readyReplicas` is absent, not 0);
//! - an update rollout of a Deployment keeps `Available=True` (old pods serve) while
//!   `status.replicas > updatedReplicas` (one surge pod), so readiness must be judged like
//!   `kubectl rollout status`: observedGeneration, updatedReplicas >= spec.replicas,
//!   status.replicas == updatedReplicas, availableReplicas >= updatedReplicas;
//! - items of built-in lists carry no `kind`/`apiVersion`;
//! - deleting anything but a namespace or a CRD answers a `Status` of `Success`;
//! - a CRD's kinds are discoverable only once it is `Established`;
//! - an apply that changes nothing keeps the `resourceVersion`;
//! - creating in a terminating namespace is 403 Forbidden; deleting it again is 409 Conflict;
//! - a watch (`?watch=true` on a collection) streams one JSON event a line: with
//!   `resourceVersion` 0 or absent (or `sendInitialEvents=true`) an ADDED per current object
//!   first, otherwise only changes after that version (every change is kept, so none is ever
//!   too old); readiness flips are MODIFIED and deletions (a namespace's contents first, when
//!   it is purged) DELETED, each with a new `resourceVersion`; an object that starts or stops
//!   matching the selectors is ADDED or DELETED. It ends after `timeoutSeconds` (default 1800,
//!   as the real server's minimum) with a BOOKMARK if `allowWatchBookmarks=true`, or when the
//!   server is dropped. Watching one object by its URL is not served: use `metadata.name=`.
//!
//! Not served: JSON patch, PUT, deletecollection, `/openapi` (so
//! `kubectl apply` needs `--validate=false`). Requests without a token are accepted unless
//! `set_require_token(true)`: kubectl never sends credentials to an `http://` server.
#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    convert::Infallible,
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State as AxState},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use serde_json::{Map, Value, json};
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
};

/// The annotation that overrides the ready delay of one object.
pub const READY_AFTER: &str = "infrad.test/ready-after";
/// The version the fake server claims to be.
pub const GIT_VERSION: &str = "v1.36.1";

/// One object's first apply (its creation by apply or create), in order.
#[derive(Clone, Debug)]
pub struct Applied {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub at: Instant,
}

/// One HTTP request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string ("" when none), e.g. `fieldManager=infrad&force=true`.
    pub query: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    pub at: Instant,
}

pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeApiServer {
    /// Binds 127.0.0.1:0 and serves in a spawned task until the handle is dropped.
    pub async fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake API server binds 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(ApiState::new()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeApiServer {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How long after an apply that changes its spec a workload stays not ready (default 0).
    pub fn set_ready_delay(&self, d: Duration) {
        self.shared.lock().ready_delay = d;
    }

    /// How long a deleted namespace stays `Terminating` before it and its objects vanish
    /// (default 200 ms). Applies to deletions made after the call.
    pub fn set_namespace_deletion_delay(&self, d: Duration) {
        self.shared.lock().ns_delete_delay = d;
    }

    /// Whether requests without a bearer token are refused (403, as for `system:anonymous`)
    /// outside `/version` and the health paths. Default false, because kubectl (client-go)
    /// never sends credentials to an `http://` server; kube-rs does.
    pub fn set_require_token(&self, required: bool) {
        self.shared.lock().require_token = required;
    }

    /// Objects in the order they were first applied (or created).
    pub fn applied(&self) -> Vec<Applied> {
        self.shared.lock().applied.clone()
    }

    /// The stored object, as a GET would return it. `kind` is the Kind ("Deployment").
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let st = self.shared.lock();
        st.objects
            .iter()
            .find(|(k, o)| o.kind == kind && k.namespace.as_deref() == namespace && k.name == name)
            .map(|(_, o)| o.value.clone())
    }

    /// Existing namespaces, terminating ones included, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let st = self.shared.lock();
        let mut names: Vec<String> = st
            .objects
            .keys()
            .filter(|k| k.group.is_empty() && k.plural == "namespaces")
            .map(|k| k.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// A kubeconfig whose cluster, context and user are all `kind-NAME`, pointing at `url()`
    /// with a bearer token.
    pub fn kubeconfig(&self, name: &str) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - cluster:\n    server: {url}\n  name: kind-{name}\n\
             contexts:\n\
             - context:\n    cluster: kind-{name}\n    user: kind-{name}\n  name: kind-{name}\n\
             current-context: kind-{name}\n\
             preferences: {{}}\n\
             users:\n\
             - name: kind-{name}\n  user:\n    token: fake-token-{name}\n",
            url = self.url()
        )
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // End the watches, or graceful shutdown would wait for their timeouts.
        let mut st = self.shared.lock();
        st.stopped = true;
        st.changed.send_replace(());
    }
}

struct Shared {
    state: Mutex<ApiState>,
}

impl Shared {
    /// Locks the state and lets time pass (readiness transitions, namespace purges).
    fn lock(&self) -> MutexGuard<'_, ApiState> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.tick(Instant::now());
        st
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP layer

struct Resp {
    code: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// For a watch: the body is streamed from it.
    watch: Option<Box<Watch>>,
}

impl Resp {
    fn json(code: u16, v: &Value) -> Resp {
        Resp {
            code,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap(),
            watch: None,
        }
    }
    fn text(code: u16, s: &str) -> Resp {
        Resp {
            code,
            content_type: "text/plain; charset=utf-8",
            body: s.as_bytes().to_vec(),
            watch: None,
        }
    }
    /// A `Status` of `Failure`.
    fn status(code: u16, reason: &str, message: impl Into<String>, details: Option<Value>) -> Resp {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
        });
        if let Some(d) = details {
            s["details"] = d;
        }
        s["code"] = json!(code);
        Resp::json(code, &s)
    }
    fn page_not_found() -> Resp {
        Resp::text(404, "404 page not found\n")
    }
    fn no_resource() -> Resp {
        Resp::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }
    fn bad_request(message: impl Into<String>) -> Resp {
        Resp::status(400, "BadRequest", message, None)
    }
    fn not_allowed(message: impl Into<String>) -> Resp {
        Resp::status(405, "MethodNotAllowed", message, Some(json!({})))
    }
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.lock().requests.push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type,
        at: Instant::now(),
    });
    let resp = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(bytes) => {
            let mut st = shared.lock();
            st.dispatch(&method, &path, &query, &parts.headers, &bytes)
        }
        Err(e) => Resp::bad_request(format!("reading the request body: {e}")),
    };
    let body = match resp.watch {
        Some(w) => {
            let lines = futures::stream::unfold((shared, w), |(shared, mut w)| async move {
                let chunk = w.next(&shared).await?;
                Some((Ok::<_, Infallible>(chunk), (shared, w)))
            });
            Body::from_stream(lines)
        }
        None => Body::from(resp.body),
    };
    Response::builder()
        .status(StatusCode::from_u16(resp.code).unwrap())
        .header(header::CONTENT_TYPE, resp.content_type)
        .body(body)
        .unwrap()
}

/// One watch request being served.
struct Watch {
    rt: ResType,
    ns: Option<String>,
    params: BTreeMap<String, String>,
    /// Changes up to this resourceVersion have been sent (or skipped).
    since: u64,
    /// Lines not sent yet.
    out: Vec<u8>,
    changed: watch::Receiver<()>,
    /// When the watch ends; `None` once it has.
    end: Option<Instant>,
}

impl Watch {
    fn push(&mut self, kind: &str, object: Value) {
        // `type` first, as a real server writes it (serde_json would sort the keys).
        let line = format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n");
        self.out.extend(line.as_bytes());
    }

    fn bookmark(&mut self, rv: u64, initial_events_end: bool) {
        if self.params.get("allowWatchBookmarks").map(String::as_str) == Some("true") {
            let mut meta = json!({ "resourceVersion": rv.to_string() });
            if initial_events_end {
                meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
            }
            let (kind, api_version) = (&self.rt.kind, self.rt.api_version());
            let object = json!({ "kind": kind, "apiVersion": api_version, "metadata": meta });
            self.push("BOOKMARK", object);
        }
    }

    /// The next lines to send, once there are any; `None` when the watch is over.
    async fn next(&mut self, shared: &Shared) -> Option<Vec<u8>> {
        let end = self.end?;
        loop {
            let (due, rv) = {
                let st = shared.lock();
                if st.stopped {
                    return None;
                }
                st.watch_changes(self);
                (st.next_due(), st.rv)
            };
            if Instant::now() >= end {
                self.end = None;
                self.bookmark(rv, false);
            }
            if !self.out.is_empty() {
                return Some(std::mem::take(&mut self.out));
            }
            self.end?;
            // Wake for a change, or when time makes one (a readiness flip, a namespace purge).
            let wake = due.map_or(end, |d| d.min(end));
            tokio::select! {
                _ = self.changed.changed() => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

fn query_params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn short_hash(v: &impl Hash) -> String {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..10)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Resource types

#[derive(Clone, Debug)]
struct ResType {
    group: String,
    version: String,
    plural: String,
    singular: String,
    kind: String,
    namespaced: bool,
    verbs: Vec<String>,
    short_names: Vec<String>,
    categories: Vec<String>,
    /// Subresource names, e.g. "status".
    subresources: Vec<String>,
    /// Defined by a CustomResourceDefinition.
    custom: bool,
}

impl ResType {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps`, or `configmaps` for the core group (as in error messages).
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    fn details(&self, name: &str) -> Value {
        let mut d = json!({ "name": name });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d["kind"] = json!(self.plural);
        d
    }
    fn has_generation(&self) -> bool {
        !(self.group.is_empty()
            && matches!(
                self.plural.as_str(),
                "namespaces" | "configmaps" | "secrets" | "serviceaccounts" | "services"
            ))
    }
    fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    cats: &[&str],
    subs: &[&str],
) -> ResType {
    let verbs: Vec<String> = VERBS
        .iter()
        .filter(|v| !(plural == "namespaces" && **v == "deletecollection"))
        .map(|v| v.to_string())
        .collect();
    ResType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        verbs,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        subresources: subs.iter().map(|s| s.to_string()).collect(),
        custom: false,
    }
}

fn builtin_types() -> Vec<ResType> {
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            &[],
            &["finalize", "status"],
        ),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[], &[]),
        builtin("", "v1", "secrets", "Secret", true, &[], &[], &[]),
        builtin(
            "",
            "v1",
            "services",
            "Service",
            true,
            &["svc"],
            &["all"],
            &["status"],
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            &[],
            &[],
        ),
        builtin(
            "",
            "v1",
            "pods",
            "Pod",
            true,
            &["po"],
            &["all"],
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            &["all"],
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            &["all"],
            &["status"],
        ),
        builtin(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            &["all"],
            &["status"],
        ),
        builtin(
            "batch",
            "v1",
            "jobs",
            "Job",
            true,
            &[],
            &["all"],
            &["status"],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            &[],
            &[],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            &["status"],
        ),
    ]
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; others last.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
        if let Some(n) = tail
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
        {
            return (rank, major, n);
        }
    }
    (0, 0, 0)
}

// ---------------------------------------------------------------------------------------------
// State

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    plural: String,
    namespace: Option<String>,
    name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Progress {
    /// Becomes ready (or failed) at `at`; `None` = never.
    Pending {
        at: Option<Instant>,
        fail: bool,
        update: bool,
    },
    Ready,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Pending { update: bool },
    Ready,
    Failed,
}

struct Obj {
    kind: String,
    value: Value,
    progress: Progress,
    /// For namespaces being deleted: when they vanish.
    delete_at: Option<Instant>,
}

/// One change to an object, as watches see it.
struct Change {
    rv: u64,
    kind: &'static str,
    key: Key,
    /// The object before the change (`None` when created).
    old: Option<Value>,
    /// The object after the change; for a deletion, the last state with the deletion's version.
    object: Value,
}

struct ApiState {
    builtins: Vec<ResType>,
    objects: BTreeMap<Key, Obj>,
    applied: Vec<Applied>,
    requests: Vec<RecordedRequest>,
    ready_delay: Duration,
    ns_delete_delay: Duration,
    require_token: bool,
    rv: u64,
    /// Every change, in resourceVersion order.
    changes: Vec<Change>,
    /// Pinged after every change, and when the server stops.
    changed: watch::Sender<()>,
    stopped: bool,
}

fn ns_key(name: &str) -> Key {
    Key {
        group: String::new(),
        plural: "namespaces".into(),
        namespace: None,
        name: name.into(),
    }
}

/// The object without metadata and status: what `generation` tracks.
fn content(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    c
}

fn user_meta(v: &Value) -> Value {
    let m = &v["metadata"];
    json!([
        m["labels"],
        m["annotations"],
        m["finalizers"],
        m["ownerReferences"]
    ])
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v["metadata"]["annotations"][key].as_str()
}

fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let t = target.as_object_mut().unwrap();
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
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
fn in_collection(
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
fn with_api_version(rt: &ResType, obj: &Value) -> Value {
    let mut v = obj.clone();
    v["apiVersion"] = json!(rt.api_version());
    v
}

enum Target {
    Collection {
        rt: ResType,
        ns: Option<String>,
    },
    Object {
        rt: ResType,
        ns: Option<String>,
        name: String,
        sub: Option<String>,
    },
}

impl ApiState {
    fn new() -> ApiState {
        let mut st = ApiState {
            builtins: builtin_types(),
            objects: BTreeMap::new(),
            applied: Vec::new(),
            requests: Vec::new(),
            ready_delay: Duration::ZERO,
            ns_delete_delay: Duration::from_millis(200),
            require_token: false,
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

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Logs a change (made at the object's new resourceVersion) and wakes the watches.
    fn record(&mut self, kind: &'static str, key: &Key, old: Option<Value>, object: &Value) {
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
    fn remove(&mut self, key: &Key) {
        if let Some(o) = self.objects.remove(key) {
            let mut v = o.value.clone();
            v["metadata"]["resourceVersion"] = json!(self.next_rv());
            self.record("DELETED", key, Some(o.value), &v);
        }
    }

    /// The next time something changes by itself (a readiness flip, a namespace purge).
    fn next_due(&self) -> Option<Instant> {
        let due = |o: &Obj| match o.progress {
            Progress::Pending { at, .. } => at.into_iter().chain(o.delete_at).min(),
            _ => o.delete_at,
        };
        self.objects.values().filter_map(due).min()
    }

    /// Starts a watch: the initial events now, under the same lock as the changes after them.
    fn watch(&self, rt: &ResType, ns: Option<&str>, params: &BTreeMap<String, String>) -> Resp {
        let rv = params.get("resourceVersion").map_or("", String::as_str);
        let initial = params.get("sendInitialEvents").is_some_and(|s| s == "true");
        let from_now = initial || matches!(rv, "" | "0");
        let Ok(since) = (if from_now { Ok(self.rv) } else { rv.parse() }) else {
            return Resp::bad_request(format!("invalid resource version: {rv:?}"));
        };
        let timeout = params.get("timeoutSeconds").and_then(|t| t.parse().ok());
        let mut w = Watch {
            rt: rt.clone(),
            ns: ns.map(String::from),
            params: params.clone(),
            since,
            out: Vec::new(),
            changed: self.changed.subscribe(),
            end: Some(Instant::now() + Duration::from_secs(timeout.unwrap_or(1800))),
        };
        if from_now {
            for (k, o) in &self.objects {
                if in_collection(rt, ns, params, k, &o.value) {
                    w.push("ADDED", with_api_version(rt, &o.value));
                }
            }
        }
        if initial {
            w.bookmark(self.rv, true);
        }
        Resp {
            code: 200,
            content_type: "application/json",
            body: Vec::new(),
            watch: Some(Box::new(w)),
        }
    }

    /// Adds the events of the changes a watch has not seen yet.
    fn watch_changes(&self, w: &mut Watch) {
        let start = self.changes.partition_point(|c| c.rv <= w.since);
        for c in &self.changes[start..] {
            let selected = |v: &Value| in_collection(&w.rt, w.ns.as_deref(), &w.params, &c.key, v);
            let (before, after) = (c.old.as_ref().is_some_and(selected), selected(&c.object));
            let (kind, mut object) = match (before, after) {
                (false, true) => ("ADDED", c.object.clone()),
                (true, true) => (c.kind, c.object.clone()),
                // It no longer matches: gone, in its last matching state, at the new version.
                (true, false) => ("DELETED", c.old.clone().unwrap()),
                (false, false) => continue,
            };
            object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
            w.push(kind, with_api_version(&w.rt, &object));
        }
        w.since = self.rv;
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
    fn namespace_side_objects(&mut self, ns: &str) {
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
    fn tick(&mut self, now: Instant) {
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

    /// Built-in types plus the kinds of established CRDs.
    fn types(&self) -> Vec<ResType> {
        let mut out = self.builtins.clone();
        for (k, o) in &self.objects {
            if !(k.group == "apiextensions.k8s.io" && k.plural == "customresourcedefinitions") {
                continue;
            }
            if o.progress != Progress::Ready || !o.value["metadata"]["deletionTimestamp"].is_null()
            {
                continue;
            }
            let spec = &o.value["spec"];
            let names = &spec["names"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let list = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for ver in spec["versions"].as_array().into_iter().flatten() {
                if ver["served"] != json!(true) {
                    continue;
                }
                out.push(ResType {
                    group: s(&spec["group"]),
                    version: s(&ver["name"]),
                    plural: s(&names["plural"]),
                    singular: s(&names["singular"]),
                    kind: s(&names["kind"]),
                    namespaced: spec["scope"] == json!("Namespaced"),
                    verbs: VERBS.iter().map(|v| v.to_string()).collect(),
                    short_names: list(&names["shortNames"]),
                    categories: list(&names["categories"]),
                    subresources: if ver["subresources"]["status"].is_object() {
                        vec!["status".into()]
                    } else {
                        vec![]
                    },
                    custom: true,
                });
            }
        }
        out
    }

    /// Groups in discovery order, each with its versions sorted by preference.
    fn groups(types: &[ResType]) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    if !vs.contains(&t.version) {
                        vs.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, vs) in &mut groups {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }

    fn dispatch(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        match path {
            "/version" => return Resp::json(200, &version_info()),
            "/readyz" | "/livez" | "/healthz" => return Resp::text(200, "ok"),
            _ => {}
        }
        let authorized = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty());
        if self.require_token && !authorized {
            return Resp::status(
                403,
                "Forbidden",
                format!(
                    "forbidden: User \"system:anonymous\" cannot {} path \"{path}\"",
                    method.to_lowercase()
                ),
                Some(json!({})),
            );
        }
        let aggregated = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=APIGroupDiscoveryList"));
        let types = self.types();
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        let params = query_params(query);
        match segs.as_slice() {
            ["api"] if method == "GET" => {
                if aggregated {
                    return aggregated_discovery(&types, true);
                }
                Resp::json(
                    200,
                    &json!({
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.2:6443" }],
                    }),
                )
            }
            ["apis"] if method == "GET" => {
                if aggregated {
                    return aggregated_discovery(&types, false);
                }
                let groups: Vec<Value> = Self::groups(&types)
                    .iter()
                    .map(|(g, vs)| api_group(g, vs))
                    .collect();
                Resp::json(
                    200,
                    &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }),
                )
            }
            ["apis", group] if method == "GET" => {
                match Self::groups(&types).iter().find(|(g, _)| g == group) {
                    Some((g, vs)) => {
                        let mut v = api_group(g, vs);
                        v["kind"] = json!("APIGroup");
                        v["apiVersion"] = json!("v1");
                        Resp::json(200, &v)
                    }
                    None => Resp::page_not_found(),
                }
            }
            ["api", version, rest @ ..] => {
                self.group_version(method, "", version, rest, &types, &params, headers, body)
            }
            ["apis", group, version, rest @ ..] => {
                self.group_version(method, group, version, rest, &types, &params, headers, body)
            }
            _ => Resp::page_not_found(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn group_version(
        &mut self,
        method: &str,
        group: &str,
        version: &str,
        rest: &[&str],
        types: &[ResType],
        params: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let gv_types: Vec<&ResType> = types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if gv_types.is_empty() {
            return Resp::page_not_found();
        }
        if rest.is_empty() {
            if method != "GET" {
                return Resp::not_allowed(
                    "the server does not allow this method on the requested resource",
                );
            }
            return Resp::json(200, &resource_list(group, version, &gv_types));
        }
        // `namespaces/{ns}/{plural}…`, except the core group's own `namespaces/{name}/status`
        // and `namespaces/{name}/finalize` subresources.
        let namespace_subresource =
            group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
        let (ns, rest) = if rest[0] == "namespaces" && rest.len() >= 3 && !namespace_subresource {
            (Some(rest[1].to_string()), &rest[2..])
        } else {
            (None, rest)
        };
        let Some(rt) = gv_types
            .iter()
            .find(|t| t.plural == rest[0])
            .map(|t| (*t).clone())
        else {
            return Resp::no_resource();
        };
        if ns.is_some() && !rt.namespaced {
            return Resp::no_resource();
        }
        let target = match rest {
            [_] => Target::Collection { rt, ns },
            [_, name] => Target::Object {
                rt,
                ns,
                name: name.to_string(),
                sub: None,
            },
            [_, name, sub] => Target::Object {
                rt,
                ns,
                name: name.to_string(),
                sub: Some(sub.to_string()),
            },
            _ => return Resp::no_resource(),
        };
        match target {
            Target::Collection { rt, ns } => match method {
                "GET" => {
                    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
                        return self.watch(&rt, ns.as_deref(), params);
                    }
                    self.list(&rt, ns.as_deref(), params)
                }
                "POST" => match ns {
                    None if rt.namespaced => Resp::not_allowed(
                        "the server does not allow this method on the requested resource",
                    ),
                    _ => self.create(&rt, ns.as_deref(), params, body),
                },
                _ => Resp::not_allowed(format!(
                    "the fake API server does not support {method} on a collection"
                )),
            },
            Target::Object { rt, ns, name, sub } => {
                if rt.namespaced && ns.is_none() {
                    return Resp::no_resource();
                }
                if let Some(sub) = &sub
                    && !rt.subresources.contains(sub)
                {
                    return Resp::no_resource();
                }
                let key = Key {
                    group: rt.group.clone(),
                    plural: rt.plural.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                };
                match (method, sub.as_deref()) {
                    ("GET", None | Some("status")) => match self.objects.get(&key) {
                        Some(o) => Resp::json(200, &with_api_version(&rt, &o.value)),
                        None => not_found(&rt, &name),
                    },
                    ("PATCH", None) => self.patch(&rt, ns.as_deref(), &name, params, headers, body),
                    ("DELETE", None) => self.delete(&rt, key, params, body),
                    _ => Resp::not_allowed(format!(
                        "the fake API server does not support {method} on {}{}",
                        rt.qualified(),
                        sub.map(|s| format!("/{s}")).unwrap_or_default()
                    )),
                }
            }
        }
    }

    fn list(&self, rt: &ResType, ns: Option<&str>, params: &BTreeMap<String, String>) -> Resp {
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, o)| in_collection(rt, ns, params, k, &o.value))
            .map(|(_, o)| {
                let mut v = o.value.clone();
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

    fn create(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Resp {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return Resp::bad_request("the body of the request could not be decoded as JSON");
        };
        if !obj.is_object() {
            return Resp::bad_request("the body of the request is not an object");
        }
        if let Some(r) = check_type(rt, &obj) {
            return r;
        }
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            name = format!(
                "{prefix}{}",
                &short_hash(&(prefix, self.rv, Instant::now()))[..5]
            );
            obj["metadata"]["name"] = json!(name);
        }
        if name.is_empty() {
            return Resp::status(
                422,
                "Invalid",
                format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    rt.kind
                ),
                None,
            );
        }
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.clone(),
        };
        if self.objects.contains_key(&key) {
            return Resp::status(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.qualified()),
                Some(rt.details(&name)),
            );
        }
        let manager = params
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let dry = params.get("dryRun").is_some_and(|d| d == "All");
        match self.put(rt, ns, &name, obj, &manager, "Update", dry) {
            Ok((_, v)) => Resp::json(201, &v),
            Err(r) => r,
        }
    }

    fn patch(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        name: &str,
        params: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Resp {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let manager = params.get("fieldManager").cloned();
        let force = params.get("force").is_some_and(|f| f == "true" || f == "1");
        let dry = params.get("dryRun").is_some_and(|d| d == "All");
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.to_string(),
        };
        match ct.as_str() {
            "application/apply-patch+yaml" => {
                let Some(manager) = manager.filter(|m| !m.is_empty()) else {
                    return Resp::status(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        Some(json!({
                            "group": "meta.k8s.io", "kind": "PatchOptions",
                            "causes": [{ "reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager" }],
                        })),
                    );
                };
                // kube-rs sends JSON, which is YAML too; real YAML text is not understood here.
                let obj: Value = match serde_json::from_slice(body) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(_) => {
                        return Resp::bad_request(
                            "error decoding YAML: the patch is not an object",
                        );
                    }
                    Err(e) => {
                        return Resp::bad_request(format!(
                            "error decoding YAML: {e} (the fake API server only reads JSON bodies)"
                        ));
                    }
                };
                let patch_gv = obj["apiVersion"].as_str().unwrap_or_default();
                if patch_gv != rt.api_version() {
                    return Resp::bad_request(format!(
                        "Incorrect version specified in apply patch. Specified patch version: {patch_gv}, expected: {}",
                        rt.api_version()
                    ));
                }
                if let Some(r) = check_type(rt, &obj) {
                    return r;
                }
                if let Some(r) = check_name(rt, &obj, ns, name) {
                    return r;
                }
                let created = !self.objects.contains_key(&key);
                match self.put(rt, ns, name, obj, &manager, "Apply", dry) {
                    Ok((_, v)) => Resp::json(if created { 201 } else { 200 }, &v),
                    Err(r) => r,
                }
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json"
                if !(rt.custom && ct == "application/strategic-merge-patch+json") =>
            {
                if force {
                    return Resp::status(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                        None,
                    );
                }
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return Resp::bad_request(
                        "the body of the request could not be decoded as JSON",
                    );
                };
                let Some(existing) = self.objects.get(&key) else {
                    return not_found(rt, name);
                };
                let mut obj = existing.value.clone();
                merge_patch(&mut obj, &patch);
                if let Some(r) = check_type(rt, &obj) {
                    return r;
                }
                if let Some(r) = check_name(rt, &obj, ns, name) {
                    return r;
                }
                let manager = manager.unwrap_or_else(|| "unknown".into());
                match self.put(rt, ns, name, obj, &manager, "Update", dry) {
                    Ok((_, v)) => Resp::json(200, &v),
                    Err(r) => r,
                }
            }
            "application/json-patch+json" => Resp::status(
                415,
                "UnsupportedMediaType",
                "the fake API server does not implement JSON patch (application/json-patch+json)",
                None,
            ),
            _ => Resp::status(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
                    if rt.custom {
                        ""
                    } else {
                        ", application/strategic-merge-patch+json"
                    }
                ),
                None,
            ),
        }
    }

    /// Stores `obj` (already checked against the URL) as the new state of the object.
    /// Returns whether it was created, and the object as the server now has it.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        rt: &ResType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        manager: &str,
        operation: &str,
        dry_run: bool,
    ) -> Result<(bool, Value), Resp> {
        let key = Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.map(String::from),
            name: name.to_string(),
        };
        let existing = self.objects.get(&key);
        if existing.is_none()
            && let Some(ns) = ns
        {
            match self.objects.get(&ns_key(ns)) {
                None => {
                    return Err(Resp::status(
                        404,
                        "NotFound",
                        format!("namespaces \"{ns}\" not found"),
                        Some(json!({ "name": ns, "kind": "namespaces" })),
                    ));
                }
                Some(n) if n.delete_at.is_some() => {
                    let mut details = rt.details(name);
                    details["causes"] = json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {ns} is being terminated"),
                        "field": "metadata.namespace",
                    }]);
                    return Err(Resp::status(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            rt.qualified()
                        ),
                        Some(details),
                    ));
                }
                Some(_) => {}
            }
        }

        // Normalise: type meta from the URL, server-owned metadata dropped, status ignored.
        let m = obj.as_object_mut().unwrap();
        m.remove("status");
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let meta = meta.as_object_mut().unwrap();
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        meta.insert("name".into(), json!(name));
        match ns {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        apply_defaults(rt, &mut obj);
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let spec = &obj["spec"];
            let want = format!(
                "{}.{}",
                spec["names"]["plural"].as_str().unwrap_or_default(),
                spec["group"].as_str().unwrap_or_default()
            );
            if want != name {
                return Err(Resp::status(
                    422,
                    "Invalid",
                    format!(
                        "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                    ),
                    Some(
                        json!({ "name": name, "group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
                        "causes": [{ "reason": "FieldValueInvalid", "message": "Invalid value: \"".to_string() + name + "\": must be spec.names.plural+\".\"+spec.group", "field": "metadata.name" }] }),
                    ),
                ));
            }
        }

        let now = now_rfc3339();
        let created = existing.is_none();
        let (spec_changed, meta_changed, ready_after_changed) = match existing {
            Some(e) => (
                content(&e.value) != content(&obj),
                user_meta(&e.value) != user_meta(&obj),
                annotation(&e.value, READY_AFTER) != annotation(&obj, READY_AFTER),
            ),
            None => (true, true, true),
        };
        if let Some(e) = existing
            && !spec_changed
            && !meta_changed
        {
            // A no-op: nothing changes, not even the resourceVersion.
            return Ok((false, e.value.clone()));
        }

        let meta = obj["metadata"].as_object_mut().unwrap();
        match existing {
            Some(e) => {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    if let Some(v) = e.value["metadata"].get(f) {
                        meta.insert(f.into(), v.clone());
                    }
                }
            }
            None => {
                meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                meta.insert("creationTimestamp".into(), json!(now));
            }
        }
        if rt.has_generation() {
            let old = existing.and_then(|e| e.value["metadata"]["generation"].as_i64());
            let generation = match old {
                Some(g) if spec_changed => g + 1,
                Some(g) => g,
                None => 1,
            };
            meta.insert("generation".into(), json!(generation));
        }
        let mut managed: Vec<Value> = existing
            .and_then(|e| e.value["metadata"]["managedFields"].as_array().cloned())
            .unwrap_or_default();
        managed.retain(|f| !(f["manager"] == json!(manager) && f["operation"] == json!(operation)));
        managed.push(json!({
            "manager": manager,
            "operation": operation,
            "apiVersion": rt.api_version(),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }));
        meta.insert("managedFields".into(), json!(managed));

        // Readiness: restart the simulated rollout when the spec (or the override) changed.
        let reset = created || spec_changed || ready_after_changed;
        let mut progress = existing.map(|e| e.progress).unwrap_or(Progress::Ready);
        let status = if reset && sim_status(&rt.group, &rt.kind, &obj, Phase::Ready).is_some() {
            let update = matches!(existing.map(|e| e.progress), Some(Progress::Ready));
            let (at, fail) = self.ready_at(&obj);
            progress = Progress::Pending { at, fail, update };
            sim_status(&rt.group, &rt.kind, &obj, Phase::Pending { update })
        } else if let Some(e) = existing {
            e.value.get("status").cloned()
        } else if rt.is("", "Namespace") {
            Some(json!({ "phase": "Active" }))
        } else {
            None
        };
        if let Some(s) = status {
            obj["status"] = s;
        }
        if dry_run {
            return Ok((created, obj));
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        let delete_at = self.objects.get(&key).and_then(|e| e.delete_at);
        let old = self.objects.insert(
            key.clone(),
            Obj {
                kind: rt.kind.clone(),
                value: obj.clone(),
                progress,
                delete_at,
            },
        );
        let kind = if created { "ADDED" } else { "MODIFIED" };
        self.record(kind, &key, old.map(|o| o.value), &obj);
        if created {
            self.applied.push(Applied {
                kind: rt.kind.clone(),
                namespace: ns.map(String::from),
                name: name.to_string(),
                at: Instant::now(),
            });
            if rt.is("", "Namespace") {
                self.namespace_side_objects(name);
            }
        }
        Ok((created, obj))
    }

    /// When the object becomes ready: `None` = never; and whether it fails instead.
    fn ready_at(&self, obj: &Value) -> (Option<Instant>, bool) {
        let now = Instant::now();
        let ms = |s: &str| s.trim().parse::<u64>().ok().map(Duration::from_millis);
        match annotation(obj, READY_AFTER).map(str::trim) {
            Some("never") => (None, false),
            Some("fail") => (Some(now + self.ready_delay), true),
            Some(a) if a.starts_with("fail:") => {
                (Some(now + ms(&a[5..]).unwrap_or(self.ready_delay)), true)
            }
            Some(a) => (Some(now + ms(a).unwrap_or(self.ready_delay)), false),
            None => (Some(now + self.ready_delay), false),
        }
    }

    fn delete(
        &mut self,
        rt: &ResType,
        key: Key,
        params: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Resp {
        let opts: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let dry =
            params.get("dryRun").is_some_and(|d| d == "All") || opts["dryRun"] == json!(["All"]);
        let name = key.name.clone();
        let Some(existing) = self.objects.get(&key) else {
            return not_found(rt, &name);
        };
        let now = now_rfc3339();
        if rt.is("", "Namespace") {
            if matches!(name.as_str(), "default" | "kube-system" | "kube-public") {
                return Resp::status(
                    403,
                    "Forbidden",
                    format!(
                        "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                    ),
                    Some(json!({ "name": name, "kind": "namespaces" })),
                );
            }
            if existing.delete_at.is_some() {
                return Resp::status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on namespaces \"{name}\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
                    ),
                    Some(json!({ "name": name, "kind": "namespaces" })),
                );
            }
            let mut v = existing.value.clone();
            v["metadata"]["deletionTimestamp"] = json!(now);
            v["status"] = json!({ "phase": "Terminating" });
            if dry {
                return Resp::json(200, &v);
            }
            let rv = self.next_rv();
            v["metadata"]["resourceVersion"] = json!(rv);
            let delete_at = Instant::now() + self.ns_delete_delay;
            let o = self.objects.get_mut(&key).unwrap();
            let old = std::mem::replace(&mut o.value, v.clone());
            o.delete_at = Some(delete_at);
            self.record("MODIFIED", &key, Some(old), &v);
            return Resp::json(200, &v);
        }
        let mut v = existing.value.clone();
        let uid = v["metadata"]["uid"].clone();
        if dry {
            return Resp::json(200, &v);
        }
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let (group, plural) = (&v["spec"]["group"], &v["spec"]["names"]["plural"]);
            let instances: Vec<Key> = (self.objects.keys())
                .filter(|k| Some(k.group.as_str()) == group.as_str())
                .filter(|k| Some(k.plural.as_str()) == plural.as_str())
                .cloned()
                .collect();
            for k in instances.iter().chain([&key]) {
                self.remove(k);
            }
            v["metadata"]["deletionTimestamp"] = json!(now);
            return Resp::json(200, &v);
        }
        self.remove(&key);
        let policy = opts["propagationPolicy"].as_str().unwrap_or("");
        if policy == "Foreground" || policy == "Orphan" {
            // The object is returned while its finalizer runs (here: already gone).
            v["metadata"]["deletionTimestamp"] = json!(now);
            v["metadata"]["finalizers"] = json!([if policy == "Foreground" {
                "foregroundDeletion"
            } else {
                "orphan"
            }]);
            return Resp::json(200, &v);
        }
        let mut details = rt.details(&name);
        details["uid"] = uid;
        Resp::json(
            200,
            &json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }),
        )
    }
}

fn not_found(rt: &ResType, name: &str) -> Resp {
    Resp::status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", rt.qualified()),
        Some(rt.details(name)),
    )
}

fn check_type(rt: &ResType, obj: &Value) -> Option<Resp> {
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

fn check_name(rt: &ResType, obj: &Value, ns: Option<&str>, name: &str) -> Option<Resp> {
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
fn apply_defaults(rt: &ResType, obj: &mut Value) {
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

/// The simulated status of workload kinds; `None` for kinds whose status is not simulated.
fn sim_status(group: &str, kind: &str, obj: &Value, phase: Phase) -> Option<Value> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec = &obj["spec"];
    let template_hash = short_hash(&spec["template"].to_string());
    let mut s = Map::new();
    match (group, kind) {
        ("apps", "Deployment") => {
            let r = spec["replicas"].as_i64().unwrap_or(1);
            let rs = format!("{name}-{template_hash}");
            s.insert("observedGeneration".into(), json!(generation));
            let conditions = match phase {
                Phase::Ready => {
                    for k in [
                        "replicas",
                        "updatedReplicas",
                        "readyReplicas",
                        "availableReplicas",
                    ] {
                        put_nonzero(&mut s, k, r);
                    }
                    vec![
                        condition(
                            "Available",
                            "True",
                            "MinimumReplicasAvailable",
                            "Deployment has minimum availability.",
                            true,
                        ),
                        condition(
                            "Progressing",
                            "True",
                            "NewReplicaSetAvailable",
                            &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                            true,
                        ),
                    ]
                }
                Phase::Pending { update: false } | Phase::Failed => {
                    put_nonzero(&mut s, "replicas", r);
                    put_nonzero(&mut s, "updatedReplicas", r);
                    put_nonzero(&mut s, "unavailableReplicas", r);
                    let progressing = if phase == Phase::Failed {
                        condition(
                            "Progressing",
                            "False",
                            "ProgressDeadlineExceeded",
                            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
                            true,
                        )
                    } else {
                        condition(
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &format!("ReplicaSet \"{rs}\" is progressing."),
                            true,
                        )
                    };
                    vec![
                        condition(
                            "Available",
                            "False",
                            "MinimumReplicasUnavailable",
                            "Deployment does not have minimum availability.",
                            true,
                        ),
                        progressing,
                    ]
                }
                Phase::Pending { update: true } => {
                    // A rolling update: the old pods still serve, one new pod is surging.
                    let surge = if r > 0 { 1 } else { 0 };
                    put_nonzero(&mut s, "replicas", r + surge);
                    put_nonzero(&mut s, "updatedReplicas", surge);
                    put_nonzero(&mut s, "readyReplicas", r);
                    put_nonzero(&mut s, "availableReplicas", r);
                    put_nonzero(&mut s, "unavailableReplicas", surge);
                    vec![
                        condition(
                            "Available",
                            "True",
                            "MinimumReplicasAvailable",
                            "Deployment has minimum availability.",
                            true,
                        ),
                        condition(
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &format!("ReplicaSet \"{rs}\" is progressing."),
                            true,
                        ),
                    ]
                }
            };
            s.insert("conditions".into(), json!(conditions));
        }
        ("apps", "StatefulSet") => {
            let r = spec["replicas"].as_i64().unwrap_or(1);
            let rev = format!("{name}-{template_hash}");
            s.insert("observedGeneration".into(), json!(generation));
            s.insert("replicas".into(), json!(r));
            match phase {
                Phase::Ready => {
                    put_nonzero(&mut s, "readyReplicas", r);
                    put_nonzero(&mut s, "currentReplicas", r);
                    put_nonzero(&mut s, "updatedReplicas", r);
                    s.insert("availableReplicas".into(), json!(r));
                    s.insert("currentRevision".into(), json!(rev));
                }
                Phase::Pending { update: false } | Phase::Failed => {
                    put_nonzero(&mut s, "currentReplicas", r);
                    put_nonzero(&mut s, "updatedReplicas", r);
                    s.insert("availableReplicas".into(), json!(0));
                    s.insert("currentRevision".into(), json!(rev));
                }
                Phase::Pending { update: true } => {
                    put_nonzero(&mut s, "readyReplicas", r);
                    put_nonzero(&mut s, "currentReplicas", r);
                    s.insert("availableReplicas".into(), json!(r));
                    s.insert(
                        "currentRevision".into(),
                        json!(format!("{name}-{}", short_hash(&(generation - 1)))),
                    );
                }
            }
            s.insert("updateRevision".into(), json!(rev));
            s.insert("collisionCount".into(), json!(0));
        }
        ("apps", "DaemonSet") => {
            s.insert("currentNumberScheduled".into(), json!(1));
            s.insert("numberMisscheduled".into(), json!(0));
            s.insert("desiredNumberScheduled".into(), json!(1));
            match phase {
                Phase::Ready => {
                    s.insert("numberReady".into(), json!(1));
                    s.insert("observedGeneration".into(), json!(generation));
                    s.insert("updatedNumberScheduled".into(), json!(1));
                    s.insert("numberAvailable".into(), json!(1));
                }
                Phase::Pending { update: false } | Phase::Failed => {
                    s.insert("numberReady".into(), json!(0));
                    s.insert("observedGeneration".into(), json!(generation));
                    s.insert("updatedNumberScheduled".into(), json!(1));
                    s.insert("numberUnavailable".into(), json!(1));
                }
                Phase::Pending { update: true } => {
                    s.insert("numberReady".into(), json!(1));
                    s.insert("observedGeneration".into(), json!(generation));
                    s.insert("numberAvailable".into(), json!(1));
                }
            }
        }
        ("batch", "Job") => {
            let completions = spec["completions"].as_i64().unwrap_or(1);
            let parallelism = spec["parallelism"].as_i64().unwrap_or(1);
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
                        json!([
                            condition(
                                "SuccessCriteriaMet",
                                "True",
                                "CompletionsReached",
                                "Reached expected number of succeeded pods",
                                false
                            ),
                            condition(
                                "Complete",
                                "True",
                                "CompletionsReached",
                                "Reached expected number of succeeded pods",
                                false
                            ),
                        ]),
                    );
                    for c in s["conditions"].as_array_mut().unwrap() {
                        c["lastProbeTime"] = c["lastTransitionTime"].clone();
                    }
                }
                Phase::Failed => {
                    put_nonzero(
                        &mut s,
                        "failed",
                        spec["backoffLimit"].as_i64().unwrap_or(6) + 1,
                    );
                    s.insert(
                        "conditions".into(),
                        json!([
                            condition(
                                "FailureTarget",
                                "True",
                                "BackoffLimitExceeded",
                                "Job has reached the specified backoff limit",
                                false
                            ),
                            condition(
                                "Failed",
                                "True",
                                "BackoffLimitExceeded",
                                "Job has reached the specified backoff limit",
                                false
                            ),
                        ]),
                    );
                    for c in s["conditions"].as_array_mut().unwrap() {
                        c["lastProbeTime"] = c["lastTransitionTime"].clone();
                    }
                }
            }
            s.insert("terminating".into(), json!(0));
            s.insert("ready".into(), json!(0));
            s.insert("uncountedTerminatedPods".into(), json!({}));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let names = &spec["names"];
            let storage: Vec<Value> = spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| v["name"].clone())
                .collect();
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
        }
        _ => return None,
    }
    Some(Value::Object(s))
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({ "name": group, "versions": gvs, "preferredVersion": gvs[0] })
}

fn resource_list(group: &str, version: &str, types: &[&ResType]) -> Value {
    let mut resources = Vec::new();
    let mut sorted: Vec<&&ResType> = types.iter().collect();
    sorted.sort_by(|a, b| a.plural.cmp(&b.plural));
    for t in sorted {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        r["storageVersionHash"] = json!(short_hash(&(&t.group, &t.kind)));
        resources.push(r);
        for sub in &t.subresources {
            let verbs = if sub == "finalize" {
                json!(["update"])
            } else {
                json!(["get", "patch", "update"])
            };
            resources.push(json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = json!({ "kind": "APIResourceList" });
    if !group.is_empty() {
        // The core group's list has no apiVersion, as on a real server.
        list["apiVersion"] = json!("v1");
    }
    list["groupVersion"] = json!(gv);
    list["resources"] = json!(resources);
    list
}

/// Aggregated discovery (apidiscovery.k8s.io/v2), as asked for by
/// `kube::Discovery::run_aggregated` with `Accept: …;as=APIGroupDiscoveryList`.
fn aggregated_discovery(types: &[ResType], core: bool) -> Resp {
    let resource = |t: &ResType| {
        let gvk = json!({ "group": t.group, "version": t.version, "kind": t.kind });
        let subs: Vec<Value> = t
            .subresources
            .iter()
            .map(|s| {
                let verbs = if s == "finalize" {
                    json!(["update"])
                } else {
                    json!(["get", "patch", "update"])
                };
                json!({ "subresource": s, "responseKind": gvk, "verbs": verbs })
            })
            .collect();
        let mut r = json!({
            "resource": t.plural,
            "responseKind": gvk,
            "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": t.singular,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        if !subs.is_empty() {
            r["subresources"] = json!(subs);
        }
        r
    };
    let items: Vec<Value> = if core {
        let resources: Vec<Value> = types
            .iter()
            .filter(|t| t.group.is_empty())
            .map(resource)
            .collect();
        vec![json!({
            "metadata": { "creationTimestamp": null },
            "versions": [{ "version": "v1", "resources": resources, "freshness": "Current" }],
        })]
    } else {
        ApiState::groups(types)
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> =
                            types.iter().filter(|t| &t.group == g && &t.version == v).map(resource).collect();
                        json!({ "version": v, "resources": resources, "freshness": "Current" })
                    })
                    .collect();
                json!({ "metadata": { "name": g, "creationTimestamp": null }, "versions": versions })
            })
            .collect()
    };
    Resp {
        code: 200,
        content_type: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        body: serde_json::to_vec(&json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }))
        .unwrap(),
        watch: None,
    }
}
