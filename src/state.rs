//! The state every handler shares, below the transports: `http/` and
//! `socket/` import it from here, never from the crate root.

use std::collections::HashMap;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Verifier;
use crate::config::Config;
use crate::event::TypeFilter;
use crate::feed::Feed;
use crate::schemas::Schemas;
use crate::socket::Roster;
use crate::socket::adapter::AdapterHealth;
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
    /// The event type catalog appends are checked against (reloaded on SIGHUP).
    pub schemas: Arc<Schemas>,
    /// Who is online, read through the Socket.IO adapter (bound once it is built).
    pub roster: Roster,
    pub metrics: PrometheusHandle,
    /// Whether the Socket.IO adapter hears the other nodes (always, alone).
    pub adapter: AdapterHealth,
    /// Cancelled when shutdown begins: long-polls, SSE streams, replays and
    /// the background tasks end; the appender commits what is queued first.
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
