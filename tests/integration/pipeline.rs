//! The real pipeline against real Docker, the fake kind and a fake Kubernetes API server:
//! phase order, overlap inside phases, `after`, failures in each phase, cancellation, reset,
//! shared image builds. Timing claims are checked on recorded timestamps, never on speed.

use std::time::Duration;

use infrad::store::StepRow;
use infrad_client::Client;
use infrad_test_support::{
    acquire, counts,
    docker::docker_available,
    eventually, ready,
    recipe::{Recipe, crd, deployment, documents, job, namespace, stateful_set},
    world::{FakeWorld, is_private},
};

/// Two images, a CRD and a namespace as bootstrap, and three deploy steps: `db` and `jobs`
/// independent, `api` after `db`.
fn recipe(world: &FakeWorld, pool: &str) -> String {
    Recipe::new("demo")
        .toml(&format!(
            "[daemon]\nmax_concurrent_builds = 3\n[profiles.demo.pool]\nretry_backoff = \"100ms\"\n{pool}\n\
             [profiles.demo.cluster]\nready_timeout = \"10s\""
        ))
        .image_from(
            "app:dev",
            "app",
            "FROM busybox:1.36.1\nRUN echo app > /app.txt\n",
        )
        .image_from(
            "tool:dev",
            "tool",
            "FROM busybox:1.36.1\nRUN echo tool > /tool.txt\n",
        )
        .bootstrap(
            "bootstrap.yaml",
            &documents(&[&crd("widgets", "test.infrad.dev", "Widget"), &namespace("app")]),
        )
        .step("db", &[], &stateful_set("db", "app", "tool:dev", None))
        .step(
            "api",
            &["db"],
            &documents(&[
                &deployment("api", "app", "app:dev", None),
                "apiVersion: test.infrad.dev/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: app\n",
            ]),
        )
        .step("jobs", &[], &job("migrate", "jobs", "tool:dev"))
        .write(world)
}

fn step<'a>(steps: &'a [StepRow], phase: &str, name: &str) -> &'a StepRow {
    steps
        .iter()
        .find(|s| s.phase == phase && s.step == name)
        .unwrap_or_else(|| panic!("no step {phase}/{name} in {steps:?}"))
}

fn end(step: &StepRow) -> i64 {
    step.ended_at.expect("the step ended")
}

fn overlap(a: &StepRow, b: &StepRow) -> bool {
    a.started_at < end(b) && b.started_at < end(a)
}

