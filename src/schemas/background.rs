//! The catalog's background tasks: reloading on `SIGHUP`, and folding the
//! store's pending type-count changes into its counts.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Schemas;
use crate::store::Store;

/// How often pending type-count changes are folded. Reads add the pending
/// ones, so this bounds how many a read adds, not how fresh counts are.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Starts the reload and fold tasks; both stop at shutdown.
pub fn start(schemas: Schemas, store: &Store, shutdown: &CancellationToken, tasks: &TaskTracker) -> Arc<Schemas> {
    let schemas = Arc::new(schemas);
    tasks.spawn(reload_on_hangup(schemas.clone(), shutdown.clone()));
    tasks.spawn(shutdown.clone().run_until_cancelled_owned(fold_forever(store.clone())));
    schemas
}

/// Reloads on every `SIGHUP` until `stop`, logging what each reload did.
#[cfg(unix)]
async fn reload_on_hangup(schemas: Arc<Schemas>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the type catalog will not be reloaded");
            return;
        }
    };
    while stop.run_until_cancelled(hangups.recv()).await.flatten().is_some() {
        // Reading and compiling the files blocks: off the async workers.
        let reloading = schemas.clone();
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(catalog)) => tracing::info!(types = catalog.len(), "SIGHUP: type catalog reloaded"),
            Ok(Err(e)) => tracing::error!("SIGHUP: type catalog not reloaded, the previous one stays: {e}"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: the type catalog's reload failed; the previous one stays"),
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_schemas: Arc<Schemas>, _stop: CancellationToken) {}

async fn fold_forever(store: Store) {
    let mut every = tokio::time::interval(FOLD_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // A full chunk means more are waiting: fold on without waiting.
        loop {
            match store.fold_type_counts().await {
                Ok(n) if n >= crate::store::TYPE_COUNT_FOLD_CHUNK as u64 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "folding type counts failed; retrying later");
                    break;
                }
            }
        }
    }
}
