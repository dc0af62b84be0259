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
pub mod schemas;
pub mod serve;
pub mod socket;
pub mod state;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Verifier;
use crate::config::{Config, Origins};
use crate::error::Error;
use crate::feed::Feed;
use crate::socket::adapter::AdapterHealth;
use crate::state::{App, AppState};
use crate::store::{Appender, Store};

/// A server ready to run: the router and what shutdown must close.
pub struct Server {
    pub state: AppState,
    router: Router,
    close_sockets: socket::CloseSockets,
}

/// Opens the store (PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file), starts the tailer and the appender, and builds the routes.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let verifier = Verifier::from_config(&config.jwt)?;
    let namespaces = config.namespaces().map_err(|e| anyhow::anyhow!("EVENTFEED_NAMESPACES: {e}"))?;
    let schemas = schemas::Schemas::load(config.schemas.dir.clone(), config.schemas.closed)
        .map_err(|e| anyhow::anyhow!("EVENTFEED_SCHEMAS: {e}"))?;
    let store = store::open(&config.store).await?;
    let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
    let appender = Appender::start(store.clone(), &shutdown, &tasks);
    let feed = Feed::start(store.clone(), &shutdown, &tasks).await;
    let feed = feed.map_err(|e| anyhow::anyhow!("cannot read the store: {e}"))?;
    if let Some(keep) = config.retention {
        tasks.spawn(shutdown.clone().run_until_cancelled_owned(prune_forever(store.clone(), keep)));
    }
    let schemas = schemas::start(schemas, &store, &shutdown, &tasks);
    let filters: HashMap<_, _> = namespaces.iter().map(|ns| (ns.path.clone(), ns.default_types.clone())).collect();
    let state = Arc::new(App {
        store: store.clone(),
        appender,
        verifier: Arc::new(verifier),
        config: Arc::new(config),
        feed,
        schemas,
        roster: socket::Roster::default(),
        metrics: metrics::handle(),
        adapter: AdapterHealth::default(),
        shutdown,
        tasks,
        namespaces: Arc::new(filters),
    });

    let api = http::router().with_state(state.clone());
    let (router, close_sockets) = socket::serve(api, &state, &namespaces).await?;
    let router = router
        .layer(axum::middleware::from_fn(serve::limit_headers))
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(metrics::trace_layer())
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024 + 2 * state.config.max_event_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_socket_origin))
        .layer(cors(state.config.cors_origins.as_ref()));
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

/// CORS for the HTTP API and Socket.IO's polling transport. The allowed
/// headers are named: the Fetch standard does not let `*` cover `Authorization`.
fn cors(origins: Option<&Origins>) -> CorsLayer {
    let headers = [header::AUTHORIZATION, header::CONTENT_TYPE, IDEMPOTENCY_KEY, LAST_EVENT_ID];
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(headers)
        .max_age(Duration::from_secs(3600));
    match origins {
        None => CorsLayer::new(),
        Some(Origins::Any) => layer.allow_origin(AllowOrigin::any()),
        Some(list @ Origins::List(_)) => {
            let list = list.clone();
            layer.allow_origin(AllowOrigin::predicate(move |origin, _| origin.to_str().is_ok_and(|o| list.allows(o))))
        }
    }
}

/// How long shutdown waits for the background tasks. Store calls have their
/// own bound, so this is only reached if the store stops answering.
const TASKS_BOUND: Duration = Duration::from_secs(10);

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// With allowed origins configured, a browser page from any other origin
/// cannot open a Socket.IO connection either: WebSocket handshakes are not
/// subject to CORS, so the `Origin` header is checked here, for both transports.
async fn check_socket_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let refused = match (&state.config.cors_origins, req.headers().get(header::ORIGIN)) {
        (Some(allowed), Some(origin)) if req.uri().path().starts_with("/socket.io/") => {
            !origin.to_str().is_ok_and(|o| allowed.allows(o))
        }
        _ => false,
    };
    if refused {
        return Error::Forbidden("this origin is not in EVENTFEED_CORS_ORIGINS".into()).into_response();
    }
    next.run(req).await
}

/// Serves until `shutdown` resolves; then closes the sockets, lets HTTP
/// requests drain, waits for the tailer, the pruner and the appender's last
/// commits, and closes the store.
pub async fn run(
    listener: TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Server { state, router, close_sockets } = server;
    let stopping = state.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down");
        stopping.shutdown.cancel();
        close_sockets().await;
        stopping.roster.unbind();
    };
    serve::serve(listener, router, graceful).await;
    state.tasks.close();
    if tokio::time::timeout(TASKS_BOUND, state.tasks.wait()).await.is_err() {
        tracing::warn!("background tasks still running after {TASKS_BOUND:?}; closing the store under them");
    }
    state.store.close().await;
    Ok(())
}
