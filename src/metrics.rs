//! Prometheus metrics: one recorder per process, rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

/// The process's recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("eventfeed_commit_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 48.0],
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embed several servers).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A span per HTTP request (method, route, status), so every log line of a
/// request names it; the answer and its latency are logged at debug level.
pub fn trace_layer() -> RequestTrace {
    fn span(req: &Request) -> Span {
        let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!("request", method = %req.method(), route, status = tracing::field::Empty)
    }
    TraceLayer::new_for_http().make_span_with(span as fn(&Request) -> Span).on_request(()).on_response(OnAnswer)
}

pub type RequestTrace = TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&Request) -> Span, (), OnAnswer>;

/// Records the status in the request's span and logs the answer.
#[derive(Clone, Copy)]
pub struct OnAnswer;

impl<B> OnResponse<B> for OnAnswer {
    fn on_response(self, response: &axum::http::Response<B>, latency: std::time::Duration, span: &Span) {
        let status = response.status().as_u16();
        span.record("status", status);
        tracing::debug!(status, latency_ms = latency.as_secs_f64() * 1000.0, "answered");
    }
}

/// A known method's name; anything else is `other`, so made-up methods
/// cannot grow the metrics without bound (routes are bounded by the router).
fn method_label(method: &Method) -> &'static str {
    static KNOWN: [Method; 7] =
        [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS];
    KNOWN.iter().find(|m| *m == method).map_or("other", Method::as_str)
}

/// Records each HTTP request's latency by route and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("eventfeed_http_request_duration_seconds", "route" => route, "method" => method, "status" => status)
        .record(start.elapsed().as_secs_f64());
    response
}