#[tokio::test]
async fn the_pipeline_runs_its_phases_in_hybrid_order() {
    if !docker_available("the_pipeline_runs_its_phases_in_hybrid_order") {
        return;
    }
    let world = FakeWorld::new().await;
    world.api.set_ready_delay(Duration::from_millis(400));
    let daemon = world.daemon(&recipe(&world, "warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let store = daemon.store().await;
    let cluster = store
        .clusters(Some("demo"), &[infrad::store::ClusterState::Leased])
        .await
        .unwrap();
    let steps = store.build_steps(&cluster[0].id).await.unwrap();
    let phases: Vec<&str> = lease
        .build
        .as_ref()
        .unwrap()
        .phases
        .iter()
        .map(|p| p.phase.as_str())
        .collect();
    assert_eq!(phases, ["build", "cluster", "load", "deploy"]);

    let builds: Vec<&StepRow> = steps.iter().filter(|s| s.phase == "build").collect();
    assert_eq!(builds.len(), 2);
    assert!(
        overlap(builds[0], builds[1]),
        "images build in parallel: {builds:?}"
    );
    let create = step(&steps, "cluster", "kind create cluster");
    let last_build_end = builds.iter().map(|s| end(s)).max().unwrap();
    assert!(
        create.started_at >= last_build_end,
        "no cluster is created before every build ended"
    );
    let kind_create = world
        .kind_calls()
        .into_iter()
        .find(|c| c.args.starts_with(&["create".into()]))
        .unwrap();
    assert!(
        kind_create.started_ms >= last_build_end,
        "kind itself started after the builds"
    );

    let load = step(&steps, "load", "kind load docker-image");
    assert!(load.started_at >= end(step(&steps, "cluster", "bootstrap")));
    let (db, api, jobs) = (
        step(&steps, "deploy", "db"),
        step(&steps, "deploy", "api"),
        step(&steps, "deploy", "jobs"),
    );
    assert!(db.started_at >= end(load));
    assert!(
        overlap(db, jobs),
        "independent deploy steps run in parallel"
    );
    assert!(api.started_at >= end(db), "api waits for db to be ready");

    let loaded = world.loaded_images(&lease.cluster);
    assert!(
        loaded.contains("app:dev") && loaded.contains("tool:dev"),
        "{loaded}"
    );
    assert!(lease.kubeconfig.contains(&world.api.url()));
    let kubeconfig = infrad_test_support::state_dir(&daemon.state)
        .join("clusters")
        .join(format!("{}.kubeconfig", lease.cluster));
    assert!(is_private(&kubeconfig), "the kubeconfig file is mode 0600");
    assert!(
        world.api.object("Widget", Some("app"), "w").is_some(),
        "custom resource applied after its CRD"
    );
    assert!(
        world.api.namespaces().contains(&"jobs".to_string()),
        "namespaces are created as needed"
    );
    let applied = world.api.applied();
    let crd = applied
        .iter()
        .position(|a| a.kind == "CustomResourceDefinition")
        .unwrap();
    let widget = applied.iter().position(|a| a.kind == "Widget").unwrap();
    assert!(crd < widget);
}

type PipelineDaemon = infrad_test_support::TestDaemon<std::sync::Arc<infrad::pipeline::Pipeline>>;

/// Serves `config` until a build fails; returns the failure Status reports.
async fn first_failure(
    world: &FakeWorld,
    config: &str,
) -> (PipelineDaemon, infrad_client::proto::BuildFailure) {
    let daemon = world.daemon(config).await;
    let client = daemon.client().await;
    eventually("a build fails", || {
        let mut client = client.clone();
        async move {
            client.status(Some("demo")).await.unwrap().profiles[0]
                .last_failure
                .is_some()
        }
    })
    .await;
    let mut client = client.clone();
    let failure = client.status(Some("demo")).await.unwrap().profiles[0]
        .last_failure
        .clone()
        .unwrap();
    (daemon, failure)
}

const FAIL_FAST: &str = "warm = 1\nmax = 1\ndegraded_after = 1";

async fn no_cluster_left(world: &FakeWorld) {
    eventually("the half-built cluster is deleted", || async {
        world.kind_clusters().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_failed_image_build_stops_before_any_cluster() {
    if !docker_available("a_failed_image_build_stops_before_any_cluster") {
        return;
    }
    let world = FakeWorld::new().await;
    let config = recipe(&world, FAIL_FAST);
    world.write(
        "tool/Dockerfile",
        "FROM busybox:1.36.1\nRUN echo broken >&2; exit 3\n",
    );
    let (daemon, failure) = first_failure(&world, &config).await;
    assert_eq!(
        (failure.phase.as_str(), failure.step.as_str()),
        ("build", "tool:dev")
    );
    // The legacy builder passes on RUN's exit code, BuildKit exits 1: either way it is kept.
    let code = failure.exit_code.expect("docker build's exit code is kept");
    assert_ne!(code, 0);
    assert!(
        failure.error.contains("broken"),
        "stderr's tail is kept: {}",
        failure.error
    );
    assert!(
        !world
            .kind_calls()
            .iter()
            .any(|c| c.args.first().map(String::as_str) == Some("create")),
        "no cluster is created when a build fails"
    );
    let mut client = daemon.client().await;
    let e = client.acquire_lease(acquire("job")).await.unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("phase build step tool:dev (exit code {code})")),
        "{e}"
    );
}

#[tokio::test]
async fn a_failed_cluster_create_records_kinds_error_and_cleans_up() {
    if !docker_available("a_failed_cluster_create_records_kinds_error_and_cleans_up") {
        return;
    }
    let world = FakeWorld::new().await;
    world.set_kind_env(&[("FAKE_KIND_FAIL", "create")]);
    let (_daemon, failure) = first_failure(&world, &recipe(&world, FAIL_FAST)).await;
    assert_eq!(
        (failure.phase.as_str(), failure.step.as_str()),
        ("cluster", "kind create cluster")
    );
    assert_eq!(failure.exit_code, Some(1));
    assert!(
        failure.error.contains("failed to init node with kubeadm"),
        "{}",
        failure.error
    );
    no_cluster_left(&world).await;
}

#[tokio::test]
async fn a_failed_load_cleans_up_the_cluster() {
    if !docker_available("a_failed_load_cleans_up_the_cluster") {
        return;
    }
    let world = FakeWorld::new().await;
    world.set_kind_env(&[("FAKE_KIND_FAIL", "load")]);
    let (_daemon, failure) = first_failure(&world, &recipe(&world, FAIL_FAST)).await;
    assert_eq!(
        (failure.phase.as_str(), failure.step.as_str()),
        ("load", "kind load docker-image")
    );
    assert_eq!(failure.exit_code, Some(1));
    assert!(failure.error.contains("wrong diff id"), "{}", failure.error);
    no_cluster_left(&world).await;
}

#[tokio::test]
async fn a_transient_load_error_is_retried() {
    if !docker_available("a_transient_load_error_is_retried") {
        return;
    }
    let world = FakeWorld::new().await;
    world.set_kind_env(&[("FAKE_KIND_FAIL", "load-once")]);
    let daemon = world.daemon(&recipe(&world, "warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    client.acquire_lease(acquire("job")).await.unwrap();
    let loads = world
        .kind_calls()
        .into_iter()
        .filter(|c| c.args.first().map(String::as_str) == Some("load"))
        .count();
    assert_eq!(loads, 2, "one failed load, one retry");
    assert!(
        client.status(Some("demo")).await.unwrap().profiles[0]
            .last_failure
            .is_none()
    );
}

#[tokio::test]
async fn a_deploy_timeout_names_what_is_not_ready_and_cleans_up() {
    if !docker_available("a_deploy_timeout_names_what_is_not_ready_and_cleans_up") {
        return;
    }
    let world = FakeWorld::new().await;
    let config = recipe(&world, FAIL_FAST).replace(
        "name = \"db\"\nmanifests = [\"db.yaml\"]",
        "name = \"db\"\nmanifests = [\"db.yaml\"]\ntimeout = \"1s\"",
    );
    let db = std::fs::read_to_string(world.dir.path().join("db.yaml")).unwrap();
    world.write(
        "db.yaml",
        &db.replace(
            "  namespace: app\n",
            "  namespace: app\n  annotations:\n    infrad.test/ready-after: never\n",
        ),
    );
    let (_daemon, failure) = first_failure(&world, &config).await;
    assert_eq!(
        (failure.phase.as_str(), failure.step.as_str()),
        ("deploy", "db")
    );
    assert!(
        failure
            .error
            .contains("not ready after 1s: StatefulSet app/db (0/1 ready)"),
        "{}",
        failure.error
    );
    assert!(
        !world.api.applied().iter().any(|a| a.name == "api"),
        "a step after a failed one never starts"
    );
    no_cluster_left(&world).await;
}

#[tokio::test]
async fn shutdown_kills_the_running_tools() {
    if !docker_available("shutdown_kills_the_running_tools") {
        return;
    }
    let world = FakeWorld::new().await;
    world.set_kind_env(&[("FAKE_KIND_DELAY_CREATE", "60")]);
    let daemon = world.daemon(&recipe(&world, "warm = 1\nmax = 1")).await;
    eventually("kind create is running", || async {
        world
            .kind_calls()
            .iter()
            .any(|c| c.args.first().map(String::as_str) == Some("create"))
    })
    .await;
    let create = world
        .kind_calls()
        .into_iter()
        .find(|c| c.args[0] == "create")
        .unwrap();
    daemon.stop().await;
    // kind runs in a process group of its own, led by itself: nothing of it may be left.
    eventually("no process of kind's group is left", || async {
        group_members(create.pid).is_empty()
    })
    .await;
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let rest: Vec<&str> = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                // Fields after the name: state, ppid, pgrp. Zombies are gone but for reaping.
                rest.first() != Some(&"Z") && rest.get(2).and_then(|g| g.parse().ok()) == Some(pgid)
            })
        })
        .collect()
}

#[tokio::test]
async fn reset_removes_only_the_namespaces_a_test_added() {
    if !docker_available("reset_removes_only_the_namespaces_a_test_added") {
        return;
    }
    let world = FakeWorld::new().await;
    let daemon = world
        .daemon(&recipe(&world, "warm = 1\nmax = 1\nrecycle = \"reset\""))
        .await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    let before = world.api.namespaces();

    // The test run makes a namespace of its own.
    let kube = kube_client(&lease.kubeconfig).await;
    let ns: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(kube);
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "e2e-run-1"}});
    ns.patch(
        "e2e-run-1",
        &kube::api::PatchParams::apply("test"),
        &kube::api::Patch::Apply(&body),
    )
    .await
    .unwrap();
    assert!(world.api.namespaces().contains(&"e2e-run-1".to_string()));

    client.release(&lease.lease_id, &lease.token).await.unwrap();
    let again = client.acquire_lease(acquire("next")).await.unwrap();
    assert_eq!(
        again.cluster, lease.cluster,
        "reset hands the same cluster out again"
    );
    assert_eq!(
        world.api.namespaces(),
        before,
        "only the added namespace went"
    );
    assert!(
        world.api.requests().iter().any(|r| r.method == "GET"
            && r.path == "/api/v1/namespaces"
            && r.query.contains("watch=true")),
        "the deletion is watched"
    );
}

