//! A minimal Socket.IO v5 client over Engine.IO v4's WebSocket transport:
//! just enough to connect with `auth`, answer pings, read event packets and
//! make one acknowledged call. Written in Rust so that one process can hold
//! 10,000 sockets and parse a million messages a second.
//!
//! The WebSocket layer (RFC 6455) is written here too, for the one server
//! it talks to: the fan-out client shares the machine with the server, and a
//! general WebSocket library (zeroing its read buffer, a task wake and an
//! allocation per frame) cost more CPU than the parsing it serves.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::{Buf as _, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::stats::now_micros;

/// One connected socket on the namespace `/`.
pub struct Socket {
    tcp: TcpStream,
    /// Bytes read and not yet parsed into frames.
    unread: BytesMut,
    /// When the last read returned, in microseconds since the epoch.
    read_at: u64,
}

/// One event packet, `42["name",arg…]`, as received.
pub struct Packet {
    pub(crate) text: Bytes,
    /// When the read that completed it returned, in microseconds since the
    /// epoch: one clock read per read, not per packet.
    pub received_at: u64,
}

impl Packet {
    /// The JSON array after the packet type. Text that is not UTF-8 reads as
    /// empty, which no benchmark accepts as an event, so it counts as lost.
    pub fn array(&self) -> &str {
        std::str::from_utf8(&self.text[2..]).unwrap_or_default()
    }

    /// The event's name and its first argument.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> anyhow::Result<(&'a str, T)> {
        let (name, arg): (&str, T) = serde_json::from_str(self.array())?;
        Ok((name, arg))
    }
}

/// What [`Socket::receive`] read.
pub enum Incoming {
    Event(Packet),
    /// The server disconnected the socket (`41`): a client does not reconnect.
    Disconnected,
    /// The transport closed: a client reconnects.
    Closed,
}

/// WebSocket opcodes.
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
/// The most the server sends in one frame; anything larger is a protocol error here.
const MAX_FRAME: usize = 16 << 20;

impl Socket {
    /// Opens the WebSocket, reads the Engine.IO open packet, sends the
    /// Socket.IO CONNECT with `auth`, and waits for the server's CONNECT.
    pub async fn connect(addr: SocketAddr, auth: &Value) -> anyhow::Result<Socket> {
        let handshake = async {
            let mut socket = Socket::upgrade(addr).await?;
            let open = socket.next_text().await?.context("closed before the open packet")?;
            if !open.starts_with(b"0") {
                bail!("expected the Engine.IO open packet, got {:?}", truncate(&open));
            }
            socket.send_text(format!("40{auth}").as_bytes()).await?;
            loop {
                let reply = socket.next_text().await?.context("closed before CONNECT")?;
                match reply.get(..2) {
                    Some(b"40") => return Ok(socket),
                    Some(b"44") => bail!("connect_error: {}", String::from_utf8_lossy(&reply[2..])),
                    _ if reply == "2" => socket.send_text(b"3").await?,
                    _ => bail!("unexpected packet before CONNECT: {:?}", truncate(&reply)),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), handshake).await.context("Socket.IO handshake timed out")?
    }

    /// The HTTP/1.1 upgrade to a WebSocket.
    async fn upgrade(addr: SocketAddr) -> anyhow::Result<Socket> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // Any 16 bytes in base64: 22 hex digits are base64 digits too.
        let key = format!("{}==", &uuid::Uuid::new_v4().simple().to_string()[..22]);
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut unread = BytesMut::with_capacity(16 * 1024);
        let end = loop {
            if let Some(at) = unread.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            ensure!(unread.len() < 16 * 1024, "the upgrade response has no end");
            ensure!(tcp.read_buf(&mut unread).await? > 0, "closed during the upgrade");
        };
        let head = unread.split_to(end);
        ensure!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused: {:?}", truncate(&head));
        Ok(Socket { tcp, unread, read_at: now_micros() })
    }

    /// The next event packet, answering pings on the way; `None` when the
    /// server disconnects.
    pub async fn next(&mut self) -> anyhow::Result<Option<Packet>> {
        match self.receive().await? {
            Incoming::Event(packet) => Ok(Some(packet)),
            Incoming::Disconnected | Incoming::Closed => Ok(None),
        }
    }

    /// The next event packet, or how the socket ended: a Socket.IO
    /// disconnect, or the transport's close (an Engine.IO close `1`, a
    /// WebSocket close, the connection's end), after which a client
    /// reconnects.
    pub async fn receive(&mut self) -> anyhow::Result<Incoming> {
        while let Some(text) = self.next_text().await? {
            match &text[..] {
                [b'4', b'2', ..] => return Ok(Incoming::Event(Packet { text, received_at: self.read_at })),
                b"2" => self.send_text(b"3").await?,
                [b'4', b'1', ..] => return Ok(Incoming::Disconnected),
                [b'1', ..] => return Ok(Incoming::Closed),
                _ => {}
            }
        }
        Ok(Incoming::Closed)
    }

