//! eventfeed-bench: each command creates a fresh database, starts the
//! release server on it, loads it, prints its figures with their
//! conditions and a PASS/FAIL against the target, and drops the database.

mod append;
mod balancer;
mod batch;
mod cluster;
mod envelope;
mod fanout;
mod harness;
mod http;
mod idle;
mod plan;
mod presence;
mod reads;
mod replay;
mod replicas;
mod report;
mod schemas;
mod sio;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::harness::Setup;
use crate::report::Row;

#[derive(Parser, Debug)]
#[command(name = "eventfeed-bench", about = "Benchmarks of the eventfeed server against its targets")]
struct Cli {
    #[command(flatten)]
    setup: Setup,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Appends/s over HTTP (64 connections) against a pgbench INSERT baseline; target ≥ 3x.
    /// With --schemas DIR: checked against unchecked appends; validation costs ≤ 10%.
    Append(append::Args),
    /// One atomic append of 1, 100 and 1,000 events of 1 KB and 16 KB: time and temp files per event.
    Batch(batch::Args),
    /// Cursor-paged reads of a 1,000,000-event tenant, and the query plan.
    Reads(reads::Args),
    /// 1,000 sockets, 1,000 events/s: delivery latency (p99 ≤ 50 ms) and loss (none).
    Fanout(fanout::Args),
    /// One socket replaying 100,000 events from cursor 0; target ≤ 5 s.
    Replay(replay::Args),
    /// Server memory per idle socket with 10,000 connected (target ≤ 30 KB), and back after they close.
    Idle(idle::Args),
    /// 5,000 users of one tenant on two nodes: presence packets, quiet, lists; then one node's SIGTERM.
    Presence(presence::Args),
    /// 1,000 sockets replaying 10,000 events while 64 connections append, without and with one
    /// streaming replica (its own primary and replica); targets: the primary reads ≥ 90% fewer
    /// rows, appends/s ≥ 1.5x. Not part of `all`.
    Replicas(replicas::Args),
    /// All of the above but `replicas`, with their defaults, then one markdown table.
    All,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let nofile = harness::raise_nofile();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eventfeed-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, nofile)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("eventfeed-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(false)` when a target was missed.
async fn run(cli: Cli, nofile: u64) -> anyhow::Result<bool> {
    let setup = &cli.setup;
    let rows = match cli.command {
        Command::Append(args) => append::run(setup, &args).await?,
        Command::Batch(args) => batch::run(setup, &args).await?,
        Command::Reads(args) => reads::run(setup, &args).await?,
        Command::Fanout(args) => fanout::run(setup, &args).await?,
        Command::Replay(args) => replay::run(setup, &args).await?,
        Command::Idle(args) => idle::run(setup, &args, nofile).await?,
        Command::Presence(args) => presence::run(setup, &args, nofile).await?,
        Command::Replicas(args) => replicas::run(setup, &args).await?,
        Command::All => return all(setup, nofile).await,
    };
    Ok(report::print(&rows))
}

async fn all(setup: &Setup, nofile: u64) -> anyhow::Result<bool> {
    let mut rows: Vec<Row> = Vec::new();
    for name in ["append", "batch", "reads", "fanout", "replay", "idle", "presence"] {
        println!("\n## {name}");
        let outcome = match name {
            "append" => append::run(setup, &defaults::<append::Args>()).await,
            "batch" => batch::run(setup, &defaults::<batch::Args>()).await,
            "reads" => reads::run(setup, &defaults::<reads::Args>()).await,
            "fanout" => fanout::run(setup, &defaults::<fanout::Args>()).await,
            "replay" => replay::run(setup, &defaults::<replay::Args>()).await,
            "idle" => idle::run(setup, &defaults::<idle::Args>(), nofile).await,
            _ => presence::run(setup, &defaults::<presence::Args>(), nofile).await,
        };
        match outcome {
            Ok(r) => {
                report::print(&r);
                rows.extend(r);
            }
            Err(e) => {
                eprintln!("eventfeed-bench {name}: {e:#}");
                rows.push(Row::new(name, format!("did not run: {e:#}"), "-", "-", Some(false)));
            }
        }
    }
    println!("\n{}", report::table(&rows));
    Ok(rows.iter().all(|r| r.pass != Some(false)))
}

/// A benchmark's arguments with every flag at its default, as `all` runs it.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&command.get_matches_from(["defaults"])).expect("every flag has a default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let reads = defaults::<reads::Args>();
        assert_eq!((reads.events, reads.other_tenant_events, reads.limit), (1_000_000, 100_000, 100));
        let fanout = defaults::<fanout::Args>();
        assert_eq!((fanout.sockets, fanout.rate), (1000, 1000));
        let batch = defaults::<batch::Args>();
        assert_eq!((batch.events, batch.bytes), (vec![1, 100, 1000], vec![1024, 16384]));
        let presence = defaults::<presence::Args>();
        assert_eq!((presence.users, presence.window, presence.nodes), (5000, 10, 2));
        assert_eq!(presence.drain, std::time::Duration::from_secs(1));
        let replicas = defaults::<replicas::Args>();
        assert_eq!((replicas.sockets, replicas.events, replicas.appenders), (1000, 10_000, 64));
        assert_eq!(replicas.only, None);
    }
}
