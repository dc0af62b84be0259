//! What both backends' SQL and rows have in common, written once: the
//! columns an event is read from, the numbering of a type filter's
//! parameters, and the decoding of events, cursors and consumers. A backend
//! says only how it keeps the values SQL gives no common type (ids, times,
//! lists of users).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::{Actor, Audience, Event};
use crate::store::ConsumerLag;

/// The columns of an event, in every read of events.
pub(super) const COLUMNS: &str = "position, tx_id, id, tenant_id, stream, version, type, data, \
                       actor_id, actor_name, audience, metadata, created_at";

/// A backend's type filter SQL, `template`, with its two array parameters
/// numbered: `E` (the exact types) at `exact`, `P` (the prefixes) at
/// `prefixes`, each written after the backend's parameter sign `sign`.
pub(super) fn type_match(template: &str, sign: char, exact: usize, prefixes: usize) -> String {
    template
        .replace(&format!("{sign}E"), &format!("{sign}{exact}"))
        .replace(&format!("{sign}P"), &format!("{sign}{prefixes}"))
}

/// A row of a backend: the values each keeps in a type of its own, and from
/// them the decoding every backend shares.
pub(super) trait StoreRow: Row
where
    &'static str: ColumnIndex<Self>,
    for<'r> String: Decode<'r, Self::Database> + Type<Self::Database>,
    for<'r> i64: Decode<'r, Self::Database> + Type<Self::Database>,
    for<'r> Json<Value>: Decode<'r, Self::Database> + Type<Self::Database>,
{
    fn uuid(&self, column: &'static str) -> Result<Uuid>;
    fn time(&self, column: &'static str) -> Result<DateTime<Utc>>;
    /// A list of strings; `None` for NULL.
    fn strings(&self, column: &'static str) -> Result<Option<Vec<String>>>;

    /// The row's `tx_id` and `position`.
    fn cursor(&self) -> Result<Cursor> {
        Ok(Cursor::new(self.try_get("tx_id")?, self.try_get("position")?))
    }

    /// An event from a row of [`COLUMNS`].
    fn event(&self) -> Result<Event> {
        let actor_id: Option<String> = self.try_get("actor_id")?;
        let actor_name: Option<String> = self.try_get("actor_name")?;
        Ok(Event {
            id: self.uuid("id")?,
            cursor: self.cursor()?,
            tenant_id: self.try_get("tenant_id")?,
            stream: self.try_get("stream")?,
            version: self.try_get("version")?,
            event_type: self.try_get("type")?,
            data: self.try_get::<Json<Value>, _>("data")?.0,
            actor: actor_id.map(|user_id| Actor { user_id, username: actor_name }),
            audience: self.strings("audience")?.map(|users| Audience { users }),
            metadata: self.try_get::<Option<Json<Value>>, _>("metadata")?.map(|j| j.0),
            timestamp: self.time("created_at")?,
        })
    }

    /// A stored consumer from a row of its table, `behind` counted apart.
    fn consumer(&self, behind: i64) -> Result<ConsumerLag> {
        Ok(ConsumerLag {
            consumer: self.try_get("consumer")?,
            user_id: self.try_get("user_id")?,
            cursor: self.cursor()?,
            updated_at: self.time("updated_at")?,
            behind,
        })
    }
}
