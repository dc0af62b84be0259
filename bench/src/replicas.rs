//! `replicas`: a replay storm on one primary, without and then with one
//! streaming replica. The benchmark starts its own primary and replica
//! (`cluster.rs`); each side runs the release server on a fresh database of
//! that primary, which the replica follows. Per side: the replayed tenant
//! gets its events, the replica replays them, then many sockets connect with
//! `auth.after = "0"` and each replays all of them to the end while
//! keep-alive HTTP connections append to another tenant, one event per
//! request. Measured: the rows the primary (and the replica) read over the
//! storm, the appends/s and their latency during it, and every socket's
//! events (all of them, once, in cursor order).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::envelope::{cursor_key, scan};
use crate::harness::{Env, Setup, fresh_db_name};
use crate::http::{Errors, append, one_connection};
use crate::report::Row;
use crate::sio::Socket;
use crate::stats::{
    Histogram, children_ticks, machine_busy_ticks, machine_cores, ms, process_ticks, stat_fields, thousands,
};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Sockets replaying at once, each a different user of the replayed tenant.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Events of the replayed tenant, appended before the storm; each socket replays them all.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Keep-alive HTTP connections appending to another tenant during the
    /// storm, one event per request, each to a new stream.
    #[arg(long, default_value_t = 64)]
    pub appenders: usize,
    /// Socket handshakes in flight at once.
    #[arg(long, default_value_t = 100)]
    pub handshakes: usize,
    /// Seconds the appenders run before the first socket connects (not counted).
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// The most seconds a storm may last; a socket not done by then has failed.
    #[arg(long, default_value_t = 600)]
    pub limit: u64,
    /// Run the side with the replica first (the machine's drift then favours the other side).
    #[arg(long)]
    pub with_first: bool,
    /// Run one side only (no targets then: they compare the two).
    #[arg(long, value_enum)]
    pub only: Option<Side>,
    /// Load `pg_stat_statements` on the benchmark's primary and replica, and
    /// print the statements that touched the most blocks over each storm.
    #[arg(long)]
    pub statements: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server with no replica: every read on the primary.
    Without,
    /// The server with `EVENTFEED_REPLICA_URLS` naming the replica.
    With,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Without => "without replica",
            Side::With => "with 1 replica",
        }
    }
}

/// The fewest rows read on the primary with the replica, as a share of without.
const TARGET_ROWS: f64 = 0.10;
/// Appends/s with the replica against without.
const TARGET_APPENDS: f64 = 1.5;
/// PostgreSQL's backends report their table counters when idle at most every
/// 10 s (`PGSTAT_IDLE_INTERVAL`): counters are read this long after the load stops.
const STATS_SETTLE: Duration = Duration::from_secs(11);
/// The longest a socket may go without a packet before it counts as stuck.
const SILENCE: Duration = Duration::from_secs(60);
/// The replayed tenant and the appenders' tenant.
const REPLAYED: &str = "bench";
const APPENDING: &str = "writers";

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let cluster = Cluster::start(args.statements).await.context("starting the benchmark's own primary and replica")?;
    println!(
        "# replicas: own cluster started in {:.1} s: primary 127.0.0.1:{} (pid {}), streaming replica 127.0.0.1:{} (pid {})",
        started.elapsed().as_secs_f64(),
        cluster.primary_port,
        cluster.postmaster("primary").unwrap_or(0),
        cluster.replica_port,
        cluster.postmaster("replica").unwrap_or(0)
    );
    // `--database-url` is not used: the databases go on the benchmark's own primary.
    let setup = Setup { database_url: cluster.primary_url("postgres"), ..setup.clone() };
    let sides = match args.only {
        Some(side) => vec![side],
        None if args.with_first => vec![Side::With, Side::Without],
        None => vec![Side::Without, Side::With],
    };
    let mut phases = Vec::new();
    for side in sides {
        println!("# replicas: {} ...", side.label());
        let db_name = fresh_db_name();
        let vars = match side {
            Side::Without => Vec::new(),
            Side::With => vec![("EVENTFEED_REPLICA_URLS".to_owned(), cluster.replica_url(&db_name))],
        };
        let phase = Env::run_named(&setup, db_name, vars, async |env| storm(env, &cluster, side, args).await).await?;
        phase.print(args);
        phases.push(phase);
    }
    let conditions = conditions(&setup, args, &phases);
    drop(cluster);
    Ok(rows(args, &phases, &conditions))
}

