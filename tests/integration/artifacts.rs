//! Per-cluster artifacts directories: the kind config every cluster is created with mounts
//! its directory on every node and keeps the user's other settings; each lease gets the
//! directory empty; a release with collect writes there what the API server serves (pods'
//! logs, events), the steps to flush stopped first.

use std::os::unix::fs::PermissionsExt;

use infrad_test_support::{
    acquire,
    recipe::{Recipe, deployment, stateful_set},
    world::FakeWorld,
};
use serde_json::{Value, json};

const NODE_PATH: &str = "/infrad/artifacts";

/// A profile with artifacts whose kind config has two nodes, one mount and a port setting.
fn with_artifacts(world: &FakeWorld) -> String {
    world.write(
        "kind.yaml",
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n\
         networking:\n  apiServerPort: 7443\n\
         nodes:\n- role: control-plane\n\
         - role: worker\n  extraMounts:\n  - hostPath: /tmp\n    containerPath: /host-tmp\n",
    );
    Recipe::new("demo")
        .toml(&format!(
            "[profiles.demo.pool]\nwarm = 1\nmax = 1\nrecycle = \"reset\"\n\
             [profiles.demo.cluster]\nconfig = \"kind.yaml\"\n\
             [profiles.demo.artifacts]\nnode_path = \"{NODE_PATH}\"\n"
        ))
        .step(
            "app",
            &[],
            &deployment("app", "app", "busybox:1.36.1", None),
        )
        .write(world)
}

#[tokio::test]
async fn every_node_mounts_the_clusters_artifacts_directory() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let daemon = world.daemon(&with_artifacts(&world)).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let create = world
        .kind_calls()
        .into_iter()
        .find(|c| c.args.first().is_some_and(|a| a == "create"))
        .expect("kind create ran");
    let at = create.args.iter().position(|a| a == "--config").unwrap();
    let config_file = std::path::PathBuf::from(&create.args[at + 1]);
    let config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&config_file).unwrap()).unwrap();
    let dir = config_file.parent().unwrap().join("artifacts");
    let ours = json!({ "hostPath": dir, "containerPath": NODE_PATH });
    assert_eq!(
        config["nodes"][0],
        json!({ "role": "control-plane", "extraMounts": [ours] })
    );
    assert_eq!(
        config["nodes"][1]["extraMounts"],
        json!([{ "hostPath": "/tmp", "containerPath": "/host-tmp" }, ours])
    );
    assert_eq!(config["networking"]["apiServerPort"], 7443);
    assert_eq!(config["kind"], "Cluster");
    assert!(
        config_file.parent().unwrap().ends_with(&lease.cluster),
        "{config_file:?} is the cluster's own"
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&config_file), 0o600);
}

#[tokio::test]
async fn each_lease_gets_the_directory_empty() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let daemon = world.daemon(&with_artifacts(&world)).await;
    let mut client = daemon.client().await;
    let first = client.acquire_lease(acquire("job-1")).await.unwrap();
    let dir = std::path::PathBuf::from(&first.artifacts_dir);
    assert!(
        dir.ends_with(format!("{}/artifacts", first.cluster)),
        "{dir:?}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::create_dir_all(dir.join("coverdata/run")).unwrap();
    std::fs::write(dir.join("coverdata/run/covmeta.1"), "x").unwrap();
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dir).unwrap());
    client.release(&first.lease_id, &first.token).await.unwrap();

    let second = client.acquire_lease(acquire("job-2")).await.unwrap();
    assert_eq!(
        second.cluster, first.cluster,
        "the reset cluster is leased again"
    );
    assert_eq!(second.artifacts_dir, first.artifacts_dir);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "emptied for the new lease"
    );
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&meta),
        inode,
        "the directory the nodes mount is kept, only its contents go"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

#[tokio::test]
async fn a_profile_without_artifacts_gives_no_directory() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    let text = Recipe::new("demo")
        .toml("[profiles.demo.pool]\nwarm = 1\nmax = 1\n")
        .step(
            "app",
            &[],
            &deployment("app", "app", "busybox:1.36.1", None),
        )
        .write(&world);
    let daemon = world.daemon(&text).await;
    let lease = daemon
        .client()
        .await
        .acquire_lease(acquire("job"))
        .await
        .unwrap();
    assert_eq!(lease.artifacts_dir, "");
}

/// Steps db (a StatefulSet in `data`) and app (a Deployment in `app`, after db), reset on
/// release, with artifacts.
fn two_steps(world: &FakeWorld) -> String {
    Recipe::new("demo")
        .toml(&format!(
            "[profiles.demo.pool]\nwarm = 1\nmax = 1\nrecycle = \"reset\"\n\
             [profiles.demo.artifacts]\nnode_path = \"{NODE_PATH}\"\nmax_log_bytes = 64\n"
        ))
        .step(
            "db",
            &[],
            &stateful_set("db", "data", "busybox:1.36.1", None),
        )
        .step(
            "app",
            &["db"],
            &deployment("app", "app", "busybox:1.36.1", None),
        )
        .write(world)
}

/// The test run's own namespace with a Deployment whose container crash-loops (so it has a
/// previous log), applied as a test would.
async fn test_run_workload(world: &FakeWorld, kubeconfig: &str) {
    world
        .api
        .set_image_failure("crash/", "CrashLoopBackOff", "back-off restarting");
    let kube = crate::pipeline::kube_client(kubeconfig).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(kube.clone());
    let apply = kube::api::PatchParams::apply("e2e");
    namespaces
        .patch(
            "e2e-run-1",
            &apply,
            &kube::api::Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": "e2e-run-1"}})),
        )
        .await
        .unwrap();
    let probe: Value =
        serde_saphyr::from_str(&deployment("probe", "e2e-run-1", "crash/probe:1", None)).unwrap();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(kube, "e2e-run-1");
    deployments
        .patch("probe", &apply, &kube::api::Patch::Apply(probe))
        .await
        .unwrap();
}

