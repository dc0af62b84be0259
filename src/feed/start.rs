//! Where a reader starts: an explicit cursor, else its consumer's stored
//! cursor, else a default; and the reset when that start has expired.

use serde::Serialize;

use crate::cursor::Cursor;
use crate::store::{ConsumerKey, Store};

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Read everything after this cursor.
    After(Cursor),
    /// The cursor is behind the retention floor: the reader must reload its
    /// state and continue from `head`.
    Reset { head: Cursor },
}

/// The start cursor is older than the retention horizon: reload your state
/// some other way, then go on from `cursor`, the head.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reset {
    pub cursor: Cursor,
    #[schema(value_type = String, examples("expired"))]
    pub reason: &'static str,
}

impl Reset {
    pub fn expired(head: Cursor) -> Self {
        Reset { cursor: head, reason: "expired" }
    }
}

/// Resolves a reader's start from an explicit cursor, else its consumer's
/// stored cursor, else `fallback`. A consumer seen for the first time is
/// registered at its tenant's head, but never past `arrived` (the live head
/// when the client arrived): its offline queue starts then, and an event
/// appended after a socket was told it is connected is not skipped, however
/// late this runs.
pub async fn resolve_start(
    store: &Store,
    tenant: &str,
    key: Option<ConsumerKey<'_>>,
    after: Option<Cursor>,
    fallback: Cursor,
    arrived: Cursor,
) -> crate::error::Result<Start> {
    let cursor = match (after, key) {
        (Some(after), _) => after,
        (None, Some(key)) => match store.load_cursor(key).await? {
            Some(stored) => stored,
            None => {
                let head = tenant_head(store, tenant).await?.min(arrived);
                store.save_cursor(key, head).await?;
                head
            }
        },
        (None, None) => fallback,
    };
    if crate::store::expired(cursor, store.retention_floor().await?) {
        return Ok(Start::Reset { head: tenant_head(store, tenant).await? });
    }
    Ok(Start::After(cursor))
}

/// The head a reader of `tenant` is given: its tenant's newest event, never
/// the store's head, which moves with every other tenant's appends. A tenant
/// with no event left gets the retention floor (a reset must not repeat), else `0`.
pub async fn tenant_head(store: &Store, tenant: &str) -> crate::error::Result<Cursor> {
    match store.tenant_head(tenant).await? {
        Some(head) => Ok(head),
        None => Ok(store.retention_floor().await?.unwrap_or(Cursor::ZERO)),
    }
}
