//! `append --schemas DIR`: what checking each append against its type's
//! schema costs. One server runs with the catalog; slices of appends of a
//! type that has a schema (its first example as data, so every one is
//! valid and stored) take turns with slices of the same data under a type
//! that has none, in one run, so both see the same machine and database.
//! The cost is how much lower the checked rate is.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::append::{Args, Body, HttpLoad, http_load};
use crate::harness::{Env, Setup};
use crate::report::Row;
use crate::stats::{Cpu, Histogram, Usage, machine_cores, ms};

/// Validation may cost at most this share of the append rate.
const TARGET_COST: f64 = 0.10;
/// The type appended without a schema.
const UNCHECKED: &str = "bench:unchecked";

pub async fn run(setup: &Setup, args: &Args, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("--schemas {}", dir.display()))?;
    let catalog = eventfeed::schemas::Catalog::load(&dir, false)?;
    anyhow::ensure!(catalog.get(UNCHECKED).is_none(), "the catalog must not have a schema for {UNCHECKED}");
    let (event_type, data) = catalog
        .iter()
        .find_map(|(name, schema)| schema.examples.first().map(|e| (name.to_owned(), e.clone())))
        .context("no schema in --schemas has an example to append (give one an `examples` array)")?;
    let per_check = check_time(&catalog, &event_type, &data);
    let dir = dir.to_str().context("the schema directory's path is not UTF-8")?;
    Env::run_with(setup, vec![("EVENTFEED_SCHEMAS".to_owned(), dir.to_owned())], async |env| {
        measure(env, args, &event_type, &data, per_check).await
    })
    .await
}

/// The in-process time of one check of `data`, averaged over many.
fn check_time(catalog: &eventfeed::schemas::Catalog, event_type: &str, data: &Value) -> Duration {
    const N: u32 = 100_000;
    let started = Instant::now();
    for _ in 0..N {
        let _ = std::hint::black_box(catalog.check(event_type, std::hint::black_box(data)));
    }
    started.elapsed() / N
}

fn body(event_type: &str, data: &Value) -> Body {
    let (event_type, data) = (event_type.to_owned(), data.clone());
    Arc::new(move |_, stream| json!({ "stream": stream, "type": event_type, "data": data }))
}

/// One side of the comparison, over all its slices.
#[derive(Default)]
struct Side {
    ok: u64,
    errors: u64,
    latency: Histogram,
    cpu: Vec<Usage>,
}

impl Side {
    fn add(&mut self, load: HttpLoad, cpu: Usage) {
        self.ok += load.ok;
        self.errors += load.errors;
        self.latency.merge(&load.latency);
        self.cpu.push(cpu);
    }
}

async fn measure(
    env: &Env,
    args: &Args,
    event_type: &str,
    data: &Value,
    per_check: Duration,
) -> anyhow::Result<Vec<Row>> {
    let sync = env.synchronous_commit().await?;
    println!("# append --schemas: {event_type} (checked) vs. {UNCHECKED} (no schema), data {data}");
    println!("# synchronous_commit = {sync}, {} cores; one check takes {per_check:?} in-process", machine_cores());
    let rounds = args.rounds.clamp(1, args.duration.max(1));
    let slice = Duration::from_secs_f64(args.duration as f64 / rounds as f64);
    let (mut checked, mut unchecked) = (Side::default(), Side::default());
    for round in 1..=rounds {
        // Each round swaps which side goes first, so neither always follows a warm-up of the other.
        let order = if round % 2 == 1 { [true, false] } else { [false, true] };
        for is_checked in order {
            let (kind, side) = if is_checked { (event_type, &mut checked) } else { (UNCHECKED, &mut unchecked) };
            let before = Cpu::sample(env.server.pid);
            let load = http_load(env, args, slice, body(kind, data)).await?;
            let cpu = before.since(&Cpu::sample(env.server.pid));
            println!(
                "# round {round}: {kind}: {:.0} events/s ({})",
                load.ok as f64 / slice.as_secs_f64(),
                load.latency.summary()
            );
            side.add(load, cpu);
        }
    }
    let seconds = args.duration as f64;
    let (checked_rate, unchecked_rate) = (checked.ok as f64 / seconds, unchecked.ok as f64 / seconds);
    let cost = 1.0 - checked_rate / unchecked_rate;
    let conditions = format!(
        "{} cores; synchronous_commit={sync}; {} keep-alive HTTP connections, 1 event/request, a new stream each; \
         {} s per side in {rounds} alternating slices; data {data} ({per_check:?} per check in-process); \
         checked: {}; unchecked: {}",
        machine_cores(),
        args.connections,
        args.duration,
        Usage::mean(&checked.cpu).short(),
        Usage::mean(&unchecked.cpu).short(),
    );
    let errors = checked.errors + unchecked.errors;
    let value = format!(
        "{checked_rate:.0} events/s checked (p50 {}, p99 {}) vs. {unchecked_rate:.0} unchecked (p50 {}, p99 {}): cost {:.1}%{}",
        ms(checked.latency.quantile(0.5)),
        ms(checked.latency.quantile(0.99)),
        ms(unchecked.latency.quantile(0.5)),
        ms(unchecked.latency.quantile(0.99)),
        cost * 100.0,
        if errors == 0 { String::new() } else { format!(", {errors} errors") }
    );
    let pass = cost <= TARGET_COST && errors == 0;
    Ok(vec![Row::new("schema validation's cost to the append rate", value, "≤ 10%", &conditions, Some(pass))])
}
