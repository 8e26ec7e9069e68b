//! Prometheus metrics of the operator (prometheus-client): reconciles and their duration,
//! errors by category, failovers, failover duration, pairs by phase, and per pair its phase,
//! term, members' roles, replication lag, failovers and the last failover's duration (series
//! removed when the pair is deleted). Pure bookkeeping; serving them is in `http`.

use std::collections::{HashMap, HashSet, VecDeque};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairLabels {
    pub namespace: String,
    pub pair: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairPhaseLabels {
    pub namespace: String,
    pub pair: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    pub namespace: String,
    pub pair: String,
    pub pod: String,
    pub role: String,
}

/// What the per-pair series show of one pair after a pass.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PairSnapshot {
    pub phase: String,
    pub term: i64,
    pub lag_bytes: i64,
    pub master: Option<String>,
    pub replica: Option<String>,
}

/// Every phase a pair can show (one series each, 1 for the current one, like kube-state-metrics).
const PHASES: [&str; 6] = [
    "Creating",
    "Ready",
    "Degraded",
    "FailingOver",
    "Failed",
    "Upgrading",
];

pub struct Metrics {
    pub reconciles: Counter,
    pub reconcile_duration: Histogram,
    pub pair_phase: Family<PairPhaseLabels, Gauge>,
    pub pair_term: Family<PairLabels, Gauge>,
    pub pair_lag_bytes: Family<PairLabels, Gauge>,
    pub pair_member_role: Family<MemberLabels, Gauge>,
    pub pair_failovers: Family<PairLabels, Counter>,
    pub pair_last_failover_seconds: Family<PairLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The last snapshot per pair (namespace/name): which label sets to remove.
    snapshots: Mutex<HashMap<String, PairSnapshot>>,
    pub errors: Family<CategoryLabels, Counter>,
    pub failovers: Counter,
    pub failover_duration: Histogram,
    pub pairs: Family<PhaseLabels, Gauge>,
    /// Last phase of each pair (namespace/name), to keep `pairs` exact.
    phases: Mutex<HashMap<String, String>>,
    /// Pairs deleted, by uid. A pass of the controller that was running when its pair was
    /// deleted ends after the prober has forgotten the pair, and would bring its series back
    /// for good (seen on the cluster: the scrape case found a deleted pair's series a minute
    /// later). Every per-pair update holds this lock and drops updates for a deleted uid, so a
    /// late pass and the forgetting cannot interleave; a pair created again under the same
    /// name has a new uid.
    gone: Mutex<Gone>,
}

/// The last [`Gone::CAP`] deleted pairs' uids (a late pass comes within seconds of the deletion;
/// the bound keeps an operator that sees many pairs come and go from growing).
#[derive(Default)]
struct Gone {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Gone {
    const CAP: usize = 1024;

    fn contains(&self, uid: &str) -> bool {
        !uid.is_empty() && self.set.contains(uid)
    }

