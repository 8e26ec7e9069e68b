//! Carries out the failover machine's engine actions (promote, demote, fence, pause, degrade
//! authorisation) after the decision was recorded in status. Every action is idempotent, so a
//! restarted operator repeats it safely. Also puts a rotated password into the running
//! engines. Does I/O: RESP to the engines, API writes for the switchover and password
//! annotations.

use std::collections::BTreeMap;

use kube::api::{Api, Patch, PatchParams};
use kube::Client;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;

use super::decide::PasswordUpdate;
use super::engine_client::{EngineAccess, EngineClient, EngineError, EngineInfo};
use super::error::ReconcileError;
use super::prober::{now_ms, LeaseLedger, PROBE_TIMEOUT};
use crate::api::constants::{
    ANNOTATION_FORCE_FAILOVER, ANNOTATION_MIGRATE_CUTOVER, ANNOTATION_PASSWORD_APPLIED,
    ANNOTATION_SWITCHOVER,
};
use crate::api::RedisPair;
use crate::failover::Action;

/// How long a planned switchover pauses writes on the old master (renewed each pass).
pub const SWITCHOVER_PAUSE_MS: u64 = 2_000;
/// A paused offset is trusted while at least this much of its pause is left, so that the
/// promotion decided from it lands while the pause still holds.
pub const PAUSE_TRUSTED_MS: u64 = 1_000;

/// A pause this operator issued: the offset the engine reported right after it took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedOffset {
    pub pod: String,
    pub ip: String,
    pub offset: i64,
    /// Taken just before the pause was sent (the pause runs from a later moment).
    pub at_ms: u64,
}

/// Where the engine actions report what the next pass needs to know.
#[derive(Debug, Default)]
pub struct ActionEffects {
    pub paused: Vec<PausedOffset>,
    /// Engines read back right after an action changed their role (pod, probed IP, answer):
    /// the next pass sees a promotion at once instead of after the prober's next round.
    pub probed: Vec<(String, String, EngineInfo)>,
}

