//! The PostgreSQL store: the production store, shared by every process.
//!
//! Reads only see rows below the snapshot horizon (`tx_id` lower than every
//! transaction still open), so a reader never passes an event that commits
//! later (DESIGN.md point 2).

use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[path = "pg_append.rs"]
mod append;
#[path = "pg_consumers.rs"]
mod consumers;

use super::pools::{self, PoolSet, Pools};
use super::{AuditQuery, ConsumerKey, Doorbell, FeedQuery, Page};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::{Actor, Audience, Event};

/// The notification channel rung by the events trigger.
pub const CHANNEL: &str = "eventfeed";
/// Names the LISTEN connection in pg_stat_activity.
pub const LISTENER_APP_NAME: &str = "eventfeed-listener";

const COLUMNS: &str = "position, tx_id, id, tenant_id, stream, version, type, data, \
                       actor_id, actor_name, audience, metadata, created_at";
/// Every transaction below this id has finished.
const HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)";
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
        types = type_match(7, 8)
    )
});

#[derive(Clone)]
pub struct PgStore {
    /// The main and the cursor-range pools, replaced together when a call
    /// does not answer (see [`pools`](super::pools)).
    pools: Arc<Pools>,
    options: Arc<PgConnectOptions>,
}

impl PgStore {
    /// Waits for the database, then runs the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "DATABASE_URL must be a postgres:// URL (unset it to use the embedded store)"
        );
        let options = PgConnectOptions::from_str(url)
            .context("DATABASE_URL is not a valid postgres:// URL")?
            .application_name("eventfeed");
        pools::wait_for_database(&options).await?;
        // A cursor-range read takes the first page after the cursor in index
        // order. Until the events table is first analyzed (up to a minute of
        // autovacuum after a bulk load) the planner guesses a handful of rows
        // and picks a bitmap scan that sorts everything after the cursor: 55 ms
        // a page at 90,000 events behind, so replays slowed quadratically. The
        // index scan is right at any size, so these reads run with bitmap scans
        // off, on connections of their own: appends need bitmap scans.
        let pools = Arc::new(Pools::new(options.clone()));
        sqlx::migrate!("./migrations/postgres")
            .run(&pools.current().main)
            .await
            .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
        append::install_api(&pools.current().main).await.context("installing the SQL API (sql/api.sql) failed")?;
        Ok(PgStore { pools, options: Arc::new(options) })
    }

    fn main(&self) -> PgPool {
        self.pools.current().main.clone()
    }

    fn reads(&self) -> PgPool {
        self.pools.current().reads.clone()
    }

    /// The pools in use now; hand them back to [`PgStore::recycle`] when a
    /// call on them did not answer.
    pub fn pool_set(&self) -> Arc<PoolSet> {
        self.pools.current()
    }

    /// Replaces the pools a call did not answer on (once, however many calls saw it).
    pub fn recycle(&self, stale: &Arc<PoolSet>) {
        self.pools.replace(stale);
    }

    /// Where the Socket.IO adapter connects (it keeps connections of its own).
    pub fn adapter_options(&self) -> PgConnectOptions {
        (*self.options).clone().application_name("eventfeed-adapter")
    }

    pub async fn read_feed(&self, q: &FeedQuery<'_>) -> Result<Page> {
        let until = q.until.unwrap_or(Cursor::new(i64::MAX, i64::MAX));
        let rows = sqlx::query(READ_FEED.as_str())
            .bind(q.tenant_id)
            .bind(q.after.tx_id)
            .bind(q.after.position)
            .bind(until.tx_id)
            .bind(until.position)
            .bind(q.user_id)
            .bind(q.types.exact())
            .bind(q.types.prefixes())
            .bind(q.limit + 1)
            .fetch_all(&self.reads())
            .await?;
        Page::from_rows(&rows, q.limit, event_from_row)
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
            .fetch_all(&self.reads())
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub async fn read_stream(
        &self,
        tenant_id: &str,
        user_id: &str,
        stream: &str,
        from_version: i64,
        limit: i64,
    ) -> Result<Page> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM eventfeed.events \
                 WHERE tenant_id = $1 AND stream = $2 AND version >= $3 \
                   AND (audience IS NULL OR $4 = ANY(audience)) \
                 ORDER BY version LIMIT $5"
            )
        });
        let rows = sqlx::query(SQL.as_str())
            .bind(tenant_id)
            .bind(stream)
            .bind(from_version)
            .bind(user_id)
            .bind(limit + 1)
            .fetch_all(&self.main())
            .await?;
        Page::from_rows(&rows, limit, event_from_row)
    }

    pub async fn audit(&self, tenant_id: &str, q: &AuditQuery) -> Result<Page> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM eventfeed.events \
                 WHERE tenant_id = $1 AND (tx_id, position) > ($2, $3) AND tx_id < {HORIZON} \
                   AND {types} \
                   AND ($6::text IS NULL OR stream = $6) \
                   AND ($7::text IS NULL OR actor_id = $7) \
                   AND ($8::timestamptz IS NULL OR created_at >= $8) \
                   AND ($9::timestamptz IS NULL OR created_at < $9) \
                 ORDER BY tx_id, position LIMIT $10",
                types = type_match(4, 5)
            )
        });
        let rows = sqlx::query(SQL.as_str())
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
            .fetch_all(&self.reads())
            .await?;
        Page::from_rows(&rows, q.limit, event_from_row)
    }

    pub async fn save_cursor(&self, key: ConsumerKey<'_>, cursor: Cursor) -> Result<()> {
        sqlx::query(
            "INSERT INTO eventfeed.consumers (tenant_id, user_id, consumer, tx_id, position) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, user_id, consumer) \
             DO UPDATE SET tx_id = $4, position = $5, updated_at = now()",
        )
        .bind(key.tenant_id)
        .bind(key.user_id)
        .bind(key.consumer)
        .bind(cursor.tx_id)
        .bind(cursor.position)
        .execute(&self.main())
        .await?;
        Ok(())
    }

    pub async fn load_cursor(&self, key: ConsumerKey<'_>) -> Result<Option<Cursor>> {
        let row = sqlx::query(
            "SELECT tx_id, position FROM eventfeed.consumers \
             WHERE tenant_id = $1 AND user_id = $2 AND consumer = $3",
        )
        .bind(key.tenant_id)
        .bind(key.user_id)
        .bind(key.consumer)
        .fetch_optional(&self.main())
        .await?;
        row.as_ref().map(cursor_from_row).transpose()
    }

    pub async fn head(&self) -> Result<Cursor> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT tx_id, position FROM eventfeed.events WHERE tx_id < {HORIZON} \
                 ORDER BY tx_id DESC, position DESC LIMIT 1"
            )
        });
        match sqlx::query(SQL.as_str()).fetch_optional(&self.main()).await? {
            Some(r) => cursor_from_row(&r),
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
        row.as_ref().map(cursor_from_row).transpose()
    }

    pub async fn retention_floor(&self) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT tx_id, position FROM eventfeed.retention").fetch_optional(&self.main()).await?;
        row.as_ref().map(cursor_from_row).transpose()
    }

    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        // Deletes a prefix of the cursor order (below the horizon), so the
        // floor is one cursor and every reader behind it is told to reset.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH doomed AS ( \
                 SELECT tx_id, position FROM eventfeed.events \
                 WHERE created_at < $1 AND tx_id < {HORIZON} \
                 ORDER BY tx_id, position LIMIT 10000), \
             floor AS (SELECT tx_id, position FROM doomed ORDER BY tx_id DESC, position DESC LIMIT 1), \
             gone AS ( \
                 DELETE FROM eventfeed.events e USING floor \
                 WHERE (e.tx_id, e.position) <= (floor.tx_id, floor.position) RETURNING 1), \
             saved AS ( \
                 INSERT INTO eventfeed.retention (tx_id, position) SELECT tx_id, position FROM floor \
                 ON CONFLICT (only_row) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position) \
             SELECT count(*) FROM gone"
            )
        });
        let deleted: i64 = sqlx::query_scalar(SQL.as_str()).bind(before).fetch_one(&self.main()).await?;
        Ok(deleted as u64)
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

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.main()).await?;
        Ok(())
    }

    /// A LISTEN connection of its own, never inside a transaction.
    pub async fn doorbell(&self) -> Result<Doorbell> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*self.options).clone().application_name(LISTENER_APP_NAME));
        let mut listener = PgListener::connect_with(&pool).await?;
        // The tailer reconnects itself (and then reads from its cursor): a lost
        // connection must not also be replaced behind its back, only to be dropped.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Doorbell::Postgres(listener))
    }

    pub async fn close(&self) {
        self.pools.close().await;
    }
}

