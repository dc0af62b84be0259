//! `GET /api/streams/{stream}`: one stream's visible events in version order.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AuthUser, Params, limit};
use crate::AppState;
use crate::error::{Error, Result};
use crate::event::StreamName;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/streams/{*stream}", get(read))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StreamQuery {
    from_version: Option<i64>,
    limit: Option<i64>,
}

#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn read(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(stream): Path<String>,
    Params(q): Params<StreamQuery>,
) -> Result<Json<Value>> {
    let stream = StreamName::parse(&stream)?;
    let from = q.from_version.unwrap_or(1);
    if from < 1 {
        return Err(Error::Invalid("fromVersion must be 1 or more".into()));
    }
    let limit = limit(Some(q.limit.unwrap_or(1000)))?;
    let page = state.store.read_stream(&who.tenant_id, &who.user_id, stream.as_str(), from, limit).await?;
    Ok(Json(json!({ "events": page.events, "hasMore": page.has_more })))
}
