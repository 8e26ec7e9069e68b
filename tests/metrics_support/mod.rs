//! Scrapes a Prometheus endpoint (GET /metrics over plain HTTP/1.1) and checks what it shows,
//! parsed by a real OpenMetrics parser (openmetrics-parser), not by matching substrings: each
//! family by its type and label names, samples by their label values. The checks of what an
//! engine and the operator must show are here, shared by the loopback test
//! (tests/metrics_exposition.rs) and the cluster scrape case (tests/e2e/metrics.rs). Checks
//! return `Err(what is wrong)` rather than panic, so a caller can wait for them to hold.
//! Does I/O: `scrape` makes one TCP connection.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use openmetrics_parser::{
    MetricFamily, MetricNumber, MetricsExposition, OpenMetricsType, OpenMetricsValue,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use openmetrics_parser::OpenMetricsType as Kind;

type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

/// One sample's value, as the checks use it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A gauge's or a counter's value.
    Number(f64),
    Histogram(Histogram),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub count: f64,
    pub sum: f64,
    /// (upper bound, cumulative count), in the exposition's order.
    pub buckets: Vec<(f64, f64)>,
}

/// One series of a family: its labels (name → value) and its value.
pub type Series = (BTreeMap<String, String>, Value);

/// One parsed scrape.
pub struct Scrape {
    families: HashMap<String, Family>,
}

/// GET `path` from `addr` ("host:port"), with a deadline: the response body, or what went
/// wrong (no answer, a status other than 200, not OpenMetrics, does not parse).
pub async fn scrape(addr: &str) -> Result<Scrape, String> {
    let body = tokio::time::timeout(Duration::from_secs(10), get(addr, "/metrics"))
        .await
        .map_err(|_| format!("GET http://{addr}/metrics: no answer within 10 s"))??;
    Scrape::parse(&body).map_err(|e| format!("http://{addr}/metrics: {e}"))
}

async fn get(addr: &str, path: &str) -> Result<String, String> {
    let what = format!("GET http://{addr}{path}");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| format!("{what}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let raw = String::from_utf8(raw).map_err(|e| format!("{what}: not UTF-8: {e}"))?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{what}: no end of headers in {raw:?}"))?;
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("{what}: {status}"));
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let ctype = header("content-type").unwrap_or_default();
    if !ctype.starts_with("application/openmetrics-text") {
        return Err(format!("{what}: content type {ctype:?}, not OpenMetrics"));
    }
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return dechunk(body).ok_or_else(|| format!("{what}: bad chunked body"));
    }
    Ok(body.to_string())
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

impl Scrape {
    /// Parse an OpenMetrics exposition (it must end with `# EOF`).
    ///
    /// openmetrics-parser 0.5.1 glues a family without samples to the family after it (its
    /// grammar's `metricdescriptor* ~ metric+` takes the next family's `# HELP`/`# TYPE` as
    /// more of the same family) and then refuses the exposition, though OpenMetrics allows a
    /// family with no metric (the engine shows `redispair_engine_keys` before any key exists).
    /// So the exposition is cut into families where a descriptor names a new family (the
    /// format's own rule), and each family is parsed by the crate on its own; a family shown
    /// twice is refused here, as the crate would.
    pub fn parse(text: &str) -> Result<Scrape, String> {
        let body = text
            .strip_suffix("# EOF\n")
            .ok_or("not valid OpenMetrics: no `# EOF` line at the end")?;
        let mut chunks: Vec<String> = Vec::new();
        let mut current: Option<&str> = None;
        for line in body.lines() {
            let mut words = line.splitn(4, ' ');
            let named = match (words.next(), words.next(), words.next()) {
                (Some("#"), Some("HELP" | "TYPE" | "UNIT"), Some(name)) => Some(name),
                _ => None,
            };
            if chunks.is_empty() || (named.is_some() && named != current) {
                chunks.push(String::new());
                current = named;
            }
            let chunk = chunks.last_mut().expect("pushed above");
            chunk.push_str(line);
            chunk.push('\n');
        }
        let mut families = HashMap::new();
        for chunk in chunks {
            let exposition: MetricsExposition<OpenMetricsType, OpenMetricsValue> =
                openmetrics_parser::openmetrics::parse_openmetrics(&format!("{chunk}# EOF\n"))
                    .map_err(|e| format!("not valid OpenMetrics: {e} in\n{chunk}"))?;
            for (name, family) in exposition.families {
                if families.insert(name.clone(), family).is_some() {
                    return Err(format!("not valid OpenMetrics: family {name} shown twice"));
                }
            }
        }
        Ok(Scrape { families })
    }

