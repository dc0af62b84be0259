//! The HTTP API driven with random and malformed requests, on both stores:
//! no answer is a 5xx, and every 4xx carries the API's error body.
//! The seed is printed; `EVENTFEED_FUZZ_SEED` replays a run and
//! `EVENTFEED_FUZZ_CASES` sets its length.

use crate::common;

use std::time::Duration;

use common::token;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

const PATHS: &[&str] = &[
    "/api/events",
    "/api/events/ack",
    "/api/events/stream",
    "/api/streams/invoice-1",
    "/api/streams/a/b:c@d",
    "/api/audit",
    "/health",
    "/ready",
    "/metrics",
    "/",
    "/api",
    "/api/events/",
];
const PARAMS: &[&str] = &[
    "after",
    "limit",
    "types",
    "wait",
    "consumer",
    "fromVersion",
    "type",
    "stream",
    "actor",
    "from",
    "to",
    "access_token",
    "lastEventId",
    "x",
];
const FIELDS: &[&str] = &[
    "stream",
    "type",
    "data",
    "id",
    "expectedVersion",
    "audience",
    "metadata",
    "actor",
    "events",
    "consumer",
    "cursor",
];

/// A string that is sometimes valid and often hostile.
fn text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "invoice-1",
        "invoice:paid",
        "a:*",
        "*",
        "0",
        "1-1",
        "-1",
        "9223372036854775807",
        "99999999999999999999",
        ":",
        "%",
        "%00",
        "\0",
        "\u{feff}",
        "é",
        "😀",
        "\\",
        "\"",
        "'",
        " ",
        ",",
        "..",
        "/",
        "null",
        "true",
        "2026-11-30T12:00:00Z",
        "not-a-date",
        "6f1c2a7e-3b5d-4f61-9a0e-2c9d7b1e4a10",
        "feed:reset",
        "user:online",
    ];
    let n = rng.random_range(0..4);
    let mut s: String = (0..n).map(|_| *PIECES.choose(rng).unwrap()).collect();
    if rng.random_bool(0.05) {
        s.push_str(&"x".repeat(rng.random_range(150..2000)));
    }
    s
}

fn value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-5i64..5)),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => json!(text(rng)),
        5 => Value::Array((0..rng.random_range(0..4)).map(|_| value(rng, depth + 1)).collect()),
        _ => object(rng, depth + 1),
    }
}

fn object(rng: &mut StdRng, depth: u32) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.random_range(0..6) {
        let key = if rng.random_bool(0.8) { FIELDS.choose(rng).unwrap().to_string() } else { text(rng) };
        map.insert(key, value(rng, depth));
    }
    Value::Object(map)
}

/// A plausible event with one field made wrong now and then.
fn event(rng: &mut StdRng) -> Value {
    let mut e = json!({ "stream": "fuzz-1", "type": "fuzz:tried", "data": { "n": 1 } });
    if rng.random_bool(0.3) {
        e["data"] = json!({ text(rng): text(rng) });
    }
    if rng.random_bool(0.7) {
        let field = *FIELDS.choose(rng).unwrap();
        e[field] = value(rng, 1);
    }
    e
}

fn body(rng: &mut StdRng) -> Vec<u8> {
    let json = match rng.random_range(0..6) {
        0 => object(rng, 0),
        1 => json!({ "events": (0..rng.random_range(0..5)).map(|_| event(rng)).collect::<Vec<_>>() }),
        2 => json!({ "consumer": text(rng), "cursor": text(rng) }),
        _ => event(rng),
    };
    let mut bytes = serde_json::to_vec(&json).unwrap();
    match rng.random_range(0..10) {
        0 => bytes.truncate(rng.random_range(0..=bytes.len())),
        1 => bytes = (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        _ => {}
    }
    bytes
}

fn query(rng: &mut StdRng) -> String {
    let pairs: Vec<String> = (0..rng.random_range(0..4))
        .map(|_| {
            let key = PARAMS.choose(rng).unwrap();
            // Long-polls are kept short: this is about answers, not waiting.
            let val = if *key == "wait" { rng.random_range(0..2).to_string() } else { text(rng) };
            format!("{key}={}", urlencode(&val))
        })
        .collect();
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:*".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn fuzz(s: common::TestServer) {
    let seed = std::env::var("EVENTFEED_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let cases: usize = std::env::var("EVENTFEED_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    println!("fuzz seed {seed} ({cases} cases)");
    let mut rng = StdRng::seed_from_u64(seed);
    let tokens = [
        token("fuzz", "u1", &["publisher", "auditor"]),
        token("fuzz", "svc", &["service"]),
        token("fuzz", "boss", &["admin"]),
        token("fuzz", "reader", &[]),
        "garbage".to_owned(),
    ];
    let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS, Method::HEAD];
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for case in 0..cases {
        let method = if rng.random_bool(0.95) {
            methods.choose(&mut rng).unwrap().clone()
        } else {
            Method::from_bytes(format!("FUZZ{}", rng.random_range(0..9)).as_bytes()).unwrap()
        };
        let path = if rng.random_bool(0.9) {
            PATHS.choose(&mut rng).unwrap().to_string()
        } else {
            format!("/api/streams/{}", urlencode(&text(&mut rng)))
        };
        let url = format!("{}{path}{}", s.base, query(&mut rng));
        let mut req = http.request(method.clone(), &url);
        if rng.random_bool(0.9) {
            req = req.bearer_auth(tokens.choose(&mut rng).unwrap());
        }
        if rng.random_bool(0.2) {
            req = req.header("idempotency-key", urlencode(&text(&mut rng)));
        }
        if rng.random_bool(0.1) {
            req = req.header("last-event-id", urlencode(&text(&mut rng)));
        }
        if method == Method::POST || rng.random_bool(0.1) {
            let content_type = if rng.random_bool(0.9) { "application/json" } else { "text/plain" };
            req = req.header("content-type", content_type).body(body(&mut rng));
        }
        let what = format!("case {case} (seed {seed}): {method} {url}");
        let response = req.send().await.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let status = response.status();
        assert!(!status.is_server_error(), "{what}: {status} {}", response.text().await.unwrap_or_default());
        // A 2xx may be an endless SSE stream: only errors are read.
        if status.is_client_error() && method != Method::HEAD {
            let text = response.text().await.unwrap_or_default();
            let body: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {status} without JSON: {text:?}"));
            let error = &body["error"];
            assert!(error["code"].is_string() && error["message"].is_string(), "{what}: {status} {body}");
        }
    }
    // The server still answers after all of it.
    assert_eq!(http.get(format!("{}/health", s.base)).send().await.unwrap().status(), StatusCode::OK);
}

both_stores!(random_requests_get_no_5xx_and_4xx_carry_the_error_body, |s: common::TestServer| fuzz(s));
