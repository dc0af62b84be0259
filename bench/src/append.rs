//! `append`: events/s through `POST /api/events` from many keep-alive
//! connections, one event per request, against pgbench doing plain
//! single-row INSERTs into the same table in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tokio::sync::Barrier;

use crate::harness::{Env, Setup, temp_file};
use crate::http::{Errors, append, one_connection};
use crate::report::Row;
use crate::stats::{Cpu, Histogram, Usage, machine_cores, ms};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Seconds of measured load, for HTTP and for pgbench each.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Slices the duration is cut into, HTTP and pgbench taking turns, so
    /// that both see the same drift in the machine's disk and CPU.
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Concurrent keep-alive HTTP connections, each sending one request at a time.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// pgbench clients for the baseline.
    #[arg(long, default_value_t = 8)]
    pub pgbench_clients: usize,
    /// Seconds of unmeasured load before each HTTP slice.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Streams the HTTP appends go to, round robin; 0: a new stream for
    /// every event, as the pgbench script does.
    #[arg(long, default_value_t = 0)]
    pub streams: u64,
    /// Measure the cost of schema validation instead: the server runs with
    /// this EVENTFEED_SCHEMAS directory, and slices of appends of a type it
    /// has a schema for take turns with slices of the same data under a
    /// type it has none for.
    #[arg(long)]
    pub schemas: Option<std::path::PathBuf>,
}

/// What one HTTP worker appends: its `n`th event on `stream`.
pub type Body = Arc<dyn Fn(u64, String) -> serde_json::Value + Send + Sync>;

const TARGET_RATIO: f64 = 3.0;

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    if let Some(dir) = &args.schemas {
        return crate::schemas::run(setup, args, dir).await;
    }
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    let sync = env.synchronous_commit().await?;
    println!("# append: synchronous_commit = {sync}, {} cores", machine_cores());
    let rounds = args.rounds.clamp(1, args.duration.max(1));
    let slice = args.duration as f64 / rounds as f64;
    let mut http = HttpLoad { ok: 0, errors: 0, latency: Histogram::default() };
    let (mut tps, mut cpu_http, mut cpu_pg) = (0.0, Vec::new(), Vec::new());
    for round in 1..=rounds {
        let before = Cpu::sample(env.server.pid);
        let body: Body = Arc::new(
            |n, stream| json!({ "stream": stream, "type": "bench:appended", "data": { "seq": n, "amount": 1200 } }),
        );
        let load = http_load(env, args, Duration::from_secs_f64(slice), body).await?;
        cpu_http.push(before.since(&Cpu::sample(env.server.pid)));
        let before = Cpu::sample(env.server.pid);
        let baseline = pgbench(env, args, slice.round().max(1.0) as u64).await?;
        cpu_pg.push(before.since(&Cpu::sample(env.server.pid)));
        println!(
            "# round {round}: HTTP {:.0} events/s ({}), pgbench {:.0} tx/s ({})",
            load.ok as f64 / slice,
            load.latency.summary(),
            baseline.tps,
            baseline.latency
        );
        tps += baseline.tps / rounds as f64;
        http.ok += load.ok;
        http.errors += load.errors;
        http.latency.merge(&load.latency);
    }
    let (cpu_http, cpu_pg) = (Usage::mean(&cpu_http), Usage::mean(&cpu_pg));
    let events_per_sec = http.ok as f64 / args.duration as f64;
    println!(
        "# HTTP: {} connections, {} s in all: {} events, {events_per_sec:.0} events/s, latency {}, {} errors",
        args.connections,
        args.duration,
        http.ok,
        http.latency.summary(),
        http.errors
    );
    println!("# HTTP: {cpu_http}");
    println!("# pgbench: {} clients, {} s in all: {tps:.0} tx/s", args.pgbench_clients, args.duration);
    println!("# pgbench: {cpu_pg}");

    let ratio = events_per_sec / tps;
    let conditions = format!(
        "{} cores; synchronous_commit={sync}; HTTP: {} keep-alive connections, 1 event/request; pgbench: {} clients, 1-row INSERT into the same table (NOTIFY trigger, server running); {} s each, in {rounds} alternating slices; HTTP {}; pgbench {}",
        machine_cores(),
        args.connections,
        args.pgbench_clients,
        args.duration,
        cpu_http.short(),
        cpu_pg.short()
    );
    let ok = http.errors == 0;
    let value = format!(
        "{events_per_sec:.0} events/s (p50 {}, p99 {}) vs. pgbench {tps:.0} tx/s = {ratio:.2}x{}",
        ms(http.latency.quantile(0.5)),
        ms(http.latency.quantile(0.99)),
        if ok { String::new() } else { format!(", {} errors", http.errors) }
    );
    let target = format!("≥ {TARGET_RATIO:.1}x");
    Ok(vec![Row::new("append HTTP vs. pgbench", value, &target, &conditions, Some(ratio >= TARGET_RATIO && ok))])
}

