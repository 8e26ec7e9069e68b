//! The engine's Prometheus metrics: a copy of the counters the engine keeps anyway (INFO's
//! statistics, per-command calls and latency buckets, replication and log state) taken under
//! the state lock at scrape time, then encoded in the OpenMetrics text format with
//! prometheus-client outside the lock. Pure except that it reads `/proc/self/statm` for RSS.
//!
//! Nothing is counted for the endpoint's sake on the request path: commands only bump one
//! latency bucket next to the calls and microseconds they already counted (`latency`). Families
//! are named `redispair_engine_*` and documented in docs/operations.md ("Metrics").

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::engine::latency::{self, LatencySnapshot, BUCKETS};
use crate::engine::persistence::gate::ReplyGate;
use crate::engine::replication::{lease, semisync, Role};
use crate::engine::state::EngineState;

type Labels = Vec<(&'static str, String)>;

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(u64),
    Gauge(i64),
    GaugeF(f64),
    Histogram {
        sum_seconds: f64,
        count: u64,
        counts: [u64; BUCKETS],
    },
}

impl Value {
    fn metric_type(&self) -> MetricType {
        match self {
            Value::Counter(_) => MetricType::Counter,
            Value::Gauge(_) | Value::GaugeF(_) => MetricType::Gauge,
            Value::Histogram { .. } => MetricType::Histogram,
        }
    }

    fn histogram(h: &LatencySnapshot) -> Value {
        Value::Histogram {
            sum_seconds: h.sum_us as f64 / 1e6,
            count: h.count(),
            counts: h.counts,
        }
    }
}

/// A metric family: its name (without `_total` for counters: the encoder adds it), help text
/// and samples. Every sample of a family has the same value kind.
#[derive(Debug, Clone)]
struct Family {
    name: &'static str,
    help: &'static str,
    /// Needed apart from the samples: a family with none (no command run yet) still shows.
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

/// Everything one scrape shows, copied out of the engine.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    families: Vec<Family>,
}

impl Snapshot {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        samples: Vec<(Labels, Value)>,
    ) {
        self.families.push(Family {
            name,
            help,
            kind,
            samples,
        });
    }

    fn one(&mut self, name: &'static str, help: &'static str, v: Value) {
        self.add(name, help, v.metric_type(), vec![(Vec::new(), v)]);
    }
}

