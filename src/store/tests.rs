use sqlx::SqlitePool;

use super::*;
use crate::time::Millis;

impl Store {
    /// One cluster by id, whatever its state (only tests look clusters up one by one).
    async fn cluster(&self, id: &str) -> Result<Option<ClusterRow>> {
        let sql = format!(
            "SELECT {} FROM clusters WHERE id = ?",
            clusters::CLUSTER_COLUMNS
        );
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }
}

async fn store(pool: SqlitePool) -> Store {
    Store::migrated(pool).await.unwrap()
}

async fn ready_cluster(store: &Store, id: &str, now: Millis) {
    let run = store
        .insert_building(id, &format!("infrad-demo-{id}"), "demo", "host", now)
        .await
        .unwrap();
    assert!(
        store
            .mark_ready(id, run, "kubeconfig", "img@sha256:1", now)
            .await
            .unwrap()
    );
}

fn lease<'a>(id: &'a str, request_id: Option<&'a str>) -> NewLease<'a> {
    NewLease {
        id,
        token: "secret",
        profile: "demo",
        holder: "job",
        request_id,
        ttl_ms: 1_000,
        fresh_images: None,
    }
}

#[sqlx::test(migrations = false)]
async fn grant_takes_the_oldest_ready_cluster_once(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "b", 20).await;
    ready_cluster(&store, "a", 10).await;

    let first = store.grant(&lease("l1", None), 100).await.unwrap().unwrap();
    assert_eq!(first.cluster_id, "a");
    assert_eq!(first.expires_at, 1_100);
    let second = store.grant(&lease("l2", None), 100).await.unwrap().unwrap();
    assert_eq!(second.cluster_id, "b");
    assert!(
        store
            .grant(&lease("l3", None), 100)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.counts("demo").await.unwrap().leased, 2);
}

#[sqlx::test(migrations = false)]
async fn the_database_refuses_a_second_live_lease_on_a_cluster(pool: SqlitePool) {
    let store = store(pool.clone()).await;
    ready_cluster(&store, "a", 10).await;
    store.grant(&lease("l1", None), 100).await.unwrap().unwrap();
    let duplicate = sqlx::query(
        "INSERT INTO leases (id, token, cluster_id, profile, holder, acquired_at, expires_at)
         VALUES ('l2', 't', 'a', 'demo', 'x', 1, 2)",
    )
    .execute(&pool)
    .await;
    assert!(
        duplicate.is_err(),
        "unique index must refuse the second live lease"
    );
}

#[sqlx::test(migrations = false)]
async fn a_repeated_request_id_returns_the_same_lease(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    ready_cluster(&store, "b", 20).await;
    let first = store
        .grant(&lease("l1", Some("r1")), 100)
        .await
        .unwrap()
        .unwrap();
    let retry = store
        .grant(&lease("l2", Some("r1")), 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retry.id.as_str(), retry.token.as_str()),
        (first.id.as_str(), "secret")
    );
    assert_eq!(
        store.counts("demo").await.unwrap().ready,
        1,
        "the retry leased nothing new"
    );
    let found = store
        .lease_by_request("demo", "job", "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "l1");
    assert!(
        store
            .lease_by_request("demo", "other", "r1")
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrations = false)]
async fn ending_a_lease_recycles_its_cluster_once(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    store.grant(&lease("l1", None), 100).await.unwrap().unwrap();
    let ended = store
        .end_lease("l1", EndReason::Released, 150)
        .await
        .unwrap();
    assert_eq!(ended.as_deref(), Some("a"));
    assert!(
        store
            .end_lease("l1", EndReason::Released, 160)
            .await
            .unwrap()
            .is_none()
    );
    let row = store.lease("l1").await.unwrap().unwrap();
    assert_eq!(
        (row.ended_at, row.end_reason),
        (Some(150), Some(EndReason::Released))
    );
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Recycling
    );
}

