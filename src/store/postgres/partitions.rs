//! The events table's partitions by time on PostgreSQL: created ahead of
//! need (at start, then every hour), and dropped whole by retention. The
//! SQL that does it is in sql/api.sql (`ensure_partitions`,
//! `drop_expired_partitions`); the table became partitioned in migration 0007.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::PgStore;
use super::pools::Pools;
use crate::config::PartitionStep;
use crate::error::Result;

/// How often the partitions ahead are checked.
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);
/// The next try after a failed one (a lock that was not granted in time).
const UPKEEP_RETRY: Duration = Duration::from_secs(60);

/// Creates the partitions missing up to two steps ahead; returns how many.
pub(super) async fn ensure(pools: &Pools, step: PartitionStep) -> Result<i32> {
    let made = sqlx::query_scalar("SELECT eventfeed.ensure_partitions($1)")
        .bind(step.as_str())
        .fetch_one(&pools.current().main)
        .await?;
    Ok(made)
}

/// Keeps partitions ahead of need until `stop`.
pub(super) fn upkeep(pools: Arc<Pools>, step: PartitionStep, stop: CancellationToken) {
    tokio::spawn(async move {
        let cancelled = stop.clone();
        cancelled
            .run_until_cancelled(async move {
                let mut wait = UPKEEP_EVERY;
                loop {
                    tokio::time::sleep(wait).await;
                    wait = match ensure(&pools, step).await {
                        Ok(made) => {
                            if made > 0 {
                                tracing::info!(made, step = step.as_str(), "created event partitions ahead");
                            }
                            UPKEEP_EVERY
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot create event partitions ahead; retrying in a minute");
                            UPKEEP_RETRY
                        }
                    };
                }
            })
            .await
    });
}

impl PgStore {
    /// Drops every partition whose events are all older than `before`;
    /// returns how many events they held. Never deletes row by row.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        let dropped: i64 = sqlx::query_scalar("SELECT eventfeed.drop_expired_partitions($1)")
            .bind(before)
            .fetch_one(&self.main())
            .await?;
        Ok(dropped as u64)
    }
}
