use std::fmt;

use sqlx::FromRow;

use super::Store;
use crate::{Result, time::Millis};

/// How a pipeline run, or one step of it, went. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Running,
    Succeeded,
    Failed,
    /// Cut short: the daemon stopped or died while it ran.
    Cancelled,
}

/// Where and why a pipeline run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    pub phase: String,
    pub step: String,
    pub exit_code: Option<i32>,
    /// The error, with the tail of the failing command's stderr.
    pub error: String,
}

/// `phase deploy step api (exit code 1): …`: how every message names a failure.
impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase {} step {}", self.phase, self.step)?;
        if let Some(code) = self.exit_code {
            write!(f, " (exit code {code})")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// The newest failed run of a profile and how many runs in a row have failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub failure: RunFailure,
    pub at: Millis,
    pub consecutive: u32,
}

/// A cluster being built and the newest step running in its pipeline, if any.
#[derive(Debug, Clone, FromRow)]
pub struct BuildingRow {
    pub name: String,
    pub created_at: Millis,
    pub phase: Option<String>,
    pub step: Option<String>,
    pub step_started_at: Option<Millis>,
}

/// One step of a pipeline run, with its timing.
#[derive(Debug, Clone, FromRow)]
pub struct StepRow {
    pub run_id: i64,
    pub phase: String,
    pub step: String,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub outcome: RunOutcome,
}

impl Store {
    pub async fn step_started(
        &self,
        run_id: i64,
        phase: &str,
        step: &str,
        now: Millis,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO run_steps (run_id, phase, step, started_at, outcome)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(run_id)
        .bind(phase)
        .bind(step)
        .bind(now)
        .bind(RunOutcome::Running)
        .fetch_one(&self.writer)
        .await?)
    }

    pub async fn step_ended(&self, step_id: i64, outcome: RunOutcome, now: Millis) -> Result<()> {
        sqlx::query("UPDATE run_steps SET ended_at = ?, outcome = ? WHERE id = ?")
            .bind(now)
            .bind(outcome)
            .bind(step_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The steps of the run that made this cluster ready.
    pub async fn build_steps(&self, cluster_id: &str) -> Result<Vec<StepRow>> {
        Ok(sqlx::query_as(
            "SELECT run_id, phase, step, started_at, ended_at, outcome FROM run_steps
             WHERE run_id = (SELECT id FROM pipeline_runs
                             WHERE cluster_id = ? AND kind = 'build' AND outcome = 'succeeded'
                             ORDER BY id DESC LIMIT 1)
             ORDER BY started_at, id",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The profile's clusters being built, oldest first, each with its newest running step.
    pub async fn building_progress(&self, profile: &str) -> Result<Vec<BuildingRow>> {
        Ok(sqlx::query_as(
            "SELECT c.name, c.created_at, s.phase, s.step, s.started_at AS step_started_at
             FROM clusters c
             LEFT JOIN pipeline_runs r ON r.cluster_id = c.id AND r.outcome = 'running'
             LEFT JOIN run_steps s ON s.id = (
                 SELECT id FROM run_steps WHERE run_id = r.id AND outcome = 'running'
                 ORDER BY started_at DESC, id DESC LIMIT 1)
             WHERE c.profile = ? AND c.state = 'building'
             ORDER BY c.created_at, c.id",
        )
        .bind(profile)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Opens an overlay run on a leased cluster; returns its id.
    pub async fn begin_overlay(&self, cluster_id: &str, profile: &str, now: Millis) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO pipeline_runs (cluster_id, profile, started_at, outcome, kind)
             VALUES (?, ?, ?, ?, 'overlay') RETURNING id",
        )
        .bind(cluster_id)
        .bind(profile)
        .bind(now)
        .bind(RunOutcome::Running)
        .fetch_one(&self.writer)
        .await?)
    }

    /// Closes an overlay run as succeeded, or as failed with where and why.
    pub async fn end_overlay(
        &self,
        run_id: i64,
        failure: Option<&RunFailure>,
        now: Millis,
    ) -> Result<()> {
        let outcome = match failure {
            None => RunOutcome::Succeeded,
            Some(_) => RunOutcome::Failed,
        };
        sqlx::query(
            "UPDATE pipeline_runs SET outcome = ?, ended_at = ?, fail_phase = ?, fail_step = ?,
                                      exit_code = ?, error = ?
             WHERE id = ? AND outcome = 'running'",
        )
        .bind(outcome)
        .bind(now)
        .bind(failure.map(|f| f.phase.as_str()))
        .bind(failure.map(|f| f.step.as_str()))
        .bind(failure.and_then(|f| f.exit_code))
        .bind(failure.map(|f| f.error.as_str()))
        .bind(run_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The steps of one run, as far as it got.
    pub async fn build_steps_of_run(&self, run_id: i64) -> Result<Vec<StepRow>> {
        Ok(sqlx::query_as(
            "SELECT run_id, phase, step, started_at, ended_at, outcome FROM run_steps
             WHERE run_id = ? ORDER BY started_at, id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The steps of the cluster's newest overlay run.
    pub async fn overlay_steps(&self, cluster_id: &str) -> Result<Vec<StepRow>> {
        Ok(sqlx::query_as(
            "SELECT run_id, phase, step, started_at, ended_at, outcome FROM run_steps
             WHERE run_id = (SELECT id FROM pipeline_runs
                             WHERE cluster_id = ? AND kind = 'overlay'
                             ORDER BY id DESC LIMIT 1)
             ORDER BY started_at, id",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The steps of the profile's newest `runs` successful runs, newest run first.
    pub async fn recent_steps(&self, profile: &str, runs: u32) -> Result<Vec<StepRow>> {
        Ok(sqlx::query_as(
            "SELECT s.run_id, s.phase, s.step, s.started_at, s.ended_at, s.outcome
             FROM run_steps s
             WHERE s.run_id IN (SELECT id FROM pipeline_runs
                                WHERE profile = ? AND kind = 'build' AND outcome = 'succeeded'
                                ORDER BY id DESC LIMIT ?)
             ORDER BY s.run_id DESC, s.started_at, s.id",
        )
        .bind(profile)
        .bind(runs)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The profile's current streak of failed runs, `None` if its newest finished run succeeded.
    pub async fn failure_streak(&self, profile: &str) -> Result<Option<FailureRow>> {
        type Row = (
            RunOutcome,
            Option<String>,
            Option<String>,
            Option<i32>,
            Option<String>,
            Option<Millis>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT outcome, fail_phase, fail_step, exit_code, error, ended_at FROM pipeline_runs
             WHERE profile = ? AND kind = 'build' AND outcome IN ('succeeded', 'failed')
             ORDER BY id DESC LIMIT 1000",
        )
        .bind(profile)
        .fetch_all(&self.pool)
        .await?;
        let consecutive = rows
            .iter()
            .take_while(|r| r.0 == RunOutcome::Failed)
            .count();
        let Some((_, phase, step, exit_code, error, ended_at)) = rows.into_iter().next() else {
            return Ok(None);
        };
        if consecutive == 0 {
            return Ok(None);
        }
        Ok(Some(FailureRow {
            failure: RunFailure {
                phase: phase.unwrap_or_default(),
                step: step.unwrap_or_default(),
                exit_code,
                error: error.unwrap_or_default(),
            },
            at: ended_at.unwrap_or_default(),
            consecutive: u32::try_from(consecutive).unwrap_or(u32::MAX),
        }))
    }
}
