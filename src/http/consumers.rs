//! `GET /api/consumers`: the tenant's stored consumer cursors and how far
//! behind each one is, for auditors and admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::AuthUser;
use crate::AppState;
use crate::error::{Error, Result};
use crate::store::{BEHIND_CAP, ConsumerLag};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/consumers", get(consumers))
}

#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn consumers(State(state): State<AppState>, AuthUser(who): AuthUser) -> Result<Json<Value>> {
    if !who.can_audit() {
        return Err(Error::Forbidden("listing consumers needs the auditor role".into()));
    }
    let consumers = state.store.consumers(&who.tenant_id).await?;
    Ok(Json(json!({ "consumers": consumers.iter().map(entry).collect::<Vec<_>>() })))
}

/// One consumer's JSON; `behindCapped` says the count stopped at the cap.
fn entry(c: &ConsumerLag) -> Value {
    json!({
        "consumer": c.consumer,
        "userId": c.user_id,
        "cursor": c.cursor,
        "updatedAt": c.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "behind": c.behind.min(BEHIND_CAP),
        "behindCapped": c.behind > BEHIND_CAP,
    })
}
