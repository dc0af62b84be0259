//! `presence`: one tenant of many users on two nodes behind a load
//! balancer. What presence costs while they connect (packets per user, time
//! to quiet, each node's list), then while one node stops as a deploy stops
//! it (SIGTERM: drain, close, its sockets reconnect to the other node):
//! how long until every socket is back, who was announced offline, packets.

mod lists;
mod report;
mod tally;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventfeed::config::parse_duration;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::lists::Listing;
use self::tally::Totals;
use self::user::{JOIN, Live, RESTART, Seen, User};
use crate::balancer::Balancer;
use crate::harness::{Env, Server, Setup};
use crate::report::Row;
use crate::stats::{Cpu, Usage, now_micros};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Users of one tenant, one socket each.
    #[arg(long, default_value_t = 5000)]
    pub users: usize,
    /// Seconds the connects are spread over, evenly.
    #[arg(long, default_value_t = 10)]
    pub window: u64,
    /// Server nodes on the one database, behind the balancer; the last is stopped.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..))]
    pub nodes: u16,
    /// The nodes' EVENTFEED_DRAIN: how long the stopped node serves on after SIGTERM.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub drain: Duration,
    /// The nodes' EVENTFEED_PRESENCE_GRACE (the server's default).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// The nodes' EVENTFEED_PRESENCE_LIST_MAX (the server's default).
    #[arg(long, default_value_t = 200)]
    pub list_max: usize,
    /// socket.io-client's `reconnectionDelay` (its default), before ±50 %.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub reconnect_delay: Duration,
    /// Seconds without a presence packet that count as quiet.
    #[arg(long, default_value_t = 3)]
    pub quiet: u64,
}

/// The tenant of every user.
const TENANT: &str = "bench";

pub async fn run(setup: &Setup, args: &Args, nofile: u64) -> anyhow::Result<Vec<Row>> {
    // Each user holds a socket, and the balancer two more.
    anyhow::ensure!(
        nofile as usize > 3 * args.users + 200,
        "{} users need more open files than the limit of {nofile}: run `ulimit -n 65536` first",
        args.users
    );
    let vars = vec![
        ("EVENTFEED_DRAIN".to_owned(), format!("{}ms", args.drain.as_millis())),
        ("EVENTFEED_PRESENCE_GRACE".to_owned(), format!("{}ms", args.grace.as_millis())),
        ("EVENTFEED_PRESENCE_LIST_MAX".to_owned(), args.list_max.to_string()),
    ];
    Env::run_with(setup, vars, async |env| {
        let mut others = Vec::new();
        for _ in 1..args.nodes {
            others.push(env.another_server().await?);
        }
        let result = measure(env, &mut others, args).await;
        for server in others {
            server.stop().await;
        }
        result
    })
    .await
}

/// The nodes: the first is the environment's server, the last is stopped.
struct Nodes<'a> {
    first: &'a Server,
    others: &'a mut Vec<Server>,
}

impl Nodes<'_> {
    fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.first.addr).chain(self.others.iter().map(|s| s.addr)).collect()
    }

    fn pids(&self) -> Vec<u32> {
        std::iter::once(self.first.pid).chain(self.others.iter().map(|s| s.pid)).collect()
    }
}

/// The running benchmark: the users and what they share.
struct Run {
    balancer: Balancer,
    live: Arc<Live>,
    stop: watch::Sender<bool>,
    users: Vec<JoinHandle<Seen>>,
    /// The first user's moment, in µs since the epoch.
    started_at: u64,
}

async fn measure(env: &Env, others: &mut Vec<Server>, args: &Args) -> anyhow::Result<Vec<Row>> {
    let nodes = Nodes { first: &env.server, others };
    let run = start(env, &nodes, args).await?;
    let phases = async {
        let join = join_phase(env, &nodes, &run, args).await?;
        let Some(stopping) = nodes.others.pop() else { anyhow::bail!("no second node") };
        let restart = restart_phase(env, &nodes, stopping, &run, args).await?;
        Ok((join, restart))
    }
    .await;
    // Whatever happened, the users stop here.
    let _ = run.stop.send(true);
    let mut totals = Totals::default();
    for user in run.users {
        totals.add(user.await?);
    }
    let (join, restart) = phases?;
    Ok(report::rows(args, &join, &restart, &totals))
}

/// Starts the balancer and every user's task, at its moment of the window.
async fn start(env: &Env, nodes: &Nodes<'_>, args: &Args) -> anyhow::Result<Run> {
    let balancer = Balancer::start(&nodes.addrs()).await?;
    println!(
        "# presence: {} nodes ({:?}) behind the balancer at {}; {} users connect over {} s",
        nodes.addrs().len(),
        nodes.addrs(),
        balancer.addr,
        args.users,
        args.window
    );
    let live = Arc::new(Live::default());
    let (stop, stopped) = watch::channel(false);
    let lead = Duration::from_millis(500);
    let (first, started_at) = (Instant::now() + lead, now_micros() + lead.as_micros() as u64);
    let step = Duration::from_secs(args.window) / args.users.max(1) as u32;
    let users = (0..args.users)
        .map(|i| {
            let user = User {
                balancer: balancer.addr,
                auth: json!({ "token": env.token(TENANT, &format!("u-{i}"), &[]) }),
                at: first + step * i as u32,
                delay: args.reconnect_delay,
            };
            tokio::spawn(user::run(user, live.clone(), stopped.clone()))
        })
        .collect();
    Ok(Run { balancer, live, stop, users, started_at })
}

