//! The per-second samples behind `GET /api/stats`: each node samples its own
//! figures (the [`pulse`](crate::metrics::pulse) of what `/metrics` records)
//! once a second into a ring of the last 15 minutes, and every few seconds
//! writes its newest samples to the store, so that any node answers for the
//! whole cluster. A node is a process: its id is random, made at start.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::error::Result;
use crate::metrics::{Pulse, f64_of, pulse};
use crate::store::Store;

/// Samples kept: 15 minutes, one a second.
pub const WINDOW: usize = 900;
/// How often a node writes its new samples to the store (and deletes old ones).
const SHARE_EVERY: Duration = Duration::from_secs(3);
/// Most tenant and type pairs one sample keeps; the rest are summed as `other`.
const MAX_PAIRS: usize = 100;

/// One second of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// The end of the second sampled, UTC.
    pub at: DateTime<Utc>,
    /// Events this node committed.
    pub appends: u64,
    /// Live emits to this node's sockets: by tenant, then by type.
    pub deliveries: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sockets connected to this node.
    pub sockets: u64,
    /// Seconds from the newest event's append to this node's read of it; 0
    /// when the node read nothing that second.
    pub lag: f64,
}

/// One node's samples, oldest first.
#[derive(Debug, Clone)]
pub struct NodeSamples {
    pub node: Uuid,
    pub samples: Vec<Sample>,
}

/// This node's sampler: its id and ring. Cheap to clone.
#[derive(Clone)]
pub struct Stats {
    node: Uuid,
    ring: Arc<Mutex<VecDeque<Sample>>>,
    store: Store,
}

/// The pulse's running totals at one moment.
#[derive(Clone, Copy)]
struct Totals {
    appended: u64,
    delivered: u64,
}

impl Totals {
    fn read(pulse: &Pulse) -> Totals {
        Totals { appended: pulse.appended.load(Ordering::Relaxed), delivered: pulse.delivered.load(Ordering::Relaxed) }
    }
}

impl Stats {
    /// Starts sampling every second and sharing every few seconds, until shutdown.
    pub fn start(store: Store, shutdown: &CancellationToken, tasks: &TaskTracker) -> Stats {
        let stats = Stats { node: Uuid::new_v4(), ring: Arc::default(), store };
        tasks.spawn(shutdown.clone().run_until_cancelled_owned(stats.clone().sample_forever()));
        tasks.spawn(shutdown.clone().run_until_cancelled_owned(stats.clone().share_forever()));
        stats
    }

    /// This node's id.
    pub fn node(&self) -> Uuid {
        self.node
    }

    /// This node's samples, oldest first.
    pub fn local(&self) -> Vec<Sample> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Every node's samples of the last 15 minutes: this node's from its
    /// ring, the others' from the store. This node comes first.
    pub async fn cluster(&self) -> Result<Vec<NodeSamples>> {
        let since = Utc::now() - window();
        let mut nodes = vec![NodeSamples { node: self.node, samples: self.local() }];
        for (node, sample) in self.store.load_samples(self.node, since).await? {
            let Ok(sample) = serde_json::from_value::<Sample>(sample) else { continue };
            match nodes.last_mut() {
                Some(last) if last.node == node => last.samples.push(sample),
                _ => nodes.push(NodeSamples { node, samples: vec![sample] }),
            }
        }
        Ok(nodes)
    }

    async fn sample_forever(self) {
        let pulse = pulse();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(MissedTickBehavior::Skip);
        every.tick().await;
        let mut before = Totals::read(pulse);
        loop {
            every.tick().await;
            let now = Totals::read(pulse);
            self.push(sample(pulse, before, now, Utc::now()));
            before = now;
        }
    }

    fn push(&self, sample: Sample) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == WINDOW {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    /// Writes the samples taken since the last write, and deletes every
    /// node's samples older than the window. A failed write is tried again
    /// with the next one: the samples stay in the ring.
    async fn share_forever(self) {
        let mut every = tokio::time::interval(SHARE_EVERY);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut saved_to = DateTime::<Utc>::MIN_UTC;
        loop {
            every.tick().await;
            let new: Vec<Sample> = self.local().into_iter().filter(|s| s.at > saved_to).collect();
            let Some(last) = new.last().map(|s| s.at) else { continue };
            let rows: Vec<_> = new.iter().filter_map(|s| Some((s.at, serde_json::to_value(s).ok()?))).collect();
            let outcome = async {
                self.store.save_samples(self.node, &rows).await?;
                self.store.prune_samples(Utc::now() - window()).await
            };
            match outcome.await {
                Ok(()) => saved_to = last,
                Err(e) => tracing::debug!(error = %e, "sharing the stats samples failed; retrying"),
            }
        }
    }
}

fn window() -> TimeDelta {
    TimeDelta::seconds(WINDOW as i64)
}

/// The sample of the second that ends `at`, from the totals at its start and end.
fn sample(pulse: &Pulse, before: Totals, now: Totals, at: DateTime<Utc>) -> Sample {
    let read = now.delivered.saturating_sub(before.delivered);
    Sample {
        at: at.duration_trunc(TimeDelta::seconds(1)).unwrap_or(at),
        appends: now.appended.saturating_sub(before.appended),
        deliveries: bounded(pulse.take_emits()),
        sockets: f64_of(&pulse.sockets).max(0.0).round() as u64,
        lag: if read > 0 { f64_of(&pulse.lag).max(0.0) } else { 0.0 },
    }
}

/// Emits by tenant and type, the largest `MAX_PAIRS` kept and the rest
/// summed per tenant as `other` (no event type is called that: types have a `:`).
fn bounded(emits: std::collections::HashMap<(String, String), u64>) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut pairs: Vec<_> = emits.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (i, ((tenant, event_type), n)) in pairs.into_iter().enumerate() {
        let key = if i < MAX_PAIRS { event_type } else { "other".to_owned() };
        *out.entry(tenant).or_default().entry(key).or_default() += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_past_the_bound_are_summed_as_other() {
        let emits = (0..MAX_PAIRS as u64 + 5).map(|i| (("acme".to_owned(), format!("t:{i:03}")), i + 1)).collect();
        let kept = bounded(emits);
        let acme = &kept["acme"];
        assert_eq!(acme.len(), MAX_PAIRS + 1);
        // The five smallest (1 to 5 emits) are summed.
        assert_eq!(acme["other"], 1 + 2 + 3 + 4 + 5);
        assert_eq!(acme["t:104"], 105);
    }

    #[test]
    fn a_second_without_reads_has_no_lag() {
        let pulse = pulse();
        let at = Utc::now();
        let still = Totals { appended: 7, delivered: 3 };
        let quiet = sample(pulse, still, still, at);
        assert_eq!((quiet.appends, quiet.lag), (0, 0.0));
        let busy = sample(pulse, still, Totals { appended: 12, delivered: 4 }, at);
        assert_eq!(busy.appends, 5);
        assert_eq!(busy.at.timestamp_subsec_nanos(), 0, "samples fall on whole seconds");
    }
}
