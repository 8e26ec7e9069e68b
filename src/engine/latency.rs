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
