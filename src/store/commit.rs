//! Group commit (DESIGN.md point 5): appends that arrive together share one
//! transaction, so one WAL flush and one NOTIFY serve them all, while each
//! request keeps its own outcome.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{AppendRequest, Store};
use crate::error::{Error, Result};
use crate::event::Event;

/// Most requests in one transaction. Each runs in its own subtransaction, and
/// PostgreSQL tracks up to 64 of those cheaply.
const MAX_BATCH: usize = 48;

struct Job {
    request: AppendRequest,
    done: oneshot::Sender<Result<Vec<Event>>>,
}

/// The one way events get appended by the server.
#[derive(Clone)]
pub struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    /// Starts `workers` committers; each takes whatever is queued when it is free.
    pub fn start(store: Store, workers: usize) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * workers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            tokio::spawn(commit_loop(store.clone(), rx.clone()));
        }
        Appender { jobs }
    }

    pub async fn append(&self, request: AppendRequest) -> Result<Vec<Event>> {
        let (done, outcome) = oneshot::channel();
        let gone = || Error::internal(anyhow::anyhow!("the appender has stopped"));
        self.jobs.send(Job { request, done }).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

async fn commit_loop(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        commit(&store, batch).await;
    }
}

async fn commit(store: &Store, batch: Vec<Job>) {
    let (requests, senders): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.request, j.done)).unzip();
    let outcomes =
        match store.append_batch(&requests).await {
            Ok(outcomes) => outcomes,
            // The shared transaction failed as a whole (a deadlock, a lost
            // connection): give each request its own transaction and outcome.
            Err(e) if requests.len() > 1 => {
                tracing::warn!(error = %e, size = requests.len(), "group commit failed; appending one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in &requests {
                    let one = store.append_batch(std::slice::from_ref(request)).await;
                    outcomes.push(one.and_then(|mut o| {
                        o.pop().unwrap_or_else(|| Err(Error::internal(anyhow::anyhow!("no outcome"))))
                    }));
                }
                outcomes
            }
            Err(e) => vec![Err(e)],
        };
    metrics::histogram!("eventfeed_commit_batch_size").record(requests.len() as f64);
    for (outcome, done) in outcomes.into_iter().zip(senders) {
        if let Ok(events) = &outcome {
            metrics::counter!("eventfeed_appended_events_total").increment(events.len() as u64);
        }
        // The requester may have gone away; its events are stored all the same.
        let _ = done.send(outcome);
    }
}
