//! The PostgreSQL store: the production store, shared by every process.
//!
//! Reads only see rows below the snapshot horizon (`tx_id` lower than every
//! transaction still open), so a reader never passes an event that commits
//! later (docs/architecture.md, cursors).
//!
//! This file connects (running the migrations and installing the SQL API),
//! holds the pools and opens the doorbell; reads are in `read.rs` (on a
//! replica: `replica_reads.rs`), appends in `append.rs`, consumer cursors in
//! `consumers.rs`, retention's prune in `partitions.rs`, and `backend.rs`
//! makes it a [`Backend`](super::Backend).

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

mod append;
mod backend;
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

use tokio_util::sync::CancellationToken;

use super::{Doorbell, Ring};
use crate::config::StoreConfig;
use crate::error::Result;
use pools::Pools;
use replicas::Replicas;

/// The notification channel rung by the events trigger.
pub const CHANNEL: &str = "eventfeed";
/// Names the LISTEN connection in pg_stat_activity.
pub const LISTENER_APP_NAME: &str = "eventfeed-listener";

/// Every transaction below this id has finished.
const HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)";

pub(crate) struct PgStore {
    /// The main and the cursor-range pools, replaced together when a call
    /// does not answer (see [`pools`]).
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

    fn main(&self) -> PgPool {
        self.pools.current().main.clone()
    }

    fn reads(&self) -> PgPool {
        self.pools.current().reads.clone()
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
        Ok(Doorbell::new(listener))
    }

    pub async fn close(&self) {
        self.upkeep.cancel();
        if let Some(replicas) = &self.replicas {
            replicas.stop.cancel();
        }
        self.pools.close().await;
    }
}

/// Rings on the events trigger's notifications.
impl Ring for PgListener {
    fn ring(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            match self.try_recv().await? {
                // Notifications already here ring the same bell: one read serves them all.
                Some(_) => {
                    while self.next_buffered().is_some() {}
                    Ok(())
                }
                None => anyhow::bail!("the LISTEN connection was lost"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::{Connection as _, Executor as _, PgConnection};

    use super::*;
    use crate::config::PartitionStep;
    use crate::cursor::Cursor;

    const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// Replays that hold every connection of the read pool do not hold up
    /// the tailer's read of new events.
    #[tokio::test]
    async fn the_tailer_reads_while_replays_hold_every_read_connection() {
        let name = format!("ef_unit_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(ADMIN).await.expect("PostgreSQL on 127.0.0.1:5432");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        let config = StoreConfig {
            database_url: None,
            data_file: "unused".into(),
            replica_urls: None,
            replica_max_lag: Duration::from_secs(10),
            partition: PartitionStep::Month,
        };
        let store = PgStore::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"), &config).await.unwrap();

        let reads = store.pools.current().reads.clone();
        let mut held = Vec::new();
        for _ in 0..reads.options().get_max_connections() {
            held.push(reads.acquire().await.unwrap());
        }
        let tailed = tokio::time::timeout(Duration::from_secs(10), store.read_all(Cursor::ZERO, 10)).await;
        drop(held);
        store.close().await;
        admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).await.unwrap();
        assert!(matches!(tailed, Ok(Ok(_))), "the tailer's read waited for the replays: {tailed:?}");
    }
}
