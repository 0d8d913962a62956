//! Every lease rule through a real server on 127.0.0.1:0 and infrad-client.

use std::time::{Duration, SystemTime};

use infrad_client::{Acquire, Error, proto};
use infrad_test_support::{TestDaemon, acquire, config, counts, eventually, ready};
use tonic::Code;

#[tokio::test]
async fn acquire_grants_a_ready_cluster_with_its_build_timings() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 2\nlease_ttl = \"5m\"")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(100));
    let mut client = daemon.client().await;
    ready(&client, 1).await;

    let before = SystemTime::now();
    let lease = client.acquire_lease(acquire("job-42")).await.unwrap();
    assert_eq!(lease.token.len(), 64, "a 256-bit token");
    assert!(
        lease.cluster.starts_with("infrad-demo-"),
        "{}",
        lease.cluster
    );
    assert!(lease.kubeconfig.contains(&lease.cluster));
    assert_eq!(
        (lease.profile.as_str(), lease.holder.as_str()),
        ("demo", "job-42")
    );
    let expires = SystemTime::try_from(lease.expires_at.unwrap()).unwrap();
    let ttl = expires.duration_since(before).unwrap();
    assert!(
        ttl > Duration::from_secs(299) && ttl <= Duration::from_secs(301),
        "{ttl:?}"
    );

    let build = lease.build.unwrap();
    let phases: Vec<&str> = build.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["build", "cluster"]);
    assert!(
        build
            .phases
            .iter()
            .all(|p| p.duration.unwrap().nanos > 0 || p.duration.unwrap().seconds > 0)
    );
    assert_eq!(build.phases[1].steps[0].step, "kind create cluster");
}

#[tokio::test]
async fn status_shows_leases_without_tokens() {
    let daemon = TestDaemon::start(&config("warm = 2\nmax = 2")).await;
    let mut client = daemon.client().await;
    ready(&client, 2).await;
    let lease = client.acquire_lease(acquire("job-1")).await.unwrap();

    let status = client.status(None).await.unwrap();
    assert!(
        !format!("{status:?}").contains(&lease.token),
        "Status must never show a token"
    );
    let demo = &status.profiles[0];
    let counts = demo.counts.unwrap();
    assert_eq!((counts.ready, counts.leased), (1, 1));
    assert_eq!(demo.leases.len(), 1);
    assert_eq!(demo.leases[0].holder, "job-1");
    assert_eq!(demo.leases[0].cluster, lease.cluster);
    assert_eq!(demo.leases[0].expires_at, lease.expires_at);
    let leased = demo
        .clusters
        .iter()
        .find(|c| c.name == lease.cluster)
        .unwrap();
    assert_eq!(leased.state, proto::ClusterState::Leased as i32);
    assert_eq!(leased.holder, "job-1");
    assert!(
        demo.phase_stats
            .iter()
            .any(|s| s.phase == "cluster" && s.runs == 2)
    );
}

#[tokio::test]
async fn renew_moves_expiry_within_the_profile_maximum() {
    let daemon = TestDaemon::start(&config("lease_ttl = \"1m\"\nmax_lease_ttl = \"1h\"")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    let renewed = client
        .renew(
            &lease.lease_id,
            &lease.token,
            Some(Duration::from_secs(1800)),
        )
        .await
        .unwrap();
    let left = renewed.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(1790), "{left:?}");

    let too_long = client
        .renew(
            &lease.lease_id,
            &lease.token,
            Some(Duration::from_secs(7200)),
        )
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Some(Code::InvalidArgument));
    assert!(too_long.to_string().contains("at most 1h"), "{too_long}");
    let zero = client
        .renew(&lease.lease_id, &lease.token, Some(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(zero.code(), Some(Code::InvalidArgument));
    let over = client
        .acquire_lease(acquire("other").ttl(Duration::from_secs(3601)))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Some(Code::InvalidArgument));
    assert!(over.to_string().contains("at most 1h"), "{over}");
}

