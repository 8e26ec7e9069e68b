//! The observe step: reads the pair's pods, their nodes, the read-write Service and the
//! Secrets from the API server, and takes the engines' latest reports from the prober's cache.
//! Does I/O: Kubernetes API reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use kube::api::Api;
use kube::Client;

use super::engine_client::EngineInfo;
use super::validate::Names;

/// The latest probe of one engine, kept by the prober.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeResult {
    /// The pod IP that was probed.
    pub ip: String,
    /// The engine's answer; None when the last probe failed.
    pub info: Option<EngineInfo>,
    /// Since when (ms since the epoch) probes have failed without interruption.
    pub failing_since_ms: Option<u64>,
}

/// Everything the pipeline knows about a pair at the start of a pass.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The pair's two pods by name (absent: no such pod).
    pub pods: BTreeMap<String, Pod>,
    /// Readiness of the nodes the pods run on, by node name.
    pub nodes_ready: BTreeMap<String, bool>,
    /// For those NotReady: when (ms since the epoch, the node controller's clock) their Ready
    /// condition last changed.
    pub nodes_not_ready_since_ms: BTreeMap<String, u64>,
    pub read_write_service: Option<Service>,
    pub password_secret: Option<Secret>,
    pub admin_secret: Option<Secret>,
    /// The Secret with the engines' certificate and CA (`spec.tls`).
    pub tls_secret: Option<Secret>,
    /// The Secret holding a migration source's password (`bootstrap.migrateFrom`), if named.
    pub source_secret: Option<Secret>,
    /// The Secrets of a migration source's TLS (`bootstrap.migrateFrom.tls`): its CA and the
    /// client certificate presented to it, if named.
    pub source_ca_secret: Option<Secret>,
    pub source_client_secret: Option<Secret>,
    /// The credentials Secrets `spec.backup` and `spec.bootstrap.recovery` name, by name (None:
    /// it does not exist). One that could not be read is absent: backups are never worth
    /// failing a pass for.
    pub backup_secrets: BTreeMap<String, Option<Secret>>,
    /// What this pass read from a migration source (None: no migration under way).
    pub source: Option<super::migrate::SourceProbe>,
    /// The prober's latest result per pod.
    pub probes: BTreeMap<String, ProbeResult>,
    /// Engines this operator paused for a planned switchover whose pause is still in force:
    /// pod → (IP, offset read right after the pause took effect). Kept in memory by the
    /// controller; after a restart the pause is simply issued again.
    pub paused_offsets: BTreeMap<String, (String, i64)>,
    /// When (ms) this operator last granted each engine a write lease, or is granting one
    /// right now (pod → ms). Kept in memory by the prober and the controller.
    pub lease_grants: BTreeMap<String, u64>,
    /// When this operator process started, on its clock (`prober::now_ms`): every lease grant
    /// a previous process made came before it.
    pub operator_started_ms: u64,
    /// The RedisPairBackups of the namespace that name this pair.
    pub backups: Vec<crate::api::RedisPairBackup>,
    /// The wall clock when the pods were read (ms since the epoch), to age them by their
    /// `creationTimestamp` (both the cluster's wall clock: only a coarse rate limit uses it).
    pub wall_now_ms: u64,
}

/// Whether a Node's Ready condition is True.
pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// When the node's Ready condition last changed (ms since the epoch).
fn ready_changed_ms(node: &Node) -> Option<u64> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    u64::try_from(c.last_transition_time.as_ref()?.0.as_millisecond()).ok()
}

/// Read the objects of a pair. The probe results are filled in by the caller.
pub async fn observe(
    client: &Client,
    namespace: &str,
    names: &Names,
) -> Result<Observed, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let nodes: Api<Node> = Api::all(client.clone());
    let mut o = Observed {
        wall_now_ms: u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0),
        ..Observed::default()
    };
    for name in &names.pods {
        if let Some(p) = pods.get_opt(name).await? {
            o.pods.insert(name.clone(), p);
        }
    }
    for p in o.pods.values() {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            // A node that no longer exists is as good as NotReady (and lost: no transition).
            let found = nodes.get_opt(&node).await?;
            let ready = found.as_ref().is_some_and(node_is_ready);
            if let Some(since) = found.as_ref().filter(|_| !ready).and_then(ready_changed_ms) {
                o.nodes_not_ready_since_ms.insert(node.clone(), since);
            }
            o.nodes_ready.insert(node, ready);
        }
    }
    o.read_write_service = services.get_opt(&names.read_write).await?;
    o.password_secret = secrets.get_opt(&names.password_secret).await?;
    o.admin_secret = secrets.get_opt(&names.admin_secret).await?;
    // Backups are not worth failing a pass for (a failover must not wait on them): an API
    // that does not serve them (CRD not installed) or a failed list leaves them for later.
    let backups: Api<crate::api::RedisPairBackup> = Api::namespaced(client.clone(), namespace);
    match backups.list(&Default::default()).await {
        Ok(list) => {
            o.backups = list
                .items
                .into_iter()
                .filter(|b| b.spec.pair == names.pair)
                .collect();
        }
        Err(e) => tracing::debug!(%e, "listing RedisPairBackups"),
    }
    if let Some(name) = &names.tls_secret {
        o.tls_secret = secrets.get_opt(name).await?;
    }
    if let Some((secret, _)) = &names.source_secret {
        o.source_secret = secrets.get_opt(secret).await?;
    }
    if let Some(name) = &names.source_ca_secret {
        o.source_ca_secret = secrets.get_opt(name).await?;
    }
    if let Some(name) = &names.source_client_secret {
        o.source_client_secret = secrets.get_opt(name).await?;
    }
    for name in names.archive_secret.iter().chain(&names.recovery_secret) {
        match secrets.get_opt(name).await {
            Ok(s) => {
                o.backup_secrets.insert(name.clone(), s);
            }
            Err(e) => tracing::debug!(%e, secret = %name, "reading a backup credentials Secret"),
        }
    }
    Ok(o)
}
