//! The per-pair prober: a task per RedisPair that probes both engines directly (INFO
//! replication as the admin user, sub-second interval, short timeouts), keeps the latest
//! results for the reconciler, renews the master's write lease, and triggers a reconcile as
//! soon as something that matters changes. Does I/O: RESP to the engines, a channel to the
//! controller.
//!
//! Why not wait for Kubernetes: a dead node's pods stay Ready for the node controller's
//! grace period (40 s by default, the CloudNativePG failure); the operator's own probes see a
//! dead engine within one interval, and the detection window adds the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::build::pod::WRITE_LEASE_MS;
use super::decide::pod_ip;
use super::engine_client::{EngineAccess, EngineClient, EngineInfo};
use super::observe::ProbeResult;
use super::validate::Names;
use crate::api::constants::is_fenced;
use crate::api::RedisPair;
use crate::failover::Role;

/// How often each engine is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(300);
/// Connect and response timeout of one probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// A reconcile is triggered at least this often (status freshness: lag, offsets).
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The operator's clock, in milliseconds: monotonic (`Instant`), offset so that it reads the
/// wall clock's time at the process's first call (status shows these as timestamps). Only
/// durations within one process are derived from it: a wall-clock step (NTP, a VM resumed)
/// cannot shorten a detection window or the async lease wait. Across processes nothing is
/// compared: a restarted operator bounds its predecessor's lease grants by its own start
/// (`Context::started_ms`, see `failover::lease_wait`).
pub fn now_ms() -> u64 {
    let (at, wall) = clock();
    wall + at.elapsed().as_millis() as u64
}

fn clock() -> (std::time::Instant, u64) {
    static CLOCK: std::sync::OnceLock<(std::time::Instant, u64)> = std::sync::OnceLock::new();
    *CLOCK.get_or_init(|| {
        (
            std::time::Instant::now(),
            jiff::Timestamp::now().as_millisecond().max(0) as u64,
        )
    })
}

type Results = Arc<Mutex<BTreeMap<String, ProbeResult>>>;

#[derive(Debug, Default, Clone, Copy)]
struct GrantTimes {
    /// The last grant's reply arrived (or its request failed) at this time.
    last_ms: Option<u64>,
    /// A grant request is on its way since this time.
    in_flight_since: Option<u64>,
}

/// Every write lease this operator grants, by pair and pod, and which pairs must not be
/// granted any (a failover is recorded or being recorded). The async failover waits for the
/// old master's lease from the last grant recorded here, so every grant goes through
/// [`LeaseLedger::grant`], and the prober's renewal cannot slip in once the controller held
/// the pair, even when the prober's cached status is older than the failover record.
#[derive(Clone, Default)]
pub struct LeaseLedger {
    inner: Arc<Mutex<LedgerState>>,
}

#[derive(Default)]
struct LedgerState {
    grants: HashMap<(String, String), GrantTimes>,
    held: std::collections::HashSet<String>,
    /// This operator is a standby (leader election on, Lease not held): it probes, so its
    /// view is warm when it takes over, but it grants nothing.
    standby: bool,
}

impl LeaseLedger {
    /// Stop (or resume) renewals of the pair's master lease by the prober. Set before the
    /// failover record is written.
    pub fn hold(&self, pair: &str, held: bool) {
        let mut s = self.inner.lock();
        if held {
            s.held.insert(pair.to_string());
        } else {
            s.held.remove(pair);
        }
    }

    /// A standby grants no lease (see `LedgerState::standby`).
    pub fn set_standby(&self, standby: bool) {
        self.inner.lock().standby = standby;
    }

    /// When the operator last granted `pod` a lease; a grant in flight counts as now.
    pub fn granted_ms(&self, pair: &str, pod: &str, now_ms: u64) -> Option<u64> {
        let s = self.inner.lock();
        let g = s.grants.get(&(pair.to_string(), pod.to_string()))?;
        g.in_flight_since.map(|_| now_ms).or(g.last_ms)
    }

    /// Grant a lease through `c`, recording it. `renewal`: the prober's routine renewal,
    /// skipped (Ok(false)) while the pair is held.
    pub async fn grant(
        &self,
        pair: &str,
        pod: &str,
        c: &mut EngineClient,
        renewal: bool,
    ) -> Result<bool, super::engine_client::EngineError> {
        let key = (pair.to_string(), pod.to_string());
        {
            let mut s = self.inner.lock();
            if s.standby || (renewal && s.held.contains(pair)) {
                return Ok(false);
            }
            s.grants.entry(key.clone()).or_default().in_flight_since = Some(now_ms());
        }
        let r = c.grant_lease(WRITE_LEASE_MS).await;
        // Recorded whatever the outcome: a request that timed out may still have been handled.
        let mut s = self.inner.lock();
        let g = s.grants.entry(key).or_default();
        g.in_flight_since = None;
        g.last_ms = Some(now_ms());
        r.map(|_| true)
    }
}

