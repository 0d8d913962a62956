//! The test run's side: the lease guard of `infrad-client` and acquiring with progress.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use infrad::store::EndReason;
use infrad_client::{Acquire, Client, Progress, proto};
use infrad_test_support::{TestDaemon, acquire, config, counts, eventually, ready};

async fn live_leases(client: &Client) -> Vec<String> {
    let mut client = client.clone();
    let status = client.status(Some("demo")).await.unwrap();
    status.profiles[0]
        .leases
        .iter()
        .map(|l| l.lease_id.clone())
        .collect()
}

#[tokio::test]
async fn a_guard_keeps_a_short_lease_alive_past_its_ttl() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let guard = client
        .acquire(acquire("job").ttl(Duration::from_millis(600)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(
        live_leases(&client).await,
        vec![guard.lease_id().to_string()],
        "renewed past 3 TTLs"
    );
    assert_eq!(guard.lost(), None);

    let path = guard.kubeconfig_path().to_path_buf();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), guard.kubeconfig());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    guard.release().await.unwrap();
    assert!(!path.exists(), "the kubeconfig file goes with the lease");
    assert!(live_leases(&client).await.is_empty());
}

#[tokio::test]
async fn dropping_a_guard_releases_its_lease() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let guard = client.acquire(acquire("job")).await.unwrap();
    let id = guard.lease_id().to_string();
    drop(guard);
    eventually("the dropped guard's lease is released", || {
        let client = client.clone();
        async move { live_leases(&client).await.is_empty() }
    })
    .await;
    let lease = daemon.store().await.lease(&id).await.unwrap().unwrap();
    assert_eq!(lease.end_reason, Some(EndReason::Released));
}

#[test]
fn a_guard_dropped_outside_a_runtime_releases_without_panicking() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let (daemon, client) = server.block_on(async {
        let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
        let client = daemon.client().await;
        ready(&client, 1).await;
        (daemon, client)
    });
    let guard = {
        // The guard is made in a runtime that is gone by the time it is dropped.
        let caller = tokio::runtime::Runtime::new().unwrap();
        let addr = daemon.addr.to_string();
        caller.block_on(async move {
            let mut client = Client::connect(&addr).await.unwrap();
            client.acquire(acquire("job")).await.unwrap()
        })
    };
    drop(guard);
    server.block_on(async {
        assert!(live_leases(&client).await.is_empty(), "released on drop");
        daemon.stop().await;
    });
}

#[tokio::test]
async fn a_lost_lease_is_reported_to_its_holder() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let mut guard = client
        .acquire(acquire("job").ttl(Duration::from_millis(600)))
        .await
        .unwrap();
    // Someone with the token ends it behind the guard's back.
    client
        .release(guard.lease_id(), guard.token())
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), guard.wait_lost())
        .await
        .unwrap();
    assert!(reason.starts_with("lease lost: released at "), "{reason}");
    assert_eq!(guard.lost(), Some(reason));
}

#[tokio::test]
async fn progress_shows_the_queue_and_the_build_then_the_lease() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 2")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(300));
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let _held = client.acquire_lease(acquire("first")).await.unwrap();
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(2_500));

    let mut events: Vec<proto::Waiting> = Vec::new();
    let lease = client
        .acquire_with_progress(acquire("second"), |p| {
            if let Progress::Waiting(w) = p {
                events.push(w.clone());
            }
        })
        .await
        .unwrap();
    assert_eq!(lease.holder, "second");
    assert!(
        events.len() >= 2,
        "progress arrives while the build runs: {events:?}"
    );
    assert!(events.iter().all(|w| w.position == 1 && w.waiting == 1));
    let builds: Vec<&proto::BuildProgress> =
        events.iter().filter_map(|w| w.build.as_ref()).collect();
    assert!(
        !builds.is_empty(),
        "the build for this caller is shown: {events:?}"
    );
    assert!(
        builds.iter().all(|b| b.cluster == lease.cluster),
        "the cluster it then got"
    );
    let phases: Vec<&str> = builds
        .iter()
        .map(|b| b.phase.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(
        phases.windows(2).all(|w| w[0] <= w[1]),
        "phases move forward: {phases:?}"
    );
    assert!(phases.contains(&"cluster"), "{phases:?}");
    let elapsed: Vec<Duration> = builds
        .iter()
        .map(|b| Duration::try_from(b.elapsed.unwrap()).unwrap())
        .collect();
    assert!(
        elapsed.windows(2).all(|w| w[0] <= w[1]),
        "elapsed time only grows: {elapsed:?}"
    );
    assert_eq!(counts(&mut client).await.leased, 2);
}

#[tokio::test]
async fn progress_errors_keep_their_codes() {
    let daemon = TestDaemon::start(&config("warm = 0\nmax = 1")).await;
    let mut client = daemon.client().await;
    let e = client
        .acquire_with_progress(Acquire::new("nope"), |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound));
    daemon.provisioner.set_build_delay(Duration::from_secs(60));
    let e = client
        .acquire_with_progress(acquire("job").wait(Duration::from_millis(300)), |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::ResourceExhausted));
}

#[test]
fn a_guard_dropped_as_its_runtime_ends_still_releases() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let daemon = server.block_on(async {
        let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
        ready(&daemon.client().await, 1).await;
        daemon
    });
    let addr = daemon.addr.to_string();
    // The guard goes out of scope on the last line of the block the runtime runs, as in a
    // `#[tokio::test]` or `main` that returns early with `?`.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut client = Client::connect(&addr).await.unwrap();
            let _guard = client.acquire(acquire("job")).await.unwrap();
        });
    server.block_on(async {
        let client = daemon.client().await;
        eventually("the lease dropped with its runtime is released", || {
            let client = client.clone();
            async move { live_leases(&client).await.is_empty() }
        })
        .await;
        daemon.stop().await;
    });
}
