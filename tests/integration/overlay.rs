//! Fresh code on a warm base: Acquire with the caller's own images, against real Docker, the
//! fake kind and the fake API server. What is applied (and what is not), in which order, the
//! errors before and after a grant, recycling after an overlay, and overlays side by side.
//! Each test builds override images of its own content, so parallel tests never share a tag.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use infrad::{
    pipeline::Pipeline,
    store::{ClusterState, Store},
};
use infrad_client::{Acquire, Client, Progress, proto};
use infrad_test_support::{
    TestDaemon, counts,
    docker::{build_local_image, docker_available, image_id},
    eventually,
    fake_apiserver::RecordedRequest,
    ready,
    recipe::{Recipe, deployment, documents, job, namespace, stateful_set},
    world::FakeWorld,
};
use serde_json::Value;
use tonic::Code;

use crate::{
    cli_lease::{infrad, output, text},
    pipeline::kube_client,
};

const CONTROLLER: &str = "overlay-test/we:dev";
const STORAGE: &str = "overlay-test/datastorage:dev";

/// The seed's shape: Tekton and PostgreSQL run public images; data-storage (after PostgreSQL)
/// and the controller with its migration Job (after data-storage and Tekton) run the two
/// images built for the commit.
fn recipe(world: &FakeWorld, pool: &str) -> String {
    Recipe::new("demo")
        .toml(&format!(
            "[profiles.demo.pool]\nretry_backoff = \"100ms\"\n{pool}\n\
             [profiles.demo.cluster]\nready_timeout = \"10s\""
        ))
        .image(CONTROLLER, "controller")
        .image(STORAGE, "datastorage")
        .bootstrap("bootstrap.yaml", &namespace("we"))
        .step(
            "tekton",
            &[],
            &deployment("tekton-pipelines", "we", "busybox:1.36.1", None),
        )
        .step(
            "postgres",
            &[],
            &stateful_set("postgres", "we", "busybox:1.36.1", None),
        )
        .step(
            "datastorage",
            &["postgres"],
            &deployment("datastorage", "we", STORAGE, None),
        )
        .step(
            "controller",
            &["datastorage", "tekton"],
            &documents(&[
                &deployment("controller", "we", CONTROLLER, None),
                &job("migrate", "we", CONTROLLER),
            ]),
        )
        .timeout("5s")
        .write(world)
}

/// One warm cluster, recycled by `recreate`.
const ONE: &str = "warm = 1\nmax = 1";

/// A daemon on [`recipe`] with `pool` settings, once its clusters are ready: its client, its
/// store and the name of one ready cluster (the only one, with [`ONE`]).
async fn warm(world: &FakeWorld, pool: &str) -> (TestDaemon<Arc<Pipeline>>, Client, Store, String) {
    let daemon = world.daemon(&recipe(world, pool)).await;
    let client = daemon.client().await;
    ready(&client, 1).await;
    let store = daemon.store().await;
    let cluster = leased_cluster(&store).await.unwrap();
    (daemon, client, store, cluster)
}

fn acquire(holder: &str) -> Acquire {
    Acquire::new("demo")
        .holder(holder)
        .wait(Duration::from_secs(30))
}

fn mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

/// Requests since `mark` that name an object (in the path, or in a selector).
fn touching<'a>(requests: &'a [RecordedRequest], object: &str) -> Vec<&'a RecordedRequest> {
    requests
        .iter()
        .filter(|r| r.path.split('/').any(|segment| segment == object) || r.query.contains(object))
        .collect()
}

fn writes<'a>(requests: &[&'a RecordedRequest]) -> Vec<&'a RecordedRequest> {
    requests
        .iter()
        .copied()
        .filter(|r| r.method != "GET")
        .collect()
}

fn first_image(object: &Value) -> &str {
    object["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

fn image<'a>(lease: &'a proto::Lease, name: &str) -> &'a proto::LeaseImage {
    lease.images.iter().find(|i| i.name == name).unwrap()
}

