//! The embedded store as a [`Backend`]: each call is the store's own, in
//! the file of its subject; what this backend answers differently from
//! PostgreSQL is stated here.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

use super::SqliteStore;
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::Event;
use crate::store::{
    AppendRequest, Appended, AuditQuery, Backend, ConsumerKey, ConsumerLag, Doorbell, EventPage, FeedQuery,
    StreamQuery, TypeCount,
};

impl Backend for SqliteStore {
    fn append_batch<'a>(&'a self, batch: &'a [AppendRequest]) -> BoxFuture<'a, Result<Vec<Result<Appended>>>> {
        Box::pin(self.append_batch(batch))
    }

    fn read_feed<'a>(&'a self, q: &'a FeedQuery<'_>) -> BoxFuture<'a, Result<EventPage>> {
        Box::pin(self.read_feed(q))
    }

    fn read_all(&self, after: Cursor, limit: i64) -> BoxFuture<'_, Result<Vec<Event>>> {
        Box::pin(self.read_all(after, limit))
    }

    fn read_stream<'a>(&'a self, q: &'a StreamQuery<'_>) -> BoxFuture<'a, Result<EventPage>> {
        Box::pin(self.read_stream(q))
    }

    fn audit<'a>(&'a self, tenant_id: &'a str, q: &'a AuditQuery) -> BoxFuture<'a, Result<EventPage>> {
        Box::pin(self.audit(tenant_id, q))
    }

    fn save_cursor<'a>(&'a self, key: ConsumerKey<'a>, cursor: Cursor) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_cursor(key, cursor))
    }

    fn load_cursor<'a>(&'a self, key: ConsumerKey<'a>) -> BoxFuture<'a, Result<Option<Cursor>>> {
        Box::pin(self.load_cursor(key))
    }

    fn consumers<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Vec<ConsumerLag>>> {
        Box::pin(self.consumers(tenant_id))
    }

    fn type_counts<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Vec<TypeCount>>> {
        Box::pin(self.type_counts(tenant_id))
    }

    fn fold_type_counts(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.fold_type_counts())
    }

    fn head(&self) -> BoxFuture<'_, Result<Cursor>> {
        Box::pin(self.head())
    }

    fn tenant_head<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<Option<Cursor>>> {
        Box::pin(self.tenant_head(tenant_id))
    }

    fn retention_floor(&self) -> BoxFuture<'_, Result<Option<Cursor>>> {
        Box::pin(self.retention_floor())
    }

    fn prune(&self, before: DateTime<Utc>) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune(before))
    }

    fn oldest_held_back(&self) -> BoxFuture<'_, Result<Option<DateTime<Utc>>>> {
        Box::pin(self.oldest_held_back())
    }

    fn save_samples<'a>(&'a self, node: Uuid, samples: &'a [(DateTime<Utc>, Value)]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_samples(node, samples))
    }

    fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<(Uuid, Value)>>> {
        Box::pin(self.load_samples(except, since))
    }

    fn prune_samples(&self, before: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.prune_samples(before))
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.ping())
    }

    fn doorbell(&self) -> BoxFuture<'_, Result<Doorbell>> {
        Box::pin(self.doorbell())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.close())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn announce(&self) {
        tracing::warn!(
            "store: embedded SQLite file; PostgreSQL (DATABASE_URL) is the production store and the only one for several processes"
        );
    }

    /// One writer: a second commit would only wait for the write lock,
    /// inside a transaction.
    fn commit_concurrency(&self) -> usize {
        1
    }
}
