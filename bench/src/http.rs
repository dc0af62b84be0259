//! The HTTP side of the load: one keep-alive connection per worker.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

/// A client that keeps exactly one connection to the server alive.
pub fn one_connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Appends through `POST /api/events`; returns how long the request took.
pub async fn append(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = client.post(format!("{base}/api/events")).bearer_auth(token).json(body).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let took = started.elapsed();
    if status.as_u16() != 201 {
        bail!("POST /api/events answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(took)
}

/// Counts failures by message, printing the first few.
#[derive(Default)]
pub struct Errors {
    pub count: u64,
    shown: u32,
}

impl Errors {
    pub fn add(&mut self, e: &anyhow::Error) {
        self.count += 1;
        if self.shown < 3 {
            self.shown += 1;
            eprintln!("# error: {e:#}");
        }
    }
}
