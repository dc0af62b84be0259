//! The presence benchmark's figures, each against its target.

use std::time::Duration;

use super::tally::Totals;
use super::user::{JOIN, RESTART};
use super::{Args, Join, Restart};
use crate::presence::lists::Listing;
use crate::report::Row;
use crate::stats::thousands;
use crate::stats::{machine_cores, ms};

const PACKETS_JOIN: f64 = 20.0;
const PACKETS_RESTART: f64 = 10.0;
const QUIET: Duration = Duration::from_secs(5);
/// How late the last connect may be answered after the window's end.
const LATE: Duration = Duration::from_secs(1);

pub fn rows(args: &Args, join: &Join, restart: &Restart, t: &Totals) -> Vec<Row> {
    let users = args.users;
    let conditions = format!(
        "{} cores shared with the clients and PostgreSQL; {users} users of 1 tenant, 1 socket each, connects spread \
         over {} s; {} nodes on 1 database behind a TCP balancer in the benchmark; list max {}, grace {} s, drain \
         {} s; clients reconnect as socket.io-client (delay {} s ± 50 %)",
        machine_cores(),
        args.window,
        args.nodes,
        args.list_max,
        args.grace.as_secs_f64(),
        args.drain.as_secs_f64(),
        args.reconnect_delay.as_secs_f64()
    );
    print_details(join, restart, t);
    let mut rows = join_rows(args, join, t, &conditions);
    rows.extend(restart_rows(args, restart, t, &conditions));
    rows.push(lists_row("presence lists after the restart", &restart.lists, users, &conditions));
    rows
}

fn print_details(join: &Join, restart: &Restart, t: &Totals) {
    println!("# presence: join: {}", t.names(JOIN));
    println!("# presence: join: {}", join.cpu);
    let rss: Vec<String> = join.rss_kib.iter().map(|k| format!("{} MiB", k / 1024)).collect();
    println!("# presence: nodes' RSS once quiet: {}", rss.join(", "));
    println!(
        "# presence: restart: {} sockets on the stopped node at SIGTERM, {} transport closes seen, node exited: {}; \
         back after each close {}",
        restart.on_stopped,
        restart.closes,
        restart.exited,
        t.back_after.summary()
    );
    println!("# presence: restart: {}", t.names(RESTART));
    println!("# presence: balancer: {}", restart.balancer);
    if t.failed_attempts > 0 || t.disconnected > 0 {
        println!(
            "# presence: {} failed connect attempts (retried), {} sockets disconnected by the server",
            t.failed_attempts, t.disconnected
        );
    }
}

fn join_rows(args: &Args, join: &Join, t: &Totals, conditions: &str) -> Vec<Row> {
    let users = args.users;
    let window = Duration::from_secs(args.window);
    let in_time = t.accepted == users && join.last_accept <= window + LATE;
    vec![
        Row::new(
            "presence connects",
            format!(
                "{} of {} accepted, the last {:.1} s after the first connect; latency p50 {}, p99 {}, max {}",
                thousands(t.accepted as u64),
                thousands(users as u64),
                join.last_accept.as_secs_f64(),
                ms(t.latency.quantile(0.5)),
                ms(t.latency.quantile(0.99)),
                ms(t.latency.quantile(1.0))
            ),
            &format!("all within the {} s window (+{} s)", args.window, LATE.as_secs()),
            conditions,
            Some(in_time),
        ),
        Row::new(
            "presence packets, join",
            format!(
                "{:.1} per user ({} in all, at most {} to one user)",
                t.per_user(JOIN),
                thousands(t.packets[JOIN]),
                t.max_packets[JOIN]
            ),
            "≤ 20 per user",
            &format!("{conditions}; {}; {}", t.names(JOIN), join.cpu.short()),
            Some(t.per_user(JOIN) <= PACKETS_JOIN),
        ),
        Row::new(
            "presence quiet after the last connect",
            format!("{:.1} s", join.quiet.as_secs_f64()),
            "≤ 5 s",
            &format!("{conditions}; last presence packet after the last accepted connect"),
            Some(join.quiet <= QUIET),
        ),
        lists_row("presence lists after the join", &join.lists, users, conditions),
    ]
}

fn restart_rows(args: &Args, restart: &Restart, t: &Totals, conditions: &str) -> Vec<Row> {
    let users = args.users;
    let all_back = restart.back.is_some() && t.connected_at_end == users && t.disconnected == 0;
    let back = restart.back.map_or("not all".into(), |d| format!("{:.1} s", d.as_secs_f64()));
    let offline = t.announced_offline(RESTART, users);
    let lowest = t.online[RESTART].map_or("no diff".into(), |(low, _)| format!("lowest online in a diff {low}"));
    vec![
        Row::new(
            "presence restart: sockets back",
            format!(
                "{} of the stopped node's {} back {back} after SIGTERM (reconnect after close p50 {}, max {}); {} of {} connected at the end",
                thousands(restart.closes),
                thousands(restart.on_stopped as u64),
                ms(t.back_after.quantile(0.5)),
                ms(t.back_after.quantile(1.0)),
                thousands(t.connected_at_end as u64),
                thousands(users as u64)
            ),
            "every socket back",
            &format!("{conditions}; SIGTERM to the last node"),
            Some(all_back),
        ),
        Row::new(
            "presence restart: users announced offline",
            format!("{offline} ({} named offline; {lowest})", t.offline[RESTART].len()),
            "0",
            &format!("{conditions}; counted until the grace + {} s after the last close, and quiet", args.quiet),
            Some(offline == 0),
        ),
        Row::new(
            "presence packets, restart",
            format!(
                "{:.2} per user ({} in all, at most {} to one user)",
                t.per_user(RESTART),
                thousands(t.packets[RESTART]),
                t.max_packets[RESTART]
            ),
            "≤ 10 per user",
            &format!("{conditions}; {}", t.names(RESTART)),
            Some(t.per_user(RESTART) <= PACKETS_RESTART),
        ),
    ]
}

fn lists_row(figure: &str, lists: &[Listing], users: usize, conditions: &str) -> Row {
    let value = lists.iter().map(Listing::summary).collect::<Vec<_>>().join("; ");
    let whole = !lists.is_empty() && lists.iter().all(|l| l.whole(users));
    Row::new(
        figure,
        value,
        &format!("every list whole ({})", thousands(users as u64)),
        &format!("{conditions}; GET /api/presence and presence:list on each node, directly"),
        Some(whole),
    )
}
