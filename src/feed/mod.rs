//! The live feed: one tailer per process reads new events from the store
//! when the doorbell rings and delivers them to this process's live sinks
//! (docs/architecture.md).
//!
//! A sink (a socket, after its replay) joins the live set only at the
//! tailer's own cursor, so the hand-over from replay to live has no gap and no
//! duplicate. A sink that cannot take an event (its send buffer is full) is
//! dropped from the live set and told where to resume: it catches up from the
//! store at its own pace, then joins again. Nothing is lost on a slow client.

mod reader;
mod start;
mod tailer;

pub use reader::{Backoff, Reader, Stopped};
pub use start::{Reset, Start, resolve_start, tenant_head};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cursor::Cursor;
use crate::event::Event;
use crate::store::Store;

/// How recent the tailer's last good read must be for `/ready`: a few ticks.
const READ_FRESHNESS: std::time::Duration = std::time::Duration::from_secs(4);

/// Why a sink did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkError {
    /// Its send buffer is full: it must catch up from the store.
    Full,
    /// It is gone.
    Closed,
}

/// A live subscriber: in practice, one connected socket.
pub trait Sink: Send + Sync + 'static {
    /// Whether this subscriber should receive the event (tenant, audience, types).
    fn wants(&self, event: &Event) -> bool;
    /// Sends without waiting; `payload` is the event's envelope, serialized
    /// once for every sink.
    fn send(&self, event: &Event, payload: &RawValue) -> Result<(), SinkError>;
}

struct Member {
    sink: Arc<dyn Sink>,
    /// Told the cursor to resume from when the sink falls behind.
    lagged: oneshot::Sender<Cursor>,
}

/// The tailer's cursor and the sinks that are live at it, under one lock:
/// a delivery and a hand-over never interleave.
#[derive(Default)]
struct Live {
    cursor: Cursor,
    members: HashMap<String, HashMap<u64, Member>>,
}

/// A sink's place in the live set; leaving drops it.
pub struct Membership {
    feed: Feed,
    tenant: String,
    id: u64,
    /// Resolves with the resume cursor if the sink fell behind.
    pub lagged: oneshot::Receiver<Cursor>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut live = self.feed.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tenant) = live.members.get_mut(&self.tenant) {
            tenant.remove(&self.id);
            if tenant.is_empty() {
                live.members.remove(&self.tenant);
            }
        }
    }
}

struct Inner {
    store: Store,
    /// Cancelled when shutdown begins: readers stop.
    shutdown: CancellationToken,
    live: Mutex<Live>,
    /// Per tenant, the cursor of its newest delivered event, for the
    /// long-polls and SSE streams waiting on that tenant only.
    bells: Mutex<HashMap<String, watch::Sender<Cursor>>>,
    next_id: AtomicU64,
    running: AtomicBool,
    head: watch::Receiver<Cursor>,
    /// When the tailer last read the store successfully.
    last_read: Mutex<Instant>,
}

#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

impl Feed {
    /// Starts the tailer from the store's current head, on `tasks`, until shutdown.
    pub async fn start(store: Store, shutdown: &CancellationToken, tasks: &TaskTracker) -> crate::error::Result<Feed> {
        let start = store.head().await?;
        let (head_tx, head) = watch::channel(start);
        let inner = Inner {
            store: store.clone(),
            shutdown: shutdown.clone(),
            live: Mutex::new(Live { cursor: start, members: HashMap::new() }),
            bells: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            running: AtomicBool::new(false),
            head,
            last_read: Mutex::new(Instant::now()),
        };
        let feed = Feed { inner: Arc::new(inner) };
        tasks.spawn(shutdown.clone().run_until_cancelled_owned(tailer::run(store, feed.clone(), head_tx)));
        Ok(feed)
    }

    /// The cursor up to which every event has been delivered live.
    pub fn head(&self) -> Cursor {
        *self.inner.head.borrow()
    }

    /// A receiver that changes whenever the head moves.
    pub fn watch(&self) -> watch::Receiver<Cursor> {
        self.inner.head.clone()
    }

    /// A receiver that changes when an event of `tenant` is delivered: a
    /// waiter of one tenant is not woken by every other tenant's appends.
    pub fn tenant_watch(&self, tenant: &str) -> watch::Receiver<Cursor> {
        let mut bells = self.inner.bells.lock().unwrap_or_else(|e| e.into_inner());
        match bells.get(tenant) {
            Some(bell) => bell.subscribe(),
            None => {
                let (bell, rx) = watch::channel(Cursor::ZERO);
                bells.insert(tenant.to_owned(), bell);
                rx
            }
        }
    }

