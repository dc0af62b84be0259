//! Rules written twice, in Rust for the server's appends and in SQL for the
//! SQL API (sql/api.sql), hold each other to the same answers: which types
//! are reserved, when an id's second append is an idempotent retry, and the
//! text of a cursor. PostgreSQL only.

use crate::common;

use common::{TestServer, token};
use eventfeed::event::{EventType, RESERVED_DOMAINS, RESERVED_TYPES};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// `eventfeed.append_event` with every field the retry rule compares.
async fn append_sql(conn: &mut PgConnection, event: &Value) -> Result<(String, i64), String> {
    let row = sqlx::query(
        "SELECT cursor, version FROM eventfeed.append_event(tenant_id => 'acme', stream => $1, type => $2, \
         data => $3, id => $4, audience => $5, metadata => $6)",
    )
    .bind(event["stream"].as_str())
    .bind(event["type"].as_str())
    .bind(&event["data"])
    .bind(event["id"].as_str().map(|id| Uuid::parse_str(id).expect("a uuid")))
    .bind(event.get("audience"))
    .bind(event.get("metadata"))
    .fetch_one(conn)
    .await
    .map_err(|e| e.as_database_error().map_or_else(|| e.to_string(), |db| db.message().to_owned()))?;
    Ok((row.get("cursor"), row.get("version")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_the_sql_function_reserve_the_same_types() {
    let s = TestServer::postgres().await;
    let mut conn = s.pool().await.acquire().await.unwrap();
    let mut candidates: Vec<String> = RESERVED_TYPES.iter().map(|t| t.to_string()).collect();
    candidates.extend(RESERVED_DOMAINS.iter().flat_map(|d| [format!("{d}:x"), format!("{d}:a:b"), format!("x:{d}")]));
    let near =
        ["users:online", "user:online2", "user:onlin", "feedx:a", "Feed:reset", "error:x", "connect:x", "a:error"];
    candidates.extend(near.iter().map(|t| t.to_string()));
    for (i, candidate) in candidates.iter().enumerate() {
        let event = json!({ "stream": format!("s-{i}"), "type": candidate, "data": {} });
        let rust = EventType::parse(candidate).is_ok();
        let sql = append_sql(&mut conn, &event).await;
        assert_eq!(rust, sql.is_ok(), "{candidate}: the server says {rust}, the SQL function {sql:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_recognised_whichever_path_stored_the_event() {
    let s = TestServer::postgres().await;
    let t = token("acme", "svc", &["service"]);
    let mut conn = s.pool().await.acquire().await.unwrap();
    let event = |stream: &str| {
        json!({
            "id": Uuid::new_v4().to_string(), "stream": stream, "type": "invoice:paid", "data": { "amount": 12.5 },
            "audience": { "users": ["u1", "svc"] }, "metadata": { "correlationId": "c-1" },
        })
    };
    let changes = [
        ("data", json!({ "amount": 13 })),
        ("metadata", json!({ "correlationId": "c-2" })),
        ("type", json!("invoice:sent")),
    ];

    // Stored over HTTP, retried in SQL: the same cursor and version; any change is a conflict.
    let first = event("via-http");
    let (status, body) = s.append(&t, first.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stored = &body["events"][0];
    let retried = append_sql(&mut conn, &first).await.expect("a retry");
    assert_eq!(
        (retried.0.as_str(), retried.1),
        (stored["cursor"].as_str().unwrap(), stored["version"].as_i64().unwrap())
    );
    for (field, value) in &changes {
        let mut changed = first.clone();
        changed[*field] = value.clone();
        assert_eq!(append_sql(&mut conn, &changed).await, Err("id already used".to_owned()), "{field} changed");
    }

    // Stored in SQL, retried over HTTP: the stored event; any change is a conflict.
    let second = event("via-sql");
    let (cursor, version) = append_sql(&mut conn, &second).await.expect("stored");
    let (status, body) = s.append(&t, second.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["events"][0]["cursor"].as_str(), body["events"][0]["version"].as_i64()),
        (Some(cursor.as_str()), Some(version))
    );
    for (field, value) in &changes {
        let mut changed = second.clone();
        changed[*field] = value.clone();
        let (status, body) = s.append(&t, changed).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("conflict")),
            "{field}: {body}"
        );
    }

    // The cursor text the SQL function returns is the one every reader gets.
    let read = s.read_all(&token("acme", "u1", &[]), "0", 100).await;
    let cursors: Vec<&str> = read.iter().filter_map(|e| e["cursor"].as_str()).collect();
    assert_eq!(cursors, [stored["cursor"].as_str().unwrap(), cursor.as_str()]);
    s.stop().await;
}
