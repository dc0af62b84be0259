//! The HTTP API (docs/http-api.md): one module per resource, each with
//! `router()`, plus the extractors they share.

mod audit;
mod client_js;
mod console;
mod consumers;
pub mod doc;
mod events;
mod health;
mod presence;
mod sse;
mod stats;
mod streams;
mod types;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{self, Carrier, Principal};
use crate::cursor::Cursor;
use crate::error::Error;
use crate::event::Event;
use crate::state::AppState;

/// Every route, each registered with its OpenAPI entry (`routes!` of a
/// handler annotated with `#[utoipa::path]`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::frame())
        .merge(events::router())
        .merge(sse::router())
        .merge(streams::router())
        .merge(audit::router())
        .merge(presence::router())
        .merge(consumers::router())
        .merge(stats::router())
        .merge(types::router())
        .merge(console::router())
        .merge(health::router())
        .merge(client_js::router())
        .routes(routes!(doc::document))
}

pub fn router() -> Router<AppState> {
    let (router, _) = routes().split_for_parts();
    router.method_not_allowed_fallback(|| async { Error::MethodNotAllowed }).fallback(|| async { Error::NotFound })
}

/// A page of the feed or of an audit query.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub events: Vec<Event>,
    /// The last event's cursor, or where the read started: pass it back as `after`.
    pub cursor: Cursor,
    pub has_more: bool,
}

/// The caller, from `Authorization: Bearer …` (docs/protocol.md, authentication).
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = auth::token(&parts.headers, Carrier::Header)?;
        Ok(AuthUser(state.verifier.verify(token)?))
    }
}

/// Query parameters, with the API's error body when they do not parse.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Params(q))
            .map_err(|e| Error::Invalid(format!("query: {}", e.body_text())))
    }
}

/// Checks `limit` against 1..=1000, defaulting to 100.
pub fn limit(limit: Option<i64>) -> Result<i64, Error> {
    match limit.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        n => Err(Error::Invalid(format!("limit {n} is out of range 1-1000"))),
    }
}

/// A JSON request body parsed into `T`; a body that is too large, unreadable
/// or not the right JSON gets the API's error body. The content type is
/// not checked: clients that send JSON as `text/plain` are served too.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => Error::TooLarge("the request body is too large".into()),
            other => Error::Invalid(other.body_text()),
        })?;
        serde_json::from_slice(&bytes).map(AppJson).map_err(|e| Error::Invalid(format!("malformed JSON body: {e}")))
    }
}