    pub fn family_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.families.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    fn family(&self, name: &str) -> Result<&Family, String> {
        self.families
            .get(name)
            .ok_or_else(|| format!("family {name} missing (have {:?})", self.family_names()))
    }

    /// The family exists, has type `kind`, and its samples carry exactly the label names
    /// `labels` (in any order; histograms' `le` is the parser's, not a label).
    pub fn expect_family(&self, name: &str, kind: Kind, labels: &[&str]) -> Result<(), String> {
        let f = self.family(name)?;
        if f.family_type != kind {
            return Err(format!("{name}: type {:?}, want {kind:?}", f.family_type));
        }
        if f.iter_samples().next().is_none() {
            // No samples: no label names to compare (a family with none yet still shows).
            return Ok(());
        }
        let mut have: Vec<&str> = f.get_label_names().iter().map(String::as_str).collect();
        let mut want = labels.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            return Err(format!("{name}: labels {have:?}, want {want:?}"));
        }
        Ok(())
    }

    /// [`Scrape::expect_family`] for a family shown only once it has a sample (prometheus-client
    /// leaves a labelled family out while it has none, e.g. no reconcile error yet).
    pub fn expect_family_once_sampled(
        &self,
        name: &str,
        kind: Kind,
        labels: &[&str],
    ) -> Result<(), String> {
        if self.families.contains_key(name) {
            self.expect_family(name, kind, labels)
        } else {
            Ok(())
        }
    }

    /// Every sample of a family: its labels (name → value) and value.
    pub fn samples(&self, name: &str) -> Result<Vec<Series>, String> {
        let f = self.family(name)?;
        let names = f.get_label_names();
        let mut out = Vec::new();
        for s in f.iter_samples() {
            let labels: BTreeMap<String, String> = s
                .get_labelset()
                .map_err(|e| format!("{name}: {e}"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if labels.len() != names.len() {
                return Err(format!("{name}: a sample without every label: {labels:?}"));
            }
            let value = match &s.value {
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => {
                    Value::Number(number(n))
                }
                OpenMetricsValue::Counter(c) => Value::Number(number(&c.value)),
                OpenMetricsValue::Histogram(h) => Value::Histogram(Histogram {
                    count: h.count.map_or(f64::NAN, |c| c as f64),
                    sum: h.sum.as_ref().map_or(f64::NAN, number),
                    buckets: h
                        .buckets
                        .iter()
                        .map(|b| (b.upper_bound, number(&b.count)))
                        .collect(),
                }),
                other => return Err(format!("{name}: unexpected value {other:?}")),
            };
            out.push((labels, value));
        }
        Ok(out)
    }

    /// The sample of `name` whose labels are exactly `labels`, if there is one.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Result<Option<Value>, String> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(self
            .samples(name)?
            .into_iter()
            .find(|(l, _)| *l == want)
            .map(|(_, v)| v))
    }

    /// A gauge's or counter's value at exactly `labels`.
    pub fn number(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        match self.find(name, labels)? {
            Some(Value::Number(n)) => Ok(n),
            Some(Value::Histogram(_)) => Err(format!("{name}: a histogram, not a number")),
            None => Err(format!(
                "{name}{labels:?}: no such sample (have {:?})",
                self.samples(name)?
                    .into_iter()
                    .map(|(l, _)| l)
                    .collect::<Vec<_>>()
            )),
        }
    }

    /// A histogram at exactly `labels`, checked for consistency: cumulative buckets ending
    /// with +Inf equal to the count.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram, String> {
        let h = match self.find(name, labels)? {
            Some(Value::Histogram(h)) => h,
            Some(Value::Number(_)) => return Err(format!("{name}: a number, not a histogram")),
            None => return Err(format!("{name}{labels:?}: no such histogram")),
        };
        let Some(&(last_bound, last_count)) = h.buckets.last() else {
            return Err(format!("{name}{labels:?}: no buckets"));
        };
        if last_bound != f64::INFINITY || last_count != h.count {
            return Err(format!(
                "{name}{labels:?}: last bucket le={last_bound} holds {last_count}, count {}",
                h.count
            ));
        }
        if h.buckets
            .windows(2)
            .any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1)
        {
            return Err(format!(
                "{name}{labels:?}: buckets not cumulative: {:?}",
                h.buckets
            ));
        }
        if h.sum.is_nan() || h.sum < 0.0 {
            return Err(format!("{name}{labels:?}: sum {}", h.sum));
        }
        Ok(h)
    }

    /// Families holding a sample with `label` = `value` for each pair in `labels`.
    pub fn families_with(&self, labels: &[(&str, &str)]) -> Vec<String> {
        let mut out: Vec<String> = self
            .families
            .keys()
            .filter(|name| {
                self.samples(name).is_ok_and(|samples| {
                    samples.iter().any(|(l, _)| {
                        labels
                            .iter()
                            .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
                    })
                })
            })
            .cloned()
            .collect();
        out.sort();
        out
    }
}

