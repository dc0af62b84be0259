//! What all users saw, summed: the figures the presence benchmark reports.

use std::collections::{BTreeMap, BTreeSet};

use super::user::Seen;
use crate::stats::{Histogram, thousands};

#[derive(Default)]
pub struct Totals {
    pub users: usize,
    /// Users whose first connect was accepted, and its latency from their moment.
    pub accepted: usize,
    pub latency: Histogram,
    pub failed_attempts: u64,
    pub packets: [u64; 2],
    /// The most one user got, per phase.
    pub max_packets: [u64; 2],
    pub by_name: [BTreeMap<String, u64>; 2],
    pub offline: [BTreeSet<String>; 2],
    pub online: [Option<(u64, u64)>; 2],
    /// From a transport close to the socket being back.
    pub back_after: Histogram,
    pub disconnected: usize,
    pub connected_at_end: usize,
}

impl Totals {
    pub fn add(&mut self, seen: Seen) {
        self.users += 1;
        if let Some(latency) = seen.connect_latency {
            self.accepted += 1;
            self.latency.record_duration(latency);
        }
        self.failed_attempts += seen.failed_attempts;
        for phase in 0..2 {
            self.packets[phase] += seen.packets[phase];
            self.max_packets[phase] = self.max_packets[phase].max(seen.packets[phase]);
            for (name, n) in &seen.by_name[phase] {
                *self.by_name[phase].entry(name.clone()).or_default() += n;
            }
            self.offline[phase].extend(seen.offline[phase].iter().cloned());
            self.online[phase] = match (self.online[phase], seen.online[phase]) {
                (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                (a, b) => a.or(b),
            };
        }
        seen.back_after.iter().for_each(|d| self.back_after.record_duration(*d));
        self.disconnected += usize::from(seen.disconnected);
        self.connected_at_end += usize::from(seen.connected_at_end);
    }

    /// Packets per user in `phase`.
    pub fn per_user(&self, phase: usize) -> f64 {
        self.packets[phase] as f64 / self.users.max(1) as f64
    }

    /// `presence:diff 9,870, user:online 120`.
    pub fn names(&self, phase: usize) -> String {
        if self.by_name[phase].is_empty() {
            return "none".into();
        }
        let names = self.by_name[phase].iter().map(|(name, n)| format!("{name} {}", thousands(*n)));
        names.collect::<Vec<_>>().join(", ")
    }

    /// Users announced gone in `phase`: named in `user:offline` or a diff's
    /// `leaves`, or missing from the lowest `online` count of a diff (above
    /// the list limit, the count is all a diff says).
    pub fn announced_offline(&self, phase: usize, users: usize) -> usize {
        let by_count = self.online[phase].map_or(0, |(low, _)| users.saturating_sub(low as usize));
        self.offline[phase].len().max(by_count)
    }
}
