//! `fanout`: many sockets in one tenant while events are appended over
//! HTTP at a steady rate. Delivered messages/s, commit-to-client latency
//! (envelope `timestamp` vs. the client's clock) and loss: every socket must
//! get every appended event exactly once, in cursor order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::envelope::{cursor_key, scan};
use crate::harness::{Env, Setup};
use crate::http::{Errors, append, one_connection};
use crate::report::Row;
use crate::sio::{Packet, Socket, connect_many, until_quiet};
use crate::stats::{Cpu, Histogram, Usage, machine_cores, ms, now_micros, parse_timestamp};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Connected sockets, each a different user of one tenant.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Events appended per second (one per HTTP request).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of appending.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// HTTP connections the appends are spread over.
    #[arg(long, default_value_t = 32)]
    pub writers: u64,
    /// Seconds to wait after the last append for deliveries to finish.
    #[arg(long, default_value_t = 15)]
    pub drain: u64,
    /// At most this many seconds between connecting and appending: until
    /// no presence announcement has come for a second.
    #[arg(long, default_value_t = 60)]
    pub settle: u64,
}

const TARGET_P99_MICROS: u64 = 50_000;

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let auths = (0..args.sockets).map(|i| json!({ "token": env.token("bench", &format!("u-{i}"), &[]) })).collect();
    let sockets = connect_many(env.server.addr, auths, 50).await?;
    println!("# fanout: connected {} sockets in {:.1} s", sockets.len(), started.elapsed().as_secs_f64());

    let delivered = Arc::new(AtomicU64::new(0));
    let others = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let capacity = (args.rate * args.duration) as usize + 1;
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|s| tokio::spawn(receive(s, delivered.clone(), others.clone(), stopped.clone(), capacity)))
        .collect();
    let others_before = until_quiet(&others, Duration::from_secs(args.settle)).await;
    println!(
        "# fanout: {others_before} presence packets (user:online…) until quiet, {:.1} s after the first connect",
        started.elapsed().as_secs_f64()
    );

    let cpu = Cpu::sample(env.server.pid);
    let first_append = now_micros();
    let writes = write_load(env, args).await;
    let expected = writes.ok_seqs.len() as u64 * args.sockets as u64;
    let drain_until = Instant::now() + Duration::from_secs(args.drain);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu.since(&Cpu::sample(env.server.pid));
    let _ = stop.send(true);
    let others_late = others.load(Ordering::Relaxed) - others_before;
    if others_late > 0 {
        println!("# fanout: {others_late} other packets while appending");
    }
    let mut total = Tally::new(0);
    let mut ok = vec![false; capacity];
    writes.ok_seqs.iter().for_each(|&s| ok[s as usize] = true);
    let mut missing = 0;
    for r in receivers {
        let t = r.await?;
        missing += ok.iter().zip(&t.seen).filter(|(o, s)| **o && !**s).count() as u64;
        total.merge(t);
    }
    let window = total.last_at.map_or(Duration::ZERO, |at| Duration::from_micros(at.saturating_sub(first_append)));
    Ok(rows(args, &writes, &total, missing, window, &cpu))
}

fn rows(args: &Args, writes: &Writes, t: &Tally, missing: u64, window: Duration, cpu: &Usage) -> Vec<Row> {
    let per_sec = t.received as f64 / window.as_secs_f64().max(1e-3);
    println!(
        "# fanout: appended {} events in {:.1} s ({:.0}/s, {} errors), append latency {}",
        writes.ok_seqs.len(),
        writes.elapsed.as_secs_f64(),
        writes.ok_seqs.len() as f64 / writes.elapsed.as_secs_f64(),
        writes.errors,
        writes.latency.summary()
    );
    println!(
        "# fanout: delivered {} messages in {:.1} s ({per_sec:.0}/s); latency {}; missing {missing}, duplicates {}, out of order {}, sockets lost {}",
        t.received,
        window.as_secs_f64(),
        t.latency.summary(),
        t.duplicates,
        t.out_of_order,
        t.lost
    );
    println!("# fanout: {cpu}");
    let conditions = format!(
        "{} cores; {} sockets in 1 tenant, client on the same machine; {} events/s offered over HTTP ({} connections) for {} s, {:.0}/s achieved; {}",
        machine_cores(),
        args.sockets,
        args.rate,
        args.writers,
        args.duration,
        writes.ok_seqs.len() as f64 / writes.elapsed.as_secs_f64(),
        cpu.short()
    );
    let (p50, p99) = (t.latency.quantile(0.5), t.latency.quantile(0.99));
    let clean = missing == 0 && t.duplicates == 0 && t.out_of_order == 0 && t.lost == 0;
    vec![
        Row::new(
            "fanout latency",
            format!("p50 {}, p99 {}; {per_sec:.0} messages/s delivered", ms(p50), ms(p99)),
            "p99 ≤ 50 ms",
            &format!("{conditions}; envelope timestamp (ms) to client receipt"),
            Some(p99 <= TARGET_P99_MICROS),
        ),
        Row::new(
            "fanout loss",
            format!("{missing} missing, {} duplicate, {} out of order", t.duplicates, t.out_of_order),
            "0",
            &conditions,
            Some(clean),
        ),
    ]
}

