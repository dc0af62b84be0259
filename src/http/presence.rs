//! `GET /api/presence`: who is online in the caller's tenant, on every
//! namespace and node, from this node's view of the cluster.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, doc};
use crate::presence::Online;
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
    responses((status = 200, body = Presence, description = "The online users."), doc::Unauthorized))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id))]
async fn presence(State(state): State<AppState>, AuthUser(who): AuthUser) -> Json<Presence> {
    Json(Presence { users: state.presence.online(&who.tenant_id) })
}
