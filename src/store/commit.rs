//! Group commit (docs/architecture.md): appends that arrive together share one
//! transaction, so one WAL flush and one NOTIFY serve them all, while each
//! request keeps its own outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{AppendRequest, Appended, Store};
use crate::error::{Error, Result};
use crate::event::Event;

/// Most requests in one transaction. A batch that falls back to one
/// subtransaction per request stays under the 64 that PostgreSQL tracks cheaply.
const MAX_BATCH: usize = 48;
/// How long a batch waits to fill while another one is committing. Past it,
/// the batch commits beside the other (which may be stuck behind a lock that
/// an application transaction holds on one of its streams).
const LINGER: Duration = Duration::from_millis(2);
/// A request of this many events commits in a transaction of its own, beside
/// the batches and outside their slots. Its insert takes long enough (a
/// 1,000-event one, hundreds of milliseconds) that small requests sharing its
/// transaction, or queued for a slot behind a few such requests, would wait.
const LARGE_REQUEST: usize = 64;

struct Job {
    request: AppendRequest,
    done: oneshot::Sender<Result<Vec<Event>>>,
}

/// The one way events get appended by the server.
#[derive(Clone)]
pub struct Appender {
    jobs: mpsc::Sender<Job>,
    /// Requests answered so far (stored, or refused by the store).
    answered: Arc<AtomicU64>,
}

impl Appender {
    /// Starts the dispatcher, which keeps batches committing side by side as
    /// the store allows. Once `shutdown` is cancelled it takes no new
    /// requests, commits the queued ones, and ends; `tasks` sees it and its
    /// commits through.
    pub fn start(store: Store, shutdown: &CancellationToken, tasks: &TaskTracker) -> Self {
        // Batches committing at once: as many as the store runs side by side.
        let concurrency = store.commit_concurrency();
        let (jobs, rx) = mpsc::channel(MAX_BATCH * concurrency * 4);
        tasks.spawn(dispatch(store, rx, concurrency, shutdown.clone(), tasks.clone()));
        Appender { jobs, answered: Arc::default() }
    }

    /// Append requests answered since start.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub async fn append(&self, request: AppendRequest) -> Result<Vec<Event>> {
        let (done, outcome) = oneshot::channel();
        let gone = || Error::Unavailable("the server is shutting down".into());
        self.jobs.send(Job { request, done }).await.map_err(|_| gone())?;
        let outcome = outcome.await.map_err(|_| gone())?;
        self.answered.fetch_add(1, Ordering::Relaxed);
        outcome
    }
}

/// Takes whatever is queued as one batch. With nothing committing, the batch
/// goes at once; while another commits, it first fills up for up to `LINGER`
/// or until that one is done. Under load this keeps batches large (the cost of
/// a commit is mostly per batch) without making a lone request wait.
async fn dispatch(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    concurrency: usize,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    // With one writer (SQLite) a large request waits for the one slot like the
    // rest: beside it, a small batch would only wait for the write lock, up to
    // its busy timeout, inside a transaction.
    let large_slots = if concurrency > 1 { Arc::new(Semaphore::new(concurrency / 2)) } else { slots.clone() };
    let finished = Arc::new(Notify::new());
    loop {
        let mut batch = receive(&mut rx, &shutdown).await;
        if batch.is_empty() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        while batch.len() < MAX_BATCH && slots.available_permits() < concurrency {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                _ = finished.notified() => {}
                _ = sleep_until(deadline) => break,
            }
        }
        let (large, small) = split_large(batch);
        for job in large {
            // Waits for a large slot in its own task: the dispatcher goes on.
            let (store, large_slots) = (store.clone(), large_slots.clone());
            tasks.spawn(async move {
                let Ok(_slot) = large_slots.acquire_owned().await else { return };
                commit(&store, vec![job]).await;
            });
        }
        if small.is_empty() {
            continue;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (store, finished) = (store.clone(), finished.clone());
        tasks.spawn(async move {
            commit(&store, small).await;
            drop(slot);
            finished.notify_one();
        });
    }
}