fn pod_dirs(root: &std::path::Path, namespace: &str) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("logs").join(namespace))
        .unwrap_or_else(|e| panic!("logs/{namespace}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

#[tokio::test]
async fn release_with_collect_writes_the_logs_and_events_the_api_server_serves() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    world.api.set_container_log(
        "app",
        "app starting\nlistening on :8080\nrequest 1 failed\n",
    );
    let daemon = world.daemon(&two_steps(&world)).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    test_run_workload(&world, &lease.kubeconfig).await;
    world.api.add_event(
        "e2e-run-1",
        "probe.1",
        json!({"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
               "involvedObject": {"kind": "Pod", "name": "probe-1", "namespace": "e2e-run-1"},
               "lastTimestamp": "2026-12-04T10:00:00Z", "count": 4}),
    );

    let collected = client
        .release_collect(&lease.lease_id, &lease.token, &[] as &[&str])
        .await
        .unwrap()
        .expect("collected");
    assert!(collected.problems.is_empty(), "{:?}", collected.problems);
    assert_eq!(collected.pods, 3, "db, app and the test run's probe");
    assert_eq!(
        collected.logs, 4,
        "the probe restarted: its previous log too"
    );

    let dir = std::path::Path::new(&lease.artifacts_dir);
    let [app] = &pod_dirs(dir, "app")[..] else {
        panic!("one app pod")
    };
    let log = std::fs::read_to_string(app.join("app.log")).unwrap();
    assert!(
        log.starts_with("[infrad: the first ") && log.contains("max_log_bytes = 64"),
        "cut to its end: {log}"
    );
    assert!(
        log.ends_with(" request 1 failed\n"),
        "timestamped, its end kept: {log}"
    );
    assert!(infrad_test_support::world::is_private(&app.join("app.log")));
    assert_eq!(pod_dirs(dir, "data").len(), 1);
    let [probe] = &pod_dirs(dir, "e2e-run-1")[..] else {
        panic!("one probe pod")
    };
    assert!(probe.join("probe.log").exists());
    let previous = std::fs::read_to_string(probe.join("probe.previous.log")).unwrap();
    assert!(previous.contains("exited with code 1"), "{previous}");
    assert!(
        !dir.join("logs/kube-system").exists(),
        "only the profile's steps and the test run's namespaces"
    );

    let events = std::fs::read_to_string(dir.join("events.txt")).unwrap();
    assert!(
        events.contains(
            "Warning\tBackOff\te2e-run-1 Pod/probe-1\tx4\tBack-off restarting failed container"
        ),
        "{events}"
    );
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lease.json")).unwrap()).unwrap();
    assert_eq!(record["lease_id"], lease.lease_id.as_str());
    let phases: Vec<&str> = record["build"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["cluster", "deploy"]);

    // Recycled as usual: the same cluster comes back, its directory empty.
    let next = client.acquire_lease(acquire("job-2")).await.unwrap();
    assert_eq!(next.cluster, lease.cluster);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[tokio::test]
async fn flush_scales_the_steps_workloads_to_zero_before_the_other_logs_are_taken() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    // Reset deletes the test run's namespace first: long enough to see the flush's result.
    world
        .api
        .set_namespace_deletion_delay(std::time::Duration::from_secs(2));
    let daemon = world.daemon(&two_steps(&world)).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    test_run_workload(&world, &lease.kubeconfig).await;
    let before = world.api.requests().len();

    let collected = client
        .release_collect(&lease.lease_id, &lease.token, &["app"])
        .await
        .unwrap()
        .expect("collected");
    assert!(collected.problems.is_empty(), "{:?}", collected.problems);
    assert_eq!(collected.pods, 3);
    let replicas = |kind: &str, ns: &str, name: &str| {
        world.api.object(kind, Some(ns), name).unwrap()["spec"]["replicas"].clone()
    };
    assert_eq!(replicas("Deployment", "app", "app"), 0, "flushed");
    assert_eq!(replicas("StatefulSet", "data", "db"), 1, "not flushed");

    let requests = &world.api.requests()[before..];
    let at = |what: &dyn Fn(&infrad_test_support::fake_apiserver::RecordedRequest) -> bool| {
        requests
            .iter()
            .position(what)
            .unwrap_or_else(|| panic!("no such request in {requests:#?}"))
    };
    let app_log =
        at(&|r| r.path.starts_with("/api/v1/namespaces/app/pods/app-") && r.path.ends_with("/log"));
    let scaled =
        at(&|r| r.method == "PATCH" && r.path == "/apis/apps/v1/namespaces/app/deployments/app");
    let db_log =
        at(&|r| r.path.starts_with("/api/v1/namespaces/data/pods/db-") && r.path.ends_with("/log"));
    let probe_log = at(&|r| {
        r.path.starts_with("/api/v1/namespaces/e2e-run-1/pods/") && r.path.ends_with("/log")
    });
    assert!(
        app_log < scaled,
        "the flushed pod's log is taken while it runs"
    );
    assert!(
        scaled < db_log && scaled < probe_log,
        "the other logs after the flush"
    );

    // Reset brings the flushed workload back.
    let next = client.acquire_lease(acquire("job-2")).await.unwrap();
    assert_eq!(next.cluster, lease.cluster);
    assert_eq!(
        replicas("Deployment", "app", "app"),
        1,
        "back through reset"
    );
}
