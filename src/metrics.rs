//! Prometheus metrics: one recorder per process, rendered at `/metrics`,
//! with a tap on the few figures the per-second samples of `GET /api/stats`
//! read (see [`pulse`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
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
            let _ = metrics::set_global_recorder(Tapped(recorder));
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

/// The running totals the stats sampler reads every second: the same
/// figures `/metrics` shows, kept as plain numbers as they are recorded.
pub struct Pulse {
    /// `eventfeed_appended_events_total`: events this process committed.
    pub appended: AtomicU64,
    /// `eventfeed_delivered_events_total`: events the tailer read and delivered.
    pub delivered: AtomicU64,
    /// `eventfeed_connected_sockets`, an `f64`'s bits (read with [`f64_of`]).
    pub sockets: AtomicU64,
    /// `eventfeed_tailer_lag_seconds`, an `f64`'s bits.
    pub lag: AtomicU64,
    /// Live emits to sockets by tenant and type since the last [`Pulse::take_emits`].
    emits: Mutex<HashMap<(String, String), u64>>,
}

/// A gauge's value from its bits.
pub fn f64_of(bits: &AtomicU64) -> f64 {
    f64::from_bits(bits.load(Ordering::Relaxed))
}

/// The process's pulse.
pub fn pulse() -> &'static Pulse {
    static PULSE: LazyLock<Pulse> = LazyLock::new(|| Pulse {
        appended: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        sockets: AtomicU64::new(0f64.to_bits()),
        lag: AtomicU64::new(0f64.to_bits()),
        emits: Mutex::new(HashMap::new()),
    });
    &PULSE
}

impl Pulse {
    /// Counts live emits of one tenant's events: `(type, sockets reached)`.
    pub fn emitted<'a>(&self, tenant: &str, counts: impl Iterator<Item = (&'a str, u64)>) {
        let mut emits = self.emits.lock().unwrap_or_else(|e| e.into_inner());
        for (event_type, n) in counts.filter(|&(_, n)| n > 0) {
            *emits.entry((tenant.to_owned(), event_type.to_owned())).or_default() += n;
        }
    }

    /// The emits counted since the last call, which starts a new count.
    pub fn take_emits(&self) -> HashMap<(String, String), u64> {
        std::mem::take(&mut *self.emits.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn counter(&self, name: &str) -> Option<&AtomicU64> {
        match name {
            "eventfeed_appended_events_total" => Some(&self.appended),
            "eventfeed_delivered_events_total" => Some(&self.delivered),
            _ => None,
        }
    }

    fn gauge(&self, name: &str) -> Option<&AtomicU64> {
        match name {
            "eventfeed_connected_sockets" => Some(&self.sockets),
            "eventfeed_tailer_lag_seconds" => Some(&self.lag),
            _ => None,
        }
    }
}

/// The Prometheus recorder, with the pulse's figures recorded beside it.
struct Tapped(PrometheusRecorder);

/// A counter recorded twice: in Prometheus and in the pulse.
struct TapCounter(Counter, &'static AtomicU64);

impl CounterFn for TapCounter {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.fetch_max(value, Ordering::Relaxed);
    }
}

/// A gauge recorded twice: in Prometheus and in the pulse.
struct TapGauge(Gauge, &'static AtomicU64);

impl GaugeFn for TapGauge {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        GaugeFn::increment(self.1, value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        GaugeFn::decrement(self.1, value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        GaugeFn::set(self.1, value);
    }
}

impl Recorder for Tapped {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let counter = self.0.register_counter(key, metadata);
        match pulse().counter(key.name()) {
            Some(tap) => Counter::from_arc(Arc::new(TapCounter(counter, tap))),
            None => counter,
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let gauge = self.0.register_gauge(key, metadata);
        match pulse().gauge(key.name()) {
            Some(tap) => Gauge::from_arc(Arc::new(TapGauge(gauge, tap))),
            None => gauge,
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}