fn steps(timings: Option<&proto::BuildTimings>) -> Vec<String> {
    timings
        .map(|t| {
            t.phases
                .iter()
                .flat_map(|p| {
                    p.steps
                        .iter()
                        .map(move |s| format!("{}/{}", p.phase, s.step))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn only_the_steps_using_an_overridden_image_are_applied_again_in_after_order() {
    if !docker_available("only_the_steps_using_an_overridden_image_are_applied_again") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, _, _) = warm(&world, ONE).await;
    let controller_id = build_local_image("overlay-test/we:pr-1", "order-controller");
    let storage_id = build_local_image("overlay-test/datastorage:pr-1", "order-storage");
    let job_uid =
        world.api.object("Job", Some("we"), "migrate").unwrap()["metadata"]["uid"].clone();
    let loads_before = world.kind_calls().len();
    let mark = world.api.requests().len();

    let mut events = Vec::new();
    let lease = client
        .acquire_with_progress(
            acquire("pr-1")
                .image(CONTROLLER, "overlay-test/we:pr-1")
                .image(STORAGE, "overlay-test/datastorage:pr-1"),
            |progress| {
                if let Progress::Overlay(step) = progress {
                    events.push(format!("{}/{} done={}", step.phase, step.step, step.done));
                }
            },
        )
        .await
        .unwrap();

    assert_eq!(image(&lease, CONTROLLER).image_id, controller_id);
    assert_eq!(image(&lease, STORAGE).image_id, storage_id);
    let controller_tag = format!("overlay-test/we:infrad-{}", &controller_id[7..19]);
    let storage_tag = format!("overlay-test/datastorage:infrad-{}", &storage_id[7..19]);
    assert_eq!(image(&lease, CONTROLLER).tag, controller_tag);
    assert_eq!(image(&lease, CONTROLLER).reference, "overlay-test/we:pr-1");
    assert_eq!(image(&lease, STORAGE).tag, storage_tag);

    let kind_loads: Vec<Vec<String>> = world.kind_calls()[loads_before..]
        .iter()
        .filter(|c| c.args.first().is_some_and(|a| a == "load"))
        .map(|c| c.args.clone())
        .collect();
    assert_eq!(
        kind_loads.len(),
        1,
        "one kind load for both: {kind_loads:?}"
    );
    assert!(kind_loads[0].contains(&controller_tag) && kind_loads[0].contains(&storage_tag));

    let requests = world.api.requests()[mark..].to_vec();
    for untouched in ["tekton-pipelines", "postgres"] {
        let seen = touching(&requests, untouched);
        assert!(seen.is_empty(), "{untouched} sees no request: {seen:?}");
    }
    let storage = writes(&touching(&requests, "datastorage"));
    let controller = writes(&touching(&requests, "controller"));
    assert!(
        storage
            .iter()
            .all(|r| r.method == "PATCH" && r.query.contains("fieldManager=infrad")),
        "{storage:?}"
    );
    assert!(!storage.is_empty() && !controller.is_empty());
    let storage_ready = world.api.requests()[mark..]
        .iter()
        .filter(|r| {
            r.method == "GET" && touching(std::slice::from_ref(r), "datastorage").len() == 1
        })
        .map(|r| r.at)
        .max()
        .unwrap();
    assert!(
        controller[0].at >= storage_ready,
        "the controller is applied after data-storage is ready"
    );
    assert_eq!(
        first_image(
            &world
                .api
                .object("Deployment", Some("we"), "controller")
                .unwrap()
        ),
        controller_tag
    );
    assert_eq!(
        first_image(
            &world
                .api
                .object("Deployment", Some("we"), "datastorage")
                .unwrap()
        ),
        storage_tag
    );

    let migrate = writes(&touching(&requests, "migrate"));
    assert_eq!(
        migrate
            .iter()
            .map(|r| r.method.as_str())
            .collect::<Vec<_>>(),
        ["DELETE", "PATCH"],
        "the Job is deleted and created again"
    );
    let job = world.api.object("Job", Some("we"), "migrate").unwrap();
    assert_ne!(job["metadata"]["uid"], job_uid);
    assert_eq!(first_image(&job), controller_tag);

    assert_eq!(
        steps(lease.overlay.as_ref()),
        [
            "load/kind load docker-image",
            "deploy/datastorage",
            "deploy/controller"
        ]
    );
    assert!(
        lease.build.is_some(),
        "the build's timings stay beside the overlay's"
    );
    assert_eq!(
        events,
        [
            "load/kind load docker-image done=false",
            "load/kind load docker-image done=true",
            "deploy/datastorage done=false",
            "deploy/datastorage done=true",
            "deploy/controller done=false",
            "deploy/controller done=true",
        ]
    );
}

#[tokio::test]
async fn a_step_after_an_overlaid_one_is_only_checked_ready() {
    if !docker_available("a_step_after_an_overlaid_one_is_only_checked_ready") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, _, _) = warm(&world, ONE).await;
    build_local_image("overlay-test/datastorage:pr-2", "check-storage");
    let mark = world.api.requests().len();

    let lease = client
        .acquire_lease(acquire("pr-2").image(STORAGE, "overlay-test/datastorage:pr-2"))
        .await
        .unwrap();

    assert_eq!(
        steps(lease.overlay.as_ref()),
        [
            "load/kind load docker-image",
            "deploy/datastorage",
            "deploy/controller (ready check)"
        ]
    );
    let requests = world.api.requests()[mark..].to_vec();
    let controller = touching(&requests, "controller");
    assert!(!controller.is_empty(), "the controller is checked");
    assert!(
        writes(&controller).is_empty() && writes(&touching(&requests, "migrate")).is_empty(),
        "nothing of the controller is written: {controller:?}"
    );
    assert_eq!(
        first_image(
            &world
                .api
                .object("Deployment", Some("we"), "controller")
                .unwrap()
        ),
        CONTROLLER
    );
}

/// Nothing was granted or stored: the cluster is still ready, no lease exists, nothing loaded.
async fn nothing_changed(world: &FakeWorld, client: &mut Client, store: &Store) {
    assert_eq!(counts(client).await.ready, 1);
    assert!(store.lease_history("demo").await.unwrap().is_empty());
    assert!(
        !world
            .kind_calls()
            .iter()
            .any(|c| c.args[0] == "load" && c.args.iter().any(|a| a.contains(":infrad-"))),
        "no overlay was loaded"
    );
}

#[tokio::test]
async fn images_are_checked_before_anything_is_granted() {
    if !docker_available("images_are_checked_before_anything_is_granted") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, store, _) = warm(&world, ONE).await;
    build_local_image("overlay-test/we:pr-3", "checked");

    let unknown = client
        .acquire_lease(acquire("a").image("overlay-test/nope:dev", "overlay-test/we:pr-3"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(Code::InvalidArgument), "{unknown}");
    assert!(
        unknown
            .to_string()
            .contains("\"overlay-test/nope:dev\" is not an image of profile \"demo\"")
            && unknown
                .to_string()
                .contains(&format!("it has {CONTROLLER}, {STORAGE}")),
        "{unknown}"
    );

    let twice = client
        .acquire_lease(
            acquire("a")
                .image(CONTROLLER, "overlay-test/we:pr-3")
                .image(CONTROLLER, "overlay-test/we:pr-3"),
        )
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Some(Code::InvalidArgument), "{twice}");
    assert!(twice.to_string().contains("given twice"), "{twice}");

    let missing = client
        .acquire_lease(acquire("a").image(CONTROLLER, "overlay-test/we:never-built"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(Code::FailedPrecondition), "{missing}");
    assert!(
        missing.to_string().contains("overlay-test/we:never-built"),
        "{missing}"
    );

    let no_wait = client
        .acquire_lease(
            acquire("a")
                .wait(Duration::ZERO)
                .image(CONTROLLER, "overlay-test/we:pr-3"),
        )
        .await
        .unwrap_err();
    assert_eq!(no_wait.code(), Some(Code::InvalidArgument), "{no_wait}");

    nothing_changed(&world, &mut client, &store).await;
}

/// The cluster a failed overlay ran on is recycled (the default `recreate`: deleted and built
/// again), and nobody holds a lease on it.
async fn recycled(world: &FakeWorld, client: &Client, store: &Store, cluster: &str) {
    eventually("the overlaid cluster is gone", || async {
        !world.kind_clusters().contains(&cluster.to_string())
    })
    .await;
    ready(client, 1).await;
    assert!(
        store.lease_history("demo").await.unwrap().is_empty(),
        "no lease"
    );
}

async fn leased_cluster(store: &Store) -> Option<String> {
    let clusters = store
        .clusters(Some("demo"), &[ClusterState::Ready, ClusterState::Leased])
        .await
        .unwrap();
    clusters.first().map(|c| c.name.clone())
}

#[tokio::test]
async fn an_image_that_cannot_run_fails_the_acquire_naming_step_object_and_reason() {
    if !docker_available("an_image_that_cannot_run_fails_the_acquire") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, store, cluster) = warm(&world, ONE).await;
    build_local_image("overlay-test/we:pr-4", "cannot-run");
    world.api.set_image_failure(
        "overlay-test/we:infrad-",
        "ErrImageNeverPull",
        "Container image \"overlay-test/we:infrad-…\" is not present with pull policy of Never",
    );

    let error = client
        .acquire_lease(acquire("pr-4").image(CONTROLLER, "overlay-test/we:pr-4"))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Some(Code::FailedPrecondition), "{error}");
    assert!(
        matches!(error, infrad_client::Error::Rejected { .. }),
        "a refusal, not a lost lease: {error:?}"
    );
    mentions(
        &error.to_string(),
        &[
            cluster.as_str(),
            "recycled",
            "deploy step controller",
            "Deployment we/controller",
            "ErrImageNeverPull",
        ],
    );
    recycled(&world, &client, &store, &cluster).await;
}

#[tokio::test]
async fn a_failed_load_fails_the_acquire_with_kinds_error() {
    if !docker_available("a_failed_load_fails_the_acquire_with_kinds_error") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, store, cluster) = warm(&world, ONE).await;
    build_local_image("overlay-test/we:pr-5", "failed-load");
    // Every load fails while the acquire runs (the build's own load happened before).
    world.set_kind_env(&[("FAKE_KIND_FAIL", "load")]);

    let error = client
        .acquire_lease(acquire("pr-5").image(CONTROLLER, "overlay-test/we:pr-5"))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Some(Code::FailedPrecondition), "{error}");
    mentions(
        &error.to_string(),
        &[
            "load step kind load docker-image",
            "failed to load image",
            "recycled",
        ],
    );
    world.set_kind_env(&[]);
    recycled(&world, &client, &store, &cluster).await;
}