#[sqlx::test(migrations = false)]
async fn expiry_ends_only_leases_past_their_time(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    ready_cluster(&store, "b", 20).await;
    store.grant(&lease("l1", None), 100).await.unwrap();
    store.grant(&lease("l2", None), 600).await.unwrap();
    assert!(store.expire_due(1_099).await.unwrap().is_empty());
    assert_eq!(
        store.expire_due(1_100).await.unwrap(),
        vec!["demo".to_string()]
    );
    assert_eq!(store.live_leases(Some("demo")).await.unwrap().len(), 1);
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Recycling
    );
    assert!(
        !store.renew("l1", 5_000, 1_200).await.unwrap(),
        "an expired lease cannot renew"
    );
    assert!(store.renew("l2", 5_000, 1_200).await.unwrap());
    assert!(store.expire_due(4_999).await.unwrap().is_empty());
}

#[sqlx::test(migrations = false)]
async fn a_grant_taken_back_leaves_no_lease_and_a_ready_cluster(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    store
        .grant(&lease("l1", Some("r1")), 100)
        .await
        .unwrap()
        .unwrap();
    store.take_back_grant("l1", false, 110).await.unwrap();
    assert!(store.lease("l1").await.unwrap().is_none());
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Ready
    );
    let again = store
        .grant(&lease("l2", Some("r1")), 120)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, "l2", "the request id is free again");
}

#[sqlx::test(migrations = false)]
async fn a_vanished_cluster_takes_its_lease_with_it(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    store.grant(&lease("l1", None), 100).await.unwrap();
    store.mark_gone("a", 200).await.unwrap();
    let row = store.lease("l1").await.unwrap().unwrap();
    assert_eq!(row.end_reason, Some(EndReason::Gone));
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Gone
    );
}

#[sqlx::test(migrations = false)]
async fn compare_and_set_refuses_a_stale_state(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    assert!(
        !store
            .set_state("a", ClusterState::Leased, ClusterState::Recycling, 20)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_state("a", ClusterState::Ready, ClusterState::Recycling, 20)
            .await
            .unwrap()
    );
    let live = store
        .clusters(Some("demo"), &ClusterState::LIVE)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].state, ClusterState::Recycling);
}

#[sqlx::test(migrations = false)]
async fn a_grant_taken_back_after_an_overlay_recycles_its_cluster(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    store.grant(&lease("l1", None), 100).await.unwrap().unwrap();
    let run = store.begin_overlay("a", "demo", 101).await.unwrap();
    store
        .step_started(run, "load", "kind load", 102)
        .await
        .unwrap();
    store.take_back_grant("l1", true, 110).await.unwrap();
    assert!(store.lease("l1").await.unwrap().is_none());
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Recycling
    );
    let steps = store.build_steps_of_run(run).await.unwrap();
    assert_eq!(steps[0].outcome, RunOutcome::Cancelled);
}

#[sqlx::test(migrations = false)]
async fn overlay_runs_are_neither_build_timings_nor_build_failures(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 10).await;
    let build = store.build_steps("a").await.unwrap();
    let run = store.begin_overlay("a", "demo", 20).await.unwrap();
    store.step_started(run, "deploy", "we", 21).await.unwrap();
    let failure = RunFailure {
        phase: "deploy".into(),
        step: "we".into(),
        exit_code: None,
        error: "not ready".into(),
    };
    store.end_overlay(run, Some(&failure), 30).await.unwrap();
    let ok = store.begin_overlay("a", "demo", 40).await.unwrap();
    let step = store
        .step_started(ok, "load", "kind load", 41)
        .await
        .unwrap();
    store
        .step_ended(step, RunOutcome::Succeeded, 45)
        .await
        .unwrap();
    store.end_overlay(ok, None, 50).await.unwrap();
    assert!(
        store.failure_streak("demo").await.unwrap().is_none(),
        "a caller's failed overlay does not degrade the profile"
    );
    let after: Vec<i64> = store
        .build_steps("a")
        .await
        .unwrap()
        .iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(after, build.iter().map(|s| s.run_id).collect::<Vec<_>>());
    assert!(
        store
            .recent_steps("demo", 10)
            .await
            .unwrap()
            .iter()
            .all(|s| s.run_id != run && s.run_id != ok)
    );
}

