//! The embedded store's read path: cursor reads (the feed, the tailer's,
//! audit), stream reads and the heads. One writer: every committed row is
//! readable at once, in position order.

use std::cmp::Ordering;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::types::uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::{SqliteStore, TX_ID};
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::store::rows::{COLUMNS, StoreRow, type_match};
use crate::store::{AuditQuery, EventPage, FeedQuery, StreamQuery};

/// The reader `?U` may see the event: no audience, or listed in it exactly.
const VISIBLE: &str = "(audience IS NULL \
     OR EXISTS (SELECT 1 FROM json_each(events.audience) u WHERE u.value = ?U))";
/// The type filter: JSON arrays of exact types at `?E` and prefixes at `?P`.
const TYPE_MATCH: &str = "(json_array_length(?E) + json_array_length(?P) = 0 \
     OR type IN (SELECT value FROM json_each(?E)) \
     OR EXISTS (SELECT 1 FROM json_each(?P) p WHERE substr(events.type, 1, length(p.value)) = p.value))";

impl SqliteStore {
    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<EventPage> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM events \
                 WHERE tenant_id = ?1 AND position > ?2 AND position <= ?3 AND {visible} AND {types} \
                 ORDER BY position LIMIT ?7",
                visible = VISIBLE.replace("?U", "?4"),
                types = type_match(TYPE_MATCH, '?', 5, 6),
            )
        });
        let limit = q.limit.max(0);
        let rows = sqlx::query(SQL.as_str())
            .bind(q.tenant_id)
            .bind(position_of(q.after))
            .bind(q.until.map_or(i64::MAX, position_of))
            .bind(q.user_id)
            .bind(Json(q.types.exact()))
            .bind(Json(q.types.prefixes()))
            .bind(limit.saturating_add(1))
            .fetch_all(&self.pool)
            .await?;
        EventPage::from_rows(&rows, limit, StoreRow::event)
    }

    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<Event>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"));
        let rows = sqlx::query(SQL.as_str()).bind(position_of(after)).bind(limit.max(0)).fetch_all(&self.pool).await?;
        rows.iter().map(StoreRow::event).collect()
    }

    pub async fn read_stream(&self, q: &StreamQuery<'_>) -> Result<EventPage> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM events \
                 WHERE tenant_id = ?1 AND stream = ?2 AND version >= ?3 AND {visible} \
                 ORDER BY version LIMIT ?5",
                visible = VISIBLE.replace("?U", "?4"),
            )
        });
        let limit = q.limit.max(0);
        let rows = sqlx::query(SQL.as_str())
            .bind(q.tenant_id)
            .bind(q.stream)
            .bind(q.from_version)
            .bind(q.user_id)
            .bind(limit.saturating_add(1))
            .fetch_all(&self.pool)
            .await?;
        EventPage::from_rows(&rows, limit, StoreRow::event)
    }

    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<EventPage> {
        // The optional filters are `?n IS NULL OR …`, which no index serves; a
        // given stream or actor is also stated plainly, so its index drives the scan.
        fn filters(newer: &str, order: &str) -> String {
            format!(
                "tenant_id = ?1 AND position {newer} ?2 AND {types} \
                 AND (?5 IS NULL OR stream = ?5) AND (?6 IS NULL OR actor_id = ?6) \
                 AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) \
                 AND (?10 IS NULL OR id = ?10) \
                 ORDER BY position {order} LIMIT ?9",
                types = type_match(TYPE_MATCH, '?', 3, 4),
            )
        }
        /// The four queries (by tenant, stream, actor or id) in one order.
        fn queries(newer: &str, order: &str) -> [String; 4] {
            let filters = filters(newer, order);
            [
                format!("SELECT {COLUMNS} FROM events WHERE id = ?10 AND {filters}"),
                format!("SELECT {COLUMNS} FROM events WHERE {filters}"),
                format!("SELECT {COLUMNS} FROM events WHERE stream = ?5 AND {filters}"),
                format!("SELECT {COLUMNS} FROM events WHERE actor_id = ?6 AND {filters}"),
            ]
        }
        static OLDEST_FIRST: LazyLock<[String; 4]> = LazyLock::new(|| queries(">", "ASC"));
        static NEWEST_FIRST: LazyLock<[String; 4]> = LazyLock::new(|| queries("<", "DESC"));
        let [by_id, by_tenant, by_stream, by_actor] = if q.newest_first { &*NEWEST_FIRST } else { &*OLDEST_FIRST };
        let sql = match (&q.id, &q.stream, &q.actor) {
            (Some(_), _, _) => by_id,
            (None, Some(_), _) => by_stream,
            (None, None, Some(_)) => by_actor,
            (None, None, None) => by_tenant,
        };
        let limit = q.limit.max(0);
        let rows = sqlx::query(sql.as_str())
            .bind(tenant_id)
            .bind(position_of(q.after))
            .bind(Json(q.types.exact()))
            .bind(Json(q.types.prefixes()))
            .bind(&q.stream)
            .bind(&q.actor)
            .bind(q.from.map(|t| t.timestamp_millis()))
            .bind(q.to.map(|t| t.timestamp_millis()))
            .bind(limit.saturating_add(1))
            .bind(q.id.map(|id| id.hyphenated()))
            .fetch_all(&self.pool)
            .await?;
        EventPage::from_rows(&rows, limit, StoreRow::event)
    }

    /// The newest event's cursor, or the retention floor when retention has
    /// deleted every event (so a reset hands out a cursor that is not expired).
    pub async fn head(&self) -> Result<Cursor> {
        let row = sqlx::query("SELECT tx_id, position FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        let newest = row.map(|r| r.cursor()).transpose()?.unwrap_or(Cursor::ZERO);
        Ok(newest.max(self.retention_floor().await?.unwrap_or(Cursor::ZERO)))
    }

    pub async fn tenant_head(&self, tenant_id: &str) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT tx_id, position FROM events WHERE tenant_id = ?1 ORDER BY position DESC LIMIT 1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.cursor()).transpose()
    }

    pub async fn retention_floor(&self) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT tx_id, position FROM retention").fetch_optional(&self.pool).await?;
        row.map(|r| r.cursor()).transpose()
    }

    /// One writer: every committed event is readable at once.
    pub async fn oldest_held_back(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }
}

/// The position `cursor` stands at: the one after which a read starts, or
/// the last one a read bounded by it may return. A cursor of another
/// transaction id (from no SQLite store) still compares as a cursor: below 1
/// is before every event, above 1 after every event.
pub(super) fn position_of(cursor: Cursor) -> i64 {
    match cursor.tx_id.cmp(&TX_ID) {
        Ordering::Less => 0,
        Ordering::Equal => cursor.position,
        Ordering::Greater => i64::MAX,
    }
}

/// SQLite has no types of its own for these: ids are hyphenated text,
/// times unix milliseconds, lists JSON arrays.
impl StoreRow for SqliteRow {
    fn uuid(&self, column: &'static str) -> Result<Uuid> {
        Ok(self.try_get::<Hyphenated, _>(column)?.into_uuid())
    }

    fn time(&self, column: &'static str) -> Result<DateTime<Utc>> {
        let millis: i64 = self.try_get(column)?;
        DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("{column} {millis} is out of range")))
    }

    fn strings(&self, column: &'static str) -> Result<Option<Vec<String>>> {
        Ok(self.try_get::<Option<Json<Vec<String>>>, _>(column)?.map(|list| list.0))
    }
}
