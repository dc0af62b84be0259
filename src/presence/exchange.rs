//! How nodes share presence through PostgreSQL: no other service, and no
//! question to every node at each connect.
//!
//! Each node has a row in `presence_nodes` (its last published sequence
//! number and its heartbeat) and one row per user in `presence` (its socket
//! count, 0 once the user left, stamped with the sequence number that wrote
//! it). Five times a second a node publishes what changed; at least once a
//! second it beats; twice a second it reads the other nodes' rows newer
//! than what it has. A node whose heartbeat is older than [`EXPIRE`] is
//! dropped; one that leaves says goodbye by deleting its rows.
//!
//! Zero counts are kept for a while so readers see users leave; older ones
//! are deleted and the node's `floor` raised past them, and a reader whose
//! copy is older than the floor reads the node whole again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};
use tokio::time::error::Elapsed;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Presence;
use super::view::{Entry, Key, NodeId};

/// How often changes go out.
const PUBLISH: Duration = Duration::from_millis(200);
/// How often the other nodes are read.
const READ: Duration = Duration::from_millis(500);
/// Longest time between two heartbeats.
const BEAT: Duration = Duration::from_secs(1);
/// A node silent this long is dropped from the view.
const EXPIRE: Duration = Duration::from_secs(8);
/// How often old zero counts and long-dead nodes are cleared.
const SWEEP: Duration = Duration::from_secs(30);
/// Every database call is bounded by this; past it the pool is replaced
/// (its connection may be half-open).
const BOUND: Duration = Duration::from_secs(3);

pub(super) fn start(presence: Presence, shutdown: &CancellationToken, tasks: &TaskTracker) {
    let Some(options) = presence.inner.database.clone() else { return };
    let exchange = Exchange {
        pool: pool(&options),
        options,
        presence,
        seq: 0,
        known: HashMap::new(),
        healthy_since: None,
        beat_at: None,
        read_at: None,
        swept: (Instant::now(), 0),
    };
    tasks.spawn(shutdown.clone().run_until_cancelled_owned(exchange.run()));
}

/// Deletes this node's rows, bounded: a database that does not answer
/// leaves them to expire.
pub(super) async fn goodbye(node: NodeId, options: &PgConnectOptions) {
    let bye = async {
        let mut conn = PgConnection::connect_with(options).await?;
        sqlx::query("DELETE FROM eventfeed.presence_nodes WHERE node = $1").bind(node).execute(&mut conn).await?;
        conn.close().await
    };
    match timeout(BOUND, bye).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot tell the other nodes this one leaves; they will expire it"),
        Err(_) => tracing::warn!("the database did not answer the goodbye; the other nodes will expire this one"),
    }
}

fn pool(options: &PgConnectOptions) -> PgPool {
    PgPoolOptions::new().max_connections(2).acquire_timeout(Duration::from_secs(2)).connect_lazy_with(options.clone())
}

struct Exchange {
    presence: Presence,
    options: PgConnectOptions,
    pool: PgPool,
    /// This node's last published sequence number.
    seq: i64,
    /// Each other node's sequence number as of this node's last read of it.
    known: HashMap<NodeId, i64>,
    /// Since when every read has worked: nodes are only expired after a
    /// stretch of working reads, or a database outage would expire them all.
    healthy_since: Option<Instant>,
    beat_at: Option<Instant>,
    read_at: Option<Instant>,
    /// When the last sweep ran, and the sequence number published then.
    swept: (Instant, i64),
}

