//! The event store: one interface, two implementations.
//!
//! PostgreSQL is the production store and the only one for several processes;
//! the embedded SQLite file is the zero-setup default. Both give the same
//! contract: cursor order, idempotent ids, stream versions, consumer cursors.

mod commit;
pub mod postgres;
mod rows;
pub mod sqlite;
mod types;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub use commit::Appender;
pub use postgres::ReplicaStatus;
pub use types::{
    AppendRequest, Appended, AuditQuery, BEHIND_CAP, ConsumerKey, ConsumerLag, EventPage, FeedQuery, NewEvent,
    StreamQuery, TYPE_COUNT_FOLD_CHUNK, TypeCount,
};

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::Event;

/// Bounds on one store call. A call past its bound is answered `unavailable`
/// and its PostgreSQL pools are replaced (see [`pools`]).
/// Small keyed reads and writes: the tailer's, readiness, consumer cursors.
const QUICK: Duration = Duration::from_secs(3);
/// Page reads for clients (replay, polling, streams, audit).
const READ: Duration = Duration::from_secs(10);
/// Appends (which may wait on a stream's row lock held by an application's
/// transaction) and retention's deletes.
const APPEND: Duration = Duration::from_secs(30);

/// Wakes the tailer when new events may have committed.
pub enum Doorbell {
    Postgres(sqlx::postgres::PgListener),
    Local(tokio::sync::watch::Receiver<()>),
}

impl Doorbell {
    /// Waits for the next ring. An error means the bell is broken: reconnect.
    pub async fn ring(&mut self) -> anyhow::Result<()> {
        match self {
            Doorbell::Postgres(listener) => match listener.try_recv().await? {
                // Notifications already here ring the same bell: one read serves them all.
                Some(_) => {
                    while listener.next_buffered().is_some() {}
                    Ok(())
                }
                None => anyhow::bail!("the LISTEN connection was lost"),
            },
            Doorbell::Local(rx) => Ok(rx.changed().await?),
        }
    }
}

/// Opens the store the config names: PostgreSQL when `DATABASE_URL` is set,
/// else the embedded file.
pub async fn open(config: &crate::config::StoreConfig) -> anyhow::Result<Store> {
    match &config.database_url {
        Some(url) => Ok(Store::Postgres(postgres::PgStore::connect(&url.0, config).await?)),
        None => {
            if config.replica_urls.as_ref().is_some_and(|r| !r.0.is_empty()) {
                tracing::warn!("EVENTFEED_REPLICA_URLS is ignored: read replicas need DATABASE_URL (PostgreSQL)");
            }
            Ok(Store::Sqlite(sqlite::SqliteStore::open(&config.data_file).await?))
        }
    }
}

#[derive(Clone)]
pub enum Store {
    Postgres(postgres::PgStore),
    Sqlite(sqlite::SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Postgres($s) => $call,
            Store::Sqlite($s) => $call,
        }
    };
}

impl Store {
    /// Appends the requests in one transaction; each request keeps its own outcome.
    /// The outer error means the transaction as a whole failed.
    #[tracing::instrument(level = "debug", skip_all, fields(requests = batch.len()), err(level = "debug"))]
    pub async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<Appended>>> {
        self.bounded(APPEND, async { dispatch!(self, s => s.append_batch(batch).await) }).await
    }

    /// One tenant's events visible to a user, after a cursor, in cursor order.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %q.tenant_id, after = %q.after), err(level = "debug"))]
    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<EventPage> {
        self.bounded(READ, async { dispatch!(self, s => s.read_feed(q).await) }).await
    }

