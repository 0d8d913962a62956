//! Server-side apply, get and delete of plain objects, what the fixture records, and the
//! errors (and token check) a real server would answer with.

use std::time::{Duration, Instant};

use infrad_test_support::fake_apiserver::FakeApiServer;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use super::{
    api, api_error, apply, client, client_from, condition, deployment, deployment_ready,
    eventually, namespace,
};

#[tokio::test]
async fn apply_namespace_then_deployment_becomes_ready() {
    let f = FakeApiServer::start().await;
    f.set_ready_delay(Duration::from_millis(300));
    let client = client(&f).await;

    let ns = apply(
        &api(&client, "", "v1", "Namespace", None).await,
        namespace("demo"),
    )
    .await
    .unwrap();
    assert_eq!(ns.data["status"]["phase"], "Active");
    assert!(ns.metadata.uid.is_some());
    assert!(f.namespaces().contains(&"demo".to_string()));

    let deploys = api(&client, "apps", "v1", "Deployment", Some("demo")).await;
    let applied_at = Instant::now();
    let d = apply(&deploys, deployment("web", 2, "web:1", json!({})))
        .await
        .unwrap();
    assert_eq!(d.metadata.namespace.as_deref(), Some("demo"));
    assert_eq!(d.metadata.generation, Some(1));
    let rv1: u64 = d
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(!deployment_ready(&d));
    assert_eq!(d.data["status"]["observedGeneration"], 1);
    assert_eq!(d.data["status"]["updatedReplicas"], 2);
    assert!(
        d.data["status"]["readyReplicas"].is_null(),
        "zero counts are omitted"
    );
    assert_eq!(condition(&d, "Available"), Some("False"));

    let got = deploys.get("web").await.unwrap();
    assert!(!deployment_ready(&got));
    eventually("the deployment is ready", || async {
        deployment_ready(&deploys.get("web").await.unwrap())
    })
    .await;
    assert!(applied_at.elapsed() >= Duration::from_millis(300));
    let ready = deploys.get("web").await.unwrap();
    assert_eq!(ready.data["status"]["readyReplicas"], 2);
    assert_eq!(condition(&ready, "Progressing"), Some("True"));
    let rv2: u64 = ready
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "the status change bumps the resourceVersion");

    // Typed access works too (k8s-openapi deserialises the same JSON).
    let typed: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    let t = typed.get("web").await.unwrap();
    assert_eq!(t.status.unwrap().ready_replicas, Some(2));

    // Re-applying the same object changes nothing.
    let same = apply(&deploys, deployment("web", 2, "web:1", json!({})))
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        ready.metadata.resource_version
    );
    assert!(deployment_ready(&same));

    // A new image: generation 2 and a rolling update (Available stays True meanwhile).
    let upd = apply(&deploys, deployment("web", 2, "web:2", json!({})))
        .await
        .unwrap();
    assert_eq!(upd.metadata.generation, Some(2));
    assert_eq!(upd.metadata.uid, d.metadata.uid);
    assert!(!deployment_ready(&upd));
    assert_eq!(condition(&upd, "Available"), Some("True"));
    assert_eq!(upd.data["status"]["readyReplicas"], 2);
    eventually("the update is rolled out", || async {
        deployment_ready(&deploys.get("web").await.unwrap())
    })
    .await;
    assert_eq!(
        deploys.get("web").await.unwrap().data["status"]["observedGeneration"],
        2
    );

    // What the fixture recorded.
    let applied: Vec<(String, Option<String>, String)> = f
        .applied()
        .into_iter()
        .map(|a| (a.kind, a.namespace, a.name))
        .collect();
    assert_eq!(
        applied,
        vec![
            ("Namespace".into(), None, "demo".into()),
            ("Deployment".into(), Some("demo".into()), "web".into()),
        ]
    );
    let stored = f.object("Deployment", Some("demo"), "web").unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );
    let patch = f
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path == "/apis/apps/v1/namespaces/demo/deployments/web")
        .unwrap();
    // kube-rs sends `?&force=true&fieldManager=infrad`: note the empty first pair.
    let mut pairs: Vec<&str> = patch.query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort();
    assert_eq!(pairs, ["fieldManager=infrad", "force=true"]);
    if std::env::var_os("FAKE_APISERVER_DUMP").is_some() {
        for r in f.requests() {
            eprintln!("{} {} ?{} {:?}", r.method, r.path, r.query, r.content_type);
        }
    }
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert!(
        f.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/demo")
    );
}

#[tokio::test]
async fn apply_errors_look_like_a_real_server() {
    let f = FakeApiServer::start().await;
    let client = client(&f).await;

    let missing = api(&client, "apps", "v1", "Deployment", Some("nope")).await;
    let s = api_error(apply(&missing, deployment("web", 1, "web:1", json!({}))).await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"nope\" not found");
    let details = s.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("nope", "namespaces")
    );

    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let s = api_error(
        deploys
            .patch(
                "other",
                &PatchParams::apply("infrad").force(),
                &Patch::Apply(deployment("web", 1, "x", json!({}))),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(
        s.message.contains("does not match the name on the URL"),
        "{}",
        s.message
    );

    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "web" } });
    let s = api_error(apply(&deploys, cm).await);
    assert_eq!(s.code, 400, "{}", s.message);

    let s = api_error(
        deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Apply(deployment("web", 1, "x", json!({}))),
            )
            .await,
    );
    assert_eq!(s.code, 422, "{}", s.message);
    assert!(s.message.contains("fieldManager"), "{}", s.message);

    let s = api_error(deploys.get("ghost").await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "deployments.apps \"ghost\" not found");
    assert_eq!(
        api_error(deploys.delete("ghost", &DeleteParams::default()).await).code,
        404
    );
    assert!(deploys.get_opt("ghost").await.unwrap().is_none());
    assert!(f.applied().is_empty());

    // Without a token the resources are forbidden (public paths stay open).
    let anonymous = f
        .kubeconfig("t")
        .replace("  user:\n    token: fake-token-t\n", "  user: {}\n");
    assert!(!anonymous.contains("token"));
    let anon = client_from(&anonymous).await;
    assert!(anon.apiserver_version().await.is_ok());
    let nss: Api<Namespace> = Api::all(anon);
    assert!(
        nss.list(&ListParams::default()).await.is_ok(),
        "anonymous is allowed by default"
    );
    f.set_require_token(true);
    assert_eq!(api_error(nss.list(&ListParams::default()).await).code, 403);
    assert!(anon_version_ok(&anonymous).await);
    // kube-rs does send the token over plain http.
    let nss: Api<Namespace> = Api::all(client);
    assert!(nss.list(&ListParams::default()).await.is_ok());
}

async fn anon_version_ok(kubeconfig: &str) -> bool {
    client_from(kubeconfig)
        .await
        .apiserver_version()
        .await
        .is_ok()
}
