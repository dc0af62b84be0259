//! The event type catalog on both stores: each schema rule's refusal names
//! its location and rule, a batch with one bad event stores nothing, closed
//! mode, reloads, and `GET /api/types`'s per-tenant counts.

use crate::common;

use std::path::{Path, PathBuf};

use common::{TestServer, event, token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs a test body once per store, on a server started with `args`
/// (besides `--schemas DIR`, a fresh directory holding `files`).
macro_rules! with_schemas {
    ($name:ident, $files:expr, $args:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let dir = schema_dir($files);
                let server = TestServer::postgres_with(&args(&dir, $args)).await;
                ($body)(server.clone(), dir).await;
                server.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = schema_dir($files);
                let server = TestServer::sqlite_with(&args(&dir, $args)).await;
                ($body)(server.clone(), dir).await;
                server.stop().await;
            }
        }
    };
}

/// A fresh directory holding `files` (name, schema).
pub fn schema_dir(files: &[(&str, Value)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ef_types_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("schema dir");
    for (name, schema) in files {
        std::fs::write(dir.join(name), schema.to_string()).expect("schema file");
    }
    dir
}

fn args<'a>(dir: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["--schemas", dir.to_str().expect("utf-8 path")];
    argv.extend_from_slice(more);
    argv
}

/// The catalog of these tests: `order:placed` with one property per rule.
fn order_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "An order was placed.",
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0, "maximum": 1000000},
            "fee": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100, "multipleOf": 0.5},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "name": {"type": "string", "minLength": 2, "maxLength": 5},
            "status": {"enum": ["new", "paid"]},
            "kind": {"const": "order"},
            "lines": {"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": true, "items": {"type": "string"}},
            "tags": {"type": "object", "minProperties": 1, "maxProperties": 2},
            "contact": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "ref": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "note": {"not": {"type": "null"}},
            "shipping": {"type": "object", "dependentRequired": {"street": ["city"]}},
            "bag": {"type": "array", "contains": {"type": "integer"}}
        },
        "required": ["amount"],
        "additionalProperties": false,
        "examples": [{"amount": 12}]
    })
}