/// What one socket (or, merged, all of them) received.
struct Tally {
    seen: Vec<bool>,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Sockets that were disconnected or failed before the end.
    lost: u64,
    last_cursor: (u64, u64),
    /// When the last message came, in microseconds since the epoch.
    last_at: Option<u64>,
    latency: Histogram,
}

impl Tally {
    fn new(capacity: usize) -> Tally {
        Tally {
            seen: vec![false; capacity],
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            lost: 0,
            last_cursor: (0, 0),
            last_at: None,
            latency: Histogram::default(),
        }
    }

    fn take(&mut self, packet: &Packet) -> bool {
        let Some((cursor, timestamp, seq)) = scan(packet, "bench:tick") else { return false };
        let now = packet.received_at;
        if let Some(at) = parse_timestamp(timestamp) {
            self.latency.record(now.saturating_sub(at * 1000));
        }
        match self.seen.get_mut(seq as usize) {
            Some(seen) if *seen => self.duplicates += 1,
            Some(seen) => *seen = true,
            None => self.out_of_order += 1,
        }
        let cursor = cursor_key(cursor).unwrap_or_default();
        if cursor <= self.last_cursor {
            self.out_of_order += 1;
        }
        self.last_cursor = cursor;
        self.received += 1;
        self.last_at = Some(now);
        true
    }

    fn merge(&mut self, other: Tally) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.lost += other.lost;
        self.latency.merge(&other.latency);
        self.last_at = self.last_at.max(other.last_at);
    }
}

async fn receive(
    mut socket: Socket,
    delivered: Arc<AtomicU64>,
    others: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    capacity: usize,
) -> Tally {
    let mut tally = Tally::new(capacity);
    loop {
        tokio::select! {
            // The socket first: while packets are buffered, the stop signal
            // is not polled, which cost a tenth of the client's time.
            biased;
            packet = socket.next() => match packet {
                Ok(Some(packet)) => {
                    let counter = if tally.take(&packet) { &delivered } else { &others };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) | Err(_) => {
                    tally.lost = 1;
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    tally
}

struct Writes {
    ok_seqs: Vec<u64>,
    errors: u64,
    latency: Histogram,
    elapsed: Duration,
}

/// `rate` events/s for `duration` s: event `seq` is sent at `start + seq/rate`
/// by writer `seq % writers`, each writer on its own keep-alive connection.
async fn write_load(env: &Env, args: &Args) -> Writes {
    let token = Arc::new(env.token("bench", "ticker", &["publisher"]));
    let base = Arc::new(env.http());
    let total = args.rate * args.duration;
    let interval = Duration::from_secs(1).as_nanos() as u64 / args.rate;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let writers: Vec<_> = (0..args.writers)
        .map(|w| {
            let (token, base, writers) = (token.clone(), base.clone(), args.writers);
            tokio::spawn(async move {
                let client = one_connection();
                let (mut ok, mut errors, mut latency) = (Vec::new(), Errors::default(), Histogram::default());
                for seq in (1 + w..=total).step_by(writers as usize) {
                    tokio::time::sleep_until(start + Duration::from_nanos((seq - 1) * interval)).await;
                    let body = json!({ "stream": format!("ticker-{w}"), "type": "bench:tick", "data": { "seq": seq } });
                    match append(&client, &base, &token, &body).await {
                        Ok(took) => {
                            latency.record_duration(took);
                            ok.push(seq);
                        }
                        Err(e) => errors.add(&e),
                    }
                }
                (ok, errors.count, latency)
            })
        })
        .collect();
    let mut writes = Writes { ok_seqs: Vec::new(), errors: 0, latency: Histogram::default(), elapsed: Duration::ZERO };
    for w in writers {
        if let Ok((ok, errors, latency)) = w.await {
            writes.ok_seqs.extend(ok);
            writes.errors += errors;
            writes.latency.merge(&latency);
        }
    }
    writes.elapsed = start.elapsed();
    writes
}