#[sqlx::test(migrations = false)]
async fn failure_streak_counts_failures_since_the_last_success(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "ok", 1).await;
    assert!(store.failure_streak("demo").await.unwrap().is_none());
    for (i, id) in ["f1", "f2"].iter().enumerate() {
        let run = store
            .insert_building(id, id, "demo", "h", 10)
            .await
            .unwrap();
        let failure = RunFailure {
            phase: "cluster".into(),
            step: "kind create".into(),
            exit_code: Some(1),
            error: format!("boom {i}"),
        };
        // A sibling step the failure cut short.
        store
            .step_started(run, "deploy", "tekton", 15)
            .await
            .unwrap();
        store
            .mark_failed(id, run, &failure, 20 + i as i64)
            .await
            .unwrap();
        let steps = store.build_steps_of_run(run).await.unwrap();
        let cut = steps.iter().find(|s| s.step == "tekton").unwrap();
        assert_eq!(
            (cut.outcome, cut.ended_at),
            (RunOutcome::Cancelled, Some(20 + i as i64))
        );
    }
    let streak = store.failure_streak("demo").await.unwrap().unwrap();
    assert_eq!(streak.consecutive, 2);
    assert_eq!(streak.failure.error, "boom 1");
    assert_eq!(streak.at, 21);
    assert_eq!(
        store.cluster("f1").await.unwrap().unwrap().state,
        ClusterState::Failed
    );
}

#[sqlx::test(migrations = false)]
async fn build_steps_are_those_of_the_successful_run(pool: SqlitePool) {
    let store = store(pool).await;
    let run = store
        .insert_building("a", "infrad-demo-a", "demo", "h", 0)
        .await
        .unwrap();
    let step = store
        .step_started(run, "build", "image-a", 0)
        .await
        .unwrap();
    store
        .step_ended(step, RunOutcome::Succeeded, 1_500)
        .await
        .unwrap();
    let step = store
        .step_started(run, "cluster", "kind create", 1_500)
        .await
        .unwrap();
    store
        .step_ended(step, RunOutcome::Succeeded, 4_000)
        .await
        .unwrap();
    assert!(store.mark_ready("a", run, "kc", "", 4_000).await.unwrap());
    let steps = store.build_steps("a").await.unwrap();
    let names: Vec<_> = steps
        .iter()
        .map(|s| (s.phase.as_str(), s.ended_at))
        .collect();
    assert_eq!(
        names,
        vec![("build", Some(1_500)), ("cluster", Some(4_000))]
    );
    assert_eq!(store.recent_steps("demo", 5).await.unwrap().len(), 2);
}

