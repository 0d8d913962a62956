//! Watches: from a resourceVersion, streaming lists, bookmarks, timeouts, deletions, and
//! their end when the server is dropped.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use infrad_test_support::fake_apiserver::FakeApiServer;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace},
};
use kube::api::{Api, DeleteParams, ListParams, WatchEvent, WatchParams};
use serde_json::json;

use super::{api, apply, client, deployment, deployment_ready, eventually, namespace, raw_get};

#[tokio::test]
async fn stops_serving_when_dropped() {
    let f = FakeApiServer::start().await;
    let url = f.url();
    assert!(raw_get(&url, "/readyz").await.ends_with("ok"));
    let nss: Api<Namespace> = Api::all(client(&f).await);
    let mut events = nss
        .watch(&WatchParams::default(), "")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next_event(&mut events).await.0, "ADDED");
    drop(f);
    let rest = tokio::time::timeout(Duration::from_secs(10), events.count()).await;
    assert_eq!(rest.expect("watches end when the server is dropped"), 3);
    let addr = url.trim_start_matches("http://").to_string();
    eventually("the port is closed", || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(addr).await.is_err() }
    })
    .await;
}

/// The next event of a watch, as (type, name, resourceVersion), and the object if it has one.
async fn next_event<K: kube::Resource>(
    events: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> (&'static str, String, u64, Option<K>) {
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch goes on")
        .expect("a watch event, not an error");
    let rv = |o: &K| o.meta().resource_version.clone().unwrap().parse().unwrap();
    let (kind, o) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        WatchEvent::Bookmark(b) => {
            return (
                "BOOKMARK",
                String::new(),
                b.metadata.resource_version.parse().unwrap(),
                None,
            );
        }
        WatchEvent::Error(e) => panic!("watch error: {e:?}"),
    };
    (kind, o.meta().name.clone().unwrap(), rv(&o), Some(o))
}

