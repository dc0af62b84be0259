//! Polling, long-polling, SSE, consumer cursors and retention resets, on both stores.

use crate::common;

use std::time::Duration;

use common::{event, token};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Appends `a:b` events with data `{ i }` for each `i` to stream `s`, and
/// waits until they are readable.
async fn append_numbered(s: &common::TestServer, t: &str, numbers: std::ops::Range<i64>) {
    for i in numbers {
        s.append(t, event("s", "a:b", json!({ "i": i }))).await;
    }
    s.settle().await;
}

both_stores!(current_thread, long_poll_returns_when_an_event_arrives, |s: common::TestServer| async move {
    let metrics = common::OwnMetrics::install();
    let t = token("acme", "u1", &["publisher"]);
    let waiter = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move { s.get(&t, "/api/events?after=0&wait=20").await })
    };
    // The event must arrive while the poller waits, not before its first read.
    common::wait_until("the long-poll waits", async || metrics.value(LONG_POLLS_WAITING) == 1.0).await;
    s.append(&t, event("inv-1", "invoice:paid", json!({}))).await;
    let (status, page) =
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken, not timed out").unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    // With nothing new, wait=1 returns empty after about a second, cursor unchanged.
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let (_, empty) = s.get(&t, &format!("/api/events?after={cursor}&wait=1")).await;
    assert_eq!((empty["events"].clone(), empty["cursor"].as_str()), (json!([]), Some(cursor.as_str())));
});

both_stores!(types_filter_polling, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    for ty in ["invoice:paid", "invoice:sent", "expense:approved", "expense:rejected"] {
        s.append(&t, event("s", ty, json!({}))).await;
    }
    s.settle().await;
    let (_, page) = s.get(&t, "/api/events?types=invoice:*,expense:approved").await;
    let types: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["invoice:paid", "invoice:sent", "expense:approved"]);
});

both_stores!(a_consumer_resumes_from_its_acknowledged_cursor, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    // First use registers the consumer at the head: its queue starts now.
    let (_, first) = s.get(&t, "/api/events?consumer=laptop").await;
    assert_eq!(first["events"], json!([]));
    append_numbered(&s, &t, 0..4).await;
    let (_, page) = s.get(&t, "/api/events?consumer=laptop&limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let ack = json!({ "consumer": "laptop", "cursor": page["cursor"] });
    let (status, _) = common::send(s.request(Method::POST, "/api/events/ack", &t).json(&ack)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, rest) = s.get(&t, "/api/events?consumer=laptop").await;
    let is: Vec<i64> = rest["events"].as_array().unwrap().iter().map(|e| e["data"]["i"].as_i64().unwrap()).collect();
    assert_eq!(is, [2, 3]);
    // Consumers are per user: another user's "laptop" is another queue.
    let (_, other) = s.get(&token("acme", "u2", &[]), "/api/events?consumer=laptop").await;
    assert_eq!(other["events"], json!([]));
});

both_stores!(sse_streams_and_resumes_from_last_event_id, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    append_numbered(&s, &t, 0..3).await;
    let all = s.read_all(&t, "0", 10).await;
    let first = all[0]["cursor"].as_str().unwrap();
    let url = format!("{}/api/events/stream?access_token={t}", s.base);
    let response = s.http.get(&url).header("Last-Event-ID", first).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut received: Vec<Value> = Vec::new();
    let appended_live = async {
        while received.len() < 3 {
            let chunk =
                tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("SSE data").unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                let data = frame.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
                let id = frame.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim);
                if let (Some(data), Some(id)) = (data, id) {
                    let envelope: Value = serde_json::from_str(data).unwrap();
                    assert_eq!(envelope["cursor"].as_str(), Some(id), "id: is the cursor");
                    assert!(frame.contains("event: a:b") || frame.contains("event:a:b"), "{frame}");
                    received.push(envelope);
                }
            }
            if received.len() == 2 {
                s.append(&t, event("s", "a:b", json!({ "i": 3 }))).await;
            }
        }
    };
    appended_live.await;
    let is: Vec<i64> = received.iter().map(|e| e["data"]["i"].as_i64().unwrap()).collect();
    assert_eq!(is, [1, 2, 3], "resumed after Last-Event-ID, then live");
});

/// Three events that retention can remove. On PostgreSQL it drops whole
/// partitions: these are in the first one, which ends when the database was
/// created.
async fn three_expired(s: &common::TestServer, t: &str) {
    if s.is_postgres() {
        common::partitions::insert_dated(&s.pool().await, "old", 3, chrono::Duration::days(1)).await;
        s.settle().await;
    } else {
        append_numbered(s, t, 0..3).await;
    }
}

both_stores!(a_cursor_behind_retention_is_reset_not_skipped, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    three_expired(&s, &t).await;
    let pruned = s.store.prune(chrono::Utc::now() + chrono::Duration::seconds(5)).await.unwrap();
    assert_eq!(pruned, 3);
    let (status, page) = s.get(&t, "/api/events?after=0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["reset"]["reason"], "expired");
    let head = page["reset"]["cursor"].as_str().unwrap().to_owned();
    assert_eq!(page["cursor"].as_str(), Some(head.as_str()));
    // From the reset cursor the reader goes on normally.
    s.append(&t, event("s", "a:b", json!({ "i": 3 }))).await;
    let rest = s.read_all(&t, &head, 10).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["data"]["i"], 3);
});

