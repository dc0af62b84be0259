//! Append behaviour on both stores: idempotency, expected versions, atomic batches.

use crate::common;

use common::{event, token};
use reqwest::StatusCode;
use serde_json::json;

both_stores!(idempotent_retry_returns_the_stored_event, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let id = uuid::Uuid::new_v4();
    let body = json!({ "id": id, "stream": "inv-1", "type": "invoice:paid", "data": { "n": 1 } });
    let (status, first) = s.append(&t, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = s.append(&t, body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(first["events"][0], again["events"][0], "the retry returns the stored event");
    assert_eq!(s.read_all(&t, "0", 100).await.len(), 1, "stored once");
});

both_stores!(numbers_at_the_limits_of_double_precision_read_back_as_themselves, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    // PostgreSQL prints these with every digit; read back, each must parse to itself.
    let data =
        json!({ "max": f64::MAX, "min": -f64::MAX, "near": 1.7e308, "tiny": 5e-324, "small": 2.2250738585072014e-308 });
    let (status, appended) = s.append(&t, event("n-1", "number:edge", data.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    let read = s.read_all(&t, "0", 100).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["data"], data);
    // The feed goes on past it.
    s.append(&t, event("n-1", "number:next", json!({}))).await;
    assert_eq!(s.read_all(&t, "0", 100).await.len(), 2);
});

both_stores!(idempotency_key_makes_a_retried_batch_a_no_op, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let body = json!({ "events": [event("s-1", "a:one", json!({})), event("s-2", "a:two", json!({}))] });
    let post = || s.request(reqwest::Method::POST, "/api/events", &t).header("Idempotency-Key", "order-77").json(&body);
    let (status, first) = common::send(post()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = common::send(post()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(first, again);
    assert_eq!(s.read_all(&t, "0", 100).await.len(), 2);
});

both_stores!(expected_version_conflict_is_409_with_current_version, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    for v in 0..3 {
        let (status, body) = s
            .append(&t, json!({ "stream": "inv-9", "type": "invoice:edited", "data": {}, "expectedVersion": v }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["events"][0]["version"], v + 1);
    }
    let (status, body) =
        s.append(&t, json!({ "stream": "inv-9", "type": "invoice:edited", "data": {}, "expectedVersion": 1 })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(body["error"]["currentVersion"], 3);
});

both_stores!(a_batch_is_all_or_nothing, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let (status, _) = s.append(&t, event("inv-5", "invoice:created", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let batch = json!({ "events": [
        event("inv-6", "invoice:created", json!({})),
        { "stream": "inv-5", "type": "invoice:paid", "data": {}, "expectedVersion": 0 },
    ]});
    let (status, body) = s.append(&t, batch).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["currentVersion"], 1);
    let all = s.read_all(&t, "0", 100).await;
    assert_eq!(all.len(), 1, "the first event of the failed batch was not kept: {all:?}");
    let (_, stream) = s.get(&t, "/api/streams/inv-6").await;
    assert_eq!(stream["events"], json!([]));
});

both_stores!(concurrent_appends_each_keep_their_own_outcome, |s: common::TestServer| async move {
    // Many appends at once share transactions; one conflict must not fail the others.
    let t = token("acme", "u1", &["publisher"]);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let body = if i % 8 == 0 {
                json!({ "stream": "hot", "type": "x:y", "data": {}, "expectedVersion": 1000 })
            } else {
                event(&format!("s-{i}"), "x:y", json!({ "i": i }))
            };
            s.append(&t, body).await.0
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == StatusCode::CONFLICT).count(), 8);
    assert_eq!(codes.iter().filter(|c| **c == StatusCode::CREATED).count(), 56);
    assert_eq!(s.read_all(&t, "0", 1000).await.len(), 56);
});

both_stores!(stream_reads_in_version_order_from_a_version, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    for i in 0..5 {
        s.append(&t, event("doc/7", "document:updated", json!({ "i": i }))).await;
    }
    let (status, body) = s.get(&t, "/api/streams/doc/7?fromVersion=3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let versions: Vec<i64> =
        body["events"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [3, 4, 5]);
});

both_stores!(concurrent_appends_to_one_stream_get_versions_without_holes, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (s, t) = (s.clone(), t.clone());
        let body = if i % 4 == 0 {
            // Two events of one request on the same stream take consecutive versions.
            json!({ "events": [event("hot", "x:a", json!({ "i": i })), event("hot", "x:b", json!({ "i": i }))] })
        } else {
            event("hot", "x:a", json!({ "i": i }))
        };
        tasks.push(tokio::spawn(async move { s.append(&t, body).await }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let mine: Vec<i64> =
            body["events"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
        assert!(mine.windows(2).all(|w| w[1] == w[0] + 1), "a request's events are consecutive: {mine:?}");
        versions.extend(mine);
    }
    versions.sort();
    assert_eq!(versions, (1..=50).collect::<Vec<i64>>());
    let (_, stream) = s.get(&t, "/api/streams/hot?limit=1000").await;
    let stored: Vec<i64> =
        stream["events"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(stored, (1..=50).collect::<Vec<i64>>());
});

both_stores!(concurrent_retries_of_one_id_store_it_once, |s: common::TestServer| async move {
    // The same append sent many times at once, as a client with a flaky
    // network might: the copies land in one batch and in racing batches alike.
    let t = token("acme", "u1", &["publisher"]);
    let body = json!({ "id": uuid::Uuid::new_v4(), "stream": "fresh", "type": "invoice:paid", "data": { "n": 1 } });
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (s, t, body) = (s.clone(), t.clone(), body.clone());
        tasks.push(tokio::spawn(async move { s.append(&t, body).await }));
    }
    let mut stored = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        stored.push(body["events"][0].clone());
    }
    assert!(stored.windows(2).all(|w| w[0] == w[1]), "every copy returns the one stored event: {stored:?}");
    assert_eq!(stored[0]["version"], 1);
    assert_eq!(s.read_all(&t, "0", 100).await.len(), 1, "stored once");
});

both_stores!(group_commits_are_measured, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    let (status, body) = s.append(&t, event("m-1", "x:y", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let text = s.metrics().await;
    for metric in ["eventfeed_commit_seconds_count", "eventfeed_commit_batch_size_count"] {
        assert!(text.lines().any(|l| l.starts_with(metric)), "{metric} missing from /metrics:\n{text}");
    }
});

both_stores!(a_retry_never_shows_an_event_the_caller_may_not_see, |s: common::TestServer| async move {
    // The attack of issue 10: a service notifies u1 privately under an
    // Idempotency-Key; publisher u2 replays the key (or the id) to read it.
    let service = token("acme", "notifier", &["service"]);
    let u2 = token("acme", "u2", &["publisher"]);
    let private = json!({ "stream": "inbox/u1", "type": "notification:private",
                          "data": { "secret": "s3cret-for-u1" }, "audience": { "users": ["u1"] } });
    let keyed = |t: &str, body: &serde_json::Value| {
        s.request(reqwest::Method::POST, "/api/events", t).header("Idempotency-Key", "notify-u1-0001").json(body)
    };
    let (status, first) = common::send(keyed(&service, &private)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["events"][0]["id"].clone();

    let same_content =
        json!({ "stream": "inbox/u1", "type": "notification:private", "data": { "secret": "s3cret-for-u1" } });
    let attempts = [
        keyed(&u2, &event("inbox/u2", "note:added", json!({}))),
        keyed(&u2, &same_content),
        s.request(reqwest::Method::POST, "/api/events", &u2)
            .json(&json!({ "id": id, "stream": "x", "type": "a:b", "data": {} })),
    ];
    for attempt in attempts {
        let (status, body) = common::send(attempt).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        assert_eq!(body["error"]["message"], "id already used");
        assert!(!body.to_string().contains("s3cret"), "the answer shows the stored event: {body}");
    }
    // The service's own identical retry is idempotent.
    let (status, again) = common::send(keyed(&service, &private)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first);
    // A different body from the service itself is refused too.
    let (status, body) = common::send(keyed(
        &service,
        &json!({ "stream": "inbox/u1", "type": "notification:private",
        "data": { "secret": "other" }, "audience": { "users": ["u1"] } }),
    ))
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // An event everyone may see is returned to anyone repeating it exactly.
    let public = json!({ "id": uuid::Uuid::new_v4(), "stream": "news", "type": "news:posted", "data": { "n": 1 } });
    let (status, stored) = s.append(&token("acme", "u3", &["publisher"]), public.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, retried) = s.append(&u2, public).await;
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    assert_eq!(retried, stored, "the stored event, with its own actor");
    let audit = token("acme", "a", &["auditor"]);
    s.settle().await;
    let (_, all) = s.get(&audit, "/api/audit").await;
    assert_eq!(all["events"].as_array().unwrap().len(), 2, "nothing stored twice: {all}");
});

both_stores!(reserved_types_are_refused, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    for reserved in [
        "feed:reset",
        "auth:expired",
        "presence:joined",
        "request:x",
        "event:append",
        "user:online",
        "user:offline",
        "user:typing",
        "reconnected",
        "connect",
        "disconnect",
        "connect_error",
        "error",
    ] {
        let (status, body) = s.append(&t, event("s", reserved, json!({}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reserved}: {body}");
        assert_eq!(body["error"]["code"], "invalid");
        assert!(body["error"]["message"].as_str().unwrap().contains("reserved"), "{body}");
    }
    let (status, body) = s.append(&t, event("s", "user:renamed", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
});

both_stores!(nul_characters_are_invalid_and_touch_no_other_request, |s: common::TestServer| async move {
    let service = token("acme", "svc", &["service"]);
    let bodies = [
        event("s", "a:b", json!({ "x": "a\0b" })),
        event("s", "a:b", json!({ "k\0": 1 })),
        json!({ "stream": "s", "type": "a:b", "data": {}, "metadata": { "m": ["\0"] } }),
        json!({ "stream": "s", "type": "a:b", "data": {}, "audience": { "users": ["u\0"] } }),
        json!({ "stream": "s", "type": "a:b", "data": {}, "actor": { "userId": "u\0", "username": null } }),
        json!({ "stream": "s", "type": "a:b", "data": {}, "actor": { "userId": "u", "username": "\0" } }),
    ];
    // Sent together with good appends, so they share group commits.
    let mut tasks = Vec::new();
    for (i, bad) in bodies.into_iter().enumerate() {
        for body in [bad, event(&format!("good-{i}"), "a:b", json!({}))] {
            let (s, t) = (s.clone(), service.clone());
            tasks.push(tokio::spawn(async move { s.append(&t, body).await }));
        }
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, body) = task.await.unwrap();
        let expected = if i % 2 == 0 { StatusCode::BAD_REQUEST } else { StatusCode::CREATED };
        assert_eq!(status, expected, "{body}");
        if i % 2 == 0 {
            assert_eq!(body["error"]["code"], "invalid", "{body}");
        }
    }
    // A lone surrogate is not Unicode at all: refused by the JSON parser.
    let lone = r#"{"stream": "s", "type": "a:b", "data": {"x": "\ud800"}}"#;
    let (status, body) = common::send(
        s.request(reqwest::Method::POST, "/api/events", &service).header("content-type", "application/json").body(lone),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    let reader = token("acme", "r", &["auditor"]);
    for path in ["/api/events?consumer=c%00", "/api/audit?actor=u%00"] {
        let (status, body) = s.get(&reader, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid")),
            "{path}: {body}"
        );
    }
    let (status, body) = common::send(
        s.request(reqwest::Method::POST, "/api/events/ack", &reader).json(&json!({ "consumer": "\0", "cursor": "0" })),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    for claims in [json!({ "sub": "u\0", "tenant_id": "acme" }), json!({ "sub": "u", "tenant_id": "ac\0me" })] {
        let (status, body) = s.get(&common::token_with(claims), "/api/events?consumer=c").await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    }
});

both_stores!(a_large_request_and_small_ones_at_once_all_commit, |s: common::TestServer| async move {
    // A large request commits on its own, beside the small ones' group commits.
    let t = token("acme", "u1", &["publisher"]);
    let large: Vec<_> = (0..200).map(|i| event("big", "x:chunk", json!({ "i": i }))).collect();
    let mut tasks = vec![{
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move { s.append(&t, json!({ "events": large })).await })
    }];
    for i in 0..20 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move { s.append(&t, event(&format!("small-{i}"), "x:y", json!({}))).await }));
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, stream) = s.get(&t, "/api/streams/big?limit=1000").await;
    let versions: Vec<i64> =
        stream["events"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=200).collect::<Vec<i64>>());
    assert_eq!(s.read_all(&t, "0", 1000).await.len(), 220);
});
