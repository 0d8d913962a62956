//! The fake API server fixture, driven by kube-rs itself: proves it serves what kube-rs uses.
//! One file per concern: discovery, apply (server-side apply, get, delete and errors),
//! namespaces (deletion and listing), status (simulated readiness), pods (simulated from
//! workloads), CRDs and watches; the helpers here are shared by several of them.

mod apply;
mod crd;
mod discovery;
mod namespaces;
mod pods;
mod status;
mod watch;

use std::time::{Duration, Instant};

use infrad_test_support::fake_apiserver::FakeApiServer;
use kube::{
    Client,
    api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    discovery::Scope,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) async fn client_from(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

pub(super) async fn client(f: &FakeApiServer) -> Client {
    client_from(&f.kubeconfig("t")).await
}

/// An `Api<DynamicObject>` found by discovery, as infrad does it.
pub(super) async fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (ar, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap_or_else(|e| panic!("discovery of {group}/{version} {kind}: {e}"));
    match (caps.scope, ns) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

pub(super) async fn apply(api: &Api<DynamicObject>, obj: Value) -> kube::Result<DynamicObject> {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("infrad").force(),
        &Patch::Apply(&obj),
    )
    .await
}

pub(super) fn api_error(r: kube::Result<impl std::fmt::Debug>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub(super) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

pub(super) fn deployment(name: &str, replicas: i64, image: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": name }, "annotations": annotations },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "main", "image": image }] },
            },
        },
    })
}

pub(super) fn condition<'a>(obj: &'a DynamicObject, kind: &str) -> Option<&'a str> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// The check a careful client makes: observed, fully updated and available.
pub(super) fn deployment_ready(d: &DynamicObject) -> bool {
    let s = &d.data["status"];
    let want = d.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    s["observedGeneration"].as_i64() == d.metadata.generation
        && n("updatedReplicas") == want
        && n("replicas") == want
        && n("availableReplicas") == want
        && condition(d, "Available") == Some("True")
}

pub(super) async fn raw_get(url: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