/// What the connects cost.
pub struct Join {
    /// From the first user's moment to the last accepted connect.
    pub last_accept: Duration,
    /// From the last accepted connect to the last presence packet.
    pub quiet: Duration,
    pub cpu: Usage,
    /// Each node's RSS in KiB once quiet.
    pub rss_kib: Vec<u64>,
    pub lists: Vec<Listing>,
}

async fn join_phase(env: &Env, nodes: &Nodes<'_>, run: &Run, args: &Args) -> anyhow::Result<Join> {
    let cpu = Cpu::sample_all(&nodes.pids());
    let limit = Instant::now() + Duration::from_secs(args.window + 120);
    until(limit, || run.live.accepted.load(Ordering::Relaxed) >= args.users).await;
    let accepted = run.live.accepted.load(Ordering::Relaxed);
    let last_accept_at = run.live.last_accept_at.load(Ordering::Relaxed);
    println!("# presence: {accepted} of {} users accepted; waiting for quiet", args.users);
    quiet(&run.live.packets[JOIN], Duration::from_secs(args.quiet), Duration::from_secs(120)).await;
    let cpu = cpu.since(&Cpu::sample_all(&nodes.pids()));
    let last_packet_at = run.live.last_packet_at[JOIN].load(Ordering::Relaxed);
    let rss_kib = std::iter::once(nodes.first).chain(nodes.others.iter()).map(|s| s.rss_kib().unwrap_or(0)).collect();
    let lists = read_lists(env, &nodes.addrs(), args.users).await?;
    Ok(Join {
        last_accept: micros(last_accept_at.saturating_sub(run.started_at)),
        quiet: micros(last_packet_at.saturating_sub(last_accept_at)),
        cpu,
        rss_kib,
        lists,
    })
}

/// What the stop of one node cost.
pub struct Restart {
    /// Sockets the stopped node held, through the balancer, at SIGTERM.
    pub on_stopped: usize,
    pub exited: bool,
    /// Transport closes the users saw.
    pub closes: u64,
    /// From SIGTERM to the last socket back, if they all came back.
    pub back: Option<Duration>,
    pub lists: Vec<Listing>,
    /// The balancer's count: `node n: given g, refused r`, and connections no node took.
    pub balancer: String,
}

async fn restart_phase(
    env: &Env,
    nodes: &Nodes<'_>,
    mut stopping: Server,
    run: &Run,
    args: &Args,
) -> anyhow::Result<Restart> {
    let stopped_node = run.balancer.nodes.last().expect("two nodes or more");
    let on_stopped = stopped_node.open();
    run.live.phase.store(RESTART, Ordering::Relaxed);
    let (sigterm, sigterm_at) = (Instant::now(), now_micros());
    println!("# presence: SIGTERM to the node at {} ({on_stopped} sockets)", stopping.addr);
    stopping.terminate();
    let exited = stopping.exited(Duration::from_secs(30)).await;
    let connected = || run.live.connected.load(Ordering::Relaxed) >= args.users && stopped_node.open() == 0;
    until(sigterm + Duration::from_secs(120), connected).await;
    let back = connected().then(|| micros(run.live.last_back_at.load(Ordering::Relaxed).saturating_sub(sigterm_at)));
    // Any offline announcement comes after the grace: wait it out, from the last close.
    let last_close = run.live.last_close_at.load(Ordering::Relaxed).max(sigterm_at);
    let grace_over = last_close + (args.grace + Duration::from_secs(args.quiet)).as_micros() as u64;
    tokio::time::sleep(micros(grace_over.saturating_sub(now_micros()))).await;
    quiet(&run.live.packets[RESTART], Duration::from_secs(args.quiet), Duration::from_secs(120)).await;
    let lists = read_lists(env, &nodes.addrs(), args.users).await?;
    let closes = run.live.closes.load(Ordering::Relaxed);
    let placed = run.balancer.nodes.iter().enumerate();
    let placed = placed.map(|(i, n)| format!("node {}: given {}, refused {}", i + 1, n.given(), n.refused()));
    let balancer = format!("{}; {} placed nowhere", placed.collect::<Vec<_>>().join("; "), run.balancer.unplaced());
    Ok(Restart { on_stopped, exited, closes, back, lists, balancer })
}

async fn read_lists(env: &Env, addrs: &[SocketAddr], users: usize) -> anyhow::Result<Vec<Listing>> {
    let mut listings = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let listing = lists::read(env, &format!("node {}", i + 1), *addr, TENANT, users).await?;
        println!("# presence: {}", listing.summary());
        listings.push(listing);
    }
    Ok(listings)
}

/// Polls `done` until it holds or `limit` passes.
async fn until(limit: Instant, done: impl Fn() -> bool) {
    while !done() && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `counter` has not moved for `silence`, or `limit`.
async fn quiet(counter: &AtomicU64, silence: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let (mut last, mut since) = (counter.load(Ordering::Relaxed), Instant::now());
    while since.elapsed() < silence && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

fn micros(n: u64) -> Duration {
    Duration::from_micros(n)
}
