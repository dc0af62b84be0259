//! The type catalog where the store or the process matters: counts of
//! events appended with SQL, appends never waiting on an application's open
//! transaction, `eventfeed types check` finding events that do not conform,
//! and a real server process reloading on SIGHUP and refusing a bad catalog
//! at start-up.

use crate::common;
use crate::types::schema_dir;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{SECRET, TestServer, event, token, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_eventfeed");

fn paid_schema() -> [(&'static str, Value); 1] {
    [(
        "invoice.paid.json",
        json!({"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}, "required": ["amount"]}),
    )]
}

/// `count` of `event_type` in `GET /api/types` for `t`'s tenant.
async fn count(s: &TestServer, t: &str, event_type: &str) -> i64 {
    let (status, body) = s.get(t, "/api/types").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = body["types"].as_array().unwrap().iter().find(|e| e["type"] == event_type);
    found.map_or(0, |e| e["count"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_appends_are_counted_and_an_open_transaction_holds_back_no_append() {
    let dir = schema_dir(&paid_schema());
    let s = TestServer::postgres_with(&["--schemas", dir.to_str().unwrap()]).await;
    let t = token("acme", "u1", &["publisher"]);
    let mut app = sqlx::PgConnection::connect(s.db_url.as_ref().unwrap()).await.unwrap();
    common::sql::append_event(&mut app, "inv-1", "invoice:paid", json!({"amount": 5}), None, None).await.unwrap();
    assert_eq!(count(&s, &t, "invoice:paid").await, 1);

    // An application's transaction appends the type and stays open: the
    // server's appends of the same tenant and type do not wait for it.
    let mut open = app.begin().await.unwrap();
    common::sql::append_event(&mut open, "inv-2", "invoice:paid", json!({"amount": 6}), None, None).await.unwrap();
    let (status, body) = s.append(&t, event("inv-3", "invoice:paid", json!({"amount": 7}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.store.fold_type_counts().await.expect("a fold does not wait for it either");
    assert_eq!(count(&s, &t, "invoice:paid").await, 2, "the open transaction's event is not counted yet");
    open.commit().await.unwrap();
    assert_eq!(count(&s, &t, "invoice:paid").await, 3);
    s.store.fold_type_counts().await.unwrap();
    assert_eq!(count(&s, &t, "invoice:paid").await, 3);
    s.stop().await;
}

/// Runs `eventfeed types check`; returns whether it succeeded, and its stdout and stderr.
fn types_check(dir: &Path, store: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["types", "check", "--schemas", dir.to_str().unwrap()])
        .args(store)
        .env_remove("DATABASE_URL")
        .output()
        .expect("eventfeed runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_check_names_the_sql_appended_events_that_do_not_conform() {
    let dir = schema_dir(&paid_schema());
    let s = TestServer::postgres_with(&["--schemas", dir.to_str().unwrap()]).await;
    let url = s.db_url.clone().unwrap();
    let t = token("acme", "u1", &["publisher"]);
    for n in 0..3 {
        s.append(&t, event("inv-1", "invoice:paid", json!({"amount": n}))).await;
    }
    s.append(&t, event("inv-1", "invoice:sent", json!({"to": 1}))).await;
    let mut app = sqlx::PgConnection::connect(&url).await.unwrap();
    let bad = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    common::sql::append_event(&mut app, "inv-2", "invoice:paid", json!({"amount": "12"}), Some(bad[0]), None)
        .await
        .unwrap();
    common::sql::append_event(&mut app, "inv-2", "invoice:paid", json!({}), Some(bad[1]), None).await.unwrap();
    s.settle().await;

    let (ok, stdout, stderr) = types_check(&dir, &["--database-url", &url]);
    assert!(!ok, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains(&bad[0].to_string()) && lines[0].contains("/amount") && lines[0].contains("(type)"),
        "{stdout}"
    );
    assert!(lines[1].contains(&bad[1].to_string()) && lines[1].contains("(required)"), "{stdout}");
    assert!(stderr.contains("2 of 6 stored events do not conform"), "{stderr}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_check_reads_the_embedded_store_too() {
    let file = std::env::temp_dir().join(format!("ef_check_{}.db", uuid::Uuid::new_v4().simple()));
    let file = file.to_str().unwrap().to_owned();
    // Appended before the schema existed: nothing checked them.
    let s = TestServer::start(&["--data-file", &file]).await;
    let t = token("acme", "u1", &["publisher"]);
    let (_, stored) = s.append(&t, event("inv-1", "invoice:paid", json!({"amount": -1}))).await;
    s.append(&t, event("inv-1", "invoice:paid", json!({"amount": 1}))).await;
    s.stop().await;

    let dir = schema_dir(&paid_schema());
    let (ok, stdout, stderr) = types_check(&dir, &["--data-file", &file]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stdout.contains(stored["events"][0]["id"].as_str().unwrap()) && stdout.contains("(minimum)"), "{stdout}");
    assert!(stderr.contains("1 of 2 stored events"), "{stderr}");

    let lenient = schema_dir(&[("invoice.paid.json", json!({"type": "object"}))]);
    let (ok, stdout, stderr) = types_check(&lenient, &["--data-file", &file]);
    assert!(ok && stdout.contains("all 2 stored events conform"), "{stdout}{stderr}");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }
}

/// A server process whose output lines are collected as they come.
struct Process {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let mut child = Command::new(BIN)
            .args(["--addr", "127.0.0.1:0", "--jwt-secret", SECRET])
            .args(args)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eventfeed starts");
        let collect = |pipe: Box<dyn std::io::Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push_str(&(line + "\n"));
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Process { child, stdout, stderr }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([name, &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_reloads_on_sighup_and_refuses_a_bad_catalog() {
    let dir = schema_dir(&paid_schema());
    let file = std::env::temp_dir().join(format!("ef_hup_{}.db", uuid::Uuid::new_v4().simple()));
    let server = Process::start(&["--schemas", dir.to_str().unwrap(), "--data-file", file.to_str().unwrap()]);
    let mut base = String::new();
    wait_until("the server listens", async || {
        let out = server.stdout.lock().unwrap().clone();
        out.lines().find_map(|l| l.strip_prefix("listening on ")).map(|a| base = format!("http://{a}")).is_some()
    })
    .await;
    let http = reqwest::Client::new();
    let t = token("acme", "u1", &["publisher"]);
    let types = async || -> Vec<String> {
        let body: Value =
            http.get(format!("{base}/api/types")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
        body["types"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(types().await, ["invoice:paid"]);

    std::fs::write(dir.join("invoice.sent.json"), r#"{"required": ["to"]}"#).unwrap();
    server.signal("-HUP");
    wait_until("SIGHUP loaded invoice:sent", async || types().await.len() == 2).await;

    std::fs::write(dir.join("invoice.voided.json"), r#"{"type": "nothing"}"#).unwrap();
    server.signal("-HUP");
    wait_until("SIGHUP refused the bad file", async || server.stderr.lock().unwrap().contains("not reloaded")).await;
    let log = server.stderr.lock().unwrap().clone();
    let refusal = log.lines().find(|l| l.contains("not reloaded")).unwrap();
    assert!(refusal.contains("invoice.voided.json"), "{refusal}");
    assert_eq!(types().await, ["invoice:paid", "invoice:sent"], "the catalog in force stays");
    drop(server);

    // At start-up the same file stops the server, with one line naming it.
    let out = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--jwt-secret", SECRET, "--data-file", file.to_str().unwrap()])
        .args(["--schemas", dir.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .output()
        .expect("eventfeed runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("eventfeed: EVENTFEED_SCHEMAS: ") && last.contains("invoice.voided.json"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}