fn catalog() -> [(&'static str, Value); 1] {
    [("order.placed.json", order_schema())]
}

with_schemas!(each_rule_is_refused_naming_its_location_and_rule, &catalog(), &[], |s: TestServer, _| async move {
    let t = token("acme", "u1", &["publisher"]);
    let amount = |more: Value| {
        let mut data = json!({"amount": 1});
        data.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        data
    };
    let cases = [
        (json!({}), "/amount", "required"),
        (json!({"amount": "12"}), "/amount", "type"),
        (json!({"amount": -1}), "/amount", "minimum"),
        (json!({"amount": 2000000}), "/amount", "maximum"),
        (amount(json!({"fee": 0})), "/fee", "exclusiveMinimum"),
        (amount(json!({"fee": 100})), "/fee", "exclusiveMaximum"),
        (amount(json!({"fee": 1.2})), "/fee", "multipleOf"),
        (amount(json!({"code": "eur"})), "/code", "pattern"),
        (amount(json!({"name": "a"})), "/name", "minLength"),
        (amount(json!({"name": "abcdef"})), "/name", "maxLength"),
        (amount(json!({"status": "lost"})), "/status", "enum"),
        (amount(json!({"kind": "refund"})), "/kind", "const"),
        (amount(json!({"lines": []})), "/lines", "minItems"),
        (amount(json!({"lines": ["a", "b", "c", "d"]})), "/lines", "maxItems"),
        (amount(json!({"lines": ["a", "a"]})), "/lines", "uniqueItems"),
        (amount(json!({"lines": [7]})), "/lines/0", "type"),
        (amount(json!({"tags": {}})), "/tags", "minProperties"),
        (amount(json!({"tags": {"a": 1, "b": 2, "c": 3}})), "/tags", "maxProperties"),
        (amount(json!({"contact": 1.5})), "/contact", "oneOf"),
        (amount(json!({"ref": 1})), "/ref", "anyOf"),
        (amount(json!({"note": null})), "/note", "not"),
        // The validator reports dependentRequired as the property it requires.
        (amount(json!({"shipping": {"street": "Main St"}})), "/shipping/city", "required"),
        (amount(json!({"bag": ["x"]})), "/bag", "contains"),
        (amount(json!({"extra": true})), "", "additionalProperties"),
    ];
    for (data, path, rule) in cases {
        let (status, body) = s.append(&t, event("o-1", "order:placed", data.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{data}: {body}");
        let error = &body["error"];
        assert_eq!((error["code"].as_str(), error["path"].as_str()), (Some("invalid"), Some(path)), "{data}: {body}");
        assert_eq!(error["rule"], rule, "{data}: {body}");
        assert!(error["message"].as_str().unwrap().contains("order:placed"), "{body}");
        assert!(error.get("index").is_none(), "{body}");
    }
    let (status, body) = s.append(&t, event("o-1", "order:placed", json!({"amount": 5, "fee": 1.5}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An open catalog takes types it has no schema for.
    let (status, body) = s.append(&t, event("o-1", "order:noted", json!({"anything": [1]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
});

with_schemas!(a_batch_with_one_bad_event_stores_nothing, &catalog(), &[], |s: TestServer, _| async move {
    let t = token("acme", "u1", &["publisher"]);
    let good = event("o-2", "order:placed", json!({"amount": 1}));
    let bad = event("o-2", "order:placed", json!({"amount": -5}));
    let batch = json!({"events": [good.clone(), event("o-3", "order:noted", json!({})), bad, good]});
    let (status, body) = s.append(&t, batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["index"], 2, "{body}");
    assert_eq!((body["error"]["path"].as_str(), body["error"]["rule"].as_str()), (Some("/amount"), Some("minimum")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("event 2: "), "{body}");
    assert!(s.read_all(&t, "0", 100).await.is_empty(), "nothing is stored");
    let (_, types) = s.get(&t, "/api/types").await;
    assert!(types["types"].as_array().unwrap().iter().all(|e| e["count"] == 0), "{types}");
});

with_schemas!(
    closed_mode_refuses_types_without_a_schema,
    &catalog(),
    &["--schemas-closed"],
    |s: TestServer, _| async move {
        let t = token("acme", "u1", &["publisher"]);
        let (status, body) = s.append(&t, event("o-1", "order:noted", json!({}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "invalid");
        assert!(body["error"]["message"].as_str().unwrap().contains("no schema"), "{body}");
        let batch = json!({"events": [event("o-1", "order:placed", json!({"amount": 1})), event("o-1", "order:noted", json!({}))]});
        let (status, body) = s.append(&t, batch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("event 1: "), "{body}");
        let (status, body) = s.append(&t, event("o-1", "order:placed", json!({"amount": 1}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, types) = s.get(&t, "/api/types").await;
        assert_eq!(types["closed"], true);
    }
);

/// The types `GET /api/types` lists with a schema.
async fn schema_types(s: &TestServer, t: &str) -> Vec<String> {
    let (status, body) = s.get(t, "/api/types").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let types = body["types"].as_array().expect("types").iter();
    types.filter(|e| !e["schema"].is_null()).map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

// What SIGHUP calls (types_cli.rs sends the signal to a server process).
with_schemas!(
    a_reload_takes_a_good_catalog_and_keeps_the_old_one_for_a_bad_one,
    &catalog(),
    &[],
    |s: TestServer, dir: PathBuf| async move {
        let t = token("acme", "u1", &["publisher"]);
        std::fs::write(dir.join("order.shipped.json"), json!({"required": ["carrier"]}).to_string()).unwrap();
        s.schemas.reload().expect("a good catalog loads");
        assert_eq!(schema_types(&s, &t).await, ["order:placed", "order:shipped"]);
        let (status, body) = s.append(&t, event("o-1", "order:shipped", json!({}))).await;
        assert_eq!((status, body["error"]["rule"].as_str()), (StatusCode::BAD_REQUEST, Some("required")), "{body}");

        // One bad file: the whole reload is refused, naming it, and the catalog in force stays.
        std::fs::write(dir.join("order.placed.json"), r#"{"required": "amount"}"#).unwrap();
        std::fs::write(dir.join("order.cancelled.json"), "{}").unwrap();
        let err = s.schemas.reload().expect_err("a bad file is refused");
        assert!(err.to_string().contains("order.placed.json"), "{err}");
        assert_eq!(schema_types(&s, &t).await, ["order:placed", "order:shipped"]);
        let (status, body) = s.append(&t, event("o-1", "order:placed", json!({}))).await;
        assert_eq!((status, body["error"]["rule"].as_str()), (StatusCode::BAD_REQUEST, Some("required")), "{body}");

        std::fs::write(dir.join("order.placed.json"), order_schema().to_string()).unwrap();
        s.schemas.reload().expect("the fixed catalog loads");
        assert_eq!(schema_types(&s, &t).await, ["order:cancelled", "order:placed", "order:shipped"]);
    }
);

/// `count` and `lastAt` of `event_type` in `GET /api/types` for `t`'s tenant.
async fn usage(s: &TestServer, t: &str, event_type: &str) -> (i64, Value) {
    let (status, body) = s.get(t, "/api/types").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = body["types"].as_array().unwrap().iter().find(|e| e["type"] == event_type).cloned();
    found.map_or((0, Value::Null), |e| (e["count"].as_i64().unwrap(), e["lastAt"].clone()))
}

with_schemas!(types_are_listed_with_each_tenants_count_and_last_time, &catalog(), &[], |s: TestServer, _| async move {
    let (acme, globex) = (token("acme", "u1", &["publisher"]), token("globex", "u9", &[]));
    let (_, body) = s.get(&globex, "/api/types").await;
    assert_eq!(body["closed"], false);
    let entry = &body["types"][0];
    let keys: std::collections::BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["count", "description", "examples", "lastAt", "schema", "type"].into(), "{body}");
    assert_eq!(entry["schema"], order_schema());
    assert_eq!(
        (entry["description"].as_str(), &entry["examples"]),
        (Some("An order was placed."), &json!([{"amount": 12}]))
    );
    assert_eq!((entry["count"].as_i64(), &entry["lastAt"]), (Some(0), &Value::Null));

    for n in 1..=3 {
        s.append(&acme, event("o-1", "order:placed", json!({"amount": n}))).await;
    }
    let (_, last) = s
        .append(
            &acme,
            json!({"events": [event("o-2", "order:noted", json!({})), event("o-2", "order:noted", json!({}))]}),
        )
        .await;
    let globex_publisher = token("globex", "u9", &["publisher"]);
    s.append(&globex_publisher, event("g-1", "order:placed", json!({"amount": 1}))).await;

    assert_eq!(usage(&s, &acme, "order:placed").await.0, 3);
    let (count, last_at) = usage(&s, &acme, "order:noted").await;
    assert_eq!((count, &last_at), (2, &last["events"][1]["timestamp"]), "a type without a schema is counted too");
    assert_eq!(usage(&s, &globex, "order:placed").await.0, 1);
    assert_eq!(usage(&s, &globex, "order:noted").await.0, 0, "another tenant's types are not shown");

    // Folding pending changes (PostgreSQL) changes no answer.
    s.store.fold_type_counts().await.expect("fold");
    assert_eq!(usage(&s, &acme, "order:placed").await.0, 3);
    // Events removed by retention are no longer counted. On PostgreSQL
    // retention drops whole partitions: these old ones are in the first.
    if s.is_postgres() {
        common::partitions::insert_dated(&s.pool().await, "old", 3, chrono::Duration::days(1)).await;
        assert_eq!(usage(&s, &acme, "a:b").await.0, 3);
    }
    s.settle().await;
    while s.store.prune(chrono::Utc::now() + chrono::Duration::seconds(1)).await.expect("prune") > 0 {}
    assert_eq!(usage(&s, &acme, "a:b").await, (0, Value::Null), "a dropped partition's events leave the counts");
    if !s.is_postgres() {
        assert_eq!(usage(&s, &acme, "order:placed").await, (0, Value::Null));
        assert_eq!(usage(&s, &globex, "order:placed").await.0, 0);
    }
});
