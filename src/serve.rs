//! The HTTP server loop: accepts connections and serves the router on each,
//! with limits that `axum::serve` does not offer. A client must finish its
//! request headers within [`HEADER_TIMEOUT`], on a new connection and on an
//! idle kept-alive one alike, so connections that trickle bytes or sit idle
//! cannot hold the process's file descriptors (slowloris).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper::upgrade::OnUpgrade;
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

/// Gives a Socket.IO request a head of its own. hyper parses a request's
/// URI and header values as views into the connection's read buffer (8 to
/// 16 KB), and axum keeps a clone of the URI among the extensions. A socket
/// keeps its handshake's head for as long as it is open, so one kept view
/// held that whole buffer in every idle socket. The copy keeps the method,
/// URI, version and headers, and of the extensions only the WebSocket
/// upgrade.
pub async fn detach_head(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/socket.io/") {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let mut head = Request::new(body);
    *head.method_mut() = parts.method;
    *head.version_mut() = parts.version;
    *head.uri_mut() = parts.uri.to_string().parse().unwrap_or(parts.uri);
    *head.headers_mut() = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (name.clone(), HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone()))
        })
        .collect::<HeaderMap>();
    if let Some(upgrade) = parts.extensions.remove::<OnUpgrade>() {
        head.extensions_mut().insert(upgrade);
    }
    next.run(head).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::OriginalUri;
    use axum::http::Uri;
    use axum::http::request::Parts;
    use bytes::Bytes;
    use tower::ServiceExt as _;

    use super::*;

    /// A request parsed as hyper parses one: its URI and header values are
    /// views into the connection's read buffer.
    fn parsed(buffer: &Bytes, path: &str) -> Request {
        let text = std::str::from_utf8(buffer).unwrap();
        let at = text.find(path).unwrap();
        let uri = Uri::from_maybe_shared(buffer.slice(at..at + path.len())).unwrap();
        let mut req = Request::new(axum::body::Body::empty());
        *req.uri_mut() = uri;
        let value = HeaderValue::from_maybe_shared(buffer.slice(0..5)).unwrap();
        req.headers_mut().insert("x-client", value);
        req
    }

    /// Keeps the request's head, as a socket keeps its handshake's.
    fn keeper(kept: Arc<Mutex<Vec<Parts>>>) -> Router {
        let handler = move |req: Request| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(req.into_parts().0);
            }
        };
        Router::new().fallback(handler).layer(axum::middleware::from_fn(detach_head))
    }

    #[tokio::test]
    async fn a_kept_socket_io_head_holds_nothing_of_the_read_buffer() {
        let path = "/socket.io/?EIO=4&transport=websocket";
        let buffer = Bytes::from(format!("token{path}{}", " ".repeat(16 * 1024)));
        let kept = Arc::new(Mutex::new(Vec::new()));
        keeper(kept.clone()).oneshot(parsed(&buffer, path)).await.unwrap();

        let parts = &kept.lock().unwrap()[0];
        assert_eq!(parts.uri, path);
        assert_eq!(parts.headers["x-client"], "token");
        // axum's own copy of the URI is not among what the socket keeps.
        assert!(parts.extensions.get::<OriginalUri>().is_none());
        assert!(buffer.is_unique(), "the kept head still refers to the connection's read buffer");
    }

    #[tokio::test]
    async fn other_requests_keep_their_head_as_parsed() {
        let path = "/api/events";
        let buffer = Bytes::from(format!("token{path}"));
        let kept = Arc::new(Mutex::new(Vec::new()));
        keeper(kept.clone()).oneshot(parsed(&buffer, path)).await.unwrap();
        assert!(kept.lock().unwrap()[0].extensions.get::<OriginalUri>().is_some());
        assert!(!buffer.is_unique());
    }
}
