//! A CustomResourceDefinition: established after a delay, then its kind is served and
//! discovered, until the CRD is deleted.

use std::time::Duration;

use infrad_test_support::fake_apiserver::FakeApiServer;
use kube::{
    Discovery,
    api::{DeleteParams, GroupVersionKind, ListParams},
    discovery::{self, Scope},
};
use serde_json::{Value, json};

use super::{api, api_error, apply, client, condition, eventually};

fn widget_crd(scope: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.com", "annotations": annotations },
        "spec": {
            "group": "example.com",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"] },
            "scope": scope,
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                "subresources": { "status": {} },
            }],
        },
    })
}

#[tokio::test]
async fn crd_becomes_established_then_serves_its_kind() {
    let f = FakeApiServer::start().await;
    f.set_ready_delay(Duration::from_millis(200));
    let client = client(&f).await;
    let crds = api(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        None,
    )
    .await;

    let mut bad = widget_crd("Namespaced", json!({}));
    bad["metadata"]["name"] = json!("widgets.example.org");
    assert_eq!(api_error(apply(&crds, bad).await).code, 422);

    let crd = apply(&crds, widget_crd("Namespaced", json!({})))
        .await
        .unwrap();
    assert_ne!(condition(&crd, "Established"), Some("True"));
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    assert_eq!(
        api_error(discovery::pinned_kind(&client, &gvk).await).code,
        404,
        "not served before it is established"
    );

    eventually("the CRD is established", || async {
        condition(
            &crds.get("widgets.example.com").await.unwrap(),
            "Established",
        ) == Some("True")
    })
    .await;
    let crd = crds.get("widgets.example.com").await.unwrap();
    assert_eq!(condition(&crd, "NamesAccepted"), Some("True"));
    assert_eq!(crd.data["status"]["acceptedNames"]["kind"], "Widget");

    let widgets = api(&client, "example.com", "v1", "Widget", Some("default")).await;
    let w = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": { "name": "w1" }, "spec": { "size": 3 },
    });
    let created = apply(&widgets, w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], 3);
    let list = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].types.as_ref().unwrap().kind, "Widget");
    assert_eq!(
        f.object("Widget", Some("default"), "w1").unwrap()["spec"]["size"],
        3
    );

    for d in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let (ar, caps) = d.resolve_gvk(&gvk).expect("the CRD's kind is discovered");
        assert_eq!(
            (ar.plural.as_str(), caps.scope),
            ("widgets", Scope::Namespaced)
        );
    }

    // Deleting the CRD takes its kind and objects away.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        api_error(discovery::pinned_kind(&client, &gvk).await).code,
        404
    );
    assert!(f.object("Widget", Some("default"), "w1").is_none());
}