/// A Kubernetes client on a lease's kubeconfig, as the test suite would make one.
pub(crate) async fn kube_client(kubeconfig: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn a_pool_of_three_builds_each_image_once() {
    if !docker_available("a_pool_of_three_builds_each_image_once") {
        return;
    }
    let world = FakeWorld::new().await;
    let daemon = world.daemon(&recipe(&world, "warm = 3\nmax = 3")).await;
    let client: Client = daemon.client().await;
    ready(&client, 3).await;
    let store = daemon.store().await;
    let steps = store.recent_steps("demo", 10).await.unwrap();
    let builds: Vec<&str> = steps
        .iter()
        .filter(|s| s.phase == "build")
        .map(|s| s.step.as_str())
        .collect();
    let mut sorted = builds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["app:dev", "tool:dev"],
        "each image built once for three clusters"
    );
    let mut client = client.clone();
    assert_eq!(counts(&mut client).await.ready, 3);
    assert_eq!(world.kind_clusters().len(), 3);
}

#[tokio::test]
async fn new_image_inputs_reach_the_pool_on_refresh() {
    if !docker_available("new_image_inputs_reach_the_pool_on_refresh") {
        return;
    }
    let world = FakeWorld::new().await;
    let daemon = world.daemon(&recipe(&world, "warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let old = world.kind_clusters();
    world.write(
        "app/Dockerfile",
        "FROM busybox:1.36.1\nRUN echo app version 2 > /app.txt\n",
    );
    client.refresh(Some("demo")).await.unwrap();
    eventually(
        "the stale cluster is replaced by one of the new image",
        || {
            let mut client = client.clone();
            let old = old.clone();
            let world = &world;
            async move {
                let status = client.status(Some("demo")).await.unwrap();
                let p = &status.profiles[0];
                p.counts.unwrap().ready == 1
                    && p.clusters.iter().all(|c| !c.stale)
                    && world.kind_clusters().len() == 1
                    && world.kind_clusters() != old
            }
        },
    )
    .await;
}

/// Readiness is watched, not polled: every deploy object is watched by name, and no object is
/// read again and again with GETs while it is not ready.
#[tokio::test]
async fn readiness_is_watched() {
    if !docker_available("readiness_is_watched") {
        return;
    }
    let world = FakeWorld::new().await;
    world.api.set_ready_delay(Duration::from_millis(1_500));
    let daemon = world.daemon(&recipe(&world, "warm = 1\nmax = 1")).await;
    ready(&daemon.client().await, 1).await;
    let requests = world.api.requests();
    let watches = |name: &str| {
        requests
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.query.contains("watch=true")
                    && r.query
                        .contains(&format!("fieldSelector=metadata.name%3D{name}"))
            })
            .count()
    };
    for name in ["db", "api", "migrate"] {
        assert!(watches(name) >= 1, "{name} is watched: {requests:#?}");
    }
    let gets_of_db = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/statefulsets/db"))
        .count();
    assert_eq!(gets_of_db, 0, "no polling GETs of db: {requests:#?}");
}