#[tokio::test]
async fn only_the_token_proves_ownership() {
    let daemon = TestDaemon::start(&config("")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();
    let wrong = "0".repeat(64);

    let renew = client
        .renew(&lease.lease_id, &wrong, None)
        .await
        .unwrap_err();
    assert_eq!(renew.code(), Some(Code::PermissionDenied));
    let release = client.release(&lease.lease_id, "").await.unwrap_err();
    assert_eq!(release.code(), Some(Code::PermissionDenied));
    assert_eq!(
        counts(&mut client).await.leased,
        1,
        "the lease is untouched"
    );

    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = client.release(&unknown, &lease.token).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    let malformed = client
        .renew("lease-1", &lease.token, None)
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Some(Code::InvalidArgument));
}

#[tokio::test]
async fn release_is_idempotent_and_ends_the_lease() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let lease = client.acquire_lease(acquire("job")).await.unwrap();

    client.release(&lease.lease_id, &lease.token).await.unwrap();
    client.release(&lease.lease_id, &lease.token).await.unwrap();
    let renew = client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .unwrap_err();
    assert!(matches!(renew, Error::LeaseLost(_)), "{renew:?}");
    assert!(
        renew.to_string().starts_with("lease lost: released at "),
        "{renew}"
    );

    // recreate: the used cluster is deleted and a new one takes its place.
    let provisioner = daemon.provisioner.clone();
    let cluster = lease.cluster.clone();
    eventually("the released cluster is deleted", || {
        let provisioner = provisioner.clone();
        let cluster = cluster.clone();
        async move {
            provisioner
                .events()
                .contains(&infrad_test_support::Event::Destroyed(cluster))
        }
    })
    .await;
    ready(&client, 1).await;
    let next = client.acquire_lease(acquire("job")).await.unwrap();
    assert_ne!(next.cluster, lease.cluster);
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_says_so() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let lease = client
        .acquire_lease(acquire("job").ttl(Duration::from_millis(300)))
        .await
        .unwrap();

    eventually("the lease expires and its cluster is rebuilt", || {
        let mut client = client.clone();
        async move {
            let status = client.status(Some("demo")).await.unwrap();
            status.profiles[0].leases.is_empty() && status.profiles[0].counts.unwrap().ready == 1
        }
    })
    .await;
    assert!(
        daemon
            .provisioner
            .events()
            .contains(&infrad_test_support::Event::Destroyed(
                lease.cluster.clone()
            ))
    );
    let renew = client
        .renew(&lease.lease_id, &lease.token, None)
        .await
        .unwrap_err();
    assert!(
        renew.to_string().starts_with("lease lost: expired at "),
        "{renew}"
    );
    let release = client
        .release(&lease.lease_id, &lease.token)
        .await
        .unwrap_err();
    assert_eq!(release.code(), Some(Code::FailedPrecondition));
}

#[tokio::test]
async fn no_ready_cluster_answers_resource_exhausted_with_counts() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    daemon.provisioner.set_build_delay(Duration::from_secs(30));
    let mut client = daemon.client().await;
    eventually("a build is running", || {
        let mut client = client.clone();
        async move { counts(&mut client).await.building == 1 }
    })
    .await;

    let now = client
        .acquire_lease(Acquire::new("demo").holder("job").wait(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(now, Error::TimedOut(_)), "{now:?}");
    assert!(now.to_string().contains("1 building, 0 leased"), "{now}");

    let waited = client
        .acquire_lease(
            Acquire::new("demo")
                .holder("job")
                .wait(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert_eq!(waited.code(), Some(Code::ResourceExhausted));
    assert!(waited.to_string().contains("within 200ms"), "{waited}");
    assert_eq!(
        counts(&mut client).await.waiting,
        0,
        "the timed-out caller left the queue"
    );
}

#[tokio::test]
async fn a_waiting_caller_gets_the_cluster_when_it_becomes_ready() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(500));
    let mut client = daemon.client().await;
    let lease = client.acquire_lease(acquire("patient")).await.unwrap();
    assert_eq!(lease.holder, "patient");
    assert_eq!(counts(&mut client).await.leased, 1);
}

