//! Simulated pods, read as kube-rs reads them: one per workload, following its readiness, and
//! the image failures that keep a workload from ever becoming ready.

use std::time::{Duration, Instant};

use infrad_test_support::fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::{
    api::{Api, GroupVersionKind, ListParams},
    discovery::{self, Scope},
};
use serde_json::json;

use super::{api, api_error, apply, client, deployment, deployment_ready, eventually};

const NEVER_PULL: &str =
    "Container image \"kubernaut/we:infrad-abc\" is not present with pull policy of Never";

/// The one pod `selector` selects.
async fn only_pod(pods: &Api<Pod>, selector: &str) -> Pod {
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "one pod for {selector}: {list:?}");
    list.items.into_iter().next().unwrap()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .unwrap()
        .phase
        .as_deref()
        .unwrap_or_default()
}

fn container(p: &Pod) -> &ContainerStatus {
    let statuses = p.status.as_ref().unwrap().container_statuses.as_ref();
    &statuses.expect("container statuses")[0]
}

fn pod_condition<'a>(p: &'a Pod, kind: &str) -> Option<&'a str> {
    let conditions = p.status.as_ref()?.conditions.as_ref()?;
    Some(conditions.iter().find(|c| c.type_ == kind)?.status.as_str())
}

fn waiting(c: &ContainerStatus) -> (Option<&str>, Option<&str>) {
    let w = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    (
        w.and_then(|w| w.reason.as_deref()),
        w.and_then(|w| w.message.as_deref()),
    )
}

#[tokio::test]
async fn a_deployments_pod_is_created_then_runs() {
    let f = FakeApiServer::start().await;
    f.set_ready_delay(Duration::from_millis(300));
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let applied_at = Instant::now();
    let d = apply(&deploys, deployment("web", 1, "nginx:1.27", json!({})))
        .await
        .unwrap();

    let pod = only_pod(&pods, "app=web").await;
    let name = pod.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-"), "{name}");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(Some(&owner.uid), d.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:1.27"));
    assert_eq!(phase(&pod), "Pending");
    assert_eq!(pod_condition(&pod, "Ready"), Some("False"));
    let c = container(&pod);
    assert_eq!((c.name.as_str(), c.ready), ("main", false));
    assert_eq!(waiting(c).0, Some("ContainerCreating"));

    eventually("the pod runs", || async {
        let p = pods.get(&name).await.unwrap();
        phase(&p) == "Running" && container(&p).ready
    })
    .await;
    assert!(applied_at.elapsed() >= Duration::from_millis(300));
    let pod = pods.get(&name).await.unwrap();
    assert_eq!(pod_condition(&pod, "Ready"), Some("True"));
    let c = container(&pod);
    assert_eq!(c.restart_count, 0);
    let state = c.state.as_ref().unwrap();
    assert!(state.waiting.is_none());
    assert!(state.running.as_ref().unwrap().started_at.is_some());
    assert!(deployment_ready(&deploys.get("web").await.unwrap()));
    // The same template keeps the same pod; pods are not objects the server was given.
    assert_eq!(only_pod(&pods, "app=web").await.metadata.name, Some(name));
    assert!(f.applied().iter().all(|a| a.kind != "Pod"));
}

#[tokio::test]
async fn an_image_that_cannot_run_keeps_its_workload_unready() {
    let f = FakeApiServer::start().await;
    f.set_image_failure("kubernaut/we:infrad-", "ErrImageNeverPull", NEVER_PULL);
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    apply(
        &deploys,
        deployment("bad", 1, "kubernaut/we:infrad-abc", json!({})),
    )
    .await
    .unwrap();
    apply(
        &deploys,
        deployment("good", 1, "kubernaut/we:v1", json!({})),
    )
    .await
    .unwrap();

    eventually("the other image is ready", || async {
        deployment_ready(&deploys.get("good").await.unwrap())
    })
    .await;
    let good = only_pod(&pods, "app=good").await;
    assert_eq!((phase(&good), container(&good).ready), ("Running", true));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bad = deploys.get("bad").await.unwrap();
    assert!(!deployment_ready(&bad));
    assert!(bad.data["status"]["availableReplicas"].is_null());
    let pod = only_pod(&pods, "app=bad").await;
    assert_eq!(phase(&pod), "Pending");
    let c = container(&pod);
    assert_eq!(waiting(c), (Some("ErrImageNeverPull"), Some(NEVER_PULL)));
    assert_eq!((c.ready, c.restart_count), (false, 0));

    // A rule also holds a workload applied before it, while it is still rolling out.
    apply(
        &deploys,
        deployment(
            "crashy",
            1,
            "crashy:1",
            json!({ "infrad.test/ready-after": "300" }),
        ),
    )
    .await
    .unwrap();
    f.set_image_failure(
        "crashy:",
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=main",
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!deployment_ready(&deploys.get("crashy").await.unwrap()));
    let pod = only_pod(&pods, "app=crashy").await;
    let c = container(&pod);
    assert_eq!(waiting(c).0, Some("CrashLoopBackOff"));
    assert_eq!((c.ready, c.restart_count), (false, 3));
    // It ran before it crashed: the pod is Running, not Ready.
    assert_eq!(phase(&pod), "Running");
    assert_eq!(pod_condition(&pod, "Ready"), Some("False"));
    // The earlier rule still applies.
    let pod = only_pod(&pods, "app=bad").await;
    assert_eq!(waiting(container(&pod)).0, Some("ErrImageNeverPull"));
}

#[tokio::test]
async fn pods_are_listed_selected_and_discovered() {
    let f = FakeApiServer::start().await;
    let client = client(&f).await;
    let deploys = api(&client, "apps", "v1", "Deployment", Some("default")).await;
    apply(&deploys, deployment("web", 1, "web:1", json!({})))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let none = pods
        .list(&ListParams::default().labels("app=nothing"))
        .await
        .unwrap();
    assert!(none.items.is_empty(), "{none:?}");
    let both = ListParams::default().labels("app=web,other=x");
    assert!(pods.list(&both).await.unwrap().items.is_empty());
    let name = only_pod(&pods, "app=web").await.metadata.name.unwrap();
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    assert_eq!(pods.list(&by_name).await.unwrap().items.len(), 1);
    let all: Api<Pod> = Api::all(client.clone());
    let listed = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].metadata.namespace.as_deref(),
        Some("default")
    );
    let elsewhere: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    assert!(
        elsewhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let err = api_error(pods.get("nope").await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "pods \"nope\" not found");
    assert!(api_error(elsewhere.get(&name).await).code == 404);

    let (ar, caps) = discovery::pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Pod"))
        .await
        .unwrap();
    assert_eq!(ar.plural, "pods");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation("list") && caps.supports_operation("get"));
    assert!(!caps.supports_operation("create"));
}