fn at_least(what: &str, have: f64, min: f64) -> Result<(), String> {
    if have >= min {
        Ok(())
    } else {
        Err(format!("{what} is {have}, want at least {min}"))
    }
}

fn equal(what: &str, have: f64, want: f64) -> Result<(), String> {
    if have == want {
        Ok(())
    } else {
        Err(format!("{what} is {have}, want {want}"))
    }
}

/// What one engine's endpoint must show.
#[derive(Debug, Clone)]
pub struct EngineExpect {
    /// "master" or "replica".
    pub role: &'static str,
    /// The replication term the engine must be at.
    pub term: i64,
    /// Commands (lower case) the engine must have counted, each with a latency histogram
    /// holding as many observations as calls.
    pub commands: Vec<&'static str>,
    /// Keys db0 must hold at least.
    pub min_keys: i64,
    /// Keys with a time to live db0 must hold at least.
    pub min_volatile_keys: i64,
    /// "async", "semi-sync" or "sync".
    pub mode: &'static str,
    /// Semi-sync and sync masters: replies to writes waited for the replica at least once.
    pub reply_waits: bool,
    /// The write log is on (the log families show), and fsynced at least once.
    pub log: bool,
    pub archive: Archive,
}

/// The continuous archive to object storage, as one engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// No `archive-url`: no archive family shows.
    Off,
    /// A master archiving: the families show, the archive is reachable and has been uploaded to.
    Uploading,
    /// A replica of an archiving pair: the families show (it only lists the archive, to know
    /// where it ends; it uploads once promoted).
    Following,
}