#[tokio::test]
async fn an_overlay_longer_than_the_wait_is_deadline_exceeded_naming_its_step() {
    if !docker_available("an_overlay_longer_than_the_wait_is_deadline_exceeded") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, store, cluster) = warm(&world, ONE).await;
    build_local_image("overlay-test/we:pr-6", "slow");
    let slow = Duration::from_secs(30);
    world.api.set_ready_delay(slow);

    let started = Instant::now();
    let error = client
        .acquire_lease(
            acquire("pr-6")
                .wait(Duration::from_secs(1))
                .image(CONTROLLER, "overlay-test/we:pr-6"),
        )
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < slow,
        "the caller did not wait for the overlay"
    );
    assert_eq!(error.code(), Some(Code::DeadlineExceeded), "{error}");
    assert!(error.to_string().contains("deploy controller"), "{error}");
    world.api.set_ready_delay(Duration::ZERO);
    recycled(&world, &client, &store, &cluster).await;
}

#[tokio::test]
async fn a_caller_that_leaves_during_the_overlay_leaves_no_lease_and_the_cluster_is_recycled() {
    if !docker_available("a_caller_that_leaves_during_the_overlay") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, client, store, cluster) = warm(&world, ONE).await;
    build_local_image("overlay-test/we:pr-7", "leaves");
    world.api.set_ready_delay(Duration::from_secs(30));
    let mark = world.api.requests().len();

    let mut leaving = client.clone();
    let call = tokio::spawn(async move {
        leaving
            .acquire_lease(acquire("pr-7").image(CONTROLLER, "overlay-test/we:pr-7"))
            .await
    });
    eventually("the overlay applies the controller", || async {
        !writes(&touching(&world.api.requests()[mark..], "controller")).is_empty()
    })
    .await;
    call.abort();
    world.api.set_ready_delay(Duration::ZERO);

    recycled(&world, &client, &store, &cluster).await;
}

