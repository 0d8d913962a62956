use sqlx::{FromRow, QueryBuilder, Sqlite, Transaction};

use super::{
    Store,
    leases::EndReason,
    runs::{RunFailure, RunOutcome},
};
use crate::{Result, time::Millis};

/// Where a cluster is in its life cycle (docs/architecture.md, "The life of a cluster").
/// Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
pub enum ClusterState {
    Building,
    Ready,
    Leased,
    Recycling,
    /// The build failed; the cluster was destroyed and its error is kept.
    Failed,
    /// Destroyed after use.
    Deleted,
    /// Vanished from under the daemon (found missing at start-up).
    Gone,
}

impl ClusterState {
    /// States of a cluster that exists (or is being made) and counts against `max`.
    pub const LIVE: [ClusterState; 4] = [
        ClusterState::Building,
        ClusterState::Ready,
        ClusterState::Leased,
        ClusterState::Recycling,
    ];
}

#[derive(Debug, Clone, FromRow)]
pub struct ClusterRow {
    pub id: String,
    pub name: String,
    pub profile: String,
    pub state: ClusterState,
    pub host: String,
    pub kubeconfig: Option<String>,
    /// Image names and IDs it was built from.
    pub images: Option<String>,
    pub created_at: Millis,
    pub ready_at: Option<Millis>,
    pub state_changed_at: Millis,
    pub error: Option<String>,
}

/// How many clusters of a profile are in each live state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub building: u32,
    pub ready: u32,
    pub leased: u32,
    pub recycling: u32,
}

impl StateCounts {
    /// Clusters that count against the pool's `max`.
    pub fn live(&self) -> u32 {
        self.building + self.ready + self.leased + self.recycling
    }
}

pub(super) const CLUSTER_COLUMNS: &str = "id, name, profile, state, host, kubeconfig, images, created_at, ready_at, state_changed_at, error";

impl Store {
    /// Records a new cluster in `building` and opens its pipeline run; returns the run id.
    pub async fn insert_building(
        &self,
        id: &str,
        name: &str,
        profile: &str,
        host: &str,
        now: Millis,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO clusters (id, name, profile, state, host, created_at, state_changed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(profile)
        .bind(ClusterState::Building)
        .bind(host)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let run_id = sqlx::query_scalar(
            "INSERT INTO pipeline_runs (cluster_id, profile, started_at, outcome)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(id)
        .bind(profile)
        .bind(now)
        .bind(RunOutcome::Running)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(run_id)
    }

    /// `building` → `ready`, closing the run as succeeded. False if the cluster was not building.
    pub async fn mark_ready(
        &self,
        cluster_id: &str,
        run_id: i64,
        kubeconfig: &str,
        images: &str,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let moved = sqlx::query(
            "UPDATE clusters SET state = ?, kubeconfig = ?, images = ?, ready_at = ?, state_changed_at = ?
             WHERE id = ? AND state = 'building'",
        )
        .bind(ClusterState::Ready)
        .bind(kubeconfig)
        .bind(images)
        .bind(now)
        .bind(now)
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            sqlx::query("UPDATE pipeline_runs SET outcome = ?, ended_at = ? WHERE id = ?")
                .bind(RunOutcome::Succeeded)
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(moved)
    }

    /// `building` → `failed`, keeping the error on the cluster and the run; steps the failure
    /// cut short (their futures dropped) end as cancelled.
    pub async fn mark_failed(
        &self,
        cluster_id: &str,
        run_id: i64,
        failure: &RunFailure,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE clusters SET state = ?, error = ?, state_changed_at = ?
             WHERE id = ? AND state = 'building'",
        )
        .bind(ClusterState::Failed)
        .bind(&failure.error)
        .bind(now)
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE pipeline_runs
             SET outcome = ?, ended_at = ?, fail_phase = ?, fail_step = ?, exit_code = ?, error = ?
             WHERE id = ?",
        )
        .bind(RunOutcome::Failed)
        .bind(now)
        .bind(&failure.phase)
        .bind(&failure.step)
        .bind(failure.exit_code)
        .bind(&failure.error)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE run_steps SET outcome = ?, ended_at = ? WHERE run_id = ? AND outcome = 'running'",
        )
        .bind(RunOutcome::Cancelled)
        .bind(now)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Compare-and-set: moves the cluster from `from` to `to`; false if it was not in `from`.
    pub async fn set_state(
        &self,
        cluster_id: &str,
        from: ClusterState,
        to: ClusterState,
        now: Millis,
    ) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE clusters SET state = ?, state_changed_at = ? WHERE id = ? AND state = ?",
        )
        .bind(to)
        .bind(now)
        .bind(cluster_id)
        .bind(from)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// A half-built cluster found at start-up: its run was cut short, it is to be deleted.
    pub async fn abandon_build(&self, cluster_id: &str, now: Millis) -> Result<()> {
        let mut tx = self.write().await?;
        cancel_running_runs(&mut tx, cluster_id, now).await?;
        sqlx::query(
            "UPDATE clusters SET state = ?, state_changed_at = ?
             WHERE id = ? AND state = 'building'",
        )
        .bind(ClusterState::Recycling)
        .bind(now)
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A cluster that vanished: marked gone, and its live lease (if any) ended as gone.
    pub async fn mark_gone(&self, cluster_id: &str, now: Millis) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE leases SET ended_at = ?, end_reason = ? WHERE cluster_id = ? AND ended_at IS NULL",
        )
        .bind(now)
        .bind(EndReason::Gone)
        .bind(cluster_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE clusters SET state = ?, state_changed_at = ? WHERE id = ?")
            .bind(ClusterState::Gone)
            .bind(now)
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Clusters in any of `states`, of one profile or all, oldest first.
    pub async fn clusters(
        &self,
        profile: Option<&str>,
        states: &[ClusterState],
    ) -> Result<Vec<ClusterRow>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE state IN ("
        ));
        let mut list = query.separated(", ");
        for state in states {
            list.push_bind(*state);
        }
        query.push(")");
        if let Some(profile) = profile {
            query.push(" AND profile = ").push_bind(profile);
        }
        query.push(" ORDER BY created_at, id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    pub async fn counts(&self, profile: &str) -> Result<StateCounts> {
        let rows: Vec<(ClusterState, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM clusters WHERE profile = ? GROUP BY state")
                .bind(profile)
                .fetch_all(&self.pool)
                .await?;
        let mut counts = StateCounts::default();
        for (state, n) in rows {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            match state {
                ClusterState::Building => counts.building = n,
                ClusterState::Ready => counts.ready = n,
                ClusterState::Leased => counts.leased = n,
                ClusterState::Recycling => counts.recycling = n,
                ClusterState::Failed | ClusterState::Deleted | ClusterState::Gone => {}
            }
        }
        Ok(counts)
    }
}

/// Ends the cluster's runs still running, and their steps, as cancelled (cut short).
pub(super) async fn cancel_running_runs(
    tx: &mut Transaction<'_, Sqlite>,
    cluster_id: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "UPDATE pipeline_runs SET outcome = ?, ended_at = ?
         WHERE cluster_id = ? AND outcome = 'running'",
    )
    .bind(RunOutcome::Cancelled)
    .bind(now)
    .bind(cluster_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE run_steps SET outcome = ?, ended_at = ?
         WHERE outcome = 'running' AND run_id IN (SELECT id FROM pipeline_runs WHERE cluster_id = ?)",
    )
    .bind(RunOutcome::Cancelled)
    .bind(now)
    .bind(cluster_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
