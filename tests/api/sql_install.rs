//! How sql/api.sql is installed on old databases: `eventfeed migrate` and a
//! starting server upgrade a database of an earlier release, replacing the
//! functions whose signature changed.

use crate::common;

use clap::Parser as _;
use common::{TestDb, TestServer, token};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_release_upgrades() {
    let db = TestDb::create().await;
    // The migrations the previous release shipped, run as it ran them, and
    // an event stored by its group commit.
    let pool = migrated_to(&db, "0004").await;
    let old = json!([{ "tenantId": "acme", "events": [{ "stream": "inv-1", "type": "invoice:paid", "data": {} }] }]);
    sqlx::query("SELECT * FROM eventfeed.append_batch($1::jsonb)").bind(old).execute(&pool).await.unwrap();

    // `eventfeed migrate` upgrades it: the schema's new migrations, then the functions.
    migrate(&db).await;
    let signatures: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'eventfeed' AND p.proname LIKE 'append_%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(signatures.len(), 3, "one definition each: {signatures:?}");
    assert!(signatures.iter().all(|s| !s.contains("(jsonb)")), "the old group commit is gone: {signatures:?}");
    let err = sqlx::query("SELECT * FROM eventfeed.append_event('acme', 'x', 'feed:reset', '{}')")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");

    // A server starts on it (installing the functions again) and appends
    // after the old event.
    let mut s = TestServer::start(&["--database-url", &db.url]).await;
    s.db_url = Some(db.url.clone());
    let t = token("acme", "u1", &["publisher"]);
    let (status, body) = s.append(&t, json!({ "stream": "inv-1", "type": "invoice:sent", "data": {} })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["events"][0]["version"], 2);
    let versions: Vec<i64> = s.read_all(&t, "0", 10).await.iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2]);
    s.stop().await;
    pool.close().await;
    db.drop_db().await;
}

/// A database with the migrations up to `last` (its number), run as a
/// release that shipped them ran them.
pub(crate) async fn migrated_to(db: &TestDb, last: &str) -> PgPool {
    let dir = std::env::temp_dir().join(format!("ef_old_migrations_{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir("migrations/postgres").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.get(..4).is_some_and(|number| number <= last) {
            std::fs::copy(format!("migrations/postgres/{name}"), dir.join(&name)).unwrap();
        }
    }
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap().run(&pool).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    pool
}

/// `eventfeed migrate`: the schema's migrations, then the functions of sql/api.sql.
async fn migrate(db: &TestDb) {
    let cli = eventfeed::cli::Cli::try_parse_from(["eventfeed", "migrate", "--database-url", &db.url]).unwrap();
    eventfeed::cli::run(cli.command.unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commit_without_the_retried_column_is_replaced() {
    let db = TestDb::create().await;
    let pool = migrated_to(&db, "0005").await;
    // The group commit as the release before `retried` defined it: the same
    // arguments, a result without that column.
    let arguments = "request_of int[], tenant_id text[], stream text[], type text[], data jsonb[], id uuid[], \
                     expected_version bigint[], actor_id text[], actor_name text[], audience jsonb[], metadata jsonb[]";
    let result = "request int, code text, message text, current_version bigint, event_id uuid, tx_id bigint, \
                  event_position bigint, version bigint, event_actor_id text, event_actor_name text, \
                  created_at timestamptz";
    for name in ["append_batch", "append_requests"] {
        let old = format!(
            "CREATE FUNCTION eventfeed.{name}({arguments}) RETURNS TABLE ({result}) LANGUAGE plpgsql AS $$ BEGIN END $$"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(old)).execute(&pool).await.unwrap();
    }

    migrate(&db).await;
    for name in ["append_batch", "append_requests"] {
        let result: String = sqlx::query_scalar("SELECT pg_get_function_result(('eventfeed.' || $1)::regproc)")
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(result.ends_with("retried boolean)"), "{name}: {result}");
    }
    pool.close().await;
    db.drop_db().await;
}
