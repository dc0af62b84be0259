//! `/api/events`: append, poll (with long-poll), and acknowledge.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppJson, AuthUser, Params, doc, limit};
use crate::append::AppendBody;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{Event, TypeFilter};
use crate::feed::{Reader, Reset, Start, resolve_start};
use crate::state::AppState;
use crate::store::{ConsumerKey, ConsumerName};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(append, list)).routes(routes!(ack))
}

/// Append one event, or several atomically.
#[utoipa::path(post, path = "/api/events", tag = "events", security(("bearer" = [])),
    request_body = AppendBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        description = "Events without an `id` get one derived from this key, so a retry finds them.")),
    responses((status = 201, body = Appended, description = "The stored events, in request order."),
        doc::Invalid, doc::Unauthorized, doc::Forbidden, doc::Conflict, doc::TooLarge, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn append(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    AppJson(value): AppJson<Value>,
) -> Result<(StatusCode, Json<Appended>)> {
    who.require_publisher()?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| Error::Invalid("Idempotency-Key must be visible ASCII".into()))?),
        None => None,
    };
    let request = crate::append::parse_request(value, &who, &crate::append::Rules::of(&state), key)?;
    let events = state.appender.append(request).await?;
    Ok((StatusCode::CREATED, Json(Appended { events })))
}

#[derive(Serialize, ToSchema)]
struct Appended {
    events: Vec<Event>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Start after this cursor (default `0`).
    #[param(value_type = Option<Cursor>)]
    after: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// A comma list of type patterns: exact types, or a prefix ending in `:*`.
    types: Option<String>,
    /// Seconds to hold the request while there is nothing to return.
    #[param(minimum = 0, maximum = 60)]
    wait: Option<u64>,
    /// Without `after`: start after this consumer's stored cursor.
    #[param(min_length = 1, max_length = 200)]
    consumer: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    events: Vec<Event>,
    /// The last event's cursor, or where the read started: pass it back as `after`.
    cursor: Cursor,
    has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reset: Option<Reset>,
}

/// The caller's visible events after a cursor, in order; long-polls with `wait`.
#[utoipa::path(get, path = "/api/events", tag = "events", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = ListResponse, description = "A page; pass `cursor` back as `after`."), doc::Invalid, doc::Unauthorized, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Params(q): Params<ListQuery>,
) -> Result<Json<ListResponse>> {
    let limit = limit(q.limit)?;
    let types = TypeFilter::parse_list(q.types.as_deref().unwrap_or(""))?;
    let wait = match q.wait.unwrap_or(0) {
        w @ 0..=60 => Duration::from_secs(w),
        w => return Err(Error::Invalid(format!("wait {w} is out of range 0-60"))),
    };
    let after = q.after.as_deref().map(str::parse::<Cursor>).transpose()?;
    let consumer = q.consumer.as_deref().map(ConsumerName::parse).transpose()?;
    let key =
        consumer.as_ref().map(|consumer| ConsumerKey { tenant_id: &who.tenant_id, user_id: &who.user_id, consumer });
    let after = match resolve_start(&state.store, &who.tenant_id, key, after, Cursor::ZERO, state.feed.head()).await? {
        Start::After(cursor) => cursor,
        Start::Reset { head } => {
            let reset = Reset::expired(head);
            return Ok(Json(ListResponse { events: vec![], cursor: head, has_more: false, reset: Some(reset) }));
        }
    };

    let mut reader = Reader::follow(&state.feed, &who.tenant_id, &who.user_id, after).limit(limit);
    let deadline = Instant::now() + wait;
    loop {
        let page = reader.read(&types).await?;
        if !page.events.is_empty() || !park(&mut reader, deadline).await {
            let cursor = reader.cursor();
            return Ok(Json(ListResponse { events: page.events, cursor, has_more: page.has_more, reset: None }));
        }
    }
}

/// Holds a long-poll until its tenant has new events (true), or until the
/// deadline or shutdown (false).
async fn park(reader: &mut Reader, deadline: Instant) -> bool {
    if Instant::now() >= deadline {
        return false;
    }
    metrics::gauge!("eventfeed_long_polls_waiting").increment(1.0);
    let rang = reader.wait(Some(deadline)).await;
    metrics::gauge!("eventfeed_long_polls_waiting").decrement(1.0);
    if rang {
        metrics::counter!("eventfeed_long_poll_wakeups_total").increment(1);
    }
    rang
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[schema(min_length = 1, max_length = 200)]
    consumer: String,
    #[schema(value_type = Cursor)]
    cursor: String,
}

/// Store a consumer's cursor: the offline queue's acknowledgement.
#[utoipa::path(post, path = "/api/events/ack", tag = "events", security(("bearer" = [])), request_body = AckBody,
    responses((status = 204, description = "Stored."), doc::Invalid, doc::Unauthorized, doc::TooLarge, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn ack(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    AppJson(ack): AppJson<AckBody>,
) -> Result<StatusCode> {
    let consumer = ConsumerName::parse(&ack.consumer)?;
    let key = ConsumerKey { tenant_id: &who.tenant_id, user_id: &who.user_id, consumer: &consumer };
    state.store.save_cursor(key, ack.cursor.parse()?).await?;
    Ok(StatusCode::NO_CONTENT)
}
