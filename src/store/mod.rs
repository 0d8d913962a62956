//! SQLite via sqlx: the only module with SQL. Every state change is one transaction, and
//! every cluster move is a compare-and-set on its current state.
mod clusters;
mod leases;
mod runs;

use std::{
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    str::FromStr,
    time::Duration,
};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use clusters::{ClusterRow, ClusterState, StateCounts};
pub use leases::{EndReason, LeaseRow, NewLease};
pub use runs::{BuildingRow, FailureRow, RunFailure, RunOutcome, StepRow};

use crate::Result;

/// The database file inside the state directory.
pub const DB_FILE: &str = "infrad.db";

#[derive(Clone, Debug)]
pub struct Store {
    /// Reads, several at once: in WAL mode they run beside a write.
    pool: SqlitePool,
    /// Writes, one connection: writers queue here, first come first served, instead of in
    /// SQLite's busy handler, which sleeps (1, 2, 5 … up to 100 ms) between attempts.
    writer: SqlitePool,
    /// Holds an in-memory database open ([`Store::in_memory`]).
    keeper: Option<SqlitePool>,
}

impl Store {
    /// Opens (creating if missing) the database in `state_dir` and runs the migrations.
    /// The file holds lease tokens, so it is created mode 0600.
    pub async fn open(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join(DB_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        // Also when it existed with a looser mode: SQLite gives its -wal and -shm files the
        // database's mode.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A commit survives a crash of the daemon without waiting for fsync; a power loss
            // may lose the last commits, and takes the kind clusters they describe with it.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer,
            keeper: None,
        })
    }

    /// A private database in memory, for a one-shot build's step records. It lives as long as
    /// one connection to it is open, and a connection dropped while a cancelled query ran (an
    /// interrupted build) is closed: so a second connection, never used, holds it open.
    pub async fn in_memory() -> Result<Self> {
        let name = uuid::Uuid::new_v4().simple();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite:file:infrad-build-{name}?mode=memory&cache=shared"
        ))?;
        let keeper = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut store = Self::migrated(pool).await?;
        store.keeper = Some(keeper);
        Ok(store)
    }

    /// Wraps an open pool, for reads and writes alike, running the migrations.
    pub async fn migrated(pool: SqlitePool) -> Result<Self> {
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            pool,
            keeper: None,
        })
    }

    /// A write transaction. It takes SQLite's write lock at BEGIN: a transaction that reads
    /// before it writes then waits for other writers (busy timeout) instead of failing with
    /// SQLITE_BUSY when its read snapshot went stale.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests;