    /// Emits `event` with no argument and acknowledgement id `id`, and
    /// returns the acknowledgement's first argument. Events received
    /// meanwhile are dropped.
    pub async fn call(&mut self, event: &str, id: u32) -> anyhow::Result<Value> {
        self.send_text(format!("42{id}{}", serde_json::json!([event])).as_bytes()).await?;
        let prefix = format!("43{id}");
        while let Some(text) = self.next_text().await? {
            if let Some(rest) = text.strip_prefix(prefix.as_bytes()) {
                let mut args: Vec<Value> = serde_json::from_slice(rest)?;
                return Ok(if args.is_empty() { Value::Null } else { args.swap_remove(0) });
            }
            if text == "2" {
                self.send_text(b"3").await?;
            }
            if text.starts_with(b"41") {
                break;
            }
        }
        bail!("disconnected before the acknowledgement of {event}")
    }

    /// Sends a close frame; the server closes the connection.
    pub async fn close(mut self) {
        let _ = self.send_frame(CLOSE, &[]).await;
    }

    /// The next text frame's payload; pings are answered, other frames
    /// skipped; `None` at a close frame or the end of the stream.
    async fn next_text(&mut self) -> anyhow::Result<Option<Bytes>> {
        loop {
            let Some((opcode, payload)) = self.next_frame().await? else { return Ok(None) };
            match opcode {
                TEXT => return Ok(Some(payload)),
                CLOSE => return Ok(None),
                PING => self.send_frame(0xA, &payload).await?,
                _ => {}
            }
        }
    }

    /// The next whole frame: its opcode and payload, split off the read buffer without copying.
    async fn next_frame(&mut self) -> anyhow::Result<Option<(u8, Bytes)>> {
        loop {
            if let Some(frame) = split_frame(&mut self.unread)? {
                return Ok(Some(frame));
            }
            if self.unread.capacity() - self.unread.len() < 4096 {
                self.unread.reserve(16 * 1024);
            }
            if self.tcp.read_buf(&mut self.unread).await? == 0 {
                return Ok(None);
            }
            self.read_at = now_micros();
        }
    }

    async fn send_text(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        self.send_frame(TEXT, payload).await
    }

    /// One final frame, masked as a client's must be.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let mask: [u8; 4] = rand_mask();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.tcp.write_all(&frame).await?;
        Ok(())
    }
}

/// Splits one whole server frame off `buf`, if it holds one.
fn split_frame(buf: &mut BytesMut) -> anyhow::Result<Option<(u8, Bytes)>> {
    let [first, second, ..] = buf[..] else { return Ok(None) };
    ensure!(first & 0x80 != 0, "a fragmented frame; the server sends whole ones");
    ensure!(second & 0x80 == 0, "a masked frame from the server");
    let (header, len) = match second & 0x7f {
        126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
        127 if buf.len() >= 10 => (10, usize::try_from(u64::from_be_bytes(buf[2..10].try_into()?))?),
        126 | 127 => return Ok(None),
        n => (2, usize::from(n)),
    };
    ensure!(len <= MAX_FRAME, "a frame of {len} bytes");
    if buf.len() < header + len {
        buf.reserve(header + len - buf.len());
        return Ok(None);
    }
    buf.advance(header);
    Ok(Some((first & 0x0f, buf.split_to(len).freeze())))
}

fn rand_mask() -> [u8; 4] {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// Connects one socket per `auth`, `concurrency` handshakes at a time.
pub async fn connect_many(addr: SocketAddr, auths: Vec<Value>, concurrency: usize) -> anyhow::Result<Vec<Socket>> {
    use futures::{StreamExt as _, TryStreamExt as _};
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

fn truncate(s: &[u8]) -> String {
    String::from_utf8_lossy(s.get(..200).unwrap_or(s)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_whole_frames_only() {
        let long = "x".repeat(300);
        let mut wire = vec![0x81, 3];
        wire.extend_from_slice(b"42[");
        wire.extend_from_slice(&[0x81, 126, 1, 44]);
        wire.extend_from_slice(long.as_bytes());
        wire.extend_from_slice(&[0x88, 0]);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        // Byte by byte: a frame appears only once all of it has arrived.
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = split_frame(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, [(TEXT, Bytes::from_static(b"42[")), (TEXT, Bytes::from(long)), (CLOSE, Bytes::new())]);
        assert!(buf.is_empty());
        assert!(split_frame(&mut BytesMut::from(&[0x01, 0][..])).is_err(), "fragments are refused");
        assert!(split_frame(&mut BytesMut::from(&[0x81, 0x80][..])).is_err(), "masked frames are refused");
    }
}
