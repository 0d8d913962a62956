//! Namespaces: their default contents, listing by label and field, and deletion
//! (Terminating, then gone with everything in it).

use std::time::{Duration, Instant};

use infrad_test_support::fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;

use super::{api, api_error, apply, client, deployment, eventually, namespace};

#[tokio::test]
async fn namespace_deletion_terminates_then_removes_everything_in_it() {
    let f = FakeApiServer::start().await;
    f.set_namespace_deletion_delay(Duration::from_millis(300));
    let client = client(&f).await;
    let nss = api(&client, "", "v1", "Namespace", None).await;
    apply(&nss, namespace("gone")).await.unwrap();
    let cms = api(&client, "", "v1", "ConfigMap", Some("gone")).await;
    let cm = |name: &str| json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "k": "v" } });
    apply(&cms, cm("cfg")).await.unwrap();
    let deploys = api(&client, "apps", "v1", "Deployment", Some("gone")).await;
    apply(&deploys, deployment("web", 1, "web:1", json!({})))
        .await
        .unwrap();
    // A namespace comes with its default ServiceAccount and root CA ConfigMap.
    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["cfg".to_string(), "kube-root-ca.crt".to_string()]
    );

    // Deleting a plain object answers a Status.
    apply(&cms, cm("tmp")).await.unwrap();
    let status = cms
        .delete("tmp", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a Status");
    assert_eq!(status.code, 0);
    assert!(status.is_success());

    let started = Instant::now();
    let deleted = nss
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the namespace");
    assert_eq!(deleted.data["status"]["phase"], "Terminating");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    assert_eq!(
        nss.get("gone").await.unwrap().data["status"]["phase"],
        "Terminating"
    );
    assert!(f.namespaces().contains(&"gone".to_string()));

    let typed: Api<Namespace> = Api::all(client.clone());
    let listed = typed.list(&ListParams::default()).await.unwrap();
    let phase = |n: &str| {
        listed
            .items
            .iter()
            .find(|i| i.metadata.name.as_deref() == Some(n))
            .and_then(|i| i.status.clone()?.phase)
    };
    assert_eq!(phase("gone").as_deref(), Some("Terminating"));
    assert_eq!(phase("kube-system").as_deref(), Some("Active"));
    let one = typed
        .list(&ListParams::default().labels("kubernetes.io/metadata.name=default"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let terminating = typed
        .list(&ListParams::default().fields("status.phase=Terminating"))
        .await
        .unwrap();
    let names: Vec<_> = terminating
        .items
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["gone"]);

    let s = api_error(apply(&cms, cm("late")).await);
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        api_error(nss.delete("gone", &DeleteParams::default()).await).code,
        409
    );
    assert_eq!(
        api_error(nss.delete("default", &DeleteParams::default()).await).code,
        403
    );

    eventually("the namespace is gone", || async {
        nss.get_opt("gone").await.unwrap().is_none()
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(cms.get_opt("cfg").await.unwrap().is_none());
    assert!(deploys.get_opt("web").await.unwrap().is_none());
    assert!(f.object("ConfigMap", Some("gone"), "cfg").is_none());
    assert_eq!(
        f.namespaces(),
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );

    // The namespace can be made again, and its objects with it.
    apply(&nss, namespace("gone")).await.unwrap();
    apply(&cms, cm("cfg")).await.unwrap();
    assert_eq!(
        f.applied()
            .iter()
            .filter(|a| a.kind == "Namespace" && a.name == "gone")
            .count(),
        2
    );
}
