//! The SQL API of sql/api.sql (PostgreSQL only): `append_event` for any
//! backend, `append_batch` for the server's group commit, and what a large
//! batch costs. How they are installed: sql_install.rs.

use crate::common;

use common::{TestServer, sql, token};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

fn db_error(e: sqlx::Error) -> (Option<String>, String) {
    let db = e.as_database_error().expect("a database error");
    (db.code().map(|c| c.into_owned()), db.message().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_function_conflicts_and_validates() {
    let s = TestServer::postgres().await;
    let mut conn = s.pool().await.acquire().await.unwrap();
    let (_, version) =
        sql::append_event(&mut conn, "inv-3", "invoice:created", json!({}), None, Some(0)).await.unwrap();
    assert_eq!(version, 1);
    let err = sql::append_event(&mut conn, "inv-3", "invoice:created", json!({}), None, Some(0)).await.unwrap_err();
    assert_eq!(db_error(err).0.as_deref(), Some("EF409"));
    let err = sql::append_event(&mut conn, "inv-3", "not a type", json!({}), None, None).await.unwrap_err();
    assert_eq!(err.as_database_error().unwrap().constraint(), Some("events_type_check"));
    for reserved in ["feed:reset", "auth:expired", "user:online", "event:x"] {
        let (code, message) =
            db_error(sql::append_event(&mut conn, "inv-3", reserved, json!({}), None, None).await.unwrap_err());
        assert_eq!(code.as_deref(), Some("22023"), "{reserved}: {message}");
        assert!(message.contains("reserved"), "{message}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_function_refuses_what_the_server_cannot_read_back() {
    let s = TestServer::postgres().await;
    let t = token("acme", "u1", &["reader"]);
    let mut conn = s.pool().await.acquire().await.unwrap();
    // PostgreSQL takes these in jsonb; the server could not read them, and
    // every reader would stop behind them.
    let deep = format!("{}1{}", r#"{"a": "#.repeat(128), "}".repeat(128));
    let docs = [(r#"{"n": 1e400}"#, "double precision"), (r#"{"deep": [1, {"n": -1e309}]}"#, "double precision")];
    for (doc, why) in docs.into_iter().chain([(deep.as_str(), "127 levels")]) {
        let err = sqlx::query("SELECT * FROM eventfeed.append_event('acme', 'n-1', 'number:big', $1::jsonb)")
            .bind(doc)
            .execute(&mut *conn)
            .await
            .unwrap_err();
        let (code, message) = db_error(err);
        assert_eq!(code.as_deref(), Some("22023"), "{doc}: {message}");
        assert!(message.contains(why), "{message}");
    }
    // The largest double, written by SQL, reads back as itself; the feed goes on.
    let (cursor, _) =
        sql::append_event(&mut conn, "n-1", "number:max", json!({ "n": f64::MAX }), None, None).await.unwrap();
    let events = s.read_all(&t, "0", 100).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0]["cursor"].as_str(), &events[0]["data"]), (Some(cursor.as_str()), &json!({ "n": f64::MAX })));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_function_retries_by_content() {
    let s = TestServer::postgres().await;
    let mut conn = s.pool().await.acquire().await.unwrap();
    let id = Uuid::new_v4();
    let stored =
        sql::append_event(&mut conn, "inv-3", "invoice:paid", json!({ "n": 1 }), Some(id), None).await.unwrap();
    let again =
        sql::append_event(&mut conn, "inv-3", "invoice:paid", json!({ "n": 1 }), Some(id), Some(0)).await.unwrap();
    assert_eq!(again, stored, "the same content is an idempotent retry");
    for (event_type, data) in [("invoice:paid", json!({ "n": 2 })), ("invoice:sent", json!({ "n": 1 }))] {
        let (code, message) =
            db_error(sql::append_event(&mut conn, "inv-3", event_type, data, Some(id), None).await.unwrap_err());
        assert_eq!((code.as_deref(), message.as_str()), (Some("EF409"), "id already used"));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM eventfeed.events").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(count, 1);
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

/// One outcome row of `append_batch`: request, code, the version (or the
/// current version of a conflict) and the event's id.
type Outcome = (i32, Option<String>, Option<i64>, Option<String>);

/// One call of `eventfeed.append_batch`, the requests written as JSON
/// (`[{"tenantId", "events": [{"stream", "type", "data", "id"?, "expectedVersion"?}]}]`)
/// and passed as its typed arrays, with how many times it fell back to
/// `insert_event` (the per-request path's per-event call), from the
/// transaction's own function statistics.
async fn append_batch(pool: &PgPool, requests: Value) -> (Vec<Outcome>, i64) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL track_functions = 'pl'").execute(&mut *tx).await.unwrap();
    let rows = sqlx::query_as(
        "WITH ev AS ( \
             SELECT (r.o - 1)::int AS request, r.v ->> 'tenantId' AS t, e.v AS b, r.o, e.o AS eo \
             FROM jsonb_array_elements($1) WITH ORDINALITY r (v, o), \
                  jsonb_array_elements(r.v -> 'events') WITH ORDINALITY e (v, o)), \
         a AS ( \
             SELECT array_agg(request ORDER BY o, eo) AS r, array_agg(t ORDER BY o, eo) AS t, \
                    array_agg(b ->> 'stream' ORDER BY o, eo) AS s, array_agg(b ->> 'type' ORDER BY o, eo) AS ty, \
                    array_agg(b -> 'data' ORDER BY o, eo) AS d, array_agg((b ->> 'id')::uuid ORDER BY o, eo) AS i, \
                    array_agg((b ->> 'expectedVersion')::bigint ORDER BY o, eo) AS x FROM ev) \
         SELECT b.request, b.code, coalesce(b.version, b.current_version), b.event_id::text \
         FROM a, eventfeed.append_batch(a.r, a.t, a.s, a.ty, a.d, a.i, a.x, \
             array_fill(NULL::text, ARRAY[cardinality(a.r)]), array_fill(NULL::text, ARRAY[cardinality(a.r)]), \
             array_fill(NULL::jsonb, ARRAY[cardinality(a.r)]), array_fill(NULL::jsonb, ARRAY[cardinality(a.r)])) \
             WITH ORDINALITY b ORDER BY b.ordinality",
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
async fn a_batch_with_a_broken_request_gives_each_request_its_outcome() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    // Called directly, past the server's own validation.
    let (rows, _) = append_batch(
        &pool,
        json!([
            { "tenantId": "acme", "events": [{ "stream": "s-1", "type": "good:one", "data": {} }] },
            { "tenantId": "acme", "events": [{ "stream": "s-2", "type": "broken", "data": {} }] },
            { "tenantId": "acme", "events": [{ "stream": "s-2", "type": "feed:reset", "data": {} }] },
            { "tenantId": "acme", "events": [{ "stream": "s-1", "type": "good:two", "data": {} }] },
        ]),
    )
    .await;
    let outline: Vec<_> = rows.iter().map(|r| (r.0, r.1.clone(), r.2)).collect();
    assert_eq!(
        outline,
        [(0, None, Some(1)), (1, Some("invalid".into()), None), (2, Some("invalid".into()), None), (3, None, Some(2))]
    );
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT id::text, type FROM eventfeed.events ORDER BY position").fetch_all(&pool).await.unwrap();
    let expected = [(&rows[0].3, "good:one"), (&rows[3].3, "good:two")];
    assert_eq!(stored, expected.map(|(id, t)| (id.clone().unwrap(), t.to_owned())));
    s.stop().await;
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

/// Concurrent batches lock their streams in one order (tenant, then
/// stream), whatever the order of their events, so that they cannot
/// deadlock: a batch whose events name `s-b` before `s-a`, blocked on `s-b`,
/// already holds `s-a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_locks_its_streams_in_one_order() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let ev = |stream: &str| json!({ "stream": stream, "type": "order:placed", "data": {} });
    append_batch(&pool, json!([{ "tenantId": "acme", "events": [ev("s-a"), ev("s-b")] }])).await;

    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM eventfeed.streams WHERE tenant_id = 'acme' AND stream = 's-b' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let batch = tokio::spawn({
        let pool = pool.clone();
        async move { append_batch(&pool, json!([{ "tenantId": "acme", "events": [ev("s-b"), ev("s-a")] }])).await }
    });
    let waiting = async {
        loop {
            let blocked: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if blocked > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await; // retry: the batch is on its way
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await.expect("the batch waits for s-b");
    let err =
        sqlx::query("SELECT 1 FROM eventfeed.streams WHERE tenant_id = 'acme' AND stream = 's-a' FOR UPDATE NOWAIT")
            .execute(&mut *holder)
            .await
            .unwrap_err();
    assert_eq!(db_error(err).0.as_deref(), Some("55P03"), "the waiting batch holds s-a");
    holder.rollback().await.unwrap();

    let (rows, _) = batch.await.unwrap();
    let outline: Vec<_> = rows.iter().map(|r| (r.0, r.1.clone(), r.2)).collect();
    assert_eq!(outline, [(0, None, Some(2)), (0, None, Some(2))]);
    s.stop().await;
}

/// The temporary-file bytes PostgreSQL has counted for this database. A
/// backend reports its counts when it goes idle (at most once a second) and
/// when it exits, so the database's other backends are ended first: the
/// server's pool opens new ones when it needs them.
async fn temp_bytes(pool: &PgPool) -> i64 {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(pool)
    .await
    .unwrap();
    for _ in 0..200 {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if others == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // retry: backends are exiting
    }
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await.unwrap();
    sqlx::query_scalar("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_appended_without_temporary_files() {
    let s = TestServer::postgres().await;
    let pool = PgPool::connect_with(s.db_url.as_ref().unwrap().parse::<sqlx::postgres::PgConnectOptions>().unwrap())
        .await
        .unwrap();
    let t = token("acme", "u1", &["publisher"]);
    // 1,000 events of 16 KiB on 10 streams: inside every limit.
    let blob = "x".repeat(16 * 1024 - 32);
    let events: Vec<Value> = (0..1000)
        .map(|i| json!({ "stream": format!("big-{}", i % 10), "type": "file:chunk", "data": { "i": i, "blob": blob } }))
        .collect();
    let before = temp_bytes(&pool).await;
    let (status, body) = s.append(&t, json!({ "events": events })).await;
    assert_eq!(status, StatusCode::CREATED, "{}", &body.to_string()[..300.min(body.to_string().len())]);
    let stored = body["events"].as_array().unwrap();
    assert_eq!(stored.len(), 1000);
    for (i, e) in stored.iter().enumerate() {
        assert_eq!((e["data"]["i"].as_u64(), e["version"].as_u64()), (Some(i as u64), Some(i as u64 / 10 + 1)));
    }
    let spilled = temp_bytes(&pool).await - before;
    assert!(spilled < 1024 * 1024, "the batch wrote {spilled} bytes of temporary files");

    // The measurement sees temporary files when there are some: a sort
    // larger than its work_mem spills.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET work_mem = '64kB'").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC OFFSET 1) s")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert!(temp_bytes(&pool).await - before > 1024 * 1024, "a spilling sort is counted");
    pool.close().await;
    s.stop().await;
}