/// A deploy step that uses none of the profile's images starts as soon as the cluster is
/// bootstrapped, while the images load; a step that uses one starts once they are loaded.
#[tokio::test]
async fn an_image_free_step_starts_while_the_images_load() {
    if !docker_available("an_image_free_step_starts_while_the_images_load") {
        return;
    }
    let world = FakeWorld::new().await;
    world.set_kind_env(&[("FAKE_KIND_DELAY_LOAD", "1")]);
    world.api.set_ready_delay(Duration::from_millis(200));
    let text = Recipe::new("demo")
        .toml("[profiles.demo.pool]\nwarm = 1\nmax = 1\n[profiles.demo.cluster]\nready_timeout = \"10s\"")
        .image("infrad-image-free-test/app:dev", "app")
        .bootstrap("namespace.yaml", &namespace("app"))
        .step("cache", &[], &deployment("cache", "app", "redis:7", None))
        .step(
            "app",
            &[],
            &deployment("app", "app", "infrad-image-free-test/app:dev", None),
        )
        .write(&world);
    let daemon = world.daemon(&text).await;
    ready(&daemon.client().await, 1).await;
    let store = daemon.store().await;
    let cluster = store
        .clusters(Some("demo"), &[infrad::store::ClusterState::Ready])
        .await
        .unwrap();
    let steps = store.build_steps(&cluster[0].id).await.unwrap();
    let load = step(&steps, "load", "kind load docker-image");
    let bootstrap = step(&steps, "cluster", "bootstrap");
    let cache = step(&steps, "deploy", "cache");
    let app = step(&steps, "deploy", "app");
    assert!(
        cache.started_at >= end(bootstrap) && cache.started_at < end(load),
        "cache starts after bootstrap, before the load ends: {steps:#?}"
    );
    assert!(overlap(cache, load), "cache deploys while the images load");
    assert!(
        app.started_at >= end(load),
        "app waits for its image: {steps:#?}"
    );
}
