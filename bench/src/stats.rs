//! Measuring: a latency histogram, the envelope's timestamp as a number,
//! and where the CPU went (server, PostgreSQL, this process, the machine).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Values below this are counted exactly; above it, in 64 steps per power of two.
const EXACT: u64 = 128;
const STEPS: u64 = 64;

/// A log-linear histogram of microseconds (relative error under 1.6 %).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; (EXACT + 58 * STEPS) as usize], total: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let shift = 63 - u64::from(v.leading_zeros()) - 6;
    (EXACT + (shift - 1) * STEPS + ((v >> shift) - STEPS)) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / STEPS + 1;
    let mantissa = (i - EXACT) % STEPS + STEPS;
    ((mantissa + 1) << shift) - 1
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn record_duration(&mut self, d: Duration) {
        self.record(d.as_micros() as u64);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in microseconds (bucket's upper bound).
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    /// `p50 1.23 ms, p99 4.56 ms, max 7.89 ms`.
    pub fn summary(&self) -> String {
        format!("p50 {}, p99 {}, max {}", ms(self.quantile(0.5)), ms(self.quantile(0.99)), ms(self.max))
    }
}

/// Microseconds as milliseconds, `12.3 ms`.
pub fn ms(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

/// Now, in microseconds since the epoch.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The envelope's `timestamp` (`2026-11-22T12:00:00.123Z`), in milliseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[23] != b'Z' || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        b[from..to].iter().try_fold(0u64, |n, &c| c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0')))
    };
    let days = days_from_civil(num(0, 4)? as i64, num(5, 7)?, num(8, 10)?);
    let secs = days as u64 * 86_400 + num(11, 13)? * 3600 + num(14, 16)? * 60 + num(17, 19)?;
    Some(secs * 1000 + num(20, 23)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// CPU time so far, in clock ticks, of the server, all `postgres`
/// processes, this process, and the whole machine (busy and total).
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    at: Instant,
    server: u64,
    postgres: u64,
    bench: u64,
    busy: u64,
}

impl Cpu {
    pub fn sample(server_pid: u32) -> Cpu {
        Cpu::sample_all(&[server_pid])
    }

    /// [`Cpu::sample`] with the server's part summed over several processes (nodes).
    pub fn sample_all(server_pids: &[u32]) -> Cpu {
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres"))
            .map(|e| process_ticks(&e.path().join("stat")))
            .sum();
        Cpu {
            at: Instant::now(),
            server: server_pids.iter().map(|pid| process_ticks(format!("/proc/{pid}/stat").as_ref())).sum(),
            postgres,
            bench: process_ticks("/proc/self/stat".as_ref()) + children_ticks(),
            busy: machine_busy_ticks(),
        }
    }

    /// Cores used between `self` and a later sample.
    pub fn since(&self, later: &Cpu) -> Usage {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz / secs;
        let (server, postgres) = (cores(self.server, later.server), cores(self.postgres, later.postgres));
        let (bench, busy) = (cores(self.bench, later.bench), cores(self.busy, later.busy));
        Usage { server, postgres, bench, other: (busy - server - postgres - bench).max(0.0), busy }
    }
}

/// Cores used over a measurement: where the machine's time went.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub server: f64,
    pub postgres: f64,
    /// This process and its reaped children (pgbench).
    pub bench: f64,
    /// Anything else on the machine (other users' builds and tests).
    pub other: f64,
    pub busy: f64,
}

impl Usage {
    /// The mean of measurements of equal length.
    pub fn mean(all: &[Usage]) -> Usage {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&Usage) -> f64| all.iter().map(f).sum::<f64>() / n;
        Usage {
            server: sum(|u| u.server),
            postgres: sum(|u| u.postgres),
            bench: sum(|u| u.bench),
            other: sum(|u| u.other),
            busy: sum(|u| u.busy),
        }
    }

    /// For a table's conditions column.
    pub fn short(&self) -> String {
        format!(
            "CPU cores: server {:.2}, postgres {:.2}, bench {:.2}, other {:.2}",
            self.server, self.postgres, self.bench, self.other
        )
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU in cores: server {:.2}, postgres {:.2}, bench client {:.2}, anything else {:.2}; machine busy {:.2} of {}",
            self.server,
            self.postgres,
            self.bench,
            self.other,
            self.busy,
            machine_cores()
        )
    }
}

/// The numeric fields of /proc/<pid>/stat after the command name: index 0
/// is field 3 of stat(5) (state, as 0), so field n is at n - 3.
pub fn stat_fields(stat: &std::path::Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(stat) else { return Vec::new() };
    let Some((_, after_comm)) = text.rsplit_once(')') else { return Vec::new() };
    after_comm.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect()
}

/// utime + stime (fields 14 and 15) of one process, all its threads.
pub fn process_ticks(stat: &std::path::Path) -> u64 {
    stat_fields(stat).get(11..13).map_or(0, |f| f.iter().sum())
}

/// cutime + cstime (fields 16 and 17) of this process: its reaped children (pgbench).
pub fn children_ticks() -> u64 {
    stat_fields("/proc/self/stat".as_ref()).get(13..15).map_or(0, |f| f.iter().sum())
}

/// Every CPU's busy time (all but idle and iowait), from /proc/stat.
pub fn machine_busy_ticks() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = text.lines().next() else { return 0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    v.iter().take(8).sum::<u64>() - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0)
}

/// `12,345`, `-1,234`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
        assert_eq!(thousands(-1234), "-1,234");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for v in [0, 1, 127, 128, 129, 255, 256, 1000, 50_000, 1 << 40] {
            let i = bucket(v);
            assert!(i >= last, "{v}");
            last = i;
            assert!(upper(i) >= v, "{v}: upper {}", upper(i));
            assert!(upper(i) as f64 <= v as f64 * 1.016 + 1.0, "{v}: upper {}", upper(i));
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v * 10);
        }
        assert!((4900..=5100).contains(&h.quantile(0.5)), "{}", h.quantile(0.5));
        assert!((9800..=10_000).contains(&h.quantile(0.99)), "{}", h.quantile(0.99));
        assert_eq!(h.quantile(1.0), 10_000);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_timestamp("2026-11-22T12:00:00.123Z"), Some(1_795_348_800_123));
        assert_eq!(parse_timestamp("2000-02-29T00:00:01.500Z"), Some(951_782_401_500));
        assert_eq!(parse_timestamp("2026-11-22T12:00:00Z"), None);
    }
}
