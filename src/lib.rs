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
pub mod presence;
pub mod schemas;
pub mod serve;
pub mod socket;
pub mod state;
pub mod stats;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures::{Stream, StreamExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Verifier;
use crate::config::{Config, Origins};
use crate::error::Error;
use crate::feed::Feed;
use crate::presence::{Presence, Settings};
use crate::state::{AdapterHealth, App, AppState};
use crate::store::{Appender, Store};

/// A server ready to run: the router and what shutdown must close.
pub struct Server {
    pub state: AppState,
    router: Router,
    close_sockets: socket::CloseSockets,
    /// Cancelled once no request can arrive any more: the appender commits
    /// what it has and ends.
    commits: CancellationToken,
}

/// Opens the store (PostgreSQL when `DATABASE_URL` is set, else the embedded
/// file), starts the tailer and the appender, and builds the routes.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let verifier = Verifier::from_config(&config.jwt)?;
    let namespaces = config.namespaces().map_err(|e| anyhow::anyhow!("EVENTFEED_NAMESPACES: {e}"))?;
    let schemas = schemas::Schemas::load(config.schemas.dir.clone(), config.schemas.closed)
        .map_err(|e| anyhow::anyhow!("EVENTFEED_SCHEMAS: {e}"))?;
    let store = store::open(&config.store).await?;
    let (shutdown, commits, tasks) = (CancellationToken::new(), CancellationToken::new(), TaskTracker::new());
    let appender = Appender::start(store.clone(), &commits, &tasks);
    let feed = Feed::start(store.clone(), &shutdown, &tasks).await;
    let feed = feed.map_err(|e| anyhow::anyhow!("cannot read the store: {e}"))?;
    let stats = stats::Stats::start(store.clone(), &shutdown, &tasks);
    if let Some(keep) = config.retention {
        tasks.spawn(shutdown.clone().run_until_cancelled_owned(prune_forever(store.clone(), keep)));
    }
    let settings = Settings { grace: config.presence_grace, list_max: config.presence_list_max };
    let presence = match store.shared_bus() {
        Some(bus) => Presence::shared(settings, bus, &shutdown, &tasks),
        None => Presence::alone(settings),
    };
    let schemas = schemas::start(schemas, &store, &shutdown, &tasks);
    let filters: HashMap<_, _> = namespaces.iter().map(|ns| (ns.path.clone(), ns.default_types.clone())).collect();
    let state = Arc::new(App {
        store: store.clone(),
        appender,
        verifier: Arc::new(verifier),
        config: Arc::new(config),
        feed,
        presence,
        schemas,
        metrics: metrics::handle(),
        stats,
        adapter: AdapterHealth::default(),
        draining: CancellationToken::new(),
        shutdown,
        tasks,
        namespaces: Arc::new(filters),
    });

    let api = http::router().with_state(state.clone());
    let (router, close_sockets) = socket::serve(api, &state, &namespaces).await?;
    let router = router
        .layer(axum::middleware::from_fn(serve::limit_headers))
        .layer(axum::middleware::from_fn(serve::detach_head))
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(metrics::trace_layer())
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024 + 2 * state.config.max_event_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard_socket_io))
        .layer(cors(state.config.cors_origins.as_ref()));
    Ok(Server { state, router, close_sockets, commits })
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

/// CORS for the HTTP API and Socket.IO's polling transport: the listed
/// origins and the server's own (see [`own_origin`]). The allowed
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
            layer.allow_origin(AllowOrigin::predicate(move |origin, req| {
                origin.to_str().is_ok_and(|o| list.allows(o) || own_origin(o, &req.headers))
            }))
        }
    }
}

/// How long shutdown waits for the background tasks. Store calls have their
/// own bound, so this is only reached if the store stops answering.
const TASKS_BOUND: Duration = Duration::from_secs(10);

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Guards the Socket.IO transports. Once the drain has ended, every request
/// is `unavailable`: a new handshake, or a polling request of a socket about
/// to close, fails at the transport, and socket.io-client retries (through
/// the load balancer, elsewhere), where a Socket.IO refusal would end it.
/// With allowed origins configured, a browser page from any other origin
/// cannot open a Socket.IO connection either: WebSocket handshakes are not
/// subject to CORS, so the `Origin` header is checked here, for both
/// transports. The server's own origin always passes.
async fn guard_socket_io(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.shutdown.is_cancelled() && req.uri().path().starts_with("/socket.io/") {
        return Error::Unavailable("this node is stopping; connect to another".into()).into_response();
    }
    let refused = match (&state.config.cors_origins, req.headers().get(header::ORIGIN)) {
        (Some(allowed), Some(origin)) if req.uri().path().starts_with("/socket.io/") => {
            !origin.to_str().is_ok_and(|o| allowed.allows(o) || own_origin(o, req.headers()))
        }
        _ => false,
    };
    if refused {
        return Error::Forbidden("this origin is not in EVENTFEED_CORS_ORIGINS".into()).into_response();
    }
    next.run(req).await
}

