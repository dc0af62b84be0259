//! The SQL API called directly, as a backend other than the server would.

use serde_json::{Value, json};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// `eventfeed.append_event` for tenant `acme` with the arguments the tests
/// vary; returns the stored event's cursor and version.
pub async fn append_event(
    conn: &mut PgConnection,
    stream: &str,
    event_type: &str,
    data: Value,
    id: Option<Uuid>,
    expected_version: Option<i64>,
) -> Result<(String, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT cursor, version FROM eventfeed.append_event(tenant_id => 'acme', stream => $1, \
         type => $2, data => $3, id => $4, expected_version => $5)",
    )
    .bind(stream)
    .bind(event_type)
    .bind(data)
    .bind(id)
    .bind(expected_version)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("cursor")?, row.try_get("version")?))
}

/// Appends one event with empty data inside `conn`'s open transaction.
pub async fn append_in(conn: &mut PgConnection, id: Uuid, stream: &str, event_type: &str) {
    append_event(conn, stream, event_type, json!({}), Some(id), None).await.expect("append_event");
}