pub struct HttpLoad {
    pub ok: u64,
    pub errors: u64,
    pub latency: Histogram,
}

/// `connections` workers, each posting one event at a time on its own
/// connection; counts what completes inside the measured window.
pub async fn http_load(env: &Env, args: &Args, duration: Duration, body: Body) -> anyhow::Result<HttpLoad> {
    let token = Arc::new(env.token("bench", "appender", &["publisher"]));
    let base = Arc::new(env.http());
    let barrier = Arc::new(Barrier::new(args.connections));
    let warmup = Duration::from_secs(args.warmup);
    let (streams, connections) = (args.streams, args.connections as u64);
    let workers: Vec<_> = (0..args.connections)
        .map(|w| {
            let (token, base, barrier, body) = (token.clone(), base.clone(), barrier.clone(), body.clone());
            tokio::spawn(async move {
                let client = one_connection();
                let mut latency = Histogram::default();
                let mut errors = Errors::default();
                let prefix = uuid::Uuid::new_v4().simple().to_string();
                barrier.wait().await;
                let start = Instant::now() + warmup;
                let end = start + duration;
                let mut n = 0u64;
                loop {
                    n += 1;
                    let stream = match streams {
                        0 => format!("order-{prefix}-{n}"),
                        streams => format!("account-{}", (n * connections + w as u64) % streams),
                    };
                    let result = append(&client, &base, &token, &body(n, stream)).await;
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    match result {
                        Ok(took) if now >= start && now - took >= start => latency.record_duration(took),
                        Ok(_) => {}
                        Err(e) => errors.add(&e),
                    }
                }
                (latency, errors.count)
            })
        })
        .collect();
    let mut load = HttpLoad { ok: 0, errors: 0, latency: Histogram::default() };
    for w in workers {
        let (latency, errors) = w.await?;
        load.latency.merge(&latency);
        load.errors += errors;
    }
    load.ok = load.latency.count();
    Ok(load)
}

struct Pgbench {
    tps: f64,
    latency: String,
}

/// pgbench with a custom script: one `INSERT` of literal values per
/// transaction into eventfeed.events (a fresh stream each, so versions never
/// clash). The type's `:` is written `\x3a`: pgbench reads `:name` as a variable.
async fn pgbench(env: &Env, args: &Args, seconds: u64) -> anyhow::Result<Pgbench> {
    let script = temp_file("insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO eventfeed.events (id, tenant_id, stream, version, type, data)\n\
         VALUES (gen_random_uuid(), 'bench', gen_random_uuid()::text, 1, E'bench\\x3ainserted', '{\"seq\": 1, \"amount\": 1200}');\n",
    )?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg(format!("-c{}", args.pgbench_clients))
        .arg(format!("-T{seconds}"))
        .arg("-f")
        .arg(&script)
        .arg(&env.db_url)
        .output()
        .await
        .context("cannot run pgbench (is it installed?)")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    let tps = line("tps = ")
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next().and_then(|v| v.parse().ok()))
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))?;
    Ok(Pgbench { tps, latency: line("latency average").unwrap_or_default() })
}
