//! Latency histograms with fixed power-of-four microsecond buckets (≤1 µs, ≤4 µs, ≤16 µs ...
//! ≤1 s, then +Inf), for the Prometheus endpoint: per command (plain counters, bumped under the
//! state lock) and for fsyncs and reply-gate waits (atomics, bumped from other threads). Pure.
//!
//! Why fixed buckets and not prometheus-client's `Histogram`: every command is timed already
//! (INFO commandstats), and choosing a bucket here is a `leading_zeros` and one add on a counter
//! the command's statistics entry already holds in cache; the client crate's histogram takes a
//! lock and searches its bucket list per observation. Powers of four keep 12 buckets for 1 µs to
//! 4 s, which is resolution enough to graph and alert on (p99 over a minute), not to profile.

use std::sync::atomic::{AtomicU64, Ordering};

/// Finite buckets: upper bounds 4^0 .. 4^10 µs (1 µs .. ~1.05 s); one more for +Inf.
pub const FINITE_BUCKETS: usize = 11;
pub const BUCKETS: usize = FINITE_BUCKETS + 1;

/// The bucket of a duration: the smallest `i` with `us <= 4^i`, or the +Inf bucket.
#[inline]
pub fn bucket_of(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    // ceil(log2(us)) for us >= 2, then ceil(/2): 4^i >= us  <=>  2i >= ceil(log2(us)).
    let log2_ceil = (64 - (us - 1).leading_zeros()) as usize;
    log2_ceil.div_ceil(2).min(FINITE_BUCKETS)
}

/// The upper bound of bucket `i` in seconds (`f64::MAX` for +Inf, as prometheus-client wants).
pub fn upper_bound_seconds(i: usize) -> f64 {
    if i >= FINITE_BUCKETS {
        f64::MAX
    } else {
        (1u64 << (2 * i)) as f64 / 1e6
    }
}

/// Per-bucket counts (not cumulative) with the upper bounds in seconds, for encoding.
pub fn as_buckets(counts: &[u64; BUCKETS]) -> Vec<(f64, u64)> {
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (upper_bound_seconds(i), *c))
        .collect()
}

/// A histogram other threads record into (the log writer's fsyncs, reply-gate waits).
#[derive(Debug, Default)]
pub struct AtomicLatency {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

/// A consistent-enough copy of an [`AtomicLatency`] (each field read once; a scrape racing a
/// record may see the count without the sum, which the next scrape corrects).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    pub counts: [u64; BUCKETS],
    pub sum_us: u64,
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl AtomicLatency {
    pub fn record_us(&self, us: u64) {
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_lands_in_the_first_bucket_that_holds_it() {
        for us in [
            0u64,
            1,
            2,
            3,
            4,
            5,
            15,
            16,
            17,
            1000,
            1024,
            1025,
            1 << 20,
            u64::MAX,
        ] {
            let i = bucket_of(us);
            if i < FINITE_BUCKETS {
                assert!(us as f64 / 1e6 <= upper_bound_seconds(i), "{us} in {i}");
            } else {
                assert!(us > 1 << 20, "{us} overflowed");
            }
            if i > 0 {
                assert!(us as f64 / 1e6 > upper_bound_seconds(i - 1), "{us} in {i}");
            }
        }
    }

    #[test]
    fn atomic_histogram_counts_and_sums() {
        let h = AtomicLatency::default();
        h.record_us(3);
        h.record_us(3);
        h.record_us(5_000_000);
        let s = h.snapshot();
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 5_000_006);
        assert_eq!(s.counts[1], 2);
        assert_eq!(s.counts[FINITE_BUCKETS], 1);
    }
}

/// Samples each event keeps (Redis's `LATENCY_TS_LEN`).
pub const HISTORY_LEN: usize = 160;

/// One latency event's samples (Redis's `latencyTimeSeries`): at most one a second (the
/// highest of that second), the last [`HISTORY_LEN`], and the highest ever.
#[derive(Debug, Default, Clone)]
pub struct EventSeries {
    pub samples: std::collections::VecDeque<(i64, u64)>,
    pub max_ms: u64,
}

/// The latency monitor (LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH): events such as
/// `command`, `fast-command` and `expire-cycle` that took at least `latency-monitor-threshold`
/// milliseconds. Pure.
#[derive(Debug, Default)]
pub struct Monitor {
    pub events: std::collections::BTreeMap<String, EventSeries>,
}

impl Monitor {
    /// Record `ms` for `event` at `now_secs` when `threshold_ms` is set and reached.
    pub fn add_if_needed(&mut self, event: &str, ms: u64, threshold_ms: u64, now_secs: i64) {
        if threshold_ms == 0 || ms < threshold_ms {
            return;
        }
        let s = self.events.entry(event.to_string()).or_default();
        s.max_ms = s.max_ms.max(ms);
        if let Some(last) = s.samples.back_mut() {
            if last.0 == now_secs {
                last.1 = last.1.max(ms);
                return;
            }
        }
        s.samples.push_back((now_secs, ms));
        if s.samples.len() > HISTORY_LEN {
            s.samples.pop_front();
        }
    }