    /// Rings the bells of the tenants of a delivered page; forgets the bells
    /// nobody waits on.
    fn ring(&self, events: &[Event]) {
        let mut bells = self.inner.bells.lock().unwrap_or_else(|e| e.into_inner());
        if bells.is_empty() {
            return;
        }
        for event in events {
            if let Some(bell) = bells.get(&event.tenant_id) {
                bell.send_replace(event.cursor);
            }
        }
        bells.retain(|_, bell| bell.receiver_count() > 0);
    }

    /// Whether the tailer is listening (for `/ready`).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Relaxed)
    }

    /// Whether the tailer has read the store within the last few seconds
    /// (it reads at least once a second while the store answers).
    pub fn is_reading(&self) -> bool {
        self.inner.last_read.lock().unwrap_or_else(|e| e.into_inner()).elapsed() < READ_FRESHNESS
    }

    fn mark_read(&self) {
        *self.inner.last_read.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Joins the live set if the tailer's cursor is `at` (everything up to
    /// `at` has reached the sink); otherwise returns the cursor to catch up to.
    pub fn join(&self, at: Cursor, tenant: &str, sink: Arc<dyn Sink>) -> Result<Membership, Cursor> {
        let mut live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.cursor != at {
            return Err(live.cursor);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (lagged_tx, lagged) = oneshot::channel();
        live.members.entry(tenant.to_owned()).or_default().insert(id, Member { sink, lagged: lagged_tx });
        metrics::gauge!("eventfeed_live_sinks").increment(1.0);
        Ok(Membership { feed: self.clone(), tenant: tenant.to_owned(), id, lagged })
    }

    /// Delivers a page of events in cursor order, advancing the live cursor.
    /// Each sink gets all of its events of the page back to back, so its
    /// socket wakes and writes once for the lot, not once per event.
    fn deliver(&self, events: &[Event]) {
        let Some(last) = events.last() else { return };
        let mut live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        let start = live.cursor;
        // The page's events per tenant, in order, each with the cursor before it.
        let mut by_tenant: HashMap<&str, Vec<Outgoing>> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            if !live.members.contains_key(&event.tenant_id) {
                continue;
            }
            let payload = match serde_json::value::to_raw_value(event) {
                Ok(payload) => payload,
                Err(e) => {
                    tracing::error!(error = %e, cursor = %event.cursor, "cannot serialize an event for live delivery");
                    continue;
                }
            };
            let before = if i == 0 { start } else { events[i - 1].cursor };
            by_tenant.entry(&event.tenant_id).or_default().push(Outgoing { event, payload, before });
        }
        for (tenant, outgoing) in by_tenant {
            if let Some(members) = live.members.get_mut(tenant) {
                deliver_tenant(members, &outgoing);
                if members.is_empty() {
                    live.members.remove(tenant);
                }
            }
        }
        live.cursor = last.cursor;
        drop(live);
        self.ring(events);
    }
}

/// One event on its way to the live sinks, serialized once for all of them.
struct Outgoing<'a> {
    event: &'a Event,
    payload: Box<RawValue>,
    /// The cursor up to which a sink has everything once it has the events before this one.
    before: Cursor,
}

/// Sends a tenant's events to its live sinks; drops those that cannot take them.
fn deliver_tenant(members: &mut HashMap<u64, Member>, outgoing: &[Outgoing]) {
    let mut dropped = Vec::new();
    let mut sent = 0;
    // Per event, the sockets it reached: the stats' deliveries by type.
    let mut reached = vec![0u64; outgoing.len()];
    for (id, member) in members.iter() {
        for (out, reached) in outgoing.iter().zip(reached.iter_mut()) {
            if !member.sink.wants(out.event) {
                continue;
            }
            match member.sink.send(out.event, &out.payload) {
                Ok(()) => {
                    sent += 1;
                    *reached += 1;
                }
                Err(reason) => {
                    dropped.push((*id, reason, out.before));
                    break;
                }
            }
        }
    }
    metrics::counter!("eventfeed_live_emits_total").increment(sent);
    if let Some(first) = outgoing.first() {
        let by_type = outgoing.iter().zip(reached).map(|(out, n)| (out.event.event_type.as_str(), n));
        crate::metrics::pulse().emitted(&first.event.tenant_id, by_type);
    }
    for (id, reason, before) in dropped {
        let Some(member) = members.remove(&id) else { continue };
        metrics::gauge!("eventfeed_live_sinks").decrement(1.0);
        if reason == SinkError::Full {
            metrics::counter!("eventfeed_live_lagged_total").increment(1);
            // Everything up to `before` reached it; it resumes there.
            let _ = member.lagged.send(before);
        }
    }
}

#[cfg(test)]
mod tests;
