//! Base backups, carried out (the act step's part for issue 16): creates the RedisPairBackup
//! a schedule fired for, asks the current master for each backup in progress (`REDISPAIR
//! BACKUP <id>`, idempotent, then `BACKUP-STATUS <id>`) and writes the RedisPairBackups'
//! status. Does I/O: Kubernetes API (create, status patches), RESP to the master. The
//! decisions are in `backup` (pure).

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use tracing::{info, warn};

use super::backup::{status_from_engine, BackupWork};
use super::engine_client::EngineClient;
use crate::api::{RedisPairBackup, RedisPairBackupStatus};

/// Connect and response timeout of the backup commands (a snapshot is asked for, not waited
/// on: the engine answers BACKUP at once).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

/// Write a RedisPairBackup's status (merge patch of the status subresource).
async fn patch_backup_status(
    api: &Api<RedisPairBackup>,
    name: &str,
    status: &RedisPairBackupStatus,
) -> Result<(), kube::Error> {
    let body = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map(|_| ())
}

/// Carry out this pass's backup work. Nothing here fails the pass: a failover never waits on
/// a backup; what could not be done is logged and done again next pass (the prober triggers
/// one every few seconds).
pub async fn run(
    client: &Client,
    namespace: &str,
    access: Option<&super::engine_client::EngineAccess>,
    create: Option<&RedisPairBackup>,
    work: &[BackupWork],
    current: &[RedisPairBackup],
) {
    let api: Api<RedisPairBackup> = Api::namespaced(client.clone(), namespace);
    if let Some(b) = create {
        match api.create(&PostParams::default(), b).await {
            Ok(_) => info!(backup = ?b.metadata.name, "scheduled backup created"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => warn!(%e, backup = ?b.metadata.name, "creating the scheduled backup"),
        }
    }
    let previous = |name: &str| {
        current
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .and_then(|b| b.status.clone())
            .unwrap_or_default()
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    for w in work {
        let (name, status) = match w {
            BackupWork::SetStatus { name, status } => (name, status.clone()),
            BackupWork::Run {
                name,
                id,
                pod,
                ip,
                status,
            } => {
                let Some(access) = access else { continue };
                let answer = async {
                    let mut c = EngineClient::connect(ip, access, ENGINE_TIMEOUT).await?;
                    c.backup(id).await?;
                    c.backup_status(id).await
                }
                .await;
                match answer {
                    Ok(a) => (
                        name,
                        status_from_engine(status.clone(), pod, a.as_ref(), now_ms),
                    ),
                    Err(e) => {
                        warn!(%e, backup = %name, %pod, "asking the master for the backup");
                        continue;
                    }
                }
            }
        };
        if status == previous(name) {
            continue;
        }
        if status.is_done() {
            info!(backup = %name, phase = ?status.phase, error = ?status.error, "backup finished");
        }
        if let Err(e) = patch_backup_status(&api, name, &status).await {
            warn!(%e, backup = %name, "writing the backup's status");
        }
    }
}
