//! `reads`: cursor-paged `GET /api/events` over a tenant of 1,000,000
//! events, from several readers walking different regions, and the plan of
//! the server's cursor query, which must read a cursor index in order (no
//! sequential scan, no sort).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde::de::IgnoredAny;
use sqlx::Row as _;

use crate::harness::{Env, Setup};
use crate::http::{Errors, one_connection};
use crate::plan;
use crate::report::Row;
use crate::stats::{Cpu, Histogram, machine_cores, ms};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Events in the tenant.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Transactions the fill is split into (each gets its own tx_id).
    #[arg(long, default_value_t = 50)]
    pub fill_transactions: u64,
    /// Concurrent readers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 8)]
    pub readers: u64,
    /// Events per page (`limit`).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Seconds of reading.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Events of a second tenant, interleaved with the first's (by fill transaction).
    #[arg(long, default_value_t = 100_000)]
    pub other_tenant_events: u64,
}

/// The cursor indexes: per tenant, and across tenants. With one tenant
/// holding most of the table the planner rightly walks the second one.
const CURSOR_INDEXES: [&str; 2] = ["events_tenant_cursor_idx", "events_cursor_idx"];

/// One of the cursor indexes: the first partition's (the table before it was
/// partitioned), or the one a later partition got from the partitioned index.
fn is_cursor_index(name: &str) -> bool {
    CURSOR_INDEXES.contains(&name) || name.ends_with("_tx_id_position_idx")
}

/// Whether the plan has a Sort node (a Merge Append's `Sort Key` merges
/// ordered index scans, sorting nothing).
fn sorts(plan: &str) -> bool {
    plan.lines().any(|line| {
        let node = line.trim_start().trim_start_matches("->").trim_start();
        matches!(node.split_whitespace().next(), Some("Sort" | "Incremental")) && !node.contains(':')
    })
}

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    fill(env, args).await?;
    let starts = start_cursors(env, args).await?;
    let before = Cpu::sample(env.server.pid);
    let load = read_load(env, args, &starts).await;
    let cpu = before.since(&Cpu::sample(env.server.pid));
    let secs = args.duration as f64;
    let (pages, events) = (load.latency.count() as f64 / secs, load.events as f64 / secs);
    println!(
        "# reads: {} readers, limit {}, {} s: {pages:.0} pages/s, {events:.0} events/s, page latency {}, {} errors",
        args.readers,
        args.limit,
        args.duration,
        load.latency.summary(),
        load.errors
    );
    println!("# reads: {cpu}");

    let middle = &starts[starts.len() / 2];
    let custom = plan::explain(env, &plan::literal_query(middle, args.limit)).await?;
    println!("# EXPLAIN (ANALYZE, BUFFERS) of read_feed's query with literal values:\n{custom}");
    let generic = plan::explain_generic(env, middle, args.limit).await?;
    println!("# the same as a prepared statement with plan_cache_mode = force_generic_plan:\n{generic}");
    // In cursor order straight off an index: no sequential scan, no sort.
    let uses = |plan: &str| {
        let scans = plan::scans(plan);
        scans.split(" + ").all(is_cursor_index) && !sorts(plan)
    };
    let conditions = format!(
        "{} cores; {} events in 1 tenant ({} transactions){}, VACUUM ANALYZE; {} readers, limit {}, {} s; {}",
        machine_cores(),
        args.events,
        args.fill_transactions,
        match args.other_tenant_events {
            0 => String::new(),
            n => format!(" + {n} of another tenant"),
        },
        args.readers,
        args.limit,
        args.duration,
        cpu.short()
    );
    Ok(vec![
        Row::new(
            "reads throughput",
            format!(
                "{pages:.0} pages/s = {events:.0} events/s (p50 {}, p99 {})",
                ms(load.latency.quantile(0.5)),
                ms(load.latency.quantile(0.99))
            ),
            "-",
            &conditions,
            None,
        ),
        Row::new(
            "reads cursor query plan",
            format!("custom: {}, generic: {}", plan::scans(&custom), plan::scans(&generic)),
            "a cursor index, no Seq Scan, no Sort",
            &conditions,
            Some(uses(&custom) && uses(&generic) && load.errors == 0),
        ),
    ])
}

/// `INSERT … SELECT generate_series` in `fill_transactions` transactions:
/// 1,000 streams with versions 1, 2, 3…, and their `streams` rows. Events
/// of the other tenant, if any, go in between, chunk by chunk.
async fn fill(env: &Env, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let chunks = args.fill_transactions.max(1);
    for chunk in 0..chunks {
        insert(env, "bench", args.events * chunk / chunks, args.events * (chunk + 1) / chunks).await?;
        let other = args.other_tenant_events;
        insert(env, "other", other * chunk / chunks, other * (chunk + 1) / chunks).await?;
    }
    sqlx::query(
        "INSERT INTO eventfeed.streams (tenant_id, stream, version) \
         SELECT tenant_id, stream, max(version) FROM eventfeed.events GROUP BY tenant_id, stream",
    )
    .execute(&env.pool)
    .await?;
    let filled = started.elapsed();
    sqlx::raw_sql("VACUUM (ANALYZE) eventfeed.events").execute(&env.pool).await?;
    println!(
        "# reads: filled {} events (+{} of another tenant) in {:.1} s, VACUUM ANALYZE in {:.1} s",
        args.events,
        args.other_tenant_events,
        filled.as_secs_f64(),
        (started.elapsed() - filled).as_secs_f64()
    );
    Ok(())
}

