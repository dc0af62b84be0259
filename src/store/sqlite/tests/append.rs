//! Appends to the embedded store: idempotent ids, expected versions, a
//! request all or nothing, the one write lock.

use super::*;

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
    let stream = db.read_stream(&stream_query("acme", "u-1", "s", 1, 100)).await.unwrap();
    assert_eq!(versions(&stream), (1..=20).collect::<Vec<_>>(), "no holes, no duplicates");
    let feed_order: Vec<i64> = db.read_all(Cursor::ZERO, 100).await.unwrap().iter().map(|e| e.version).collect();
    assert_eq!(feed_order, versions(&stream), "commit order is cursor order");
}
