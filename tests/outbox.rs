//! The SQL function as an outbox (PostgreSQL only). Its own test binary, so
//! no other test's transactions hold the horizon while the wake-up is timed.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, token};
use uuid::Uuid;

/// Appends one event with the SQL function inside `tx`.
async fn append_in(tx: &mut sqlx::PgConnection, id: Uuid) {
    sqlx::query("SELECT * FROM eventfeed.append_event(tenant_id => 'acme', stream => 'inv-1', type => 'invoice:paid', data => '{}'::jsonb, id => $1)")
        .bind(id)
        .fetch_one(tx)
        .await
        .expect("append_event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_function_is_an_outbox() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);

    let rolled_back = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    append_in(&mut tx, rolled_back).await;
    tx.rollback().await.unwrap();

    // A long-poller waits; the committed append must wake it promptly (the
    // doorbell), not at the one-second periodic read.
    let waiter = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move {
            let (_, page) = s.get(&t, "/api/events?after=0&wait=10").await;
            (Instant::now(), page)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // let the poller park first
    let committed = Uuid::new_v4();
    let mut tx = pool.begin().await.unwrap();
    append_in(&mut tx, committed).await;
    tx.commit().await.unwrap();
    let committed_at = Instant::now();
    let (woke_at, page) = waiter.await.unwrap();
    let latency = woke_at - committed_at;
    println!("long-poll woke {latency:?} after the commit");
    assert_eq!(common::ids(page["events"].as_array().unwrap()), [committed.to_string()]);
    assert!(latency < Duration::from_millis(100), "woken after {latency:?}");
    assert_eq!(
        common::ids(&s.read_all(&t, "0", 10).await),
        [committed.to_string()],
        "the rolled-back event never appears"
    );
    s.stop().await;
}
