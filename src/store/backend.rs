//! What a store does: the contract every backend keeps, and the doorbell it
//! rings. The rest of the server sees only [`Store`](super::Store), which
//! bounds each call; a backend answers here the questions on which the
//! server is built differently (how many commits run at once, whether other
//! processes share the store).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

use super::{
    AppendRequest, Appended, AuditQuery, ConsumerKey, ConsumerLag, EventPage, FeedQuery, ReplicaStatus, StreamQuery,
    TypeCount,
};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::Event;

/// What to do when a call does not answer within its bound (given).
pub type OnStall = Box<dyn FnOnce(Duration) + Send>;

/// An event store. Every backend keeps the same contract:
///
/// - **Cursor order.** Each event gets a cursor when it commits; a read
///   after a cursor returns events in cursor order and never skips one that
///   commits later with a lower cursor (a backend holds such events back
///   until every earlier transaction has finished).
/// - **Stream versions.** A stream's events are numbered 1, 2, … in commit
///   order; an `expected_version` that is not the stream's current one is a
///   `conflict` that names the current version.
/// - **Idempotent ids.** An event sent again with an id its tenant already
///   has is answered with the stored event, not stored twice, when it is the
///   same event; with other content the id is `conflict`.
/// - **Visibility.** A reader sees an event with no audience, or one whose
///   audience lists it; audit reads see every event of the tenant.
///
/// The calls return boxed futures so that [`Store`](super::Store) can hold
/// any backend behind one pointer.
pub trait Backend: Send + Sync + 'static {
    /// Appends the requests in one transaction; each request keeps its own
    /// outcome, all of its events or none. The outer error means the
    /// transaction as a whole failed.
    fn append_batch<'a>(&'a self, batch: &'a [AppendRequest]) -> BoxFuture<'a, Result<Vec<Result<Appended>>>>;

    /// One tenant's events visible to a user, after `q.after` and up to
    /// `q.until`, in cursor order; `has_more` when the limit cut the page.
    fn read_feed<'a>(&'a self, q: &'a FeedQuery<'_>) -> BoxFuture<'a, Result<EventPage>>;

    /// Every tenant's events after a cursor, in cursor order: the tailer's read.
    fn read_all(&self, after: Cursor, limit: i64) -> BoxFuture<'_, Result<Vec<Event>>>;

    /// One stream's events visible to a user, from a version on, in version order.
    fn read_stream<'a>(&'a self, q: &'a StreamQuery<'_>) -> BoxFuture<'a, Result<EventPage>>;

    /// An auditor's page: every event of the tenant, audience ignored, after
    /// `q.after` in cursor order (or before it, newest first).
    fn audit<'a>(&'a self, tenant_id: &'a str, q: &'a AuditQuery) -> BoxFuture<'a, Result<EventPage>>;

    /// Stores a consumer's cursor, replacing the one it had.
    fn save_cursor<'a>(&'a self, key: ConsumerKey<'a>, cursor: Cursor) -> BoxFuture<'a, Result<()>>;

    /// A consumer's stored cursor, if it has one.
    fn load_cursor<'a>(&'a self, key: ConsumerKey<'a>) -> BoxFuture<'a, Result<Option<Cursor>>>;

    /// The tenant's stored consumers with their lag, by user and name;
    /// `behind` counts up to `BEHIND_CAP + 1` readable events.
    fn consumers<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Vec<ConsumerLag>>>;

    /// The tenant's stored events per type, from counts kept at append
    /// (no scan of the events), by type.
    fn type_counts<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Vec<TypeCount>>>;

    /// Folds the type counts' pending changes into the counts, at most
    /// `TYPE_COUNT_FOLD_CHUNK` at a time; returns how many it folded. A
    /// store that counts in place has none.
    fn fold_type_counts(&self) -> BoxFuture<'_, Result<u64>>;

    /// The cursor of the newest visible event; never behind the retention
    /// floor, so a reader sent to the head is not reset again.
    fn head(&self) -> BoxFuture<'_, Result<Cursor>>;

    /// The cursor of a tenant's newest readable event, if it has one.
    fn tenant_head<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Option<Cursor>>>;

    /// Events at or before this cursor were deleted by retention.
    fn retention_floor(&self) -> BoxFuture<'_, Result<Option<Cursor>>>;

    /// Removes events older than `before` and moves the retention floor past
    /// them; returns how many. It may remove only some (a bounded chunk, or
    /// whole partitions once every event in them is older): the caller calls
    /// again until it returns 0.
    fn prune(&self, before: DateTime<Utc>) -> BoxFuture<'_, Result<u64>>;

    /// When the oldest committed event still held back by an older open
    /// transaction was appended; `None` when nothing waits.
    fn oldest_held_back(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>>;

    /// Writes one node's stats samples, each at its second; a sample already
    /// written is kept as it was.
    fn save_samples<'a>(&'a self, node: Uuid, samples: &'a [(DateTime<Utc>, Value)]) -> BoxFuture<'a, Result<()>>;

    /// Every other node's samples since `since`, by node, then oldest first.
    fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<(Uuid, Value)>>>;

    /// Deletes every node's samples older than `before`.
    fn prune_samples(&self, before: DateTime<Utc>) -> BoxFuture<'_, Result<()>>;

    /// Answers when the store does: `/ready`'s check.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// A doorbell that rings after events commit, from any process sharing the store.
    fn doorbell(&self) -> BoxFuture<'_, Result<Doorbell>>;

    /// Closes the connections and stops the store's background work.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// The store's name, as the CLI reports it.
    fn kind(&self) -> &'static str;

    /// Says at start which store serves, and what an operator should know of it.
    fn announce(&self);

    /// How many group commits may run at once: several where the database
    /// runs transactions side by side, one where it has a single writer.
    fn commit_concurrency(&self) -> usize;

    /// Where the processes that share this store reach each other: the
    /// PostgreSQL database whose notifications carry the Socket.IO adapter's
    /// messages and presence between nodes. `None` for a store that serves
    /// one process.
    fn shared_bus(&self) -> Option<PgConnectOptions> {
        None
    }

    /// Each configured read replica's state (none by default).
    fn replicas(&self) -> Vec<ReplicaStatus> {
        Vec::new()
    }

    /// Taken before each bounded call runs: what to do if that call does
    /// not answer within its bound, besides answering `unavailable`.
    fn on_stall(&self) -> Option<OnStall> {
        None
    }
}

/// Wakes the tailer when new events may have committed.
pub struct Doorbell(Box<dyn Ring>);

/// How one backend's doorbell rings.
pub trait Ring: Send {
    /// Waits for the next ring. An error means the bell is broken: reconnect.
    fn ring(&mut self) -> BoxFuture<'_, anyhow::Result<()>>;
}

impl Doorbell {
    pub fn new(bell: impl Ring + 'static) -> Self {
        Doorbell(Box::new(bell))
    }

    /// Waits for the next ring. An error means the bell is broken: reconnect.
    pub async fn ring(&mut self) -> anyhow::Result<()> {
        self.0.ring().await
    }
}
