//! The event store: one interface, two implementations.
//!
//! PostgreSQL is the production store and the only one for several processes;
//! the embedded SQLite file is the zero-setup default. Both give the same
//! contract: cursor order, idempotent ids, stream versions, consumer cursors.

mod commit;
mod pools;
pub mod postgres;
pub mod sqlite;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub use commit::Appender;

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{Actor, Audience, Event, EventType, StreamName, TypeFilter};

/// Bounds on one store call. A call past its bound is answered `unavailable`
/// and its PostgreSQL pools are replaced (see [`pools`]).
/// Small keyed reads and writes: the tailer's, readiness, consumer cursors.
const QUICK: Duration = Duration::from_secs(3);
/// Page reads for clients (replay, polling, streams, audit).
const READ: Duration = Duration::from_secs(10);
/// Appends (which may wait on a stream's row lock held by an application's
/// transaction) and retention's deletes.
const APPEND: Duration = Duration::from_secs(30);

/// A validated event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Option<Uuid>,
    pub stream: StreamName,
    pub event_type: EventType,
    pub data: Value,
    pub expected_version: Option<i64>,
    pub actor: Option<Actor>,
    pub audience: Option<Audience>,
    pub metadata: Option<Value>,
}

/// Events appended together, all or nothing.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub tenant_id: String,
    pub events: Vec<NewEvent>,
}

/// What one append request got: its events, as stored, of which `retries`
/// were idempotent retries answered with an event stored before (by an
/// earlier request, or earlier in this one).
#[derive(Debug, Clone, Default)]
pub struct Appended {
    pub events: Vec<Event>,
    pub retries: usize,
}

impl Appended {
    /// The events this request stored anew.
    pub fn stored(&self) -> usize {
        self.events.len() - self.retries
    }
}

/// One page of a cursor read.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub events: Vec<Event>,
    pub has_more: bool,
}

impl Page {
    /// A page from up to `limit + 1` rows: the extra row only says there is more.
    fn from_rows<R>(rows: &[R], limit: i64, event: impl Fn(&R) -> Result<Event>) -> Result<Page> {
        let has_more = rows.len() as i64 > limit;
        let events = rows.iter().take(limit.max(0) as usize).map(event).collect::<Result<_>>()?;
        Ok(Page { events, has_more })
    }
}

/// A read of one tenant's events after a cursor.
#[derive(Debug, Clone)]
pub struct FeedQuery<'a> {
    pub tenant_id: &'a str,
    /// The reading user: events addressed to others are skipped.
    pub user_id: &'a str,
    pub after: Cursor,
    /// Read nothing beyond this cursor (the replay's hand-over point).
    pub until: Option<Cursor>,
    pub types: &'a TypeFilter,
    pub limit: i64,
}

/// One stream's events visible to a user, from a version on.
#[derive(Debug, Clone, Copy)]
pub struct StreamQuery<'a> {
    pub tenant_id: &'a str,
    /// The reading user: events addressed to others are skipped.
    pub user_id: &'a str,
    pub stream: &'a str,
    pub from_version: i64,
    pub limit: i64,
}

/// An auditor's query: every event of the tenant, audience ignored.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub types: TypeFilter,
    pub stream: Option<String>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Cursor,
    pub limit: i64,
}

/// A stored consumer cursor's key: consumers are per user.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerKey<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub consumer: &'a str,
}

/// How far `behind` counts before it stops: enough to tell an operator that a
/// consumer is far gone, without counting a million rows per consumer.
pub const BEHIND_CAP: i64 = 10_000;

/// A stored consumer cursor and how far behind the tenant's newest event it is.
#[derive(Debug, Clone)]
pub struct ConsumerLag {
    pub consumer: String,
    pub user_id: String,
    pub cursor: Cursor,
    pub updated_at: DateTime<Utc>,
    /// The tenant's readable events after the cursor, counted up to
    /// `BEHIND_CAP + 1`, so more than the cap means "capped".
    pub behind: i64,
}

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
        Some(url) => Ok(Store::Postgres(postgres::PgStore::connect(&url.0).await?)),
        None => Ok(Store::Sqlite(sqlite::SqliteStore::open(&config.data_file).await?)),
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
    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<Page> {
        self.bounded(READ, async { dispatch!(self, s => s.read_feed(q).await) }).await
    }

    /// Every tenant's events after a cursor: the tailer's read.
    #[tracing::instrument(level = "debug", skip_all, fields(%after), err(level = "debug"))]
    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<Event>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.read_all(after, limit).await) }).await
    }

    /// One stream's events visible to a user, in version order.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %q.tenant_id, stream = %q.stream), err(level = "debug"))]
    pub async fn read_stream(&self, q: &StreamQuery<'_>) -> Result<Page> {
        self.bounded(READ, async { dispatch!(self, s => s.read_stream(q).await) }).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id, after = %q.after), err(level = "debug"))]
    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<Page> {
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

    /// Deletes events older than `before`; returns how many.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        self.bounded(APPEND, async { dispatch!(self, s => s.prune(before).await) }).await
    }

    /// When the oldest committed event still held back by an older open
    /// transaction was appended; `None` when nothing waits.
    pub async fn oldest_held_back(&self) -> Result<Option<DateTime<Utc>>> {
        self.bounded(QUICK, async { dispatch!(self, s => s.oldest_held_back().await) }).await
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
