//! `GET /api/presence`: who is online in the caller's tenant, on every
//! namespace and node (the socket layer's roster answers).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AuthUser;
use crate::AppState;
use crate::error::Result;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/presence", get(presence))
}

#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn presence(State(state): State<AppState>, AuthUser(who): AuthUser) -> Result<Json<Value>> {
    let users = state.roster.online(&who.tenant_id).await?;
    Ok(Json(json!({ "users": users })))
}