    /// Every tenant's events after a cursor: the tailer's read.
    #[tracing::instrument(level = "debug", skip_all, fields(%after), err(level = "debug"))]
    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<Event>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.read_all(after, limit).await) }).await
    }

    /// One stream's events visible to a user, in version order.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %q.tenant_id, stream = %q.stream), err(level = "debug"))]
    pub async fn read_stream(&self, q: &StreamQuery<'_>) -> Result<EventPage> {
        self.bounded(READ, async { dispatch!(self, s => s.read_stream(q).await) }).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id, after = %q.after), err(level = "debug"))]
    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<EventPage> {
        self.bounded(READ, async { dispatch!(self, s => s.audit(tenant_id, q).await) }).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant_id, %cursor), err(level = "debug"))]
    pub async fn save_cursor(&self, key: ConsumerKey<'_>, cursor: Cursor) -> Result<()> {
        self.bounded(QUICK, async { dispatch!(self, s => s.save_cursor(key, cursor).await) }).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant_id), err(level = "debug"))]
    pub async fn load_cursor(&self, key: ConsumerKey<'_>) -> Result<Option<Cursor>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.load_cursor(key).await) }).await
    }

    /// The tenant's stored consumers with their lag, by user and name.
    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerLag>> {
        self.bounded(READ, async { dispatch!(self, s => s.consumers(tenant_id).await) }).await
    }

    /// The tenant's stored events per type, from counts kept at append
    /// (no scan of the events), by type.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id), err(level = "debug"))]
    pub async fn type_counts(&self, tenant_id: &str) -> Result<Vec<TypeCount>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.type_counts(tenant_id).await) }).await
    }

    /// Folds the type counts' pending changes into the counts; returns how
    /// many changes it folded. A store that counts in place has none.
    pub async fn fold_type_counts(&self) -> Result<u64> {
        self.bounded(QUICK, async { dispatch!(self, s => s.fold_type_counts().await) }).await
    }

    /// The cursor of the newest visible event; never behind the retention
    /// floor, so a reader sent to the head is not reset again.
    pub async fn head(&self) -> Result<Cursor> {
        self.bounded(QUICK, async { dispatch!(self, s => s.head().await) }).await
    }

    /// The cursor of a tenant's newest readable event, if it has one.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id), err(level = "debug"))]
    pub async fn tenant_head(&self, tenant_id: &str) -> Result<Option<Cursor>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.tenant_head(tenant_id).await) }).await
    }

    /// Events at or before this cursor were deleted by retention.
    pub async fn retention_floor(&self) -> Result<Option<Cursor>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.retention_floor().await) }).await
    }

    /// Removes events older than `before`; returns how many. On PostgreSQL
    /// whole partitions are dropped, once every event in them is older.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        self.bounded(APPEND, async { dispatch!(self, s => s.prune(before).await) }).await
    }

    /// When the oldest committed event still held back by an older open
    /// transaction was appended; `None` when nothing waits.
    pub async fn oldest_held_back(&self) -> Result<Option<DateTime<Utc>>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.oldest_held_back().await) }).await
    }

    /// Writes one node's stats samples (`GET /api/stats`), each at its second;
    /// a sample already written is kept as it was.
    pub async fn save_samples(&self, node: Uuid, samples: &[(DateTime<Utc>, Value)]) -> Result<()> {
        self.bounded(QUICK, async { dispatch!(self, s => s.save_samples(node, samples).await) }).await
    }

    /// Every other node's samples since `since`, by node, then oldest first.
    pub async fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> Result<Vec<(Uuid, Value)>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.load_samples(except, since).await) }).await
    }

    /// Deletes every node's samples older than `before`.
    pub async fn prune_samples(&self, before: DateTime<Utc>) -> Result<()> {
        self.bounded(QUICK, async { dispatch!(self, s => s.prune_samples(before).await) }).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.bounded(QUICK, async { dispatch!(self, s => s.ping().await) }).await
    }

    pub async fn doorbell(&self) -> Result<Doorbell> {
        dispatch!(self, s => s.doorbell().await)
    }

    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }

    /// Runs one store call, failing it as `unavailable` when it does not
    /// answer within `bound`. A PostgreSQL call that hangs is most likely on
    /// a dead connection, and so may be every other pooled one: the pools it
    /// ran on are replaced.
    async fn bounded<T>(&self, bound: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
        // Taken before the call first runs, so it names the pools the call uses.
        let pools = match self {
            Store::Postgres(pg) => Some(pg.pool_set()),
            Store::Sqlite(_) => None,
        };
        match tokio::time::timeout(bound, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                if let (Store::Postgres(pg), Some(pools)) = (self, pools) {
                    tracing::warn!(
                        bound_ms = bound.as_millis() as u64,
                        "a database call did not answer; replacing the connection pools"
                    );
                    pg.recycle(&pools);
                }
                Err(Error::Unavailable(format!("no answer from the store within {} ms", bound.as_millis())))
            }
        }
    }

    /// Says which store serves, warning when it is the embedded one.
    pub fn announce(&self) {
        match self {
            Store::Postgres(_) => tracing::info!("store: PostgreSQL"),
            Store::Sqlite(_) => tracing::warn!(
                "store: embedded SQLite file; PostgreSQL (DATABASE_URL) is the production store and the only one for several processes"
            ),
        }
    }

    /// Each configured replica's state (none on the embedded store).
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        match self {
            Store::Postgres(pg) => pg.replica_statuses(),
            Store::Sqlite(_) => Vec::new(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }
}

/// Whether `cursor` is behind the retention floor (its events are gone).
pub fn expired(cursor: Cursor, floor: Option<Cursor>) -> bool {
    floor.is_some_and(|f| cursor < f)
}
