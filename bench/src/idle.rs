//! `idle`: the server's resident memory per connected, idle socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::harness::{Env, Setup};
use crate::report::Row;
use crate::sio::{Socket, connect_many, until_quiet};
use crate::stats::machine_cores;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Idle sockets to hold open.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Tenants they are spread over, each socket a different user
    /// (presence announces every user to its tenant when it connects).
    #[arg(long, default_value_t = 100)]
    pub tenants: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Seconds to let the server settle before the readings with the sockets, after
    /// the presence announcements have stopped.
    #[arg(long, default_value_t = 2)]
    pub settle: u64,
    /// Connect and close them this many times (memory after each close shows a leak).
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
}

const TARGET_KB: f64 = 30.0;
/// After the sockets close, the server's RSS must come back to within this
/// share of what they added, within [`RETURN_WAIT`]. The allocator gives
/// freed pages back on its own schedule, not at once.
const RETURN_SHARE: f64 = 0.10;
const RETURN_WAIT: Duration = Duration::from_secs(30);

pub async fn run(setup: &Setup, args: &Args, nofile: u64) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        nofile as usize > args.sockets + 100,
        "{} sockets need more open files than the limit of {nofile}: run `ulimit -n 65536` first",
        args.sockets
    );
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    let settle = Duration::from_secs(args.settle);
    // One socket first, so that what the first connect starts (adapter
    // connections, lazily built state) is in the baseline.
    Socket::connect(env.server.addr, &json!({ "token": env.token("warmup", "warmup", &[]) })).await?.close().await;
    tokio::time::sleep(settle).await;
    let before = env.server.rss_kib()?;
    let mut with = Vec::new();
    let mut returned = Vec::new();
    let mut dropped = 0;
    for round in 1..=args.rounds {
        let (rss, lost) = round_trip(env, args).await?;
        dropped += lost;
        with.push(rss);
        let (back, took) = rss_back(env, before, rss).await?;
        returned.push((back, took));
        println!(
            "# idle: round {round}: server RSS {rss} KiB with the sockets, {back} KiB {:.0} s after they closed",
            took.as_secs_f64()
        );
    }
    let after = with[0];
    let per_socket = (after.saturating_sub(before)) as f64 * 1024.0 / 1000.0 / args.sockets as f64;
    println!(
        "# idle: server RSS {before} KiB before, {after} KiB with {} sockets: {per_socket:.1} KB per socket; {dropped} dropped early",
        args.sockets
    );
    let (back, took) = *returned.last().expect("at least one round");
    let kept = back.saturating_sub(before) as f64 / after.saturating_sub(before).max(1) as f64;
    let conditions = format!(
        "{} cores; {} idle sockets, {} tenants, one user each; VmRSS once presence is quiet + {} s, vs. before",
        machine_cores(),
        args.sockets,
        args.tenants,
        args.settle
    );
    Ok(vec![
        Row::new(
            "idle memory per socket",
            format!("{per_socket:.1} KB (server RSS {} MiB → {} MiB)", before / 1024, after / 1024),
            "≤ 30 KB",
            &conditions,
            Some(per_socket <= TARGET_KB && dropped == 0),
        ),
        Row::new(
            "memory back after the sockets close",
            format!(
                "RSS {} MiB {:.0} s after the last close ({:.0}% of what the sockets added, {} rounds)",
                back / 1024,
                took.as_secs_f64(),
                kept * 100.0,
                args.rounds
            ),
            "≤ 10% kept within 30 s",
            &conditions,
            Some(kept <= RETURN_SHARE),
        ),
    ])
}

/// Waits for the server's RSS to come back to within [`RETURN_SHARE`] of
/// `before`, for at most [`RETURN_WAIT`]; returns the last reading and when.
async fn rss_back(env: &Env, before: u64, with: u64) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let near = before + ((with.saturating_sub(before)) as f64 * RETURN_SHARE) as u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = env.server.rss_kib()?;
        if rss <= near || started.elapsed() >= RETURN_WAIT {
            return Ok((rss, started.elapsed()));
        }
    }
}

/// Connects every socket, reads the server's RSS once it is quiet, and
/// closes them; returns the RSS and how many the server dropped.
async fn round_trip(env: &Env, args: &Args) -> anyhow::Result<(u64, u64)> {
    let started = Instant::now();
    let auths = (0..args.sockets)
        .map(|i| json!({ "token": env.token(&format!("tenant-{}", i % args.tenants), &format!("u-{i}"), &[]) }))
        .collect();
    let sockets = connect_many(env.server.addr, auths, args.concurrency).await?;
    let connected = started.elapsed().as_secs_f64();
    // Keep reading (pings, presence) while idle, as a real client does.
    let packets = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let holders: Vec<_> =
        sockets.into_iter().map(|s| tokio::spawn(hold(s, packets.clone(), stopped.clone()))).collect();
    let presence = until_quiet(&packets, Duration::from_secs(120)).await;
    println!(
        "# idle: {} sockets connected in {connected:.1} s; {presence} presence packets, quiet after {:.1} s",
        args.sockets,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let rss = env.server.rss_kib()?;
    let _ = stop.send(true);
    let mut dropped = 0;
    for h in holders {
        dropped += u64::from(!h.await.unwrap_or(false));
    }
    Ok((rss, dropped))
}

/// Reads until told to stop; `false` if the server closed the socket first.
async fn hold(mut socket: Socket, packets: Arc<AtomicU64>, mut stop: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            _ = stop.changed() => {
                socket.close().await;
                return true;
            }
            packet = socket.next() => match packet {
                Ok(Some(_)) => {
                    packets.fetch_add(1, Ordering::Relaxed);
                }
                _ => return false,
            }
        }
    }
}