impl Exchange {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(PUBLISH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let published = timeout(BOUND, self.publish()).await;
            let published = self.settle("publish", published);
            if self.read_at.is_none_or(|at| at.elapsed() >= READ) {
                let read = timeout(BOUND, self.read()).await;
                let read = self.settle("read", read);
                self.read_at = Some(Instant::now());
                self.healthy_since = match read && published {
                    true => self.healthy_since.or(Some(Instant::now())),
                    false => None,
                };
            }
            if self.swept.0.elapsed() >= SWEEP {
                let swept = timeout(BOUND, self.sweep()).await;
                self.settle("sweep", swept);
            }
        }
    }

    /// Whether a step worked. A failure is retried at the next tick; a step
    /// that did not answer in time replaces the pool, whose connection may
    /// be half-open.
    fn settle(&mut self, what: &'static str, outcome: Result<sqlx::Result<()>, Elapsed>) -> bool {
        match outcome {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, what, "presence exchange failed; retrying");
                false
            }
            Err(_) => {
                tracing::warn!(what, "presence exchange did not answer; reconnecting");
                let stale = std::mem::replace(&mut self.pool, pool(&self.options));
                tokio::spawn(async move { stale.close().await });
                false
            }
        }
    }

    /// Publishes this node's changed counts, or beats when there are none.
    async fn publish(&mut self) -> sqlx::Result<()> {
        let node = self.presence.inner.node;
        let changed: Vec<Key> = std::mem::take(&mut self.presence.state().unpublished).into_iter().collect();
        if changed.is_empty() && self.beat_at.is_some_and(|at| at.elapsed() < BEAT) {
            return Ok(());
        }
        let outcome = self.write(node, &changed).await;
        if outcome.is_err() {
            self.presence.state().unpublished.extend(changed);
        }
        outcome
    }

    async fn write(&mut self, node: NodeId, changed: &[Key]) -> sqlx::Result<()> {
        let seq = self.seq + 1;
        let mut tx = self.pool.begin().await?;
        let created: bool = sqlx::query_scalar(
            "INSERT INTO eventfeed.presence_nodes (node, seq) VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, beat = now() RETURNING xmax = 0",
        )
        .bind(node)
        .bind(seq)
        .fetch_one(&mut *tx)
        .await?;
        // A node row that was missing (the first write, or swept while this
        // node could not reach the database) needs every entry again.
        let rows: Vec<(Key, Entry)> = {
            let state = self.presence.state();
            let entries = state.view.entries(node);
            let zero = Entry { username: None, connections: 0 };
            match created {
                true => entries.iter().map(|(k, e)| (k.clone(), e.clone())).collect(),
                false => changed.iter().map(|k| (k.clone(), entries.get(k).unwrap_or(&zero).clone())).collect(),
            }
        };
        if !rows.is_empty() {
            let (tenants, users): (Vec<&str>, Vec<&str>) =
                rows.iter().map(|(k, _)| (k.tenant.as_str(), k.user.as_str())).unzip();
            let names: Vec<Option<&str>> = rows.iter().map(|(_, e)| e.username.as_deref()).collect();
            let counts: Vec<i32> = rows.iter().map(|(_, e)| e.connections as i32).collect();
            sqlx::query(
                "INSERT INTO eventfeed.presence (node, tenant_id, user_id, username, connections, seq) \
                 SELECT $1, t, u, n, c, $2 FROM unnest($3::text[], $4::text[], $5::text[], $6::int[]) AS r(t, u, n, c) \
                 ON CONFLICT (node, tenant_id, user_id) DO UPDATE \
                 SET username = excluded.username, connections = excluded.connections, seq = excluded.seq",
            )
            .bind(node)
            .bind(seq)
            .bind(tenants)
            .bind(users)
            .bind(names)
            .bind(counts)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.seq = seq;
        self.beat_at = Some(Instant::now());
        Ok(())
    }

    /// Merges what the other nodes published since the last read, in one
    /// snapshot; drops nodes that left or stopped beating.
    async fn read(&mut self) -> sqlx::Result<()> {
        let me = self.presence.inner.node;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let nodes = sqlx::query(
            "SELECT node, seq, floor, extract(epoch FROM now() - beat)::float8 AS age \
             FROM eventfeed.presence_nodes WHERE node <> $1",
        )
        .bind(me)
        .fetch_all(&mut *tx)
        .await?;
        let expiring = self.healthy_since.is_some_and(|since| since.elapsed() >= EXPIRE);
        let mut alive = Vec::new();
        for row in nodes {
            let (node, seq, floor, age): (NodeId, i64, i64, f64) =
                (row.try_get("node")?, row.try_get("seq")?, row.try_get("floor")?, row.try_get("age")?);
            if expiring && age > EXPIRE.as_secs_f64() {
                continue;
            }
            alive.push(node);
            let have = self.known.get(&node).copied();
            let whole = have.is_none_or(|have| have < floor);
            if !whole && have >= Some(seq) {
                continue;
            }
            let rows = sqlx::query(
                "SELECT tenant_id, user_id, username, connections FROM eventfeed.presence \
                 WHERE node = $1 AND seq > $2 AND (connections > 0 OR NOT $3)",
            )
            .bind(node)
            .bind(if whole { 0 } else { have.unwrap_or(0) })
            .bind(whole)
            .fetch_all(&mut *tx)
            .await?;
            let mut entries = HashMap::with_capacity(rows.len());
            for row in rows {
                let key = Key { tenant: row.try_get("tenant_id")?, user: row.try_get("user_id")? };
                let connections: i32 = row.try_get("connections")?;
                entries.insert(key, Entry { username: row.try_get("username")?, connections: connections as u32 });
            }
            let now = Instant::now();
            let mut state = self.presence.state();
            match whole {
                true => state.view.replace(node, entries, now),
                false => entries.into_iter().for_each(|(k, e)| state.view.set(node, k, e, now)),
            }
            self.known.insert(node, seq);
        }
        tx.commit().await?;
        self.forget_all_but(&alive);
        Ok(())
    }

    /// Drops every other node not in `alive` from the view.
    fn forget_all_but(&mut self, alive: &[NodeId]) {
        let me = self.presence.inner.node;
        let now = Instant::now();
        let mut state = self.presence.state();
        let gone: Vec<NodeId> = state.view.nodes().filter(|n| *n != me && !alive.contains(n)).collect();
        for node in gone {
            tracing::info!(%node, "a node left the cluster's presence");
            state.view.drop_node(node, now);
        }
        self.known.retain(|node, _| alive.contains(node));
    }

    /// Deletes nodes dead for a minute, and this node's zero counts older
    /// than the last sweep (raising its floor past them).
    async fn sweep(&mut self) -> sqlx::Result<()> {
        let (node, floor) = (self.presence.inner.node, self.swept.1);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM eventfeed.presence_nodes WHERE beat < now() - interval '60 seconds'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE eventfeed.presence_nodes SET floor = $2 WHERE node = $1")
            .bind(node)
            .bind(floor)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM eventfeed.presence WHERE node = $1 AND connections = 0 AND seq <= $2")
            .bind(node)
            .bind(floor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.swept = (Instant::now(), self.seq);
        Ok(())
    }
}
