//! A minimal Socket.IO v5 client over Engine.IO v4's WebSocket transport:
//! just enough to connect with `auth`, answer pings, read event packets and
//! make one acknowledged call. Written in Rust so that one process can hold
//! 10,000 sockets and parse a million messages a second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connected socket on the namespace `/`.
pub struct Socket {
    ws: Ws,
}

/// One event packet, `42["name",arg…]`, as received.
pub struct Packet(Utf8Bytes);

impl Packet {
    /// The JSON array after the packet type.
    pub fn array(&self) -> &str {
        &self.0.as_str()[2..]
    }

    /// The event's name and its first argument.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> anyhow::Result<(&'a str, T)> {
        let (name, arg): (&str, T) = serde_json::from_str(self.array())?;
        Ok((name, arg))
    }
}

impl Socket {
    /// Opens the WebSocket, reads the Engine.IO open packet, sends the
    /// Socket.IO CONNECT with `auth`, and waits for the server's CONNECT.
    pub async fn connect(addr: SocketAddr, auth: &Value) -> anyhow::Result<Socket> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        // tungstenite zeroes its whole read buffer (128 KiB by default) on
        // every read: with a million small messages a second that is most
        // of the client's CPU.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (mut ws, _) =
            tokio::time::timeout(Duration::from_secs(30), connect).await.context("WebSocket handshake timed out")??;
        let open = next_text(&mut ws).await?.context("closed before the open packet")?;
        if !open.starts_with('0') {
            bail!("expected the Engine.IO open packet, got {:?}", truncate(&open));
        }
        ws.send(Message::text(format!("40{auth}"))).await?;
        loop {
            let reply = next_text(&mut ws).await?.context("closed before CONNECT")?;
            match reply.get(..2) {
                Some("40") => return Ok(Socket { ws }),
                Some("44") => bail!("connect_error: {}", &reply[2..]),
                _ if reply.as_str() == "2" => ws.send(Message::text("3")).await?,
                _ => bail!("unexpected packet before CONNECT: {:?}", truncate(&reply)),
            }
        }
    }

    /// The next event packet, answering pings on the way; `None` when the
    /// server disconnects.
    pub async fn next(&mut self) -> anyhow::Result<Option<Packet>> {
        while let Some(text) = next_text(&mut self.ws).await? {
            match text.as_bytes() {
                [b'4', b'2', ..] => return Ok(Some(Packet(text))),
                b"2" => self.ws.send(Message::text("3")).await?,
                [b'4', b'1', ..] => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Emits `event` with no argument and acknowledgement id `id`, and
    /// returns the acknowledgement's first argument. Events received
    /// meanwhile are dropped.
    pub async fn call(&mut self, event: &str, id: u32) -> anyhow::Result<Value> {
        self.ws.send(Message::text(format!("42{id}{}", serde_json::json!([event])))).await?;
        let prefix = format!("43{id}");
        while let Some(text) = next_text(&mut self.ws).await? {
            if let Some(rest) = text.strip_prefix(prefix.as_str()) {
                let mut args: Vec<Value> = serde_json::from_str(rest)?;
                return Ok(if args.is_empty() { Value::Null } else { args.swap_remove(0) });
            }
            if text.as_str() == "2" {
                self.ws.send(Message::text("3")).await?;
            }
        }
        bail!("disconnected before the acknowledgement of {event}")
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Connects one socket per `auth`, `concurrency` handshakes at a time.
pub async fn connect_many(addr: SocketAddr, auths: Vec<Value>, concurrency: usize) -> anyhow::Result<Vec<Socket>> {
    use futures::TryStreamExt as _;
    futures::stream::iter(auths)
        .map(|auth| async move { Socket::connect(addr, &auth).await })
        .buffered(concurrency)
        .try_collect()
        .await
}

/// Waits until `counter` (packets received) has not moved for a second,
/// or `limit`; returns its value.
pub async fn until_quiet(counter: &AtomicU64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut last = counter.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
    last
}

/// The next text frame; binary, ping and pong frames are skipped.
async fn next_text(ws: &mut Ws) -> anyhow::Result<Option<Utf8Bytes>> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => return Ok(Some(text)),
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

fn truncate(s: &str) -> &str {
    s.get(..200).unwrap_or(s)
}

/// The part of an event envelope the benchmarks look at. `data.seq` is
/// the benchmark's own sequence number.
#[derive(Deserialize)]
pub struct Envelope<'a> {
    pub cursor: &'a str,
    pub timestamp: &'a str,
    pub data: Seq,
}

#[derive(Deserialize)]
pub struct Seq {
    pub seq: u64,
}

/// The same three fields as [`Envelope`] of an event named `name`, found
/// where the server's field order puts them (`id` then `cursor` first,
/// `timestamp` last, `data` between), else by parsing. The client scans a
/// million envelopes a second on the machine that runs the server, and must
/// stay out of its way. `None` for any other packet.
pub fn scan<'a>(packet: &'a Packet, name: &str) -> Option<(&'a str, &'a str, u64)> {
    let array = packet.array();
    let rest = array.strip_prefix("[\"")?.strip_prefix(name)?.strip_prefix("\",")?;
    fast_scan(rest).or_else(|| {
        let (_, e): (&str, Envelope) = packet.parse().ok()?;
        Some((e.cursor, e.timestamp, e.data.seq))
    })
}

fn fast_scan(envelope: &str) -> Option<(&str, &str, u64)> {
    const ID: usize = r#"{"id":""#.len() + 36;
    let after_id = envelope.get(ID..)?.strip_prefix(r#"","cursor":""#)?;
    let cursor = &after_id[..after_id.find('"')?];
    let head = envelope.strip_suffix(r#""}]"#)?;
    let (head, timestamp) = head.split_at_checked(head.len().checked_sub(24)?)?;
    head.strip_suffix(r#""timestamp":""#)?;
    const SEQ: &str = r#""data":{"seq":"#;
    let data = &after_id[after_id.find(SEQ)? + SEQ.len()..];
    let end = data.find(|c: char| !c.is_ascii_digit())?;
    Some((cursor, timestamp, data[..end].parse().ok()?))
}

/// The cursor's `(tx_id, position)`, for checking order. Cursors are opaque to
/// clients; the benchmark peeks inside (src/cursor.rs) only to verify order.
pub fn cursor_key(cursor: &str) -> Option<(u64, u64)> {
    let (tx, pos) = cursor.split_once('-')?;
    Some((tx.parse().ok()?, pos.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_what_serde_parses() {
        let text = r#"42["bench:tick",{"id":"6f1c2a7e-3b5d-4f61-9a0e-2c9d7b1e4a10","cursor":"812-9","tenantId":"bench","stream":"ticker-3","version":7,"type":"bench:tick","data":{"seq":1234},"actor":{"userId":"ticker","username":"ticker"},"audience":null,"metadata":null,"timestamp":"2026-11-22T12:00:00.123Z"}]"#;
        let packet = Packet(Utf8Bytes::from(text));
        assert_eq!(scan(&packet, "bench:tick"), Some(("812-9", "2026-11-22T12:00:00.123Z", 1234)));
        assert!(fast_scan(&text[16..]).is_some(), "the server's field order takes the fast path");
        let (name, envelope): (&str, Envelope) = packet.parse().unwrap();
        assert_eq!(
            (name, envelope.cursor, envelope.timestamp, envelope.data.seq),
            ("bench:tick", "812-9", "2026-11-22T12:00:00.123Z", 1234)
        );
        assert_eq!(scan(&packet, "bench:other"), None);
        // Another field order still works, by parsing.
        let reordered = r#"42["bench:tick",{"timestamp":"2026-11-22T12:00:00.123Z","data":{"seq":5},"cursor":"1-2"}]"#;
        assert_eq!(
            scan(&Packet(Utf8Bytes::from(reordered)), "bench:tick"),
            Some(("1-2", "2026-11-22T12:00:00.123Z", 5))
        );
        assert_eq!(scan(&Packet(Utf8Bytes::from(r#"42["user:online",{"userId":"u-1"}]"#)), "bench:tick"), None);
        assert_eq!(cursor_key("812-9"), Some((812, 9)));
    }
}