/// The type filter's SQL, with its two array parameters at `$e` and `$p`.
fn type_match(e: usize, p: usize) -> String {
    TYPE_MATCH.replace("$E", &format!("${e}")).replace("$P", &format!("${p}"))
}

fn cursor_from_row(row: &PgRow) -> Result<Cursor> {
    Ok(Cursor::new(row.try_get("tx_id")?, row.try_get("position")?))
}

fn event_from_row(row: &PgRow) -> Result<Event> {
    let actor_id: Option<String> = row.try_get("actor_id")?;
    let actor_name: Option<String> = row.try_get("actor_name")?;
    let audience: Option<Vec<String>> = row.try_get("audience")?;
    Ok(Event {
        id: row.try_get::<Uuid, _>("id")?,
        cursor: cursor_from_row(row)?,
        tenant_id: row.try_get("tenant_id")?,
        stream: row.try_get("stream")?,
        version: row.try_get("version")?,
        event_type: row.try_get("type")?,
        data: row.try_get::<Json<Value>, _>("data")?.0,
        actor: actor_id.map(|user_id| Actor { user_id, username: actor_name }),
        audience: audience.map(|users| Audience { users }),
        metadata: row.try_get::<Option<Json<Value>>, _>("metadata")?.map(|j| j.0),
        timestamp: row.try_get("created_at")?,
    })
}
