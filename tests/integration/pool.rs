//! Pool behaviour: sizing, build limits, recycling, degradation, shutdown and restart.

use std::time::Duration;

use infrad::store::ClusterState;
use infrad_client::Error;
use infrad_test_support::{Event, TestDaemon, acquire, config, counts, eventually, ready};
use tonic::Code;

#[tokio::test]
async fn fills_to_warm_within_max_and_the_build_limit() {
    let daemon = TestDaemon::start(&config("warm = 4\nmax = 5")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(150));
    let mut client = daemon.client().await;
    ready(&client, 4).await;
    // Leased clusters do not count as warm: leasing two starts two more builds, up to max.
    let _a = client.acquire_lease(acquire("a")).await.unwrap();
    let _b = client.acquire_lease(acquire("b")).await.unwrap();
    eventually("the pool refills up to max", || {
        let mut client = client.clone();
        async move {
            let c = counts(&mut client).await;
            c.ready == 3 && c.building == 0 && c.leased == 2
        }
    })
    .await;
    let store = daemon.store().await;
    let live = store
        .clusters(Some("demo"), &ClusterState::LIVE)
        .await
        .unwrap();
    assert_eq!(live.len(), 5, "never more than max clusters");
    let builds = daemon
        .provisioner
        .events()
        .iter()
        .filter(|e| matches!(e, Event::BuildStarted(..)))
        .count();
    assert_eq!(builds, 5);
    assert_eq!(
        daemon.provisioner.max_concurrent_builds(),
        2,
        "max_concurrent_builds = 2 bounds the pipelines running at once"
    );
}

#[tokio::test]
async fn waiters_add_demand_beyond_warm() {
    let daemon = TestDaemon::start(&config("warm = 0\nmax = 3")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(100));
    let client = daemon.client().await;
    let mut calls = Vec::new();
    for holder in ["a", "b"] {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            client.acquire_lease(acquire(holder)).await
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let mut client = client.clone();
    assert_eq!(counts(&mut client).await.leased, 2);
}

#[tokio::test]
async fn reset_hands_the_same_cluster_out_again() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\nrecycle = \"reset\"")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let first = client.acquire_lease(acquire("a")).await.unwrap();
    client.release(&first.lease_id, &first.token).await.unwrap();
    let second = client.acquire_lease(acquire("b")).await.unwrap();
    assert_eq!(second.cluster, first.cluster);
    let events = daemon.provisioner.events();
    assert!(events.contains(&Event::Reset(first.cluster.clone())));
    assert!(!events.contains(&Event::Destroyed(first.cluster.clone())));
}

#[tokio::test]
async fn a_failed_reset_falls_back_to_recreate() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\nrecycle = \"reset\"")).await;
    daemon.provisioner.set_fail_resets(true);
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let first = client.acquire_lease(acquire("a")).await.unwrap();
    client.release(&first.lease_id, &first.token).await.unwrap();
    let second = client.acquire_lease(acquire("b")).await.unwrap();
    assert_ne!(second.cluster, first.cluster);
    let events = daemon.provisioner.events();
    let reset = events
        .iter()
        .position(|e| *e == Event::Reset(first.cluster.clone()));
    let destroyed = events
        .iter()
        .position(|e| *e == Event::Destroyed(first.cluster.clone()));
    assert!(
        reset.unwrap() < destroyed.unwrap(),
        "reset tried first, then recreated"
    );
}

#[tokio::test]
async fn repeated_failures_degrade_the_profile_until_a_build_succeeds() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\ndegraded_after = 2")).await;
    daemon.provisioner.set_fail_builds(true);
    let mut client = daemon.client().await;
    eventually("the profile is degraded", || {
        let mut client = client.clone();
        async move { client.status(Some("demo")).await.unwrap().profiles[0].degraded }
    })
    .await;

    let e = client.acquire_lease(acquire("job")).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    let text = e.to_string();
    assert!(text.contains("degraded"), "{text}");
    assert!(
        text.contains("phase cluster step kind create cluster (exit code 1)"),
        "{text}"
    );
    assert!(text.contains("injected failure"), "{text}");
    let status = client.status(Some("demo")).await.unwrap();
    let failure = status.profiles[0].last_failure.clone().unwrap();
    assert_eq!(
        (failure.phase.as_str(), failure.exit_code),
        ("cluster", Some(1))
    );
    assert!(failure.consecutive_failures >= 2);
    // Each failed half-built cluster was deleted.
    assert!(daemon.provisioner.existing().is_empty());

    daemon.provisioner.set_fail_builds(false);
    eventually("retries continue and the profile recovers", || {
        let mut client = client.clone();
        async move { !client.status(Some("demo")).await.unwrap().profiles[0].degraded }
    })
    .await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    assert!(lease.cluster.starts_with("infrad-demo-"));
}

