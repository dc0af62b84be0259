//! The replicas' probe: every second, whether each replica answers, is a
//! streaming replica of this very primary, and how far behind it is. A
//! change in whether a replica is used is logged once, with the reason.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio::time::Instant;

use super::replicas::{Health, Replica, Replicas};

/// How often each replica is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The longest one probe may take.
const PROBE_BOUND: Duration = Duration::from_secs(2);

/// What one probe of a replica found.
struct Seen {
    recovery: bool,
    /// Whether it has replayed everything the primary had written when the probe began.
    caught_up: bool,
    /// Since its last replayed commit was made on the primary.
    replay_age: Option<f64>,
    horizon: i64,
    system: Option<i64>,
    database: String,
}

/// What a replica must share with the primary: the cluster (its system
/// identifier, when the role may read it) and the database.
#[derive(Clone, Debug)]
struct Identity {
    system: Option<i64>,
    database: String,
}

impl Replicas {
    /// Probes every replica once, naming in a warning each one that cannot
    /// be used, then again every second until the store closes.
    pub async fn start(self: &Arc<Self>, primary: PgPool) {
        let database = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&primary).await;
        let primary_is = Identity { system: system_id(&primary).await, database: database.unwrap_or_default() };
        self.probe_all(&primary, &primary_is).await;
        let me = self.clone();
        tokio::spawn(async move {
            let stop = me.stop.clone();
            stop.run_until_cancelled(async {
                loop {
                    tokio::time::sleep(PROBE_EVERY).await;
                    me.probe_all(&primary, &primary_is).await;
                }
            })
            .await
        });
    }

    async fn probe_all(&self, primary: &PgPool, primary_is: &Identity) {
        // Taken before the replicas are asked: a replica that has replayed
        // this far held everything the primary had at this moment.
        let lsn: Option<String> = tokio::time::timeout(
            PROBE_BOUND,
            sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(primary),
        )
        .await
        .ok()
        .and_then(Result::ok);
        let probes = self.list.iter().map(|replica| probe(replica, lsn.as_deref(), primary_is, self.max_lag));
        futures::future::join_all(probes).await;
    }
}

async fn probe(replica: &Replica, primary_lsn: Option<&str>, primary_is: &Identity, max_lag: Duration) {
    let seen = tokio::time::timeout(PROBE_BOUND, look(&replica.pool(), primary_lsn)).await;
    let now = Instant::now();
    let mut h = replica.health();
    let reason = match seen {
        Ok(Ok(seen)) => judge(&mut h, &seen, primary_lsn.is_some(), primary_is, max_lag, now),
        failed => {
            h.up = false;
            match failed {
                Ok(Err(e)) => Some(format!("it cannot be reached ({})", crate::error::describe(&e))),
                _ => Some("it does not answer".to_owned()),
            }
        }
    };
    let label = replica.label.as_str();
    metrics::gauge!("eventfeed_replica_up", "replica" => label.to_owned()).set(if h.up { 1.0 } else { 0.0 });
    if let Some(lag) = h.lag {
        metrics::gauge!("eventfeed_replica_lag_seconds", "replica" => label.to_owned()).set(lag.as_secs_f64());
    }
    if reason != h.reason {
        match &reason {
            Some(why) if h.refused => tracing::error!(replica = label, "replica refused: {why}"),
            Some(why) => tracing::warn!(replica = label, "replica skipped: {why}; its reads go to the primary"),
            None => tracing::info!(replica = label, "replica serves reads"),
        }
        h.reason = reason;
    }
    if !h.up {
        h.lag = None;
    }
}

/// Takes a probe's findings; returns why the replica is not used, if it is not.
fn judge(
    h: &mut Health,
    seen: &Seen,
    primary_known: bool,
    primary_is: &Identity,
    max_lag: Duration,
    now: Instant,
) -> Option<String> {
    if let (Some(theirs), Some(ours)) = (seen.system, primary_is.system)
        && theirs != ours
    {
        h.refused = true;
        h.up = false;
        return Some(format!(
            "it is a replica of another database (system identifier {theirs}; the primary's is {ours})"
        ));
    }
    if seen.database != primary_is.database {
        h.refused = true;
        h.up = false;
        return Some(format!("it serves database {:?}, not the primary's {:?}", seen.database, primary_is.database));
    }
    if !seen.recovery {
        h.up = false;
        return Some("it is not a streaming replica (it is not in recovery)".to_owned());
    }
    h.up = true;
    h.horizon = seen.horizon;
    if seen.caught_up {
        h.caught_up_at = Some(now);
    }
    if primary_known {
        // Each is a bound on how old the newest thing it misses can be.
        let since_caught_up = h.caught_up_at.map(|at| now - at);
        let since_replayed = seen.replay_age.map(|s| Duration::from_secs_f64(s.max(0.0)));
        h.lag = match (since_caught_up, since_replayed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    match h.lag {
        Some(lag) if lag <= max_lag => None,
        Some(lag) => Some(format!("it is {:.1}s behind the primary, more than {max_lag:?}", lag.as_secs_f64())),
        None => Some("how far behind the primary it is is not known yet".to_owned()),
    }
}

async fn look(pool: &PgPool, primary_lsn: Option<&str>) -> Result<Seen, sqlx::Error> {
    let row = sqlx::query(
        "SELECT pg_is_in_recovery() AS recovery, \
           coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up, \
           extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age, \
           pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon, \
           current_database()::text AS database",
    )
    .bind(primary_lsn)
    .fetch_one(pool)
    .await?;
    Ok(Seen {
        recovery: row.try_get("recovery")?,
        caught_up: row.try_get("caught_up")?,
        replay_age: row.try_get("replay_age")?,
        horizon: row.try_get("horizon")?,
        system: system_id(pool).await,
        database: row.try_get("database")?,
    })
}

/// The cluster's system identifier, shared by a primary and its streaming
/// replicas; `None` where the role may not read it.
async fn system_id(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT system_identifier FROM pg_control_system()").fetch_one(pool).await.ok()
}