/// What one side measured.
struct Phase {
    side: Side,
    /// From the first socket's connect to the last socket's last event.
    storm: Duration,
    replays: Replays,
    appends: Appends,
    /// Rows read over the storm, on the primary and on the replica.
    primary: Reads,
    replica: Reads,
    /// The server's replica counters over the storm (`/metrics`).
    replica_reads: f64,
    fallbacks: BTreeMap<String, f64>,
    /// `/ready` sampled every second of the storm: samples, those with the replica down, the largest lag.
    ready: ReadySamples,
    /// Warnings of the server's log over the whole run, by kind.
    warnings: Vec<(&'static str, usize)>,
    cpu: CpuUse,
    load: (String, String),
    sync: String,
    fsync: String,
    version: String,
}

async fn storm(env: &Env, cluster: &Cluster, side: Side, args: &Args) -> anyhow::Result<Phase> {
    let sync = env.synchronous_commit().await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&env.pool).await?;
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&env.pool).await?;
    if args.statements {
        sqlx::raw_sql("CREATE EXTENSION pg_stat_statements").execute(&env.pool).await?;
    }
    seed(env, args.events).await?;
    let replica = replica_pool(cluster, &env.db_name).await?;
    wait_replayed(&env.pool, &replica, args.events).await?;
    if side == Side::With {
        wait_replica_up(env).await?;
    }
    crate::replay::wait_for_tailer(env).await?;
    // Let every backend report what the seeding and the tailer read.
    tokio::time::sleep(STATS_SETTLE).await;
    let (primary_before, replica_before) = (Reads::sample(&env.pool).await?, Reads::sample(&replica).await?);
    let metrics_before = ReplicaMetrics::scrape(env).await?;
    let load_before = loadavg();
    if args.statements {
        for pool in [&env.pool, &replica] {
            sqlx::raw_sql("SELECT pg_stat_statements_reset()").execute(pool).await?;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    // Stops the appenders and the sampler however this function returns.
    let _stop = StopOnDrop(stop.clone());
    let appenders = spawn_appenders(env, args.appenders, stop.clone());
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let ready = tokio::spawn(sample_ready(env.http(), stop.clone()));
    let pids = Pids {
        server: env.server.pid,
        primary: cluster.postmaster("primary").unwrap_or(0),
        replica: cluster.postmaster("replica").unwrap_or(0),
    };
    let cpu_before = Ticks::sample(&pids);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.limit);
    let handshakes = Arc::new(Semaphore::new(args.handshakes.max(1)));
    let sockets: Vec<JoinHandle<(Replay, Option<Socket>)>> = (0..args.sockets)
        .map(|i| {
            let auth = json!({ "token": env.token(REPLAYED, &format!("u-{i}"), &[]), "after": "0" });
            let (addr, handshakes, events) = (env.server.addr, handshakes.clone(), args.events);
            tokio::spawn(async move { replay_one(addr, auth, events, handshakes, deadline).await })
        })
        .collect();
    let mut replays = Replays::default();
    let mut open = Vec::new();
    for s in sockets {
        let (replay, socket) = s.await?;
        replays.add(&replay, start, args.events);
        open.extend(socket);
    }
    let end = if replays.done == args.sockets as u64 { replays.last_done.unwrap_or(start) } else { Instant::now() };
    let cpu = cpu_before.since(&Ticks::sample(&pids));
    stop.store(true, Ordering::Relaxed);
    let appends = Appends::collect(appenders, start, end).await?;
    let ready = ready.await?;
    let metrics_after = ReplicaMetrics::scrape(env).await?;
    let load_after = loadavg();
    let warnings = log_warnings(&env.server.log);
    futures::future::join_all(open.into_iter().map(Socket::close)).await;

    tokio::time::sleep(STATS_SETTLE).await;
    let primary = Reads::sample(&env.pool).await?.since(&primary_before);
    let replica_reads = Reads::sample(&replica).await?.since(&replica_before);
    if args.statements {
        for (node, pool) in [("primary", &env.pool), ("replica", &replica)] {
            print_statements(side, node, pool).await?;
        }
    }
    replica.close().await;
    Ok(Phase {
        side,
        storm: end - start,
        replays,
        appends,
        primary,
        replica: replica_reads,
        replica_reads: metrics_after.reads - metrics_before.reads,
        fallbacks: metrics_after
            .fallbacks
            .iter()
            .map(|(k, v)| (k.clone(), v - metrics_before.fallbacks.get(k).copied().unwrap_or(0.0)))
            .collect(),
        ready,
        warnings,
        cpu,
        load: (load_before, load_after),
        sync,
        fsync,
        version,
    })
}

