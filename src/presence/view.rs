//! The cluster's presence as one node sees it: every node's entries (a
//! user's socket count on that node), their sum per user, and what this
//! node's sockets have been told.
//!
//! Each node owns its entries and publishes them as absolute counts, so
//! applying an update twice, or an old one after a full copy, changes
//! nothing: every node that has seen the same updates holds the same view,
//! whatever the order they came in. Dropping a node drops its entries whole.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A node of the cluster, named at its start.
pub type NodeId = Uuid;

/// A user of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub tenant: String,
    pub user: String,
}

/// One node's sockets of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub username: Option<String>,
    pub connections: u32,
}

/// A user online in a tenant: the cluster-wide sum of its entries.
#[derive(Clone, Debug, Default)]
struct User {
    username: Option<String>,
    connections: u32,
    /// When its last socket closed, until it is announced as gone.
    gone_since: Option<Instant>,
    /// Whether this node's sockets were told it is online.
    announced: bool,
}

#[derive(Default)]
struct Tenant {
    users: HashMap<String, User>,
    /// Users announced online: the `online` of the tenant's diffs.
    announced: usize,
}

/// What changed in one tenant since its last diff, net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub tenant: String,
    /// Users announced online after this diff.
    pub online: usize,
    /// `(userId, username)` of each user now online.
    pub joins: Vec<(String, Option<String>)>,
    /// `(userId, username)` of each user gone (past the grace).
    pub leaves: Vec<(String, Option<String>)>,
}

#[derive(Default)]
pub struct View {
    nodes: HashMap<NodeId, HashMap<Key, Entry>>,
    tenants: HashMap<String, Tenant>,
    /// Tenants whose next diff may not be empty.
    pending: HashSet<String>,
}

impl View {
    /// Sets one node's entry for `key` (`connections` 0 removes it).
    pub fn set(&mut self, node: NodeId, key: Key, entry: Entry, now: Instant) {
        let entries = self.nodes.entry(node).or_default();
        let old = match entry.connections {
            0 => entries.remove(&key),
            _ => entries.insert(key.clone(), entry.clone()),
        };
        let old = old.map_or(0, |e| e.connections);
        if old == entry.connections {
            return;
        }
        let tenant = self.tenants.entry(key.tenant.clone()).or_default();
        let user = tenant.users.entry(key.user.clone()).or_default();
        user.connections = user.connections + entry.connections - old;
        if entry.connections > 0 {
            user.username = entry.username;
        }
        user.gone_since = (user.connections == 0).then_some(now);
        self.pending.insert(key.tenant);
    }

    /// Replaces everything `node` has with `entries` (a full copy).
    pub fn replace(&mut self, node: NodeId, entries: HashMap<Key, Entry>, now: Instant) {
        let stale: Vec<Key> = self.entries(node).keys().filter(|k| !entries.contains_key(*k)).cloned().collect();
        for key in stale {
            self.set(node, key, Entry { username: None, connections: 0 }, now);
        }
        for (key, entry) in entries {
            self.set(node, key, entry, now);
        }
    }

    /// Drops a node that left or stopped answering.
    pub fn drop_node(&mut self, node: NodeId, now: Instant) {
        self.replace(node, HashMap::new(), now);
        self.nodes.remove(&node);
    }

    pub fn entries(&self, node: NodeId) -> &HashMap<Key, Entry> {
        static EMPTY: std::sync::LazyLock<HashMap<Key, Entry>> = std::sync::LazyLock::new(HashMap::new);
        self.nodes.get(&node).unwrap_or(&EMPTY)
    }

    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    /// The users of `tenant` with a socket, and those announced online
    /// whose last socket closed within the grace (with 0 sockets), by user
    /// id. Whoever a list holds, the diffs after it bring the same news as
    /// to everyone: a join when announced, a leave after the grace.
    pub fn online(&self, tenant: &str) -> Vec<(String, Option<String>, u32)> {
        let Some(t) = self.tenants.get(tenant) else { return Vec::new() };
        let mut users: Vec<_> = t
            .users
            .iter()
            .filter(|(_, u)| u.connections > 0 || u.announced)
            .map(|(id, u)| (id.clone(), u.username.clone(), u.connections))
            .collect();
        users.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        users
    }

    /// The net change of each tenant since its last diff: users online and
    /// not yet announced join; users whose last socket closed at least
    /// `grace` ago leave. A user who left and came back in between is in
    /// neither list. One who came and went before being announced leaves
    /// too: a list may have held them.
    pub fn diffs(&mut self, now: Instant, grace: Duration) -> Vec<Diff> {
        let mut diffs = Vec::new();
        for name in std::mem::take(&mut self.pending) {
            let Some(tenant) = self.tenants.get_mut(&name) else { continue };
            let (mut joins, mut leaves, mut waiting, mut gone) = (Vec::new(), Vec::new(), false, 0);
            tenant.users.retain(|id, user| {
                if user.connections > 0 && !user.announced {
                    user.announced = true;
                    joins.push((id.clone(), user.username.clone()));
                }
                match user.gone_since {
                    Some(since) if now.duration_since(since) >= grace => {
                        leaves.push((id.clone(), user.username.clone()));
                        gone += usize::from(user.announced);
                        return false;
                    }
                    Some(_) => waiting = true,
                    None => {}
                }
                true
            });
            tenant.announced = tenant.announced + joins.len() - gone;
            let online = tenant.announced;
            if tenant.users.is_empty() {
                self.tenants.remove(&name);
            }
            if waiting {
                self.pending.insert(name.clone());
            }
            if !joins.is_empty() || !leaves.is_empty() {
                joins.sort_unstable();
                leaves.sort_unstable();
                diffs.push(Diff { tenant: name, online, joins, leaves });
            }
        }
        diffs
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
