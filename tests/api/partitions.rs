//! The events table partitioned by time on PostgreSQL: partitions exist
//! ahead of need, retention drops whole partitions and deletes no row, ids
//! and versions stay unique across partitions, and a table of the previous
//! release converts without being rewritten, every cursor still resuming
//! exactly where it did.

use crate::common;

use std::time::Duration;

use common::partitions::insert_dated;
use common::{TestDb, TestServer, token};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// A server on a fresh database; `args` are more CLI flags.
async fn server(db: &TestDb, args: &[&str]) -> TestServer {
    let mut argv = vec!["--database-url", db.url.as_str()];
    argv.extend_from_slice(args);
    let mut s = TestServer::start(&argv).await;
    s.db_url = Some(db.url.clone());
    s
}

/// How far ahead of now the partitions reach, in days.
async fn days_ahead(pool: &PgPool) -> f64 {
    sqlx::query_scalar("SELECT extract(epoch FROM max(until_at) - now())::float8 / 86400 FROM eventfeed.partitions")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_exist_ahead_of_need() {
    for (step, at_least) in [("month", 31.0), ("day", 1.0)] {
        let db = TestDb::create().await;
        let s = server(&db, &["--partition", step]).await;
        let pool = s.pool().await;
        assert!(days_ahead(&pool).await >= at_least, "{step}");
        let attached: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_inherits i JOIN eventfeed.partitions p ON 'eventfeed.' || p.name = i.inhrelid::regclass::text \
             WHERE i.inhparent = 'eventfeed.events'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let listed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM eventfeed.partitions").fetch_one(&pool).await.unwrap();
        assert_eq!(attached, listed, "every listed partition is attached");
        if step == "day" {
            let spans: Vec<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM until_at - from_at)::float8 FROM eventfeed.partitions \
                 WHERE from_at IS NOT NULL ORDER BY from_at OFFSET 1",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(!spans.is_empty() && spans.iter().all(|s| *s == 86_400.0), "{spans:?}");
        }
        pool.close().await;
        s.stop().await;
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_an_old_partition_and_deletes_no_row() {
    let db = TestDb::create().await;
    let s = server(&db, &[]).await;
    let pool = s.pool().await;
    // Any DELETE on any partition fails from here on.
    sqlx::raw_sql(
        "CREATE FUNCTION pg_temp.no_delete() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'events are never deleted row by row'; END $$; \
         CREATE FUNCTION public.no_delete() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'events are never deleted row by row'; END $$; \
         CREATE TRIGGER no_delete BEFORE DELETE ON eventfeed.events FOR EACH ROW EXECUTE FUNCTION public.no_delete();",
    )
    .execute(&pool)
    .await
    .unwrap();
    insert_dated(&pool, "old", 5, chrono::Duration::days(40)).await;
    let t = token("acme", "u1", &["publisher"]);
    for i in 0..3 {
        s.append(&t, json!({ "stream": "new", "type": "a:b", "data": { "i": i } })).await;
    }
    s.settle().await;

    // Thirty days' retention: the first partition ends when the database
    // was made, not thirty days ago, so it is kept, 40-day-old events and all.
    assert_eq!(s.store.prune(chrono::Utc::now() - chrono::Duration::days(30)).await.unwrap(), 0);
    assert_eq!(s.read_all(&t, "0", 100).await.len(), 8);
    // Once its end is past the retention, it goes, whole.
    assert_eq!(s.store.prune(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 5);
    let gone: Option<String> = sqlx::query_scalar("SELECT to_regclass('eventfeed.events_unpartitioned')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(gone, None);
    let (_, page) = s.get(&t, "/api/events?after=0").await;
    assert_eq!(page["reset"]["reason"], "expired", "{page}");
    let (_, kept) = s.get(&t, "/api/streams/new").await;
    let kept: Vec<i64> = kept["events"].as_array().unwrap().iter().map(|e| e["data"]["i"].as_i64().unwrap()).collect();
    assert_eq!(kept, [0, 1, 2]);
    pool.close().await;
    s.stop().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_versions_stay_unique_across_partitions() {
    let db = TestDb::create().await;
    let s = server(&db, &[]).await;
    let pool = s.pool().await;
    insert_dated(&pool, "old", 2, chrono::Duration::days(3)).await;
    let (id, data): (Uuid, serde_json::Value) =
        sqlx::query_as("SELECT id, data FROM eventfeed.events WHERE version = 1").fetch_one(&pool).await.unwrap();
    s.settle().await;
    let t = token("acme", "u1", &["publisher"]);

    // The id, stored in the first partition, is found from the current one.
    let same = json!({ "id": id, "stream": "old", "type": "a:b", "data": data });
    let (status, body) = s.append(&t, same).await;
    assert_eq!((status, body["events"][0]["version"].clone()), (StatusCode::CREATED, json!(1)), "{body}");
    let other = json!({ "id": id, "stream": "old", "type": "a:b", "data": { "i": 99 } });
    assert_eq!(s.append(&t, other).await.0, StatusCode::CONFLICT);
    // The stream's versions go on from the first partition's.
    let (_, body) = s.append(&t, json!({ "stream": "old", "type": "a:b", "data": {} })).await;
    assert_eq!(body["events"][0]["version"], 3, "{body}");

    // Two appends of one new id at once: the second waits for the first and
    // finds it (an idempotent retry), whatever partition each would land in.
    let fresh = Uuid::new_v4();
    let append = "SELECT cursor FROM eventfeed.append_event('acme', 's', 'a:b', '{}', $1)";
    let mut first = PgConnection::connect(&db.url).await.unwrap();
    let mut tx = first.begin().await.unwrap();
    let stored: String = sqlx::query_scalar(append).bind(fresh).fetch_one(&mut *tx).await.unwrap();
    let second = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, String>(append).bind(fresh).fetch_one(&mut conn).await
        })
    };
    common::wait_until("the second append waits on the id's lock", async || {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database())",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    })
    .await;
    tx.commit().await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), second).await.unwrap().unwrap().unwrap();
    assert_eq!(again, stored, "the same event, not a second one and not an error");
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM eventfeed.events WHERE id = $1")
        .bind(fresh)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(copies, 1);
    pool.close().await;
    s.stop().await;
    db.drop_db().await;
}

/// Events of the previous release: `n` in transactions of 1,000, over 100
/// streams (versions without holes), dated over the last `n / 1000` hours.
async fn old_release_events(pool: &PgPool, n: i64) {
    for batch in 0..n / 1000 {
        sqlx::query(
            "INSERT INTO eventfeed.events (id, tenant_id, stream, version, type, data, created_at) \
             SELECT gen_random_uuid(), 'acme', 's' || (g % 100), g / 100 + 1, 'a:b', jsonb_build_object('g', g), \
                    now() - make_interval(hours => ($2 - $1)::int) \
             FROM generate_series($1 * 1000, $1 * 1000 + 999) g",
        )
        .bind(batch)
        .bind(n / 1000)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO eventfeed.streams (tenant_id, stream, version) \
         SELECT tenant_id, stream, max(version) FROM eventfeed.events GROUP BY 1, 2",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_the_previous_release_converts_and_every_cursor_resumes() {
    const N: usize = 100_000;
    let db = TestDb::create().await;
    let pool = crate::sql_install::migrated_to(&db, "0006").await;
    // What sql/api.sql of that release defined on the table's row type.
    sqlx::raw_sql(
        "CREATE FUNCTION eventfeed.insert_event(text, text, text, jsonb, uuid, bigint, text, text, text[], jsonb, text) \
         RETURNS eventfeed.events LANGUAGE sql AS 'SELECT NULL::eventfeed.events'",
    )
    .execute(&pool)
    .await
    .unwrap();
    old_release_events(&pool, N as i64).await;
    let cursors: Vec<String> =
        sqlx::query_scalar("SELECT tx_id || '-' || position FROM eventfeed.events ORDER BY tx_id, position")
            .fetch_all(&pool)
            .await
            .unwrap();
    let file: i64 =
        sqlx::query_scalar("SELECT pg_relation_filenode('eventfeed.events')::bigint").fetch_one(&pool).await.unwrap();

    // `eventfeed migrate` converts it; a server then starts on it.
    let cli =
        <eventfeed::cli::Cli as clap::Parser>::try_parse_from(["eventfeed", "migrate", "--database-url", &db.url]);
    eventfeed::cli::run(cli.unwrap().command.unwrap()).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT pg_relation_filenode('eventfeed.events_unpartitioned')::bigint")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, file, "the rows were not rewritten: the old table is the first partition");
    let s = server(&db, &[]).await;
    let t = token("acme", "u1", &[]);

    // Every cursor handed out before resumes at the very next event.
    let all = s.read_all(&t, "0", 1000).await;
    assert_eq!(all.iter().map(|e| e["cursor"].as_str().unwrap()).collect::<Vec<_>>(), cursors);
    for i in (0..N).step_by(997).chain([N - 2, N - 1]) {
        let (status, page) = s.get(&t, &format!("/api/events?after={}&limit=2", cursors[i])).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let next: Vec<&str> =
            page["events"].as_array().unwrap().iter().map(|e| e["cursor"].as_str().unwrap()).collect();
        assert_eq!(next, cursors[i + 1..(i + 3).min(N)], "after cursor number {i}");
    }
    // New events go after them, in the new partitions, and streams go on.
    let (status, body) =
        s.append(&token("acme", "p", &["publisher"]), json!({ "stream": "s7", "type": "a:b", "data": {} })).await;
    assert_eq!((status, body["events"][0]["version"].clone()), (StatusCode::CREATED, json!(1001)), "{body}");
    assert!(common::cursor(&body["events"][0]) > cursors[N - 1].parse().unwrap());
    pool.close().await;
    s.stop().await;
    db.drop_db().await;
}
