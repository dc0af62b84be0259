//! The PostgreSQL store's write path: the SQL API's installation, and the
//! group commit's call of `eventfeed.append_batch` (sql/api.sql).

use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row};

use super::PgStore;
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::event::{Actor, Event};
use crate::store::{AppendRequest, Appended, NewEvent};

impl PgStore {
    pub async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<Appended>>> {
        let mut outcomes = self.append_once(batch).await?;
        // A concurrent append of the same id raced this batch: run that request
        // again on its own, now that the other transaction has finished.
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            if outcome.is_none() {
                let mut again = self.append_once(std::slice::from_ref(&batch[i])).await?;
                *outcome = again.pop().flatten();
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::internal(anyhow::anyhow!("concurrent append of the same id")))))
            .collect())
    }

    /// One transaction; `None` marks a request to retry alone.
    async fn append_once(&self, batch: &[AppendRequest]) -> Result<Vec<Option<Result<Appended>>>> {
        let events: Vec<(usize, &NewEvent)> =
            batch.iter().enumerate().flat_map(|(i, r)| r.events.iter().map(move |e| (i, e))).collect();
        // One statement is its own transaction: no BEGIN and COMMIT round trips.
        let rows = batch_query(batch, &events).fetch_all(&self.main()).await?;
        outcomes(batch, &rows)
    }
}

/// `eventfeed.append_batch` with the batch as its typed arrays, an element an event.
fn batch_query<'q>(batch: &'q [AppendRequest], events: &[(usize, &'q NewEvent)]) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(
        "SELECT b.* FROM eventfeed.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         WITH ORDINALITY AS b ORDER BY b.ordinality",
    )
    .bind(events.iter().map(|&(i, _)| i as i32).collect::<Vec<_>>())
    .bind(events.iter().map(|&(i, _)| batch[i].tenant_id.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.stream.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| Json(&e.data)).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.expected_version).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.actor.as_ref().map(|a| a.user_id.as_str())).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.actor.as_ref().and_then(|a| a.username.as_deref())).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.audience.as_ref().map(|a| Json(&a.users))).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| stored_metadata(e).map(Json)).collect::<Vec<_>>())
}

/// Each request's outcome from `append_batch`'s rows: its stored events, or
/// its error; `None` for a request to run again on its own.
fn outcomes(batch: &[AppendRequest], rows: &[PgRow]) -> Result<Vec<Option<Result<Appended>>>> {
    let mut outcomes: Vec<Option<Result<Appended>>> = batch.iter().map(|_| Some(Ok(Appended::default()))).collect();
    for row in rows {
        let request: i32 = row.try_get("request")?;
        let (slot, sent) = outcomes
            .get_mut(request as usize)
            .zip(batch.get(request as usize))
            .ok_or_else(|| Error::internal(anyhow::anyhow!("append_batch answered for request {request}")))?;
        let code: Option<String> = row.try_get("code")?;
        *slot = match (code.as_deref(), slot.take()) {
            (None, Some(Ok(mut stored))) => {
                let new = sent.events.get(stored.events.len()).ok_or_else(|| {
                    Error::internal(anyhow::anyhow!("append_batch stored more events for request {request}"))
                })?;
                stored.events.push(stored_event(row, &sent.tenant_id, new)?);
                stored.retries += usize::from(row.try_get::<bool, _>("retried")?);
                Some(Ok(stored))
            }
            (Some("conflict"), _) => {
                let current_version = row.try_get::<Option<i64>, _>("current_version")?;
                let message = row.try_get::<Option<String>, _>("message")?.unwrap_or_default();
                Some(Err(Error::Conflict { message, current_version }))
            }
            (Some("retry"), _) => None,
            (Some(_), _) => Some(Err(Error::Invalid(row.try_get::<Option<String>, _>("message")?.unwrap_or_default()))),
            (None, other) => other,
        };
    }
    Ok(outcomes)
}

/// Any number that no other advisory lock on the database uses.
const API_LOCK: i64 = 0x6576_656e_7466_6564; // "eventfed"

/// Defines every function of sql/api.sql, after the migrations (which hold the
/// schema). Under a transaction-scoped advisory lock, so that nodes starting
/// together replace the functions one after the other, not at once.
pub(super) async fn install_api(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(API_LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(include_str!("../../../sql/api.sql")).execute(&mut *tx).await?;
    tx.commit().await
}

/// `metadata` as stored: a JSON `null` is no metadata.
fn stored_metadata(new: &NewEvent) -> Option<&Value> {
    new.metadata.as_ref().filter(|m| !m.is_null())
}

/// The envelope of an event `append_batch` stored (or found stored, for an
/// idempotent retry, whose content is the same by its rule): the content as
/// sent, with what the store decided. The data does not travel back.
fn stored_event(row: &PgRow, tenant_id: &str, new: &NewEvent) -> Result<Event> {
    let actor_id: Option<String> = row.try_get("event_actor_id")?;
    let username: Option<String> = row.try_get("event_actor_name")?;
    Ok(Event {
        id: row.try_get("event_id")?,
        cursor: Cursor::new(row.try_get("tx_id")?, row.try_get("event_position")?),
        tenant_id: tenant_id.to_owned(),
        stream: new.stream.as_str().to_owned(),
        version: row.try_get("version")?,
        event_type: new.event_type.as_str().to_owned(),
        data: new.data.clone(),
        actor: actor_id.map(|user_id| Actor { user_id, username }),
        audience: new.audience.clone(),
        metadata: stored_metadata(new).cloned(),
        timestamp: row.try_get("created_at")?,
    })
}
