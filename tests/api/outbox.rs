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
