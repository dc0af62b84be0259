//! The operator's endpoints behind the console: `GET /api/consumers` (cursor
//! and lag of each stored consumer), `GET /api/presence` without sockets, and
//! `GET /console` with every file it loads served by the binary itself (and
//! copied into the Docker build, which compiles them in).
//! Presence with real sockets on two nodes is in tests/e2e/console_presence.test.mjs.

use crate::common;

use common::{event, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn ack(s: &common::TestServer, token: &str, consumer: &str, cursor: &str) {
    let body = json!({ "consumer": consumer, "cursor": cursor });
    let (status, answer) = common::send(s.request(Method::POST, "/api/events/ack", token).json(&body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

/// Appends `n` events to one stream of `tenant`, up to 1000 a request; returns the envelopes.
async fn append_many(s: &common::TestServer, tenant: &str, n: usize) -> Vec<Value> {
    let publisher = token(tenant, "pub", &["publisher"]);
    let mut out = Vec::new();
    while out.len() < n {
        let batch: Vec<Value> =
            (out.len()..n.min(out.len() + 1000)).map(|i| event("s", "load:item", json!({ "i": i }))).collect();
        let (status, body) = s.append(&publisher, json!({ "events": batch })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        out.extend(body["events"].as_array().unwrap().iter().cloned());
    }
    out
}

fn cursor_of(e: &Value) -> &str {
    e["cursor"].as_str().unwrap()
}

both_stores!(consumers_show_their_cursor_and_lag, |s: common::TestServer| async move {
    let acme = append_many(&s, "acme", 5).await;
    let (u1, u2) = (token("acme", "u1", &[]), token("acme", "u2", &[]));
    ack(&s, &u1, "billing", cursor_of(&acme[1])).await;
    ack(&s, &u2, "mail", cursor_of(&acme[4])).await;
    ack(&s, &token("other", "u1", &[]), "billing", "0").await;
    // Another tenant's events after acme's cursors are not acme's lag.
    append_many(&s, "other", 4).await;
    s.settle().await;

    let (status, body) = s.get(&token("acme", "a1", &["auditor"]), "/api/consumers").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let consumers = body["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 2, "only acme's consumers: {body}");
    let billing = &consumers[0];
    assert_eq!((billing["consumer"].as_str(), billing["userId"].as_str()), (Some("billing"), Some("u1")));
    assert_eq!(billing["cursor"], acme[1]["cursor"]);
    assert_eq!(billing["behind"], 3);
    assert_eq!(billing["behindCapped"], false);
    let updated = billing["updatedAt"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(updated).is_ok(), "updatedAt {updated}");
    assert_eq!((consumers[1]["consumer"].as_str(), consumers[1]["behind"].as_i64()), (Some("mail"), Some(0)));

    // Admins may look too; readers and publishers may not; no token is 401.
    assert_eq!(s.get(&token("acme", "root", &["admin"]), "/api/consumers").await.0, StatusCode::OK);
    for roles in [&[][..], &["publisher"][..]] {
        let (status, body) = s.get(&token("acme", "u1", roles), "/api/consumers").await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    }
    let (status, body) = common::send(s.http.get(format!("{}/api/consumers", s.base))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
});

both_stores!(consumer_lag_stops_counting_at_ten_thousand, |s: common::TestServer| async move {
    let events = append_many(&s, "acme", 10_002).await;
    let reader = token("acme", "u1", &[]);
    ack(&s, &reader, "from-start", "0").await;
    ack(&s, &reader, "exactly-at-cap", cursor_of(&events[1])).await;
    s.settle().await;

    let (status, body) = s.get(&token("acme", "a1", &["auditor"]), "/api/consumers").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let by_name = |name: &str| body["consumers"].as_array().unwrap().iter().find(|c| c["consumer"] == name).cloned();
    let capped = by_name("from-start").expect("from-start listed");
    assert_eq!((capped["behind"].as_i64(), capped["behindCapped"].as_bool()), (Some(10_000), Some(true)));
    let at_cap = by_name("exactly-at-cap").expect("exactly-at-cap listed");
    assert_eq!((at_cap["behind"].as_i64(), at_cap["behindCapped"].as_bool()), (Some(10_000), Some(false)));
});

both_stores!(presence_needs_a_token_and_lists_nobody_without_sockets, |s: common::TestServer| async move {
    let (status, body) = s.get(&token("acme", "u1", &[]), "/api/presence").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "users": [] })));
    let (status, body) = common::send(s.http.get(format!("{}/api/presence", s.base))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_page_and_every_file_it_loads_come_from_the_server() {
    let s = common::TestServer::sqlite().await;
    let page = s.http.get(format!("{}/console", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    // Every file the page loads is the server's own.
    let values = |attr: &str| -> Vec<String> {
        html.split(&format!(" {attr}=\""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let files = [values("src"), values("href")].concat();
    let own = |f: &String| f.starts_with("/console/") || f == "/eventfeed.js";
    assert!(files.iter().all(own), "{files:?}");
    assert!(files.iter().any(|f| f == "/eventfeed.js"), "the live feed is the client library: {files:?}");
    assert!(files.len() >= 5, "scripts, stylesheet and icon: {files:?}");
    for file in &files {
        let answer = s.http.get(format!("{}{file}", s.base)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{file}");
        let kind = answer.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if file.ends_with(".js") {
            "text/javascript"
        } else if file.ends_with(".css") {
            "text/css"
        } else {
            "image/svg+xml"
        };
        assert!(kind.starts_with(expected), "{file}: {kind}");
        assert!(!answer.text().await.unwrap().is_empty(), "{file} is empty");
    }
    s.stop().await;
}

both_stores!(console_session_says_whom_a_verified_token_names, |s: common::TestServer| async move {
    let tok = common::token_with(json!({
        "sub": "u-ops", "name": "Olga", "tenant_id": "acme", "roles": ["publisher", "admin"],
        "exp": chrono::Utc::now().timestamp() + 600,
    }));
    let (status, who) = s.get(&tok, "/console/session").await;
    assert_eq!(status, StatusCode::OK, "{who}");
    assert_eq!(who["tenantId"], "acme");
    assert_eq!((who["userId"].as_str(), who["username"].as_str()), (Some("u-ops"), Some("Olga")));
    assert_eq!(who["roles"], json!(["admin", "publisher"]));
    let forged = format!("{tok}AAAA");
    let (status, body) = s.get(&forged, "/console/session").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{body}");
});

/// The console's files are compiled in, so the image build must have them.
#[test]
fn the_docker_build_copies_the_console() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == "COPY console console"), "the Dockerfile copies console/");
    let ignored = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore")).unwrap();
    assert!(!ignored.lines().any(|l| l.trim_matches('/') == "console"), ".dockerignore keeps console/ in the context");
}
