//! The state every handler shares, below the transports: `http/` and
//! `socket/` import it from here, never from the crate root.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Verifier;
use crate::config::Config;
use crate::event::TypeFilter;
use crate::feed::Feed;
use crate::presence::Presence;
use crate::schemas::Schemas;
use crate::stats::Stats;
use crate::store::{Appender, Store};

/// Everything a handler needs. Handlers and middleware clone it per request,
/// so it is one `Arc`, not a struct of many.
pub type AppState = Arc<App>;

pub struct App {
    pub store: Store,
    pub appender: Appender,
    pub verifier: Arc<Verifier>,
    pub config: Arc<Config>,
    pub feed: Feed,
    /// Who is online in each tenant, across the cluster.
    pub presence: Presence,
    /// The event type catalog appends are checked against (reloaded on SIGHUP).
    pub schemas: Arc<Schemas>,
    pub metrics: PrometheusHandle,
    /// This node's per-second samples, and the other nodes' through the store.
    pub stats: Stats,
    /// Whether the Socket.IO adapter hears the other nodes (always, alone).
    pub adapter: AdapterHealth,
    /// Cancelled at the first SIGTERM: `/ready` answers 503 while the node
    /// drains.
    pub draining: CancellationToken,
    /// Cancelled when the drain ends: long-polls and SSE streams answer,
    /// replays, the tailer and the pruner stop. Appends already received
    /// are still committed.
    pub shutdown: CancellationToken,
    /// The tailer, the pruner and the appender: shutdown waits for them.
    pub tasks: TaskTracker,
    pub(crate) namespaces: Arc<HashMap<String, TypeFilter>>,
}

impl App {
    /// The default type filter of a namespace.
    pub fn namespace_filter(&self, path: &str) -> TypeFilter {
        self.namespaces.get(path).cloned().unwrap_or_default()
    }
}

/// Whether every Socket.IO adapter stream is listening (for `/ready`).
#[derive(Clone, Default)]
pub struct AdapterHealth {
    down: Arc<AtomicUsize>,
}

impl AdapterHealth {
    pub fn is_listening(&self) -> bool {
        self.down.load(Ordering::Relaxed) == 0
    }

    /// One stream stopped listening.
    pub fn lost(&self) {
        self.down.fetch_add(1, Ordering::Relaxed);
    }

    /// A stream that stopped listens again.
    pub fn regained(&self) {
        self.down.fetch_sub(1, Ordering::Relaxed);
    }
}
