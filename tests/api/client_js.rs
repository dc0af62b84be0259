//! `GET /eventfeed.js` serves the committed browser build of the client library.

use crate::common;

use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_build_is_served() {
    let s = common::TestServer::sqlite().await;
    let response = s.http.get(format!("{}/eventfeed.js", s.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/javascript; charset=utf-8");
    let body = response.bytes().await.unwrap();
    let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js/dist/eventfeed.js")).unwrap();
    assert_eq!(body.as_ref(), committed.as_slice(), "the served file is the committed build");
    let text = String::from_utf8_lossy(&body);
    for global in ["globalThis.EventFeed", "globalThis.FeedError"] {
        assert!(text.contains(global), "it defines {global}");
    }
    s.stop().await;
}