#[tokio::test]
async fn waiters_fail_fast_when_the_profile_degrades() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\ndegraded_after = 3")).await;
    daemon.provisioner.set_fail_builds(true);
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(100));
    let mut client = daemon.client().await;
    let e = client
        .acquire_lease(acquire("job").wait(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
}

#[tokio::test]
async fn shutdown_keeps_warm_clusters_and_ends_waits() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 2")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let _lease = client.acquire_lease(acquire("holder")).await.unwrap();
    daemon.provisioner.set_build_delay(Duration::from_secs(60));
    let mut waiting = client.clone();
    let waiter = tokio::spawn(async move {
        waiting
            .acquire_lease(acquire("waiter").wait(Duration::from_secs(60)))
            .await
    });
    eventually("a caller waits", || {
        let mut client = client.clone();
        async move { counts(&mut client).await.waiting == 1 }
    })
    .await;

    let provisioner = daemon.provisioner.clone();
    let kept = provisioner.existing();
    let (_state, _) = daemon.stop().await;
    let e = waiter.await.unwrap().unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Rejected {
                code: Code::Unavailable,
                ..
            }
        ),
        "a waiter is told the daemon is going away: {e:?}"
    );
    assert_eq!(
        provisioner.existing(),
        kept,
        "no warm or leased cluster is deleted"
    );
    assert!(
        !provisioner
            .events()
            .iter()
            .any(|e| matches!(e, Event::Destroyed(_)))
    );
}

#[tokio::test]
async fn restart_reconciles_the_store_with_the_provisioner() {
    let daemon = TestDaemon::start(&config("warm = 2\nmax = 3")).await;
    let mut client = daemon.client().await;
    ready(&client, 2).await;
    let kept = client.acquire_lease(acquire("kept")).await.unwrap();
    let vanishing = client.acquire_lease(acquire("vanishing")).await.unwrap();
    // A third build is cut short by the shutdown.
    daemon.provisioner.set_build_delay(Duration::from_secs(60));
    eventually("a build is running", || {
        let mut client = client.clone();
        async move { counts(&mut client).await.building == 1 }
    })
    .await;
    let status = client.status(Some("demo")).await.unwrap();
    let half_built = status.profiles[0]
        .clusters
        .iter()
        .find(|c| c.state == infrad_client::proto::ClusterState::Building as i32)
        .unwrap()
        .name
        .clone();
    let (state, provisioner) = daemon.stop().await;

    provisioner.delete_behind_the_back(&vanishing.cluster);
    provisioner.create_behind_the_back("infrad-demo-orphan1");
    provisioner.create_behind_the_back("someone-elses-cluster");
    provisioner.set_build_delay(Duration::ZERO);
    let daemon = TestDaemon::start_with(&config("warm = 2\nmax = 3"), provisioner, state).await;
    let mut client = daemon.client().await;
    // Reconciled before the first answer: the vanished cluster is never offered.
    let first = client.status(Some("demo")).await.unwrap();
    assert!(
        !first.profiles[0]
            .clusters
            .iter()
            .any(|c| c.name == vanishing.cluster),
        "{first:?}"
    );
    ready(&client, 2).await;

    client
        .renew(&kept.lease_id, &kept.token, None)
        .await
        .unwrap();
    let lost = client
        .renew(&vanishing.lease_id, &vanishing.token, None)
        .await
        .unwrap_err();
    assert!(
        lost.to_string().starts_with("lease lost: gone at "),
        "{lost}"
    );
    let existing = daemon.provisioner.existing();
    assert!(
        !existing.contains(&"infrad-demo-orphan1".to_string()),
        "orphan deleted"
    );
    assert!(
        existing.contains(&"someone-elses-cluster".to_string()),
        "not infrad's: kept"
    );
    let store = daemon.store().await;
    let gone = store
        .clusters(Some("demo"), &[ClusterState::Gone])
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].name, vanishing.cluster);
    eventually("the half-built cluster is deleted", || {
        let (store, name) = (store.clone(), half_built.clone());
        async move {
            let deleted = store
                .clusters(Some("demo"), &[ClusterState::Deleted])
                .await
                .unwrap();
            deleted.iter().any(|c| c.name == name)
        }
    })
    .await;
    assert!(
        daemon
            .provisioner
            .events()
            .contains(&Event::Destroyed(half_built))
    );
    let live = store
        .clusters(Some("demo"), &ClusterState::LIVE)
        .await
        .unwrap();
    assert_eq!(
        live.iter()
            .filter(|c| c.state == ClusterState::Leased)
            .count(),
        1,
        "the kept lease's cluster is still leased"
    );
}

