//! The append counters of `/metrics`: events stored, and idempotent retries
//! apart, counted by a recorder of this test's own (`OwnMetrics`).

use crate::common;

use common::{OwnMetrics, TestServer, token};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

// Each append's change to (stored events, retries).
both_stores!(current_thread, stored_events_and_retries_are_counted_apart, |s: TestServer| async move {
    let metrics = OwnMetrics::install();
    let counters = || (metrics.value(STORED), metrics.value(RETRIES));
    let t = token("acme", "u1", &["publisher"]);
    let one = |id: Uuid| json!({ "id": id, "stream": "m-1", "type": "x:y", "data": { "id": id } });
    let (first, second, twice) = (one(Uuid::new_v4()), one(Uuid::new_v4()), one(Uuid::new_v4()));
    let steps = [
        ("a new event", first.clone(), (1.0, 0.0)),
        ("its retry", first.clone(), (0.0, 1.0)),
        ("a retry beside a new event", json!({ "events": [first, second] }), (1.0, 1.0)),
        ("a new id twice in one request", json!({ "events": [twice.clone(), twice] }), (1.0, 1.0)),
    ];
    for (step, body, expected) in steps {
        let before = counters();
        let (status, answer) = s.append(&t, body).await;
        assert_eq!(status, StatusCode::CREATED, "{step}: {answer}");
        let after = counters();
        assert_eq!((after.0 - before.0, after.1 - before.1), expected, "{step}");
    }
});

const STORED: &str = "eventfeed_appended_events_total";
const RETRIES: &str = "eventfeed_idempotent_retries_total";