/// An object as a test compares it: what was applied and what the server made of it, without
/// what changes with every write (identity, versions, managers, status).
fn comparable(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        for volatile in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(volatile);
        }
    }
    if let Some(fields) = object.as_object_mut() {
        fields.remove("status");
    }
    object
}

/// Every object applied so far, as comparable values, in the order first applied.
fn snapshot(world: &FakeWorld) -> Vec<(String, Value)> {
    let mut seen = std::collections::BTreeSet::new();
    world
        .api
        .applied()
        .iter()
        .filter(|a| seen.insert((a.kind.clone(), a.namespace.clone(), a.name.clone())))
        .filter_map(|a| {
            let object = world.api.object(&a.kind, a.namespace.as_deref(), &a.name)?;
            let name = format!("{} {:?}/{}", a.kind, a.namespace, a.name);
            Some((name, comparable(object)))
        })
        .collect()
}

#[tokio::test]
async fn a_reset_after_an_overlay_leaves_the_objects_as_a_fresh_build_has_them() {
    if !docker_available("a_reset_after_an_overlay_leaves_the_objects_as_a_fresh_build") {
        return;
    }
    let world = FakeWorld::new().await;
    let (_daemon, mut client, _, _) = warm(&world, "warm = 1\nmax = 1\nrecycle = \"reset\"").await;
    let fresh = snapshot(&world);
    assert!(fresh.len() >= 6, "{fresh:?}");
    build_local_image("overlay-test/we:pr-8", "reset-controller");
    build_local_image("overlay-test/datastorage:pr-8", "reset-storage");

    let lease = client
        .acquire_lease(
            acquire("pr-8")
                .image(CONTROLLER, "overlay-test/we:pr-8")
                .image(STORAGE, "overlay-test/datastorage:pr-8"),
        )
        .await
        .unwrap();
    // The test run also scales Tekton, a field infrad's manifests set.
    let kube = kube_client(&lease.kubeconfig).await;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(kube, "we");
    deployments
        .patch(
            "tekton-pipelines",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_ne!(snapshot(&world), fresh);
    let tags: Vec<String> = lease
        .images
        .iter()
        .filter(|i| !i.reference.is_empty())
        .map(|i| i.tag.clone())
        .collect();
    assert_eq!(tags.len(), 2);
    assert!(tags.iter().all(|t| image_id(t).is_some()), "{tags:?} exist");

    client.release(&lease.lease_id, &lease.token).await.unwrap();
    let again = client.acquire_lease(acquire("next")).await.unwrap();

    assert_eq!(again.cluster, lease.cluster, "reset, not recreated");
    assert!(again.overlay.is_none());
    assert!(
        again
            .images
            .iter()
            .all(|i| i.reference.is_empty() && i.tag == i.name)
    );
    let after = snapshot(&world);
    assert_eq!(after.len(), fresh.len());
    for ((name, was), (_, is)) in fresh.iter().zip(&after) {
        assert_eq!(is, was, "{name} is as a fresh build has it");
    }
    for tag in &tags {
        assert!(image_id(tag).is_none(), "the unused tag {tag} is removed");
    }
}

#[tokio::test]
async fn two_overlays_on_two_clusters_at_once_do_not_interfere() {
    if !docker_available("two_overlays_on_two_clusters_at_once_do_not_interfere") {
        return;
    }
    let world = FakeWorld::with_api_servers(2).await;
    world.api.set_ready_delay(Duration::from_millis(300));
    let daemon = world
        .daemon(&recipe(
            &world,
            "warm = 2\nmax = 2\n[daemon]\nmax_concurrent_builds = 2",
        ))
        .await;
    let client = daemon.client().await;
    ready(&client, 2).await;
    let ids = [
        build_local_image("overlay-test/we:pr-9a", "two-a"),
        build_local_image("overlay-test/we:pr-9b", "two-b"),
    ];

    let calls = ["overlay-test/we:pr-9a", "overlay-test/we:pr-9b"].map(|reference| {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .acquire_lease(acquire(reference).image(CONTROLLER, reference))
                .await
                .unwrap()
        })
    });
    let mut leases = Vec::new();
    for call in calls {
        leases.push(call.await.unwrap());
    }

    assert_ne!(leases[0].cluster, leases[1].cluster);
    for (lease, id) in leases.iter().zip(&ids) {
        assert_eq!(image(lease, CONTROLLER).image_id, *id);
        let loaded = world.loaded_images(&lease.cluster);
        assert!(loaded.contains(&image(lease, CONTROLLER).tag), "{loaded}");
        let other = leases.iter().find(|l| l.cluster != lease.cluster).unwrap();
        assert!(!loaded.contains(&image(other, CONTROLLER).tag), "{loaded}");
    }
    let store = daemon.store().await;
    let overlays: Vec<_> = futures::future::join_all(leases.iter().map(|l| {
        let store = store.clone();
        let cluster = l.cluster.clone();
        async move {
            let id = store
                .clusters(Some("demo"), &[ClusterState::Leased])
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.name == cluster)
                .unwrap()
                .id;
            store.overlay_steps(&id).await.unwrap()
        }
    }))
    .await;
    let span = |steps: &[infrad::store::StepRow]| {
        (
            steps.iter().map(|s| s.started_at).min().unwrap(),
            steps.iter().filter_map(|s| s.ended_at).max().unwrap(),
        )
    };
    let (a, b) = (span(&overlays[0]), span(&overlays[1]));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "the overlays ran at the same time: {a:?} {b:?}"
    );
}

