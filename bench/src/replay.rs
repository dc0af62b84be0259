//! `replay`: a socket that connects with `auth.after = "0"` to a store of
//! 100,000 events; time until `feed:replayed`, with every event received
//! once and in cursor order.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::envelope::{Envelope, cursor_key};
use crate::harness::{Env, Setup};
use crate::report::Row;
use crate::sio::Socket;
use crate::stats::{Cpu, machine_cores};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Events in the store before the socket connects.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Events per SQL transaction while filling (`eventfeed.append_event`).
    #[arg(long, default_value_t = 10_000)]
    pub batch: u64,
    /// ANALYZE the events table after filling (as autovacuum would, later).
    #[arg(long)]
    pub analyze: bool,
}

const TARGET: Duration = Duration::from_secs(5);

pub async fn run(setup: &Setup, args: &Args) -> anyhow::Result<Vec<Row>> {
    Env::run(setup, async |env| measure(env, args).await).await
}

async fn measure(env: &Env, args: &Args) -> anyhow::Result<Vec<Row>> {
    fill(env, args).await?;
    if args.analyze {
        sqlx::raw_sql("ANALYZE eventfeed.events").execute(&env.pool).await?;
    }
    wait_for_tailer(env).await?;

    let before = Cpu::sample(env.server.pid);
    let auth = json!({ "token": env.token("bench", "replayer", &[]), "after": "0" });
    let started = Instant::now();
    let mut socket = Socket::connect(env.server.addr, &auth).await?;
    let connected = started.elapsed();
    let outcome = receive(&mut socket, args.events).await?;
    let cpu = before.since(&Cpu::sample(env.server.pid));
    socket.close().await;

    let took = outcome.done_at - started;
    println!(
        "# replay: connected in {:.0} ms; feed:replayed after {:.2} s (count {}); all {} events after {:.2} s ({:.0} events/s); out of order {}, duplicates {}",
        connected.as_secs_f64() * 1000.0,
        (outcome.replayed_at - started).as_secs_f64(),
        outcome.replayed_count,
        outcome.received,
        took.as_secs_f64(),
        outcome.received as f64 / took.as_secs_f64(),
        outcome.out_of_order,
        outcome.duplicates
    );
    println!("# replay: {cpu}");
    let correct = outcome.received == args.events && outcome.out_of_order == 0 && outcome.duplicates == 0;
    let conditions = format!(
        "{} cores; {} events in the store ({} ANALYZE), 1 socket with auth.after=\"0\", timed from connect to feed:replayed with all received; {}",
        machine_cores(),
        args.events,
        if args.analyze { "after" } else { "no" },
        cpu.short()
    );
    Ok(vec![Row::new(
        "replay time",
        format!(
            "{:.2} s ({:.0} events/s){}",
            took.as_secs_f64(),
            outcome.received as f64 / took.as_secs_f64(),
            if correct { "" } else { " INCOMPLETE" }
        ),
        "≤ 5 s, all in order",
        &conditions,
        Some(took <= TARGET && correct),
    )])
}

/// Appends through the SQL API (`eventfeed.append_event`), `batch` events per transaction.
async fn fill(env: &Env, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    backlog(env, args.events, args.batch).await?;
    println!(
        "# replay: appended {} events with eventfeed.append_event in {:.1} s",
        args.events,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Appends `events` events of tenant `bench` through the SQL API
/// (`eventfeed.append_event`), `batch` per transaction, `data.seq` 1 to `events`.
pub async fn backlog(env: &Env, events: u64, batch: u64) -> anyhow::Result<()> {
    let mut from = 1;
    while from <= events {
        let to = (from + batch - 1).min(events);
        sqlx::query(
            "SELECT count(*) FROM (SELECT eventfeed.append_event(tenant_id => 'bench', stream => 'order-' || (g % 100), \
             type => 'bench:replayed', data => jsonb_build_object('seq', g, 'amount', 1200)) FROM generate_series($1::bigint, $2::bigint) g) appended",
        )
        .bind(from as i64)
        .bind(to as i64)
        .execute(&env.pool)
        .await
        .context("appending through eventfeed.append_event")?;
        from = to + 1;
    }
    Ok(())
}

/// Waits until the server's live feed has reached the store's last event,
/// so that the replay covers the whole backlog (`request:current-state`).
pub async fn wait_for_tailer(env: &Env) -> anyhow::Result<()> {
    let last: String = sqlx::query_scalar(
        "SELECT tx_id || '-' || position FROM eventfeed.events ORDER BY tx_id DESC, position DESC LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await?;
    let auth = json!({ "token": env.token("bench", "watcher", &[]) });
    let mut socket = Socket::connect(env.server.addr, &auth).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in 0.. {
        let state = tokio::time::timeout(Duration::from_secs(30), socket.call("request:current-state", id))
            .await
            .context("no acknowledgement of request:current-state for 30 s")??;
        if state["cursor"].as_str() == Some(last.as_str()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server's feed did not reach {last} within 60 s (it is at {})", state["cursor"]);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    socket.close().await;
    Ok(())
}

struct Outcome {
    received: u64,
    out_of_order: u64,
    duplicates: u64,
    replayed_count: u64,
    replayed_at: Instant,
    done_at: Instant,
}

/// Reads until `feed:replayed` has come and `expected` events with it.
async fn receive(socket: &mut Socket, expected: u64) -> anyhow::Result<Outcome> {
    let mut seen = vec![false; expected as usize + 1];
    let (mut received, mut out_of_order, mut duplicates) = (0, 0, 0);
    let mut last = (0, 0);
    let mut replayed: Option<(u64, Instant)> = None;
    let timeout = Duration::from_secs(120);
    loop {
        if let Some((count, at)) = replayed
            && received >= expected
        {
            return Ok(Outcome {
                received,
                out_of_order,
                duplicates,
                replayed_count: count,
                replayed_at: at,
                done_at: Instant::now(),
            });
        }
        let packet = tokio::time::timeout(timeout, socket.next())
            .await
            .with_context(|| format!("nothing for {timeout:?} after {received} events"))??
            .context("the server disconnected")?;
        if packet.array().starts_with("[\"feed:replayed\"") {
            let (_, body): (&str, serde_json::Value) = packet.parse()?;
            replayed = Some((body["count"].as_u64().unwrap_or(0), Instant::now()));
            continue;
        }
        let Ok(("bench:replayed", event)) = packet.parse::<Envelope>() else { continue };
        received += 1;
        let key = cursor_key(event.cursor).context("unexpected cursor")?;
        if key <= last {
            out_of_order += 1;
        }
        last = key;
        match seen.get_mut(event.data.seq as usize) {
            Some(s) if *s => duplicates += 1,
            Some(s) => *s = true,
            None => bail!("unexpected seq {}", event.data.seq),
        }
    }
}
