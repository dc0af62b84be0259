//! Retention on the embedded store: pruning a prefix of the cursor order.

use super::*;
use crate::store::expired;
use crate::store::sqlite::PRUNE_BATCH;

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
    assert!(expired(Cursor::ZERO, floor));
    assert!(!expired(stored[1].cursor, floor));
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
