//! The one way a client's events are read from the store: a socket's replay,
//! an SSE stream and a long-poll page through the feed with a `Reader`.
//!
//! A reader pages after its cursor, either up to a fixed cursor (a replay's
//! hand-over point) or on and on, waiting for its tenant's bell when it has
//! read everything. Failed reads are retried with backoff; shutdown stops it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Feed;
use crate::cursor::Cursor;
use crate::event::TypeFilter;
use crate::store::{EventPage, FeedQuery, Store};

/// Events per page unless the caller asks for fewer.
const PAGE: i64 = 500;
/// The first wait after a failed read; it doubles up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// Shutdown began: the reader stopped.
#[derive(Debug)]
pub struct Stopped;

/// Where a reader stops.
enum End {
    /// Nothing after this cursor is read.
    At(Cursor),
    /// Never: when caught up, it waits for this tenant bell (`Feed::tenant_watch`).
    Follow(watch::Receiver<Cursor>),
}

/// Pages through one user's visible events after a cursor.
pub struct Reader {
    store: Store,
    tenant_id: String,
    user_id: String,
    cursor: Cursor,
    end: End,
    limit: i64,
    /// Whether the last page read everything there was.
    caught_up: bool,
    shutdown: CancellationToken,
}

impl Reader {
    /// A reader of `(after, until]`: a replay up to its hand-over point.
    pub fn until(feed: &Feed, tenant_id: &str, user_id: &str, after: Cursor, until: Cursor) -> Reader {
        Reader::new(feed, tenant_id, user_id, after, End::At(until))
    }

    /// A reader of everything after `after`, now and to come.
    pub fn follow(feed: &Feed, tenant_id: &str, user_id: &str, after: Cursor) -> Reader {
        Reader::new(feed, tenant_id, user_id, after, End::Follow(feed.tenant_watch(tenant_id)))
    }

    fn new(feed: &Feed, tenant_id: &str, user_id: &str, after: Cursor, end: End) -> Reader {
        Reader {
            store: feed.inner.store.clone(),
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.to_owned(),
            cursor: after,
            end,
            limit: PAGE,
            caught_up: false,
            shutdown: feed.inner.shutdown.clone(),
        }
    }

    /// At most `limit` events per page.
    pub fn limit(mut self, limit: i64) -> Reader {
        self.limit = limit;
        self
    }

    /// Everything up to here has been read.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The next page of events of `types`, read once; a failed read is the caller's.
    pub async fn read(&mut self, types: &TypeFilter) -> crate::error::Result<EventPage> {
        if let End::Follow(bell) = &mut self.end {
            // Rings from here on wake `wait`: none falls between the read and the wait.
            bell.borrow_and_update();
        }
        let until = match self.end {
            End::At(until) if self.cursor >= until => return Ok(EventPage { events: vec![], has_more: false }),
            End::At(until) => Some(until),
            End::Follow(_) => None,
        };
        let query = FeedQuery {
            tenant_id: &self.tenant_id,
            user_id: &self.user_id,
            after: self.cursor,
            until,
            types,
            limit: self.limit,
        };
        let page = self.store.read_feed(&query).await?;
        self.caught_up = !page.has_more;
        self.cursor = match (page.events.last(), until) {
            (_, Some(until)) if !page.has_more => until,
            (Some(last), _) => last.cursor,
            (None, _) => self.cursor,
        };
        Ok(page)
    }

    /// The next page, retrying failed reads; a following reader that has read
    /// everything first waits for more. `None` once a bounded reader is done.
    pub async fn next(&mut self, types: &TypeFilter) -> Result<Option<EventPage>, Stopped> {
        let wait = match self.end {
            End::At(until) if self.cursor >= until => return Ok(None),
            End::At(_) => false,
            End::Follow(_) => self.caught_up,
        };
        if wait && !self.wait(None).await {
            return Err(Stopped);
        }
        let shutdown = self.shutdown.clone();
        let mut backoff = Backoff::default();
        loop {
            match shutdown.run_until_cancelled(self.read(types)).await.ok_or(Stopped)? {
                Ok(page) => return Ok(Some(page)),
                Err(e) => {
                    tracing::warn!(error = %e, tenant = %self.tenant_id, cursor = %self.cursor, "feed read failed; retrying")
                }
            }
            backoff.pause(&shutdown).await?;
        }
    }

    /// Waits until this tenant has new events (true), or until `deadline`
    /// passes or shutdown begins (false). A bounded reader never waits.
    pub async fn wait(&mut self, deadline: Option<Instant>) -> bool {
        let End::Follow(bell) = &mut self.end else { return false };
        let rang = async {
            match deadline {
                Some(deadline) => matches!(tokio::time::timeout_at(deadline, bell.changed()).await, Ok(Ok(()))),
                None => bell.changed().await.is_ok(),
            }
        };
        self.shutdown.run_until_cancelled(rang).await.unwrap_or(false)
    }
}

/// The waits between attempts at a store call that failed: doubling from
/// `RETRY_FIRST` up to `RETRY_MAX`.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: RETRY_FIRST }
    }
}

impl Backoff {
    /// Sleeps before the next attempt, unless shutdown begins first.
    pub async fn pause(&mut self, shutdown: &CancellationToken) -> Result<(), Stopped> {
        shutdown.run_until_cancelled(tokio::time::sleep(self.next)).await.ok_or(Stopped)?;
        self.next = (self.next * 2).min(RETRY_MAX);
        Ok(())
    }
}
