//! Carries out the failover machine's engine actions (promote, demote, fence, pause, degrade
//! authorisation) after the decision was recorded in status. Every action is idempotent, so a
//! restarted operator repeats it safely. Does I/O: RESP to the engines, API writes for the
//! switchover annotation.

use std::collections::BTreeMap;

use kube::api::{Api, Patch, PatchParams};
use kube::Client;

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
