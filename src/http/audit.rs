//! `GET /api/audit`: every event of the tenant, audience ignored, for auditors.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, Page, Params, doc, limit};
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{StreamName, TypeFilter, storable};
use crate::state::AppState;
use crate::store::AuditQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Query {
    /// A comma list of type patterns: exact types, or a prefix ending in `:*`.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// One stream.
    #[param(pattern = "^[A-Za-z0-9_.:@/-]{1,200}$")]
    stream: Option<String>,
    /// The actor's user id.
    actor: Option<String>,
    /// One event's id.
    #[param(format = Uuid)]
    id: Option<String>,
    /// RFC 3339 time, inclusive.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339 time, exclusive.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Start after this cursor (default `0`); with `order=desc`, before it
    /// (default: the newest event).
    #[param(value_type = Option<Cursor>)]
    after: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `asc` (default): oldest first. `desc`: newest first; each page's
    /// `cursor`, passed back as `after`, continues with older events.
    #[param(inline)]
    order: Option<Order>,
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Order {
    Asc,
    Desc,
}

fn time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::Invalid(format!("{name} must be an RFC 3339 time, like 2026-11-22T12:00:00Z")))
        })
        .transpose()
}

/// Every event of the tenant (audience ignored) matching the filters, in cursor order (or reversed).
#[utoipa::path(get, path = "/api/audit", tag = "events", security(("bearer" = [])), params(Query),
    responses((status = 200, body = Page, description = "A page; pass `cursor` back as `after`."), doc::Invalid, doc::Unauthorized, doc::Forbidden, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn audit(State(state): State<AppState>, AuthUser(who): AuthUser, Params(q): Params<Query>) -> Result<Json<Page>> {
    if !who.can_audit() {
        return Err(Error::Forbidden("audit queries need the auditor role".into()));
    }
    let stream = q.stream.as_deref().map(StreamName::parse).transpose()?;
    storable("actor", q.actor.as_deref().unwrap_or_default())?;
    let after: Option<Cursor> = q.after.as_deref().map(str::parse).transpose()?;
    let newest_first = q.order == Some(Order::Desc);
    let query = AuditQuery {
        types: TypeFilter::parse_list(q.event_type.as_deref().unwrap_or(""))?,
        stream: stream.map(|s| s.as_str().to_owned()),
        actor: q.actor,
        from: time("from", q.from.as_deref())?,
        to: time("to", q.to.as_deref())?,
        after: after.unwrap_or(if newest_first { Cursor::new(i64::MAX, i64::MAX) } else { Cursor::ZERO }),
        limit: limit(q.limit)?,
        newest_first,
        id: q.id.as_deref().map(|id| id.parse().map_err(|_| Error::Invalid("id must be a UUID".into()))).transpose()?,
    };
    let page = state.store.audit(&who.tenant_id, &query).await?;
    // An empty first page of newest-first hands back `0`, not the end it started from.
    let cursor = page.events.last().map_or(after.unwrap_or(Cursor::ZERO), |e| e.cursor);
    Ok(Json(Page { events: page.events, cursor, has_more: page.has_more }))
}
