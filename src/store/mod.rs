//! The event store: one interface, two implementations.
//!
//! PostgreSQL is the production store and the only one for several processes;
//! the embedded SQLite file is the zero-setup default. Both keep the contract
//! of [`Backend`]: cursor order, idempotent ids, stream versions, consumer
//! cursors. Each lives in a folder of its own, `postgres/` and `sqlite/`;
//! nothing outside this module knows which one serves.

mod backend;
mod commit;
pub mod postgres;
mod rows;
pub(crate) mod sqlite;
mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

pub use backend::{Backend, Doorbell, OnStall, Ring};
pub use commit::Appender;
pub use types::{
    AppendRequest, Appended, AuditQuery, BEHIND_CAP, ConsumerKey, ConsumerLag, ConsumerName, EventPage, FeedQuery,
    NewEvent, ReplicaStatus, StreamQuery, TYPE_COUNT_FOLD_CHUNK, TypeCount,
};

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::Event;

/// Bounds on one store call. A call past its bound is answered `unavailable`
/// (and its backend may recover, see [`Backend::on_stall`]).
/// Small keyed reads and writes: the tailer's, consumer cursors.
const QUICK: Duration = Duration::from_secs(3);
/// `/ready`'s ping, so the probe answers within its documented 2 seconds.
/// Its connection is its own: past this bound it is replaced with the pools,
/// or a silent one would keep the node unready for good.
const PING: Duration = Duration::from_millis(1500);
/// Page reads for clients (replay, polling, streams, audit).
const READ: Duration = Duration::from_secs(10);
/// Appends (which may wait on a stream's row lock held by an application's
/// transaction) and retention's deletes.
const APPEND: Duration = Duration::from_secs(30);

/// Opens the store the config names: PostgreSQL when `DATABASE_URL` is set,
/// else the embedded file.
pub async fn open(config: &crate::config::StoreConfig) -> anyhow::Result<Store> {
    match &config.database_url {
        Some(url) => Ok(Store::new(postgres::PgStore::connect(&url.0, config).await?)),
        None => {
            if config.replica_urls.as_ref().is_some_and(|r| !r.0.is_empty()) {
                tracing::warn!("EVENTFEED_REPLICA_URLS is ignored: read replicas need DATABASE_URL (PostgreSQL)");
            }
            Ok(Store::new(sqlite::SqliteStore::open(&config.data_file).await?))
        }
    }
}

/// The store as the server holds it: cheap to clone, every call bounded.
///
/// A trait object rather than an enum of the backends: the enum had every
/// caller that needed something of one backend match on it (the socket
/// adapter, presence, the commit concurrency). Behind `dyn Backend` those are
/// questions the backend answers, and a new backend touches its own folder
/// and [`open`]. The price, a boxed future per call, is small beside a
/// database round trip.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

/// Each call is the [`Backend`] call of its name, whose contract it keeps, bounded.
impl Store {
    pub fn new(backend: impl Backend) -> Store {
        Store(Arc::new(backend))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(requests = batch.len()), err(level = "debug"))]
    pub async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<Appended>>> {
        self.bounded(APPEND, self.0.append_batch(batch)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %q.tenant_id, after = %q.after), err(level = "debug"))]
    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<EventPage> {
        self.bounded(READ, self.0.read_feed(q)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%after), err(level = "debug"))]
    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<Event>> {
        self.bounded(QUICK, self.0.read_all(after, limit)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %q.tenant_id, stream = %q.stream), err(level = "debug"))]
    pub async fn read_stream(&self, q: &StreamQuery<'_>) -> Result<EventPage> {
        self.bounded(READ, self.0.read_stream(q)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id, after = %q.after), err(level = "debug"))]
    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<EventPage> {
        self.bounded(READ, self.0.audit(tenant_id, q)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant_id, %cursor), err(level = "debug"))]
    pub async fn save_cursor(&self, key: ConsumerKey<'_>, cursor: Cursor) -> Result<()> {
        self.bounded(QUICK, self.0.save_cursor(key, cursor)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant_id), err(level = "debug"))]
    pub async fn load_cursor(&self, key: ConsumerKey<'_>) -> Result<Option<Cursor>> {
        self.bounded(QUICK, self.0.load_cursor(key)).await
    }

    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerLag>> {
        self.bounded(READ, self.0.consumers(tenant_id)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id), err(level = "debug"))]
    pub async fn type_counts(&self, tenant_id: &str) -> Result<Vec<TypeCount>> {
        self.bounded(QUICK, self.0.type_counts(tenant_id)).await
    }

    pub async fn fold_type_counts(&self) -> Result<u64> {
        self.bounded(QUICK, self.0.fold_type_counts()).await
    }

    pub async fn head(&self) -> Result<Cursor> {
        self.bounded(QUICK, self.0.head()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant_id), err(level = "debug"))]
    pub async fn tenant_head(&self, tenant_id: &str) -> Result<Option<Cursor>> {
        self.bounded(QUICK, self.0.tenant_head(tenant_id)).await
    }

    pub async fn retention_floor(&self) -> Result<Option<Cursor>> {
        self.bounded(QUICK, self.0.retention_floor()).await
    }

    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        self.bounded(APPEND, self.0.prune(before)).await
    }

    pub async fn oldest_held_back(&self) -> Result<Option<DateTime<Utc>>> {
        self.bounded(QUICK, self.0.oldest_held_back()).await
    }

    pub async fn save_samples(&self, node: Uuid, samples: &[(DateTime<Utc>, Value)]) -> Result<()> {
        self.bounded(QUICK, self.0.save_samples(node, samples)).await
    }

    pub async fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> Result<Vec<(Uuid, Value)>> {
        self.bounded(QUICK, self.0.load_samples(except, since)).await
    }

    pub async fn prune_samples(&self, before: DateTime<Utc>) -> Result<()> {
        self.bounded(QUICK, self.0.prune_samples(before)).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.bounded(PING, self.0.ping()).await
    }

    pub async fn doorbell(&self) -> Result<Doorbell> {
        self.0.doorbell().await
    }

    pub async fn close(&self) {
        self.0.close().await
    }

    /// Runs one store call, failing it as `unavailable` when it does not
    /// answer within `bound`; the backend then recovers as it needs to.
    async fn bounded<T>(&self, bound: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
        // Taken before the call first runs, so it names what the call runs on.
        let on_stall = self.0.on_stall();
        match tokio::time::timeout(bound, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                if let Some(recover) = on_stall {
                    recover(bound);
                }
                Err(Error::Unavailable(format!("no answer from the store within {} ms", bound.as_millis())))
            }
        }
    }

    /// Says which store serves.
    pub fn announce(&self) {
        self.0.announce()
    }

    /// Each configured replica's state (none on the embedded store).
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        self.0.replicas()
    }

    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    /// How many group commits may run at once (see [`Backend::commit_concurrency`]).
    pub fn commit_concurrency(&self) -> usize {
        self.0.commit_concurrency()
    }

    /// Where the processes sharing this store reach each other, if others
    /// can (see [`Backend::shared_bus`]).
    pub fn shared_bus(&self) -> Option<PgConnectOptions> {
        self.0.shared_bus()
    }
}

/// Whether `cursor` is behind the retention floor (its events are gone).
pub fn expired(cursor: Cursor, floor: Option<Cursor>) -> bool {
    floor.is_some_and(|f| cursor < f)
}
