//! Unit tests of the embedded store, each on a fresh file: the harness, and
//! the file's life (durability, the process lock, reopening, the doorbell).
//! Appends, reads and retention have files of their own.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SqliteStore;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{Actor, Audience, Event, EventType, StreamName, TypeFilter};
use crate::store::{AppendRequest, AuditQuery, ConsumerKey, ConsumerName, EventPage, FeedQuery, NewEvent, StreamQuery};

mod append;
mod read;
mod retention;

/// A store on a fresh file, deleted with its WAL files when dropped.
pub(crate) struct TempStore {
    pub(crate) store: SqliteStore,
    path: PathBuf,
}

impl TempStore {
    pub(crate) async fn new() -> Self {
        let path = std::env::temp_dir().join(format!("eventfeed-test-{}.db", Uuid::new_v4()));
        let store = SqliteStore::open(&path).await.expect("open the store");
        TempStore { store, path }
    }

    /// Sets an event's timestamp, as if it had been appended then.
    async fn set_time(&self, event: &Event, at: DateTime<Utc>) {
        sqlx::query("UPDATE events SET created_at = ?1 WHERE position = ?2")
            .bind(at.timestamp_millis())
            .bind(event.cursor.position)
            .execute(&self.store.pool)
            .await
            .unwrap();
    }
}

impl Deref for TempStore {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

pub(crate) fn new_event(stream: &str, event_type: &str) -> NewEvent {
    NewEvent {
        id: None,
        stream: StreamName::parse(stream).unwrap(),
        event_type: EventType::parse(event_type).unwrap(),
        data: json!({ "amount": 1200, "currency": "EUR" }),
        expected_version: None,
        actor: Some(Actor { user_id: "u-1".into(), username: Some("alice".into()) }),
        audience: None,
        metadata: None,
    }
}

fn request(tenant_id: &str, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest { tenant_id: tenant_id.into(), events }
}

/// Appends one request on its own.
pub(crate) async fn append(store: &SqliteStore, tenant_id: &str, events: Vec<NewEvent>) -> Result<Vec<Event>> {
    let mut outcomes = store.append_batch(&[request(tenant_id, events)]).await?;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0).map(|appended| appended.events)
}

fn feed<'a>(user_id: &'a str, after: Cursor, types: &'a TypeFilter) -> FeedQuery<'a> {
    FeedQuery { tenant_id: "acme", user_id, after, until: None, types, limit: 100 }
}

fn versions(page: &EventPage) -> Vec<i64> {
    page.events.iter().map(|e| e.version).collect()
}

fn types(page: &EventPage) -> Vec<&str> {
    page.events.iter().map(|e| e.event_type.as_str()).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_doorbell_rings_after_an_append() {
    let db = TempStore::new().await;
    // A clone shares the bell: the tailer and the committer hold different clones.
    let mut bell = db.store.clone().doorbell().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(50), bell.ring()).await;
    assert!(quiet.is_err(), "no ring before an append");
    append(&db, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    let rang = tokio::time::timeout(Duration::from_secs(5), bell.ring()).await;
    assert!(matches!(rang, Ok(Ok(()))), "the bell rang after the commit");
}

#[tokio::test]
async fn connections_are_durable() {
    let db = TempStore::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(journal, "wal");
    for (pragma, expected) in [("PRAGMA synchronous", 2), ("PRAGMA busy_timeout", 5000), ("PRAGMA foreign_keys", 0)] {
        let value: i64 = sqlx::query_scalar(pragma).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(value, expected, "{pragma} (synchronous 2 is FULL)");
    }
}

#[tokio::test]
async fn an_open_store_is_locked_until_closed() {
    let db = TempStore::new().await;
    let refused = SqliteStore::open(&db.path).await.err().expect("a second open is refused");
    assert!(refused.to_string().contains("in use by another eventfeed process"), "{refused}");
    db.close().await;
    SqliteStore::open(&db.path).await.expect("open again once closed").close().await;
}

#[tokio::test]
async fn reopening_keeps_the_events() {
    let db = TempStore::new().await;
    let stored = append(&db, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    db.close().await;
    let reopened = SqliteStore::open(&db.path).await.unwrap();
    assert_eq!(reopened.read_all(Cursor::ZERO, 100).await.unwrap(), stored);
    reopened.close().await;
}

fn stream_query<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    stream: &'a str,
    from_version: i64,
    limit: i64,
) -> StreamQuery<'a> {
    StreamQuery { tenant_id, user_id, stream, from_version, limit }
}
