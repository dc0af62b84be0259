//! The catalog's unit tests: file names, what a load refuses, the location
//! and rule a refusal names, and the bound on patterns.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::append::{Rules, parse_request};
use crate::auth::Principal;

/// A fresh directory holding `files` (name, content).
fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ef_schemas_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn one(schema: Value) -> Result<TypeSchema, String> {
    load::compile(schema)
}

#[test]
fn a_file_name_names_its_type() {
    assert_eq!(type_of_file("invoice.paid.json").as_deref(), Some("invoice:paid"));
    assert_eq!(type_of_file("bank.transaction.imported.json").as_deref(), Some("bank:transaction.imported"));
    assert_eq!(type_of_file("invoice:line:added.json").as_deref(), Some("invoice:line:added"));
    assert_eq!(type_of_file("README.md"), None);
    assert_eq!(type_of_file(".hidden.json"), None);
    assert_eq!(type_of_file(".json"), None);
}

#[test]
fn the_examples_directory_loads() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schemas");
    let catalog = Catalog::load(std::path::Path::new(dir), false).expect("examples/schemas loads");
    let names: Vec<&str> = catalog.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["invoice:created", "invoice:paid", "invoice:sent"]);
    let paid = catalog.get("invoice:paid").unwrap();
    assert!(paid.description.is_some() && !paid.examples.is_empty());
}

