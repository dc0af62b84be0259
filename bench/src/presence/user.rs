//! One user of the benchmark: one socket through the balancer that connects
//! at its moment, reconnects as socket.io-client does by default, and
//! counts what presence tells it in each phase.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::sio::{Incoming, Packet, Socket};
use crate::stats::now_micros;

/// The phases packets are counted in.
pub const JOIN: usize = 0;
pub const RESTART: usize = 1;

/// socket.io-client's reconnection delays: `reconnectionDelay` doubled
/// after each failed attempt up to `reconnectionDelayMax` (5 s), each
/// randomized by ±50 % (`randomizationFactor`) before the cap; the first
/// attempt waits too.
pub struct Backoff {
    base: Duration,
    attempts: u32,
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(5);

    pub fn new(base: Duration) -> Backoff {
        Backoff { base, attempts: 0 }
    }

    pub fn next(&mut self) -> Duration {
        let plain = self.base.saturating_mul(1 << self.attempts.min(16));
        self.attempts += 1;
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let random = f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) / f64::from(u32::MAX);
        let deviation = plain.mul_f64(random * 0.5);
        let jittered = if bytes[4] & 1 == 0 { plain - deviation } else { plain + deviation };
        jittered.min(Backoff::MAX)
    }

    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// What every user updates as it goes, for the benchmark to wait on.
#[derive(Default)]
pub struct Live {
    pub phase: AtomicUsize,
    /// Presence packets received, per phase.
    pub packets: [AtomicU64; 2],
    /// When the last of them came, per phase (µs since the epoch).
    pub last_packet_at: [AtomicU64; 2],
    /// Sockets connected now.
    pub connected: AtomicUsize,
    /// Users whose first connect was accepted, and when the last was.
    pub accepted: AtomicUsize,
    pub last_accept_at: AtomicU64,
    /// Transport closes, when the last was, and when the last socket was back after one.
    pub closes: AtomicU64,
    pub last_close_at: AtomicU64,
    pub last_back_at: AtomicU64,
}

/// What one user saw.
#[derive(Default)]
pub struct Seen {
    /// From its moment to the first accepted connect, if there was one.
    pub connect_latency: Option<Duration>,
    pub failed_attempts: u64,
    pub packets: [u64; 2],
    pub by_name: [BTreeMap<String, u64>; 2],
    /// Users announced gone (`user:offline`, a diff's `leaves`), per phase.
    pub offline: [BTreeSet<String>; 2],
    /// The lowest and highest `online` in the diffs it got, per phase.
    pub online: [Option<(u64, u64)>; 2],
    /// From each transport close to the socket being back.
    pub back_after: Vec<Duration>,
    /// The server disconnected it (`41`): socket.io-client would not reconnect.
    pub disconnected: bool,
    /// Whether it was connected when the benchmark ended.
    pub connected_at_end: bool,
}

/// How the benchmark reaches the cluster, and when this user connects.
pub struct User {
    pub balancer: SocketAddr,
    pub auth: Value,
    pub at: Instant,
    pub delay: Duration,
}

/// Runs one user until `stop`.
pub async fn run(user: User, live: Arc<Live>, mut stop: watch::Receiver<bool>) -> Seen {
    let mut seen = Seen::default();
    let mut backoff = Backoff::new(user.delay);
    let mut closed_at: Option<Instant> = None;
    tokio::time::sleep_until(user.at).await;
    loop {
        let socket = tokio::select! {
            s = Socket::connect(user.balancer, &user.auth) => s,
            _ = stop.changed() => return seen,
        };
        let Ok(mut socket) = socket else {
            seen.failed_attempts += 1;
            if !wait(backoff.next(), &mut stop).await {
                return seen;
            }
            continue;
        };
        backoff.reset();
        accepted(&user, closed_at.take(), &live, &mut seen);
        let ended = hold(&mut socket, &live, &mut seen, &mut stop).await;
        live.connected.fetch_sub(1, Ordering::Relaxed);
        match ended {
            Ended::Stop => {
                seen.connected_at_end = true;
                socket.close().await;
                return seen;
            }
            Ended::Disconnected => {
                seen.disconnected = true;
                return seen;
            }
            Ended::Closed => {
                closed_at = Some(Instant::now());
                live.closes.fetch_add(1, Ordering::Relaxed);
                live.last_close_at.fetch_max(now_micros(), Ordering::Relaxed);
                if !wait(backoff.next(), &mut stop).await {
                    return seen;
                }
            }
        }
    }
}

/// Counts an accepted connect: the first, or one back after a close at `closed_at`.
fn accepted(user: &User, closed_at: Option<Instant>, live: &Live, seen: &mut Seen) {
    live.connected.fetch_add(1, Ordering::Relaxed);
    let now = now_micros();
    match closed_at {
        None => {
            seen.connect_latency = Some(user.at.elapsed());
            live.accepted.fetch_add(1, Ordering::Relaxed);
            live.last_accept_at.fetch_max(now, Ordering::Relaxed);
        }
        Some(at) => {
            seen.back_after.push(at.elapsed());
            live.last_back_at.fetch_max(now, Ordering::Relaxed);
        }
    }
}

/// Sleeps `delay`; `false` if told to stop meanwhile.
async fn wait(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.changed() => false,
    }
}

enum Ended {
    Stop,
    Disconnected,
    Closed,
}

/// Reads presence until the socket ends or the benchmark stops.
async fn hold(socket: &mut Socket, live: &Live, seen: &mut Seen, stop: &mut watch::Receiver<bool>) -> Ended {
    loop {
        tokio::select! {
            incoming = socket.receive() => match incoming {
                Ok(Incoming::Event(packet)) => count(&packet, live, seen),
                Ok(Incoming::Disconnected) => return Ended::Disconnected,
                Ok(Incoming::Closed) | Err(_) => return Ended::Closed,
            },
            _ = stop.changed() => return Ended::Stop,
        }
    }
}

/// Counts one packet: nothing but presence is sent in this benchmark, so
/// every event packet counts, by name.
fn count(packet: &Packet, live: &Live, seen: &mut Seen) {
    let phase = live.phase.load(Ordering::Relaxed);
    seen.packets[phase] += 1;
    live.packets[phase].fetch_add(1, Ordering::Relaxed);
    live.last_packet_at[phase].fetch_max(packet.received_at, Ordering::Relaxed);
    let Ok((name, body)) = packet.parse::<Value>() else {
        *seen.by_name[phase].entry("(unreadable)".into()).or_default() += 1;
        return;
    };
    *seen.by_name[phase].entry(name.to_owned()).or_default() += 1;
    match name {
        "user:offline" => {
            if let Some(user) = body["userId"].as_str() {
                seen.offline[phase].insert(user.to_owned());
            }
        }
        "presence:diff" => {
            let leaves = body["leaves"].as_array().into_iter().flatten();
            seen.offline[phase].extend(leaves.filter_map(|u| u.as_str().map(str::to_owned)));
            if let Some(online) = body["online"].as_u64() {
                let (low, high) = seen.online[phase].unwrap_or((online, online));
                seen.online[phase] = Some((low.min(online), high.max(online)));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_socket_io_clients() {
        let mut b = Backoff::new(Duration::from_secs(1));
        for (low, high) in [(500, 1500), (1000, 3000), (2000, 5000), (4000, 5000), (5000, 5000)] {
            let d = b.next().as_millis();
            assert!((low..=high).contains(&d), "{d} ms not in {low}..={high}");
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(1500));
    }
}
