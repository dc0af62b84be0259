//! The SQL function as an outbox (PostgreSQL only). On a current-thread
//! runtime with its own metrics, so the doorbell count is this server's alone.

use crate::common;

use common::{OwnMetrics, TestServer, sql, token, wait_until};
use uuid::Uuid;

#[tokio::test(flavor = "current_thread")]
async fn the_sql_function_is_an_outbox() {
    let metrics = OwnMetrics::install();
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);

    let rolled_back = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    sql::append_in(&mut tx, rolled_back, "inv-1", "invoice:paid").await;
    tx.rollback().await.unwrap();

    // A long-poller waits; the committed append must ring the doorbell
    // (NOTIFY), not wait to be found by the one-second periodic read.
    let rings_before = metrics.value("eventfeed_doorbell_rings_total");
    let waiter = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move { s.get(&t, "/api/events?after=0&wait=10").await.1 })
    };
    wait_until("the long-poll waits", async || metrics.value("eventfeed_long_polls_waiting") == 1.0).await;
    let committed = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    sql::append_in(&mut tx, committed, "inv-1", "invoice:paid").await;
    tx.commit().await.unwrap();
    let page = waiter.await.unwrap();
    assert_eq!(common::ids(page["events"].as_array().unwrap()), [committed.to_string()]);
    // The ring is counted by the tailer's task, maybe after the waiter's answer.
    wait_until("the commit rang the doorbell", async || metrics.value("eventfeed_doorbell_rings_total") > rings_before)
        .await;
    assert_eq!(
        common::ids(&s.read_all(&t, "0", 10).await),
        [committed.to_string()],
        "the rolled-back event never appears"
    );
    s.stop().await;
}

/// The server's group commit rings the doorbell after its transaction has
/// committed, never inside it: a transaction that notifies holds a
/// database-wide lock through its commit's WAL flush, so batches that
/// notified committed one after another. Every other appender still rings
/// at its own commit.
#[tokio::test]
async fn the_group_commit_rings_after_its_commit_and_sql_appends_at_theirs() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
    listener.listen("eventfeed").await.unwrap();
    let quiet = async |listener: &mut sqlx::postgres::PgListener| {
        tokio::time::timeout(std::time::Duration::from_millis(700), listener.recv()).await.is_err()
    };
    let rung = async |listener: &mut sqlx::postgres::PgListener| {
        tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.is_ok_and(|n| n.is_ok())
    };
    assert!(quiet(&mut listener).await, "nothing appends yet");

    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT * FROM eventfeed.append_batch(ARRAY[0], ARRAY['acme'], ARRAY['inv-1'], ARRAY['invoice:paid'], \
         ARRAY['{}'::jsonb], ARRAY[NULL::uuid], ARRAY[NULL::bigint], ARRAY[NULL::text], ARRAY[NULL::text], \
         ARRAY[NULL::jsonb], ARRAY[NULL::jsonb])",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(quiet(&mut listener).await, "append_batch's own transaction notified");

    let mut tx = pool.begin().await.unwrap();
    sql::append_in(&mut tx, Uuid::new_v4(), "inv-2", "invoice:paid").await;
    tx.commit().await.unwrap();
    assert!(rung(&mut listener).await, "append_event's commit did not ring");
    assert!(quiet(&mut listener).await);

    let publisher = token("acme", "pub", &["publisher"]);
    let (status, _) = s.append(&publisher, common::event("inv-3", "invoice:paid", serde_json::json!({}))).await;
    assert_eq!(status, 201);
    assert!(rung(&mut listener).await, "the server's append did not ring after its commit");
    s.stop().await;
}
