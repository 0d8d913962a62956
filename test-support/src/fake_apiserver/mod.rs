//! An in-process fake Kubernetes API server (plain HTTP on 127.0.0.1:0) serving what kube-rs
//! uses: `/version`, health, discovery (legacy and aggregated v2), server-side apply, merge
//! patch, create, get, list, watch and delete, with Kubernetes-shaped JSON and `Status` errors.
//!
//! Workload status is simulated: an object is "not ready yet" until a delay after the apply that
//! last changed its spec (`set_ready_delay`, default 0; per object the annotation
//! `infrad.test/ready-after` = milliseconds, `never`, `fail` or `fail:MS`), then "ready".
//! Time moves lazily: transitions happen at the start of the next request or helper call.
//!
//! Pods are simulated too, read-only (`get`, `list`, `log` as in logs.rs; no watch): each Deployment, StatefulSet,
//! DaemonSet and Job (unless scaled to zero) has one, computed on every read and never stored
//! (so not in `applied()`), named `WORKLOAD-HASH` (the hash of its pod template), with the
//! template's labels, containers and an owner reference to the workload. Its status follows
//! the workload's: `Pending` with containers waiting `ContainerCreating` while not ready,
//! `Running` and ready once ready (`Succeeded` for a complete Job), containers terminated with
//! exit code 1 once failed (`Failed` for a Job). `set_image_failure` names images that cannot
//! run: a workload using one never becomes ready, and its pod's container waits with the
//! given reason and message.
//!
//! Events are stored objects like any other; `add_event` creates one as a controller would.
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

mod discovery;
mod logs;
mod objects;
mod pods;
mod routing;
mod status;
mod watch;
mod writes;

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use axum::Router;
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot};

use objects::ApiState;
use pods::ImageFailure;
use routing::handle;

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

    /// Makes images whose reference starts with `image_prefix` unable to run: a workload whose
    /// pod template (containers or init containers) uses one never becomes ready (as with
    /// `ready-after: never`; one already ready stays so), and in its pod that container waits
    /// with `reason` and `message` (restarted 3 times for `CrashLoopBackOff`). Rules add up;
    /// the first one set that matches an image is used.
    pub fn set_image_failure(&self, image_prefix: &str, reason: &str, message: &str) {
        self.shared.lock().add_image_failure(ImageFailure {
            prefix: image_prefix.into(),
            reason: reason.into(),
            message: message.into(),
        });
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

    /// The current log of every container named `container`, in any pod (the default is
    /// one line saying what runs).
    pub fn set_container_log(&self, container: &str, text: &str) {
        self.shared
            .lock()
            .container_logs
            .insert(container.into(), text.into());
    }

    /// Creates an Event (`core/v1`) in `namespace`, as a controller would: `event` gives
    /// its fields (`reason`, `message`, `type`, `involvedObject`, timestamps).
    pub fn add_event(&self, namespace: &str, name: &str, mut event: Value) {
        event["apiVersion"] = "v1".into();
        event["kind"] = "Event".into();
        event["metadata"] = serde_json::json!({ "name": name, "namespace": namespace });
        let mut st = self.shared.lock();
        let rt = st
            .types()
            .into_iter()
            .find(|t| t.is("", "Event"))
            .expect("events are served");
        let body = serde_json::to_vec(&event).unwrap();
        let created = st.create(&rt, Some(namespace), &Default::default(), &body);
        assert_eq!(
            created.code,
            201,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
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

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds).
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Ten characters of a hash, in the alphabet Kubernetes uses for generated name suffixes.
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