/// Events `from..to` of `tenant`, in one transaction.
async fn insert(env: &Env, tenant: &str, from: u64, to: u64) -> anyhow::Result<()> {
    if from >= to {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO eventfeed.events (id, tenant_id, stream, version, type, data, actor_id, actor_name) \
         SELECT gen_random_uuid(), $1, 'account-' || (g % 1000), g / 1000 + 1, 'bench:filled', \
                jsonb_build_object('seq', g, 'amount', g % 997, 'currency', 'EUR'), 'u-filler', 'filler' \
         FROM generate_series($2::bigint, $3::bigint) g",
    )
    .bind(tenant)
    .bind(from as i64)
    .bind(to as i64 - 1)
    .execute(&env.pool)
    .await
    .context("filling eventfeed.events")?;
    Ok(())
}

/// One cursor per reader, evenly spaced through the tenant's events.
async fn start_cursors(env: &Env, args: &Args) -> anyhow::Result<Vec<String>> {
    let mut cursors = Vec::new();
    for r in 0..args.readers {
        let offset = (args.events * r / args.readers) as i64;
        let row = sqlx::query(
            "SELECT tx_id, position FROM eventfeed.events WHERE tenant_id = 'bench' \
             ORDER BY tx_id, position OFFSET $1 LIMIT 1",
        )
        .bind(offset)
        .fetch_one(&env.pool)
        .await?;
        // The server's cursor format (src/cursor.rs): `<tx_id>-<position>`.
        cursors.push(format!("{}-{}", row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?));
    }
    Ok(cursors)
}

struct Load {
    events: u64,
    errors: u64,
    latency: Histogram,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    events: Vec<IgnoredAny>,
    cursor: String,
    has_more: bool,
}

/// Each reader pages forward from its start; at the end of the table it starts over.
async fn read_load(env: &Env, args: &Args, starts: &[String]) -> Load {
    let token = Arc::new(env.token("bench", "reader", &[]));
    let base = Arc::new(env.http());
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let limit = args.limit;
    let readers: Vec<_> = starts
        .iter()
        .cloned()
        .map(|start| {
            let (token, base) = (token.clone(), base.clone());
            tokio::spawn(async move {
                let client = one_connection();
                let (mut events, mut errors, mut latency) = (0u64, Errors::default(), Histogram::default());
                let mut cursor = start.clone();
                while Instant::now() < deadline {
                    let url = format!("{base}/api/events?after={cursor}&limit={limit}");
                    let began = Instant::now();
                    match page(&client, &url, &token).await {
                        Ok(page) if Instant::now() <= deadline => {
                            latency.record_duration(began.elapsed());
                            events += page.events.len() as u64;
                            cursor = if page.has_more { page.cursor } else { start.clone() };
                        }
                        Ok(_) => {}
                        Err(e) => errors.add(&e),
                    }
                }
                (events, errors.count, latency)
            })
        })
        .collect();
    let mut load = Load { events: 0, errors: 0, latency: Histogram::default() };
    for r in readers {
        if let Ok((events, errors, latency)) = r.await {
            load.events += events;
            load.errors += errors;
            load.latency.merge(&latency);
        }
    }
    load
}

async fn page(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Page> {
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    anyhow::ensure!(status.is_success(), "GET /api/events answered {status}: {}", String::from_utf8_lossy(&bytes));
    Ok(serde_json::from_slice(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_of_partitions_in_cursor_order_sorts_nothing() {
        let merged = "Limit (actual time=0.2..0.5 rows=501 loops=1)\n  ->  Merge Append (actual time=0.2..0.5 rows=501 loops=1)\n        Sort Key: events.tx_id, events.\"position\"\n        ->  Index Scan using events_tenant_cursor_idx on events_unpartitioned events_1\n        ->  Index Scan using events_20261207_tenant_id_tx_id_position_idx on events_20261207 events_2";
        assert!(!sorts(merged));
        assert!(crate::plan::scans(merged).split(" + ").all(is_cursor_index));
        let sorted = "Limit\n  ->  Sort  (cost=1.0..2.0 rows=10 width=8)\n        Sort Key: tx_id\n        Sort Method: quicksort  Memory: 25kB";
        assert!(sorts(sorted));
        assert!(sorts("Limit\n  ->  Incremental Sort (actual time=0.1..0.2 rows=1 loops=1)"));
        assert!(!is_cursor_index("events_time_idx"));
    }
}
