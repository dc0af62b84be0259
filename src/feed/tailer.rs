//! The tailer: the one reader of new events in a process.
//!
//! The doorbell (NOTIFY, or the embedded store's in-process signal) only says
//! "look"; the tailer reads the table after its own cursor, so a lost
//! notification, a dropped LISTEN connection or a silent one costs at most
//! the tick interval, never an event.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Feed;
use crate::cursor::Cursor;
use crate::error::Error;
use crate::store::{Doorbell, Store};

/// Events read per query while catching up.
const PAGE: i64 = 1000;
/// The periodic read that covers a half-open LISTEN connection.
const TICK: Duration = Duration::from_secs(1);
/// The next read while committed events wait behind an open transaction:
/// that transaction may be in another database and ring no bell here.
const HELD_BACK: Duration = Duration::from_millis(10);
/// The least time between two reads. Under load every commit rings the bell;
/// one read per gap serves all the rings in it, so the tailer's queries do
/// not grow with the append rate, and each socket gets the gap's events in
/// one write. A lone event after a quiet gap is read at once. (1,000 sockets
/// at 1,000 events/s: p99 112-128 ms with 10 ms, 195 ms with 5 ms.)
const MIN_GAP: Duration = Duration::from_millis(10);

/// The next read after a failed one: the store may be back any moment.
const RETRY: Duration = Duration::from_millis(250);
/// How long opening the LISTEN connection may take before the tailer reads
/// on without it (and tries again after the next read).
const LISTEN_BOUND: Duration = Duration::from_secs(3);

pub(super) async fn run(store: Store, feed: Feed, head: watch::Sender<Cursor>) {
    let mut cursor = feed.head();
    let mut bell: Option<Doorbell> = None;
    let mut outage = Outage::default();
    loop {
        if bell.is_none() {
            match tokio::time::timeout(LISTEN_BOUND, store.doorbell()).await {
                Ok(Ok(b)) => bell = Some(b),
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot listen for new events; retrying"),
                Err(_) => tracing::debug!("no answer to LISTEN; retrying"),
            }
            feed.inner.running.store(bell.is_some(), Ordering::Relaxed);
        }
        // Catch up after every wake-up, including the first and every reconnect.
        let read_at = tokio::time::Instant::now();
        cursor = match catch_up(&store, &feed, cursor, &head).await {
            Ok(cursor) => {
                outage.ended(&feed);
                cursor
            }
            Err((cursor, e)) => {
                outage.read_failed(&e);
                cursor
            }
        };
        let next_read = if outage.since.is_some() { RETRY } else { held_back(&store).await };

        tokio::select! {
            rang = ring(&mut bell) => match rang {
                Ok(()) => metrics::counter!("eventfeed_doorbell_rings_total").increment(1),
                Err(e) => {
                    tracing::warn!(error = %e, "the LISTEN connection dropped; reconnecting");
                    metrics::counter!("eventfeed_listener_reconnects_total").increment(1);
                    bell = None;
                }
            },
            _ = tokio::time::sleep(next_read) => {}
        }
        tokio::time::sleep_until(read_at + MIN_GAP).await;
    }
}

/// When to read next: soon while committed events wait behind an open
/// transaction, else at the tick.
async fn held_back(store: &Store) -> Duration {
    let held = store.oldest_held_back().await.ok().flatten();
    let lag = held.map_or(0.0, |since| (chrono::Utc::now() - since).as_seconds_f64().max(0.0));
    metrics::gauge!("eventfeed_horizon_lag_seconds").set(lag);
    if held.is_some() { HELD_BACK } else { TICK }
}

async fn ring(bell: &mut Option<Doorbell>) -> anyhow::Result<()> {
    match bell {
        Some(b) => b.ring().await,
        None => std::future::pending().await,
    }
}

/// When the tailer's reads started failing: one line when they fail, one
/// when they recover, not one a tick.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
}

impl Outage {
    fn read_failed(&mut self, e: &Error) {
        metrics::counter!("eventfeed_tailer_read_failures_total").increment(1);
        metrics::gauge!("eventfeed_tailer_reading").set(0.0);
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(error = %e, "tailer reads fail; live delivery waits, retrying every tick");
        }
    }

    fn ended(&mut self, feed: &Feed) {
        feed.mark_read();
        metrics::gauge!("eventfeed_tailer_reading").set(1.0);
        if let Some(since) = self.since.take() {
            let down_ms = since.elapsed().as_millis() as u64;
            tracing::info!(down_ms, "tailer reads recovered; live delivery resumes");
        }
    }
}

/// Delivers every readable event after `cursor`; returns the new cursor,
/// or where it got to and why the next read failed.
async fn catch_up(
    store: &Store,
    feed: &Feed,
    mut cursor: Cursor,
    head: &watch::Sender<Cursor>,
) -> Result<Cursor, (Cursor, Error)> {
    loop {
        let events = store.read_all(cursor, PAGE).await.map_err(|e| (cursor, e))?;
        let Some(last) = events.last() else { return Ok(cursor) };
        let lag = chrono::Utc::now() - last.timestamp;
        metrics::gauge!("eventfeed_tailer_lag_seconds").set(lag.as_seconds_f64().max(0.0));
        feed.deliver(&events);
        metrics::counter!("eventfeed_delivered_events_total").increment(events.len() as u64);
        cursor = last.cursor;
        head.send_replace(cursor);
        if (events.len() as i64) < PAGE {
            return Ok(cursor);
        }
    }
}
