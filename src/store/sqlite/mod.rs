//! The embedded SQLite store: the zero-setup default, one file, one process
//! (docs/architecture.md).
//!
//! SQLite has one writer at a time, so commit order is position order: every
//! event's cursor is `(1, position)`, `position` being an AUTOINCREMENT rowid
//! that is never reused, and every committed row is readable at once
//! (nothing is ever held back). Timestamps are integer unix milliseconds, UTC, taken
//! inside the write transaction; `data`, `metadata` and `audience` are JSON text.
//! The live feed's doorbell is an in-process signal rung after each commit.
//!
//! This file opens the store (and its process lock) and holds retention's
//! prune and the doorbell; reads are in `read.rs`, appends in `append.rs`,
//! consumer cursors in `consumers.rs`, and `backend.rs` makes it a
//! [`Backend`](super::Backend).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::watch;

mod append;
mod backend;
mod consumers;
mod read;
mod stats;
mod type_counts;

use super::{Doorbell, Ring};
use crate::error::Result;

/// The one transaction id of every event: one writer, so position alone orders.
const TX_ID: i64 = 1;
/// Most events deleted by one `prune` call.
const PRUNE_BATCH: i64 = 10_000;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Rung after every commit that appended; shared by every clone.
    bell: Arc<watch::Sender<()>>,
    /// The file's process lock, held until `close` or the last clone is dropped.
    lock: Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

impl SqliteStore {
    /// Opens the file (creating it if missing) and runs the migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let lock = lock(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // Readers never block the writer, nor it them.
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged append survives a power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            // Writers queue for the one write lock rather than fail at once.
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the embedded store {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.context("database migration failed")?;
        let (bell, _) = watch::channel(());
        Ok(SqliteStore { pool, bell: Arc::new(bell), lock: Arc::new(std::sync::Mutex::new(Some(lock))) })
    }

    /// Deletes a prefix of the cursor order, so the floor is one cursor and
    /// every reader behind it is told to reset.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let floor: Option<i64> = sqlx::query_scalar(
            "SELECT max(position) FROM \
             (SELECT position FROM events WHERE created_at < ?1 ORDER BY position LIMIT ?2)",
        )
        .bind(before.timestamp_millis())
        .bind(PRUNE_BATCH)
        .fetch_one(&mut *tx)
        .await?;
        let Some(floor) = floor else { return Ok(0) };
        let deleted =
            sqlx::query("DELETE FROM events WHERE position <= ?1").bind(floor).execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "INSERT INTO retention (only_row, tx_id, position) VALUES (1, ?1, ?2) \
             ON CONFLICT (only_row) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position",
        )
        .bind(TX_ID)
        .bind(floor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn doorbell(&self) -> Result<Doorbell> {
        Ok(Doorbell::new(self.bell.subscribe()))
    }

    pub async fn close(&self) {
        self.pool.close().await;
        // Unlocked: the file may be opened again, by this process or another.
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Rings when a commit in this process appended: the only process there is.
impl Ring for watch::Receiver<()> {
    fn ring(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.changed().await?) })
    }
}

/// The embedded store serves one process: its live feed is an in-process
/// signal, so a second process's appends would never reach the first one's
/// sockets. An OS lock on a file beside the store (not on the store itself,
/// whose locks are SQLite's) refuses the second process; the OS drops it
/// when the process ends, however it ends.
pub fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let lock_path = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the embedded store {} is in use by another eventfeed process (it holds {}); \
             the embedded store serves one process: use PostgreSQL (DATABASE_URL) for several",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", lock_path.display())),
    }
}

/// The lock file of the store at `path`: `<path>.lock`.
pub fn lock_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    name.into()
}

#[cfg(test)]
pub(crate) mod tests;
