//! The live set: delivery in order per tenant, the hand-over of a full sink;
//! and the reader, bounded or following.

use std::sync::Mutex;

use super::*;
use crate::store::EventPage;
use crate::store::sqlite::tests::TempStore;

/// A sink that records what it is sent and is full after `room` events.
struct Recorder {
    got: Mutex<Vec<Cursor>>,
    room: usize,
}

impl Recorder {
    fn new(room: usize) -> Arc<Recorder> {
        Arc::new(Recorder { got: Mutex::new(Vec::new()), room })
    }
    fn got(&self) -> Vec<Cursor> {
        self.got.lock().unwrap().clone()
    }
}

impl Sink for Recorder {
    fn wants(&self, _: &Event) -> bool {
        true
    }
    fn send(&self, event: &Event, _: &RawValue) -> Result<(), SinkError> {
        let mut got = self.got.lock().unwrap();
        if got.len() == self.room {
            return Err(SinkError::Full);
        }
        got.push(event.cursor);
        Ok(())
    }
}

fn event(tenant: &str, position: i64) -> Event {
    Event {
        id: uuid::Uuid::new_v4(),
        cursor: Cursor::new(1, position),
        tenant_id: tenant.into(),
        stream: "s".into(),
        version: position,
        event_type: "test:happened".into(),
        data: serde_json::json!({}),
        actor: None,
        audience: None,
        metadata: None,
        timestamp: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn each_sink_gets_its_tenants_events_in_order_and_a_full_one_resumes_where_it_stopped() {
    let temp = TempStore::new().await;
    let shutdown = CancellationToken::new();
    let feed = Feed::start(Store::new(temp.store.clone()), &shutdown, &TaskTracker::new()).await.unwrap();
    let start = feed.inner.live.lock().unwrap().cursor;
    let (a, slow, other) = (Recorder::new(usize::MAX), Recorder::new(2), Recorder::new(usize::MAX));
    let _a = feed.join(start, "t1", a.clone()).ok().unwrap();
    let mut slow_membership = feed.join(start, "t1", slow.clone()).ok().unwrap();
    let _other = feed.join(start, "t2", other.clone()).ok().unwrap();

    // Tenants interleave in one read; the slow sink fills up at t1's third event.
    let page = [event("t1", 1), event("t2", 2), event("t1", 3), event("t2", 4), event("t1", 5)];
    feed.deliver(&page);

    let at = |positions: &[i64]| positions.iter().map(|p| Cursor::new(1, *p)).collect::<Vec<_>>();
    assert_eq!(a.got(), at(&[1, 3, 5]));
    assert_eq!(other.got(), at(&[2, 4]));
    assert_eq!(slow.got(), at(&[1, 3]));
    // It has everything up to the event before the one it missed: the
    // catch-up from the store starts there, with no gap and no duplicate.
    assert_eq!(slow_membership.lagged.try_recv().unwrap(), Cursor::new(1, 4));
    assert_eq!(feed.inner.live.lock().unwrap().cursor, Cursor::new(1, 5));

    // The others stay live; the slow one has left.
    feed.deliver(&[event("t1", 6)]);
    assert_eq!(a.got(), at(&[1, 3, 5, 6]));
    assert_eq!(slow.got(), at(&[1, 3]));
    shutdown.cancel();
}

#[tokio::test]
async fn a_reader_stops_at_its_end_or_follows_its_tenant_until_shutdown() {
    use crate::event::TypeFilter;
    use crate::store::sqlite::tests::{append, new_event};

    let temp = TempStore::new().await;
    let shutdown = CancellationToken::new();
    let feed = Feed::start(Store::new(temp.store.clone()), &shutdown, &TaskTracker::new()).await.unwrap();
    let stored = append(&temp, "acme", vec![new_event("s", "a:b"); 5]).await.unwrap();
    let cursors =
        |pages: &[EventPage]| pages.iter().flat_map(|p| p.events.iter().map(|e| e.cursor)).collect::<Vec<_>>();
    let all = TypeFilter::default();

    // Bounded: (first, third], a page of one at a time, then done.
    let mut reader = Reader::until(&feed, "acme", "u-1", stored[0].cursor, stored[2].cursor).limit(1);
    let mut pages = Vec::new();
    while let Some(page) = reader.next(&all).await.unwrap() {
        pages.push(page);
    }
    assert_eq!(cursors(&pages), [stored[1].cursor, stored[2].cursor]);

    // Following: caught up, it waits; another tenant's event does not end
    // the wait, its own tenant's does; shutdown stops it. (Once the tailer
    // has delivered the five: their ring would wake it, to find nothing new.)
    let mut head = feed.watch();
    while feed.head() < stored[4].cursor {
        head.changed().await.unwrap();
    }
    let mut follower = Reader::follow(&feed, "acme", "u-1", stored[4].cursor);
    assert_eq!(follower.next(&all).await.unwrap().unwrap().events.len(), 0);
    let waiting = tokio::spawn(async move {
        let page = follower.next(&TypeFilter::default()).await;
        (page, follower)
    });
    append(&temp, "globex", vec![new_event("s", "a:b")]).await.unwrap();
    let more = append(&temp, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    let (page, mut follower) =
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await.unwrap().unwrap();
    assert_eq!(cursors(&[page.unwrap().unwrap()]), [more[0].cursor]);
    shutdown.cancel();
    assert!(matches!(follower.next(&all).await, Err(Stopped)));
}
