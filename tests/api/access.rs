//! Tokens, roles, tenant isolation, audience, and the bad-input list: every
//! refusal is the API's error body, never a 500.

use crate::common;

use common::{event, token, token_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

both_stores!(audience_limits_feed_and_stream_reads_but_not_audit, |s: common::TestServer| async move {
    let publisher = token("acme", "u1", &["publisher"]);
    let mut targeted = event("inbox", "notification:new", json!({ "text": "for u2" }));
    targeted["audience"] = json!({ "users": ["u2"] });
    // Only a service (or an admin) addresses an event to some users.
    let (status, body) = s.append(&publisher, targeted.clone()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(s.append(&token("acme", "svc", &["service"]), targeted.clone()).await.0, StatusCode::CREATED);
    targeted["stream"] = json!("inbox-2");
    assert_eq!(s.append(&token("acme", "boss", &["admin"]), targeted).await.0, StatusCode::CREATED);
    assert_eq!(
        s.append(&publisher, event("inbox", "notification:new", json!({ "text": "all" }))).await.0,
        StatusCode::CREATED
    );

    let u2 = token("acme", "u2", &[]);
    let u3 = token("acme", "u3", &[]);
    assert_eq!(s.read_all(&u2, "0", 10).await.len(), 3);
    let seen_by_u3 = s.read_all(&u3, "0", 10).await;
    assert_eq!(seen_by_u3.len(), 1);
    assert_eq!(seen_by_u3[0]["data"]["text"], "all");
    let (_, stream) = s.get(&u3, "/api/streams/inbox").await;
    assert_eq!(stream["events"].as_array().unwrap().len(), 1);
    s.settle().await;
    let auditor = token("acme", "a1", &["auditor"]);
    let (status, audit) = s.get(&auditor, "/api/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["events"].as_array().unwrap().len(), 3);
});

both_stores!(tenants_are_isolated, |s: common::TestServer| async move {
    let a = token("tenant-a", "u1", &["publisher", "auditor"]);
    let b = token("tenant-b", "u1", &["publisher", "auditor"]);
    assert_eq!(s.append(&a, event("secret", "deal:signed", json!({ "amount": 1 }))).await.0, StatusCode::CREATED);
    assert!(s.read_all(&b, "0", 100).await.is_empty());
    assert_eq!(s.read_all(&a, "0", 100).await.len(), 1);
    let (_, stream) = s.get(&b, "/api/streams/secret").await;
    assert_eq!(stream["events"], json!([]));
    let (_, audit) = s.get(&b, "/api/audit").await;
    assert_eq!(audit["events"], json!([]));
    // A body cannot name another tenant.
    let mut sneaky = event("secret", "deal:signed", json!({}));
    sneaky["tenantId"] = json!("tenant-a");
    let (status, body) = s.append(&b, sneaky).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid"));
    // The same stream name in tenant B is a different stream.
    let (status, body) =
        s.append(&b, json!({ "stream": "secret", "type": "deal:signed", "data": {}, "expectedVersion": 0 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
});

both_stores!(roles_are_enforced, |s: common::TestServer| async move {
    let reader = token("acme", "u1", &[]);
    let (status, body) = s.append(&reader, event("s", "a:b", json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = s.get(&reader, "/api/audit").await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let admin = token("acme", "root", &["admin"]);
    assert_eq!(s.append(&admin, event("s", "a:b", json!({}))).await.0, StatusCode::CREATED);
    assert_eq!(s.get(&admin, "/api/audit").await.0, StatusCode::OK);
    // Only `service` may set the actor.
    let mut as_other = event("s", "a:b", json!({}));
    as_other["actor"] = json!({ "userId": "someone-else", "username": "x" });
    assert_eq!(s.append(&admin, as_other.clone()).await.0, StatusCode::FORBIDDEN);
    let service = token("acme", "billing-bot", &["service"]);
    let (status, body) = s.append(&service, as_other).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["events"][0]["actor"]["userId"], "someone-else");
});

both_stores!(bad_tokens_are_401_with_a_reason, |s: common::TestServer| async move {
    let now = chrono::Utc::now().timestamp();
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": "u1", "tenant_id": "acme", "exp": now + 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(b"another-key"),
    )
    .unwrap();
    // alg "none": a header and claims with an empty signature.
    let b64 = |v: Value| {
        use base64_engine::encode;
        encode(serde_json::to_vec(&v).unwrap())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(json!({ "sub": "u1", "tenant_id": "acme", "exp": now + 3600 }))
    );
    let cases = [
        ("", "missing token"),
        ("not-a-jwt", "malformed token"),
        (other_key.as_str(), "bad signature"),
        (&token_with(json!({ "sub": "u1", "tenant_id": "acme", "exp": now - 10 })), "token expired"),
        (&alg_none, ""),
        (&token_with(json!({ "sub": "u1", "exp": now + 60 })), "missing tenant claim"),
        (&token_with(json!({ "sub": "u1", "tenant_id": 42, "exp": now + 60 })), "wrong tenant claim"),
        (
            &token_with(json!({ "sub": "u1", "tenant_id": "acme", "roles": "admin", "exp": now + 60 })),
            "malformed claims",
        ),
        (&token_with(json!({ "tenant_id": "acme", "exp": now + 60 })), "missing sub claim"),
    ];
    for (t, reason) in cases {
        let (status, body) = s.get(t, "/api/events").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
        assert_eq!(code(&body), "unauthorized");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("authentication failed: "), "{message}");
        assert!(message.contains(reason), "{message} should name {reason:?}");
    }
});

both_stores!(bad_input_gets_the_contract_error, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let post = |body: &'static str| {
        s.request(Method::POST, "/api/events", &t).header("content-type", "application/json").body(body)
    };
    let cases: Vec<(&str, StatusCode, &str)> = vec![
        (r#"{"stream": "s", "type": "a:b", "data": "#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"{"stream": "s", "type": "a:b"}"#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"{"stream": "s", "type": "no-colon", "data": {}}"#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"{"stream": "bad stream!", "type": "a:b", "data": {}}"#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"{"stream": "s", "type": "a:b", "data": [1, 2]}"#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"{"stream": "s", "type": "a:b", "data": {}, "expectedVersion": "one"}"#, StatusCode::BAD_REQUEST, "invalid"),
        (r#"[]"#, StatusCode::BAD_REQUEST, "invalid"),
    ];
    for (body, status, expected) in cases {
        let (got, response) = common::send(post(body)).await;
        assert_eq!((got, code(&response)), (status, expected), "{body}: {response}");
    }
    let huge = json!({ "stream": "s", "type": "a:b", "data": { "blob": "x".repeat(300 * 1024) } });
    let (status, body) = s.append(&t, huge).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));

    for (path, status, expected) in [
        ("/api/events?after=garbage", StatusCode::BAD_REQUEST, "invalid_cursor"),
        ("/api/events?after=12-", StatusCode::BAD_REQUEST, "invalid_cursor"),
        ("/api/events?limit=0", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/events?limit=1001", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/events?limit=ten", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/events?wait=61", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/events?types=nocolon", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/streams/bad%20name", StatusCode::BAD_REQUEST, "invalid"),
        ("/api/nowhere", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (got, body) = s.get(&t, path).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}: {body}");
    }
    let auditor = token("acme", "a", &["auditor"]);
    let (got, body) = s.get(&auditor, "/api/audit?from=yesterday").await;
    assert_eq!((got, code(&body)), (StatusCode::BAD_REQUEST, "invalid"));
    let (got, body) =
        common::send(s.request(Method::POST, "/api/events/ack", &t).json(&json!({ "consumer": "c", "cursor": "x" })))
            .await;
    assert_eq!((got, code(&body)), (StatusCode::BAD_REQUEST, "invalid_cursor"));
    // Nothing of the above was stored.
    assert!(s.read_all(&t, "0", 100).await.is_empty());
});

both_stores!(audit_filters_and_pages, |s: common::TestServer| async move {
    let alice = token("acme", "alice", &["publisher"]);
    let bob = token("acme", "bob", &["publisher"]);
    for i in 0..5 {
        s.append(&alice, event("inv-1", "invoice:paid", json!({ "i": i }))).await;
        s.append(&bob, event("exp-1", "expense:approved", json!({ "i": i }))).await;
    }
    s.settle().await;
    let auditor = token("acme", "a", &["auditor"]);
    let count = |body: &Value| body["events"].as_array().unwrap().len();
    let (_, by_type) = s.get(&auditor, "/api/audit?type=invoice:*").await;
    assert_eq!(count(&by_type), 5);
    let (_, by_actor) = s.get(&auditor, "/api/audit?actor=bob").await;
    assert_eq!(count(&by_actor), 5);
    let (_, by_stream) = s.get(&auditor, "/api/audit?stream=inv-1&limit=2").await;
    assert_eq!((count(&by_stream), by_stream["hasMore"].as_bool()), (2, Some(true)));
    let next = format!("/api/audit?stream=inv-1&limit=10&after={}", by_stream["cursor"].as_str().unwrap());
    let (_, rest) = s.get(&auditor, &next).await;
    assert_eq!(count(&rest), 3);
    let (_, future) = s.get(&auditor, "/api/audit?from=2999-01-01T00:00:00Z").await;
    assert_eq!(count(&future), 0);
    let (_, past) = s.get(&auditor, "/api/audit?to=2000-01-01T00:00:00Z").await;
    assert_eq!(count(&past), 0);
});

mod base64_engine {
    /// URL-safe base64 without padding, as JWT uses.
    pub fn encode(bytes: Vec<u8>) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

both_stores!(protocol_errors_have_the_error_body_and_add_no_metric_series, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let (status, body) = common::send(s.request(Method::DELETE, "/api/events", &t)).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"), "{body}");

    // Made-up methods and paths are counted, but never as series of their own.
    for i in 0..20 {
        let method = Method::from_bytes(format!("M{i}XYZ").as_bytes()).unwrap();
        let (status, body) = common::send(s.request(method, "/health", &t)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
        let _ = s.get(&t, &format!("/made-up-{i}")).await;
    }
    let metrics = s.metrics().await;
    assert!(!metrics.contains("M3XYZ") && !metrics.contains("made-up-3"), "{metrics}");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");

    // Consumer names are limited in characters, not bytes.
    let ack = |consumer: String| {
        common::send(
            s.request(Method::POST, "/api/events/ack", &t).json(&json!({ "consumer": consumer, "cursor": "0" })),
        )
    };
    assert_eq!(ack("é".repeat(200)).await.0, StatusCode::NO_CONTENT);
    let (status, body) = ack("é".repeat(201)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid"));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_names_its_headers_and_socket_handshakes_check_the_origin() {
    let s = common::TestServer::sqlite_with(&["--cors-origins", "https://app.example.com"]).await;
    let preflight = s
        .http
        .request(Method::OPTIONS, format!("{}/api/events", s.base))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,idempotency-key")
        .send()
        .await
        .unwrap();
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_owned();
    for name in ["authorization", "content-type", "idempotency-key", "last-event-id"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(!allowed.contains('*'), "{allowed}");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example.com");

    let handshake = |origin: &'static str| {
        let req = s.http.get(format!("{}/socket.io/?EIO=4&transport=polling", s.base));
        async move { if origin.is_empty() { req } else { req.header("origin", origin) }.send().await.unwrap() }
    };
    assert_eq!(handshake("https://app.example.com").await.status(), StatusCode::OK);
    assert_eq!(handshake("").await.status(), StatusCode::OK, "a client that is not a browser sends no Origin");
    let refused = handshake("https://evil.example").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(code(&body), "forbidden");
    // The WebSocket transport's upgrade request is refused the same way.
    let upgrade = s
        .http
        .get(format!("{}/socket.io/?EIO=4&transport=websocket", s.base))
        .header("origin", "https://evil.example")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), StatusCode::FORBIDDEN);
    s.stop().await;
}
