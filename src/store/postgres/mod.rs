//! The PostgreSQL store: the production store, shared by every process.
//!
//! Reads only see rows below the snapshot horizon (`tx_id` lower than every
//! transaction still open), so a reader never passes an event that commits
//! later (docs/architecture.md, cursors).
//!
//! This file connects (running the migrations and installing the SQL API),
//! holds the pools and opens the doorbell; reads are in `read.rs` (on a
//! replica: `replica_reads.rs`), appends in `append.rs`, consumer cursors in
//! `consumers.rs`, retention's prune in `partitions.rs`.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

mod append;
mod consumers;
mod migrations;
mod partitions;
mod pools;
mod read;
mod replica_probe;
mod replica_reads;
mod replicas;
mod stats;
mod type_counts;

pub use migrations::migrator;
pub use read::READ_FEED;
pub use replicas::ReplicaStatus;

use tokio_util::sync::CancellationToken;

use super::Doorbell;
use crate::config::StoreConfig;
use crate::error::Result;
use pools::{PoolSet, Pools};
use replicas::Replicas;

/// The notification channel rung by the events trigger.
pub const CHANNEL: &str = "eventfeed";
/// Names the LISTEN connection in pg_stat_activity.
pub const LISTENER_APP_NAME: &str = "eventfeed-listener";

/// Every transaction below this id has finished.
const HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)";

#[derive(Clone)]
pub struct PgStore {
    /// The main and the cursor-range pools, replaced together when a call
    /// does not answer (see [`pools`](super::pools)).
    pools: Arc<Pools>,
    options: Arc<PgConnectOptions>,
    /// Streaming replicas that serve reads of history, if any are configured.
    replicas: Option<Arc<Replicas>>,
    /// Stops the background upkeep (partitions ahead) at close.
    upkeep: CancellationToken,
}

impl PgStore {
    /// Waits for the database, runs the migrations, creates the partitions
    /// ahead, then probes the replicas.
    pub async fn connect(url: &str, config: &StoreConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "DATABASE_URL must be a postgres:// URL (unset it to use the embedded store)"
        );
        let options = PgConnectOptions::from_str(url)
            .context("DATABASE_URL is not a valid postgres:// URL")?
            .application_name("eventfeed");
        pools::wait_for_database(&options).await?;
        // A cursor-range read takes the first page after the cursor in index
        // order. Until the events table is first analyzed (up to a minute of
        // autovacuum after a bulk load) the planner guesses a handful of rows
        // and picks a bitmap scan that sorts everything after the cursor: 55 ms
        // a page at 90,000 events behind, so replays slowed quadratically. The
        // index scan is right at any size, so these reads run with bitmap scans
        // off, on connections of their own: appends need bitmap scans.
        let pools = Arc::new(Pools::new(options.clone()));
        migrations::migrator()
            .run(&pools.current().main)
            .await
            .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
        append::install_api(&pools.current().main).await.context("installing the SQL API (sql/api.sql) failed")?;
        if let Err(e) = partitions::ensure(&pools, config.partition).await {
            // The first partition covers today; later tries come soon.
            tracing::warn!(error = %e, "cannot create event partitions ahead yet; retrying in the background");
        }
        let upkeep = CancellationToken::new();
        partitions::upkeep(pools.clone(), config.partition, upkeep.clone());
        let replicas = match config.replica_urls.as_ref().map(|r| r.0.as_slice()).unwrap_or_default() {
            [] => None,
            urls => {
                let replicas = Arc::new(Replicas::new(urls, config.replica_max_lag)?);
                replicas.start(pools.current().main.clone()).await;
                Some(replicas)
            }
        };
        Ok(PgStore { pools, options: Arc::new(options), replicas, upkeep })
    }

    /// Each configured replica's state, for `/ready`.
    pub fn replica_statuses(&self) -> Vec<ReplicaStatus> {
        self.replicas.as_ref().map(|r| r.statuses()).unwrap_or_default()
    }

    fn main(&self) -> PgPool {
        self.pools.current().main.clone()
    }

    fn reads(&self) -> PgPool {
        self.pools.current().reads.clone()
    }

    /// The pools in use now; hand them back to [`PgStore::recycle`] when a
    /// call on them did not answer.
    pub fn pool_set(&self) -> Arc<PoolSet> {
        self.pools.current()
    }

    /// Replaces the pools a call did not answer on (once, however many calls saw it).
    pub fn recycle(&self, stale: &Arc<PoolSet>) {
        self.pools.replace(stale);
    }

    /// Where the Socket.IO adapter connects (it keeps connections of its own).
    pub fn adapter_options(&self) -> PgConnectOptions {
        (*self.options).clone().application_name("eventfeed-adapter")
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pools.current().health).await?;
        Ok(())
    }

    /// A LISTEN connection of its own, never inside a transaction.
    pub async fn doorbell(&self) -> Result<Doorbell> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*self.options).clone().application_name(LISTENER_APP_NAME));
        let mut listener = PgListener::connect_with(&pool).await?;
        // The tailer reconnects itself (and then reads from its cursor): a lost
        // connection must not also be replaced behind its back, only to be dropped.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Doorbell::Postgres(listener))
    }

    pub async fn close(&self) {
        self.upkeep.cancel();
        if let Some(replicas) = &self.replicas {
            replicas.stop.cancel();
        }
        self.pools.close().await;
    }
}