/// Check every family an engine shows, its type and labels, and the values `e` pins.
pub fn check_engine(s: &Scrape, e: &EngineExpect) -> Result<(), String> {
    use Kind::{Counter, Gauge, Histogram as Hist};
    let none: &[&str] = &[];
    for (family, kind, labels) in [
        (
            "redispair_engine_build_info",
            Gauge,
            &["version", "redis_version"][..],
        ),
        ("redispair_engine_uptime_seconds", Gauge, none),
        ("redispair_engine_commands", Counter, &["command"]),
        ("redispair_engine_command_failures", Counter, &["command"]),
        ("redispair_engine_command_rejections", Counter, &["command"]),
        (
            "redispair_engine_command_duration_seconds",
            Hist,
            &["command"],
        ),
        ("redispair_engine_commands_processed", Counter, none),
        ("redispair_engine_error_replies", Counter, none),
        ("redispair_engine_keys", Gauge, &["db"]),
        ("redispair_engine_keys_with_expiry", Gauge, &["db"]),
        ("redispair_engine_expired_keys", Counter, none),
        ("redispair_engine_evicted_keys", Counter, none),
        ("redispair_engine_keyspace_hits", Counter, none),
        ("redispair_engine_keyspace_misses", Counter, none),
        ("redispair_engine_memory_used_bytes", Gauge, none),
        ("redispair_engine_memory_rss_bytes", Gauge, none),
        ("redispair_engine_memory_max_bytes", Gauge, none),
        ("redispair_engine_connected_clients", Gauge, none),
        ("redispair_engine_blocked_clients", Gauge, none),
        ("redispair_engine_connections_received", Counter, none),
        ("redispair_engine_connections_rejected", Counter, none),
        ("redispair_engine_net_input_bytes", Counter, none),
        ("redispair_engine_net_output_bytes", Counter, none),
        ("redispair_engine_role", Gauge, &["role"]),
        ("redispair_engine_term", Gauge, none),
        ("redispair_engine_replication_offset_bytes", Gauge, none),
        ("redispair_engine_connected_replicas", Gauge, none),
        ("redispair_engine_replica_lag_bytes", Gauge, &["replica"]),
        (
            "redispair_engine_replica_ack_age_seconds",
            Gauge,
            &["replica"],
        ),
        ("redispair_engine_full_syncs", Counter, none),
        ("redispair_engine_partial_syncs", Counter, none),
        ("redispair_engine_replication_mode", Gauge, &["mode"]),
        ("redispair_engine_semi_sync_degraded", Gauge, none),
        (
            "redispair_engine_write_lease_remaining_seconds",
            Gauge,
            none,
        ),
        ("redispair_engine_reply_wait_seconds", Hist, none),
        ("redispair_engine_persistence_enabled", Gauge, none),
    ] {
        s.expect_family(family, kind, labels)?;
    }
    equal(
        "build_info",
        s.number(
            "redispair_engine_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("redis_version", redispair::engine::REDIS_VERSION),
            ],
        )?,
        1.0,
    )?;

    // Commands: each counted, its histogram holding one observation per call.
    for cmd in &e.commands {
        let calls = s.number("redispair_engine_commands", &[("command", cmd)])?;
        at_least(&format!("commands{{command={cmd}}}"), calls, 1.0)?;
        let h = s.histogram(
            "redispair_engine_command_duration_seconds",
            &[("command", cmd)],
        )?;
        equal(
            &format!("command_duration_seconds_count{{command={cmd}}}"),
            h.count,
            calls,
        )?;
        s.number("redispair_engine_command_failures", &[("command", cmd)])?;
        s.number("redispair_engine_command_rejections", &[("command", cmd)])?;
    }
    at_least(
        "commands_processed",
        s.number("redispair_engine_commands_processed", &[])?,
        e.commands.len() as f64,
    )?;

    // Keyspace and memory.
    if e.min_keys > 0 {
        at_least(
            "keys{db=db0}",
            s.number("redispair_engine_keys", &[("db", "db0")])?,
            e.min_keys as f64,
        )?;
    }
    if e.min_volatile_keys > 0 {
        at_least(
            "keys_with_expiry{db=db0}",
            s.number("redispair_engine_keys_with_expiry", &[("db", "db0")])?,
            e.min_volatile_keys as f64,
        )?;
    }
    for counter in [
        "redispair_engine_expired_keys",
        "redispair_engine_evicted_keys",
    ] {
        at_least(counter, s.number(counter, &[])?, 0.0)?;
    }
    at_least(
        "memory_used_bytes",
        s.number("redispair_engine_memory_used_bytes", &[])?,
        1.0,
    )?;
    at_least(
        "memory_rss_bytes",
        s.number("redispair_engine_memory_rss_bytes", &[])?,
        1.0,
    )?;
    at_least(
        "connected_clients",
        s.number("redispair_engine_connected_clients", &[])?,
        0.0,
    )?;

    // Role and term: one series per role, 1 on the engine's own.
    for role in ["master", "replica"] {
        equal(
            &format!("role{{role={role}}}"),
            s.number("redispair_engine_role", &[("role", role)])?,
            f64::from(u8::from(role == e.role)),
        )?;
    }
    equal(
        "term",
        s.number("redispair_engine_term", &[])?,
        e.term as f64,
    )?;
    at_least(
        "replication_offset_bytes",
        s.number("redispair_engine_replication_offset_bytes", &[])?,
        1.0,
    )?;
    for mode in ["async", "semi-sync", "sync"] {
        equal(
            &format!("replication_mode{{mode={mode}}}"),
            s.number("redispair_engine_replication_mode", &[("mode", mode)])?,
            f64::from(u8::from(mode == e.mode)),
        )?;
    }
    equal(
        "semi_sync_degraded",
        s.number("redispair_engine_semi_sync_degraded", &[])?,
        0.0,
    )?;
    let waits = s.histogram("redispair_engine_reply_wait_seconds", &[])?;
    if e.role == "master" {
        // The master's side of the link: its one replica, attached, with a lag series.
        equal(
            "connected_replicas",
            s.number("redispair_engine_connected_replicas", &[])?,
            1.0,
        )?;
        let lag = s.samples("redispair_engine_replica_lag_bytes")?;
        if lag.len() != 1 {
            return Err(format!(
                "replica_lag_bytes: {} series, want 1: {lag:?}",
                lag.len()
            ));
        }
        if let (l, Value::Number(n)) = &lag[0] {
            at_least(&format!("replica_lag_bytes{l:?}"), *n, 0.0)?;
            s.number(
                "redispair_engine_replica_ack_age_seconds",
                &[("replica", &l["replica"])],
            )?;
        }
        if e.reply_waits {
            at_least("reply_wait_seconds_count", waits.count, 1.0)?;
        }
    } else {
        // The replica's side: its link to the master up.
        s.expect_family("redispair_engine_master_link_up", Gauge, none)?;
        s.expect_family("redispair_engine_master_last_io_seconds", Gauge, none)?;
        equal(
            "master_link_up",
            s.number("redispair_engine_master_link_up", &[])?,
            1.0,
        )?;
        equal(
            "connected_replicas",
            s.number("redispair_engine_connected_replicas", &[])?,
            0.0,
        )?;
    }

    // The write log.
    equal(
        "persistence_enabled",
        s.number("redispair_engine_persistence_enabled", &[])?,
        f64::from(u8::from(e.log)),
    )?;
    if e.log {
        for (family, kind) in [
            ("redispair_engine_log_bytes", Gauge),
            ("redispair_engine_log_written_offset_bytes", Gauge),
            ("redispair_engine_log_durable_offset_bytes", Gauge),
            ("redispair_engine_log_pending_bytes", Gauge),
            ("redispair_engine_log_fsync_duration_seconds", Hist),
            ("redispair_engine_log_write_ok", Gauge),
            ("redispair_engine_log_write_errors", Counter),
            ("redispair_engine_snapshots", Counter),
            ("redispair_engine_snapshot_last_ok", Gauge),
        ] {
            s.expect_family(family, kind, none)?;
        }
        at_least(
            "log_bytes",
            s.number("redispair_engine_log_bytes", &[])?,
            1.0,
        )?;
        let fsyncs = s.histogram("redispair_engine_log_fsync_duration_seconds", &[])?;
        at_least("log_fsync_duration_seconds_count", fsyncs.count, 1.0)?;
        equal(
            "log_write_ok",
            s.number("redispair_engine_log_write_ok", &[])?,
            1.0,
        )?;
        equal(
            "log_write_errors",
            s.number("redispair_engine_log_write_errors", &[])?,
            0.0,
        )?;
    }

    // The archive.
    if e.archive != Archive::Off {
        for (family, kind) in [
            ("redispair_engine_archive_lag_bytes", Gauge),
            ("redispair_engine_archive_lag_seconds", Gauge),
            ("redispair_engine_archive_ok", Gauge),
            ("redispair_engine_archive_uploaded_bytes", Counter),
            ("redispair_engine_archive_errors", Counter),
        ] {
            s.expect_family(family, kind, none)?;
        }
        at_least(
            "archive_lag_bytes",
            s.number("redispair_engine_archive_lag_bytes", &[])?,
            0.0,
        )?;
        at_least(
            "archive_lag_seconds",
            s.number("redispair_engine_archive_lag_seconds", &[])?,
            0.0,
        )?;
        if e.archive == Archive::Uploading {
            equal(
                "archive_ok",
                s.number("redispair_engine_archive_ok", &[])?,
                1.0,
            )?;
            at_least(
                "archive_uploaded_bytes",
                s.number("redispair_engine_archive_uploaded_bytes", &[])?,
                1.0,
            )?;
        }
    } else if s.family("redispair_engine_archive_lag_bytes").is_ok() {
        return Err("archive families shown with the archive off".into());
    }
    Ok(())
}

