//! Unit tests of the embedded store, each on a fresh file.
use std::ops::Deref;
use std::path::PathBuf;

use serde_json::json;

use super::*;
use uuid::Uuid;

use crate::event::{EventType, StreamName, TypeFilter};
use crate::store::{AppendRequest, NewEvent};

/// A store on a fresh file, deleted with its WAL files when dropped.
pub(crate) struct TempStore {
    pub(crate) store: SqliteStore,
    path: PathBuf,
}

impl TempStore {
    pub(crate) async fn new() -> Self {
        let path = std::env::temp_dir().join(format!("eventfeed-test-{}.db", Uuid::new_v4()));
        let store = SqliteStore::open(&path).await.expect("open the store");
        TempStore { store, path }
    }

    /// Sets an event's timestamp, as if it had been appended then.
    async fn set_time(&self, event: &Event, at: DateTime<Utc>) {
        sqlx::query("UPDATE events SET created_at = ?1 WHERE position = ?2")
            .bind(at.timestamp_millis())
            .bind(event.cursor.position)
            .execute(&self.store.pool)
            .await
            .unwrap();
    }
}

impl Deref for TempStore {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

fn new_event(stream: &str, event_type: &str) -> NewEvent {
    NewEvent {
        id: None,
        stream: StreamName::parse(stream).unwrap(),
        event_type: EventType::parse(event_type).unwrap(),
        data: json!({ "amount": 1200, "currency": "EUR" }),
        expected_version: None,
        actor: Some(Actor { user_id: "u-1".into(), username: Some("alice".into()) }),
        audience: None,
        metadata: None,
    }
}

fn request(tenant_id: &str, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest { tenant_id: tenant_id.into(), events }
}

/// Appends one request on its own.
async fn append(store: &SqliteStore, tenant_id: &str, events: Vec<NewEvent>) -> Result<Vec<Event>> {
    let mut outcomes = store.append_batch(&[request(tenant_id, events)]).await?;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0).map(|appended| appended.events)
}

fn feed<'a>(user_id: &'a str, after: Cursor, types: &'a TypeFilter) -> FeedQuery<'a> {
    FeedQuery { tenant_id: "acme", user_id, after, until: None, types, limit: 100 }
}

fn versions(page: &Page) -> Vec<i64> {
    page.events.iter().map(|e| e.version).collect()
}

