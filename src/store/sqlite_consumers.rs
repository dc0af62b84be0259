//! The tenant's stored consumers and how far behind each is, in the embedded store.

use chrono::DateTime;
use sqlx::Row;

use super::{SqliteStore, after_position, cursor_from_row};
use crate::error::{Error, Result};
use crate::store::{BEHIND_CAP, ConsumerLag};

impl SqliteStore {
    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerLag>> {
        // One read transaction: every count sees the same events.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT consumer, user_id, tx_id, position, updated_at FROM consumers \
             WHERE tenant_id = ?1 ORDER BY user_id, consumer",
        )
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let cursor = cursor_from_row(row)?;
            let behind: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE tenant_id = ?1 AND position > ?2 LIMIT ?3)",
            )
            .bind(tenant_id)
            .bind(after_position(cursor))
            .bind(BEHIND_CAP + 1)
            .fetch_one(&mut *tx)
            .await?;
            let millis: i64 = row.try_get("updated_at")?;
            let updated_at = DateTime::from_timestamp_millis(millis)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("updated_at {millis} is out of range")))?;
            out.push(ConsumerLag {
                consumer: row.try_get("consumer")?,
                user_id: row.try_get("user_id")?,
                cursor,
                updated_at,
                behind,
            });
        }
        Ok(out)
    }
}
