//! `GET /eventfeed.js`: the browser build of the client library
//! (`clients/js/dist/eventfeed.js`), embedded in the binary so a page needs no
//! bundler and a fresh clone's server serves it without Node installed.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// The committed build; CI fails when it differs from the library's source.
const EVENTFEED_JS: &[u8] = include_bytes!("../../clients/js/dist/eventfeed.js");

pub fn router() -> Router<AppState> {
    Router::new().route("/eventfeed.js", get(script))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Short, so pages pick up a new server's build soon after an upgrade.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        EVENTFEED_JS,
    )
}