#[test]
fn a_bad_file_fails_the_load_naming_the_file_and_reason_on_one_line() {
    let good = r#"{"type": "object"}"#;
    let cases = [
        ("a.b.json", "{not json", "not JSON"),
        ("a.b.json", "[1]", "a JSON object"),
        ("a.b.json", r#"{"type": 5}"#, "not a valid schema"),
        ("a.b.json", r#"{"minimum": "ten"}"#, "not a valid schema"),
        ("nocolon.json", good, "names no valid event type"),
        ("feed.replayed.json", good, "names no valid event type"),
        ("a.b.json", r#"{"examples": [{"n": "x"}], "properties": {"n": {"type": "number"}}}"#, "examples[0]"),
        ("a.b.json", r#"{"examples": 1}"#, "not a valid schema"),
        ("a.b.json", r#"{"examples": [[]]}"#, "not an object"),
    ];
    for (name, text, reason) in cases {
        let dir = dir_with(&[("ok.fine.json", good), (name, text)]);
        let err = Catalog::load(&dir, false).err().unwrap_or_else(|| panic!("{name} {text} loaded"));
        let line = err.to_string();
        assert!(line.contains(name) && line.contains(reason), "{text}: {line}");
        assert!(!line.contains('\n'), "{line}");
    }
    let twice = dir_with(&[("a.b.json", good), ("a:b.json", good)]);
    assert!(Catalog::load(&twice, false).unwrap_err().reason.contains("a second file for type a:b"));
    let missing = std::env::temp_dir().join("ef_schemas_no_such_dir");
    assert!(Catalog::load(&missing, false).unwrap_err().reason.contains("cannot read the directory"));
}

#[test]
fn a_reference_outside_the_file_is_refused_at_load() {
    for schema in [
        json!({"$ref": "https://example.com/money.json"}),
        json!({"properties": {"a": {"$ref": "http://127.0.0.1:9/x.json#/defs/a"}}}),
        json!({"$id": "https://example.com/invoice.json", "properties": {"a": {"$ref": "money.json"}}}),
        json!({"$ref": "file:///etc/passwd"}),
    ] {
        let err = one(schema.clone()).err().unwrap_or_else(|| panic!("{schema} loaded"));
        assert!(err.contains("refused"), "{schema}: {err}");
    }
    // References within the file are fine.
    let local = json!({"$defs": {"money": {"type": "number", "minimum": 0}},
                       "properties": {"amount": {"$ref": "#/$defs/money"}}});
    let schema = one(local).expect("a local $ref loads");
    assert_eq!(schema.check(&json!({"amount": -1})).unwrap_err().rule, "minimum");
}

#[test]
fn a_pattern_cannot_backtrack_catastrophically() {
    // A backtracking engine takes 2^n steps to refuse n `a`s and a `!`
    // against this pattern: at n = 40, hours. The linear-time engine
    // answers at once, even for a string of 200,000 characters.
    let schema = one(json!({"properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}})).unwrap();
    for n in [40, 200_000] {
        let data = json!({"s": format!("{}!", "a".repeat(n))});
        let started = Instant::now();
        let violation = schema.check(&data).unwrap_err();
        assert_eq!((violation.path.as_str(), violation.rule.as_str()), ("/s", "pattern"));
        assert!(started.elapsed() < Duration::from_secs(5), "{n}: {:?}", started.elapsed());
    }
    assert!(schema.check(&json!({"s": "a".repeat(200_000)})).is_ok());
    // Look-around and back-references need backtracking: refused at load.
    for pattern in ["^(?=a)a$", "^(a)\\1$"] {
        let err = one(json!({"properties": {"s": {"pattern": pattern}}})).unwrap_err();
        assert!(err.contains("not a valid schema"), "{pattern}: {err}");
    }
    // So is a pattern whose compiled form is beyond the size limit.
    let started = Instant::now();
    assert!(one(json!({"properties": {"s": {"pattern": "(\\w{1000}){1000}"}}})).is_err());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn a_refusal_names_the_location_and_the_rule() {
    let schema = one(json!({
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0},
            "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
            "a/b": {"type": "string"}
        },
        "required": ["amount"]
    }))
    .unwrap();
    let at = |data: Value| schema.check(&data).map_err(|v| (v.path, v.rule));
    assert_eq!(at(json!({"amount": 5})), Ok(()));
    assert_eq!(at(json!({"amount": -1})), Err(("/amount".into(), "minimum".into())));
    assert_eq!(at(json!({"amount": "12"})), Err(("/amount".into(), "type".into())));
    assert_eq!(at(json!({})), Err(("/amount".into(), "required".into())));
    assert_eq!(at(json!({"amount": 1, "lines": [{"sku": "a"}, {}]})), Err(("/lines/1/sku".into(), "required".into())));
    assert_eq!(at(json!({"amount": 1, "a/b": 3})), Err(("/a~1b".into(), "type".into())));
}

fn publisher() -> Principal {
    Principal {
        tenant_id: "acme".into(),
        user_id: "u-1".into(),
        username: None,
        roles: ["publisher".to_owned()].into(),
        exp: i64::MAX,
    }
}

fn rules(closed: bool) -> Rules {
    let dir = dir_with(&[("invoice.paid.json", r#"{"required": ["amount"]}"#)]);
    Rules { max_event_bytes: 1024, catalog: Arc::new(Catalog::load(&dir, closed).unwrap()) }
}

#[test]
fn an_append_is_checked_and_a_batch_refusal_names_the_event() {
    let paid = |data: Value| json!({"stream": "s", "type": "invoice:paid", "data": data});
    let other = json!({"stream": "s", "type": "invoice:voided", "data": {}});
    let open = rules(false);
    assert!(parse_request(paid(json!({"amount": 1})), &publisher(), &open, None).is_ok());
    assert!(parse_request(other.clone(), &publisher(), &open, None).is_ok());

    let single = parse_request(paid(json!({})), &publisher(), &open, None).unwrap_err().body();
    assert_eq!((single.code.as_str(), single.path.as_deref(), single.index), ("invalid", Some("/amount"), None));
    assert_eq!(single.rule.as_deref(), Some("required"));

    let batch = json!({"events": [paid(json!({"amount": 1})), other.clone(), paid(json!({"amount": 2, "x": 1})), paid(json!({}))]});
    let refused = parse_request(batch, &publisher(), &open, None).unwrap_err().body();
    assert_eq!((refused.index, refused.path.as_deref()), (Some(3), Some("/amount")));
    assert!(refused.message.starts_with("event 3: "), "{}", refused.message);

    let closed = rules(true);
    let err = parse_request(other.clone(), &publisher(), &closed, None).unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(err.to_string().contains("no schema"), "{err}");
    let batch = json!({"events": [paid(json!({"amount": 1})), other]});
    assert!(parse_request(batch, &publisher(), &closed, None).unwrap_err().to_string().starts_with("event 1: "));
}

#[test]
fn a_reload_replaces_the_catalog_only_when_every_file_loads() {
    let dir = dir_with(&[("invoice.paid.json", r#"{"required": ["amount"]}"#)]);
    let schemas = Schemas::load(Some(dir.clone()), false).unwrap();
    assert!(schemas.current().check("invoice:paid", &json!({})).is_err());

    std::fs::write(dir.join("invoice.paid.json"), r#"{"required": ["total"]}"#).unwrap();
    std::fs::write(dir.join("invoice.sent.json"), r#"{"type": "object"}"#).unwrap();
    assert_eq!(schemas.reload().unwrap().len(), 2);
    assert!(schemas.current().check("invoice:paid", &json!({"amount": 1})).is_err());

    std::fs::write(dir.join("invoice.voided.json"), r#"{"type": 7}"#).unwrap();
    let err = schemas.reload().unwrap_err();
    assert!(err.to_string().contains("invoice.voided.json"), "{err}");
    let kept = schemas.current();
    assert_eq!(kept.len(), 2);
    assert!(kept.check("invoice:paid", &json!({"total": 1})).is_ok());
}

#[test]
fn the_typescript_map_follows_the_schemas() {
    let dir = dir_with(&[(
        "order.placed.json",
        r##"{"description": "An order", "$defs": {"money": {"type": "integer"}},
             "properties": {"total": {"$ref": "#/$defs/money"}, "status": {"enum": ["new", "paid"]},
                            "lines": {"type": "array", "items": {"type": "string"}},
                            "note": {"type": ["string", "null"]}, "first-line": {"const": 1}},
             "required": ["total", "status"], "additionalProperties": false}"##,
    )]);
    let ts = typescript::render(&Catalog::load(&dir, false).unwrap());
    for expected in [
        "export type Events = {",
        "/** An order */",
        "\"order:placed\": {",
        "total: number;",
        "status: (\"new\" | \"paid\");",
        "lines?: Array<string>;",
        "note?: (string | null);",
        "\"first-line\"?: 1;",
    ] {
        assert!(ts.contains(expected), "{expected} missing from\n{ts}");
    }
    assert!(!ts.contains("[key: string]"), "{ts}");
}