    fn insert(&mut self, uid: &str) {
        if uid.is_empty() || !self.set.insert(uid.to_string()) {
            return;
        }
        self.order.push_back(uid.to_string());
        if self.order.len() > Self::CAP {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

impl Metrics {
    /// Create the metrics and register them.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            reconciles: Counter::default(),
            reconcile_duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            pair_phase: Family::default(),
            pair_term: Family::default(),
            pair_lag_bytes: Family::default(),
            pair_member_role: Family::default(),
            pair_failovers: Family::default(),
            pair_last_failover_seconds: Family::default(),
            snapshots: Mutex::default(),
            errors: Family::default(),
            failovers: Counter::default(),
            failover_duration: Histogram::new([
                0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0,
            ]),
            pairs: Family::default(),
            phases: Mutex::default(),
            gone: Mutex::default(),
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
        registry.register(
            "redispair_reconcile_duration_seconds",
            "Seconds one reconcile pass took",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "redispair_pair_phase",
            "1 for the pair's current phase, 0 for the others",
            m.pair_phase.clone(),
        );
        registry.register(
            "redispair_pair_term",
            "The pair's term (grows at every failover or switchover)",
            m.pair_term.clone(),
        );
        registry.register(
            "redispair_pair_replication_lag_bytes",
            "Bytes of the master's stream the replica has not acknowledged",
            m.pair_lag_bytes.clone(),
        );
        registry.register(
            "redispair_pair_member_role",
            "1 for each member's current role (master, replica)",
            m.pair_member_role.clone(),
        );
        registry.register(
            "redispair_pair_failovers",
            "Failovers and switchovers completed for the pair",
            m.pair_failovers.clone(),
        );
        registry.register(
            "redispair_pair_last_failover_duration_seconds",
            "Seconds the pair's last failover or switchover took",
            m.pair_last_failover_seconds.clone(),
        );
        m
    }

    /// The per-pair series after a pass of `key` (namespace/name) whose object has `uid`.
    pub fn set_pair(&self, key: &str, uid: &str, snap: PairSnapshot) {
        let gone = self.gone.lock();
        if gone.contains(uid) {
            return;
        }
        let (namespace, pair) = split_key(key);
        let labels = PairLabels {
            namespace: namespace.clone(),
            pair: pair.clone(),
        };
        let mut snapshots = self.snapshots.lock();
        let old = snapshots.insert(key.to_string(), snap.clone());
        // Members whose role changed lose their old series.
        if let Some(old) = &old {
            for (pod, role) in [(&old.master, "master"), (&old.replica, "replica")] {
                if let Some(pod) = pod {
                    self.pair_member_role.remove(&MemberLabels {
                        namespace: namespace.clone(),
                        pair: pair.clone(),
                        pod: pod.clone(),
                        role: role.into(),
                    });
                }
            }
        }
        for phase in PHASES {
            self.pair_phase
                .get_or_create(&PairPhaseLabels {
                    namespace: namespace.clone(),
                    pair: pair.clone(),
                    phase: phase.into(),
                })
                .set(i64::from(phase == snap.phase));
        }
        self.pair_term.get_or_create(&labels).set(snap.term);
        self.pair_lag_bytes
            .get_or_create(&labels)
            .set(snap.lag_bytes);
        for (pod, role) in [(&snap.master, "master"), (&snap.replica, "replica")] {
            if let Some(pod) = pod {
                self.pair_member_role
                    .get_or_create(&MemberLabels {
                        namespace: namespace.clone(),
                        pair: pair.clone(),
                        pod: pod.clone(),
                        role: role.into(),
                    })
                    .set(1);
            }
        }
        // The counter exists from the first pass (0), so rate() works from there.
        let _ = self.pair_failovers.get_or_create(&labels);
    }

    /// A failover or switchover of `key` (object `uid`) completed in `duration_ms`.
    pub fn pair_failover_completed(&self, key: &str, uid: &str, duration_ms: u64) {
        let gone = self.gone.lock();
        if gone.contains(uid) {
            return;
        }
        let (namespace, pair) = split_key(key);
        let labels = PairLabels { namespace, pair };
        self.pair_failovers.get_or_create(&labels).inc();
        self.pair_last_failover_seconds
            .get_or_create(&labels)
            .set(duration_ms as f64 / 1000.0);
    }

    /// The pair `key` (object `uid`) was deleted: every series of it goes, and stays gone
    /// whatever a pass still running for it reports later.
    pub fn forget_pair(&self, key: &str, uid: &str) {
        let mut gone = self.gone.lock();
        gone.insert(uid);
        self.set_phase_locked(key, None);
        let (namespace, pair) = split_key(key);
        let labels = PairLabels {
            namespace: namespace.clone(),
            pair: pair.clone(),
        };
        if let Some(old) = self.snapshots.lock().remove(key) {
            for (pod, role) in [(&old.master, "master"), (&old.replica, "replica")] {
                if let Some(pod) = pod {
                    self.pair_member_role.remove(&MemberLabels {
                        namespace: namespace.clone(),
                        pair: pair.clone(),
                        pod: pod.clone(),
                        role: role.into(),
                    });
                }
            }
        }
        for phase in PHASES {
            self.pair_phase.remove(&PairPhaseLabels {
                namespace: namespace.clone(),
                pair: pair.clone(),
                phase: phase.into(),
            });
        }
        self.pair_term.remove(&labels);
        self.pair_lag_bytes.remove(&labels);
        self.pair_failovers.remove(&labels);
        self.pair_last_failover_seconds.remove(&labels);
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
    pub fn set_phase(&self, pair: &str, uid: &str, phase: Option<&str>) {
        let gone = self.gone.lock();
        if gone.contains(uid) {
            return;
        }
        self.set_phase_locked(pair, phase);
    }

    /// [`Metrics::set_phase`] with the `gone` lock held by the caller.
    fn set_phase_locked(&self, pair: &str, phase: Option<&str>) {
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

fn split_key(key: &str) -> (String, String) {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    (ns.to_string(), name.to_string())
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
        m.set_phase("ns/a", "", Some("Creating"));
        m.set_phase("ns/a", "", Some("Ready"));
        m.set_phase("ns/b", "", Some("Ready"));
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
        m.set_phase("ns/b", "", None);
        assert!(encode(&r).contains("redispair_pairs{phase=\"Ready\"} 1"));
    }

    #[test]
    fn per_pair_series_follow_the_pair_and_go_with_it() {
        let mut r = Registry::default();
        let m = Metrics::register(&mut r);
        m.set_phase("ns/cache", "u1", Some("Ready"));
        m.set_pair(
            "ns/cache",
            "u1",
            PairSnapshot {
                phase: "Ready".into(),
                term: 1,
                lag_bytes: 0,
                master: Some("cache-a".into()),
                replica: Some("cache-b".into()),
            },
        );
        let text = encode(&r);
        assert!(
            text.contains(r#"redispair_pair_phase{namespace="ns",pair="cache",phase="Ready"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"redispair_pair_phase{namespace="ns",pair="cache",phase="Failed"} 0"#)
        );
        assert!(text.contains(r#"redispair_pair_term{namespace="ns",pair="cache"} 1"#));
        assert!(text.contains(r#"redispair_pair_member_role{namespace="ns",pair="cache",pod="cache-a",role="master"} 1"#));
        assert!(text.contains(r#"redispair_pair_failovers_total{namespace="ns",pair="cache"} 0"#));
        // A failover moves the roles and the term; the old role series are gone.
        m.pair_failover_completed("ns/cache", "u1", 1200);
        m.set_pair(
            "ns/cache",
            "u1",
            PairSnapshot {
                phase: "Ready".into(),
                term: 2,
                lag_bytes: 10,
                master: Some("cache-b".into()),
                replica: Some("cache-a".into()),
            },
        );
        let text = encode(&r);
        assert!(text.contains(r#"redispair_pair_member_role{namespace="ns",pair="cache",pod="cache-b",role="master"} 1"#), "{text}");
        assert!(!text.contains(r#"pod="cache-a",role="master""#), "{text}");
        assert!(text.contains(r#"redispair_pair_term{namespace="ns",pair="cache"} 2"#));
        assert!(text.contains(r#"redispair_pair_failovers_total{namespace="ns",pair="cache"} 1"#));
        assert!(text.contains(
            r#"redispair_pair_last_failover_duration_seconds{namespace="ns",pair="cache"} 1.2"#
        ));
        // Deleted: nothing of it is left.
        m.forget_pair("ns/cache", "u1");
        let text = encode(&r);
        assert!(!text.contains(r#"pair="cache""#), "{text}");
        assert!(
            text.contains("redispair_pairs{phase=\"Ready\"} 0"),
            "{text}"
        );
        // A pass that was running when the pair was deleted ends after it was forgotten: it
        // brings nothing back. A pair created again under the name (a new uid) has series.
        let late = PairSnapshot {
            phase: "Ready".into(),
            term: 2,
            lag_bytes: 0,
            master: Some("cache-b".into()),
            replica: Some("cache-a".into()),
        };
        m.set_phase("ns/cache", "u1", Some("Ready"));
        m.set_pair("ns/cache", "u1", late.clone());
        m.pair_failover_completed("ns/cache", "u1", 900);
        let text = encode(&r);
        assert!(!text.contains(r#"pair="cache""#), "{text}");
        assert!(
            text.contains("redispair_pairs{phase=\"Ready\"} 0"),
            "{text}"
        );
        m.set_phase("ns/cache", "u2", Some("Ready"));
        m.set_pair("ns/cache", "u2", late);
        let text = encode(&r);
        assert!(
            text.contains(r#"redispair_pair_term{namespace="ns",pair="cache"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("redispair_pairs{phase=\"Ready\"} 1"),
            "{text}"
        );
    }
}
