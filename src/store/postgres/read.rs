//! The PostgreSQL store's read path: cursor reads (the feed, the tailer's,
//! audit), stream reads and the heads, each below the snapshot horizon where
//! cursor order matters.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{HORIZON, PgStore};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::Event;
use crate::store::rows::{COLUMNS, StoreRow, type_match};
use crate::store::{AuditQuery, EventPage, FeedQuery, StreamQuery};

/// The type filter: arrays of exact types at `$E` and prefixes at `$P`.
const TYPE_MATCH: &str = "(cardinality($E::text[]) + cardinality($P::text[]) = 0 \
     OR type = ANY($E::text[]) \
     OR EXISTS (SELECT 1 FROM unnest($P::text[]) p WHERE starts_with(type, p)))";

/// The feed's cursor read (`read_feed`): a tenant's events visible to a
/// user after `($2, $3)` up to `($4, $5)`, below the horizon, of the types
/// `$7`/`$8`, at most `$9` rows. Public so the benchmark explains this very query.
pub static READ_FEED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM eventfeed.events \
         WHERE tenant_id = $1 AND (tx_id, position) > ($2, $3) AND (tx_id, position) <= ($4, $5) \
           AND tx_id < {HORIZON} AND (audience IS NULL OR $6 = ANY(audience)) AND {types} \
         ORDER BY tx_id, position LIMIT $9",
        types = type_match(TYPE_MATCH, '$', 7, 8)
    )
});

/// One stream's events visible to a user, from version `$3` on, at most `$5` rows.
pub(super) static READ_STREAM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM eventfeed.events \
         WHERE tenant_id = $1 AND stream = $2 AND version >= $3 \
           AND (audience IS NULL OR $4 = ANY(audience)) \
         ORDER BY version LIMIT $5"
    )
});

/// An audit page: the tenant's events after `($2, $3)` below the horizon, filtered.
/// An audit page, oldest first after the cursor (`AUDIT`, which a replica
/// may answer too) or newest first before it.
fn audit_sql(newer: &str, order: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM eventfeed.events \
         WHERE tenant_id = $1 AND (tx_id, position) {newer} ($2, $3) AND tx_id < {HORIZON} \
           AND {types} \
           AND ($6::text IS NULL OR stream = $6) \
           AND ($7::text IS NULL OR actor_id = $7) \
           AND ($8::timestamptz IS NULL OR created_at >= $8) \
           AND ($9::timestamptz IS NULL OR created_at < $9) \
           AND ($11::uuid IS NULL OR id = $11) \
         ORDER BY tx_id {order}, position {order} LIMIT $10",
        types = type_match(TYPE_MATCH, '$', 4, 5)
    )
}

pub(super) static AUDIT: LazyLock<String> = LazyLock::new(|| audit_sql(">", "ASC"));
static AUDIT_NEWEST_FIRST: LazyLock<String> = LazyLock::new(|| audit_sql("<", "DESC"));

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `READ_FEED`, or a query of its form, with the feed query's values.
pub(super) fn bind_feed<'q>(sql: &'static str, q: &'q FeedQuery<'_>) -> PgQuery<'q> {
    let until = q.until.unwrap_or(Cursor::new(i64::MAX, i64::MAX));
    sqlx::query(sql)
        .bind(q.tenant_id)
        .bind(q.after.tx_id)
        .bind(q.after.position)
        .bind(until.tx_id)
        .bind(until.position)
        .bind(q.user_id)
        .bind(q.types.exact())
        .bind(q.types.prefixes())
        .bind(q.limit + 1)
}

pub(super) fn bind_stream<'q>(sql: &'static str, q: &'q StreamQuery<'_>) -> PgQuery<'q> {
    sqlx::query(sql).bind(q.tenant_id).bind(q.stream).bind(q.from_version).bind(q.user_id).bind(q.limit + 1)
}

pub(super) fn bind_audit<'q>(sql: &'static str, tenant_id: &'q str, q: &'q AuditQuery) -> PgQuery<'q> {
    sqlx::query(sql)
        .bind(tenant_id)
        .bind(q.after.tx_id)
        .bind(q.after.position)
        .bind(q.types.exact())
        .bind(q.types.prefixes())
        .bind(&q.stream)
        .bind(&q.actor)
        .bind(q.from)
        .bind(q.to)
        .bind(q.limit + 1)
        .bind(q.id)
}