/// Whether `origin` is the server's own, the one the request was sent to
/// (its `Host`): pages the server serves, and clients that send their target
/// URL as `Origin` (python-socketio over WebSocket does). The scheme is not
/// compared, as a proxy in front may terminate TLS; a default port may be
/// written or left out on either side.
fn own_origin(origin: &str, headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin = origin.to_ascii_lowercase();
    let (scheme, authority) = match origin.split_once("://") {
        Some(("http", rest)) => ("http", rest),
        Some(("https", rest)) => ("https", rest),
        _ => return false,
    };
    let bare = |a: &str| {
        let default = if scheme == "https" { ":443" } else { ":80" };
        a.strip_suffix(default).unwrap_or(a).to_ascii_lowercase()
    };
    !authority.is_empty() && bare(authority) == bare(host)
}

/// Serves until the first of `signals`; then drains (see [`stop`]) and
/// closes the store.
pub async fn run(
    listener: TcpListener,
    server: Server,
    signals: impl Stream<Item = ()> + Send + Unpin + 'static,
) -> anyhow::Result<()> {
    let Server { state, router, close_sockets, commits } = server;
    let (stopping, in_flight) = (state.clone(), InFlight::default());
    let router = router.layer(axum::middleware::from_fn_with_state(in_flight.clone(), InFlight::count));
    let (report_tx, report_rx) = tokio::sync::oneshot::channel();
    let graceful = async move {
        let _ = report_tx.send(stop(&stopping, signals, &in_flight).await);
    };
    // Once the server no longer accepts: clients reconnect elsewhere.
    let sockets = serve::serve(listener, router, graceful, close_sockets()).await;
    commits.cancel();
    state.tasks.close();
    if tokio::time::timeout(TASKS_BOUND, state.tasks.wait()).await.is_err() {
        tracing::warn!("background tasks still running after {TASKS_BOUND:?}; closing the store under them");
    }
    state.presence.leave_cluster().await;
    state.store.close().await;
    if let Ok(Report { appends_before, requests }) = report_rx.await {
        let appends = state.appender.answered() - appends_before;
        tracing::info!(
            requests,
            appends,
            sockets,
            "stopped: answered the requests in flight and the appends since the drain ended, and closed the sockets"
        );
    }
    Ok(())
}

/// What the stop finished, for its log line.
struct Report {
    appends_before: u64,
    requests: usize,
}

/// The graceful stop, up to the moment the server stops accepting. At the
/// first signal `/ready` turns 503 and the node keeps serving for the drain
/// (a second signal ends it early); then long-polls and SSE streams get
/// their normal end. [`run`] then closes the sockets at the Engine.IO level
/// (clients reconnect to another node at once) and answers every request
/// it has received: appends are committed until the last response is out.
async fn stop(state: &AppState, mut signals: impl Stream<Item = ()> + Unpin, in_flight: &InFlight) -> Report {
    if signals.next().await.is_none() {
        std::future::pending::<()>().await;
    }
    let drain = state.config.drain;
    tracing::info!(?drain, "stop signal: /ready answers 503; draining");
    state.draining.cancel();
    if !drain.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            Some(()) = signals.next() => tracing::info!("second stop signal: ending the drain"),
        }
    }
    state.shutdown.cancel();
    Report { appends_before: state.appender.answered(), requests: in_flight.now() }
}

/// Requests being answered, for the stop's report.
#[derive(Clone, Default)]
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn now(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn count(State(me): State<InFlight>, req: Request, next: Next) -> Response {
        me.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _done = Answered(me);
        next.run(req).await
    }
}

/// Counts a request out however it ends, a client that went away included.
struct Answered(InFlight);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
