//! eventfeed: a durable event store with a realtime Socket.IO feed that
//! clients can replay. `build` assembles the server from its config, `run`
//! serves it on a bound listener until shutdown.

pub mod append;
pub mod auth;
pub mod cli;
pub mod config;
pub mod cursor;
pub mod error;
pub mod event;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod socket;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt as _;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_postgres::{PostgresAdapterCtr, SqlxAdapter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::auth::Verifier;
use crate::config::Config;
use crate::event::TypeFilter;
use crate::feed::Feed;
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
    pub metrics: PrometheusHandle,
    /// Cancelled when shutdown begins: long-polls and SSE streams end.
    pub shutdown: CancellationToken,
    namespaces: Arc<HashMap<String, TypeFilter>>,
}

impl App {
    /// The default type filter of a namespace.
    pub fn namespace_filter(&self, path: &str) -> TypeFilter {
        self.namespaces.get(path).cloned().unwrap_or_default()
    }
}

/// Stops every socket (so HTTP can drain), used at shutdown.
type CloseSockets = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// A server ready to run: the router and what shutdown must close.
pub struct Server {
    pub state: AppState,
    router: Router,
    close_sockets: CloseSockets,
}

/// Opens the store (PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file), starts the tailer and the appender, and builds the routes.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let verifier = Verifier::from_config(&config.jwt)?;
    let namespaces = config.namespaces().map_err(|e| anyhow::anyhow!("EVENTFEED_NAMESPACES: {e}"))?;
    let store = store::open(&config).await?;
    // Batches committing at once: PostgreSQL runs them side by side; SQLite has one writer.
    let appender = Appender::start(store.clone(), if matches!(store, Store::Postgres(_)) { 4 } else { 1 });
    let feed = Feed::start(store.clone()).await.map_err(|e| anyhow::anyhow!("cannot read the store: {e}"))?;
    if let Some(keep) = config.retention {
        tokio::spawn(prune_forever(store.clone(), keep));
    }
    let filters: HashMap<_, _> = namespaces.iter().map(|ns| (ns.path.clone(), ns.default_types.clone())).collect();
    let state = Arc::new(App {
        store: store.clone(),
        appender,
        verifier: Arc::new(verifier),
        config: Arc::new(config),
        feed,
        metrics: metrics::handle(),
        shutdown: CancellationToken::new(),
        namespaces: Arc::new(filters),
    });

    // A socket message may carry one event at the size limit, plus its envelope.
    let max_message = state.config.max_event_bytes + 64 * 1024;
    let builder = SocketIo::builder()
        .with_state(state.clone())
        .max_buffer_size(1024)
        .max_payload(max_message as u64)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message);
    let api = http::router().with_state(state.clone());
    let (router, close_sockets) = match &store {
        Store::Postgres(pg) => {
            let adapter = PostgresAdapterCtr::new_with_sqlx(pg.adapter_pool());
            let (layer, io) = builder.with_adapter::<SqlxAdapter<_>>(adapter).build_layer();
            for init in socket::attach(&io, &namespaces) {
                init.await.context("cannot start the PostgreSQL socket adapter")?;
            }
            (api.layer(layer), closer(io))
        }
        _ => {
            let (layer, io) = builder.build_layer();
            socket::attach(&io, &namespaces);
            (api.layer(layer), closer(io))
        }
    };
    let router = router
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024 + 2 * state.config.max_event_bytes))
        .layer(cors(state.config.cors_origins.as_deref())?);
    Ok(Server { state, router, close_sockets })
}

/// Deletes events older than the retention period, a bounded chunk at a
/// time, every minute. Readers behind the deleted ones get a reset.
async fn prune_forever(store: Store, keep: Duration) {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let before = chrono::Utc::now() - keep;
        loop {
            match store.prune(before).await {
                Ok(0) => break,
                Ok(n) => ::metrics::counter!("eventfeed_pruned_events_total").increment(n),
                Err(e) => {
                    tracing::warn!(error = %e, "retention pruning failed; retrying in a minute");
                    break;
                }
            }
        }
    }
}

fn closer<A: Adapter>(io: SocketIo<A>) -> CloseSockets {
    Box::new(move || Box::pin(async move { io.close().await }))
}

fn cors(origins: Option<&str>) -> anyhow::Result<CorsLayer> {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any).max_age(Duration::from_secs(3600));
    Ok(match origins.map(str::trim) {
        None | Some("") => CorsLayer::new(),
        Some("*") => layer.allow_origin(Any),
        Some(list) => {
            let origins = list
                .split(',')
                .map(|o| o.trim().parse().with_context(|| format!("EVENTFEED_CORS_ORIGINS: {o:?} is not an origin")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            layer.allow_origin(AllowOrigin::list(origins))
        }
    })
}

/// Serves until `shutdown` resolves; then closes the sockets, lets HTTP
/// requests drain, stops the tailer and closes the store.
pub async fn run(
    listener: TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Server { state, router, close_sockets } = server;
    let stopping = state.shutdown.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down");
        stopping.cancel();
        close_sockets().await;
    };
    // Live delivery writes each socket once per tailer read; Nagle's algorithm
    // would hold such a write back until the client acknowledges the last one.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, router).with_graceful_shutdown(graceful).await;
    state.feed.stop();
    state.store.close().await;
    served.context("the HTTP server failed")
}
