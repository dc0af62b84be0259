//! The embedded store's write path: a group commit's requests in one write
//! transaction, each in a savepoint, with the rules of `eventfeed.insert_event`
//! (sql/api.sql).

use std::sync::LazyLock;

use chrono::Utc;
use sqlx::Acquire as _;
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::store::rows::{COLUMNS, StoreRow};
use crate::store::{AppendRequest, Appended, NewEvent};

impl SqliteStore {
    /// One write transaction; each request in a savepoint of its own, so a
    /// refused request leaves the others in place.
    pub async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<Appended>>> {
        // IMMEDIATE takes the write lock now, so the reads inside see the latest
        // versions and the commit cannot fail on a lock upgrade.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for request in batch {
            let mut savepoint = tx.begin().await?;
            match append_request(&mut savepoint, request).await {
                Ok(events) => {
                    savepoint.commit().await?;
                    outcomes.push(Ok(events));
                }
                Err(refused @ (Error::Conflict { .. } | Error::Invalid(_))) => {
                    savepoint.rollback().await?;
                    outcomes.push(Err(refused));
                }
                // Anything else fails the whole transaction (dropped: rolled back).
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        if outcomes.iter().any(Result::is_ok) {
            self.bell.send_replace(());
        }
        Ok(outcomes)
    }
}

/// One request, all or nothing: the caller rolls its savepoint back on error.
/// Each event is a retry of a stored one or stored anew: the semantics of
/// `eventfeed.insert_event` (sql/api.sql).
async fn append_request(conn: &mut SqliteConnection, request: &AppendRequest) -> Result<Appended> {
    let mut appended = Appended { events: Vec::with_capacity(request.events.len()), retries: 0 };
    for new in &request.events {
        let event = match retried(conn, &request.tenant_id, new).await? {
            Some(stored) => {
                appended.retries += 1;
                stored
            }
            None => insert(conn, &request.tenant_id, new).await?,
        };
        appended.events.push(event);
    }
    Ok(appended)
}

/// Stores an event whose id (if it has one) is new: the next version of its
/// stream, unless that is not the one it expects.
async fn insert(conn: &mut SqliteConnection, tenant_id: &str, new: &NewEvent) -> Result<Event> {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO events (id, tenant_id, stream, version, type, data, actor_id, actor_name, \
             audience, metadata, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             RETURNING {COLUMNS}"
        )
    });
    let stream = new.stream.as_str();
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO streams (tenant_id, stream, version) VALUES (?1, ?2, 1) \
         ON CONFLICT (tenant_id, stream) DO UPDATE SET version = version + 1 RETURNING version",
    )
    .bind(tenant_id)
    .bind(stream)
    .fetch_one(&mut *conn)
    .await
    .map_err(refused)?;
    let current = version - 1;
    if let Some(expected) = new.expected_version
        && expected != current
    {
        let message = format!("expected version {expected} of stream {stream}, found {current}");
        return Err(Error::Conflict { message, current_version: Some(current) });
    }
    let row = sqlx::query(INSERT.as_str())
        .bind(new.id.unwrap_or_else(Uuid::new_v4).hyphenated())
        .bind(tenant_id)
        .bind(stream)
        .bind(version)
        .bind(new.event_type.as_str())
        .bind(Json(&new.data))
        .bind(new.actor.as_ref().map(|a| a.user_id.as_str()))
        .bind(new.actor.as_ref().and_then(|a| a.username.as_deref()))
        .bind(new.audience.as_ref().map(|a| Json(&a.users)))
        .bind(new.metadata.as_ref().filter(|m| !m.is_null()).map(Json))
        .bind(Utc::now().timestamp_millis())
        .fetch_one(&mut *conn)
        .await
        .map_err(refused)?;
    row.event()
}

/// The event an id the tenant already has names: the retry of an append that
/// succeeded, answered only if it is the same event and the requester may see
/// it (else `conflict`). `None` for a new id.
async fn retried(conn: &mut SqliteConnection, tenant_id: &str, new: &NewEvent) -> Result<Option<Event>> {
    static BY_ID: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COLUMNS} FROM events WHERE tenant_id = ?1 AND id = ?2"));
    let Some(id) = new.id else { return Ok(None) };
    let row = sqlx::query(BY_ID.as_str()).bind(tenant_id).bind(id.hyphenated()).fetch_optional(&mut *conn).await?;
    let Some(stored) = row.as_ref().map(StoreRow::event).transpose()? else { return Ok(None) };
    if is_retry_of(new, &stored) { Ok(Some(stored)) } else { Err(Error::id_used()) }
}

/// Whether `new` repeats `stored` (same stream, type, data, audience and
/// metadata) for a requester who may see it: its own actor, or a reader in its
/// audience. The rule of `eventfeed.insert_event` (sql/api.sql).
fn is_retry_of(new: &NewEvent, stored: &Event) -> bool {
    let same = stored.stream == new.stream.as_str()
        && stored.event_type == new.event_type.as_str()
        && stored.data == new.data
        && stored.audience == new.audience
        && stored.metadata == new.metadata.clone().filter(|m| !m.is_null());
    let reader = new.actor.as_ref().map(|a| a.user_id.as_str());
    same && reader.is_none_or(|r| stored.actor.as_ref().is_some_and(|a| a.user_id == r) || stored.visible_to(r))
}

/// A broken CHECK or NOT NULL rule is the request's fault (`invalid`), as in PostgreSQL.
fn refused(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if matches!(db.kind(), ErrorKind::CheckViolation | ErrorKind::NotNullViolation) => {
            Error::Invalid(db.message().to_owned())
        }
        _ => Error::from(e),
    }
}
