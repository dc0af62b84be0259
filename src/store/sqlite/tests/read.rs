//! Reads of the embedded store: the feed in cursor order, audiences, type
//! filters, streams, audit, consumer cursors.

use super::*;

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
        let stream = db.read_stream(&stream_query("acme", user, "s", 1, 100)).await.unwrap();
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
    let page = db.read_stream(&stream_query("acme", "u-1", "s", 3, 2)).await.unwrap();
    assert_eq!((versions(&page), page.has_more), (vec![3, 4], true));
    let page = db.read_stream(&stream_query("acme", "u-1", "s", 5, 2)).await.unwrap();
    assert_eq!((versions(&page), page.has_more), (vec![5], false));
    assert_eq!(versions(&db.read_stream(&stream_query("acme", "u-1", "s", 0, 100)).await.unwrap()), [1, 2, 3, 4, 5]);
    assert!(db.read_stream(&stream_query("acme", "u-1", "nope", 1, 100)).await.unwrap().events.is_empty());
    assert!(db.read_stream(&stream_query("globex", "u-1", "s", 1, 100)).await.unwrap().events.is_empty());
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
    let mobile = ConsumerName::parse("mobile").unwrap();
    let key = ConsumerKey { tenant_id: "acme", user_id: "u-1", consumer: &mobile };
    assert_eq!(db.load_cursor(key).await.unwrap(), None);
    db.save_cursor(key, Cursor::new(1, 42)).await.unwrap();
    assert_eq!(db.load_cursor(key).await.unwrap(), Some(Cursor::new(1, 42)));
    db.save_cursor(key, Cursor::new(1, 43)).await.unwrap();
    assert_eq!(db.load_cursor(key).await.unwrap(), Some(Cursor::new(1, 43)));
    let other = ConsumerKey { user_id: "u-2", ..key };
    assert_eq!(db.load_cursor(other).await.unwrap(), None, "consumers are per user");
}
