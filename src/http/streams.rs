//! `GET /api/streams/{stream}`: one stream's visible events in version order.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, Params, doc, limit};
use crate::error::{Error, Result};
use crate::event::{Event, StreamName};
use crate::state::AppState;
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read))
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// The first version to return (default 1).
    #[param(minimum = 1)]
    from_version: Option<i64>,
    /// Default 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of one stream. For the next page, pass the last version + 1 as `fromVersion`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StreamPage {
    events: Vec<Event>,
    has_more: bool,
}

/// One stream's visible events in version order.
#[utoipa::path(get, path = "/api/streams/{*stream}", tag = "events", security(("bearer" = [])),
    params(("stream" = String, Path, pattern = "^[A-Za-z0-9_.:@/-]{1,200}$", description = "The stream; may contain `/`."),
        StreamParams),
    responses((status = 200, body = StreamPage, description = "A page of the stream."), doc::Invalid, doc::Unauthorized, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn read(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(stream): Path<String>,
    Params(q): Params<StreamParams>,
) -> Result<Json<StreamPage>> {
    let stream = StreamName::parse(&stream)?;
    let from = q.from_version.unwrap_or(1);
    if from < 1 {
        return Err(Error::Invalid("fromVersion must be 1 or more".into()));
    }
    let limit = limit(Some(q.limit.unwrap_or(1000)))?;
    let query = store::StreamQuery {
        tenant_id: &who.tenant_id,
        user_id: &who.user_id,
        stream: stream.as_str(),
        from_version: from,
        limit,
    };
    let page = state.store.read_stream(&query).await?;
    Ok(Json(StreamPage { events: page.events, has_more: page.has_more }))
}
