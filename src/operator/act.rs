//! Carries out the failover machine's engine actions (promote, demote, fence, pause, degrade
//! authorisation) after the decision was recorded in status. Every action is idempotent, so a
//! restarted operator repeats it safely. Does I/O: RESP to the engines, API writes for the
//! switchover annotation.

use std::collections::BTreeMap;

use kube::api::{Api, Patch, PatchParams};
use kube::Client;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;

use super::decide::Replacement;
use super::engine_client::{EngineClient, EngineError};
use super::prober::PROBE_TIMEOUT;
use crate::api::constants::ANNOTATION_SWITCHOVER;
use crate::api::RedisPair;
use crate::failover::Action;

/// How long a planned switchover pauses writes on the old master (renewed each pass).
pub const SWITCHOVER_PAUSE_MS: u64 = 2_000;

/// Run the engine actions of a decision. `ips` maps pod names to addresses. Fencing is best
/// effort (the old master may be unreachable: its lease lapses and its replica stopped
/// acknowledging, which is the real fence); everything else reports its error.
pub async fn run_engine_actions(
    client: &Client,
    pair: &RedisPair,
    actions: &[Action],
    ips: &BTreeMap<String, String>,
    admin_password: &str,
) -> Result<(), EngineError> {
    let connect = |pod: &str| {
        let ip = ips.get(pod).cloned();
        async move {
            match ip {
                Some(ip) => EngineClient::connect(&ip, admin_password, PROBE_TIMEOUT)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
    };
    let mut first_error = None;
    for a in actions {
        let result: Result<(), EngineError> = async {
            match a {
                Action::Fence { pod } => {
                    if let Ok(Some(mut c)) = connect(pod).await {
                        // Clients of the old master reconnect through the Service, which
                        // selects nothing until the new master is promoted.
                        if let Err(e) = c.kill_normal_clients().await {
                            tracing::info!(%pod, %e, "fencing: could not cut clients");
                        }
                    }
                }
                Action::Promote { pod, term } => {
                    if let Some(mut c) = connect(pod).await? {
                        c.promote(*term).await?;
                    }
                }
                Action::Demote { pod, master, term } => {
                    if let (Some(mut c), Some(host)) = (connect(pod).await?, ips.get(master)) {
                        c.demote(host, *term).await?;
                    }
                }
                Action::PauseWrites { pod } => {
                    if let Some(mut c) = connect(pod).await? {
                        c.pause_writes(SWITCHOVER_PAUSE_MS).await?;
                    }
                }
                Action::AuthorizeDegrade { pod, term } => {
                    if let Some(mut c) = connect(pod).await? {
                        c.authorize_degrade(*term).await?;
                    }
                }
                Action::ClearSwitchoverRequest => {
                    let api: Api<RedisPair> = Api::namespaced(
                        client.clone(),
                        pair.metadata.namespace.as_deref().unwrap_or_default(),
                    );
                    let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION_SWITCHOVER: null}}});
                    let name = pair.metadata.name.clone().unwrap_or_default();
                    if let Err(e) = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::warn!(%e, "could not clear the switchover annotation");
                    }
                }
                Action::SelectMaster(_) | Action::Event { .. } => {}
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(action = ?a, %e, "engine action failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Delete pods that cannot come back (and, for a lost node, their claims) so the apply step
/// recreates them on a healthy node. Force deletion (grace 0) is safe here: the pod is not the
/// master, and its engine cannot acknowledge anything (it is a replica, or a fenced old
/// master whose replica was promoted in a higher term).
pub async fn replace_pods(
    client: &Client,
    ns: &str,
    replacements: &[Replacement],
    claim_of: impl Fn(&str) -> String,
) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    for r in replacements {
        match pods
            .delete(&r.pod, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
        if r.delete_claim {
            match claims
                .delete(&claim_of(&r.pod), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Order detached replicas to full-sync from the master (see
/// [`super::decide::replicas_to_resync`] for when this is safe).
pub async fn resync_replicas(
    resyncs: &[(String, String, i64)],
    ips: &BTreeMap<String, String>,
    admin_password: &str,
) -> Result<(), EngineError> {
    for (pod, master, term) in resyncs {
        let (Some(ip), Some(master_ip)) = (ips.get(pod), ips.get(master)) else {
            continue;
        };
        let mut c = EngineClient::connect(ip, admin_password, PROBE_TIMEOUT).await?;
        c.demote_full_sync(master_ip, *term).await?;
    }
    Ok(())
}