/// The queued requests, waiting for one. Once shutdown has begun it takes
/// no new requests: it returns the queued ones, then none.
async fn receive(rx: &mut mpsc::Receiver<Job>, shutdown: &CancellationToken) -> Vec<Job> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    tokio::select! {
        biased;
        _ = rx.recv_many(&mut batch, MAX_BATCH) => {}
        _ = shutdown.cancelled() => {
            rx.close();
            rx.recv_many(&mut batch, MAX_BATCH).await;
        }
    }
    batch
}

/// The large requests of a batch, and the rest.
fn split_large(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    batch.into_iter().partition(|job| job.request.events.len() >= LARGE_REQUEST)
}

async fn commit(store: &Store, batch: Vec<Job>) {
    let (requests, senders): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.request, j.done)).unzip();
    let started = Instant::now();
    let outcomes: Vec<Result<Appended>> =
        match store.append_batch(&requests).await {
            Ok(outcomes) => outcomes,
            // The shared transaction failed as a whole (a deadlock, a lost
            // connection): give each request its own transaction and outcome.
            // Not when the store is unreachable: each would wait out the same bound.
            Err(e) if requests.len() > 1 && !matches!(e, Error::Unavailable(_)) => {
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
            Err(Error::Unavailable(cause)) => requests.iter().map(|_| Err(Error::Unavailable(cause.clone()))).collect(),
            Err(e) => vec![Err(e)],
        };
    metrics::histogram!("eventfeed_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("eventfeed_commit_batch_size").record(requests.len() as f64);
    for (outcome, done) in outcomes.into_iter().zip(senders) {
        if let Ok(appended) = &outcome {
            metrics::counter!("eventfeed_appended_events_total").increment(appended.stored() as u64);
            metrics::counter!("eventfeed_idempotent_retries_total").increment(appended.retries as u64);
        }
        // The requester may have gone away; its events are stored all the same.
        let _ = done.send(outcome.map(|appended| appended.events));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Cursor;
    use crate::event::{EventType, StreamName};
    use crate::store::NewEvent;

    fn job(events: usize) -> Job {
        let event = NewEvent {
            id: None,
            stream: StreamName::parse("s").unwrap(),
            event_type: EventType::parse("a:b").unwrap(),
            data: serde_json::json!({}),
            expected_version: None,
            actor: None,
            audience: None,
            metadata: None,
        };
        let request = AppendRequest { tenant_id: "acme".into(), events: vec![event; events] };
        Job { request, done: oneshot::channel().0 }
    }

    #[test]
    fn large_requests_are_split_off() {
        let sizes = |batch: Vec<Job>| {
            let (large, small) = split_large(batch);
            let count = |jobs: Vec<Job>| jobs.iter().map(|j| j.request.events.len()).collect::<Vec<_>>();
            (count(large), count(small))
        };
        assert_eq!(sizes(vec![job(1), job(1000), job(3), job(64)]), (vec![1000, 64], vec![1, 3]));
        assert_eq!(sizes(vec![job(1), job(63)]), (vec![], vec![1, 63]));
    }

    #[tokio::test]
    async fn shutdown_waits_for_the_queued_appends_and_refuses_later_ones() {
        let temp = crate::store::sqlite::tests::TempStore::new().await;
        let store = Store::new(temp.store.clone());
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let appender = Appender::start(store.clone(), &shutdown, &tasks);
        let mut answers = Vec::new();
        for _ in 0..40 {
            let (appender, request) = (appender.clone(), job(5).request);
            answers.push(tokio::spawn(async move { appender.append(request).await }));
        }
        // On this one-thread runtime, a yield lets every request reach the queue.
        tokio::task::yield_now().await;
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;

        // Every queued request is committed by the time shutdown stops waiting.
        assert_eq!(store.read_all(Cursor::ZERO, 1000).await.unwrap().len(), 200);
        for answer in answers {
            assert_eq!(answer.await.unwrap().unwrap().len(), 5);
        }
        let late = appender.append(job(1).request).await.unwrap_err();
        assert!(matches!(late, Error::Unavailable(_)), "{late:?}");
    }
}
