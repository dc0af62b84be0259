//! `GET /api/consumers`: the tenant's stored consumer cursors and how far
//! behind each one is, for auditors and admins.

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, doc};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{BEHIND_CAP, ConsumerLag};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(consumers))
}

/// The answer: `{"consumers": [...]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used: `entry` writes the JSON.
struct Consumers {
    consumers: Vec<ConsumerEntry>,
}

/// One stored consumer and how many of the tenant's events are after its cursor.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Only its schema is used: `entry` writes the JSON.
struct ConsumerEntry {
    consumer: String,
    user_id: String,
    cursor: crate::cursor::Cursor,
    updated_at: chrono::DateTime<chrono::Utc>,
    /// Capped at 10,000.
    #[schema(minimum = 0, maximum = 10000)]
    behind: i64,
    /// Whether `behind` stopped at the cap.
    behind_capped: bool,
}

/// The tenant's stored consumers and how far behind each one is.
#[utoipa::path(get, path = "/api/consumers", tag = "feed", security(("bearer" = [])),
    responses((status = 200, body = Consumers, description = "The consumers."),
        doc::Unauthorized, doc::Forbidden, doc::Unavailable, doc::Internal))]
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
