//! `GET /api/presence`: who is online in the caller's tenant, on every
//! namespace and node (the socket layer's roster answers).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, doc};
use crate::error::Result;
use crate::socket::presence::Online;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(presence))
}

#[derive(Serialize, ToSchema)]
struct Presence {
    users: Vec<Online>,
}

/// Who is online in the caller's tenant, on every namespace and node.
#[utoipa::path(get, path = "/api/presence", tag = "feed", security(("bearer" = [])),
    responses((status = 200, body = Presence, description = "The online users."), doc::Unauthorized, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn presence(State(state): State<AppState>, AuthUser(who): AuthUser) -> Result<Json<Presence>> {
    let users = state.roster.online(&who.tenant_id).await?;
    Ok(Json(Presence { users }))
}