#[tokio::test]
async fn watch_sees_a_deployment_added_then_ready() {
    let f = FakeApiServer::start().await;
    f.set_ready_delay(Duration::from_millis(300));
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let applied_at = Instant::now();
    apply(&deploys, deployment("other", 1, "o:1", json!({})))
        .await
        .unwrap();
    let web = apply(&deploys, deployment("web", 2, "web:1", json!({})))
        .await
        .unwrap();

    let typed: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let wp = WatchParams::default().fields("metadata.name=web");
    let mut events = typed.watch(&wp, "0").await.unwrap().boxed();
    let (kind, name, rv1, d) = next_event(&mut events).await;
    assert_eq!((kind, name.as_str()), ("ADDED", "web"));
    assert_eq!(Some(rv1.to_string()), web.metadata.resource_version);
    assert_eq!(d.unwrap().status.unwrap().ready_replicas, None);
    let (kind, name, rv2, d) = next_event(&mut events).await;
    assert_eq!((kind, name.as_str()), ("MODIFIED", "web"));
    assert!(rv2 > rv1, "the status change has a new resourceVersion");
    assert!(applied_at.elapsed() >= Duration::from_millis(300));
    assert_eq!(d.unwrap().status.unwrap().ready_replicas, Some(2));
    assert_eq!(
        deploys.get("web").await.unwrap().metadata.resource_version,
        Some(rv2.to_string())
    );

    // A streaming list (sendInitialEvents): the current state, then a bookmark marking its end.
    let wp = WatchParams::streaming_lists().fields("metadata.name=web");
    let mut list = typed.watch(&wp, "").await.unwrap().boxed();
    assert_eq!(next_event(&mut list).await.2, rv2);
    match list.next().await {
        Some(Ok(WatchEvent::Bookmark(b))) => {
            assert_eq!(b.metadata.annotations["k8s.io/initial-events-end"], "true");
        }
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }

    let req = f
        .requests()
        .into_iter()
        .find(|r| r.query.contains("watch=true"))
        .unwrap();
    assert_eq!(req.path, "/apis/apps/v1/namespaces/default/deployments");
    let raw = raw_get(&f.url(), "/api/v1/namespaces?watch=1&timeoutSeconds=1").await;
    let head = raw.split("\r\n\r\n").next().unwrap().to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{raw}");
    assert!(head.contains("content-type: application/json"), "{raw}");
    assert!(raw.contains(r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Namespace""#));
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_only_later_changes() {
    let f = FakeApiServer::start().await;
    f.set_ready_delay(Duration::from_millis(200));
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let before: String = deploys
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let applied = apply(&deploys, deployment("web", 1, "web:1", json!({})))
        .await
        .unwrap();
    let after = applied.metadata.resource_version.unwrap();

    let wp = WatchParams::default().labels("app=web").timeout(3);
    let mut later = deploys.watch(&wp, &after).await.unwrap().boxed();
    let (kind, _, rv, d) = next_event(&mut later).await;
    assert_eq!(
        kind, "MODIFIED",
        "no ADDED: the apply was not after {after}"
    );
    assert!(deployment_ready(&d.unwrap()));
    // An older version replays the apply too.
    let mut replay = deploys.watch(&wp, &before).await.unwrap().boxed();
    assert_eq!(next_event(&mut replay).await.0, "ADDED");
    assert_eq!(next_event(&mut replay).await.2, rv);

    apply(&deploys, deployment("web", 1, "web:2", json!({})))
        .await
        .unwrap();
    let (kind, _, _, d) = next_event(&mut later).await;
    assert_eq!(kind, "MODIFIED");
    assert!(!deployment_ready(&d.unwrap()), "the update rolls out");
    assert_eq!(next_event(&mut later).await.0, "MODIFIED");
    deploys
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let (kind, name, deleted_rv, _) = next_event(&mut later).await;
    assert_eq!((kind, name.as_str()), ("DELETED", "web"));
    // After timeoutSeconds: a bookmark (kube asks for them by default), then the end.
    let (kind, _, bookmark_rv, _) = next_event(&mut later).await;
    assert_eq!(kind, "BOOKMARK");
    assert!(bookmark_rv >= deleted_rv);
    assert!(
        later.next().await.is_none(),
        "the watch ends after its timeout"
    );
}

#[tokio::test]
async fn watch_sees_a_namespace_and_its_contents_deleted() {
    let f = FakeApiServer::start().await;
    f.set_namespace_deletion_delay(Duration::from_millis(300));
    let client = client(&f).await;
    let nss = api(&client, "", "v1", "Namespace", None).await;
    apply(&nss, namespace("gone")).await.unwrap();
    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cfg" } });
    apply(&api(&client, "", "v1", "ConfigMap", Some("gone")).await, cm)
        .await
        .unwrap();

    let typed: Api<Namespace> = Api::all(client.clone());
    let by_name = WatchParams::default().fields("metadata.name=gone");
    let mut events = typed.watch(&by_name, "0").await.unwrap().boxed();
    let active = WatchParams::default().fields("status.phase=Active");
    let mut active = typed.watch(&active, "0").await.unwrap().boxed();
    let cms: Api<ConfigMap> = Api::all(client.clone());
    let mut cm_events = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next_event(&mut events).await.0, "ADDED");

    let started = Instant::now();
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    let (kind, _, _, ns) = next_event(&mut events).await;
    assert_eq!(kind, "MODIFIED");
    assert_eq!(
        ns.unwrap().status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let (kind, name, ns_deleted_rv, _) = next_event(&mut events).await;
    assert_eq!((kind, name.as_str()), ("DELETED", "gone"));
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A watch whose selector it stops matching sees it DELETED as soon as it terminates.
    let mut names = Vec::new();
    loop {
        let (kind, name, _, _) = next_event(&mut active).await;
        if kind == "DELETED" {
            assert_eq!(name, "gone");
            break;
        }
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "default",
            "gone",
            "kube-node-lease",
            "kube-public",
            "kube-system"
        ]
    );
    // Its contents go too, before it.
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        let (kind, name, rv, cm) = next_event(&mut cm_events).await;
        if cm.unwrap().metadata.namespace.as_deref() == Some("gone") && kind == "DELETED" {
            assert!(rv < ns_deleted_rv);
            deleted.push(name);
        }
    }
    assert_eq!(deleted, ["cfg", "kube-root-ca.crt"]);
}
