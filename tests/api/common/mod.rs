//! Test harness: a real server on 127.0.0.1:0 over a fresh database each.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use eventfeed::cli::Cli;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::oneshot;

pub mod cluster;
pub mod partitions;
pub mod sql;

/// How long a test waits for a condition before it fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

pub const SECRET: &str = "test-secret-with-enough-length";
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs a test body once per store: `both_stores!(name, |server| async move { … })`.
/// `both_stores!(current_thread, name, …)` runs it on a current-thread
/// runtime, as a test of its own metrics (`OwnMetrics`) must.
#[macro_export]
macro_rules! both_stores {
    (current_thread, $name:ident, $body:expr) => {
        both_stores!(@on (flavor = "current_thread") $name, $body);
    };
    ($name:ident, $body:expr) => {
        both_stores!(@on (flavor = "multi_thread", worker_threads = 2) $name, $body);
    };
    (@on ($($runtime:tt)*) $name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test($($runtime)*)]
            async fn postgres() {
                let server = common::TestServer::postgres().await;
                ($body)(server.clone()).await;
                server.stop().await;
            }
            #[tokio::test($($runtime)*)]
            async fn sqlite() {
                let server = common::TestServer::sqlite().await;
                ($body)(server.clone()).await;
                server.stop().await;
            }
        }
    };
}

/// A database of its own, dropped at `stop`. Its name carries the test
/// process's pid, so that the databases of a test run that panicked or was
/// killed are dropped by the next run.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("ef_test_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(ADMIN_URL).await.expect("PostgreSQL on 127.0.0.1:5432");
        drop_orphans(&mut admin).await;
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        TestDb { name, url }
    }

    pub async fn drop_db(&self) {
        if let Ok(mut admin) = PgConnection::connect(ADMIN_URL).await {
            drop_database(&mut admin, &self.name).await;
        }
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
}

/// Drops the test databases of processes that are gone.
async fn drop_orphans(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ef\\_test\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.strip_prefix("ef_test_").and_then(|rest| rest.split('_').next());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            drop_database(admin, &name).await;
        }
    }
}

/// The stop signal and the task serving.
type Running = (oneshot::Sender<()>, tokio::task::JoinHandle<()>);

#[derive(Clone)]
pub struct TestServer {
    pub base: String,
    pub http: Client,
    /// The PostgreSQL database, when the store is PostgreSQL.
    pub db_url: Option<String>,
    /// The server's store, for what no API does (retention pruning).
    pub store: eventfeed::store::Store,
    /// The server's live feed: `head()` is how far the tailer has delivered.
    pub feed: eventfeed::feed::Feed,
    /// The server's type catalog: `reload()` is what SIGHUP does.
    pub schemas: std::sync::Arc<eventfeed::schemas::Schemas>,
    db_name: Option<String>,
    file: Option<PathBuf>,
    stop: std::sync::Arc<std::sync::Mutex<Option<Running>>>,
}

impl TestServer {
    pub async fn postgres() -> TestServer {
        TestServer::postgres_with(&[]).await
    }

    /// A server on a fresh database, dropped at `stop`; `args` are more CLI flags.
    pub async fn postgres_with(args: &[&str]) -> TestServer {
        let db = TestDb::create().await;
        let mut argv = vec!["--database-url", db.url.as_str()];
        argv.extend_from_slice(args);
        let mut server = TestServer::start(&argv).await;
        server.db_url = Some(db.url.clone());
        server.db_name = Some(db.name.clone());
        server
    }

    pub async fn sqlite() -> TestServer {
        TestServer::sqlite_with(&[]).await
    }

    /// A server on a fresh embedded file, deleted at `stop`; `args` are more CLI flags.
    pub async fn sqlite_with(args: &[&str]) -> TestServer {
        let file = std::env::temp_dir().join(format!("ef_test_{}.db", uuid::Uuid::new_v4().simple()));
        let mut argv = vec!["--data-file", file.to_str().expect("utf-8 temp path")];
        argv.extend_from_slice(args);
        let mut server = TestServer::start(&argv).await;
        server.file = Some(file);
        server
    }

