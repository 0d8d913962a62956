use std::fmt;

use sqlx::{Executor, FromRow, Sqlite, Transaction};

use super::{ClusterState, Store};
use crate::{Result, time::Millis};

/// Why a lease ended. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
pub enum EndReason {
    Released,
    Expired,
    /// Its cluster vanished.
    Gone,
}

// Messages name the reason as it is stored: "lease lost: expired at …".
impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Released => "released",
            EndReason::Expired => "expired",
            EndReason::Gone => "gone",
        })
    }
}

/// A lease with its cluster's name and kubeconfig.
#[derive(Clone, FromRow)]
pub struct LeaseRow {
    pub id: String,
    pub token: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub kubeconfig: Option<String>,
    /// What the cluster was built from: `name@image-id`, comma-separated.
    pub cluster_images: Option<String>,
    pub profile: String,
    pub holder: String,
    pub request_id: Option<String>,
    pub acquired_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
    pub end_reason: Option<EndReason>,
}

// The token stays out of debug output, which may reach logs.
impl fmt::Debug for LeaseRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseRow")
            .field("id", &self.id)
            .field("cluster_name", &self.cluster_name)
            .field("profile", &self.profile)
            .field("holder", &self.holder)
            .field("expires_at", &self.expires_at)
            .field("ended_at", &self.ended_at)
            .finish_non_exhaustive()
    }
}

/// What a grant writes.
pub struct NewLease<'a> {
    pub id: &'a str,
    pub token: &'a str,
    pub profile: &'a str,
    pub holder: &'a str,
    pub request_id: Option<&'a str>,
    pub ttl_ms: Millis,
    /// Prefer clusters built from these images (the current ones) over stale ones.
    pub fresh_images: Option<&'a str>,
}

const LEASE_SELECT: &str =
    "SELECT l.id, l.token, l.cluster_id, c.name AS cluster_name, c.kubeconfig, c.images AS cluster_images,
        l.profile, l.holder, l.request_id, l.acquired_at, l.expires_at, l.ended_at, l.end_reason
     FROM leases l JOIN clusters c ON c.id = l.cluster_id";

