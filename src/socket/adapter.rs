//! The driver under the Socket.IO PostgreSQL adapter (presence, typing
//! relays and `presence:list` across nodes).
//!
//! socketioxide-postgres's own sqlx driver ends its notification stream at
//! the first connection error, and the adapter never listens again: one
//! reset of the LISTEN connection silenced the cluster for good. This driver
//! hands the adapter a stream that outlives connections: it re-opens LISTEN
//! after a loss, and probes a silent connection (a NOTIFY to itself) so a
//! half-open one is noticed too. Every other call is bounded, and runs on
//! pools that are replaced when a call does not answer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use socketioxide_postgres::drivers::Driver;
use socketioxide_postgres::drivers::sqlx::SqlxDriver;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_stream::wrappers::ReceiverStream;

use crate::state::AdapterHealth;

/// Names the adapter's LISTEN connections in pg_stat_activity.
pub const ADAPTER_LISTENER_APP_NAME: &str = "eventfeed-adapter-listener";
/// A call to the database not answered within this is given up, and the
/// pools it ran on are replaced.
const CALL_BOUND: Duration = Duration::from_secs(3);
/// A LISTEN connection that heard nothing for this long is probed.
const SILENCE: Duration = Duration::from_secs(2);
/// Longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ResilientDriver {
    options: PgConnectOptions,
    current: Arc<RwLock<Arc<SqlxDriver>>>,
    health: AdapterHealth,
}

impl ResilientDriver {
    pub fn new(options: PgConnectOptions, health: AdapterHealth) -> Self {
        let current = Arc::new(RwLock::new(Arc::new(SqlxDriver::new(pool(&options, 4)))));
        ResilientDriver { options, current, health }
    }

    fn driver(&self) -> Arc<SqlxDriver> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs one call on the current pool; one that does not answer in time
    /// is `PoolTimedOut`, and the pool is replaced.
    async fn bounded<T, F>(&self, call: impl FnOnce(SqlxDriver) -> F) -> Result<T, sqlx::Error>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let driver = self.driver();
        match timeout(CALL_BOUND, call((*driver).clone())).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!("the socket adapter's database call did not answer; replacing its pool");
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                if Arc::ptr_eq(&current, &driver) {
                    *current = Arc::new(SqlxDriver::new(pool(&self.options, 4)));
                }
                Err(sqlx::Error::PoolTimedOut)
            }
        }
    }
}

fn pool(options: &PgConnectOptions, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(options.clone())
}

impl Driver for ResilientDriver {
    type Error = sqlx::Error;
    type Notification = PgNotification;
    type NotificationStream = BoxStream<'static, PgNotification>;

    async fn init(&self, table: &str) -> Result<(), Self::Error> {
        self.bounded(|d| async move { d.init(table).await }).await
    }

