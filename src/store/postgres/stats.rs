//! The nodes' stats samples on PostgreSQL (`GET /api/stats`): one row per
//! node and second, in a table every node writes and reads.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::PgStore;
use crate::error::Result;

impl PgStore {
    pub async fn save_samples(&self, node: Uuid, samples: &[(DateTime<Utc>, Value)]) -> Result<()> {
        let (at, sample): (Vec<_>, Vec<_>) = samples.iter().map(|(at, s)| (*at, Json(s))).unzip();
        sqlx::query(
            "INSERT INTO eventfeed.node_stats (node, at, sample) \
             SELECT $1, * FROM unnest($2::timestamptz[], $3::jsonb[]) ON CONFLICT DO NOTHING",
        )
        .bind(node)
        .bind(at)
        .bind(sample)
        .execute(&self.main())
        .await?;
        Ok(())
    }

    pub async fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> Result<Vec<(Uuid, Value)>> {
        let rows: Vec<(Uuid, Json<Value>)> = sqlx::query_as(
            "SELECT node, sample FROM eventfeed.node_stats WHERE node <> $1 AND at >= $2 ORDER BY node, at",
        )
        .bind(except)
        .bind(since)
        .fetch_all(&self.main())
        .await?;
        Ok(rows.into_iter().map(|(node, Json(sample))| (node, sample)).collect())
    }

    pub async fn prune_samples(&self, before: DateTime<Utc>) -> Result<()> {
        sqlx::query("DELETE FROM eventfeed.node_stats WHERE at < $1").bind(before).execute(&self.main()).await?;
        Ok(())
    }
}
