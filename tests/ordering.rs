//! Gap-free cursor order under concurrent, out-of-order commits, and the
//! SQL function as an outbox (PostgreSQL only: these are about PostgreSQL).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, cursor, token};
use rand::Rng;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Appends one event with the SQL function inside `tx`.
async fn append_in(tx: &mut sqlx::PgConnection, id: Uuid, stream: &str) {
    sqlx::query("SELECT * FROM eventfeed.append_event(tenant_id => 'acme', stream => $1, type => 'order:placed', data => '{}'::jsonb, id => $2)")
        .bind(stream)
        .bind(id)
        .fetch_one(tx)
        .await
        .expect("append_event");
}

/// One appender: transactions of 1–3 events, random pauses before commit, and
/// some rollbacks. Returns the ids it committed.
async fn appender(pool: PgPool, n: usize, worker: usize) -> Vec<Uuid> {
    let mut committed = Vec::new();
    for i in 0..n {
        let (count, pause, rollback) = {
            let mut rng = rand::rng();
            (rng.random_range(1..=3), rng.random_range(0..15), rng.random_bool(0.15))
        };
        let mut tx = pool.begin().await.unwrap();
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            append_in(&mut tx, *id, &format!("w{worker}-{}", i % 3)).await;
        }
        tokio::time::sleep(Duration::from_millis(pause)).await; // the out-of-order commit under test
        if rollback {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            committed.extend(ids);
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_out_of_order_commits_are_read_once_in_order() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);
    let done = Arc::new(AtomicBool::new(false));

    // The poller reads small pages while the appenders commit.
    let poller = {
        let (s, t, done) = (s.clone(), t.clone(), done.clone());
        tokio::spawn(async move {
            let mut got: Vec<Value> = Vec::new();
            let mut after = "0".to_owned();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let (_, page) = s.get(&t, &format!("/api/events?after={after}&limit=7")).await;
                let events = page["events"].as_array().unwrap().clone();
                after = page["cursor"].as_str().unwrap().to_owned();
                let more = page["hasMore"].as_bool().unwrap();
                got.extend(events);
                if finished && !more {
                    return got;
                }
            }
        })
    };
    let workers: Vec<_> = (0..8).map(|w| tokio::spawn(appender(pool.clone(), 30, w))).collect();
    let mut committed = HashSet::new();
    for w in workers {
        committed.extend(w.await.unwrap().into_iter().map(|id| id.to_string()));
    }
    // Every commit is below the horizon before the poller's last lap.
    s.settle().await;
    done.store(true, Ordering::SeqCst);
    let got = poller.await.unwrap();

    let got_ids = common::ids(&got);
    let unique: HashSet<_> = got_ids.iter().cloned().collect();
    assert_eq!(unique.len(), got_ids.len(), "no event twice");
    assert_eq!(unique, committed, "exactly the committed events");
    assert!(got.windows(2).all(|w| cursor(&w[0]) < cursor(&w[1])), "in cursor order");
    assert_eq!(got, s.read_all(&t, "0", 1000).await, "the same order as a later full read");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_back_later_events_without_a_skip() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);

    let mut slow = pool.begin().await.unwrap();
    let slow_id = Uuid::new_v4();
    append_in(&mut slow, slow_id, "slow").await;
    let fast_id = Uuid::new_v4();
    let mut fast = pool.begin().await.unwrap();
    append_in(&mut fast, fast_id, "fast").await;
    fast.commit().await.unwrap();

    let (_, page) = s.get(&t, "/api/events?after=0").await;
    assert_eq!(page["events"], serde_json::json!([]), "the later commit waits behind the open transaction");
    let (_, audit) = s.get(&token("acme", "a", &["auditor"]), "/api/audit").await;
    assert_eq!(audit["events"], serde_json::json!([]), "audit reads obey the same horizon");

    slow.commit().await.unwrap();
    let got = s.read_all(&t, "0", 10).await;
    assert_eq!(common::ids(&got), [slow_id.to_string(), fast_id.to_string()]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_function_conflicts_and_validates() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let append = |expected: Option<i64>, event_type: &'static str| {
        sqlx::query("SELECT cursor, version FROM eventfeed.append_event(tenant_id => 'acme', stream => 'inv-3', type => $1, data => '{}'::jsonb, expected_version => $2)")
            .bind(event_type)
            .bind(expected)
            .fetch_one(&pool)
    };
    let row = append(Some(0), "invoice:created").await.unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&row, "version"), 1);
    let err = append(Some(0), "invoice:created").await.unwrap_err();
    assert_eq!(err.as_database_error().unwrap().code().as_deref(), Some("EF409"));
    let err = append(None, "not a type").await.unwrap_err();
    assert_eq!(err.as_database_error().unwrap().constraint(), Some("events_type_check"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_function_enforces_the_size_limits() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let mut conn = pool.acquire().await.unwrap();
    let append = |data: Value, metadata: Option<Value>| {
        sqlx::query("SELECT cursor FROM eventfeed.append_event(tenant_id => 'acme', stream => 'big', type => 'file:stored', data => $1, metadata => $2)")
            .bind(data)
            .bind(metadata)
    };
    let big = json!({ "blob": "x".repeat(300 * 1024) });
    let err = append(big.clone(), None).execute(&mut *conn).await.unwrap_err();
    let db = err.as_database_error().unwrap();
    assert_eq!(db.code().as_deref(), Some("EF413"));
    assert!(db.message().contains("eventfeed.max_event_bytes"), "{}", db.message());
    let err = append(json!({}), Some(json!({ "note": "x".repeat(17 * 1024) }))).execute(&mut *conn).await.unwrap_err();
    assert_eq!(err.as_database_error().unwrap().code().as_deref(), Some("EF413"));

    // The limit is a setting: raised, the same event goes in, and nothing
    // refused before was stored.
    sqlx::query("SET eventfeed.max_event_bytes = '1048576'").execute(&mut *conn).await.unwrap();
    append(big, None).execute(&mut *conn).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM eventfeed.events").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(stored, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_broken_request_gives_each_request_its_outcome() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    // Called directly, past the server's own validation.
    let requests = serde_json::json!([
        { "tenantId": "acme", "events": [{ "stream": "s-1", "type": "good:one", "data": {} }] },
        { "tenantId": "acme", "events": [{ "stream": "s-2", "type": "broken", "data": {} }] },
        { "tenantId": "acme", "events": [{ "stream": "s-1", "type": "good:two", "data": {} }] },
    ]);
    type Outcome = (i32, Option<String>, Option<String>, Option<i64>);
    let rows: Vec<Outcome> =
        sqlx::query_as("SELECT b.request, b.code, (b.event).type, (b.event).version FROM eventfeed.append_batch($1) b")
            .bind(requests)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (0, None, Some("good:one".into()), Some(1)),
            (1, Some("invalid".into()), None, None),
            (2, None, Some("good:two".into()), Some(2)),
        ]
    );
    s.stop().await;
}

