//! The append counters of `/metrics`: events stored, and idempotent retries
//! apart. Metrics have one recorder per process, and the other tests of this
//! binary append and retry beside this one, so the counting runs in a process
//! of its own: this test binary again, filtered to one test.

use crate::common;

use common::{TestServer, token};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[test]
fn stored_events_and_retries_are_counted_apart() {
    let test = "metrics::counted_in_a_process_of_its_own";
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--ignored", "--test-threads=1", "--nocapture"])
        .output()
        .expect("the test binary runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // `1 passed`: a filter that matched nothing would pass as well.
    assert!(output.status.success() && stdout.contains("1 passed"), "{test}:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run alone, in a process of its own, by stored_events_and_retries_are_counted_apart"]
async fn counted_in_a_process_of_its_own() {
    counts_on(TestServer::postgres().await).await;
    counts_on(TestServer::sqlite().await).await;
}

/// Each append's change to (stored events, retries).
async fn counts_on(s: TestServer) {
    let t = token("acme", "u1", &["publisher"]);
    let one = |id: Uuid| json!({ "id": id, "stream": "m-1", "type": "x:y", "data": { "id": id } });
    let (first, second, twice) = (one(Uuid::new_v4()), one(Uuid::new_v4()), one(Uuid::new_v4()));
    let steps = [
        ("a new event", first.clone(), (1, 0)),
        ("its retry", first.clone(), (0, 1)),
        ("a retry beside a new event", json!({ "events": [first, second] }), (1, 1)),
        ("a new id twice in one request", json!({ "events": [twice.clone(), twice] }), (1, 1)),
    ];
    for (step, body, expected) in steps {
        let before = counters(&s).await;
        let (status, answer) = s.append(&t, body).await;
        assert_eq!(status, StatusCode::CREATED, "{step}: {answer}");
        let after = counters(&s).await;
        assert_eq!((after.0 - before.0, after.1 - before.1), expected, "{step} on {}", store(&s));
    }
    s.stop().await;
}

/// (`eventfeed_appended_events_total`, `eventfeed_idempotent_retries_total`);
/// a counter appears at its first use, so a missing one is 0.
async fn counters(s: &TestServer) -> (u64, u64) {
    let text = s.metrics().await;
    let value = |name: &str| {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.and_then(|l| l.split_whitespace().nth(1)).map_or(0, |v| v.parse().expect("a counter"))
    };
    (value("eventfeed_appended_events_total"), value("eventfeed_idempotent_retries_total"))
}

fn store(s: &TestServer) -> &'static str {
    if s.is_postgres() { "postgres" } else { "sqlite" }
}