impl PgStore {
    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<EventPage> {
        if let Some(page) = self.feed_from_replica(q).await {
            return Ok(page);
        }
        let rows = bind_feed(READ_FEED.as_str(), q).fetch_all(&self.reads()).await?;
        EventPage::from_rows(&rows, q.limit, StoreRow::event)
    }

    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<Event>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM eventfeed.events \
                 WHERE (tx_id, position) > ($1, $2) AND tx_id < {HORIZON} \
                 ORDER BY tx_id, position LIMIT $3"
            )
        });
        let rows = sqlx::query(SQL.as_str())
            .bind(after.tx_id)
            .bind(after.position)
            .bind(limit)
            .fetch_all(&self.pools.current().tail)
            .await?;
        let events: Vec<Event> = rows.iter().map(StoreRow::event).collect::<Result<_>>()?;
        if let (Some(replicas), Some(last)) = (&self.replicas, events.last()) {
            replicas.saw(last.cursor);
        }
        Ok(events)
    }

    pub async fn read_stream(&self, q: &StreamQuery<'_>) -> Result<EventPage> {
        if let Some(page) = self.stream_from_replica(q).await? {
            return Ok(page);
        }
        let rows = bind_stream(READ_STREAM.as_str(), q).fetch_all(&self.main()).await?;
        EventPage::from_rows(&rows, q.limit, StoreRow::event)
    }

    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<EventPage> {
        // Newest first starts from the newest event, which a replica behind
        // the primary may not hold: the primary answers those pages.
        if !q.newest_first
            && let Some(page) = self.audit_from_replica(tenant_id, q).await
        {
            return Ok(page);
        }
        let sql = if q.newest_first { &AUDIT_NEWEST_FIRST } else { &AUDIT };
        let rows = bind_audit(sql.as_str(), tenant_id, q).fetch_all(&self.reads()).await?;
        EventPage::from_rows(&rows, q.limit, StoreRow::event)
    }

    pub async fn head(&self) -> Result<Cursor> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT tx_id, position FROM eventfeed.events WHERE tx_id < {HORIZON} \
                 ORDER BY tx_id DESC, position DESC LIMIT 1"
            )
        });
        match sqlx::query(SQL.as_str()).fetch_optional(&self.main()).await? {
            Some(r) => {
                let head = r.cursor()?;
                if let Some(replicas) = &self.replicas {
                    replicas.saw(head);
                }
                Ok(head)
            }
            None => Ok(self.retention_floor().await?.unwrap_or(Cursor::ZERO)),
        }
    }

    pub async fn tenant_head(&self, tenant_id: &str) -> Result<Option<Cursor>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT tx_id, position FROM eventfeed.events WHERE tenant_id = $1 AND tx_id < {HORIZON} \
                 ORDER BY tx_id DESC, position DESC LIMIT 1"
            )
        });
        let row = sqlx::query(SQL.as_str()).bind(tenant_id).fetch_optional(&self.reads()).await?;
        row.as_ref().map(StoreRow::cursor).transpose()
    }

    pub async fn retention_floor(&self) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT tx_id, position FROM eventfeed.retention").fetch_optional(&self.main()).await?;
        row.as_ref().map(StoreRow::cursor).transpose()
    }

    pub async fn oldest_held_back(&self) -> Result<Option<DateTime<Utc>>> {
        // In index order with LIMIT 1: the horizon is unknown to the planner,
        // and a count over `tx_id >= horizon` was planned as a table scan.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT created_at FROM eventfeed.events WHERE tx_id >= {HORIZON} \
                 ORDER BY tx_id, position LIMIT 1"
            )
        });
        Ok(sqlx::query_scalar(SQL.as_str()).fetch_optional(&self.main()).await?)
    }
}

/// PostgreSQL keeps each in its own type: `uuid`, `timestamptz`, `text[]`.
impl StoreRow for PgRow {
    fn uuid(&self, column: &'static str) -> Result<Uuid> {
        Ok(self.try_get(column)?)
    }

    fn time(&self, column: &'static str) -> Result<DateTime<Utc>> {
        Ok(self.try_get(column)?)
    }

    fn strings(&self, column: &'static str) -> Result<Option<Vec<String>>> {
        Ok(self.try_get(column)?)
    }
}
