//! Read replicas, over real streaming replication (a primary and a replica
//! of the test's own, see `common::cluster`): a replica's answers are the
//! primary's; a paused, stopped or restarted replica costs no client an
//! error, a late event or a cursor going backwards.

use crate::common;

use std::time::Duration;

use common::cluster::{Cluster, DB};
use common::{TestServer, event, token, token_with};
use eventfeed::cursor::Cursor;
use eventfeed::event::TypeFilter;
use eventfeed::feed::Reader;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

/// A server on the cluster's primary; with `replicas`, those read replicas; `more` flags.
async fn server(cluster: &Cluster, replicas: &[String], more: &[&str]) -> TestServer {
    let primary = cluster.primary_url(DB);
    let list = replicas.join(",");
    let mut args = vec!["--database-url", &primary];
    if !replicas.is_empty() {
        args.extend(["--replica-urls", &list]);
    }
    args.extend_from_slice(more);
    let mut server = TestServer::start(&args).await;
    server.db_url = Some(primary.clone()); // for `settle`; the cluster is dropped, not the database
    server
}

/// `/ready`'s entry for the first replica.
async fn replica_state(s: &TestServer) -> Value {
    let (_, ready) = common::send(s.http.get(format!("{}/ready", s.base))).await;
    ready["replicas"][0].clone()
}

async fn replica_reads(s: &TestServer) -> u64 {
    replica_state(s).await["reads"].as_u64().expect("reads")
}

/// Waits until the replica is up, caught up, and has answered a read needing
/// everything this server has delivered.
async fn wait_serving(s: &TestServer, t: &str) {
    common::wait_until("the replica serves reads", async || {
        let state = replica_state(s).await;
        if state["up"] != json!(true) || !state["lagSeconds"].as_f64().is_some_and(|lag| lag < 1.0) {
            return false;
        }
        let before = replica_reads(s).await;
        let head = s.feed.head();
        s.get(t, &format!("/api/events?after={head}")).await;
        replica_reads(s).await > before
    })
    .await;
}

/// Appends `n` events to tenant `acme` (every fifth only for `u2`, some in
/// atomic batches of three) and three to `other`; waits until they are readable.
async fn populate(s: &TestServer, n: usize) {
    let service = token_with(json!({ "sub": "svc", "tenant_id": "acme", "roles": ["service"] }));
    let mut i = 0;
    while i < n {
        let one = |i: usize| {
            let mut e = event(
                &format!("s{}", i % 4),
                if i.is_multiple_of(3) { "invoice:paid" } else { "expense:filed" },
                json!({ "i": i }),
            );
            if i.is_multiple_of(5) {
                e["audience"] = json!({ "users": ["u2"] });
            }
            e
        };
        let body =
            if i % 10 == 0 && i + 3 <= n { json!({ "events": [one(i), one(i + 1), one(i + 2)] }) } else { one(i) };
        let (status, answer) = s.append(&service, body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        i += answer["events"].as_array().unwrap().len();
    }
    for i in 0..3 {
        s.append(&token("other", "x", &["publisher"]), event("o", "a:b", json!({ "i": i }))).await;
    }
    s.settle().await;
}

/// Every page of a cursor-paginated GET, from `after=0`.
async fn pages(s: &TestServer, t: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, page) = s.get(t, &format!("{path}{sep}after={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        cursor = page["cursor"].as_str().unwrap().to_owned();
        let more = page["hasMore"].as_bool().unwrap();
        out.push(page);
        if !more {
            return out;
        }
    }
}

/// The first `n` events of an SSE stream.
async fn sse(s: &TestServer, t: &str, after: &str, n: usize) -> Vec<Value> {
    let url = format!("{}/api/events/stream?access_token={t}&after={after}", s.base);
    let response = s.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let (mut text, mut out) = (String::new(), Vec::new());
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("SSE data in time");
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                out.push(serde_json::from_str(data.trim()).unwrap());
            }
        }
    }
    out
}

