//! Streaming replicas that serve reads of history in the primary's place.
//!
//! A replica may answer only what it already holds. Its snapshot horizon
//! never passes the primary's, and every transaction below it has finished
//! there as it did on the primary, so a cursor read below a replica's
//! horizon is as gap-free as one on the primary. A read needs the replica to
//! hold everything up to a cursor (the client's, the replay's hand-over
//! point, or the newest event this process has delivered); each read runs
//! with its own snapshot's horizon, and the answer is kept only when that
//! horizon is past the cursor the read needs, or the page is full (a full
//! page below the horizon is the primary's page too). Otherwise, and when a
//! replica fails, the primary answers: no client sees an error or a cursor
//! going backwards because of a replica.
//!
//! Whether each replica is up and how far behind is probed every second
//! (`replica_probe.rs`); a replica that is down, refuses or lags past the
//! configured bound is not asked until it is back.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::store::ReplicaStatus;

/// The longest a replica may take to answer a read, once it has a
/// connection, before the primary is asked instead.
const REPLICA_BOUND: Duration = Duration::from_secs(2);
/// Reads a replica runs at once: each holds one of its connections.
const READ_SLOTS: usize = 10;
/// How long a read waits for one of those slots. A replay storm (a
/// thousand clients reconnecting after a deploy) queues here, on the
/// replica, rather than spilling onto the primary the replica is there to
/// spare; a busy replica is not a failed one. Past this wait the primary
/// answers.
const SLOT_WAIT: Duration = Duration::from_secs(8);
/// How long a read waits for a connection once it holds a slot (the probe
/// has a connection of its own), and connects if it must.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The SQL of a row that holds the snapshot horizon of the statement it is in.
pub const HORIZON_ROW: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon)";

/// What the last probe found.
#[derive(Debug, Default)]
pub(super) struct Health {
    pub up: bool,
    pub lag: Option<Duration>,
    /// Set once the replica turned out to be of another database: never asked again.
    pub refused: bool,
    /// When the replica was last seen holding everything the primary had.
    pub caught_up_at: Option<Instant>,
    /// Its snapshot horizon at the last read or probe.
    pub horizon: i64,
    /// Why it is not used, as last logged: a change is logged once.
    pub reason: Option<String>,
}

pub struct Replica {
    pub label: String,
    options: PgConnectOptions,
    pool: RwLock<PgPool>,
    pub(super) health: Mutex<Health>,
    reads: AtomicU64,
    slots: Semaphore,
}

impl Replica {
    fn new(url: &str) -> anyhow::Result<Replica> {
        let options = PgConnectOptions::from_str(url)?.application_name("eventfeed-replica-reads");
        let label = format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or(""));
        let pool = RwLock::new(replica_pool(&options));
        let health = Health { reason: Some("not probed yet".to_owned()), ..Health::default() };
        let slots = Semaphore::new(READ_SLOTS);
        Ok(Replica { label, options, pool, health: Mutex::new(health), reads: AtomicU64::new(0), slots })
    }

    pub(super) fn pool(&self) -> PgPool {
        self.pool.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces a pool whose connections may hang (a call on it did not answer).
    fn renew_pool(&self) {
        let old =
            std::mem::replace(&mut *self.pool.write().unwrap_or_else(|e| e.into_inner()), replica_pool(&self.options));
        tokio::spawn(async move { old.close().await });
    }

    pub(super) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn usable(&self, max_lag: Duration) -> bool {
        let h = self.health();
        h.up && !h.refused && h.lag.is_some_and(|lag| lag <= max_lag)
    }

    /// Takes a read's failure: down until the probe finds it answering again.
    fn failed(&self, e: &Error, timed_out: bool) {
        // A connection that cannot be made or is lost; not a statement that
        // failed (a query cancelled by a conflict with recovery, say).
        let down = timed_out || matches!(e, Error::Unavailable(_));
        if timed_out {
            self.renew_pool();
        }
        if down {
            let mut h = self.health();
            if h.up {
                tracing::warn!(replica = %self.label, error = %e, "replica read failed; reading from the primary until it is back");
            }
            h.up = false;
            metrics::gauge!("eventfeed_replica_up", "replica" => self.label.clone()).set(0.0);
        }
    }

    pub fn status(&self) -> ReplicaStatus {
        let h = self.health();
        let up = h.up && !h.refused;
        ReplicaStatus { replica: self.label.clone(), up, lag: h.lag, reads: self.reads.load(Ordering::Relaxed) }
    }
}

