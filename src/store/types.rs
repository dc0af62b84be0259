//! What goes into the store and comes out of it: append requests, queries,
//! pages, consumer cursors.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::{Actor, Audience, Event, EventType, InvalidInput, StreamName, TypeFilter, storable};

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
pub struct EventPage {
    pub events: Vec<Event>,
    pub has_more: bool,
}

impl EventPage {
    /// A page from up to `limit + 1` rows: the extra row only says there is more.
    pub(super) fn from_rows<R>(rows: &[R], limit: i64, event: impl Fn(&R) -> Result<Event>) -> Result<EventPage> {
        let has_more = rows.len() as i64 > limit;
        let events = rows.iter().take(limit.max(0) as usize).map(event).collect::<Result<_>>()?;
        Ok(EventPage { events, has_more })
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
    /// Where the page starts: after this cursor, or before it when `newest_first`.
    pub after: Cursor,
    pub limit: i64,
    /// One event, by its id.
    pub id: Option<uuid::Uuid>,
    /// Newest first: the events before `after`, in descending cursor order.
    pub newest_first: bool,
}

/// A stored consumer cursor's key: consumers are per user.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerKey<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub consumer: &'a ConsumerName,
}

/// A consumer's name: 1–200 characters (not bytes) that the store can keep.
/// Checked once, where a request names it (a query, an ack, a handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerName(String);

impl ConsumerName {
    pub fn parse(name: &str) -> Result<Self, InvalidInput> {
        if name.is_empty() || name.chars().count() > 200 {
            return Err(InvalidInput("consumer must be 1-200 characters".into()));
        }
        storable("consumer", name)?;
        Ok(ConsumerName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

/// Most pending type-count changes one fold takes.
pub const TYPE_COUNT_FOLD_CHUNK: i64 = 10_000;

/// How many events of one type a tenant has stored, and when the last was appended.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCount {
    pub event_type: String,
    pub count: i64,
    /// `None` once none is stored.
    pub last_at: Option<DateTime<Utc>>,
}

/// One read replica's state as `/ready` shows it.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// `host:port/database`: never the URL, which may hold a password.
    pub replica: String,
    pub up: bool,
    /// How far behind the primary it is; `None` while unknown.
    pub lag: Option<Duration>,
    /// Reads it has answered.
    pub reads: u64,
}
