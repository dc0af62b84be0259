//! `GET /api/events/stream`: Server-Sent Events over the same store and
//! cursor, resuming from `Last-Event-ID` (docs/protocol.md).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Params, doc};
use crate::auth::{self, Carrier, Principal};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::event::TypeFilter;
use crate::feed::{Reader, Reset, Start, resolve_start};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SseParams {
    /// Start after this cursor; without it (and without `Last-Event-ID`) the stream starts live.
    #[param(value_type = Option<Cursor>)]
    after: Option<String>,
    /// What EventSource polyfills send instead of the header.
    #[serde(rename = "lastEventId")]
    #[param(value_type = Option<Cursor>)]
    last_event_id: Option<String>,
    /// A comma list of type patterns: exact types, or a prefix ending in `:*`.
    types: Option<String>,
    /// The token, for EventSource (the `accessToken` security scheme).
    #[param(ignore)]
    access_token: Option<String>,
}

/// One message of the stream: an event (`id` its cursor, `event` its type,
/// `data` the envelope), or `feed:reset` (`id` and data's `cursor` the head,
/// data `{"cursor", "reason"}`), or `auth:expired`
/// (data `{"exp"}`) before the stream ends. Comments keep it alive every 15 s.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: axum's `Sse` writes the messages.
struct SseMessage {
    /// The cursor, on events and `feed:reset`.
    id: Option<String>,
    event: String,
    /// JSON: the envelope of an event, or the `feed:reset` / `auth:expired` payload.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// Server-Sent Events of the caller's visible events, resuming after `Last-Event-ID`.
#[utoipa::path(get, path = "/api/events/stream", tag = "events", security(("bearer" = []), ("accessToken" = [])),
    params(SseParams, ("Last-Event-ID" = Option<Cursor>, Header, description = "Resume after this cursor; wins over `after`.")),
    responses((status = 200, content_type = "text/event-stream", body = SseMessage,
        description = "A stream of messages that lasts until the token expires; `schema` is one message."),
        doc::Invalid, doc::Unauthorized, doc::Unavailable, doc::Internal))]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<SseParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let token = auth::token(&headers, Carrier::EventSource { access_token: q.access_token.as_deref() })?;
    let who = state.verifier.verify(token)?;
    let types = TypeFilter::parse_list(q.types.as_deref().unwrap_or(""))?;
    let header = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("?"));
    let after = header.or(q.last_event_id.as_deref()).or(q.after.as_deref()).map(str::parse::<Cursor>).transpose()?;
    let now = state.feed.head();
    let start = resolve_start(&state.store, &who.tenant_id, None, after, now, now).await?;

    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(pump(state, who, types, start, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

type Tx = mpsc::Sender<Result<SseEvent, Infallible>>;

/// Feeds one SSE client until it goes away or its token expires.
async fn pump(state: AppState, who: Principal, types: TypeFilter, start: Start, tx: Tx) {
    let expiry = who.expires_in();
    tokio::select! {
        _ = send_all(&state, &who, &types, start, &tx) => {}
        _ = tokio::time::sleep(expiry) => {
            let _ = send(&tx, SseEvent::default().event("auth:expired"), &json!({ "exp": who.exp })).await;
        }
        _ = tx.closed() => {}
        _ = state.shutdown.cancelled() => {}
    }
}

/// The client is gone, or a message could not be encoded: the stream ends.
struct Gone;

async fn send_all(state: &AppState, who: &Principal, types: &TypeFilter, start: Start, tx: &Tx) -> Result<(), Gone> {
    let after = match start {
        Start::After(cursor) => cursor,
        Start::Reset { head } => {
            // Its id moves `Last-Event-ID` past the expired cursor, so a
            // reconnect before the next event is not reset again.
            let reset = SseEvent::default().id(head.to_string()).event("feed:reset");
            send(tx, reset, &Reset::expired(head)).await?;
            head
        }
    };
    let mut reader = Reader::follow(&state.feed, &who.tenant_id, &who.user_id, after);
    while let Ok(Some(page)) = reader.next(types).await {
        for event in page.events {
            send(tx, SseEvent::default().id(event.cursor.to_string()).event(&event.event_type), &event).await?;
        }
    }
    Ok(())
}

/// Sends one message with `data` as its JSON.
async fn send(tx: &Tx, message: SseEvent, data: &impl Serialize) -> Result<(), Gone> {
    let message = message.json_data(data).map_err(|e| {
        tracing::error!(error = %e, "cannot encode an SSE message");
        Gone
    })?;
    tx.send(Ok(message)).await.map_err(|_| Gone)
}
