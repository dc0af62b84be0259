//! The SQL function as an outbox (PostgreSQL only). Its own test binary, so
//! the doorbell count in `/metrics` is this server's alone.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, sql, token};
use uuid::Uuid;

/// `eventfeed_doorbell_rings_total` from the server's `/metrics`.
async fn doorbell_rings(s: &TestServer) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("eventfeed_doorbell_rings_total "))
        .map_or(0, |n| n.trim().parse().expect("a counter value"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_function_is_an_outbox() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);

    let rolled_back = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    sql::append_in(&mut tx, rolled_back, "inv-1", "invoice:paid").await;
    tx.rollback().await.unwrap();

    // A long-poller waits; the committed append must ring the doorbell
    // (NOTIFY), not wait to be found by the one-second periodic read.
    let rings_before = doorbell_rings(&s).await;
    let waiter = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move { s.get(&t, "/api/events?after=0&wait=10").await.1 })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // let the poller park first
    let committed = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    sql::append_in(&mut tx, committed, "inv-1", "invoice:paid").await;
    tx.commit().await.unwrap();
    let page = waiter.await.unwrap();
    assert_eq!(common::ids(page["events"].as_array().unwrap()), [committed.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while doorbell_rings(&s).await == rings_before {
        assert!(Instant::now() < deadline, "the commit did not ring the doorbell");
        tokio::time::sleep(Duration::from_millis(10)).await; // retry: the ring is counted by the tailer's task
    }
    assert_eq!(
        common::ids(&s.read_all(&t, "0", 10).await),
        [committed.to_string()],
        "the rolled-back event never appears"
    );
    s.stop().await;
}
