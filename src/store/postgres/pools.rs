//! PostgreSQL connection pools that can be replaced as a whole, and the
//! wait for the database at start-up.
//!
//! sqlx gives no way to bound a query on a silent (half-open) connection: no
//! socket timeout or keepalive option, and a query future dropped mid-flight
//! sends its connection back through a ping that waits forever. So the store
//! bounds each call itself, and when one does not answer in time it treats
//! every pooled connection as suspect: the pools are replaced by fresh ones
//! (new connections, which work as soon as the database answers) and the old
//! ones are closed in the background.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

use crate::error::{describe, is_connection_error};

/// How long a pool waits for a connection: a full pool or a refusing
/// database answers `unavailable` after this. Shorter than the store's
/// bounds on a call, so a refusal is not taken for a dead connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait between two start-up connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One generation of pools.
pub struct PoolSet {
    /// Appends, consumer cursors, the head.
    pub main: PgPool,
    /// Cursor-range reads (the feed, the audit log), with bitmap scans off:
    /// see `PgStore::connect`.
    pub reads: PgPool,
    /// The tailer's read of new events, the same way, on a connection of
    /// its own: a replay storm that fills `reads` must not hold up live
    /// delivery (it stalled replays for a minute in `eventfeed-bench
    /// replicas`).
    pub tail: PgPool,
    /// `/ready`'s ping, on a connection of its own: it answers for the
    /// pooled connections (a silent one stays silent until the pools are
    /// replaced), not for a fresh one opened beside them while background
    /// tasks hold the others.
    pub health: PgPool,
}

pub struct Pools {
    options: PgConnectOptions,
    current: RwLock<Arc<PoolSet>>,
}

impl Pools {
    /// Pools that connect on first use.
    pub fn new(options: PgConnectOptions) -> Self {
        let current = RwLock::new(Arc::new(PoolSet::new(&options)));
        Pools { options, current }
    }

    pub fn current(&self) -> Arc<PoolSet> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces `stale` by fresh pools, unless another caller already did.
    pub fn replace(&self, stale: &Arc<PoolSet>) {
        let old = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            if !Arc::ptr_eq(&current, stale) {
                return;
            }
            std::mem::replace(&mut *current, Arc::new(PoolSet::new(&self.options)))
        };
        metrics::counter!("eventfeed_store_pool_replacements_total").increment(1);
        // Waits for connections still checked out; those stuck on a dead
        // socket keep this task (not a pool slot) until the kernel gives up.
        tokio::spawn(async move {
            old.main.close().await;
            old.reads.close().await;
            old.tail.close().await;
            old.health.close().await;
        });
    }

    pub async fn close(&self) {
        let set = self.current();
        set.reads.close().await;
        set.tail.close().await;
        set.main.close().await;
        set.health.close().await;
    }
}

impl PoolSet {
    fn new(options: &PgConnectOptions) -> Self {
        let main = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let cursor_reads = options.clone().options([("enable_bitmapscan", "off")]);
        let reads = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(cursor_reads.clone());
        let tail =
            PgPoolOptions::new().max_connections(1).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(cursor_reads);
        let health =
            PgPoolOptions::new().max_connections(1).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(options.clone());
        PoolSet { main, reads, tail, health }
    }
}

/// Waits until PostgreSQL accepts a connection, retrying with backoff while
/// the cause is one that time can fix (refused, reset, the database not
/// created yet, too many connections); any other cause (a wrong password, a
/// bad option) ends start-up at once.
pub async fn wait_for_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(250);
    for attempt in 1u32.. {
        let cause = match tokio::time::timeout(MAX_BACKOFF, PgConnection::connect_with(options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                if attempt > 1 {
                    tracing::info!(attempt, "PostgreSQL answered; starting");
                }
                return Ok(());
            }
            Ok(Err(e)) if !retryable(&e) => anyhow::bail!("cannot connect to DATABASE_URL: {}", describe(&e)),
            Ok(Err(e)) => describe(&e),
            Err(_) => format!("no answer within {}s", MAX_BACKOFF.as_secs()),
        };
        if attempt == 1 {
            tracing::warn!("PostgreSQL is not reachable; retrying with backoff until it is");
        }
        tracing::warn!(attempt, retry_in_ms = backoff.as_millis() as u64, %cause, "cannot connect to PostgreSQL");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    unreachable!("the attempts never run out")
}

fn retryable(e: &sqlx::Error) -> bool {
    // 3D000: the database does not exist (yet: it may be being created).
    is_connection_error(e) || matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"))
}
