//! One socket's delivery: replay what it missed, paced to what the socket
//! drains, then join the live feed at the tailer's cursor (docs/architecture.md).
//! If the socket falls behind live, it leaves, catches up the same way, and
//! joins again.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use tokio::sync::watch;

use super::connect::Resume;
use super::session::Session;
use crate::cursor::Cursor;
use crate::event::Event;
use crate::feed::{Backoff, Reader, Reset, Sink, SinkError, Start, Stopped, resolve_start};
use crate::state::AppState;
use crate::store::ConsumerKey;

/// How long to wait for a full send buffer to drain before trying again.
const DRAIN_WAIT: Duration = Duration::from_millis(2);

/// The socket is gone; stop.
struct Closed;

struct SocketSink<A: Adapter> {
    socket: SocketRef<A>,
    session: Arc<Session>,
}

impl<A: Adapter> Sink for SocketSink<A> {
    fn wants(&self, event: &Event) -> bool {
        self.session.wants(event)
    }

    fn send(&self, event: &Event, payload: &RawValue) -> Result<(), SinkError> {
        match self.socket.emit(&event.event_type, payload) {
            Ok(()) => Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Err(SinkError::Full),
            Err(_) => Err(SinkError::Closed),
        }
    }
}

/// Runs for as long as the socket is open, and mostly waits. The store reads
/// it awaits now and then are boxed: a future is as large as its largest
/// state, and unboxed they made every idle socket hold several kilobytes.
pub(super) async fn run<A: Adapter>(socket: SocketRef<A>, session: Arc<Session>, state: AppState, resume: Resume) {
    let closed = session.closed.clone();
    tokio::select! {
        _ = async {
            let start = Box::pin(start(&session, &state, resume)).await?;
            deliver(socket, session, state, start, resume.arrived).await
        } => {}
        _ = closed.cancelled() => {}
    }
}

/// Where delivery starts (`None`: live only, from `arrived`), retried until
/// the store answers.
async fn start(session: &Session, state: &AppState, resume: Resume) -> Result<Option<Start>, Closed> {
    if resume.after.is_none() && session.consumer.is_none() {
        return Ok(None);
    }
    let key = session.consumer.as_ref().map(|consumer| ConsumerKey {
        tenant_id: &session.tenant_id,
        user_id: &session.user_id,
        consumer,
    });
    let mut backoff = Backoff::default();
    loop {
        match resolve_start(&state.store, &session.tenant_id, key, resume.after, Cursor::ZERO, resume.arrived).await {
            Ok(start) => return Ok(Some(start)),
            Err(e) => tracing::warn!(error = %e, "cannot resolve a socket's start cursor; retrying"),
        }
        backoff.pause(&state.shutdown).await.map_err(|Stopped| Closed)?;
    }
}

async fn deliver<A: Adapter>(
    socket: SocketRef<A>,
    session: Arc<Session>,
    state: AppState,
    start: Option<Start>,
    arrived: Cursor,
) -> Result<(), Closed> {
    let mut cursor = match start {
        None => arrived,
        Some(Start::After(cursor)) => cursor,
        Some(Start::Reset { head }) => {
            send_paced(&socket, "feed:reset", &Reset::expired(head)).await?;
            head
        }
    };
    let mut replaying = matches!(start, Some(Start::After(_)));
    let sink: Arc<dyn Sink> = Arc::new(SocketSink { socket: socket.clone(), session: session.clone() });
    let mut head = state.feed.watch();
    let mut target = if replaying { Box::pin(replay_target(&state)).await } else { state.feed.head() };
    loop {
        if target < cursor {
            // This socket's cursor is ahead of our tailer (it came from
            // another node): wait for the tailer to pass it.
            target = tailer_reaches(&mut head, cursor).await?;
        }
        let (sent, last) = Box::pin(catch_up(&socket, &session, &state, cursor, target)).await?;
        if replaying {
            replaying = false;
            // The last event it was sent, or the cursor it handed in: never
            // `target`, which moves with other tenants' appends.
            let shown = last.unwrap_or(cursor);
            send_paced(&socket, "feed:replayed", &json!({ "count": sent, "cursor": shown })).await?;
            metrics::counter!("eventfeed_replays_total").increment(1);
            metrics::counter!("eventfeed_replayed_events_total").increment(sent);
        }
        cursor = target;
        match state.feed.join(cursor, &session.tenant_id, sink.clone()) {
            // Live until the socket falls behind; then resume where it stopped.
            Ok(mut membership) => {
                cursor = (&mut membership.lagged).await.map_err(|_| Closed)?;
                target = state.feed.head();
            }
            // The tailer moved on meanwhile: catch up to it.
            Err(live) => target = live,
        }
    }
}

/// What a replay covers: everything committed before the connect, even what
/// the tailer has not delivered yet (the join after it waits for the tailer).
async fn replay_target(state: &AppState) -> Cursor {
    let live = state.feed.head();
    match state.store.head().await {
        Ok(stored) => live.max(stored),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the store's head; replaying to the live head");
            live
        }
    }
}

/// Waits until the tailer's cursor is at or past `cursor`; returns it.
async fn tailer_reaches(head: &mut watch::Receiver<Cursor>, cursor: Cursor) -> Result<Cursor, Closed> {
    loop {
        let at = *head.borrow_and_update();
        if at >= cursor {
            return Ok(at);
        }
        head.changed().await.map_err(|_| Closed)?;
    }
}

/// Sends the events in `(from, to]` visible to this socket, page by page;
/// returns how many, and the last one's cursor.
async fn catch_up<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    state: &AppState,
    from: Cursor,
    to: Cursor,
) -> Result<(u64, Option<Cursor>), Closed> {
    let mut reader = Reader::until(&state.feed, &session.tenant_id, &session.user_id, from, to);
    let (mut sent, mut last) = (0, None);
    // The filter is read per page: a `subscribe` during the replay applies to the rest.
    while let Some(page) = reader.next(&session.filter()).await.map_err(|Stopped| Closed)? {
        for event in &page.events {
            send_paced(socket, &event.event_type, event).await?;
        }
        sent += page.events.len() as u64;
        last = page.events.last().map(|e| e.cursor).or(last);
    }
    Ok((sent, last))
}

/// Emits, waiting while the socket's send buffer is full.
async fn send_paced<A: Adapter, T: Serialize + ?Sized>(
    socket: &SocketRef<A>,
    event: &str,
    data: &T,
) -> Result<(), Closed> {
    loop {
        match socket.emit(event, data) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => tokio::time::sleep(DRAIN_WAIT).await,
            Err(e) => {
                tracing::debug!(error = %e, "emit failed; the socket is closing");
                return Err(Closed);
            }
        }
    }
}