/// What the operator's endpoint must show of one pair.
#[derive(Debug, Clone)]
pub struct PairExpect {
    pub namespace: String,
    pub pair: String,
    pub phase: &'static str,
    pub term: i64,
    pub master: String,
    pub replica: String,
    /// Failovers and switchovers completed for the pair since the operator started.
    pub failovers: u64,
}

/// Phases a pair can be in: the operator shows one series each.
pub const PHASES: [&str; 6] = [
    "Creating",
    "Ready",
    "Degraded",
    "FailingOver",
    "Failed",
    "Upgrading",
];

/// Check the operator's families, their types and labels, and the pair's series.
pub fn check_operator_pair(s: &Scrape, e: &PairExpect) -> Result<(), String> {
    use Kind::{Counter, Gauge, Histogram as Hist};
    let none: &[&str] = &[];
    let pair_labels = &["namespace", "pair"][..];
    // Shown once they have a sample: no reconcile error yet, no failover of any pair yet.
    s.expect_family_once_sampled("redispair_reconcile_errors", Counter, &["category"])?;
    s.expect_family_once_sampled(
        "redispair_pair_last_failover_duration_seconds",
        Gauge,
        pair_labels,
    )?;
    for (family, kind, labels) in [
        ("redispair_reconciles", Counter, none),
        ("redispair_reconcile_duration_seconds", Hist, none),
        ("redispair_failovers", Counter, none),
        ("redispair_failover_duration_seconds", Hist, none),
        ("redispair_pairs", Gauge, &["phase"]),
        (
            "redispair_pair_phase",
            Gauge,
            &["namespace", "pair", "phase"],
        ),
        ("redispair_pair_term", Gauge, pair_labels),
        ("redispair_pair_replication_lag_bytes", Gauge, pair_labels),
        (
            "redispair_pair_member_role",
            Gauge,
            &["namespace", "pair", "pod", "role"],
        ),
        ("redispair_pair_failovers", Counter, pair_labels),
    ] {
        s.expect_family(family, kind, labels)?;
    }
    at_least("reconciles", s.number("redispair_reconciles", &[])?, 1.0)?;
    let h = s.histogram("redispair_reconcile_duration_seconds", &[])?;
    at_least("reconcile_duration_seconds_count", h.count, 1.0)?;
    at_least(
        &format!("pairs{{phase={}}}", e.phase),
        s.number("redispair_pairs", &[("phase", e.phase)])?,
        1.0,
    )?;
    let (ns, pair) = (e.namespace.as_str(), e.pair.as_str());
    let this = [("namespace", ns), ("pair", pair)];
    for phase in PHASES {
        equal(
            &format!("pair_phase{{{pair},phase={phase}}}"),
            s.number(
                "redispair_pair_phase",
                &[("namespace", ns), ("pair", pair), ("phase", phase)],
            )?,
            f64::from(u8::from(phase == e.phase)),
        )?;
    }
    equal(
        &format!("pair_term{{{pair}}}"),
        s.number("redispair_pair_term", &this)?,
        e.term as f64,
    )?;
    at_least(
        &format!("pair_replication_lag_bytes{{{pair}}}"),
        s.number("redispair_pair_replication_lag_bytes", &this)?,
        0.0,
    )?;
    // Exactly one series per member, each with its current role: none left of a past role.
    let mut roles: Vec<(String, String, f64)> = s
        .samples("redispair_pair_member_role")?
        .into_iter()
        .filter(|(l, _)| l["namespace"] == ns && l["pair"] == pair)
        .map(|(l, v)| {
            let n = match v {
                Value::Number(n) => n,
                Value::Histogram(_) => f64::NAN,
            };
            (l["pod"].clone(), l["role"].clone(), n)
        })
        .collect();
    roles.sort_by(|a, b| a.1.cmp(&b.1));
    let want = vec![
        (e.master.clone(), "master".to_string(), 1.0),
        (e.replica.clone(), "replica".to_string(), 1.0),
    ];
    if roles != want {
        return Err(format!(
            "pair_member_role{{{pair}}}: {roles:?}, want {want:?}"
        ));
    }
    equal(
        &format!("pair_failovers{{{pair}}}"),
        s.number("redispair_pair_failovers", &this)?,
        e.failovers as f64,
    )?;
    let last = match s
        .families
        .contains_key("redispair_pair_last_failover_duration_seconds")
    {
        true => s.find("redispair_pair_last_failover_duration_seconds", &this)?,
        false => None,
    };
    match (e.failovers, last) {
        (0, None) => {}
        (0, Some(v)) => {
            return Err(format!(
                "pair_last_failover_duration_seconds{{{pair}}} is {v:?} before any failover"
            ))
        }
        (_, Some(Value::Number(secs))) if secs > 0.0 => {}
        (_, other) => {
            return Err(format!(
                "pair_last_failover_duration_seconds{{{pair}}}: {other:?} after a failover"
            ))
        }
    }
    if e.failovers > 0 {
        at_least(
            "failovers_total",
            s.number("redispair_failovers", &[])?,
            e.failovers as f64,
        )?;
        let h = s.histogram("redispair_failover_duration_seconds", &[])?;
        at_least(
            "failover_duration_seconds_count",
            h.count,
            e.failovers as f64,
        )?;
    }
    Ok(())
}

/// The operator shows no series of the pair any more.
pub fn check_pair_gone(s: &Scrape, namespace: &str, pair: &str) -> Result<(), String> {
    let left = s.families_with(&[("namespace", namespace), ("pair", pair)]);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("series of {namespace}/{pair} left in {left:?}"))
    }
}