impl Store {
    /// Leases the oldest ready cluster of the profile in one transaction, or returns the lease
    /// an earlier call with the same request id got. `None`: no cluster is ready.
    pub async fn grant(&self, lease: &NewLease<'_>, now: Millis) -> Result<Option<LeaseRow>> {
        let mut tx = self.write().await?;
        if let Some(id) = lease.request_id
            && let Some(existing) = by_request(&mut *tx, lease.profile, lease.holder, id).await?
        {
            return Ok(Some(existing));
        }
        let cluster: Option<String> = sqlx::query_scalar(
            "UPDATE clusters SET state = ?, state_changed_at = ?
             WHERE state = 'ready' AND id = (
                 SELECT id FROM clusters WHERE profile = ? AND state = 'ready'
                 ORDER BY CASE WHEN ? IS NULL OR images = ? THEN 0 ELSE 1 END, ready_at, id
                 LIMIT 1)
             RETURNING id",
        )
        .bind(ClusterState::Leased)
        .bind(now)
        .bind(lease.profile)
        .bind(lease.fresh_images)
        .bind(lease.fresh_images)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(cluster_id) = cluster else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO leases (id, token, cluster_id, profile, holder, request_id, acquired_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(lease.id)
        .bind(lease.token)
        .bind(&cluster_id)
        .bind(lease.profile)
        .bind(lease.holder)
        .bind(lease.request_id)
        .bind(now)
        .bind(now.saturating_add(lease.ttl_ms))
        .execute(&mut *tx)
        .await?;
        let granted = lease_by_id(&mut *tx, lease.id).await?;
        tx.commit().await?;
        Ok(granted)
    }

    /// Takes back a grant nobody received (the caller gave up): the lease row goes. The
    /// cluster is ready again, or — once a caller's images went into it (`dirty`) — recycled,
    /// any overlay run cut short ending as cancelled.
    pub async fn take_back_grant(&self, lease_id: &str, dirty: bool, now: Millis) -> Result<()> {
        let mut tx = self.write().await?;
        let cluster: Option<String> = sqlx::query_scalar(
            "DELETE FROM leases WHERE id = ? AND ended_at IS NULL RETURNING cluster_id",
        )
        .bind(lease_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(cluster_id) = cluster {
            let to = if dirty {
                super::clusters::cancel_running_runs(&mut tx, &cluster_id, now).await?;
                ClusterState::Recycling
            } else {
                ClusterState::Ready
            };
            sqlx::query(
                "UPDATE clusters SET state = ?, state_changed_at = ? WHERE id = ? AND state = 'leased'",
            )
            .bind(to)
            .bind(now)
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn lease(&self, id: &str) -> Result<Option<LeaseRow>> {
        lease_by_id(&self.pool, id).await
    }

    pub async fn lease_by_request(
        &self,
        profile: &str,
        holder: &str,
        request_id: &str,
    ) -> Result<Option<LeaseRow>> {
        by_request(&self.pool, profile, holder, request_id).await
    }

    /// Moves a live, unexpired lease's expiry. False if it had ended or expired.
    pub async fn renew(&self, lease_id: &str, expires_at: Millis, now: Millis) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE leases SET expires_at = ? WHERE id = ? AND ended_at IS NULL AND expires_at > ?",
        )
        .bind(expires_at)
        .bind(lease_id)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// Ends a live lease and sends its cluster to recycling. Returns the cluster id, or
    /// `None` if the lease had already ended.
    pub async fn end_lease(
        &self,
        lease_id: &str,
        reason: EndReason,
        now: Millis,
    ) -> Result<Option<String>> {
        let mut tx = self.write().await?;
        let cluster: Option<String> = sqlx::query_scalar(
            "UPDATE leases SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL
             RETURNING cluster_id",
        )
        .bind(now)
        .bind(reason)
        .bind(lease_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(cluster_id) = &cluster {
            to_recycling(&mut tx, cluster_id, now).await?;
        }
        tx.commit().await?;
        Ok(cluster)
    }

    /// Ends every live lease whose expiry has passed; returns the profiles they belonged to.
    pub async fn expire_due(&self, now: Millis) -> Result<Vec<String>> {
        // Every pool round asks; a read answers the usual "none" without the write lock.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM leases WHERE ended_at IS NULL AND expires_at <= ? LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let expired: Vec<(String, String)> = sqlx::query_as(
            "UPDATE leases SET ended_at = ?, end_reason = ?
             WHERE ended_at IS NULL AND expires_at <= ?
             RETURNING cluster_id, profile",
        )
        .bind(now)
        .bind(EndReason::Expired)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for (cluster_id, _) in &expired {
            to_recycling(&mut tx, cluster_id, now).await?;
        }
        tx.commit().await?;
        Ok(expired.into_iter().map(|(_, profile)| profile).collect())
    }

    /// Every lease of a profile, live or ended, in the order they were granted (for tests that
    /// check invariants over the whole history).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn lease_history(&self, profile: &str) -> Result<Vec<LeaseRow>> {
        let sql = format!("{LEASE_SELECT} WHERE l.profile = ? ORDER BY l.acquired_at, l.rowid");
        Ok(sqlx::query_as(&sql)
            .bind(profile)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Adds `count` released leases of one cluster to the history, one a millisecond ending at
    /// `now`, in one transaction: benchmarks measure a daemon with a long history without
    /// paying for as many round trips first.
    #[cfg(feature = "test-support")]
    pub async fn add_released_leases(
        &self,
        cluster_id: &str,
        profile: &str,
        count: u32,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        for i in 0..count {
            let at = now - Millis::from(count - i);
            sqlx::query(
                "INSERT INTO leases (id, token, cluster_id, profile, holder, acquired_at, expires_at,
                                     ended_at, end_reason)
                 VALUES (?, ?, ?, ?, 'history', ?, ?, ?, ?)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(cluster_id)
            .bind(profile)
            .bind(at)
            .bind(at + 1)
            .bind(at + 1)
            .bind(EndReason::Released)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Live leases, of one profile or all, oldest first.
    pub async fn live_leases(&self, profile: Option<&str>) -> Result<Vec<LeaseRow>> {
        let sql = format!(
            "{LEASE_SELECT} WHERE l.ended_at IS NULL AND (? IS NULL OR l.profile = ?)
             ORDER BY l.acquired_at, l.id"
        );
        Ok(sqlx::query_as(&sql)
            .bind(profile)
            .bind(profile)
            .fetch_all(&self.pool)
            .await?)
    }
}

async fn by_request<'c>(
    db: impl Executor<'c, Database = Sqlite>,
    profile: &str,
    holder: &str,
    request_id: &str,
) -> Result<Option<LeaseRow>> {
    let sql = format!("{LEASE_SELECT} WHERE l.profile = ? AND l.holder = ? AND l.request_id = ?");
    Ok(sqlx::query_as(&sql)
        .bind(profile)
        .bind(holder)
        .bind(request_id)
        .fetch_optional(db)
        .await?)
}

async fn lease_by_id<'c>(
    db: impl Executor<'c, Database = Sqlite>,
    id: &str,
) -> Result<Option<LeaseRow>> {
    let sql = format!("{LEASE_SELECT} WHERE l.id = ?");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db).await?)
}

async fn to_recycling(
    tx: &mut Transaction<'_, Sqlite>,
    cluster_id: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "UPDATE clusters SET state = ?, state_changed_at = ? WHERE id = ? AND state = 'leased'",
    )
    .bind(ClusterState::Recycling)
    .bind(now)
    .bind(cluster_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
