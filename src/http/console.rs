//! `GET /console`: the operator's web console (docs/console.md).
//!
//! Plain HTML, CSS and JavaScript from `console/`, compiled into the binary,
//! so the console works on a machine with no internet and with no build step.
//! The Content-Security-Policy holds the page to its own origin. The live
//! feed is the client library's browser build (`/eventfeed.js`); the page
//! learns who the token names from `GET /console/session`, verified here.

use axum::Json;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthUser;
use crate::state::AppState;

const INDEX: &str = include_str!("../../console/index.html");

/// The page's files: name under `/console/`, content type, content.
const ASSETS: [(&str, &str, &str); 9] = [
    ("console.css", "text/css; charset=utf-8", include_str!("../../console/console.css")),
    ("console.js", JS, include_str!("../../console/console.js")),
    ("live.js", JS, include_str!("../../console/live.js")),
    ("panels.js", JS, include_str!("../../console/panels.js")),
    ("find.js", JS, include_str!("../../console/find.js")),
    ("types.js", JS, include_str!("../../console/types.js")),
    ("presence.js", JS, include_str!("../../console/presence.js")),
    ("health.js", JS, include_str!("../../console/health.js")),
    ("icon.svg", "image/svg+xml", include_str!("../../console/icon.svg")),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Everything from this origin only; no inline script or style.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> OpenApiRouter<AppState> {
    let page = OpenApiRouter::new().routes(routes!(index)).route("/console/session", get(session));
    ASSETS.iter().fold(page, |router, &(name, content_type, body)| {
        let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")];
        router.route(&format!("/console/{name}"), get(move || async move { (headers, body).into_response() }))
    })
}

#[utoipa::path(get, path = "/console", tag = "operations",
    responses((status = 200, body = String, content_type = "text/html", description = "The web console.")))]
async fn index() -> Response {
    ([(header::CONTENT_SECURITY_POLICY, POLICY), (header::CACHE_CONTROL, "no-cache")], Html(INDEX)).into_response()
}

/// The console's sign-in: who the token names, once the server has verified
/// it, so the page decodes no token itself. A page detail, not part of the API.
async fn session(AuthUser(who): AuthUser) -> Json<Value> {
    let mut roles: Vec<&String> = who.roles.iter().collect();
    roles.sort();
    Json(json!({
        "tenantId": who.tenant_id,
        "userId": who.user_id,
        "username": who.username,
        "roles": roles,
        "exp": who.exp,
    }))
}
