//! The PostgreSQL store's type counts (migration 0007): triggers insert rows
//! of changes; reads add them to the folded counts, and `fold` moves them
//! into those counts a bounded chunk at a time.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PgStore;
use crate::error::Result;
use crate::store::{TYPE_COUNT_FOLD_CHUNK, TypeCount};

impl PgStore {
    pub async fn type_counts(&self, tenant_id: &str) -> Result<Vec<TypeCount>> {
        let rows = sqlx::query(
            "SELECT type, sum(events)::bigint AS events, max(last_at) AS last_at FROM ( \
                 SELECT type, events, last_at FROM eventfeed.type_counts WHERE tenant_id = $1 \
                 UNION ALL \
                 SELECT type, events, last_at FROM eventfeed.type_count_changes WHERE tenant_id = $1) c \
             GROUP BY type ORDER BY type",
        )
        .bind(tenant_id)
        .fetch_all(&self.main())
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("events")?;
                let last_at: Option<DateTime<Utc>> = row.try_get("last_at")?;
                Ok(TypeCount { event_type: row.try_get("type")?, count, last_at: last_at.filter(|_| count > 0) })
            })
            .collect()
    }

    /// One statement, so the changes it deletes and the counts it adds them
    /// to commit together. Changes of transactions still open are not
    /// visible yet and wait for a later fold; two nodes folding at once take
    /// disjoint rows (the second skips rows the first deleted), and add them
    /// in one order, so they cannot deadlock.
    pub async fn fold_type_counts(&self) -> Result<u64> {
        let folded: i64 = sqlx::query_scalar(
            "WITH taken AS ( \
                 DELETE FROM eventfeed.type_count_changes WHERE ctid = ANY (ARRAY( \
                     SELECT ctid FROM eventfeed.type_count_changes LIMIT $1)) \
                 RETURNING tenant_id, type, events, last_at), \
             added AS ( \
                 INSERT INTO eventfeed.type_counts AS t (tenant_id, type, events, last_at) \
                 SELECT tenant_id, type, sum(events), max(last_at) FROM taken \
                 GROUP BY tenant_id, type ORDER BY tenant_id, type \
                 ON CONFLICT (tenant_id, type) DO UPDATE \
                 SET events = t.events + excluded.events, last_at = greatest(t.last_at, excluded.last_at)) \
             SELECT count(*) FROM taken",
        )
        .bind(TYPE_COUNT_FOLD_CHUNK)
        .fetch_one(&self.main())
        .await?;
        Ok(folded as u64)
    }
}