/// Copy what the endpoint shows out of the locked state. Cheap: a few hundred numbers (one
/// entry per command used so far), no walk over keys.
pub fn snapshot(st: &EngineState, gate: &ReplyGate, now_ms: i64) -> Snapshot {
    let mut s = Snapshot::default();
    let stats = &st.stats;
    s.one(
        "redispair_engine_build_info",
        "Engine version and the Redis version it matches (always 1)",
        Value::Gauge(1),
    );
    // The labels of the build info go on its one sample.
    if let Some(f) = s.families.last_mut() {
        f.samples[0].0 = vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("redis_version", crate::engine::REDIS_VERSION.to_string()),
        ];
    }
    s.one(
        "redispair_engine_uptime_seconds",
        "Seconds since the engine started",
        Value::Gauge((now_ms - st.start_ms).max(0) / 1000),
    );

    // Commands: calls, failures, rejections and latency per command, sorted by name so the
    // output is stable.
    let mut commands: Vec<_> = stats.commands.iter().map(|(k, v)| (k.0, *v)).collect();
    commands.sort_by_key(|(k, _)| *k);
    let label = |name: &str| vec![("command", name.to_ascii_lowercase())];
    s.add(
        "redispair_engine_commands",
        "Commands executed, by command",
        MetricType::Counter,
        commands
            .iter()
            .map(|(k, c)| (label(k), Value::Counter(c.calls)))
            .collect(),
    );
    s.add(
        "redispair_engine_command_failures",
        "Commands that replied with an error, by command",
        MetricType::Counter,
        commands
            .iter()
            .map(|(k, c)| (label(k), Value::Counter(c.failed)))
            .collect(),
    );
    s.add(
        "redispair_engine_command_rejections",
        "Commands refused before running (arity, auth, OOM, read-only ...), by command",
        MetricType::Counter,
        commands
            .iter()
            .map(|(k, c)| (label(k), Value::Counter(c.rejected)))
            .collect(),
    );
    s.add(
        "redispair_engine_command_duration_seconds",
        "Time a command took to execute under the engine's lock (not network or queueing), by command",
        MetricType::Histogram,
        commands
            .iter()
            .map(|(k, c)| {
                (
                    label(k),
                    Value::Histogram {
                        sum_seconds: c.usec as f64 / 1e6,
                        count: c.calls,
                        counts: c.hist,
                    },
                )
            })
            .collect(),
    );
    s.one(
        "redispair_engine_commands_processed",
        "Commands processed (all commands)",
        Value::Counter(stats.total_commands_processed),
    );
    s.one(
        "redispair_engine_error_replies",
        "Error replies sent",
        Value::Counter(stats.total_error_replies),
    );

    // Keyspace.
    let dbs: Vec<_> = st
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, db)| !db.is_empty())
        .collect();
    s.add(
        "redispair_engine_keys",
        "Keys, by database (databases without keys are left out)",
        MetricType::Gauge,
        dbs.iter()
            .map(|(i, db)| {
                (
                    vec![("db", format!("db{i}"))],
                    Value::Gauge(db.len() as i64),
                )
            })
            .collect(),
    );
    s.add(
        "redispair_engine_keys_with_expiry",
        "Keys with a time to live, by database",
        MetricType::Gauge,
        dbs.iter()
            .map(|(i, db)| {
                (
                    vec![("db", format!("db{i}"))],
                    Value::Gauge(db.volatile_len() as i64),
                )
            })
            .collect(),
    );
    s.one(
        "redispair_engine_expired_keys",
        "Keys removed because their time to live ran out",
        Value::Counter(stats.expired_keys),
    );
    s.one(
        "redispair_engine_evicted_keys",
        "Keys evicted by the maxmemory policy",
        Value::Counter(stats.evicted_keys),
    );
    s.one(
        "redispair_engine_keyspace_hits",
        "Key lookups that found the key",
        Value::Counter(stats.keyspace_hits),
    );
    s.one(
        "redispair_engine_keyspace_misses",
        "Key lookups that did not find the key",
        Value::Counter(stats.keyspace_misses),
    );

    // Memory.
    s.one(
        "redispair_engine_memory_used_bytes",
        "Heap bytes the engine has allocated (what maxmemory is compared with)",
        Value::Gauge(crate::engine::memory::used_memory() as i64),
    );
    s.one(
        "redispair_engine_memory_rss_bytes",
        "Resident set size of the process",
        Value::Gauge(crate::engine::info::rss_bytes() as i64),
    );
    s.one(
        "redispair_engine_memory_max_bytes",
        "The maxmemory setting (0: no limit)",
        Value::Gauge(st.config.settings.maxmemory as i64),
    );

    // Clients and network.
    s.one(
        "redispair_engine_connected_clients",
        "Client connections open (replicas included)",
        Value::Gauge(st.clients.len() as i64),
    );
    s.one(
        "redispair_engine_blocked_clients",
        "Clients blocked in BLPOP and the like",
        Value::Gauge(st.blocking.clients.len() as i64),
    );
    s.one(
        "redispair_engine_connections_received",
        "Connections accepted",
        Value::Counter(stats.total_connections_received),
    );
    s.one(
        "redispair_engine_connections_rejected",
        "Connections refused (maxclients)",
        Value::Counter(stats.rejected_connections),
    );
    s.one(
        "redispair_engine_net_input_bytes",
        "Bytes read from clients",
        Value::Counter(stats.total_net_input_bytes),
    );
    s.one(
        "redispair_engine_net_output_bytes",
        "Bytes written to clients",
        Value::Counter(stats.total_net_output_bytes),
    );

    replication(&mut s, st, gate, now_ms);
    log(&mut s, st);
    archive(&mut s, st, now_ms);
    s
}

/// The archiver's state (archiving on only): what the archive-lag alert reads.
fn archive(s: &mut Snapshot, st: &EngineState, now_ms: i64) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(a) = &st.archive else {
        return;
    };
    let (bytes, ms) = a.lag(now_ms);
    s.one(
        "redispair_engine_archive_lag_seconds",
        "Age of the oldest durable write not yet in the object store (the archive's RPO now; 0 on a replica)",
        Value::GaugeF(ms as f64 / 1000.0),
    );
    s.one(
        "redispair_engine_archive_lag_bytes",
        "Durable bytes of the write log not yet in the object store (0 on a replica)",
        Value::Gauge(i64::try_from(bytes).unwrap_or(i64::MAX)),
    );
    s.one(
        "redispair_engine_archive_ok",
        "0 while uploads to the object store fail, 1 otherwise",
        Value::Gauge(!a.failing() as i64),
    );
    s.one(
        "redispair_engine_archive_uploaded_bytes",
        "Bytes uploaded to the archive",
        Value::Counter(a.bytes.load(Relaxed)),
    );
    s.one(
        "redispair_engine_archive_errors",
        "Failed archive operations (uploads, listings)",
        Value::Counter(a.errors.load(Relaxed)),
    );
}

