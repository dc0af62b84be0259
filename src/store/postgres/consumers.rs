//! Consumer cursors on PostgreSQL: saved and loaded per user, and the
//! tenant's stored consumers with how far behind each is.

use std::sync::LazyLock;

use sqlx::Row;

use super::{HORIZON, PgStore};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::store::rows::StoreRow;
use crate::store::{BEHIND_CAP, ConsumerKey, ConsumerLag};

impl PgStore {
    pub async fn save_cursor(&self, key: ConsumerKey<'_>, cursor: Cursor) -> Result<()> {
        sqlx::query(
            "INSERT INTO eventfeed.consumers (tenant_id, user_id, consumer, tx_id, position) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, user_id, consumer) \
             DO UPDATE SET tx_id = $4, position = $5, updated_at = now()",
        )
        .bind(key.tenant_id)
        .bind(key.user_id)
        .bind(key.consumer.as_str())
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
        .bind(key.consumer.as_str())
        .fetch_optional(&self.main())
        .await?;
        row.as_ref().map(StoreRow::cursor).transpose()
    }

    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerLag>> {
        if self.replicas.is_some()
            && let Some(lags) = self.consumers_counted_on_replica(tenant_id).await?
        {
            return Ok(lags);
        }
        // Counts only what a reader could be sent (below the horizon), and at
        // most the cap plus one per consumer, in the tenant's cursor index.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT c.consumer, c.user_id, c.tx_id, c.position, c.updated_at, \
                   (SELECT count(*) FROM (SELECT 1 FROM eventfeed.events e \
                      WHERE e.tenant_id = $1 AND (e.tx_id, e.position) > (c.tx_id, c.position) \
                        AND e.tx_id < {HORIZON} LIMIT $2) AS waiting) AS behind \
                 FROM eventfeed.consumers c WHERE c.tenant_id = $1 ORDER BY c.user_id, c.consumer"
            )
        });
        let rows = sqlx::query(SQL.as_str()).bind(tenant_id).bind(BEHIND_CAP + 1).fetch_all(&self.reads()).await?;
        rows.iter().map(|r| r.consumer(r.try_get("behind")?)).collect()
    }

    /// The consumers as the primary has them (acks are written there), with
    /// `behind` counted on a replica; `None` when no replica could count.
    async fn consumers_counted_on_replica(&self, tenant_id: &str) -> Result<Option<Vec<ConsumerLag>>> {
        let rows = sqlx::query(
            "SELECT consumer, user_id, tx_id, position, updated_at FROM eventfeed.consumers \
             WHERE tenant_id = $1 ORDER BY user_id, consumer",
        )
        .bind(tenant_id)
        .fetch_all(&self.main())
        .await?;
        if rows.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let cursors = rows.iter().map(StoreRow::cursor).collect::<Result<Vec<_>>>()?;
        let Some(behind) = self.behind_from_replica(tenant_id, &cursors, BEHIND_CAP + 1).await else {
            return Ok(None);
        };
        rows.iter().zip(behind).map(|(r, behind)| r.consumer(behind)).collect::<Result<_>>().map(Some)
    }
}