#[tokio::test]
async fn open_creates_a_private_database_in_the_state_dir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    ready_cluster(&store, "a", 1).await;
    store.close().await;
    let mode = std::fs::metadata(dir.path().join(DB_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let reopened = Store::open(dir.path()).await.unwrap();
    assert_eq!(
        reopened.counts("demo").await.unwrap().ready,
        1,
        "state survives a reopen"
    );
}

#[sqlx::test(migrations = false)]
async fn grant_prefers_clusters_of_the_current_images(pool: SqlitePool) {
    let store = store(pool).await;
    for (id, images, at) in [("old", "web@sha256:1", 10), ("new", "web@sha256:2", 20)] {
        let run = store
            .insert_building(id, id, "demo", "h", at)
            .await
            .unwrap();
        store.mark_ready(id, run, "kc", images, at).await.unwrap();
    }
    let mut fresh = lease("l1", None);
    fresh.fresh_images = Some("web@sha256:2");
    let granted = store.grant(&fresh, 100).await.unwrap().unwrap();
    assert_eq!(
        granted.cluster_id, "new",
        "the stale cluster is older but not preferred"
    );
    let mut again = lease("l2", None);
    again.fresh_images = Some("web@sha256:2");
    let stale = store.grant(&again, 100).await.unwrap().unwrap();
    assert_eq!(
        stale.cluster_id, "old",
        "a stale cluster still serves when no fresh one is ready"
    );
}

#[sqlx::test(migrations = false)]
async fn building_progress_shows_each_builds_newest_running_step(pool: SqlitePool) {
    let store = store(pool).await;
    let run = store
        .insert_building("a", "infrad-demo-a", "demo", "h", 10)
        .await
        .unwrap();
    store
        .insert_building("b", "infrad-demo-b", "demo", "h", 20)
        .await
        .unwrap();
    let done = store.step_started(run, "build", "web", 11).await.unwrap();
    store
        .step_ended(done, RunOutcome::Succeeded, 12)
        .await
        .unwrap();
    store
        .step_started(run, "cluster", "kind create cluster", 13)
        .await
        .unwrap();
    let rows = store.building_progress("demo").await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "infrad-demo-a");
    assert_eq!(
        (
            rows[0].phase.as_deref(),
            rows[0].step.as_deref(),
            rows[0].step_started_at
        ),
        (Some("cluster"), Some("kind create cluster"), Some(13))
    );
    assert_eq!(
        (rows[1].name.as_str(), rows[1].phase.as_deref()),
        ("infrad-demo-b", None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_then_write_transactions_do_not_fail_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    for i in 0..8 {
        ready_cluster(&store, &format!("c{i}"), i).await;
    }
    // Grants read (request id) before they write, while other writers commit meanwhile:
    // with deferred transactions SQLite answers SQLITE_BUSY at once; they must wait instead.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let id = format!("l{i}-{round}");
                let request = format!("r{i}-{round}");
                let lease = NewLease {
                    id: &id,
                    token: "t",
                    profile: "demo",
                    holder: "h",
                    request_id: Some(&request),
                    ttl_ms: 1_000,
                    fresh_images: None,
                };
                if store.grant(&lease, 100).await?.is_some() {
                    store.take_back_grant(&id, false, 101).await?;
                }
                store.expire_due(50).await?;
            }
            Ok::<_, crate::Error>(())
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("no transaction fails under contention");
    }
    assert_eq!(store.counts("demo").await.unwrap().ready, 8);
}

#[sqlx::test(migrations = false)]
async fn the_schema_accepts_every_stored_name_and_nothing_else(pool: SqlitePool) {
    let store = store(pool).await;
    ready_cluster(&store, "a", 1).await;
    store
        .grant(&lease("l1", None), 2)
        .await
        .unwrap()
        .expect("a is ready");
    for reason in [EndReason::Released, EndReason::Expired, EndReason::Gone] {
        let set = sqlx::query("UPDATE leases SET end_reason = ? WHERE id = 'l1'")
            .bind(reason)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(set.rows_affected(), 1);
    }
    let states = [
        ClusterState::Building,
        ClusterState::Ready,
        ClusterState::Leased,
        ClusterState::Recycling,
        ClusterState::Failed,
        ClusterState::Deleted,
        ClusterState::Gone,
    ];
    let mut from = ClusterState::Leased;
    for to in states {
        assert!(store.set_state("a", from, to, 2).await.unwrap(), "{to:?}");
        assert_eq!(store.cluster("a").await.unwrap().unwrap().state, to);
        from = to;
    }
    for outcome in [
        RunOutcome::Running,
        RunOutcome::Succeeded,
        RunOutcome::Failed,
        RunOutcome::Cancelled,
    ] {
        let step = store.step_started(1, "build", "img", 3).await.unwrap();
        store.step_ended(step, outcome, 4).await.unwrap();
    }
    let refused = sqlx::query("UPDATE clusters SET state = 'exploded' WHERE id = 'a'")
        .execute(&store.pool)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("invalid cluster state"),
        "{refused}"
    );
    assert_eq!(
        store.cluster("a").await.unwrap().unwrap().state,
        ClusterState::Gone,
        "a refused write changes nothing"
    );
    let refused = sqlx::query("UPDATE run_steps SET outcome = 'maybe'")
        .execute(&store.pool)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("invalid step outcome"),
        "{refused}"
    );
}