fn replica_pool(options: &PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(READ_SLOTS as u32 + 1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Cursor-range reads, as on the primary's read pool: see `PgStore::connect`.
        .connect_lazy_with(options.clone().options([("enable_bitmapscan", "off")]))
}

/// The replicas of one primary, and the newest cursor this process has read
/// from the primary (the reads that follow the feed need at least that).
pub struct Replicas {
    pub(super) list: Vec<Arc<Replica>>,
    pub(super) max_lag: Duration,
    next: AtomicUsize,
    known: Mutex<Cursor>,
    pub(super) stop: CancellationToken,
}

/// What a replica's answer to one read was.
pub enum Answer<T> {
    /// It holds everything the read needs: this is the primary's answer.
    Exact(T),
    /// It is behind what the read needs: ask the primary.
    Behind,
}

impl Replicas {
    pub fn new(urls: &[String], max_lag: Duration) -> anyhow::Result<Replicas> {
        let list = urls.iter().map(|u| Replica::new(u).map(Arc::new)).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Replicas {
            list,
            max_lag,
            next: AtomicUsize::new(0),
            known: Mutex::new(Cursor::ZERO),
            stop: CancellationToken::new(),
        })
    }

    /// Notes a cursor read from the primary's feed.
    pub fn saw(&self, cursor: Cursor) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        *known = (*known).max(cursor);
    }

    /// The newest cursor this process has read from the primary.
    pub fn known(&self) -> Cursor {
        *self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn statuses(&self) -> Vec<ReplicaStatus> {
        self.list.iter().map(|r| r.status()).collect()
    }

    /// Asks the usable replicas in turn, starting with the next in the
    /// rotation, for an exact answer; `None` when none gave one (the caller
    /// then asks the primary). `after` is the read's cursor: a replica known
    /// not to be past it could only answer with nothing, so it is not asked.
    pub async fn read<T, F>(&self, what: &'static str, after: Cursor, attempt: impl Fn(PgPool) -> F) -> Option<T>
    where
        F: Future<Output = Result<(Answer<T>, i64)>>,
    {
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for replica in (0..n).map(|i| &self.list[(start + i) % n]) {
            if !replica.usable(self.max_lag) || replica.health().horizon <= after.tx_id {
                continue;
            }
            let Ok(Ok(_slot)) = tokio::time::timeout(SLOT_WAIT, replica.slots.acquire()).await else {
                fallback("busy");
                continue;
            };
            match tokio::time::timeout(REPLICA_BOUND, attempt(replica.pool())).await {
                Ok(Ok((answer, horizon))) => {
                    replica.health().horizon = horizon;
                    match answer {
                        Answer::Exact(value) => {
                            replica.reads.fetch_add(1, Ordering::Relaxed);
                            let label = replica.label.clone();
                            metrics::counter!("eventfeed_replica_reads_total", "replica" => label, "read" => what)
                                .increment(1);
                            return Some(value);
                        }
                        Answer::Behind => fallback("behind"),
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(replica = %replica.label, error = %e, what, "replica read failed");
                    replica.failed(&e, false);
                    fallback("error");
                }
                Err(_) => {
                    let e = Error::Unavailable(format!("no answer within {} ms", REPLICA_BOUND.as_millis()));
                    replica.failed(&e, true);
                    fallback("timeout");
                }
            }
        }
        None
    }
}

fn fallback(reason: &'static str) {
    metrics::counter!("eventfeed_replica_fallbacks_total", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replay storm: more reads at once than the replica has connections,
    /// each taking a while. They queue on the replica; none is sent to the
    /// primary and the replica is not taken for down. (With reads waiting a
    /// second for a connection, the later ones failed, the replica was
    /// marked down, and the storm moved onto the primary.)
    #[tokio::test]
    async fn a_busy_replica_queues_reads_rather_than_failing_them() {
        let url = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
        let replicas = Replicas::new(&[url], Duration::from_secs(5)).unwrap();
        {
            let mut h = replicas.list[0].health();
            (h.up, h.lag, h.horizon) = (true, Some(Duration::ZERO), i64::MAX);
        }
        let read = async |pool: PgPool| {
            sqlx::query("SELECT pg_sleep(0.3)").execute(&pool).await?;
            Ok((Answer::Exact(()), i64::MAX))
        };
        let reads = (0..6 * READ_SLOTS).map(|_| replicas.read("test", Cursor::ZERO, read));
        let answered = futures::future::join_all(reads).await;
        assert_eq!(answered.iter().filter(|a| a.is_some()).count(), 6 * READ_SLOTS, "some went to the primary");
        assert!(replicas.list[0].health().up, "a busy replica was taken for down");
    }
}
