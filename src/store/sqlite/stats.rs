//! The stats samples in the embedded file (`GET /api/stats`). One process
//! holds the file, so there is one node; its samples outlive a restart, as
//! on PostgreSQL, until they are 15 minutes old.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::types::uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::SqliteStore;
use crate::error::Result;

impl SqliteStore {
    pub async fn save_samples(&self, node: Uuid, samples: &[(DateTime<Utc>, Value)]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (at, sample) in samples {
            sqlx::query("INSERT INTO node_stats (node, at, sample) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
                .bind(node.hyphenated())
                .bind(at.timestamp_millis())
                .bind(Json(sample))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn load_samples(&self, except: Uuid, since: DateTime<Utc>) -> Result<Vec<(Uuid, Value)>> {
        let rows: Vec<(Hyphenated, Json<Value>)> =
            sqlx::query_as("SELECT node, sample FROM node_stats WHERE node <> ?1 AND at >= ?2 ORDER BY node, at")
                .bind(except.hyphenated())
                .bind(since.timestamp_millis())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(node, Json(sample))| (node.into_uuid(), sample)).collect())
    }

    pub async fn prune_samples(&self, before: DateTime<Utc>) -> Result<()> {
        sqlx::query("DELETE FROM node_stats WHERE at < ?1").bind(before.timestamp_millis()).execute(&self.pool).await?;
        Ok(())
    }
}