    async fn listen(&self, channels: &[&str]) -> Result<Self::NotificationStream, Self::Error> {
        let probe = format!("eventfeed_probe_{}", uuid::Uuid::new_v4().simple());
        let mut channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        channels.push(probe.clone());
        let listener = open(&self.options, &channels).await?;
        let (tx, rx) = mpsc::channel(1024);
        let watch = Watch { driver: self.clone(), channels, probe, tx };
        tokio::spawn(watch.run(listener));
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn notify(&self, channel: &str, message: &str) -> Result<(), Self::Error> {
        self.bounded(|d| async move { d.notify(channel, message).await }).await
    }

    async fn push_attachment(&self, table: &str, attachment: &[u8]) -> Result<i64, Self::Error> {
        self.bounded(|d| async move { d.push_attachment(table, attachment).await }).await
    }

    async fn get_attachment(&self, table: &str, id: i64) -> Result<Vec<u8>, Self::Error> {
        self.bounded(|d| async move { d.get_attachment(table, id).await }).await
    }

    async fn cleanup_attachments(&self, table: &str, interval: Duration) -> Result<(), Self::Error> {
        self.bounded(|d| async move { d.cleanup_attachments(table, interval).await }).await
    }

    async fn close(&self, _channels: &[&str]) -> Result<(), Self::Error> {
        // The watcher ends when the adapter drops its stream; its LISTEN goes with it.
        Ok(())
    }
}

/// A LISTEN connection of its own (a pool of one, dropped with it, so a
/// dead connection never holds a slot that another listener needs).
async fn open(options: &PgConnectOptions, channels: &[String]) -> Result<PgListener, sqlx::Error> {
    let pool = pool(&options.clone().application_name(ADAPTER_LISTENER_APP_NAME), 1);
    let mut listener =
        timeout(CALL_BOUND, PgListener::connect_with(&pool)).await.map_err(|_| sqlx::Error::PoolTimedOut)??;
    listener.eager_reconnect(false);
    timeout(CALL_BOUND, listener.listen_all(channels.iter().map(String::as_str)))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    Ok(listener)
}

/// Keeps one adapter stream fed across lost connections.
struct Watch {
    driver: ResilientDriver,
    channels: Vec<String>,
    /// A channel only this watcher listens to, for probing.
    probe: String,
    tx: mpsc::Sender<PgNotification>,
}

impl Watch {
    async fn run(self, mut listener: PgListener) {
        // Ends, and drops its LISTEN connection, once the adapter drops the stream.
        while !self.tx.is_closed() {
            match self.hear(&mut listener).await {
                Ok(Some(n)) if n.channel() == self.probe => {}
                Ok(Some(n)) => {
                    if self.tx.send(n).await.is_err() {
                        return; // the adapter is closed
                    }
                }
                Ok(None) => {}
                Err(cause) => match self.relisten(cause).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                },
            }
        }
    }

    /// The next notification; `None` after a successful probe; an error
    /// when the connection is lost or silent.
    async fn hear(&self, listener: &mut PgListener) -> Result<Option<PgNotification>, String> {
        let lost = |e: Option<sqlx::Error>| e.map_or_else(|| "the connection closed".to_owned(), |e| e.to_string());
        match timeout(SILENCE, listener.try_recv()).await {
            Ok(Ok(Some(n))) => return Ok(Some(n)),
            Ok(Ok(None)) => return Err(lost(None)),
            Ok(Err(e)) => return Err(lost(Some(e))),
            Err(_) => {}
        }
        // Quiet for a while: make sure the connection still hears.
        self.driver.notify(&self.probe, "").await.map_err(|e| format!("probe failed: {e}"))?;
        match timeout(CALL_BOUND, listener.try_recv()).await {
            Ok(Ok(Some(n))) if n.channel() == self.probe => Ok(None),
            Ok(Ok(Some(n))) => Ok(Some(n)),
            Ok(Ok(None)) => Err(lost(None)),
            Ok(Err(e)) => Err(lost(Some(e))),
            Err(_) => Err("no answer to a probe".to_owned()),
        }
    }

    /// Listens again, with backoff, until it works or the adapter is gone.
    async fn relisten(&self, cause: String) -> Option<PgListener> {
        let since = Instant::now();
        self.driver.health.lost();
        metrics::counter!("eventfeed_adapter_listen_lost_total").increment(1);
        tracing::warn!(%cause, "the socket adapter's LISTEN connection was lost; cross-node presence and typing wait");
        let mut backoff = Duration::from_millis(100);
        let fresh = loop {
            if self.tx.is_closed() {
                break None;
            }
            match open(&self.driver.options, &self.channels).await {
                Ok(listener) => break Some(listener),
                Err(e) => tracing::debug!(error = %e, "cannot listen again yet"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        self.driver.health.regained();
        if fresh.is_some() {
            tracing::info!(down_ms = since.elapsed().as_millis() as u64, "the socket adapter listens again");
        }
        fresh
    }
}
