//! The embedded store's type counts (migration 0002): its triggers keep
//! them in place, so there is nothing to fold.

use chrono::DateTime;
use sqlx::Row;

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::store::TypeCount;

impl SqliteStore {
    pub async fn type_counts(&self, tenant_id: &str) -> Result<Vec<TypeCount>> {
        let rows = sqlx::query("SELECT type, events, last_at FROM type_counts WHERE tenant_id = ?1 ORDER BY type")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get("events")?;
                let millis: Option<i64> = row.try_get("last_at")?;
                let last_at = match millis.filter(|_| count > 0) {
                    Some(ms) => Some(
                        DateTime::from_timestamp_millis(ms)
                            .ok_or_else(|| Error::internal(anyhow::anyhow!("last_at {ms} is out of range")))?,
                    ),
                    None => None,
                };
                Ok(TypeCount { event_type: row.try_get("type")?, count, last_at })
            })
            .collect()
    }

    pub async fn fold_type_counts(&self) -> Result<u64> {
        Ok(0)
    }
}
