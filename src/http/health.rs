//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(examples("ok"))]
    status: &'static str,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health, description = "Running.")))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Which parts are ready.
#[derive(Serialize, ToSchema)]
struct Readiness {
    store: bool,
    feed: bool,
    adapter: bool,
    /// True once the node was told to stop: it serves on for the drain, but
    /// load balancers should send new work elsewhere.
    draining: bool,
    /// Each read replica (`EVENTFEED_REPLICA_URLS`). A replica that is down
    /// or behind does not make the node unready: the primary reads instead.
    replicas: Vec<ReplicaReadiness>,
}

/// One read replica's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReplicaReadiness {
    /// `host:port/database`.
    replica: String,
    /// It answers, and is a streaming replica of this primary.
    up: bool,
    /// How far behind the primary it is, in seconds; null while unknown.
    lag_seconds: Option<f64>,
    /// Reads it has answered since this node started.
    reads: u64,
}

/// 200 when the store answers, the tailer has read it within the last few
/// seconds and is listening, and the socket adapter hears the other nodes;
/// 503 at once while the node drains before it stops.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness, description = "Ready."), (status = 503, body = Readiness, description = "Not ready.")))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    if state.draining.is_cancelled() {
        let draining = Readiness { store: true, feed: true, adapter: true, draining: true, replicas: replicas(&state) };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(draining));
    }
    let store = state.store.ping().await.is_ok();
    let reading = state.feed.is_reading();
    let listening = state.feed.is_running();
    let adapter = state.adapter.is_listening();
    let ok = store && reading && listening && adapter;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(Readiness { store, feed: reading && listening, adapter, draining: false, replicas: replicas(&state) }),
    )
}

fn replicas(state: &AppState) -> Vec<ReplicaReadiness> {
    let replica = |r: crate::store::ReplicaStatus| ReplicaReadiness {
        replica: r.replica,
        up: r.up,
        lag_seconds: r.lag.map(|lag| lag.as_secs_f64()),
        reads: r.reads,
    };
    state.store.replicas().into_iter().map(replica).collect()
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain", description = "The metrics.")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