#[tokio::test]
async fn a_retried_request_id_gets_the_same_lease() {
    let daemon = TestDaemon::start(&config("warm = 2\nmax = 2")).await;
    let mut client = daemon.client().await;
    ready(&client, 2).await;
    let first = client
        .acquire_lease(acquire("job").request_id("req-1"))
        .await
        .unwrap();
    let retry = client
        .acquire_lease(acquire("job").request_id("req-1"))
        .await
        .unwrap();
    assert_eq!(
        (&retry.lease_id, &retry.token, &retry.cluster),
        (&first.lease_id, &first.token, &first.cluster)
    );
    assert_eq!(counts(&mut client).await.leased, 1);

    let other_holder = client
        .acquire_lease(acquire("other").request_id("req-1"))
        .await
        .unwrap();
    assert_ne!(other_holder.lease_id, first.lease_id);
}

#[tokio::test]
async fn a_caller_that_gives_up_leaves_no_lease_behind() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(800));
    let client = daemon.client().await;

    // One caller hits its deadline, another disconnects (its call is dropped).
    let mut raw = infrad_client::proto::lease_service_client::LeaseServiceClient::connect(format!(
        "http://{}",
        daemon.addr
    ))
    .await
    .unwrap();
    let mut request = tonic::Request::new(proto::AcquireRequest {
        profile: "demo".into(),
        holder: "impatient".into(),
        wait: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(100));
    let deadline = raw.acquire(request).await.unwrap_err();
    // tonic reports its own client-side deadline as Cancelled ("Timeout expired").
    assert!(
        matches!(deadline.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{deadline:?}"
    );

    let mut dropped = client.clone();
    let call = tokio::spawn(async move { dropped.acquire_lease(acquire("dropped")).await });
    eventually("the second caller waits", || {
        let mut client = client.clone();
        async move { counts(&mut client).await.waiting >= 1 }
    })
    .await;
    call.abort();

    ready(&client, 1).await;
    let store = daemon.store().await;
    assert!(
        store.lease_history("demo").await.unwrap().is_empty(),
        "nobody holds a lease"
    );
    let mut client = client.clone();
    assert_eq!(counts(&mut client).await.waiting, 0);
    let lease = client.acquire_lease(acquire("next")).await.unwrap();
    assert_eq!(lease.holder, "next");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    let mut client = daemon.client().await;
    ready(&client, 1).await;
    let before = client.status(None).await.unwrap();

    let cases = [
        (
            Acquire::new(""),
            Code::InvalidArgument,
            "profile is required",
        ),
        (
            Acquire::new("nope"),
            Code::NotFound,
            "unknown profile \"nope\"",
        ),
        (
            Acquire::new("demo").holder("h".repeat(257)),
            Code::InvalidArgument,
            "257 bytes",
        ),
        (
            Acquire::new("demo").holder("job\u{7}"),
            Code::InvalidArgument,
            "control characters",
        ),
        (
            Acquire::new("demo").ttl(Duration::from_secs(5 * 3600)),
            Code::InvalidArgument,
            "at most 4h",
        ),
    ];
    for (request, code, message) in cases {
        let e = client.acquire_lease(request).await.unwrap_err();
        assert_eq!(e.code(), Some(code), "{e}");
        assert!(e.to_string().contains(message), "{e} should say {message}");
    }
    let unknown = client.status(Some("nope")).await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::NotFound));

    let mut after = client.status(None).await.unwrap();
    // Ages move on; everything else must be as it was.
    for (b, a) in before.profiles.iter().zip(after.profiles.iter_mut()) {
        for (bc, ac) in b.clusters.iter().zip(a.clusters.iter_mut()) {
            ac.age = bc.age;
        }
    }
    assert_eq!(before, after);
}