/// One call of `eventfeed.append_batch`, with how many times it fell back to
/// `insert_event` (the slow path's per-event call), from the transaction's own
/// function statistics.
async fn append_batch(
    pool: &PgPool,
    requests: Value,
) -> (Vec<(i32, Option<String>, Option<i64>, Option<String>)>, i64) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL track_functions = 'pl'").execute(&mut *tx).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT b.request, b.code, coalesce((b.event).version, b.current_version), (b.event).id::text \
         FROM eventfeed.append_batch($1) WITH ORDINALITY b ORDER BY b.ordinality",
    )
    .bind(requests)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let slow_calls: Option<i64> = sqlx::query_scalar(
        "SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'eventfeed' AND funcname = 'insert_event'",
    )
    .fetch_optional(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (rows, slow_calls.unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_batches_take_the_set_path_and_others_the_per_request_path_with_the_same_rules() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let ev = |stream: &str, extra: Value| {
        let mut e = json!({ "stream": stream, "type": "order:placed", "data": {} });
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        e
    };
    let id = Uuid::new_v4().to_string();

    // Clean: versions count on per stream through the batch, an expected
    // version that matches, a new id. One INSERT, no insert_event.
    let (rows, slow) = append_batch(
        &pool,
        json!([
            { "tenantId": "acme", "events": [ev("s-1", json!({})), ev("s-1", json!({}))] },
            { "tenantId": "acme", "events": [ev("s-2", json!({ "id": id }))] },
            { "tenantId": "acme", "events": [ev("s-1", json!({ "expectedVersion": 2 }))] },
            { "tenantId": "other", "events": [ev("s-1", json!({}))] },
        ]),
    )
    .await;
    assert_eq!(slow, 0, "a clean batch is written as a set");
    let outline: Vec<_> = rows.iter().map(|r| (r.0, r.1.clone(), r.2)).collect();
    assert_eq!(
        outline,
        [(0, None, Some(1)), (0, None, Some(2)), (1, None, Some(1)), (2, None, Some(3)), (3, None, Some(1))]
    );
    assert_eq!(rows[2].3.as_deref(), Some(id.as_str()));

    // Not clean: a retried id, a stale expected version, and the same new id
    // twice. Each request gets its own outcome; the conflict costs no version.
    let twice = Uuid::new_v4().to_string();
    let (rows, slow) = append_batch(
        &pool,
        json!([
            { "tenantId": "acme", "events": [ev("s-2", json!({ "id": id }))] },
            { "tenantId": "acme", "events": [ev("s-1", json!({ "expectedVersion": 1 }))] },
            { "tenantId": "acme", "events": [ev("s-1", json!({ "id": twice }))] },
            { "tenantId": "acme", "events": [ev("s-1", json!({ "id": twice }))] },
        ]),
    )
    .await;
    assert!(slow > 0, "a batch that is not clean goes request by request");
    let outline: Vec<_> = rows.iter().map(|r| (r.0, r.1.clone(), r.2)).collect();
    assert_eq!(
        outline,
        [(0, None, Some(1)), (1, Some("conflict".into()), Some(3)), (2, None, Some(4)), (3, None, Some(4))]
    );
    assert_eq!(rows[0].3.as_deref(), Some(id.as_str()));
    assert_eq!(rows[2].3, rows[3].3);

    let versions: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT tenant_id, stream, version FROM eventfeed.streams ORDER BY 1, 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected = [("acme", "s-1", 4), ("acme", "s-2", 1), ("other", "s-1", 1)];
    assert_eq!(versions, expected.map(|(t, s, v)| (t.to_string(), s.to_string(), v)));
    s.stop().await;
}
