//! 64 concurrent acquirers on a pool of 8: the invariants, checked in the store.

use std::{collections::HashMap, time::Duration};

use infrad::{store::LeaseRow, time::Millis};
use infrad_client::Acquire;
use infrad_test_support::{TestDaemon, counts, eventually, ready};
use tokio::sync::watch;

const POOL: usize = 8;
const ACQUIRERS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_acquirers_share_a_pool_of_eight_in_fifo_order() {
    let daemon = TestDaemon::start(
        "[daemon]\nmax_concurrent_builds = 4\n[profiles.demo.pool]\nwarm = 8\nmax = 8\nrecycle = \"reset\"\n",
    )
    .await;
    let client = daemon.client().await;
    ready(&client, POOL as u32).await;

    // The first eight take every cluster and hold it until all others queue, one after
    // another, so the queue order is known; then everyone holds briefly and releases.
    let (go, gate) = watch::channel(false);
    let mut calls = Vec::new();
    for i in 0..ACQUIRERS {
        let mut caller = client.clone();
        let mut gate = gate.clone();
        calls.push(tokio::spawn(async move {
            let lease = caller
                .acquire_lease(
                    Acquire::new("demo")
                        .holder(format!("acquirer-{i:02}"))
                        .wait(Duration::from_secs(120)),
                )
                .await
                .unwrap_or_else(|e| panic!("acquirer {i}: {e}"));
            if i < POOL {
                gate.wait_for(|open| *open).await.unwrap();
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            caller.release(&lease.lease_id, &lease.token).await.unwrap();
        }));
        if i >= POOL {
            let queued = (i - POOL + 1) as u32;
            eventually(&format!("acquirer {i} is queued"), || {
                let mut client = client.clone();
                async move { counts(&mut client).await.waiting == queued }
            })
            .await;
        } else {
            eventually(&format!("acquirer {i} holds a lease"), || {
                let mut client = client.clone();
                async move { counts(&mut client).await.leased == i as u32 + 1 }
            })
            .await;
        }
    }
    go.send(true).unwrap();
    for call in calls {
        call.await.unwrap();
    }

    let history = daemon.store().await.lease_history("demo").await.unwrap();
    assert_eq!(history.len(), ACQUIRERS);
    assert!(
        max_live_at_once(&history) <= POOL,
        "never more than the pool granted at once"
    );
    no_cluster_leased_twice(&history);
    let waiters: Vec<&str> = history
        .iter()
        .map(|l| l.holder.as_str())
        .filter(|h| h[9..].parse::<usize>().unwrap() >= POOL)
        .collect();
    let mut fifo = waiters.clone();
    fifo.sort();
    assert_eq!(waiters, fifo, "waiters are served in the order they queued");
}

fn ended(lease: &LeaseRow) -> Millis {
    lease.ended_at.expect("every lease was released")
}

/// Sweeps grant and end times; an end and a grant at the same millisecond do not overlap.
fn max_live_at_once(history: &[LeaseRow]) -> usize {
    let mut edges: Vec<(Millis, i32)> = history
        .iter()
        .flat_map(|l| [(l.acquired_at, 1), (ended(l), -1)])
        .collect();
    edges.sort();
    let (mut live, mut most) = (0, 0);
    for (_, delta) in edges {
        live += delta;
        most = most.max(live);
    }
    usize::try_from(most).unwrap()
}

fn no_cluster_leased_twice(history: &[LeaseRow]) {
    let mut by_cluster: HashMap<&str, Vec<&LeaseRow>> = HashMap::new();
    for lease in history {
        by_cluster.entry(&lease.cluster_id).or_default().push(lease);
    }
    assert_eq!(by_cluster.len(), POOL, "every cluster of the pool was used");
    for (cluster, leases) in by_cluster {
        for pair in leases.windows(2) {
            assert!(
                ended(pair[0]) <= pair[1].acquired_at,
                "cluster {cluster} leased to {} before {} released it",
                pair[1].holder,
                pair[0].holder
            );
        }
    }
}