struct Handle {
    access: watch::Sender<Option<EngineAccess>>,
    results: Results,
    task: tokio::task::JoinHandle<()>,
}

/// The running probers, one per pair.
#[derive(Clone)]
pub struct Probers {
    inner: Arc<Mutex<HashMap<ObjectRef<RedisPair>, Handle>>>,
    pub leases: LeaseLedger,
    trigger: UnboundedSender<ObjectRef<RedisPair>>,
    pods: Store<Pod>,
    pairs: Store<RedisPair>,
    /// The pair's series are removed when its prober sees it deleted.
    metrics: Arc<super::metrics::Metrics>,
}

impl Probers {
    pub fn new(
        trigger: UnboundedSender<ObjectRef<RedisPair>>,
        pods: Store<Pod>,
        pairs: Store<RedisPair>,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Probers {
        Probers {
            inner: Arc::default(),
            leases: LeaseLedger::default(),
            trigger,
            pods,
            pairs,
            metrics,
        }
    }

    /// Start the pair's prober if it is not running, and give it the admin password (and the
    /// CA with TLS).
    pub fn ensure(&self, pair: &RedisPair, access: Option<EngineAccess>) {
        let key = ObjectRef::from_obj(pair);
        let mut inner = self.inner.lock();
        if let Some(h) = inner.get(&key).filter(|h| !h.task.is_finished()) {
            h.access.send_if_modified(|p| {
                let changed = *p != access;
                *p = access.clone();
                changed
            });
            return;
        }
        let (tx, rx) = watch::channel(access);
        let results = Results::default();
        let task = tokio::spawn(probe_loop(
            key.clone(),
            Names::new(pair),
            rx,
            results.clone(),
            self.trigger.clone(),
            self.pods.clone(),
            self.pairs.clone(),
            self.leases.clone(),
            self.metrics.clone(),
        ));
        inner.insert(
            key,
            Handle {
                access: tx,
                results,
                task,
            },
        );
    }

    /// The latest results of a pair's prober (empty when it has none yet).
    pub fn results(&self, pair: &RedisPair) -> BTreeMap<String, ProbeResult> {
        self.inner
            .lock()
            .get(&ObjectRef::from_obj(pair))
            .map(|h| h.results.lock().clone())
            .unwrap_or_default()
    }

    /// Take an engine's answer read outside the prober (right after a promotion), as if the
    /// prober had just probed it at `ip`. A prober round in flight may overwrite it with an
    /// older answer; that only delays the pass that acts on it until the next round.
    pub fn record(&self, pair: &RedisPair, pod: &str, ip: &str, info: EngineInfo) {
        if let Some(h) = self.inner.lock().get(&ObjectRef::from_obj(pair)) {
            h.results.lock().insert(
                pod.to_string(),
                ProbeResult {
                    ip: ip.to_string(),
                    info: Some(info),
                    failing_since_ms: None,
                },
            );
        }
    }

    pub fn count(&self) -> usize {
        self.inner.lock().len()
    }
}

/// What a change must alter to be worth a reconcile: roles, terms, links, reachability.
fn signature(r: &ProbeResult) -> Option<(Role, i64, bool, bool, Option<String>)> {
    r.info
        .as_ref()
        .map(|i| (i.role, i.term, i.link_up, i.degraded, i.master_host.clone()))
}

async fn probe_once(
    conn: &mut Option<(String, EngineClient)>,
    ip: &str,
    access: &EngineAccess,
) -> Option<EngineInfo> {
    if conn.as_ref().is_some_and(|(cip, _)| cip != ip) {
        *conn = None;
    }
    if conn.is_none() {
        match EngineClient::connect(ip, access, PROBE_TIMEOUT).await {
            Ok(c) => *conn = Some((ip.to_string(), c)),
            Err(e) => {
                tracing::debug!(%e, "probe connect failed");
                return None;
            }
        }
    }
    let (_, c) = conn.as_mut()?;
    match c.info().await {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::debug!(%e, "probe failed");
            *conn = None;
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn probe_loop(
    key: ObjectRef<RedisPair>,
    names: Names,
    access: watch::Receiver<Option<EngineAccess>>,
    results: Results,
    trigger: UnboundedSender<ObjectRef<RedisPair>>,
    pods: Store<Pod>,
    pairs: Store<RedisPair>,
    leases: LeaseLedger,
    metrics: Arc<super::metrics::Metrics>,
) {
    let ns = key.namespace.clone().unwrap_or_default();
    let pair_key = format!("{ns}/{}", key.name);
    let mut conns: BTreeMap<String, Option<(String, EngineClient)>> =
        names.pods.iter().map(|p| (p.clone(), None)).collect();
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_trigger = tokio::time::Instant::now();
    let mut window_reported: BTreeMap<String, bool> = BTreeMap::new();
    // The uid of the pair this prober serves (the metrics forget that object, not the name).
    let mut uid = String::new();
    loop {
        tick.tick().await;
        let Some(pair) = pairs.get(&key) else {
            // Not in a filled store: the pair is gone (its objects go with it through owner
            // references). The store is filled once its first list is done, and a relist
            // swaps the new list in whole, so a filled store never looks empty in between.
            // (An empty store used to be taken for one not filled yet: deleting the only pair
            // an operator watched left its prober and its series behind for good.)
            if pairs.wait_until_ready().await.is_err() {
                return; // the controller and its store are gone
            }
            if pairs.get(&key).is_some() {
                continue;
            }
            tracing::info!(pair = %key, "pair deleted; prober stops");
            // Its series go with it (`redispair_pairs` counted it in its last phase).
            metrics.forget_pair(&pair_key, &uid);
            return;
        };
        if let Some(u) = &pair.metadata.uid {
            uid.clone_from(u);
        }
        let Some(password) = access.borrow().clone() else {
            continue;
        };
        let detection_ms = pair.spec.failover.detection_seconds.max(1) as u64 * 1000;
        let status = pair.status.clone().unwrap_or_default();
        let mut changed = false;
        // The round's start: a probe that fails was sent at or after it, so counting the
        // failure from here (not from when the timeout fired) detects a dead engine up to one
        // probe timeout sooner. Detection is availability, never safety.
        let now = now_ms();
        // Both engines at once: a dead one's connect timeout must not delay the probe of the
        // other, whose report (the replica's link down) the failover decision also needs.
        let probes = conns.iter_mut().map(|(name, conn)| {
            let pod = pods.get(&ObjectRef::new(name).within(&ns));
            let ip = pod.as_ref().and_then(|p| pod_ip(p));
            // No lease for a pod a user fenced.
            let fenced = pod.is_some_and(|p| is_fenced(p.annotations()));
            let (status, pair_key, password, leases) = (&status, &pair_key, &password, &leases);
            async move {
                let info = match &ip {
                    Some(ip) => probe_once(conn, ip, password).await,
                    None => None,
                };
                // Renew the write lease of the master the operator decided on, only while no
                // failover is recorded: once one is, the old master's lease is left to lapse.
                if let (Some(i), Some((_, c)), false) = (&info, conn.as_mut(), fenced) {
                    if i.role == Role::Master
                        && status.failover.is_none()
                        && status.target_master.as_deref() == Some(name.as_str())
                        && i.term == status.term
                    {
                        if let Err(e) = leases.grant(pair_key, name, c, true).await {
                            tracing::warn!(pod = %name, %e, "lease renewal failed");
                        }
                    }
                }
                (name.clone(), ip, info)
            }
        });
        let outcomes = futures::future::join_all(probes).await;
        let checked = now_ms();
        for (name, ip, info) in outcomes {
            let mut res = results.lock();
            let prev = res.get(&name).cloned().unwrap_or_default();
            let next = ProbeResult {
                // A pod without an address (deleted, not scheduled yet) keeps the last one it
                // was reached at: fencing a force-deleted master needs it (`action_ips`).
                ip: ip.clone().unwrap_or_else(|| prev.ip.clone()),
                failing_since_ms: match &info {
                    Some(_) => None,
                    None => prev.failing_since_ms.or(Some(now)),
                },
                info,
            };
            if signature(&prev) != signature(&next) || prev.ip != next.ip {
                changed = true;
            }
            // The detection window just passed: the machine may now judge the engine failed.
            let window_passed = next
                .failing_since_ms
                .is_some_and(|s| checked.saturating_sub(s) >= detection_ms);
            let reported = window_reported.entry(name.clone()).or_default();
            if window_passed && !*reported {
                changed = true;
            }
            *reported = window_passed;
            res.insert(name.clone(), next);
        }
        if changed || last_trigger.elapsed() >= REFRESH_EVERY {
            last_trigger = tokio::time::Instant::now();
            if trigger.unbounded_send(key.clone()).is_err() {
                return; // the controller stopped
            }
        }
    }
}
