//! The OpenAPI document against the router and docs/http-api.md: every
//! operation the page lists is in the document, every documented
//! operation is served, and a documented path serves no other method.

use crate::common;

use std::collections::BTreeSet;

use common::token;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `METHOD /path` of every operation named in a `### ` heading of docs/http-api.md.
fn page_operations() -> BTreeSet<(String, String)> {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/http-api.md")).expect("docs/http-api.md");
    let mut found = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("### ")) {
        for quoted in line.split('`').skip(1).step_by(2) {
            if let Some((method, path)) = quoted.split_once(' ')
                && ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
                && path.starts_with('/')
            {
                found.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    found
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("path item").keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A request that reaches the handler: real path values, a valid body.
fn probe(s: &common::TestServer, method: &str, path: &str, token: &str) -> reqwest::RequestBuilder {
    let path = path.replace("{stream}", "invoice/42");
    let req = s.request(Method::from_bytes(method.as_bytes()).expect("method"), &path, token);
    match (method, path.as_str()) {
        ("POST", "/api/events") => req.json(&json!({ "stream": "invoice/42", "type": "invoice:paid", "data": {} })),
        ("POST", "/api/events/ack") => req.json(&json!({ "consumer": "c", "cursor": "0" })),
        _ => req,
    }
}

both_stores!(the_document_covers_every_route, |s: common::TestServer| async move {
    let response = s.http.get(format!("{}/api/openapi.json", s.base)).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = documented(&doc);
    let listed = page_operations();
    assert!(listed.len() >= 10, "docs/http-api.md headings: {listed:?}");
    assert_eq!(ops, listed, "the document's operations and the headings of docs/http-api.md differ");

    let admin = token("acme", "u1", &["admin"]);
    for (method, path) in &ops {
        // Headers are enough: the SSE stream never ends by itself.
        let status = probe(&s, method, path, &admin).send().await.expect("request").status();
        assert!(status.is_success(), "{method} {path}: {status}");
        let documented_statuses =
            doc["paths"][path][method.to_lowercase()]["responses"].as_object().expect("responses");
        assert!(documented_statuses.contains_key(status.as_str()), "{method} {path}: {status} is not documented");
        for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if !ops.contains(&(other.to_owned(), path.clone())) {
                let status = probe(&s, other, path, &admin).send().await.expect("request").status();
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{other} {path} is served but not documented");
            }
        }
    }
});
