//! `GET /console`: the operator's web console (docs/console.md).
//!
//! Plain HTML, CSS and JavaScript from `console/`, compiled into the binary,
//! so the console works on a machine with no internet and with no build step.
//! The Content-Security-Policy holds the page to its own origin.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

const INDEX: &str = include_str!("../../console/index.html");

/// The page's files: name under `/console/`, content type, content.
const ASSETS: [(&str, &str, &str); 6] = [
    ("console.css", "text/css; charset=utf-8", include_str!("../../console/console.css")),
    ("console.js", JS, include_str!("../../console/console.js")),
    ("live.js", JS, include_str!("../../console/live.js")),
    ("panels.js", JS, include_str!("../../console/panels.js")),
    ("health.js", JS, include_str!("../../console/health.js")),
    ("icon.svg", "image/svg+xml", include_str!("../../console/icon.svg")),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Everything from this origin only; no inline script or style.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> OpenApiRouter<AppState> {
    let page = OpenApiRouter::new().routes(routes!(index));
    ASSETS.iter().fold(page, |router, &(name, content_type, body)| {
        let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")];
        router.route(&format!("/console/{name}"), get(move || async move { (headers, body).into_response() }))
    })
}

/// The page, told which claim names the tenant (the server's setting), so it
/// can show the token's tenant before any event arrives.
#[utoipa::path(get, path = "/console", tag = "operations",
    responses((status = 200, body = String, content_type = "text/html", description = "The web console.")))]
async fn index(State(state): State<AppState>) -> Response {
    let page = INDEX.replace("{{TENANT_CLAIM}}", &attribute(&state.config.jwt.tenant_claim));
    ([(header::CONTENT_SECURITY_POLICY, POLICY), (header::CACHE_CONTROL, "no-cache")], Html(page)).into_response()
}

/// Escapes text for a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::attribute;

    #[test]
    fn attribute_text_cannot_close_the_attribute() {
        assert_eq!(attribute(r#"a"><script>&"#), "a&quot;&gt;&lt;script&gt;&amp;");
    }
}