fn replication(s: &mut Snapshot, st: &EngineState, gate: &ReplyGate, now_ms: i64) {
    let r = &st.repl;
    let role = match r.role {
        Role::Master => "master",
        Role::Replica => "replica",
    };
    s.add(
        "redispair_engine_role",
        "1 for the engine's current role (master, replica), 0 for the other",
        MetricType::Gauge,
        ["master", "replica"]
            .iter()
            .map(|x| {
                (
                    vec![("role", x.to_string())],
                    Value::Gauge((*x == role) as i64),
                )
            })
            .collect(),
    );
    s.one(
        "redispair_engine_term",
        "The replication term (grows at every promotion)",
        Value::Gauge(r.term as i64),
    );
    s.one(
        "redispair_engine_replication_offset_bytes",
        "The engine's replication stream offset",
        Value::Gauge(st.stream.offset as i64),
    );
    // A replica's side of the link.
    if r.role == Role::Replica {
        s.one(
            "redispair_engine_master_link_up",
            "1 while the replica's link to its master is up (replicas only)",
            Value::Gauge(r.link.up as i64),
        );
        s.one(
            "redispair_engine_master_last_io_seconds",
            "Seconds since the replica last heard from its master (replicas only; -1: never)",
            Value::Gauge(if r.link.last_io_ms > 0 {
                (now_ms - r.link.last_io_ms).max(0) / 1000
            } else {
                -1
            }),
        );
    }
    // The master's view of its replicas: how far each is behind, in bytes of the stream.
    let mut replicas: Vec<_> = r.replicas.values().filter(|x| x.online).collect();
    replicas.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
    s.one(
        "redispair_engine_connected_replicas",
        "Replicas attached and streaming",
        Value::Gauge(replicas.len() as i64),
    );
    let name = |x: &crate::engine::replication::ReplicaInfo| {
        vec![("replica", format!("{}:{}", x.ip, x.port))]
    };
    s.add(
        "redispair_engine_replica_lag_bytes",
        "Bytes of the stream a replica has not acknowledged (masters only)",
        MetricType::Gauge,
        replicas
            .iter()
            .map(|x| {
                (
                    name(x),
                    Value::Gauge(st.stream.offset.saturating_sub(x.ack_offset) as i64),
                )
            })
            .collect(),
    );
    s.add(
        "redispair_engine_replica_ack_age_seconds",
        "Seconds since a replica last acknowledged (masters only)",
        MetricType::Gauge,
        replicas
            .iter()
            .map(|x| {
                (
                    name(x),
                    Value::GaugeF((now_ms - x.last_ack_ms).max(0) as f64 / 1000.0),
                )
            })
            .collect(),
    );
    s.one(
        "redispair_engine_full_syncs",
        "Full synchronisations served to replicas",
        Value::Counter(r.sync_full),
    );
    s.one(
        "redispair_engine_partial_syncs",
        "Partial synchronisations accepted",
        Value::Counter(r.sync_partial_ok),
    );
    let mode = match semisync::mode(st.config.get("replication-mode")) {
        semisync::Mode::Async => "async",
        semisync::Mode::SemiSync => "semi-sync",
        semisync::Mode::Sync => "sync",
    };
    s.add(
        "redispair_engine_replication_mode",
        "1 for the configured replication mode (async, semi-sync, sync)",
        MetricType::Gauge,
        ["async", "semi-sync", "sync"]
            .iter()
            .map(|x| {
                (
                    vec![("mode", x.to_string())],
                    Value::Gauge((*x == mode) as i64),
                )
            })
            .collect(),
    );
    s.one(
        "redispair_engine_semi_sync_degraded",
        "1 while semi-sync has degraded to async (writes are not waiting for the replica)",
        Value::Gauge(r.semi.degraded as i64),
    );
    s.one(
        "redispair_engine_write_lease_remaining_seconds",
        "Seconds left of the master's write lease (0: expired or no lease)",
        Value::GaugeF(lease::remaining_ms(&st.repl).max(0) as f64 / 1000.0),
    );
    s.one(
        "redispair_engine_reply_wait_seconds",
        "How long replies to writes waited for the replica's acknowledgement (semi-sync, sync) or the fsync (appendfsync always); replies released at once are not counted",
        Value::histogram(&gate.waits.snapshot()),
    );
}

