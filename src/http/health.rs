//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// The store's answer to `/ready`'s ping must come within this, so the
/// probe itself answers within the contract's 2 seconds.
const PING_BOUND: Duration = Duration::from_millis(1500);

/// 200 when the store answers, the tailer has read it within the last few
/// seconds and is listening, and the socket adapter hears the other nodes.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = matches!(tokio::time::timeout(PING_BOUND, state.store.ping()).await, Ok(Ok(())));
    let reading = state.feed.is_reading();
    let listening = state.feed.is_running();
    let adapter = state.adapter.is_listening();
    let ok = store && reading && listening && adapter;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "store": store, "feed": reading && listening, "adapter": adapter })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
