//! Simulated readiness: per kind (Deployment, StatefulSet, DaemonSet, Job) and as set by
//! the `infrad.test/ready-after` annotation.

use std::time::{Duration, Instant};

use infrad_test_support::fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

use super::{api, apply, client, condition, deployment, deployment_ready, eventually};

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