    /// Starts the real server in this process; `args` are CLI flags.
    pub async fn start(args: &[&str]) -> TestServer {
        let mut argv = vec!["eventfeed", "--addr", "127.0.0.1:0", "--jwt-secret", SECRET, "--drain", "0"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("flags parse");
        // Bind first, then serve: no waiting for start-up.
        let listener = tokio::net::TcpListener::bind(cli.config.addr).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let server = eventfeed::build(cli.config).await.expect("server builds");
        let (store, feed) = (server.state.store.clone(), server.state.feed.clone());
        let schemas = server.state.schemas.clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = futures::stream::once(async {
                let _ = stop_rx.await;
            });
            eventfeed::run(listener, server, Box::pin(stop)).await.expect("server runs");
        });
        TestServer {
            base,
            http: Client::new(),
            db_url: None,
            store,
            feed,
            schemas,
            db_name: None,
            file: None,
            stop: std::sync::Arc::new(std::sync::Mutex::new(Some((stop_tx, task)))),
        }
    }

    pub async fn stop(&self) {
        let taken = self.stop.lock().unwrap().take();
        if let Some((tx, task)) = taken {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(name) = &self.db_name {
            TestDb { name: name.clone(), url: String::new() }.drop_db().await;
        }
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.db_url.is_some()
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(self.db_url.as_ref().expect("a PostgreSQL test")).await.expect("connect")
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token)
    }

    /// Appends one event; returns status and body.
    pub async fn append(&self, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, "/api/events", token).json(&body)).await
    }

    /// GETs a path; returns status and body.
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path, token)).await
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap()
    }

    /// Waits until every committed event is readable. On PostgreSQL reads
    /// stop at the cluster-wide snapshot horizon, so a transaction open in
    /// any database (another test's) holds them back for a moment.
    pub async fn settle(&self) {
        let Some(url) = &self.db_url else { return };
        let pool = PgPool::connect(url).await.expect("connect");
        wait_until("the horizon passed the committed events", async || {
            sqlx::query_scalar(
                "SELECT coalesce(max(tx_id), 0) < pg_snapshot_xmin(pg_current_snapshot())::text::bigint FROM eventfeed.events",
            )
            .fetch_one(&pool)
            .await
            .expect("horizon query")
        })
        .await;
        pool.close().await;
    }

    /// Reads every visible event after `after` in pages of `limit`.
    pub async fn read_all(&self, token: &str, after: &str, limit: usize) -> Vec<Value> {
        self.settle().await;
        let mut cursor = after.to_owned();
        let mut out = Vec::new();
        loop {
            let (status, page) = self.get(token, &format!("/api/events?after={cursor}&limit={limit}")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            out.extend(page["events"].as_array().expect("events").iter().cloned());
            cursor = page["cursor"].as_str().expect("cursor").to_owned();
            if !page["hasMore"].as_bool().expect("hasMore") {
                return out;
            }
        }
    }
}

pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let response = req.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Mints a token; `claims` are merged over sub/tenant_id/exp.
pub fn token_with(claims: Value) -> String {
    let mut base = json!({ "exp": chrono::Utc::now().timestamp() + 3600 });
    base.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &base,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub fn token(tenant: &str, user: &str, roles: &[&str]) -> String {
    token_with(json!({ "sub": user, "tenant_id": tenant, "name": user, "roles": roles }))
}

pub fn event(stream: &str, event_type: &str, data: Value) -> Value {
    json!({ "stream": stream, "type": event_type, "data": data })
}

/// Parses a cursor for order checks (tests may; clients must not).
pub fn cursor(e: &Value) -> eventfeed::cursor::Cursor {
    e["cursor"].as_str().expect("cursor").parse().expect("valid cursor")
}

pub fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

/// Polls `ready` every few milliseconds until it holds; fails, naming `what`,
/// after `WAIT_LIMIT`.
pub async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while !ready().await {
        assert!(std::time::Instant::now() < deadline, "waited {WAIT_LIMIT:?} in vain until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll again
    }
}

/// The value of a metric without labels in Prometheus text; 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a metric value"))
}

/// The metrics of this test's own server. `/metrics` shows the process's
/// recorder, which every test in this binary shares while they run
/// concurrently. On a current-thread runtime the server's tasks run on the
/// test's thread, where this recorder takes the place of the process's.
pub struct OwnMetrics {
    handle: PrometheusHandle,
    _on_this_thread: metrics::LocalRecorderGuard<'static>,
}

impl OwnMetrics {
    /// Records this thread's metrics from now on, until dropped.
    pub fn install() -> OwnMetrics {
        assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread,
            "a test of its own metrics runs its server on its own thread: flavor = \"current_thread\""
        );
        let recorder: &'static PrometheusRecorder = Box::leak(Box::new(PrometheusBuilder::new().build_recorder()));
        OwnMetrics { handle: recorder.handle(), _on_this_thread: metrics::set_default_local_recorder(recorder) }
    }

    /// A metric without labels; 0 before it is first recorded.
    pub fn value(&self, name: &str) -> f64 {
        metric(&self.handle.render(), name)
    }
}
