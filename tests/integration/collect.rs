//! Release with collect, against the test provisioner: bad input changes nothing, the lease
//! is released once, collecting is bounded, and the guard copies what was collected.

use std::time::Duration;

use infrad_test_support::{Event, TestDaemon, acquire, config, ready};
use tonic::Code;

fn with_artifacts(extra: &str) -> String {
    format!(
        "{}[profiles.demo.artifacts]\nnode_path = \"/infrad/artifacts\"\n{extra}\n\
         [[profiles.demo.deploy]]\nname = \"app\"\nmanifests = []\n\
         [[profiles.demo.deploy]]\nname = \"db\"\nmanifests = []\n",
        config("warm = 1\nmax = 1\n")
    )
}

fn collections(daemon: &TestDaemon) -> Vec<Vec<String>> {
    daemon
        .provisioner
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Collected(_, flush) => Some(flush),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn bad_collect_requests_change_nothing_and_the_release_happens_once() {
    let daemon = TestDaemon::start(&with_artifacts("")).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let unknown = client
        .release_collect(&lease.lease_id, &lease.token, &["app", "web"])
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(Code::InvalidArgument), "{unknown}");
    assert!(
        unknown.to_string().contains("\"web\" is not a deploy step")
            && unknown.to_string().contains("its steps: app, db"),
        "{unknown}"
    );
    let twice = client
        .release_collect(&lease.lease_id, &lease.token, &["db", "db"])
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Some(Code::InvalidArgument), "{twice}");
    assert!(collections(&daemon).is_empty(), "nothing collected");
    client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .expect("the lease is still live");

    let collected = client
        .release_collect(&lease.lease_id, &lease.token, &["db"])
        .await
        .unwrap()
        .expect("collected");
    assert_eq!(collected.artifacts_dir, lease.artifacts_dir);
    assert_eq!((collected.pods, collected.logs), (1, 1));
    assert!(collected.problems.is_empty(), "{:?}", collected.problems);
    let again = client
        .release_collect(&lease.lease_id, &lease.token, &["db"])
        .await
        .unwrap();
    assert_eq!(again, None, "released already: nothing collected again");
    assert_eq!(collections(&daemon), vec![vec!["db".to_string()]]);
    let lost = client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .unwrap_err();
    assert!(lost.to_string().contains("released"), "{lost}");

    // lease.json: the lease and its build, never its token or kubeconfig.
    let dir = std::path::Path::new(&lease.artifacts_dir);
    let text = std::fs::read_to_string(dir.join("lease.json")).unwrap();
    assert!(!text.contains(&lease.token), "no token in lease.json");
    assert!(!text.contains("kubeconfig"), "{text}");
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["lease_id"], lease.lease_id.as_str());
    assert_eq!(record["cluster"], lease.cluster.as_str());
    assert_eq!(record["holder"], "job");
    let steps: Vec<&str> = record["build"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["images", "kind create cluster"]);
    assert!(record["overlay"].is_null());
    assert!(infrad_test_support::world::is_private(
        &dir.join("lease.json")
    ));
}

#[tokio::test]
async fn collect_on_a_profile_without_artifacts_says_how_to_turn_them_on() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1\n")).await;
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    let refused = client
        .release_collect(&lease.lease_id, &lease.token, &[] as &[&str])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::FailedPrecondition), "{refused}");
    assert!(
        refused.to_string().contains("[profiles.demo.artifacts]")
            && refused.to_string().contains("node_path"),
        "{refused}"
    );
    client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .expect("still live");

    // The guard releases all the same, and says why nothing was collected.
    client.release(&lease.lease_id, &lease.token).await.unwrap();
    ready(&client, 1).await;
    let guard = client.acquire(acquire("job-2")).await.unwrap();
    let dest = tempfile::tempdir().unwrap();
    let refused = guard
        .release_collect(dest.path(), &[] as &[&str])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::FailedPrecondition));
    infrad_test_support::eventually("the guard's lease is released", || async {
        let status = daemon.client().await.status(None).await.unwrap();
        status.profiles[0].leases.is_empty()
    })
    .await;
}

#[tokio::test]
async fn collecting_is_bounded_and_one_release_collects_at_a_time() {
    let daemon = TestDaemon::start(&with_artifacts("collect_timeout = \"300ms\"")).await;
    daemon
        .provisioner
        .set_collect_delay(Duration::from_secs(30));
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let first = tokio::spawn({
        let mut client = client.clone();
        let lease = lease.clone();
        async move {
            client
                .release_collect(&lease.lease_id, &lease.token, &["app"])
                .await
        }
    });
    infrad_test_support::eventually("collecting started", || async {
        !collections(&daemon).is_empty()
    })
    .await;
    let second = client
        .release_collect(&lease.lease_id, &lease.token, &["app"])
        .await
        .unwrap_err();
    assert_eq!(second.code(), Some(Code::Aborted), "{second}");
    assert!(
        second.to_string().contains("being released already"),
        "{second}"
    );

    let collected = first.await.unwrap().unwrap().expect("collected");
    assert_eq!(collected.problems.len(), 1, "{:?}", collected.problems);
    assert!(
        collected.problems[0].contains("collect_timeout of 300ms"),
        "{:?}",
        collected.problems
    );
    let took = Duration::try_from(collected.took.unwrap()).unwrap();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        std::path::Path::new(&lease.artifacts_dir)
            .join("lease.json")
            .exists(),
        "written before the bound ran out"
    );
    let lost = client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .unwrap_err();
    assert!(
        lost.to_string().contains("released"),
        "released all the same: {lost}"
    );
}

#[tokio::test]
async fn the_guard_copies_what_was_collected() {
    let daemon = TestDaemon::start(&with_artifacts("")).await;
    let mut client = daemon.client().await;
    let guard = client.acquire(acquire("job")).await.unwrap();
    let dir = guard
        .artifacts_dir()
        .expect("a profile with artifacts")
        .to_owned();
    std::fs::create_dir_all(dir.join("coverdata")).unwrap();
    std::fs::write(dir.join("coverdata/covcounters.1"), "counters").unwrap();

    let dest = tempfile::tempdir().unwrap();
    let out = dest.path().join("artifacts");
    let collected = guard.release_collect(&out, &["app"]).await.unwrap();
    assert_eq!(collected.artifacts_dir, dir.display().to_string());
    assert_eq!(
        std::fs::read_to_string(out.join("coverdata/covcounters.1")).unwrap(),
        "counters"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("collected.txt")).unwrap(),
        "app"
    );
    assert!(out.join("lease.json").exists());
    assert_eq!(collections(&daemon), vec![vec!["app".to_string()]]);
}