#[tokio::test]
async fn infrad_run_with_image_runs_the_command_on_the_overlaid_cluster() {
    if !docker_available("infrad_run_with_image_runs_the_command_on_the_overlaid_cluster") {
        return;
    }
    let world = FakeWorld::new().await;
    let (daemon, _, store, _) = warm(&world, ONE).await;
    let id = build_local_image("overlay-test/we:pr-10", "cli");
    let run = |image: &str| {
        output(infrad(
            &daemon,
            &["run", "--profile", "demo", "--image", image, "--", "true"],
        ))
    };

    let malformed = run(CONTROLLER).await;
    assert_eq!(malformed.status.code(), Some(2), "a usage error");
    assert!(
        text(&malformed.stderr).contains("expected NAME=REF"),
        "{}",
        text(&malformed.stderr)
    );
    let unknown = run("overlay-test/nope:dev=overlay-test/we:pr-10").await;
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("\"overlay-test/nope:dev\" is not an image of profile"),
        "{}",
        text(&unknown.stderr)
    );
    assert!(store.lease_history("demo").await.unwrap().is_empty());

    let done = run(&format!("{CONTROLLER}=overlay-test/we:pr-10")).await;
    let stderr = text(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("your images: deploy / controller ended"),
        "{stderr}"
    );
    let tag = format!("overlay-test/we:infrad-{}", &id[7..19]);
    assert!(
        world.kind_calls().iter().any(|c| c.args.contains(&tag)),
        "{tag} was loaded"
    );
    assert_eq!(store.lease_history("demo").await.unwrap().len(), 1);
}
