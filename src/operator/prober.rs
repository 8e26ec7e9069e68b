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
use parking_lot::Mutex;
use tokio::sync::watch;

use super::build::pod::WRITE_LEASE_MS;
use super::decide::pod_ip;
use super::engine_client::{EngineClient, EngineInfo};
use super::observe::ProbeResult;
use super::validate::Names;
use crate::api::RedisPair;
use crate::failover::Role;

/// How often each engine is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(300);
/// Connect and response timeout of one probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// A reconcile is triggered at least this often (status freshness: lag, offsets).
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Milliseconds since the epoch (the operator's clock; only durations are derived from it).
pub fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

type Results = Arc<Mutex<BTreeMap<String, ProbeResult>>>;

struct Handle {
    admin_password: watch::Sender<Option<String>>,
    results: Results,
    task: tokio::task::JoinHandle<()>,
}

/// The running probers, one per pair.
#[derive(Clone)]
pub struct Probers {
    inner: Arc<Mutex<HashMap<ObjectRef<RedisPair>, Handle>>>,
    trigger: UnboundedSender<ObjectRef<RedisPair>>,
    pods: Store<Pod>,
    pairs: Store<RedisPair>,
}

impl Probers {
    pub fn new(
        trigger: UnboundedSender<ObjectRef<RedisPair>>,
        pods: Store<Pod>,
        pairs: Store<RedisPair>,
    ) -> Probers {
        Probers {
            inner: Arc::default(),
            trigger,
            pods,
            pairs,
        }
    }

    /// Start the pair's prober if it is not running, and give it the admin password.
    pub fn ensure(&self, pair: &RedisPair, admin_password: Option<String>) {
        let key = ObjectRef::from_obj(pair);
        let mut inner = self.inner.lock();
        if let Some(h) = inner.get(&key).filter(|h| !h.task.is_finished()) {
            h.admin_password.send_if_modified(|p| {
                let changed = *p != admin_password;
                *p = admin_password.clone();
                changed
            });
            return;
        }
        let (tx, rx) = watch::channel(admin_password);
        let results = Results::default();
        let task = tokio::spawn(probe_loop(
            key.clone(),
            Names::new(pair),
            rx,
            results.clone(),
            self.trigger.clone(),
            self.pods.clone(),
            self.pairs.clone(),
        ));
        inner.insert(
            key,
            Handle {
                admin_password: tx,
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
    password: &str,
) -> Option<EngineInfo> {
    if conn.as_ref().is_some_and(|(cip, _)| cip != ip) {
        *conn = None;
    }
    if conn.is_none() {
        match EngineClient::connect(ip, password, PROBE_TIMEOUT).await {
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
    admin_password: watch::Receiver<Option<String>>,
    results: Results,
    trigger: UnboundedSender<ObjectRef<RedisPair>>,
    pods: Store<Pod>,
    pairs: Store<RedisPair>,
) {
    let ns = key.namespace.clone().unwrap_or_default();
    let mut conns: BTreeMap<String, Option<(String, EngineClient)>> =
        names.pods.iter().map(|p| (p.clone(), None)).collect();
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_trigger = tokio::time::Instant::now();
    let mut window_reported: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        tick.tick().await;
        let Some(pair) = pairs.get(&key) else {
            // The pair is gone (its objects go with it through owner references).
            if pairs.is_empty() && !trigger.is_closed() {
                continue; // store not filled yet after a restart
            }
            tracing::info!(pair = %key, "pair deleted; prober stops");
            return;
        };
        let Some(password) = admin_password.borrow().clone() else {
            continue;
        };
        let detection_ms = pair.spec.failover.detection_seconds.max(1) as u64 * 1000;
        let status = pair.status.clone().unwrap_or_default();
        let mut changed = false;
        let now = now_ms();
        for name in &names.pods {
            let ip = pods
                .get(&ObjectRef::new(name).within(&ns))
                .and_then(|p| pod_ip(&p));
            let conn = conns.get_mut(name).expect("one slot per pod");
            let info = match &ip {
                Some(ip) => probe_once(conn, ip, &password).await,
                None => None,
            };
            // Renew the write lease of the master the operator decided on, only while no
            // failover is recorded: once one is, the old master's lease is left to lapse.
            if let (Some(i), Some((_, c))) = (&info, conn.as_mut()) {
                if i.role == Role::Master
                    && status.failover.is_none()
                    && status.target_master.as_deref() == Some(name.as_str())
                    && i.term == status.term
                {
                    if let Err(e) = c.grant_lease(WRITE_LEASE_MS).await {
                        tracing::warn!(pod = %name, %e, "lease renewal failed");
                    }
                }
            }
            let mut res = results.lock();
            let prev = res.get(name).cloned().unwrap_or_default();
            let next = ProbeResult {
                ip: ip.clone().unwrap_or_default(),
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
                .is_some_and(|s| now.saturating_sub(s) >= detection_ms);
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
