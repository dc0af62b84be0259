//! `batch`: what one atomic `POST /api/events` of many events costs, in
//! time and in PostgreSQL temporary files, per event, as the batch grows.
//! Linear cost shows as a flat time per event and no temporary files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, Setup};
use crate::http::{append, one_connection};
use crate::report::Row;
use crate::stats::{Cpu, Histogram, machine_cores, ms};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Events per batch, each size measured in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    pub events: Vec<usize>,
    /// Bytes of each event's data.
    #[arg(long, value_delimiter = ',', default_value = "1024,16384")]
    pub bytes: Vec<usize>,
    /// Batches appended per size (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Connections appending 1,000-event batches back to back while another
    /// tenant's single appends are timed (0: skip that part).
    #[arg(long, default_value_t = 4)]
    pub loaders: usize,
    /// Seconds the single appends are timed, without and then with the load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// Most that 1,000 events may cost per event against 100 (noise allowed).
const TARGET_GROWTH: f64 = 2.0;
/// Most temporary-file bytes per event.
const TARGET_TEMP_PER_EVENT: f64 = 1024.0;
/// Most a single append of another tenant may take (p99) beside large batches.
const TARGET_NEIGHBOUR_P99_MICROS: u64 = 500_000;

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    println!("# batch: {} batches per size, 10 streams per batch, {} cores", args.repeat, machine_cores());
    let (client, token) = (one_connection(), env.token("bench", "loader", &["publisher"]));
    let mut rows = Vec::new();
    for &bytes in &args.bytes {
        let mut per_event = Vec::new();
        for &events in &args.events {
            let body = batch(events, bytes);
            let temp_before = temp_bytes(env).await?;
            let mut took: Vec<Duration> = Vec::with_capacity(args.repeat);
            for _ in 0..args.repeat.max(1) {
                took.push(append(&client, &env.http(), &token, &body).await?);
            }
            let temp = (temp_bytes(env).await? - temp_before) as f64 / (events * took.len()) as f64;
            took.sort();
            let median = took[took.len() / 2];
            let micros = median.as_secs_f64() * 1e6 / events as f64;
            println!(
                "# {events} x {bytes} B: median {:.1} ms a batch, {micros:.0} µs an event, {temp:.0} temp B an event",
                median.as_secs_f64() * 1e3
            );
            per_event.push((events, micros));
            rows.push(Row::new(
                &format!("batch append, {events} x {} KB", bytes / 1024),
                format!("{:.1} ms, {micros:.0} µs/event, {temp:.0} temp B/event", median.as_secs_f64() * 1e3),
                "≤ 1 KiB temp/event",
                &format!("median of {}, one connection", took.len()),
                Some(temp <= TARGET_TEMP_PER_EVENT),
            ));
        }
        rows.extend(growth(bytes, &per_event));
    }
    if args.loaders > 0 {
        rows.push(neighbours(env, args).await?);
    }
    Ok(rows)
}

/// Single appends of one tenant, timed alone and then while `loaders`
/// connections of another tenant append 1,000 x 1 KB batches back to back.
async fn neighbours(env: &Env, args: &Args) -> anyhow::Result<Row> {
    let period = Duration::from_secs(args.duration.max(1));
    let alone = singles(env, period).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut loaders = Vec::new();
    for _ in 0..args.loaders {
        let (client, base, token, stop) =
            (one_connection(), env.http(), env.token("bench", "loader", &["publisher"]), stop.clone());
        loaders.push(tokio::spawn(async move {
            let body = batch(1000, 1024);
            let mut batches = 0u64;
            while !stop.load(Ordering::Relaxed) {
                append(&client, &base, &token, &body).await?;
                batches += 1;
            }
            anyhow::Ok(batches)
        }));
    }
    let cpu = Cpu::sample(env.server.pid);
    let loaded = singles(env, period).await;
    let usage = cpu.since(&Cpu::sample(env.server.pid));
    stop.store(true, Ordering::Relaxed);
    let mut batches = 0;
    for loader in loaders {
        batches += loader.await??;
    }
    let loaded = loaded?;
    println!(
        "# single appends of another tenant: alone {}; beside {batches} large batches {}",
        alone.summary(),
        loaded.summary()
    );
    println!("# {usage}");
    Ok(Row::new(
        "single append beside large batches",
        format!(
            "p99 {} (alone {}), max {}",
            ms(loaded.quantile(0.99)),
            ms(alone.quantile(0.99)),
            ms(loaded.quantile(1.0))
        ),
        &format!("p99 ≤ {}", ms(TARGET_NEIGHBOUR_P99_MICROS)),
        &format!(
            "{} connections appending 1,000 x 1 KB batches, {batches} in {} s; one connection appending; {}",
            args.loaders,
            period.as_secs(),
            usage.short()
        ),
        Some(loaded.quantile(0.99) <= TARGET_NEIGHBOUR_P99_MICROS),
    ))
}

/// One connection appending single events of its own tenant for `period`.
async fn singles(env: &Env, period: Duration) -> anyhow::Result<Histogram> {
    let (client, token) = (one_connection(), env.token("neighbour", "n", &["publisher"]));
    let mut latency = Histogram::default();
    let end = Instant::now() + period;
    let mut i = 0u64;
    while Instant::now() < end {
        let body = json!({ "stream": format!("n-{}", i % 100), "type": "bench:single", "data": { "i": i } });
        latency.record_duration(append(&client, &env.http(), &token, &body).await?);
        i += 1;
    }
    Ok(latency)
}

/// The time per event of the largest batch against that of the one ten times smaller.
fn growth(bytes: usize, per_event: &[(usize, f64)]) -> Option<Row> {
    let &(large, at_large) = per_event.iter().max_by_key(|(n, _)| *n)?;
    let &(small, at_small) = per_event.iter().find(|(n, _)| *n * 10 == large)?;
    let ratio = at_large / at_small;
    Some(Row::new(
        &format!("batch growth, {} KB events", bytes / 1024),
        format!("{ratio:.2}x the time per event at {large} as at {small}"),
        &format!("≤ {TARGET_GROWTH}x (linear)"),
        "medians above",
        Some(ratio <= TARGET_GROWTH),
    ))
}

/// `{"events": [...]}`: `events` events over 10 streams, `bytes` of data each.
fn batch(events: usize, bytes: usize) -> Value {
    let filler = "x".repeat(bytes.saturating_sub(24));
    let list: Vec<Value> = (0..events)
        .map(|i| json!({ "stream": format!("batch-{}", i % 10), "type": "bench:chunk", "data": { "i": i, "f": filler } }))
        .collect();
    json!({ "events": list })
}

/// The database's temporary-file bytes so far. A backend reports its
/// counts when idle (at most once a second) and when it exits, so the
/// server's backends are ended first; its pools open new ones.
async fn temp_bytes(env: &Env) -> anyhow::Result<i64> {
    let mut conn = env.pool.acquire().await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'eventfeed%'",
    )
    .execute(&mut *conn)
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE 'eventfeed%'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if left == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // poll: the backends are exiting
    }
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await?;
    Ok(sqlx::query_scalar("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut *conn)
        .await?)
}
