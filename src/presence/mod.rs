//! Who is online in each tenant, across every node, at a cost that grows
//! with the changes and not with the square of the users.
//!
//! Each node counts its own sockets per user, publishes changes to the
//! others through the database it already uses (see [`exchange`]) and merges
//! theirs into its [`View`]. Lists are answered from that view without asking
//! anyone. Once a second the socket layer takes each tenant's net change
//! ([`Presence::diffs`]) and tells its own sockets; a user whose last socket
//! closed is only announced gone once the grace has passed without a socket
//! of theirs anywhere, so a reconnect to another node is invisible.

mod exchange;
pub mod view;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use view::Diff;
use view::{Entry, Key, NodeId, View};

/// How presence behaves, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long a user whose last socket closed stays announced as online.
    pub grace: Duration,
    /// Above this many users online in a tenant, diffs carry only the count.
    pub list_max: usize,
}

/// One user online in a tenant, cluster-wide.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Online {
    pub user_id: String,
    pub username: Option<String>,
    pub connections: usize,
}

/// The presence of the cluster as this node sees it. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    settings: Settings,
    state: Mutex<State>,
    /// Where the other nodes are, when there are any (PostgreSQL).
    database: Option<PgConnectOptions>,
}

#[derive(Default)]
struct State {
    view: View,
    /// This node's users whose count changed since it last published.
    unpublished: HashSet<Key>,
}

impl Presence {
    /// Presence for a process alone (the embedded store).
    pub fn alone(settings: Settings) -> Self {
        Self::new(settings, None)
    }

    /// Presence shared with every node on this PostgreSQL database: a task
    /// on `tasks` publishes and merges until `shutdown`.
    pub fn shared(
        settings: Settings,
        database: PgConnectOptions,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) -> Self {
        let presence = Self::new(settings, Some(database.application_name("eventfeed-presence")));
        exchange::start(presence.clone(), shutdown, tasks);
        presence
    }

    fn new(settings: Settings, database: Option<PgConnectOptions>) -> Self {
        let node = uuid::Uuid::new_v4();
        Presence { inner: Arc::new(Inner { node, settings, state: Mutex::default(), database }) }
    }

    pub fn settings(&self) -> Settings {
        self.inner.settings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A socket of this user connected to this node.
    pub fn join(&self, tenant: &str, user: &str, username: Option<&str>) {
        self.count(tenant, user, username, |n| n + 1);
    }

    /// A socket of this user closed on this node.
    pub fn leave(&self, tenant: &str, user: &str) {
        self.count(tenant, user, None, |n| n.saturating_sub(1));
    }

    fn count(&self, tenant: &str, user: &str, username: Option<&str>, change: impl Fn(u32) -> u32) {
        let key = Key { tenant: tenant.to_owned(), user: user.to_owned() };
        let node = self.inner.node;
        let mut state = self.state();
        let old = state.view.entries(node).get(&key).cloned();
        let username = username.map(str::to_owned).or_else(|| old.as_ref().and_then(|e| e.username.clone()));
        let connections = change(old.map_or(0, |e| e.connections));
        state.view.set(node, key.clone(), Entry { username, connections }, Instant::now());
        state.unpublished.insert(key);
    }

    /// Everyone in `tenant` with a socket on any node, and those announced
    /// online whose last socket closed within the grace, by user id (see
    /// [`View::online`]).
    pub fn online(&self, tenant: &str) -> Vec<Online> {
        let users = self.state().view.online(tenant);
        users.into_iter().map(|(user_id, username, n)| Online { user_id, username, connections: n as usize }).collect()
    }

    /// Each tenant's net change since the last call.
    pub fn diffs(&self) -> Vec<Diff> {
        let grace = self.inner.settings.grace;
        self.state().view.diffs(Instant::now(), grace)
    }

    /// Tells the other nodes this one is gone, so they need not wait for
    /// its heartbeat to stop. Its users are announced gone only if they are
    /// not back elsewhere within the grace.
    pub async fn leave_cluster(&self) {
        if let Some(database) = &self.inner.database {
            exchange::goodbye(self.inner.node, database).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_of_one_user_count_together() {
        let p = Presence::alone(Settings { grace: Duration::ZERO, list_max: 200 });
        p.join("acme", "u1", Some("Ann"));
        p.join("acme", "u1", None);
        p.join("other", "u2", Some("Bo"));
        let online = p.online("acme");
        assert_eq!(online, vec![Online { user_id: "u1".into(), username: Some("Ann".into()), connections: 2 }]);
        assert_eq!(p.diffs().len(), 2);
        p.leave("acme", "u1");
        assert_eq!(p.online("acme")[0].connections, 1);
        p.leave("acme", "u1");
        let mut tenants: Vec<_> = p.diffs().into_iter().map(|d| (d.tenant, d.online)).collect();
        tenants.sort();
        assert_eq!(tenants, vec![("acme".to_owned(), 0)]);
        assert!(p.online("acme").is_empty());
        assert_eq!(p.online("other").iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), ["u2"]);
    }
}
