//! The HTTP server loop: accepts connections and serves the router on each,
//! with limits that `axum::serve` does not offer. A client must finish its
//! request headers within [`HEADER_TIMEOUT`], on a new connection and on an
//! idle kept-alive one alike, so connections that trickle bytes or sit idle
//! cannot hold the process's file descriptors (slowloris).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::error::Error;

/// Time a client has to send a request's headers, and to start the next
/// request on a kept-alive connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most request headers, and their total size, that get an answer from the
/// router (`431` with the error body beyond them).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The transport's own limit, well above ours so that the router answers
/// with the error body. Beyond it, the connection gets a bare `431`.
const TRANSPORT_MAX_HEADERS: usize = 1000;

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, and runs `then` while the requests in flight finish.
pub async fn serve<T>(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    then: impl Future<Output = T>,
) -> T {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_headers(TRANSPORT_MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "cannot accept a connection; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Live delivery writes each socket once per tailer read; Nagle's algorithm
        // would hold such a write back until the client acknowledges the last one.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::join!(then, graceful.shutdown()).0
}

/// Refuses requests whose headers exceed [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`], with the API's error body.
pub async fn limit_headers(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let message = format!("at most {MAX_HEADERS} request headers of {MAX_HEADER_BYTES} bytes in all");
        return Error::HeadersTooLarge(message).into_response();
    }
    next.run(req).await
}
