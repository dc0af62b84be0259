//! The tenant's stored consumers and how far behind each is, on PostgreSQL.

use std::sync::LazyLock;

use sqlx::Row;

use super::{HORIZON, PgStore};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::store::{BEHIND_CAP, ConsumerLag};

impl PgStore {
    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerLag>> {
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
        rows.iter()
            .map(|r| {
                Ok(ConsumerLag {
                    consumer: r.try_get("consumer")?,
                    user_id: r.try_get("user_id")?,
                    cursor: Cursor::new(r.try_get("tx_id")?, r.try_get("position")?),
                    updated_at: r.try_get("updated_at")?,
                    behind: r.try_get("behind")?,
                })
            })
            .collect()
    }
}