fn log(s: &mut Snapshot, st: &EngineState) {
    use std::sync::atomic::Ordering::Relaxed;
    let p = &st.persist;
    s.one(
        "redispair_engine_persistence_enabled",
        "1 when the write log is on",
        Value::Gauge(p.enabled as i64),
    );
    let Some(w) = &st.stream.log else {
        return;
    };
    let base = p.last_snapshot_offset.unwrap_or(0);
    s.one(
        "redispair_engine_log_bytes",
        "Bytes of the write log since the last snapshot (what a restart replays)",
        Value::Gauge(st.stream.offset.saturating_sub(base) as i64),
    );
    s.one(
        "redispair_engine_log_written_offset_bytes",
        "Stream offset written to the log file",
        Value::Gauge(w.written.load(Relaxed) as i64),
    );
    s.one(
        "redispair_engine_log_durable_offset_bytes",
        "Stream offset known to be on stable storage (fsynced)",
        Value::Gauge(w.durable.load(Relaxed) as i64),
    );
    s.one(
        "redispair_engine_log_pending_bytes",
        "Bytes queued for the log and not written yet",
        Value::Gauge(st.stream.offset.saturating_sub(w.written.load(Relaxed)) as i64),
    );
    s.one(
        "redispair_engine_log_fsync_duration_seconds",
        "How long each fsync of the write log took",
        Value::histogram(&w.fsync_latency.snapshot()),
    );
    s.one(
        "redispair_engine_log_write_ok",
        "1 when the last write or fsync of the log succeeded, 0 while it fails (writes are refused)",
        Value::Gauge(!w.failed.load(Relaxed) as i64),
    );
    s.one(
        "redispair_engine_log_write_errors",
        "Failed writes and fsyncs of the log",
        Value::Counter(w.write_errors.load(Relaxed)),
    );
    s.one(
        "redispair_engine_snapshots",
        "Snapshots completed",
        Value::Counter(p.snapshots_done),
    );
    s.one(
        "redispair_engine_snapshot_last_ok",
        "1 when the last snapshot succeeded (or none was taken yet)",
        Value::Gauge((p.last_snapshot_ok || p.snapshots_done == 0) as i64),
    );
}

/// prometheus-client's view of a snapshot: each family encoded once per scrape.
#[derive(Debug)]
struct SnapshotCollector(Snapshot);

impl prometheus_client::collector::Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0.families {
            let mut m = encoder.encode_descriptor(f.name, f.help, None, f.kind)?;
            for (labels, v) in &f.samples {
                // An empty label set would print as `name{}`: encode those on the family.
                if labels.is_empty() {
                    encode_value(&mut m, v)?;
                } else {
                    encode_value(&mut m.encode_family(labels)?, v)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_value(e: &mut MetricEncoder<'_>, v: &Value) -> Result<(), std::fmt::Error> {
    match v {
        Value::Counter(c) => e.encode_counter::<NoLabelSet, _, u64>(c, None),
        Value::Gauge(g) => e.encode_gauge(g),
        Value::GaugeF(g) => e.encode_gauge(g),
        Value::Histogram {
            sum_seconds,
            count,
            counts,
        } => e.encode_histogram::<NoLabelSet>(
            *sum_seconds,
            *count,
            &latency::as_buckets(counts),
            None,
        ),
    }
}

/// The OpenMetrics text of a snapshot (ends with `# EOF`).
pub fn encode(snap: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snap)));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Config;

    #[test]
    fn a_fresh_engine_encodes_every_always_present_family() {
        let st = EngineState::new(Config::default(), 1_000);
        let gate = ReplyGate::default();
        let text = encode(snapshot(&st, &gate, 5_000));
        for want in [
            "# TYPE redispair_engine_commands counter",
            "# TYPE redispair_engine_command_duration_seconds histogram",
            "redispair_engine_role{role=\"master\"} 1",
            "redispair_engine_role{role=\"replica\"} 0",
            "redispair_engine_uptime_seconds 4",
            "redispair_engine_expired_keys_total 0",
            "redispair_engine_reply_wait_seconds_count 0",
            "redispair_engine_reply_wait_seconds_bucket{le=\"+Inf\"} 0",
            "redispair_engine_persistence_enabled 0",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
