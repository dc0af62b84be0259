//! `GET /eventfeed.js`: the browser build of the client library
//! (`clients/js/dist/eventfeed.js`), embedded in the binary so a page needs no
//! bundler and a fresh clone's server serves it without Node installed.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The committed build; CI fails when it differs from the library's source.
const EVENTFEED_JS: &[u8] = include_bytes!("../../clients/js/dist/eventfeed.js");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(script))
}

#[utoipa::path(get, path = "/eventfeed.js", tag = "operations",
    responses((status = 200, body = String, content_type = "text/javascript",
               description = "The client library's browser build; defines the globals `EventFeed` and `FeedError`.")))]
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
