//! `GET /api/stats`: admins only; each node's per-second samples, and on
//! PostgreSQL every node's, through the database; `GET /api/audit?order=desc`.

use crate::common;

use common::{event, token, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// The samples of `node` in a stats answer.
fn samples<'a>(stats: &'a Value, node: &Value) -> Vec<&'a Value> {
    let nodes = stats["nodes"].as_array().expect("nodes");
    nodes.iter().filter(|n| &n["node"] == node).flat_map(|n| n["samples"].as_array().expect("samples")).collect()
}

both_stores!(stats_are_for_admins_only, |s: common::TestServer| async move {
    let (status, body) = common::send(s.http.get(format!("{}/api/stats", s.base))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{body}");
    for roles in [&[][..], &["auditor"], &["publisher"], &["service"]] {
        let (status, body) = s.get(&token("acme", "u1", roles), "/api/stats").await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "{roles:?}: {body}");
    }
});

both_stores!(stats_sample_this_nodes_appends_every_second, |s: common::TestServer| async move {
    let admin = token("acme", "ops", &["admin"]);
    let publisher = token("acme", "pub", &["publisher"]);
    let batch: Vec<Value> = (0..7).map(|i| event("pulse", "metric:tick", json!({ "i": i }))).collect();
    let (status, body) = s.append(&publisher, json!({ "events": batch })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Other tests of this binary append too: at least these seven are counted.
    wait_until("a sample counts the seven appends", async || {
        let (status, stats) = s.get(&admin, "/api/stats").await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        let own = samples(&stats, &stats["node"]);
        own.iter().map(|x| x["appends"].as_u64().expect("appends")).sum::<u64>() >= 7
    })
    .await;
    let (_, stats) = s.get(&admin, "/api/stats").await;
    assert_eq!(stats["intervalSeconds"], 1);
    assert_eq!(stats["nodes"][0]["node"], stats["node"], "the answering node comes first");
    let own = samples(&stats, &stats["node"]);
    assert!(own.len() <= 900);
    let times: Vec<&str> = own.iter().map(|x| x["at"].as_str().expect("at")).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first, one a second: {times:?}");
    for sample in own {
        assert!(sample["sockets"].is_u64() && sample["lag"].is_f64() && sample["deliveries"].is_object(), "{sample}");
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_answers_for_the_cluster() {
    let a = common::TestServer::postgres().await;
    let url = a.db_url.clone().expect("PostgreSQL");
    let b = common::TestServer::start(&["--database-url", &url]).await;
    let admin = token("acme", "ops", &["admin"]);
    // A node gone for 20 minutes: its samples are deleted by the live ones.
    let pool = a.pool().await;
    sqlx::query("INSERT INTO eventfeed.node_stats (node, at, sample) VALUES (gen_random_uuid(), now() - interval '20 minutes', '{}')")
        .execute(&pool)
        .await
        .expect("an old sample");
    let (_, from_b) = b.get(&admin, "/api/stats").await;
    let node_b = from_b["node"].clone();
    wait_until("node A lists node B's samples", async || {
        let (_, from_a) = a.get(&admin, "/api/stats").await;
        from_a["node"] != node_b && !samples(&from_a, &node_b).is_empty()
    })
    .await;
    wait_until("samples older than 15 minutes are deleted", async || {
        let old: i64 =
            sqlx::query_scalar("SELECT count(*) FROM eventfeed.node_stats WHERE at < now() - interval '15 minutes'")
                .fetch_one(&pool)
                .await
                .expect("count");
        old == 0
    })
    .await;
    pool.close().await;
    b.stop().await;
    a.stop().await;
}

both_stores!(audit_pages_newest_first, |s: common::TestServer| async move {
    let auditor = token("acme", "a", &["auditor"]);
    let publisher = token("acme", "pub", &["publisher"]);
    let (_, empty) = s.get(&auditor, "/api/audit?order=desc").await;
    assert_eq!(empty, json!({ "events": [], "cursor": "0", "hasMore": false }), "no events yet");
    let batch: Vec<Value> =
        (0..5).map(|i| event(&format!("s-{}", i % 2), if i == 2 { "b:x" } else { "a:x" }, json!({ "i": i }))).collect();
    let (status, body) = s.append(&publisher, json!({ "events": batch })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.settle().await;
    let (_, oldest_first) = s.get(&auditor, "/api/audit").await;
    let mut expected: Vec<Value> = oldest_first["events"].as_array().expect("events").clone();
    expected.reverse();

    let (mut pages, mut after) = (Vec::new(), String::new());
    loop {
        let (status, page) = s.get(&auditor, &format!("/api/audit?order=desc&limit=2{after}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.extend(page["events"].as_array().expect("events").iter().cloned());
        after = format!("&after={}", page["cursor"].as_str().expect("cursor"));
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(pages, expected, "every event once, newest first");

    let (_, filtered) = s.get(&auditor, "/api/audit?order=desc&type=a:*&stream=s-0").await;
    let data: Vec<&Value> = filtered["events"].as_array().expect("events").iter().map(|e| &e["data"]["i"]).collect();
    assert_eq!(data, [&json!(4), &json!(0)], "filters apply newest first too");
    let (status, body) = s.get(&auditor, "/api/audit?order=sideways").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid"), "{body}");
});

both_stores!(audit_finds_one_event_by_id, |s: common::TestServer| async move {
    let publisher = token("acme", "pub", &["publisher"]);
    let batch: Vec<Value> = (0..3).map(|i| event("s", "a:x", json!({ "i": i }))).collect();
    let (_, body) = s.append(&publisher, json!({ "events": batch })).await;
    let (_, other) = s.append(&token("globex", "pub", &["publisher"]), event("s", "a:x", json!({}))).await;
    s.settle().await;
    let wanted = &body["events"][1];
    let auditor = token("acme", "a", &["auditor"]);
    for order in ["asc", "desc"] {
        let (status, page) =
            s.get(&auditor, &format!("/api/audit?id={}&order={order}", wanted["id"].as_str().unwrap())).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["events"], json!([wanted]), "{order}");
    }
    let (_, page) = s.get(&auditor, &format!("/api/audit?id={}", other["events"][0]["id"].as_str().unwrap())).await;
    assert_eq!(page["events"], json!([]), "another tenant's id finds nothing");
    let (status, body) = s.get(&auditor, "/api/audit?id=not-a-uuid").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid"), "{body}");
});