fn types(page: &Page) -> Vec<&str> {
    page.events.iter().map(|e| e.event_type.as_str()).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn appends_and_reads_the_feed_in_cursor_order() {
    let db = TempStore::new().await;
    let mut appended = Vec::new();
    for stream in ["s-1", "s-2", "s-1"] {
        appended.extend(append(&db, "acme", vec![new_event(stream, "invoice:paid")]).await.unwrap());
    }
    append(&db, "globex", vec![new_event("s-1", "invoice:paid")]).await.unwrap();

    let all = TypeFilter::all();
    let page = db.read_feed(&feed("u-1", Cursor::ZERO, &all)).await.unwrap();
    assert_eq!(page.events, appended, "a read returns the stored events as appended");
    assert!(!page.has_more);
    assert_eq!(versions(&page), [1, 1, 2]);
    assert!(page.events.iter().all(|e| e.tenant_id == "acme" && e.cursor.tx_id == 1));
    assert!(page.events.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert!(Cursor::ZERO < page.events[0].cursor);
    assert!(page.events.iter().all(|e| e.timestamp.timestamp_subsec_nanos() % 1_000_000 == 0));
    assert_eq!(page.events[0].actor, Some(Actor { user_id: "u-1".into(), username: Some("alice".into()) }));

    let first = db.read_feed(&FeedQuery { limit: 2, ..feed("u-1", Cursor::ZERO, &all) }).await.unwrap();
    assert_eq!(first.events, appended[..2]);
    assert!(first.has_more);
    let rest = db.read_feed(&feed("u-1", first.events[1].cursor, &all)).await.unwrap();
    assert_eq!(rest.events, appended[2..]);
    let until = FeedQuery { until: Some(appended[1].cursor), ..feed("u-1", Cursor::ZERO, &all) };
    assert_eq!(db.read_feed(&until).await.unwrap().events, appended[..2]);

    let everything = db.read_all(Cursor::ZERO, 100).await.unwrap();
    assert_eq!(everything.len(), 4);
    assert!(everything.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert_eq!(db.read_all(appended[2].cursor, 100).await.unwrap()[0].tenant_id, "globex");
    assert_eq!(db.head().await.unwrap(), everything[3].cursor);
    assert_eq!(db.oldest_held_back().await.unwrap(), None);
    db.ping().await.unwrap();
}

#[tokio::test]
async fn cursors_of_other_transaction_ids_still_compare() {
    let db = TempStore::new().await;
    append(&db, "acme", vec![new_event("s", "a:b"), new_event("s", "a:b")]).await.unwrap();
    let all = TypeFilter::all();
    let before_all = db.read_feed(&feed("u-1", Cursor::new(0, 99), &all)).await.unwrap();
    assert_eq!(before_all.events.len(), 2);
    let after_all = db.read_feed(&feed("u-1", Cursor::new(2, 1), &all)).await.unwrap();
    assert!(after_all.events.is_empty());
    assert!(db.read_all(Cursor::new(i64::MAX, i64::MAX), i64::MAX).await.unwrap().is_empty());
    let negative = FeedQuery { limit: -5, ..feed("u-1", Cursor::ZERO, &all) };
    assert!(db.read_feed(&negative).await.unwrap().events.is_empty());
}

#[tokio::test]
async fn an_existing_id_returns_the_stored_event() {
    let db = TempStore::new().await;
    let id = Uuid::new_v4();
    let first = NewEvent { id: Some(id), ..new_event("s-1", "invoice:paid") };
    let stored = append(&db, "acme", vec![first.clone()]).await.unwrap();
    assert_eq!(stored[0].id, id);

    let retry = NewEvent { expected_version: Some(0), ..first.clone() };
    let again = append(&db, "acme", vec![retry]).await.unwrap();
    assert_eq!(again, stored, "the retry gets the stored event, not a conflict or a copy");
    let other = NewEvent { data: json!({ "other": true }), ..first.clone() };
    match append(&db, "acme", vec![other]).await {
        Err(Error::Conflict { message, current_version: None }) => assert_eq!(message, "id already used"),
        outcome => panic!("the same id with other content must conflict, got {outcome:?}"),
    }
    assert_eq!(db.read_all(Cursor::ZERO, 100).await.unwrap().len(), 1);
    let next = append(&db, "acme", vec![new_event("s-1", "invoice:paid")]).await.unwrap();
    assert_eq!(next[0].version, 2, "a retry does not advance the stream");

    let elsewhere = append(&db, "globex", vec![first]).await.unwrap();
    assert_eq!(elsewhere[0].id, id, "ids are unique per tenant");
    assert_ne!(elsewhere[0].cursor, stored[0].cursor);
}

#[tokio::test]
async fn expected_version_conflicts_carry_the_current_version() {
    let db = TempStore::new().await;
    append(&db, "acme", vec![new_event("s-1", "a:b"), new_event("s-1", "a:b")]).await.unwrap();
    let stale = NewEvent { expected_version: Some(1), ..new_event("s-1", "a:b") };
    match append(&db, "acme", vec![stale]).await {
        Err(Error::Conflict { message, current_version }) => {
            assert_eq!(current_version, Some(2));
            assert_eq!(message, "expected version 1 of stream s-1, found 2");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let fresh = NewEvent { expected_version: Some(2), ..new_event("s-1", "a:b") };
    assert_eq!(append(&db, "acme", vec![fresh]).await.unwrap()[0].version, 3);
    let new_stream = NewEvent { expected_version: Some(0), ..new_event("s-new", "a:b") };
    assert_eq!(append(&db, "acme", vec![new_stream]).await.unwrap()[0].version, 1);

    // One request's conflict does not fail the others in the same batch.
    let batch = [
        request("acme", vec![NewEvent { expected_version: Some(0), ..new_event("s-1", "a:b") }]),
        request("acme", vec![new_event("s-2", "a:b")]),
        request("acme", vec![NewEvent { expected_version: Some(3), ..new_event("s-1", "a:b") }]),
    ];
    let outcomes = db.append_batch(&batch).await.unwrap();
    assert!(matches!(outcomes[0], Err(Error::Conflict { current_version: Some(3), .. })), "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].as_ref().unwrap().events[0].version, 1);
    assert_eq!(outcomes[2].as_ref().unwrap().events[0].version, 4);
}

#[tokio::test]
async fn a_request_is_all_or_nothing() {
    let db = TempStore::new().await;
    let doomed = vec![new_event("s-a", "a:b"), NewEvent { expected_version: Some(7), ..new_event("s-b", "a:b") }];
    let outcome = append(&db, "acme", doomed).await;
    assert!(matches!(outcome, Err(Error::Conflict { current_version: Some(0), .. })), "{outcome:?}");
    assert!(db.read_all(Cursor::ZERO, 100).await.unwrap().is_empty(), "the first event was rolled back");
    assert_eq!(append(&db, "acme", vec![new_event("s-a", "a:b")]).await.unwrap()[0].version, 1);

    // A rule of the schema broken by one request is `invalid` for it alone.
    let batch = [request("", vec![new_event("s-c", "a:b")]), request("acme", vec![new_event("s-c", "a:b")])];
    let outcomes = db.append_batch(&batch).await.unwrap();
    match &outcomes[0] {
        Err(Error::Invalid(message)) => {
            assert!(message.contains("events_tenant_check"), "{message}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(outcomes[1].as_ref().unwrap().events[0].version, 1);
    assert_eq!(db.read_all(Cursor::ZERO, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn audience_limits_who_sees_an_event() {
    let db = TempStore::new().await;
    let only = |users: &[&str]| Some(Audience { users: users.iter().map(|u| u.to_string()).collect() });
    let events = vec![
        new_event("s", "a:everyone"),
        NewEvent { audience: only(&["u-1", "u-10"]), ..new_event("s", "a:some") },
        NewEvent { audience: only(&["u-2"]), ..new_event("s", "a:other") },
    ];
    let stored = append(&db, "acme", events).await.unwrap();
    assert_eq!(stored[1].audience, only(&["u-1", "u-10"]));

    let all = TypeFilter::all();
    for (user, expected) in [
        ("u-1", vec!["a:everyone", "a:some"]),
        ("u-10", vec!["a:everyone", "a:some"]),
        ("u-2", vec!["a:everyone", "a:other"]),
        ("u-", vec!["a:everyone"]),
        ("u", vec!["a:everyone"]),
        ("\"u-1\"", vec!["a:everyone"]),
    ] {
        let page = db.read_feed(&feed(user, Cursor::ZERO, &all)).await.unwrap();
        assert_eq!(types(&page), expected, "feed of {user}");
        let stream = db.read_stream("acme", user, "s", 1, 100).await.unwrap();
        assert_eq!(types(&stream), expected, "stream read of {user}");
    }
    let audit = db.audit("acme", &AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(audit.events.len(), 3, "audit ignores the audience");
}

#[tokio::test]
async fn type_filters_match_exact_types_and_prefixes() {
    let db = TempStore::new().await;
    let kinds = ["invoice:paid", "invoice:line:added", "invoices:paid", "expense:approved", "expense:rejected"];
    append(&db, "acme", kinds.iter().map(|t| new_event("s", t)).collect()).await.unwrap();
    for (list, expected) in [
        ("invoice:*", vec!["invoice:paid", "invoice:line:added"]),
        ("invoice:*,expense:approved", vec!["invoice:paid", "invoice:line:added", "expense:approved"]),
        ("expense:approved", vec!["expense:approved"]),
        ("invoice:line:*", vec!["invoice:line:added"]),
        ("nothing:here", vec![]),
        ("", kinds.to_vec()),
    ] {
        let filter = TypeFilter::parse_list(list).unwrap();
        let page = db.read_feed(&feed("u-1", Cursor::ZERO, &filter)).await.unwrap();
        assert_eq!(types(&page), expected, "filter {list:?}");
    }
}

#[tokio::test]
async fn reads_a_stream_from_a_version() {
    let db = TempStore::new().await;
    append(&db, "acme", (0..5).map(|_| new_event("s", "a:b")).collect()).await.unwrap();
    append(&db, "acme", vec![new_event("t", "a:b")]).await.unwrap();
    let page = db.read_stream("acme", "u-1", "s", 3, 2).await.unwrap();
    assert_eq!((versions(&page), page.has_more), (vec![3, 4], true));
    let page = db.read_stream("acme", "u-1", "s", 5, 2).await.unwrap();
    assert_eq!((versions(&page), page.has_more), (vec![5], false));
    assert_eq!(versions(&db.read_stream("acme", "u-1", "s", 0, 100).await.unwrap()), [1, 2, 3, 4, 5]);
    assert!(db.read_stream("acme", "u-1", "nope", 1, 100).await.unwrap().events.is_empty());
    assert!(db.read_stream("globex", "u-1", "s", 1, 100).await.unwrap().events.is_empty());
}

#[tokio::test]
async fn audit_filters() {
    let db = TempStore::new().await;
    let by = |user: &str| Some(Actor { user_id: user.into(), username: None });
    let events = vec![
        NewEvent { actor: by("u-1"), ..new_event("s-1", "invoice:paid") },
        NewEvent { actor: by("u-2"), ..new_event("s-2", "invoice:sent") },
        NewEvent {
            actor: by("u-2"),
            audience: Some(Audience { users: vec!["u-9".into()] }),
            ..new_event("s-1", "expense:approved")
        },
    ];
    let stored = append(&db, "acme", events).await.unwrap();
    append(&db, "globex", vec![new_event("s-1", "invoice:paid")]).await.unwrap();
    let times = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"];
    for (event, time) in stored.iter().zip(times) {
        db.set_time(event, at(time)).await;
    }

    let base = AuditQuery { limit: 100, ..Default::default() };
    let text = |s: &str| Some(s.to_owned());
    for (query, expected) in [
        (base.clone(), vec!["invoice:paid", "invoice:sent", "expense:approved"]),
        (AuditQuery { stream: text("s-1"), ..base.clone() }, vec!["invoice:paid", "expense:approved"]),
        (AuditQuery { actor: text("u-2"), ..base.clone() }, vec!["invoice:sent", "expense:approved"]),
        (AuditQuery { stream: text("s-1"), actor: text("u-2"), ..base.clone() }, vec!["expense:approved"]),
        (
            AuditQuery { types: TypeFilter::parse_list("invoice:*").unwrap(), ..base.clone() },
            vec!["invoice:paid", "invoice:sent"],
        ),
        (AuditQuery { from: Some(at(times[1])), ..base.clone() }, vec!["invoice:sent", "expense:approved"]),
        (AuditQuery { to: Some(at(times[1])), ..base.clone() }, vec!["invoice:paid"]),
        (AuditQuery { from: Some(at(times[1])), to: Some(at(times[2])), ..base.clone() }, vec!["invoice:sent"]),
    ] {
        let page = db.audit("acme", &query).await.unwrap();
        assert_eq!(types(&page), expected, "{query:?}");
    }

    let first = db.audit("acme", &AuditQuery { limit: 2, ..base.clone() }).await.unwrap();
    assert_eq!((first.events.len(), first.has_more), (2, true));
    let rest = db.audit("acme", &AuditQuery { after: first.events[1].cursor, ..base }).await.unwrap();
    assert_eq!((types(&rest), rest.has_more), (vec!["expense:approved"], false));
}

#[tokio::test]
async fn consumer_cursors_round_trip() {
    let db = TempStore::new().await;
    let key = ConsumerKey { tenant_id: "acme", user_id: "u-1", consumer: "mobile" };
    assert_eq!(db.load_cursor(key).await.unwrap(), None);
    db.save_cursor(key, Cursor::new(1, 42)).await.unwrap();
    assert_eq!(db.load_cursor(key).await.unwrap(), Some(Cursor::new(1, 42)));
    db.save_cursor(key, Cursor::new(1, 43)).await.unwrap();
    assert_eq!(db.load_cursor(key).await.unwrap(), Some(Cursor::new(1, 43)));
    let other = ConsumerKey { user_id: "u-2", ..key };
    assert_eq!(db.load_cursor(other).await.unwrap(), None, "consumers are per user");
}

#[tokio::test]
async fn prune_deletes_a_prefix_and_records_the_floor() {
    let db = TempStore::new().await;
    let stored = append(&db, "acme", (0..3).map(|_| new_event("s", "a:b")).collect()).await.unwrap();
    let long_ago = at("2020-01-01T00:00:00Z");
    db.set_time(&stored[0], long_ago).await;
    db.set_time(&stored[1], long_ago).await;
    assert_eq!(db.retention_floor().await.unwrap(), None);

    let cutoff = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(db.prune(cutoff).await.unwrap(), 2);
    let floor = db.retention_floor().await.unwrap();
    assert_eq!(floor, Some(stored[1].cursor));
    assert!(super::super::expired(Cursor::ZERO, floor));
    assert!(!super::super::expired(stored[1].cursor, floor));
    assert_eq!(db.read_all(Cursor::ZERO, 100).await.unwrap(), stored[2..]);
    assert_eq!(db.head().await.unwrap(), stored[2].cursor);
    assert_eq!(db.prune(cutoff).await.unwrap(), 0);

    // With every event gone the head is the floor, so a reset is not expired.
    db.set_time(&stored[2], long_ago).await;
    assert_eq!(db.prune(cutoff).await.unwrap(), 1);
    assert_eq!(db.head().await.unwrap(), stored[2].cursor);
    let next = append(&db, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    assert!(next[0].cursor > stored[2].cursor, "positions are never reused");
    assert_eq!(next[0].version, 4, "stream versions survive retention");
}

#[tokio::test]
async fn prune_deletes_at_most_a_batch_per_call() {
    let db = TempStore::new().await;
    let bulk = PRUNE_BATCH + 5;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO events (id, tenant_id, stream, version, type, data, created_at) \
         SELECT printf('%08d-0000-4000-8000-000000000000', i), 'acme', 's', i, 'a:b', '{}', 0 FROM n",
    )
    .bind(bulk)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(db.prune(Utc::now()).await.unwrap(), PRUNE_BATCH as u64);
    assert_eq!(db.retention_floor().await.unwrap(), Some(Cursor::new(1, PRUNE_BATCH)));
    assert_eq!(db.prune(Utc::now()).await.unwrap(), 5);
    assert_eq!(db.retention_floor().await.unwrap(), Some(Cursor::new(1, bulk)));
}

#[tokio::test]
async fn the_doorbell_rings_after_an_append() {
    let db = TempStore::new().await;
    // A clone shares the bell: the tailer and the committer hold different clones.
    let Doorbell::Local(rx) = db.store.clone().doorbell().await.unwrap() else {
        panic!("the embedded store rings a local bell")
    };
    let mut bell = Doorbell::Local(rx);
    let quiet = tokio::time::timeout(Duration::from_millis(50), bell.ring()).await;
    assert!(quiet.is_err(), "no ring before an append");
    append(&db, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    let rang = tokio::time::timeout(Duration::from_secs(5), bell.ring()).await;
    assert!(matches!(rang, Ok(Ok(()))), "the bell rang after the commit");
}

#[tokio::test]
async fn concurrent_appends_queue_for_the_write_lock() {
    let db = TempStore::new().await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { append(&store, "acme", vec![new_event("s", "a:b")]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stream = db.read_stream("acme", "u-1", "s", 1, 100).await.unwrap();
    assert_eq!(versions(&stream), (1..=20).collect::<Vec<_>>(), "no holes, no duplicates");
    let feed_order: Vec<i64> = db.read_all(Cursor::ZERO, 100).await.unwrap().iter().map(|e| e.version).collect();
    assert_eq!(feed_order, versions(&stream), "commit order is cursor order");
}

#[tokio::test]
async fn connections_are_durable() {
    let db = TempStore::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(journal, "wal");
    for (pragma, expected) in [("PRAGMA synchronous", 2), ("PRAGMA busy_timeout", 5000), ("PRAGMA foreign_keys", 0)] {
        let value: i64 = sqlx::query_scalar(pragma).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(value, expected, "{pragma} (synchronous 2 is FULL)");
    }
}

#[tokio::test]
async fn an_open_store_is_locked_until_closed() {
    let db = TempStore::new().await;
    let refused = SqliteStore::open(&db.path).await.err().expect("a second open is refused");
    assert!(refused.to_string().contains("in use by another eventfeed process"), "{refused}");
    db.close().await;
    SqliteStore::open(&db.path).await.expect("open again once closed").close().await;
}

#[tokio::test]
async fn reopening_keeps_the_events() {
    let db = TempStore::new().await;
    let stored = append(&db, "acme", vec![new_event("s", "a:b")]).await.unwrap();
    db.close().await;
    let reopened = SqliteStore::open(&db.path).await.unwrap();
    assert_eq!(reopened.read_all(Cursor::ZERO, 100).await.unwrap(), stored);
    reopened.close().await;
}
