//! Consumer cursors in the embedded store: saved and loaded per user, and
//! the tenant's stored consumers with how far behind each is.

use chrono::Utc;

use super::SqliteStore;
use super::read::position_of;
use crate::cursor::Cursor;
use crate::error::Result;
use crate::store::rows::StoreRow;
use crate::store::{BEHIND_CAP, ConsumerKey, ConsumerLag};

impl SqliteStore {
    pub async fn save_cursor(&self, key: ConsumerKey<'_>, cursor: Cursor) -> Result<()> {
        sqlx::query(
            "INSERT INTO consumers (tenant_id, user_id, consumer, tx_id, position, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant_id, user_id, consumer) DO UPDATE SET \
             tx_id = excluded.tx_id, position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(key.tenant_id)
        .bind(key.user_id)
        .bind(key.consumer.as_str())
        .bind(cursor.tx_id)
        .bind(cursor.position)
        .bind(Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn load_cursor(&self, key: ConsumerKey<'_>) -> Result<Option<Cursor>> {
        let row = sqlx::query(
            "SELECT tx_id, position FROM consumers WHERE tenant_id = ?1 AND user_id = ?2 AND consumer = ?3",
        )
        .bind(key.tenant_id)
        .bind(key.user_id)
        .bind(key.consumer.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.cursor()).transpose()
    }

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
            let cursor = row.cursor()?;
            let behind: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE tenant_id = ?1 AND position > ?2 LIMIT ?3)",
            )
            .bind(tenant_id)
            .bind(position_of(cursor))
            .bind(BEHIND_CAP + 1)
            .fetch_one(&mut *tx)
            .await?;
            out.push(row.consumer(behind)?);
        }
        Ok(out)
    }
}
