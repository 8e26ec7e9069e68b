//! Prometheus metrics of the operator (prometheus-client): reconciles, errors by category,
//! failovers, failover duration, pairs by phase. Pure bookkeeping; serving them is in `http`.

use std::collections::HashMap;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<CategoryLabels, Counter>,
    pub failovers: Counter,
    pub failover_duration: Histogram,
    pub pairs: Family<PhaseLabels, Gauge>,
    /// Last phase of each pair (namespace/name), to keep `pairs` exact.
    phases: Mutex<HashMap<String, String>>,
}

impl Metrics {
    /// Create the metrics and register them.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            reconciles: Counter::default(),
            errors: Family::default(),
            failovers: Counter::default(),
            failover_duration: Histogram::new([
                0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0,
            ]),
            pairs: Family::default(),
            phases: Mutex::default(),
        };
        registry.register(
            "redispair_reconciles",
            "Reconcile passes",
            m.reconciles.clone(),
        );
        registry.register(
            "redispair_reconcile_errors",
            "Reconcile errors by category",
            m.errors.clone(),
        );
        registry.register(
            "redispair_failovers",
            "Completed failovers and switchovers",
            m.failovers.clone(),
        );
        registry.register(
            "redispair_failover_duration_seconds",
            "Seconds from detection to the read-write Service selecting the new master",
            m.failover_duration.clone(),
        );
        registry.register("redispair_pairs", "Pairs by phase", m.pairs.clone());
        m
    }

    pub fn error(&self, category: &str) {
        self.errors
            .get_or_create(&CategoryLabels {
                category: category.to_string(),
            })
            .inc();
    }

    pub fn failover_completed(&self, duration_ms: u64) {
        self.failovers.inc();
        self.failover_duration.observe(duration_ms as f64 / 1000.0);
    }

    /// Record a pair's phase (None: the pair is gone).
    pub fn set_phase(&self, pair: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock();
        let old = match phase {
            Some(p) => phases.insert(pair.to_string(), p.to_string()),
            None => phases.remove(pair),
        };
        if old.as_deref() == phase {
            return;
        }
        if let Some(old) = old {
            self.pairs.get_or_create(&PhaseLabels { phase: old }).dec();
        }
        if let Some(p) = phase {
            self.pairs
                .get_or_create(&PhaseLabels {
                    phase: p.to_string(),
                })
                .inc();
        }
    }
}

/// The metrics in Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_move_between_gauges_and_everything_is_exported() {
        let mut r = Registry::default();
        let m = Metrics::register(&mut r);
        m.set_phase("ns/a", Some("Creating"));
        m.set_phase("ns/a", Some("Ready"));
        m.set_phase("ns/b", Some("Ready"));
        m.error("ApplyFailed");
        m.failover_completed(1500);
        m.reconciles.inc();
        let text = encode(&r);
        assert!(
            text.contains("redispair_pairs{phase=\"Ready\"} 2"),
            "{text}"
        );
        assert!(text.contains("redispair_pairs{phase=\"Creating\"} 0"));
        assert!(text.contains("redispair_reconcile_errors_total{category=\"ApplyFailed\"} 1"));
        assert!(text.contains("redispair_failovers_total 1"));
        assert!(text.contains("redispair_failover_duration_seconds_sum 1.5"));
        assert!(text.contains("redispair_reconciles_total 1"));
        m.set_phase("ns/b", None);
        assert!(encode(&r).contains("redispair_pairs{phase=\"Ready\"} 1"));
    }
}
