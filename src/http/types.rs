//! `GET /api/types`: the event type catalog, each type with its schema and
//! the caller's tenant's count of stored events of that type and the time
//! of the last one. Counts come from the store's per-type counters, so the
//! answer costs one keyed read, however many events the tenant has.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AuthUser, doc};
use crate::error::Result;
use crate::schemas::Catalog;
use crate::state::AppState;
use crate::store::TypeCount;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(types))
}

#[derive(Serialize, ToSchema)]
struct Types {
    /// Every type with a schema, and every other type the tenant has stored, by name.
    types: Vec<TypeEntry>,
    /// Whether types without a schema are refused (`EVENTFEED_SCHEMAS_CLOSED`).
    closed: bool,
}

/// One event type.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TypeEntry {
    #[serde(rename = "type")]
    event_type: String,
    /// The type's JSON Schema (2020-12) as its file holds it; `null` for a type without one.
    #[schema(value_type = Option<Object>, required)]
    schema: Option<Value>,
    /// The schema's `description`.
    #[schema(required)]
    description: Option<String>,
    /// The schema's `examples`: `data` objects that conform to it.
    #[schema(value_type = Vec<Object>)]
    examples: Vec<Value>,
    /// The caller's tenant's stored events of this type.
    #[schema(minimum = 0)]
    count: i64,
    /// When the tenant's last event of this type was appended (RFC 3339, UTC,
    /// milliseconds); `null` when it has none.
    #[schema(value_type = Option<String>, format = DateTime, required)]
    last_at: Option<String>,
}

/// The event type catalog.
#[utoipa::path(get, path = "/api/types", tag = "types", security(("bearer" = [])),
    responses((status = 200, body = Types, description = "The catalog, with the caller's tenant's counts."),
        doc::Unauthorized, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn types(State(state): State<AppState>, AuthUser(who): AuthUser) -> Result<Json<Types>> {
    let counts = state.store.type_counts(&who.tenant_id).await?;
    let catalog = state.schemas.current();
    Ok(Json(Types { types: entries(&catalog, counts), closed: catalog.closed() }))
}

/// The catalog's types and the counted ones, merged by name.
fn entries(catalog: &Catalog, counts: Vec<TypeCount>) -> Vec<TypeEntry> {
    let mut by_type: BTreeMap<String, TypeEntry> = catalog
        .iter()
        .map(|(name, schema)| {
            let entry = TypeEntry {
                event_type: name.to_owned(),
                schema: Some(schema.schema.clone()),
                description: schema.description.clone(),
                examples: schema.examples.clone(),
                count: 0,
                last_at: None,
            };
            (name.to_owned(), entry)
        })
        .collect();
    for counted in counts.into_iter().filter(|c| c.count > 0) {
        let entry = by_type.entry(counted.event_type.clone()).or_insert_with(|| TypeEntry {
            event_type: counted.event_type,
            schema: None,
            description: None,
            examples: Vec::new(),
            count: 0,
            last_at: None,
        });
        entry.count = counted.count;
        entry.last_at = counted.last_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    by_type.into_values().collect()
}