/// Run the engine actions of a decision. `ips` maps pod names to addresses. Fencing is best
/// effort (the old master may be unreachable: its lease lapses and its replica stopped
/// acknowledging, which is the real fence); everything else reports its error.
/// `source_password`: a migration source's password (`bootstrap.migrateFrom`).
#[allow(clippy::too_many_arguments)]
pub async fn run_engine_actions(
    client: &Client,
    pair: &RedisPair,
    pair_key: &str,
    actions: &[Action],
    ips: &BTreeMap<String, String>,
    access: &EngineAccess,
    source_password: Option<&str>,
    leases: &LeaseLedger,
    effects: &mut ActionEffects,
) -> Result<(), EngineError> {
    // A pair bootstrapped by a migration: its engines may still hold the source's
    // credentials (a `ForgetSource` that did not reach them), which would fail the link to
    // the pair's master; they are cleared before any demotion.
    let migrated = super::migrate::migrate_from(pair).is_some();
    let source_tls = super::migrate::migrate_from(pair).is_some_and(|m| m.tls.is_some());
    let connect = |pod: &str| {
        let ip = ips.get(pod).cloned();
        async move {
            match ip {
                Some(ip) => EngineClient::connect(&ip, access, PROBE_TIMEOUT)
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
                    // Best effort and not waited for: an old master that failed is usually
                    // unreachable, and waiting out a connect timeout here delayed every
                    // failover after a lost or partitioned node by that much. Safety does not
                    // rest on it (semi-sync: the old master cannot acknowledge; async: the
                    // promotion waits for its lease to lapse).
                    let ip = ips.get(pod).cloned();
                    let (pod, access) = (pod.clone(), access.clone());
                    tokio::spawn(async move {
                        let Some(ip) = ip else { return };
                        let Ok(mut c) = EngineClient::connect(&ip, &access, PROBE_TIMEOUT).await
                        else {
                            tracing::info!(%pod, "fencing: old master unreachable");
                            return;
                        };
                        // Writes wait from here until its lease lapses (the pause outlasts
                        // it), then fail; clients are cut and reconnect through the Service,
                        // which selects nothing until the new master is promoted.
                        let hold =
                            super::build::pod::WRITE_LEASE_MS + crate::failover::LEASE_MARGIN_MS;
                        if let Err(e) = c.pause_writes(hold).await {
                            tracing::info!(%pod, %e, "fencing: could not pause writes");
                        }
                        if let Err(e) = c.kill_normal_clients().await {
                            tracing::info!(%pod, %e, "fencing: could not cut clients");
                        }
                    });
                }
                Action::Promote { pod, term } => {
                    if let (Some(mut c), Some(ip)) = (connect(pod).await?, ips.get(pod)) {
                        c.promote(*term).await?;
                        // Read back on the same connection, so after the promotion.
                        match c.info().await {
                            Ok(info) => effects.probed.push((pod.clone(), ip.clone(), info)),
                            Err(e) => tracing::debug!(%pod, %e, "reading back a promotion"),
                        }
                    }
                }
                Action::GrantLease { pod } => {
                    if let Some(mut c) = connect(pod).await? {
                        leases.grant(pair_key, pod, &mut c, false).await?;
                    }
                }
                Action::Demote { pod, master, term } => {
                    if let (Some(mut c), Some(host)) = (connect(pod).await?, ips.get(master)) {
                        if migrated {
                            c.forget_source(source_tls).await?;
                        }
                        c.demote(host, *term).await?;
                    }
                }
                Action::PauseWrites { pod } => {
                    if let (Some(mut c), Some(ip)) = (connect(pod).await?, ips.get(pod)) {
                        let at_ms = now_ms();
                        c.pause_writes(SWITCHOVER_PAUSE_MS).await?;
                        // Read on the same connection, so after the pause took effect: every
                        // write the master accepted is below this offset.
                        let offset = c.info().await?.offset;
                        effects.paused.push(PausedOffset {
                            pod: pod.clone(),
                            ip: ip.clone(),
                            offset,
                            at_ms,
                        });
                    }
                }
                Action::OrderFullSync { pod, master, term } => {
                    // Recorded first (`Record::repair`); repeated until the replica is linked.
                    if let (Some(mut c), Some(host)) = (connect(pod).await?, ips.get(master)) {
                        if migrated {
                            c.forget_source(source_tls).await?;
                        }
                        c.demote_full_sync(host, *term).await?;
                    }
                }
                Action::AuthorizeDegrade { pod, term } => {
                    if let Some(mut c) = connect(pod).await? {
                        c.authorize_degrade(*term).await?;
                    }
                }
                Action::FollowSource { pod } => {
                    if let (Some(mut c), Some(spec)) =
                        (connect(pod).await?, super::migrate::migrate_from(pair))
                    {
                        c.follow_source(
                            &spec.host,
                            spec.port,
                            spec.user.as_deref(),
                            source_password,
                            spec.tls.is_some(),
                        )
                        .await?;
                    }
                }
                Action::ForgetSource { pod } => {
                    if let Some(mut c) = connect(pod).await? {
                        c.forget_source(source_tls).await?;
                    }
                }
                Action::ClearSwitchoverRequest
                | Action::ClearForceFailoverRequest
                | Action::ClearCutoverRequest => {
                    let api: Api<RedisPair> = Api::namespaced(
                        client.clone(),
                        pair.metadata.namespace.as_deref().unwrap_or_default(),
                    );
                    let key = match a {
                        Action::ClearSwitchoverRequest => ANNOTATION_SWITCHOVER,
                        Action::ClearCutoverRequest => ANNOTATION_MIGRATE_CUTOVER,
                        _ => ANNOTATION_FORCE_FAILOVER,
                    };
                    let patch = serde_json::json!({"metadata": {"annotations": {key: null}}});
                    let name = pair.metadata.name.clone().unwrap_or_default();
                    if let Err(e) = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::warn!(%e, key, "could not clear a request annotation");
                    }
                }
                // Pod deletions are the controller's (it knows the pod's uid).
                Action::SelectMaster(_)
                | Action::Event { .. }
                | Action::ReplacePod { .. }
                | Action::DeleteLostPod { .. } => {}
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

/// Put the pair's current password into one running engine (`CONFIG SET requirepass`, as the
/// admin user), then record its version on the pod. In this order: a crash in between only
/// means the same value is sent again. The replication link is not affected: the replica
/// authenticates to its master as the admin user, never with the client password.
pub async fn apply_password(
    client: &Client,
    ns: &str,
    update: &PasswordUpdate,
    access: &EngineAccess,
    password: &str,
) -> Result<(), ReconcileError> {
    let mut engine = EngineClient::connect(&update.ip, access, PROBE_TIMEOUT)
        .await
        .map_err(ReconcileError::Engine)?;
    engine
        .set_requirepass(password)
        .await
        .map_err(ReconcileError::Engine)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({
        "metadata": { "annotations": { ANNOTATION_PASSWORD_APPLIED: update.applied } }
    });
    pods.patch(&update.pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| ReconcileError::Apply {
            kind: "Pod",
            name: update.pod.clone(),
            source,
        })?;
    Ok(())
}

/// Delete a pod that cannot come back (and, for a lost node on local storage, its claim) so
/// the apply step recreates it on a healthy node. Recorded first (`Record::repair`) and
/// repeated until done: the uid precondition makes a repeat harmless to the replacement.
/// Force deletion (grace 0) is safe here: the pod is not the master, and its engine cannot
/// acknowledge anything (it is a replica, or a fenced old master whose replica was promoted in
/// a higher term).
pub async fn delete_lost_pod(
    client: &Client,
    ns: &str,
    pod: &str,
    uid: Option<&str>,
    claim: Option<&str>,
) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut params = DeleteParams::default().grace_period(0);
    if let Some(uid) = uid {
        params.preconditions = Some(kube::api::Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        });
    }
    match pods.delete(pod, &params).await {
        Ok(_) => {}
        // Gone already, or another pod object by now (the replacement): nothing to do.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => return Err(e),
    }
    if let Some(claim) = claim {
        match claims.delete(claim, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Rollout: delete a replica pod built from an outdated spec, so the apply step recreates it
/// from the current one on the same claim. A graceful deletion (unlike [`delete_lost_pod`]): the
/// engine gets SIGTERM and flushes its log, so the new pod resumes from its data by partial
/// resync. The uid precondition makes a decision taken on an older observation harmless: it
/// can only delete the pod it saw, never its replacement.
pub async fn delete_pod_for_rollout(
    client: &Client,
    ns: &str,
    pod: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match pods.delete(pod, &params).await {
        Ok(_) => Ok(()),
        // Gone already, or already replaced (uid mismatch): nothing to do.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Grant the decided master its write lease now, in the pass that made it master, so it is
/// writable as soon as the Service selects it (the prober renews it from then on, and only
/// while no failover is recorded).
pub async fn grant_master_lease(
    leases: &LeaseLedger,
    pair_key: &str,
    pod: &str,
    ip: &str,
    access: &EngineAccess,
) -> Result<(), EngineError> {
    let mut c = EngineClient::connect(ip, access, PROBE_TIMEOUT).await?;
    leases.grant(pair_key, pod, &mut c, true).await.map(|_| ())
}