#[tokio::test]
async fn a_refresh_replaces_stale_clusters_one_at_a_time() {
    let daemon = TestDaemon::start(&config("warm = 2\nmax = 2")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(100));
    let mut client = daemon.client().await;
    ready(&client, 2).await;
    let old: Vec<String> = daemon.provisioner.existing();

    assert_eq!(
        client.refresh(Some("demo")).await.unwrap(),
        vec!["demo".to_string()]
    );
    eventually("both stale clusters are replaced", || {
        let mut client = client.clone();
        let old = old.clone();
        async move {
            let status = client.status(Some("demo")).await.unwrap();
            let clusters = &status.profiles[0].clusters;
            clusters.len() == 2
                && clusters.iter().all(|c| !c.stale && !old.contains(&c.name))
                && status.profiles[0].counts.unwrap().ready == 2
        }
    })
    .await;
    // One at a time: the second stale cluster goes only once the first replacement is built.
    let events = daemon.provisioner.events();
    let position = |wanted: &Event| events.iter().position(|e| e == wanted).unwrap();
    let last_destroyed = old
        .iter()
        .map(|name| position(&Event::Destroyed(name.clone())))
        .max()
        .unwrap();
    let first_replacement = events
        .iter()
        .filter_map(|e| match e {
            Event::BuildStarted(name, _) if !old.contains(name) => Some(name.clone()),
            _ => None,
        })
        .next()
        .unwrap();
    let replacement_built = events
        .iter()
        .position(|e| matches!(e, Event::BuildEnded(name, _) if *name == first_replacement))
        .unwrap();
    assert!(
        replacement_built < last_destroyed,
        "the second stale cluster went before the first replacement was ready: {events:?}"
    );
    let unknown = client.refresh(Some("nope")).await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::NotFound));
}

#[tokio::test]
async fn stale_clusters_serve_only_when_no_fresh_one_is_ready() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 2")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let stale = daemon.provisioner.existing()[0].clone();
    daemon.provisioner.set_build_delay(Duration::from_secs(60));
    client.refresh(None).await.unwrap();
    eventually(
        "the old cluster is seen as stale and a fresh one is building",
        || {
            let mut client = client.clone();
            async move {
                let status = client.status(Some("demo")).await.unwrap();
                let p = &status.profiles[0];
                p.clusters.iter().any(|c| c.stale) && p.counts.unwrap().building == 1
            }
        },
    )
    .await;
    let lease = client
        .acquire_lease(acquire("needs-one-now"))
        .await
        .unwrap();
    assert_eq!(
        lease.cluster, stale,
        "with no fresh cluster ready, the stale one serves"
    );
}

#[tokio::test]
async fn a_stale_cluster_is_recreated_even_when_the_profile_resets() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\nrecycle = \"reset\"")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let stale = daemon.provisioner.existing()[0].clone();
    client.refresh(Some("demo")).await.unwrap();
    eventually("the stale cluster is replaced", || {
        let mut client = client.clone();
        let stale = stale.clone();
        async move {
            let status = client.status(Some("demo")).await.unwrap();
            let p = &status.profiles[0];
            p.counts.unwrap().ready == 1 && p.clusters.iter().all(|c| c.name != stale && !c.stale)
        }
    })
    .await;
    let events = daemon.provisioner.events();
    assert!(events.contains(&Event::Destroyed(stale.clone())));
    assert!(
        !events.contains(&Event::Reset(stale)),
        "a stale cluster is never reset"
    );
}

#[tokio::test]
async fn a_degraded_profile_still_hands_out_ready_clusters() {
    let daemon = TestDaemon::start(&config(
        "warm = 1\nmax = 2\nrecycle = \"reset\"\ndegraded_after = 1",
    ))
    .await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let first = client.acquire_lease(acquire("first")).await.unwrap();
    daemon.provisioner.set_fail_builds(true);
    eventually("the next build fails and the profile degrades", || {
        let mut client = client.clone();
        async move { client.status(Some("demo")).await.unwrap().profiles[0].degraded }
    })
    .await;
    let refused = client
        .acquire_lease(acquire("second").wait(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(Code::Unavailable),
        "nothing ready: fail fast"
    );
    // Reset brings the first cluster back to ready without a build.
    client.release(&first.lease_id, &first.token).await.unwrap();
    ready(&client, 1).await;
    let again = client
        .acquire_lease(acquire("third").wait(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        again.cluster, first.cluster,
        "a ready cluster is handed out while degraded"
    );
}
