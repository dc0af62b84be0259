//! Gap-free cursor order under concurrent, out-of-order commits (PostgreSQL
//! only: these are about PostgreSQL's transactions).

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, cursor, sql, token};
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One appender: transactions of 1–3 events, random pauses before commit, and
/// some rollbacks. Returns the ids it committed.
async fn appender(pool: PgPool, n: usize, worker: usize) -> Vec<Uuid> {
    let mut committed = Vec::new();
    for i in 0..n {
        let (count, pause, rollback) = {
            let mut rng = rand::rng();
            (rng.random_range(1..=3), rng.random_range(0..15), rng.random_bool(0.15))
        };
        let mut tx = pool.begin().await.unwrap();
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            sql::append_in(&mut tx, *id, &format!("w{worker}-{}", i % 3), "order:placed").await;
        }
        tokio::time::sleep(Duration::from_millis(pause)).await; // the out-of-order commit under test
        if rollback {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            committed.extend(ids);
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_out_of_order_commits_are_read_once_in_order() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);
    let done = Arc::new(AtomicBool::new(false));

    // The poller reads small pages while the appenders commit.
    let poller = {
        let (s, t, done) = (s.clone(), t.clone(), done.clone());
        tokio::spawn(async move {
            let mut got: Vec<Value> = Vec::new();
            let mut after = "0".to_owned();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let (_, page) = s.get(&t, &format!("/api/events?after={after}&limit=7")).await;
                let events = page["events"].as_array().unwrap().clone();
                after = page["cursor"].as_str().unwrap().to_owned();
                let more = page["hasMore"].as_bool().unwrap();
                got.extend(events);
                if finished && !more {
                    return got;
                }
            }
        })
    };
    let workers: Vec<_> = (0..8).map(|w| tokio::spawn(appender(pool.clone(), 30, w))).collect();
    let mut committed = HashSet::new();
    for w in workers {
        committed.extend(w.await.unwrap().into_iter().map(|id| id.to_string()));
    }
    // Every commit is below the horizon before the poller's last lap.
    s.settle().await;
    done.store(true, Ordering::SeqCst);
    let got = poller.await.unwrap();

    let got_ids = common::ids(&got);
    let unique: HashSet<_> = got_ids.iter().cloned().collect();
    assert_eq!(unique.len(), got_ids.len(), "no event twice");
    assert_eq!(unique, committed, "exactly the committed events");
    assert!(got.windows(2).all(|w| cursor(&w[0]) < cursor(&w[1])), "in cursor order");
    assert_eq!(got, s.read_all(&t, "0", 1000).await, "the same order as a later full read");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_back_later_events_without_a_skip() {
    let s = TestServer::postgres().await;
    let pool = s.pool().await;
    let t = token("acme", "reader", &[]);

    let mut slow = pool.begin().await.unwrap();
    let slow_id = Uuid::new_v4();
    sql::append_in(&mut slow, slow_id, "slow", "order:placed").await;
    let fast_id = Uuid::new_v4();
    let mut fast = pool.begin().await.unwrap();
    sql::append_in(&mut fast, fast_id, "fast", "order:placed").await;
    fast.commit().await.unwrap();

    let (_, page) = s.get(&t, "/api/events?after=0").await;
    assert_eq!(page["events"], serde_json::json!([]), "the later commit waits behind the open transaction");
    let (_, audit) = s.get(&token("acme", "a", &["auditor"]), "/api/audit").await;
    assert_eq!(audit["events"], serde_json::json!([]), "audit reads obey the same horizon");

    slow.commit().await.unwrap();
    let got = s.read_all(&t, "0", 10).await;
    assert_eq!(common::ids(&got), [slow_id.to_string(), fast_id.to_string()]);
    s.stop().await;
}