    /// Forget the named events (all when none is named); the number forgotten.
    pub fn reset(&mut self, names: &[String]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        names
            .iter()
            .filter(|n| self.events.remove(n.as_str()).is_some())
            .count()
    }

    /// LATENCY DOCTOR's report, in the spirit of Redis's (`createLatencyReport`).
    pub fn doctor(&self) -> String {
        if self.events.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n".into();
        }
        let mut out = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
        );
        for (i, (name, s)) in self.events.iter().enumerate() {
            let n = s.samples.len().max(1) as u64;
            let avg = s.samples.iter().map(|x| x.1).sum::<u64>() / n;
            let dev = s.samples.iter().map(|x| x.1.abs_diff(avg)).sum::<u64>() / n;
            let period = match (s.samples.front(), s.samples.back()) {
                (Some(a), Some(b)) if s.samples.len() > 1 => {
                    (b.0 - a.0) / (s.samples.len() as i64 - 1)
                }
                _ => 0,
            };
            out.push_str(&format!(
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {dev}ms, period {period} sec). Worst all time event {}ms.\n",
                i + 1,
                s.samples.len(),
                s.max_ms
            ));
        }
        out.push_str("\nI have a few advices for you:\n\n");
        if self.events.contains_key("command") || self.events.contains_key("fast-command") {
            out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if self.events.contains_key("expire-cycle") {
            out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        out.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to: 1) Lower the system load. 2) Use a computer / VM just for Redis if you are running other software in the same system.\n");
        out
    }

    /// LATENCY GRAPH: one column per sample, oldest first, its height proportional to the
    /// latency between the lowest and highest sample (Redis draws the same with its
    /// sparkline module). None when the event has no samples.
    pub fn graph(&self, event: &str) -> Option<String> {
        let s = self.events.get(event)?;
        if s.samples.is_empty() {
            return None;
        }
        let high = s.samples.iter().map(|x| x.1).max().unwrap_or(0);
        let low = s.samples.iter().map(|x| x.1).min().unwrap_or(0);
        let mut out = format!(
            "{event} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
            s.max_ms,
            "-".repeat(80)
        );
        const ROWS: u64 = 4;
        for row in (1..=ROWS).rev() {
            let line: String = s
                .samples
                .iter()
                .map(|x| {
                    let h = if high == low {
                        ROWS
                    } else {
                        1 + (x.1 - low) * (ROWS - 1) / (high - low)
                    };
                    if h >= row {
                        '#'
                    } else {
                        ' '
                    }
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        Some(out)
    }
}

#[cfg(test)]
mod monitor_tests {
    use super::*;

    #[test]
    fn one_sample_a_second_the_highest_kept() {
        let mut m = Monitor::default();
        m.add_if_needed("command", 5, 10, 100);
        assert!(m.events.is_empty(), "under the threshold");
        m.add_if_needed("command", 300, 0, 100);
        assert!(m.events.is_empty(), "threshold 0: off");
        m.add_if_needed("command", 30, 10, 100);
        m.add_if_needed("command", 50, 10, 100);
        m.add_if_needed("command", 20, 10, 101);
        let s = &m.events["command"];
        assert_eq!(s.samples, [(100, 50), (101, 20)]);
        assert_eq!(s.max_ms, 50);
        assert!(m.doctor().contains("1. command: 2 latency spikes"));
        assert!(m
            .graph("command")
            .unwrap()
            .starts_with("command - high 50 ms, low 20 ms"));
        assert_eq!(m.reset(&["nosuch".into()]), 0);
        assert_eq!(m.reset(&[]), 1);
        assert!(m.graph("command").is_none());
    }
}
