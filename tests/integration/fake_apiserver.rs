//! The fake API server fixture, driven by kube-rs itself: proves it serves what kube-rs uses.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use infrad_test_support::fake_apiserver::FakeApiServer;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace},
};
use kube::{
    Client, Discovery,
    api::{
        Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        WatchEvent, WatchParams,
    },
    config::{KubeConfigOptions, Kubeconfig},
    discovery::{self, Scope},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn client_from(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

async fn client(f: &FakeApiServer) -> Client {
    client_from(&f.kubeconfig("t")).await
}

/// An `Api<DynamicObject>` found by discovery, as infrad does it.
async fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (ar, caps) = discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .unwrap_or_else(|e| panic!("discovery of {group}/{version} {kind}: {e}"));
    match (caps.scope, ns) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

async fn apply(api: &Api<DynamicObject>, obj: Value) -> kube::Result<DynamicObject> {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("infrad").force(),
        &Patch::Apply(&obj),
    )
    .await
}

fn api_error(r: kube::Result<impl std::fmt::Debug>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
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

fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

fn deployment(name: &str, replicas: i64, image: &str, annotations: Value) -> Value {
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

fn condition<'a>(obj: &'a DynamicObject, kind: &str) -> Option<&'a str> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// The check a careful client makes: observed, fully updated and available.
fn deployment_ready(d: &DynamicObject) -> bool {
    let s = &d.data["status"];
    let want = d.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    s["observedGeneration"].as_i64() == d.metadata.generation
        && n("updatedReplicas") == want
        && n("replicas") == want
        && n("availableReplicas") == want
        && condition(d, "Available") == Some("True")
}

async fn raw_get(url: &str, path: &str) -> String {
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

#[tokio::test]
async fn version_health_and_discovery() {
    let f = FakeApiServer::start().await;
    let client = client(&f).await;

    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.36.1");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
    let readyz = raw_get(&f.url(), "/readyz").await;
    assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
    assert!(readyz.ends_with("\r\n\r\nok"), "{readyz}");

    let (ar, caps) =
        discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .await
            .unwrap();
    assert_eq!(
        (ar.plural.as_str(), ar.api_version.as_str()),
        ("deployments", "apps/v1")
    );
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "deployments/status" || r.plural == "status")
    );

    for (g, v, k, plural, scope) in [
        ("", "v1", "Namespace", "namespaces", Scope::Cluster),
        ("", "v1", "ConfigMap", "configmaps", Scope::Namespaced),
        (
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Scope::Namespaced,
        ),
        ("batch", "v1", "Job", "jobs", Scope::Namespaced),
        ("apps", "v1", "DaemonSet", "daemonsets", Scope::Namespaced),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            Scope::Cluster,
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            Scope::Namespaced,
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            Scope::Cluster,
        ),
    ] {
        let (ar, caps) = discovery::pinned_kind(&client, &GroupVersionKind::gvk(g, v, k))
            .await
            .unwrap();
        assert_eq!(ar.plural, plural);
        assert_eq!(caps.scope, scope, "{k}");
    }

    // An unknown group is a 404 (a text body on a real server; kube makes it a Status).
    let err = discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
    )
    .await;
    assert_eq!(api_error(err).code, 404);
    // A known group without the kind is a discovery error, not an API error.
    let err = discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "Widget")).await;
    assert!(matches!(err, Err(kube::Error::Discovery(_))), "{err:?}");

    // Full discovery, legacy and aggregated.
    for d in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        for gvk in [
            GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
            GroupVersionKind::gvk("", "v1", "Secret"),
            GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        ] {
            assert!(d.resolve_gvk(&gvk).is_some(), "{gvk:?}");
        }
    }
}

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

#[tokio::test]
async fn readiness_per_kind_and_the_ready_after_annotation() {
    let f = FakeApiServer::start().await;
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let start = Instant::now();
    apply(&deploys, deployment("quick", 1, "q:1", json!({})))
        .await
        .unwrap();
    apply(
        &deploys,
        deployment(
            "slow",
            1,
            "s:1",
            json!({ "infrad.test/ready-after": "400" }),
        ),
    )
    .await
    .unwrap();
    apply(
        &deploys,
        deployment(
            "stuck",
            1,
            "s:1",
            json!({ "infrad.test/ready-after": "never" }),
        ),
    )
    .await
    .unwrap();

    let ready = |name: &'static str| {
        let deploys = deploys.clone();
        async move { deployment_ready(&deploys.get(name).await.unwrap()) }
    };
    eventually("quick is ready", || ready("quick")).await;
    assert!(!ready("slow").await || start.elapsed() >= Duration::from_millis(400));
    eventually("slow is ready", || ready("slow")).await;
    assert!(start.elapsed() >= Duration::from_millis(400));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!ready("stuck").await, "ready-after: never stays not ready");

    let sts = api(&client, "apps", "v1", "StatefulSet", Some("default")).await;
    let ds = api(&client, "apps", "v1", "DaemonSet", Some("default")).await;
    let jobs = api(&client, "batch", "v1", "Job", Some("default")).await;
    let pod_template = json!({
        "metadata": { "labels": { "app": "x" } },
        "spec": { "containers": [{ "name": "main", "image": "x:1" }], "restartPolicy": "Never" },
    });
    let workload = |kind: &str, name: &str, annotations: Value| {
        let mut spec =
            json!({ "selector": { "matchLabels": { "app": "x" } }, "template": pod_template });
        if kind == "Job" {
            spec = json!({ "template": pod_template });
        }
        json!({
            "apiVersion": if kind == "Job" { "batch/v1" } else { "apps/v1" },
            "kind": kind,
            "metadata": { "name": name, "annotations": annotations },
            "spec": spec,
        })
    };
    apply(&sts, workload("StatefulSet", "db", json!({})))
        .await
        .unwrap();
    apply(&ds, workload("DaemonSet", "agent", json!({})))
        .await
        .unwrap();
    let job = apply(&jobs, workload("Job", "migrate", json!({})))
        .await
        .unwrap();
    assert_eq!(job.data["status"]["active"], 1);
    apply(
        &jobs,
        workload(
            "Job",
            "broken",
            json!({ "infrad.test/ready-after": "fail" }),
        ),
    )
    .await
    .unwrap();

    eventually("the statefulset is ready", || async {
        let s = sts.get("db").await.unwrap();
        s.data["status"]["readyReplicas"] == 1 && s.data["status"]["availableReplicas"] == 1
    })
    .await;
    eventually("the daemonset is ready", || async {
        ds.get("agent").await.unwrap().data["status"]["numberReady"] == 1
    })
    .await;
    eventually("the job completes", || async {
        let j = jobs.get("migrate").await.unwrap();
        j.data["status"]["succeeded"] == 1 && condition(&j, "Complete") == Some("True")
    })
    .await;
    eventually("the broken job fails", || async {
        condition(&jobs.get("broken").await.unwrap(), "Failed") == Some("True")
    })
    .await;
    let done = jobs.get("migrate").await.unwrap();
    assert_eq!(condition(&done, "SuccessCriteriaMet"), Some("True"));
    assert!(done.data["status"]["active"].is_null());
}

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