/// Appends `events` events of the replayed tenant through the SQL API
/// (`eventfeed.append_event`), 10,000 per transaction, `data.seq` 1 to `events`.
async fn seed(env: &Env, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::replay::backlog(env, events, 10_000).await?;
    println!("# replicas: seeded {events} events in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The statements of this database that touched the most shared blocks
/// since the reset, from `pg_stat_statements`.
async fn print_statements(side: Side, node: &str, pool: &PgPool) -> anyhow::Result<()> {
    let top: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "SELECT calls, rows, (shared_blks_hit + shared_blks_read)::bigint AS blocks, \
                left(regexp_replace(query, '\\s+', ' ', 'g'), 240) \
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY blocks DESC LIMIT 8",
    )
    .fetch_all(pool)
    .await?;
    println!("# {}: {node}'s statements by shared blocks touched (calls, rows returned, blocks):", side.label());
    for (calls, rows, blocks, query) in top {
        println!("#   {} / {} / {}: {query}", thousands(calls), thousands(rows), thousands(blocks));
    }
    Ok(())
}

/// A small pool on the replica's copy of the benchmark database, once the
/// replica has replayed its creation.
async fn replica_pool(cluster: &Cluster, db_name: &str) -> anyhow::Result<PgPool> {
    let url = cluster.replica_url(db_name);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgPoolOptions::new().max_connections(2).connect(&url).await {
            Ok(pool) => return Ok(pool),
            Err(e) if Instant::now() > deadline => return Err(e).context("the replica's copy of the database"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the replica has replayed everything the primary has written
/// so far, and holds the seeded events.
async fn wait_replayed(primary: &PgPool, replica: &PgPool, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(primary).await?;
    loop {
        let replayed: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
            .bind(&lsn)
            .fetch_one(replica)
            .await?;
        if replayed {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the replica has not replayed {lsn} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM eventfeed.events WHERE tenant_id = 'bench'")
        .fetch_one(replica)
        .await?;
    anyhow::ensure!(held as u64 == events, "the replica holds {held} of the {events} seeded events");
    println!("# replicas: the replica replayed the seeding within {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Waits until the server's `/ready` shows its replica up.
async fn wait_replica_up(env: &Env) -> anyhow::Result<()> {
    let client = one_connection();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready: serde_json::Value = client.get(format!("{}/ready", env.http())).send().await?.json().await?;
        if ready["replicas"][0]["up"] == json!(true) {
            println!("# replicas: the server reports its replica up: {}", ready["replicas"]);
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server does not report its replica up within 30 s: {ready}; see {}", env.server.log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One socket's replay.
#[derive(Default)]
struct Replay {
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Events it did not get: lost when it got `feed:replayed`, else not yet received.
    missing: u64,
    /// `feed:replayed`'s count.
    replayed_count: Option<u64>,
    done_at: Option<Instant>,
    /// No packet came for `SILENCE` (or the limit passed) before `feed:replayed`.
    stalled: bool,
    error: Option<String>,
}

/// Connects (at most `handshakes` at a time) with `auth`, and reads until
/// `feed:replayed`, which the server sends after the replay's last event:
/// an event not received by then is lost. The socket is returned open: a
/// client stays connected after its replay.
async fn replay_one(
    addr: std::net::SocketAddr,
    auth: serde_json::Value,
    events: u64,
    handshakes: Arc<Semaphore>,
    deadline: Instant,
) -> (Replay, Option<Socket>) {
    let mut replay = Replay::default();
    let connected = {
        let _permit = handshakes.acquire().await;
        tokio::time::timeout_at(deadline.into(), Socket::connect(addr, &auth)).await
    };
    let mut socket = match connected {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => {
            replay.error = Some(format!("connect: {e:#}"));
            replay.missing = events;
            return (replay, None);
        }
        Err(_) => {
            replay.error = Some("not connected before the limit".to_owned());
            replay.missing = events;
            return (replay, None);
        }
    };
    let mut seen = vec![false; events as usize + 1];
    let mut last = (0, 0);
    let outcome: anyhow::Result<()> = async {
        while replay.replayed_count.is_none() {
            let until = deadline.min(Instant::now() + SILENCE);
            let Ok(next) = tokio::time::timeout_at(until.into(), socket.next()).await else {
                replay.stalled = true;
                bail!("no packet for {SILENCE:?} (or the limit passed) after {} events", replay.received);
            };
            let packet = next?.context("the server disconnected")?;
            if let Some((cursor, _, seq)) = scan(&packet, "bench:replayed") {
                replay.received += 1;
                let key = cursor_key(cursor).unwrap_or_default();
                if key <= last {
                    replay.out_of_order += 1;
                }
                last = key;
                match seen.get_mut(seq as usize) {
                    Some(s) if *s => replay.duplicates += 1,
                    Some(s) => *s = true,
                    None => replay.out_of_order += 1,
                }
            } else if packet.array().starts_with("[\"feed:replayed\"") {
                let (_, body): (&str, serde_json::Value) = packet.parse()?;
                replay.replayed_count = Some(body["count"].as_u64().unwrap_or(0));
            }
        }
        Ok(())
    }
    .await;
    replay.missing = seen[1..].iter().filter(|s| !**s).count() as u64;
    match outcome {
        Ok(()) => {
            replay.done_at = Some(Instant::now());
            (replay, Some(socket))
        }
        Err(e) => {
            replay.error = Some(format!("{e:#}"));
            socket.close().await;
            (replay, None)
        }
    }
}

/// All sockets' replays.
#[derive(Default)]
struct Replays {
    /// Sockets that got `feed:replayed`; of them, those that got every event once and in order.
    done: u64,
    complete_in_order: u64,
    received: u64,
    /// Events missing at `feed:replayed`.
    lost: u64,
    /// Events not received by sockets that stalled or failed.
    unfinished: u64,
    duplicates: u64,
    out_of_order: u64,
    stalled: u64,
    /// Sockets that failed otherwise (connect, disconnect).
    failed: u64,
    first_error: Option<String>,
    /// From the storm's start to each socket's last event.
    took: Histogram,
    last_done: Option<Instant>,
}

impl Replays {
    fn add(&mut self, r: &Replay, start: Instant, events: u64) {
        self.received += r.received;
        self.duplicates += r.duplicates;
        self.out_of_order += r.out_of_order;
        if let Some(at) = r.done_at {
            self.done += 1;
            self.lost += r.missing;
            self.took.record_duration(at - start);
            self.last_done = self.last_done.max(Some(at));
            if r.missing == 0 && r.duplicates == 0 && r.out_of_order == 0 && r.received == events {
                self.complete_in_order += 1;
            }
        }
        if let Some(e) = &r.error {
            self.unfinished += r.missing;
            if r.stalled {
                self.stalled += 1;
            } else {
                self.failed += 1;
            }
            if self.first_error.is_none() {
                self.first_error = Some(e.clone());
            }
        }
    }

    fn clean(&self, sockets: usize) -> bool {
        self.complete_in_order == sockets as u64
    }
}

/// What one appender did: when each request started and how long it took.
struct Appender {
    done: Vec<(Instant, Duration)>,
    errors: Vec<Instant>,
}

/// `n` workers, each on its own keep-alive connection, appending one event
/// per request to the appenders' tenant (each to a new stream) until `stop`.
fn spawn_appenders(env: &Env, n: usize, stop: Arc<AtomicBool>) -> Vec<JoinHandle<Appender>> {
    let token = Arc::new(env.token(APPENDING, "appender", &["publisher"]));
    let base = Arc::new(env.http());
    (0..n)
        .map(|_| {
            let (token, base, stop) = (token.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let client = one_connection();
                let prefix = uuid::Uuid::new_v4().simple().to_string();
                let mut errors = Errors::default();
                let mut out = Appender { done: Vec::new(), errors: Vec::new() };
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({ "stream": format!("order-{prefix}-{n}"), "type": "bench:appended", "data": { "seq": n, "amount": 1200 } });
                    let at = Instant::now();
                    match append(&client, &base, &token, &body).await {
                        Ok(took) => out.done.push((at, took)),
                        Err(e) => {
                            errors.add(&e);
                            out.errors.push(at);
                        }
                    }
                }
                out
            })
        })
        .collect()
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The appends that started and finished inside the storm.
struct Appends {
    ok: u64,
    errors: u64,
    latency: Histogram,
    window: Duration,
}

impl Appends {
    async fn collect(appenders: Vec<JoinHandle<Appender>>, start: Instant, end: Instant) -> anyhow::Result<Appends> {
        let mut out = Appends { ok: 0, errors: 0, latency: Histogram::default(), window: end - start };
        for a in appenders {
            let a = a.await?;
            for (at, took) in a.done {
                if at >= start && at + took <= end {
                    out.latency.record_duration(took);
                }
            }
            out.errors += a.errors.iter().filter(|&&at| at >= start && at < end).count() as u64;
        }
        out.ok = out.latency.count();
        Ok(out)
    }

    fn per_sec(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-3)
    }
}

/// Rows read of the events table (all its partitions) and of the whole
/// database, from the statistics of the server it is sampled on.
#[derive(Clone, Debug, Default)]
struct Reads {
    /// `pg_stat_user_tables`: `seq_tup_read + idx_tup_fetch`, summed over `eventfeed.events`' partitions.
    events: i64,
    /// `pg_stat_database` of the benchmark database.
    tup_returned: i64,
    tup_fetched: i64,
    /// Per partition's sequential scans and per index of the partitions:
    /// scans, entries read, rows fetched (`pg_stat_user_indexes`).
    by_scan: BTreeMap<String, [i64; 3]>,
}

impl Reads {
    async fn sample(pool: &PgPool) -> anyhow::Result<Reads> {
        let events: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(s.seq_tup_read + coalesce(s.idx_tup_fetch, 0)), 0)::bigint \
             FROM pg_partition_tree('eventfeed.events') t JOIN pg_stat_user_tables s ON s.relid = t.relid::oid",
        )
        .fetch_one(pool)
        .await?;
        let (tup_returned, tup_fetched): (i64, i64) =
            sqlx::query_as("SELECT tup_returned, tup_fetched FROM pg_stat_database WHERE datname = current_database()")
                .fetch_one(pool)
                .await?;
        let scans: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT 'seq scan ' || s.relname, s.seq_scan, s.seq_tup_read, s.seq_tup_read \
               FROM pg_partition_tree('eventfeed.events') t JOIN pg_stat_user_tables s ON s.relid = t.relid::oid \
             UNION ALL \
             SELECT i.indexrelname::text, i.idx_scan, i.idx_tup_read, i.idx_tup_fetch \
               FROM pg_partition_tree('eventfeed.events') t JOIN pg_stat_user_indexes i ON i.relid = t.relid::oid",
        )
        .fetch_all(pool)
        .await?;
        let by_scan = scans.into_iter().map(|(name, a, b, c)| (name, [a, b, c])).collect();
        Ok(Reads { events, tup_returned, tup_fetched, by_scan })
    }

    fn since(&self, before: &Reads) -> Reads {
        let by_scan = self
            .by_scan
            .iter()
            .map(|(k, v)| {
                let b = before.by_scan.get(k).copied().unwrap_or_default();
                (k.clone(), [v[0] - b[0], v[1] - b[1], v[2] - b[2]])
            })
            .filter(|(_, v)| v.iter().any(|n| *n != 0))
            .collect();
        Reads {
            events: self.events - before.events,
            tup_returned: self.tup_returned - before.tup_returned,
            tup_fetched: self.tup_fetched - before.tup_fetched,
            by_scan,
        }
    }

    /// `name scans/entries read/rows fetched`, the busiest first.
    fn breakdown(&self) -> String {
        let mut all: Vec<_> = self.by_scan.iter().collect();
        all.sort_by_key(|(_, v)| -(v[1] + v[2]));
        let shown: Vec<String> = all
            .iter()
            .take(6)
            .map(|(k, v)| format!("{k} {}/{}/{}", thousands(v[0]), thousands(v[1]), thousands(v[2])))
            .collect();
        if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
    }
}

/// The server's replica counters, from `/metrics`.
struct ReplicaMetrics {
    reads: f64,
    fallbacks: BTreeMap<String, f64>,
}

impl ReplicaMetrics {
    async fn scrape(env: &Env) -> anyhow::Result<ReplicaMetrics> {
        let text = one_connection().get(format!("{}/metrics", env.http())).send().await?.text().await?;
        let mut out = ReplicaMetrics { reads: 0.0, fallbacks: BTreeMap::new() };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            if name.starts_with("eventfeed_replica_reads_total") {
                out.reads += value;
            } else if let Some(labels) = name.strip_prefix("eventfeed_replica_fallbacks_total") {
                let reason = labels.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
                *out.fallbacks.entry(reason.to_owned()).or_default() += value;
            }
        }
        Ok(out)
    }
}

/// `/ready`'s view of the replica over the storm.
#[derive(Default)]
struct ReadySamples {
    samples: u64,
    down: u64,
    max_lag: f64,
}

/// Reads `/ready` every second until `stop`.
async fn sample_ready(base: String, stop: Arc<AtomicBool>) -> ReadySamples {
    let client = one_connection();
    let mut out = ReadySamples::default();
    while !stop.load(Ordering::Relaxed) {
        let ready = async { client.get(format!("{base}/ready")).send().await?.json::<serde_json::Value>().await };
        if let Ok(ready) = ready.await
            && let Some(replica) = ready["replicas"].get(0)
        {
            out.samples += 1;
            if replica["up"] != json!(true) {
                out.down += 1;
            }
            out.max_lag = out.max_lag.max(replica["lagSeconds"].as_f64().unwrap_or(0.0));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    out
}

struct Pids {
    server: u32,
    primary: u32,
    replica: u32,
}

/// CPU time so far, in clock ticks: the server, the benchmark's primary and
/// replica (each postmaster with its children), this process, the machine.
struct Ticks {
    at: Instant,
    server: u64,
    primary: u64,
    replica: u64,
    bench: u64,
    busy: u64,
}

impl Ticks {
    fn sample(pids: &Pids) -> Ticks {
        let (mut primary, mut replica) = (0, 0);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
            let stat = entry.path().join("stat");
            // Field 4 of stat(5), the parent's pid, is at index 1.
            let parent = stat_fields(&stat).get(1).copied().unwrap_or(0) as u32;
            for (postmaster, sum) in [(pids.primary, &mut primary), (pids.replica, &mut replica)] {
                if postmaster != 0 && (pid == postmaster || parent == postmaster) {
                    *sum += process_ticks(&stat);
                }
            }
        }
        Ticks {
            at: Instant::now(),
            server: process_ticks(format!("/proc/{}/stat", pids.server).as_ref()),
            primary,
            replica,
            bench: process_ticks("/proc/self/stat".as_ref()) + children_ticks(),
            busy: machine_busy_ticks(),
        }
    }

    fn since(&self, later: &Ticks) -> CpuUse {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz / secs;
        let (server, primary, replica) =
            (cores(self.server, later.server), cores(self.primary, later.primary), cores(self.replica, later.replica));
        let (bench, busy) = (cores(self.bench, later.bench), cores(self.busy, later.busy));
        CpuUse { server, primary, replica, bench, other: (busy - server - primary - replica - bench).max(0.0), busy }
    }
}

/// Cores used over the storm.
struct CpuUse {
    server: f64,
    primary: f64,
    replica: f64,
    bench: f64,
    /// Anything else: other people's work, and the shared PostgreSQL cluster.
    other: f64,
    busy: f64,
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU cores: server {:.2}, primary {:.2}, replica {:.2}, bench client {:.2}, anything else {:.2}; busy {:.2} of {}",
            self.server,
            self.primary,
            self.replica,
            self.bench,
            self.other,
            self.busy,
            machine_cores()
        )
    }
}

/// The server's log lines that tell why reads failed or moved, counted by kind.
fn log_warnings(log: &std::path::Path) -> Vec<(&'static str, usize)> {
    const KINDS: [(&str, &str); 5] = [
        ("feed read failed; retrying", "feed reads failed (store unavailable) and retried"),
        ("time to acquire exceeded slow threshold", "connections acquired after more than 2 s"),
        ("replica read failed", "replica marked down by a read"),
        ("replica skipped", "replica skipped by the probe"),
        ("tailer reads fail", "tailer reads failing"),
    ];
    let text = std::fs::read_to_string(log).unwrap_or_default();
    KINDS.iter().map(|(needle, what)| (*what, text.lines().filter(|l| l.contains(needle)).count())).collect()
}

/// `/proc/loadavg`'s three averages.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

impl Phase {
    fn print(&self, args: &Args) {
        let side = self.side.label();
        let r = &self.replays;
        println!(
            "# {side}: storm {:.1} s: {} of {} sockets got feed:replayed ({} with every event once and in order), {} stalled (no packet for {} s), {} failed otherwise; {} events received, {} lost, {} duplicates, {} out of order, {} not received by the stalled or failed; each socket done after: {}",
            self.storm.as_secs_f64(),
            r.done,
            args.sockets,
            r.complete_in_order,
            r.stalled,
            SILENCE.as_secs(),
            r.failed,
            r.received,
            r.lost,
            r.duplicates,
            r.out_of_order,
            r.unfinished,
            r.took.summary()
        );
        if let Some(e) = &r.first_error {
            println!("# {side}: first socket failure: {e}");
        }
        println!(
            "# {side}: appends during the storm: {} in {:.1} s = {:.0}/s, latency {}, {} errors",
            self.appends.ok,
            self.appends.window.as_secs_f64(),
            self.appends.per_sec(),
            self.appends.latency.summary(),
            self.appends.errors
        );
        println!(
            "# {side}: rows read of eventfeed.events (pg_stat_user_tables seq_tup_read + idx_tup_fetch): primary {}, replica {}; pg_stat_database tup_returned/tup_fetched: primary {}/{}, replica {}/{}",
            thousands(self.primary.events),
            thousands(self.replica.events),
            thousands(self.primary.tup_returned),
            thousands(self.primary.tup_fetched),
            thousands(self.replica.tup_returned),
            thousands(self.replica.tup_fetched)
        );
        println!(
            "# {side}: scans of eventfeed.events (scans/entries read/rows fetched): primary: {}; replica: {}",
            self.primary.breakdown(),
            self.replica.breakdown()
        );
        if self.side == Side::With {
            let fallbacks: Vec<String> = self.fallbacks.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
            println!(
                "# {side}: server metrics over the storm: replica reads {:.0}, fallbacks to the primary: {}; /ready each second: {} samples, replica down in {}, largest lag {:.1} s",
                self.replica_reads,
                if fallbacks.is_empty() { "none".to_owned() } else { fallbacks.join(", ") },
                self.ready.samples,
                self.ready.down,
                self.ready.max_lag
            );
        }
        let warnings: Vec<String> = self.warnings.iter().map(|(what, n)| format!("{what} {n}")).collect();
        println!("# {side}: server log warnings: {}", warnings.join(", "));
        println!("# {side}: {}; load average {} before, {} after", self.cpu, self.load.0, self.load.1);
    }
}

fn conditions(setup: &Setup, args: &Args, phases: &[Phase]) -> String {
    let first = phases.first();
    let cpu: Vec<String> = phases.iter().map(|p| format!("{}: {}", p.side.label(), p.cpu)).collect();
    let load: Vec<String> = phases.iter().map(|p| format!("{} → {}", p.load.0, p.load.1)).collect();
    format!(
        "{} cores, load average {}; server {}; own PostgreSQL {} primary + 1 asynchronous streaming replica on the same cores (defaults: fsync={}, synchronous_commit={}); \
         {} sockets × {} events from auth.after=\"0\" ({} handshakes at a time), while {} keep-alive connections append to another tenant, 1 event/request; \
         rows: eventfeed.events seq_tup_read + idx_tup_fetch over the storm (and {} s of warm-up), read {} s after it; {}",
        machine_cores(),
        load.join(", "),
        setup.server_bin.display(),
        first.map_or("?", |p| p.version.as_str()),
        first.map_or("?", |p| p.fsync.as_str()),
        first.map_or("?", |p| p.sync.as_str()),
        args.sockets,
        args.events,
        args.handshakes,
        args.appenders,
        args.warmup,
        STATS_SETTLE.as_secs(),
        cpu.join("; ")
    )
}

fn rows(args: &Args, phases: &[Phase], conditions: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in phases {
        let r = &p.replays;
        rows.push(Row::new(
            &format!("replicas {}: replays", p.side.label()),
            format!(
                "{} of {} sockets got all {} events in order, {:.1} s from the first connect to the last socket's end (per socket p50 {:.1} s); {} lost, {} duplicate, {} out of order{}",
                r.complete_in_order,
                args.sockets,
                args.events,
                p.storm.as_secs_f64(),
                r.took.quantile(0.5) as f64 / 1e6,
                r.lost,
                r.duplicates,
                r.out_of_order,
                match (r.stalled, r.failed) {
                    (0, 0) => String::new(),
                    (stalled, failed) => format!(
                        "; {stalled} stalled (no packet for {} s, {} events not received), {failed} failed otherwise",
                        SILENCE.as_secs(),
                        r.unfinished
                    ),
                }
            ),
            "every socket all events, in order",
            conditions,
            Some(r.clean(args.sockets)),
        ));
        rows.push(Row::new(
            &format!("replicas {}: rows read", p.side.label()),
            format!("primary {}, replica {}", thousands(p.primary.events), thousands(p.replica.events)),
            "-",
            conditions,
            None,
        ));
        rows.push(Row::new(
            &format!("replicas {}: appends", p.side.label()),
            format!(
                "{:.0} events/s (p50 {}, p99 {}){}",
                p.appends.per_sec(),
                ms(p.appends.latency.quantile(0.5)),
                ms(p.appends.latency.quantile(0.99)),
                if p.appends.errors > 0 { format!(", {} errors", p.appends.errors) } else { String::new() }
            ),
            "-",
            conditions,
            None,
        ));
    }
    let without = phases.iter().find(|p| p.side == Side::Without);
    let with = phases.iter().find(|p| p.side == Side::With);
    if let (Some(without), Some(with)) = (without, with) {
        let share = with.primary.events as f64 / (without.primary.events as f64).max(1.0);
        rows.push(Row::new(
            "replicas: rows read on the primary",
            format!(
                "{} with the replica vs. {} without = {:.1}% fewer (the replica read {})",
                thousands(with.primary.events),
                thousands(without.primary.events),
                (1.0 - share) * 100.0,
                thousands(with.replica.events)
            ),
            "≥ 90% fewer",
            conditions,
            Some(share <= TARGET_ROWS && without.primary.events > 0),
        ));
        let ratio = with.appends.per_sec() / without.appends.per_sec().max(1e-3);
        let ok = with.appends.errors == 0 && without.appends.errors == 0;
        rows.push(Row::new(
            "replicas: appends/s during the storm",
            format!(
                "{:.0}/s (p99 {}) with the replica vs. {:.0}/s (p99 {}) without = {ratio:.2}x",
                with.appends.per_sec(),
                ms(with.appends.latency.quantile(0.99)),
                without.appends.per_sec(),
                ms(without.appends.latency.quantile(0.99))
            ),
            "≥ 1.5x",
            conditions,
            Some(ratio >= TARGET_APPENDS && ok),
        ));
    }
    rows
}
