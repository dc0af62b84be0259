//! How sql/api.sql is installed on old databases: `eventfeed migrate` and a
//! starting server upgrade a database of an earlier release, replacing the
//! functions whose signature changed.

use crate::common;

use clap::Parser as _;
use common::{TestDb, TestServer, token};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

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
/// release that shipped them ran them: it recorded their shipped checksums.
pub(crate) async fn migrated_to(db: &TestDb, last: &str) -> PgPool {
    let last: i64 = last.parse().unwrap();
    let mut migrator = eventfeed::store::postgres::migrator();
    migrator.migrations.to_mut().retain(|m| m.version <= last);
    let pool = PgPool::connect(&db.url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    pool
}

/// SHA-384 of each migration as its release shipped it: what every database
/// migrated since holds in `_sqlx_migrations`.
const SHIPPED_CHECKSUMS: [(i64, &str); 6] = [
    (1, "d767972e70e9d403a236b3cac384d56f753a06e9a5c77d21e74c000f3d5360dc613df1fa3a35898fd06a5795d60b40cc"),
    (2, "ec51916d6224720df186b8f9858933e32330b808f6a42593542737ad896f3fe779c427b4a229a4e83467cb6eeed99570"),
    (3, "cb654adc89bd23e636ad430defc7540bd6f1f709deb0e07f1e08a66eb0815bab16e1e0bbcecaad136539adc8529fca81"),
    (4, "5a4bea26f468097769f7c60d1b3f551c2c19ae5dcfc135332bc43dc7d33c5b5f4d46665973bc7dd9b94ba3c1cb2a7764"),
    (5, "f62611a5ac6e6c52411d1c9f3520fcc9869eaffff7b550caab489da5199a83aedea8aca8f6888fcacb3d55028a5ecd0e"),
    (6, "e43a1ea4cd34bc82b78071d188394aa2b3aeaa0cd7229d10b84e7712931202036046c5a86cff7630a5ef6bf55268409d"),
];

/// sqlx refuses to start on a database whose recorded checksum of an applied
/// migration differs from the server's: a new database must record exactly
/// what the shipped releases recorded, or those databases stop starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_records_the_shipped_checksums() {
    let db = TestDb::create().await;
    migrate(&db).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let recorded: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, encode(checksum, 'hex') FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let shipped: Vec<(i64, String)> = SHIPPED_CHECKSUMS.iter().map(|(v, hex)| (*v, hex.to_string())).collect();
    assert_eq!(recorded[..shipped.len()], shipped[..], "a shipped migration's checksum changed");
    pool.close().await;
    db.drop_db().await;
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
