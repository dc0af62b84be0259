//! Reads of history on a replica: the feed, audit pages, stream reads and
//! consumers' `behind`, each kept only when the replica held everything the
//! read needs (see `replicas.rs`), else left to the primary.
//!
//! Each query is the primary's own, wrapped so that it also returns the
//! horizon of the snapshot it ran under, in one statement.

use std::sync::LazyLock;

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::read::{AUDIT, READ_FEED, READ_STREAM, bind_audit, bind_feed, bind_stream};
use super::replicas::{Answer, HORIZON_ROW};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::store::rows::StoreRow;
use crate::store::{AuditQuery, EventPage, FeedQuery, StreamQuery};

/// `sql`'s rows, each beside the horizon of the statement's snapshot; one
/// row of NULLs beside it when `sql` finds none.
fn with_horizon(sql: &str, order: &str) -> String {
    format!("SELECT h.horizon, q.* FROM {HORIZON_ROW} h LEFT JOIN LATERAL ({sql}) q ON true ORDER BY {order}")
}

static FEED: LazyLock<String> = LazyLock::new(|| with_horizon(&READ_FEED, "q.tx_id, q.position"));
static AUDIT_PAGE: LazyLock<String> = LazyLock::new(|| with_horizon(&AUDIT, "q.tx_id, q.position"));
/// The stream's events beside the stream's version as this replica holds it.
static STREAM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT coalesce(s.version, 0) AS stream_version, h.horizon, q.* FROM {HORIZON_ROW} h \
         LEFT JOIN eventfeed.streams s ON s.tenant_id = $1 AND s.stream = $2 \
         LEFT JOIN LATERAL ({READ_STREAM}) q ON true ORDER BY q.version",
        READ_STREAM = READ_STREAM.as_str()
    )
});

/// A cursor page from rows of a `with_horizon` query: exact when it is full
/// (every row of it is below the horizon, where the replica holds what the
/// primary holds) or when the replica is past `need`.
fn cursor_page(rows: &[PgRow], limit: i64, need: Cursor) -> Result<(Answer<EventPage>, i64)> {
    let horizon = horizon(rows)?;
    let page = EventPage::from_rows(&found(rows)?, limit, |r| r.event())?;
    let exact = page.has_more || horizon > need.tx_id;
    Ok((if exact { Answer::Exact(page) } else { Answer::Behind }, horizon))
}

fn horizon(rows: &[PgRow]) -> Result<i64> {
    Ok(rows.first().map(|r| r.try_get("horizon")).transpose()?.unwrap_or(0))
}

/// The rows that hold an event (not the one row of NULLs of an empty answer).
fn found(rows: &[PgRow]) -> Result<Vec<&PgRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if row.try_get::<Option<i64>, _>("position")?.is_some() {
            out.push(row);
        }
    }
    Ok(out)
}

impl PgStore {
    /// A feed page from a replica. A replay needs everything up to its
    /// hand-over point; a read that follows the feed (a poll, a long-poll or
    /// SSE woken by a new event) needs everything this process has read from
    /// the primary, the waking event included.
    pub(super) async fn feed_from_replica(&self, q: &FeedQuery<'_>) -> Option<EventPage> {
        let replicas = self.replicas.as_ref()?;
        let need = q.until.unwrap_or_else(|| replicas.known()).max(q.after);
        replicas
            .read("feed", q.after, |pool| async move {
                let rows = bind_feed(FEED.as_str(), q).fetch_all(&pool).await?;
                cursor_page(&rows, q.limit, need)
            })
            .await
    }

    /// An audit page from a replica: it needs everything this process has read.
    pub(super) async fn audit_from_replica(&self, tenant_id: &str, q: &AuditQuery) -> Option<EventPage> {
        let replicas = self.replicas.as_ref()?;
        let need = replicas.known().max(q.after);
        replicas
            .read("audit", q.after, |pool| async move {
                let rows = bind_audit(AUDIT_PAGE.as_str(), tenant_id, q).fetch_all(&pool).await?;
                cursor_page(&rows, q.limit, need)
            })
            .await
    }

    /// A stream read from a replica. Stream reads are not bounded by the
    /// horizon, so the replica must hold the stream's version as the primary
    /// has it now (one key lookup there); versions commit in order, so it
    /// then holds every event up to it. A full page is exact too.
    pub(super) async fn stream_from_replica(&self, q: &StreamQuery<'_>) -> Result<Option<EventPage>> {
        let Some(replicas) = self.replicas.as_ref() else { return Ok(None) };
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM eventfeed.streams WHERE tenant_id = $1 AND stream = $2")
                .bind(q.tenant_id)
                .bind(q.stream)
                .fetch_optional(&self.main())
                .await?;
        let primary = version.unwrap_or(0);
        let page = replicas
            .read("stream", Cursor::ZERO, |pool| async move {
                let rows = bind_stream(STREAM.as_str(), q).fetch_all(&pool).await?;
                let held: i64 = rows.first().map(|r| r.try_get("stream_version")).transpose()?.unwrap_or(0);
                let page = EventPage::from_rows(&found(&rows)?, q.limit, |r| r.event())?;
                let exact = page.has_more || held >= primary;
                Ok((if exact { Answer::Exact(page) } else { Answer::Behind }, horizon(&rows)?))
            })
            .await;
        Ok(page)
    }

    /// How many of the tenant's events follow each cursor (up to `cap + 1`),
    /// counted on a replica that holds everything this process has read and
    /// everything up to the cursors.
    pub(super) async fn behind_from_replica(&self, tenant_id: &str, cursors: &[Cursor], cap: i64) -> Option<Vec<i64>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT h.horizon, c.i, (SELECT count(*) FROM (SELECT 1 FROM eventfeed.events e \
                   WHERE e.tenant_id = $1 AND (e.tx_id, e.position) > (c.tx_id, c.position) \
                     AND e.tx_id < h.horizon LIMIT $2) AS waiting) AS behind \
                 FROM {HORIZON_ROW} h CROSS JOIN unnest($3::bigint[], $4::bigint[]) WITH ORDINALITY AS c (tx_id, position, i) \
                 ORDER BY c.i"
            )
        });
        let replicas = self.replicas.as_ref()?;
        let need = cursors.iter().copied().fold(replicas.known(), Cursor::max);
        let tx: Vec<i64> = cursors.iter().map(|c| c.tx_id).collect();
        let pos: Vec<i64> = cursors.iter().map(|c| c.position).collect();
        let (tx, pos) = (&tx, &pos);
        replicas
            .read("behind", Cursor::ZERO, |pool| async move {
                let rows =
                    sqlx::query(SQL.as_str()).bind(tenant_id).bind(cap).bind(tx).bind(pos).fetch_all(&pool).await?;
                let counts = rows.iter().map(|r| r.try_get("behind")).collect::<std::result::Result<Vec<i64>, _>>()?;
                let h = horizon(&rows)?;
                Ok((if h > need.tx_id { Answer::Exact(counts) } else { Answer::Behind }, h))
            })
            .await
    }
}