/// A socket replay's reads: pages up to the hand-over point, as `socket/delivery.rs` reads them.
async fn replay(s: &TestServer, user: &str, after: Cursor) -> Vec<eventfeed::event::Event> {
    let mut reader = Reader::until(&s.feed, "acme", user, after, s.feed.head()).limit(9);
    let mut out = Vec::new();
    while let Some(page) = reader.next(&TypeFilter::default()).await.expect("not stopped") {
        out.extend(page.events);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_exactly_as_the_primary() {
    let cluster = Cluster::start().await;
    // The second is the right replica but another of its databases: refused.
    let with = server(&cluster, &[cluster.replica_url(DB), cluster.replica_url("postgres")], &[]).await;
    let primary = server(&cluster, &[], &[]).await;
    populate(&with, 60).await;
    let (u1, u2) = (token("acme", "u1", &[]), token("acme", "u2", &[]));
    let auditor = token("acme", "a", &["auditor"]);
    wait_serving(&with, &u1).await;
    let before = replica_reads(&with).await;

    for path in ["/api/events?limit=7", "/api/events?limit=1000", "/api/events?limit=4&types=invoice:*"] {
        for t in [&u1, &u2] {
            assert_eq!(pages(&with, t, path).await, pages(&primary, t, path).await, "{path}");
        }
    }
    for path in ["/api/audit?limit=8", "/api/audit?limit=5&type=invoice:paid&stream=s1"] {
        assert_eq!(pages(&with, &auditor, path).await, pages(&primary, &auditor, path).await, "{path}");
    }
    for path in ["/api/streams/s1", "/api/streams/s2?fromVersion=4&limit=3", "/api/streams/none"] {
        assert_eq!(with.get(&u2, path).await, primary.get(&u2, path).await, "{path}");
    }
    let visible = pages(&primary, &u1, "/api/events?limit=1000").await[0]["events"].as_array().unwrap().len();
    assert_eq!(sse(&with, &u1, "0", visible).await, sse(&primary, &u1, "0", visible).await);
    for user in ["u1", "u2"] {
        let (a, b) = (replay(&with, user, Cursor::ZERO).await, replay(&primary, user, Cursor::ZERO).await);
        assert_eq!(serde_json::to_value(a).unwrap(), serde_json::to_value(b).unwrap());
    }
    let middle = pages(&primary, &u1, "/api/events?limit=20").await[0]["cursor"].clone();
    let ack = json!({ "consumer": "laptop", "cursor": middle });
    let (status, _) = common::send(with.request(Method::POST, "/api/events/ack", &u1).json(&ack)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, consumers) = with.get(&auditor, "/api/consumers").await;
    assert_eq!(consumers, primary.get(&auditor, "/api/consumers").await.1);
    assert!(consumers["consumers"][0]["behind"].as_u64().is_some_and(|n| n > 0), "{consumers}");

    // The replica answered these reads, not the primary behind its back.
    assert!(replica_reads(&with).await >= before + 20, "{}", replica_state(&with).await);
    let (_, ready) = common::send(with.http.get(format!("{}/ready", with.base))).await;
    assert_eq!((ready["replicas"][1]["up"].clone(), ready["replicas"][1]["reads"].clone()), (json!(false), json!(0)));
    let metrics = with.metrics().await;
    assert!(metrics.contains("eventfeed_replica_reads_total{"), "{metrics}");
    assert!(metrics.contains("eventfeed_replica_lag_seconds{"), "{metrics}");
    with.stop().await;
    primary.stop().await;
}

/// A client that long-polls the feed until it has `total` events; fails if
/// its cursor ever goes backwards or an event comes twice.
fn follower(s: &TestServer, t: &str, total: usize) -> tokio::task::JoinHandle<Vec<Value>> {
    let (s, t) = (s.clone(), t.to_owned());
    tokio::spawn(async move {
        let (mut cursor, mut got) = ("0".to_owned(), Vec::<Value>::new());
        while got.len() < total {
            let (status, page) = s.get(&t, &format!("/api/events?after={cursor}&wait=1&limit=7")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let next = page["cursor"].as_str().unwrap().to_owned();
            assert!(next.parse::<Cursor>().unwrap() >= cursor.parse::<Cursor>().unwrap(), "{cursor} then {next}");
            for e in page["events"].as_array().unwrap() {
                assert!(got.last().is_none_or(|last| common::cursor(last) < common::cursor(e)), "out of order: {e}");
                got.push(e.clone());
            }
            cursor = next;
        }
        got
    })
}

/// Appends one `a:b` event for everyone in `acme`; returns its envelope.
async fn append_one(s: &TestServer, i: usize) -> Value {
    let (status, body) = s.append(&token("acme", "p", &["publisher"]), event("s", "a:b", json!({ "i": i }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["events"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_stopped_or_restarted_replica_costs_no_client_anything() {
    let cluster = Cluster::start().await;
    let s = server(&cluster, &[cluster.replica_url(DB)], &["--replica-max-lag", "6s"]).await;
    let t = token("acme", "u1", &[]);
    for i in 0..30 {
        append_one(&s, i).await;
    }
    s.settle().await;
    wait_serving(&s, &t).await;
    let client = follower(&s, &t, 36);

    // Replay paused: new events still come at once, replays complete, and
    // the replica still answers what it holds (full pages of old history).
    let mut replica = PgConnection::connect(&cluster.replica_url(DB)).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut replica).await.unwrap();
    common::wait_until("replay is paused", async || {
        let state: String =
            sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()").fetch_one(&mut replica).await.unwrap();
        state == "paused"
    })
    .await;
    let before = replica_reads(&s).await;
    let head = s.feed.head();
    let poll = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move { s.get(&t, &format!("/api/events?after={head}&wait=20")).await })
    };
    let appended = append_one(&s, 30).await;
    let (status, page) = tokio::time::timeout(Duration::from_secs(5), poll).await.expect("woken in time").unwrap();
    assert_eq!((status, page["events"][0]["id"].clone()), (StatusCode::OK, appended["id"].clone()));
    let history = pages(&s, &t, "/api/events?limit=5").await;
    assert_eq!(history.last().unwrap()["events"][0]["id"], appended["id"], "complete, the new event included");
    assert!(replica_reads(&s).await > before, "old history is still read from the paused replica");
    let live = [append_one(&s, 31).await, append_one(&s, 32).await];
    assert_eq!(sse(&s, &t, &head.to_string(), 3).await[1..], live);
    // A replay hands over at the tailer's cursor: let it read the last one
    // (SSE, woken by the tailer's bell, may read past it).
    common::wait_until("the tailer read the last event", async || s.feed.head() >= common::cursor(&live[1])).await;
    let replayed = replay(&s, "u1", Cursor::ZERO).await;
    assert_eq!(replayed.len(), 33);
    // Lagging past the bound, it is not asked at all.
    common::wait_until("the paused replica lags past the bound", async || {
        replica_state(&s).await["lagSeconds"].as_f64().is_some_and(|lag| lag > 6.0)
    })
    .await;
    let before = replica_reads(&s).await;
    assert_eq!(pages(&s, &t, "/api/events?limit=5").await.len(), 7);
    assert_eq!(replica_reads(&s).await, before);
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut replica).await.unwrap();
    drop(replica);

    // Replica stopped: every read is answered, from the primary.
    cluster.stop_replica().await;
    for i in 33..36 {
        append_one(&s, i).await;
    }
    s.settle().await;
    let all: usize =
        pages(&s, &t, "/api/events?limit=10").await.iter().map(|p| p["events"].as_array().unwrap().len()).sum();
    assert_eq!(all, 36);
    let auditor = token("acme", "a", &["auditor"]);
    for (who, path) in [(&t, "/api/streams/s"), (&auditor, "/api/audit"), (&auditor, "/api/consumers")] {
        let (status, body) = s.get(who, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    assert_eq!(sse(&s, &t, "0", 36).await.len(), 36);
    common::wait_until("/ready shows the replica down", async || replica_state(&s).await["up"] == json!(false)).await;

    // Replica back: it serves reads again.
    cluster.start_replica().await;
    wait_serving(&s, &t).await;

    let got =
        tokio::time::timeout(Duration::from_secs(30), client).await.expect("the follower got everything").unwrap();
    assert_eq!(got.len(), 36);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_cannot_serve_are_skipped_from_the_start() {
    let cluster = Cluster::start().await;
    let db = common::TestDb::create().await;
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/{DB}", common::cluster::free_port());
    // Another cluster's replica; the primary itself; nobody.
    let urls = [cluster.replica_url(DB), db.url.clone(), unreachable].join(",");
    let mut s = TestServer::start(&["--database-url", &db.url, "--replica-urls", &urls]).await;
    s.db_url = Some(db.url.clone());
    let t = token("acme", "u1", &["publisher"]);
    append_one(&s, 0).await;
    s.settle().await;
    let (status, ready) = common::send(s.http.get(format!("{}/ready", s.base))).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let replicas = ready["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    for r in replicas {
        assert_eq!((r["up"].clone(), r["reads"].clone()), (json!(false), json!(0)), "{ready}");
        assert!(!r["replica"].as_str().unwrap().contains("postgres://"), "named by host, port and database: {r}");
    }
    wait_serving_never(&s, &t).await;
    s.stop().await;
    db.drop_db().await;
}

/// Reads are answered while no replica can serve them, and none does.
async fn wait_serving_never(s: &TestServer, t: &str) {
    for _ in 0..3 {
        let (status, page) = s.get(t, "/api/events?after=0").await;
        assert_eq!((status, page["events"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{page}");
    }
    let (_, ready) = common::send(s.http.get(format!("{}/ready", s.base))).await;
    assert!(ready["replicas"].as_array().unwrap().iter().all(|r| r["reads"] == json!(0)), "{ready}");
}