// An SSE reset carries the head as its `id`, so an `EventSource` that
// reconnects before the next event resumes from there, not from the expired
// cursor (which would reset it again).
both_stores!(an_sse_reset_moves_last_event_id_to_the_head, |s: common::TestServer| async move {
    let t = token("acme", "u1", &["publisher"]);
    three_expired(&s, &t).await;
    s.store.prune(chrono::Utc::now() + chrono::Duration::seconds(5)).await.unwrap();
    let (_, page) = s.get(&t, "/api/events?after=0").await;
    let head = page["reset"]["cursor"].as_str().expect("a reset").to_owned();
    let url = format!("{}/api/events/stream?access_token={t}", s.base);
    let response = s.http.get(&url).header("Last-Event-ID", "0").send().await.unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("SSE data").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let frame = &text[..text.find("\n\n").unwrap()];
    let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    assert_eq!(field("event:"), Some("feed:reset"), "{frame}");
    assert_eq!(field("id:"), Some(head.as_str()), "{frame}");
});

/// Live delivery writes each socket once per tailer read: with Nagle's
/// algorithm on, such a write would wait for the client to acknowledge the
/// previous one (up to a delayed-ACK timeout). Every accepted connection has
/// TCP_NODELAY; this finds the server's end of one in this process's fds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_have_tcp_nodelay() {
    use std::os::fd::BorrowedFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = common::TestServer::sqlite().await;
    let mut client = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://")).await.unwrap();
    client.write_all(b"GET /health HTTP/1.1\r\nHost: eventfeed\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 12];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");

    let ours = client.local_addr().unwrap();
    let server_end: Vec<bool> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| {
            // SAFETY: only getpeername and getsockopt run on the borrowed fd,
            // and nothing closes it here. If another task closes it meanwhile,
            // they fail (EBADF) or see whatever reused the number; only the
            // server's end of `client` has `ours` as its peer.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            let peer = socket.peer_addr().ok()?.as_socket()?;
            (peer == ours).then(|| socket.tcp_nodelay().unwrap())
        })
        .collect();
    assert_eq!(server_end, [true]);
    drop(client);
    s.stop().await;
}

const LONG_POLLS_WAITING: &str = "eventfeed_long_polls_waiting";
const LONG_POLL_WAKEUPS: &str = "eventfeed_long_poll_wakeups_total";

both_stores!(current_thread, long_polls_wake_only_for_their_own_tenant, |s: common::TestServer| async move {
    let metrics = common::OwnMetrics::install();
    let quiet = token("quiet", "u1", &["publisher"]);
    let busy = token("busy", "u1", &["publisher"]);
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let (s, t) = (s.clone(), quiet.clone());
            tokio::spawn(async move { s.get(&t, "/api/events?after=0&wait=30").await })
        })
        .collect();
    common::wait_until("the 10 long-polls wait", async || metrics.value(LONG_POLLS_WAITING) == 10.0).await;
    let woken = metrics.value(LONG_POLL_WAKEUPS);
    for i in 0..20 {
        s.append(&busy, event("s", "doc:edited", json!({ "i": i }))).await;
    }
    let (_, last) = s.append(&busy, event("s", "doc:edited", json!({}))).await;
    let last = common::cursor(&last["events"][0]);
    s.settle().await;
    // Delivered, the busy tenant's events have rung their bells: a waiter
    // woken by every event has been counted (but maybe for the last page).
    common::wait_until("the tailer delivered the busy tenant's events", async || s.feed.head() >= last).await;
    let extra = metrics.value(LONG_POLL_WAKEUPS) - woken;
    // The metrics are this test's alone. Woken by every event, the 10
    // waiters here would add about 10 per append, some 200.
    assert_eq!(extra, 0.0, "wake-ups of the quiet tenant's long-polls by another tenant's events");
    s.append(&quiet, event("s", "doc:edited", json!({}))).await;
    for w in waiters {
        let (status, page) = tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap();
        assert_eq!((status, page["events"].as_array().unwrap().len()), (StatusCode::OK, 1));
    }
});

/// A connection that never finishes its headers, or sits idle after a
/// request, is closed after the header timeout: trickling clients cannot hold
/// the server's file descriptors. Too many headers get 431 with the error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_header_floods_get_431() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = common::TestServer::sqlite().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let limit = eventfeed::serve::HEADER_TIMEOUT + Duration::from_secs(10);
    let closed_within = |mut conn: tokio::net::TcpStream| async move {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(limit, conn.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the server kept the connection open for {limit:?}");
        rest
    };
    let mut trickle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    trickle.write_all(b"GET /health HTTP/1.1\r\nHost: eventfeed\r\nX-Slow: ").await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: eventfeed\r\n\r\n").await.unwrap();
    let (trickled, idled) = tokio::join!(closed_within(trickle), closed_within(idle));
    assert!(!String::from_utf8_lossy(&trickled).contains("200 OK"));
    assert!(String::from_utf8_lossy(&idled).starts_with("HTTP/1.1 200"), "the request before the idle time was served");

    let mut flood = s.http.get(format!("{}/health", s.base));
    for i in 0..150 {
        flood = flood.header(format!("x-h{i}"), "v");
    }
    let (status, body) = common::send(flood).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_large", "{body}");
    s.stop().await;
}
