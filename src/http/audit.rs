//! `GET /api/audit`: every event of the tenant, audience ignored, for auditors.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AuthUser, Params, limit};
use crate::AppState;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{StreamName, TypeFilter, storable};
use crate::store::AuditQuery;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/audit", get(audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    #[serde(rename = "type")]
    event_type: Option<String>,
    stream: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
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

#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn audit(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Params(q): Params<Query>,
) -> Result<Json<Value>> {
    if !who.can_audit() {
        return Err(Error::Forbidden("audit queries need the auditor role".into()));
    }
    let stream = q.stream.as_deref().map(StreamName::parse).transpose()?;
    storable("actor", q.actor.as_deref().unwrap_or_default())?;
    let query = AuditQuery {
        types: TypeFilter::parse_list(q.event_type.as_deref().unwrap_or(""))?,
        stream: stream.map(|s| s.as_str().to_owned()),
        actor: q.actor,
        from: time("from", q.from.as_deref())?,
        to: time("to", q.to.as_deref())?,
        after: q.after.as_deref().map(str::parse).transpose()?.unwrap_or(Cursor::ZERO),
        limit: limit(q.limit)?,
    };
    let page = state.store.audit(&who.tenant_id, &query).await?;
    let cursor = page.events.last().map_or(query.after, |e| e.cursor);
    Ok(Json(json!({ "events": page.events, "cursor": cursor, "hasMore": page.has_more })))
}
