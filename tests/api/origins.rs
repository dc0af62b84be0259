//! `EVENTFEED_CORS_ORIGINS` and the server's own origin: the origin a
//! request was sent to (its `Host`) is always allowed, at Socket.IO
//! handshakes over either transport and in CORS answers.

use crate::common;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_origin_is_always_allowed() {
    let s = common::TestServer::sqlite_with(&["--cors-origins", "https://app.example.com"]).await;
    let own = s.base.clone();
    let polling = |origin: String| {
        let req = s.http.get(format!("{}/socket.io/?EIO=4&transport=polling", s.base)).header("origin", origin);
        async move { req.send().await.unwrap().status() }
    };
    let upgrade = |origin: String| {
        let req = s
            .http
            .get(format!("{}/socket.io/?EIO=4&transport=websocket", s.base))
            .header("origin", origin)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(polling(own.clone()).await, StatusCode::OK, "a page the server serves");
    assert_eq!(upgrade(own.clone()).await, StatusCode::SWITCHING_PROTOCOLS, "python-socketio over WebSocket");
    assert_eq!(upgrade(own.to_ascii_uppercase()).await, StatusCode::SWITCHING_PROTOCOLS, "origins ignore case");

    // The same host on another port, or another name for it, is another origin.
    let port: u16 = own.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    let other_name = format!("http://localhost:{port}");
    for origin in [other_port, other_name, "http://127.0.0.1".to_owned()] {
        assert_eq!(polling(origin.clone()).await, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(upgrade(origin.clone()).await, StatusCode::FORBIDDEN, "{origin}");
    }

    let preflight = s
        .http
        .request(Method::OPTIONS, format!("{}/api/events", s.base))
        .header("origin", &own)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"].to_str().unwrap(), own);
    s.stop().await;
}
