//! Base backups and archive status, the decisions (issue 16): which `RedisPairBackup`s the
//! current master must be asked for, what their status becomes from the engine's answer,
//! when `spec.backup.schedule` creates the next one, and the backup part of the pair's status
//! (archive lag from the master's INFO). Pure: `backups` carries it out.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::engine_client::{EngineBackup, EngineInfo};
use super::schedule::Schedule;
use super::validate::{pair_labels, ValidatedPair};
use crate::api::{
    PairBackupStatus, RedisPairBackup, RedisPairBackupSpec, RedisPairBackupStatus,
    BACKUP_COMPLETED, BACKUP_FAILED, BACKUP_PENDING, BACKUP_RUNNING,
};

/// Label on the backups `spec.backup.schedule` created.
pub const LABEL_SCHEDULED: &str = "redispair.io/scheduled";

/// The id of a RedisPairBackup in the archive (`base/<id>/`): its name and the first 8
/// characters of its uid, so that a backup deleted and created again under the same name
/// never reuses the old one's objects. Within the engine's limit of 128 characters.
pub fn backup_id(b: &RedisPairBackup) -> String {
    let uid: String = b
        .uid()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let name: String = b.name_any().chars().take(110).collect();
    if uid.is_empty() {
        name
    } else {
        format!("{name}-{uid}")
    }
}

/// What to do about one RedisPairBackup this pass.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupWork {
    /// Ask the master for it (idempotent) and read its state.
    Run {
        name: String,
        id: String,
        pod: String,
        ip: String,
        status: RedisPairBackupStatus,
    },
    /// Its status becomes this without asking any engine.
    SetStatus {
        name: String,
        status: RedisPairBackupStatus,
    },
}

/// The backups of `pair` that are not done yet, and what to do about each. `master`: the
/// serving master's pod and IP (None: none now, they wait).
pub fn plan_backups(
    v: &ValidatedPair,
    backups: &[RedisPairBackup],
    master: Option<(&str, &str)>,
) -> Vec<BackupWork> {
    let mut out = Vec::new();
    for b in backups.iter().filter(|b| b.spec.pair == v.names.pair) {
        let status = b.status.clone().unwrap_or_default();
        if status.is_done() {
            continue;
        }
        let name = b.name_any();
        let Some(spec) = &v.spec.backup else {
            out.push(BackupWork::SetStatus {
                name,
                status: RedisPairBackupStatus {
                    phase: Some(BACKUP_FAILED.to_string()),
                    error: Some(format!(
                        "RedisPair {} has no spec.backup: nowhere to put a backup",
                        v.names.pair
                    )),
                    ..status
                },
            });
            continue;
        };
        let id = backup_id(b);
        let location = format!("{}/base/{id}/", spec.destination.url());
        match master {
            Some((pod, ip)) => out.push(BackupWork::Run {
                name,
                id: id.clone(),
                pod: pod.to_string(),
                ip: ip.to_string(),
                status: RedisPairBackupStatus {
                    backup_id: Some(id),
                    location: Some(location),
                    ..status
                },
            }),
            None if status.phase.is_none() => out.push(BackupWork::SetStatus {
                name,
                status: RedisPairBackupStatus {
                    phase: Some(BACKUP_PENDING.to_string()),
                    backup_id: Some(id),
                    location: Some(location),
                    ..status
                },
            }),
            None => {}
        }
    }
    out
}

fn rfc3339(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
}

/// A backup's status after the master answered BACKUP-STATUS (`answer`; None: it does not
/// know the id, which right after BACKUP means it is starting). `now_ms`: wall clock.
pub fn status_from_engine(
    mut status: RedisPairBackupStatus,
    pod: &str,
    answer: Option<&EngineBackup>,
    now_ms: i64,
) -> RedisPairBackupStatus {
    status.pod = Some(pod.to_string());
    if status.started_at.is_none() {
        status.started_at = rfc3339(now_ms);
    }
    let Some(a) = answer else {
        status.phase = Some(BACKUP_RUNNING.to_string());
        return status;
    };
    if let Some(t) = a.start_time_ms.and_then(rfc3339) {
        status.started_at = Some(t);
    }
    status.start_offset = a.start_offset.or(status.start_offset);
    status.end_offset = a.end_offset.or(status.end_offset);
    status.size = a.size.or(status.size);
    match a.phase.as_str() {
        "completed" => {
            status.phase = Some(BACKUP_COMPLETED.to_string());
            status.finished_at = a.end_time_ms.and_then(rfc3339).or_else(|| rfc3339(now_ms));
            status.error = None;
        }
        "failed" => {
            status.phase = Some(BACKUP_FAILED.to_string());
            status.finished_at = rfc3339(now_ms);
            status.error = Some(a.error.clone().unwrap_or_else(|| "failed".to_string()));
        }
        _ => status.phase = Some(BACKUP_RUNNING.to_string()),
    }
    status
}

/// Whether `schedule` fired since the last scheduled backup (or since the pair was created,
/// before the first): at most one backup is created however many runs were missed.
pub fn schedule_due(
    schedule: &Schedule,
    last_ms: Option<i64>,
    created_ms: i64,
    now_ms: i64,
) -> bool {
    schedule
        .next_after(last_ms.unwrap_or(created_ms))
        .is_some_and(|t| t <= now_ms)
}

/// The RedisPairBackup a schedule creates at `now_ms`: `<pair>-<yyyymmddhhmmss>`, owned by the
/// pair (deleted with it; the backup in the store stays, under retention).
pub fn scheduled_backup(v: &ValidatedPair, now_ms: i64) -> RedisPairBackup {
    let stamp = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.strftime("%Y%m%d%H%M%S").to_string())
        .unwrap_or_else(|_| now_ms.to_string());
    let mut labels = pair_labels(v);
    labels.insert(LABEL_SCHEDULED.to_string(), "true".to_string());
    RedisPairBackup {
        metadata: ObjectMeta {
            name: Some(format!("{}-{stamp}", v.names.pair)),
            namespace: Some(v.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![v.owner.clone()]),
            ..Default::default()
        },
        spec: RedisPairBackupSpec {
            pair: v.names.pair.clone(),
        },
        status: None,
    }
}

/// The base backup taken when a rollback completes: later restores to a time after the
/// rollback start from the rolled-back history's own snapshot (docs/backup.md, "Rollback").
/// Named after the request (`<pair>-rollback-<id>`, lower-cased, `_` as `-`: an object name),
/// owned by the pair like a scheduled one, without the scheduled label.
pub fn rollback_backup(v: &ValidatedPair, id: &str) -> RedisPairBackup {
    let mut b = scheduled_backup(v, 0);
    let id: String = id
        .chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    b.metadata.name = Some(format!("{}-rollback-{id}", v.names.pair));
    if let Some(l) = b.metadata.labels.as_mut() {
        l.remove(LABEL_SCHEDULED);
    }
    b
}

/// The backup part of the pair's status: the master's archiver (lag, errors), the newest
/// completed backup, and when the schedule last fired.
pub fn pair_status(
    master: Option<&EngineInfo>,
    pair: &str,
    backups: &[RedisPairBackup],
    last_schedule_time: Option<String>,
) -> PairBackupStatus {
    let archive = master.and_then(|m| m.archive.as_ref());
    let last = backups
        .iter()
        .filter(|b| b.spec.pair == pair)
        .filter_map(|b| {
            let s = b.status.as_ref()?;
            (s.phase.as_deref() == Some(BACKUP_COMPLETED))
                .then(|| (s.finished_at.clone().unwrap_or_default(), b.name_any()))
        })
        .max();
    PairBackupStatus {
        archive_status: archive.map(|a| a.status.clone()),
        archived_offset: archive.map(|a| a.archived_offset),
        archive_lag_bytes: archive.map(|a| a.lag_bytes),
        archive_lag_ms: archive.map(|a| a.lag_ms),
        archive_error: archive.and_then(|a| a.last_error.clone()),
        last_backup: last.as_ref().map(|(_, n)| n.clone()),
        last_backup_time: last.map(|(t, _)| t).filter(|t| !t.is_empty()),
        last_schedule_time,
    }
}

/// The engine settings for `spec.backup` that are not secret: the store's endpoint and region,
/// as the environment variables the engine's object store reads (`AWS_*`).
pub fn store_env(store: &crate::api::ObjectStoreSpec) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(e) = &store.endpoint_url {
        env.insert("AWS_ENDPOINT".to_string(), e.clone());
        if e.starts_with("http://") {
            env.insert("AWS_ALLOW_HTTP".to_string(), "true".to_string());
        }
    }
    if let Some(r) = &store.region {
        env.insert("AWS_REGION".to_string(), r.clone());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackupSpec, ObjectStoreSpec};
    use crate::operator::validate::tests::contract_validated;

    fn backup(name: &str, pair: &str, status: Option<RedisPairBackupStatus>) -> RedisPairBackup {
        let mut b = RedisPairBackup::new(
            name,
            RedisPairBackupSpec {
                pair: pair.to_string(),
            },
        );
        b.metadata.uid = Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into());
        b.status = status;
        b
    }

    fn with_backup() -> ValidatedPair {
        let mut v = contract_validated();
        v.spec.backup = Some(BackupSpec {
            destination: ObjectStoreSpec {
                destination_path: "s3://bucket/shop/cache/".into(),
                endpoint_url: Some("http://10.0.0.9:8333".into()),
                region: None,
                credentials_secret: None,
            },
            schedule: None,
            retention: None,
        });
        v
    }

    #[test]
    fn a_completed_rollback_is_backed_up_under_its_request_id() {
        let v = with_backup();
        let b = rollback_backup(&v, "Fix_Deploy.1");
        assert_eq!(
            b.metadata.name.as_deref(),
            Some("cache-rollback-fix-deploy.1")
        );
        assert_eq!(b.spec.pair, "cache");
        assert!(!b.metadata.labels.unwrap().contains_key(LABEL_SCHEDULED));
        assert_eq!(b.metadata.owner_references.unwrap()[0].name, "cache");
    }

    #[test]
    fn backups_run_on_the_master_wait_without_one_and_fail_without_spec_backup() {
        let v = with_backup();
        let done = RedisPairBackupStatus {
            phase: Some(BACKUP_COMPLETED.into()),
            ..Default::default()
        };
        let list = [
            backup("b1", "cache", None),
            backup("b2", "cache", Some(done)),
            backup("other", "sessions", None),
        ];
        let work = plan_backups(&v, &list, Some(("cache-a", "10.0.0.1")));
        assert_eq!(work.len(), 1, "{work:?}");
        let BackupWork::Run {
            name,
            id,
            pod,
            ip,
            status,
        } = &work[0]
        else {
            panic!("{work:?}")
        };
        assert_eq!(
            (name.as_str(), pod.as_str(), ip.as_str()),
            ("b1", "cache-a", "10.0.0.1")
        );
        assert_eq!(id, "b1-0f1e2d3c");
        assert_eq!(
            status.location.as_deref(),
            Some("s3://bucket/shop/cache/base/b1-0f1e2d3c/")
        );
        // No master: Pending, once.
        let work = plan_backups(&v, &list, None);
        let [BackupWork::SetStatus { status, .. }] = work.as_slice() else {
            panic!("{work:?}")
        };
        assert_eq!(status.phase.as_deref(), Some(BACKUP_PENDING));
        let pending = [backup("b1", "cache", Some(status.clone()))];
        assert!(plan_backups(&v, &pending, None).is_empty());
        // A pair without spec.backup: the backup fails, saying why.
        let work = plan_backups(&contract_validated(), &list, Some(("cache-a", "10.0.0.1")));
        let [BackupWork::SetStatus { status, .. }] = work.as_slice() else {
            panic!("{work:?}")
        };
        assert_eq!(status.phase.as_deref(), Some(BACKUP_FAILED));
        assert!(status.error.as_deref().unwrap().contains("no spec.backup"));
    }

    #[test]
    fn status_follows_the_engine() {
        let now = 1_765_000_000_000;
        let s = status_from_engine(RedisPairBackupStatus::default(), "cache-a", None, now);
        assert_eq!(s.phase.as_deref(), Some(BACKUP_RUNNING));
        assert!(s.started_at.is_some());
        let up = EngineBackup {
            phase: "uploading".into(),
            ..Default::default()
        };
        let s = status_from_engine(s, "cache-a", Some(&up), now);
        assert_eq!(s.phase.as_deref(), Some(BACKUP_RUNNING));
        let done = EngineBackup {
            phase: "completed".into(),
            start_offset: Some(100),
            end_offset: Some(180),
            start_time_ms: Some(now - 2000),
            end_time_ms: Some(now - 1000),
            size: Some(4096),
            error: None,
        };
        let s = status_from_engine(s, "cache-a", Some(&done), now);
        assert_eq!(s.phase.as_deref(), Some(BACKUP_COMPLETED));
        assert_eq!(
            (s.start_offset, s.end_offset, s.size),
            (Some(100), Some(180), Some(4096))
        );
        assert_eq!(s.finished_at, rfc3339(now - 1000));
        assert!(s.is_done());
        let failed = EngineBackup {
            phase: "failed".into(),
            error: Some("object store: boom".into()),
            ..Default::default()
        };
        let s = status_from_engine(
            RedisPairBackupStatus::default(),
            "cache-b",
            Some(&failed),
            now,
        );
        assert_eq!(s.phase.as_deref(), Some(BACKUP_FAILED));
        assert_eq!(s.error.as_deref(), Some("object store: boom"));
    }

    #[test]
    fn the_schedule_creates_one_backup_per_firing() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        let t = |x: &str| x.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let created = t("2026-12-05T12:00:00Z");
        assert!(!schedule_due(&s, None, created, t("2026-12-06T02:59:00Z")));
        assert!(schedule_due(&s, None, created, t("2026-12-06T03:00:00Z")));
        // Fired at 03:00:05: not again that day, even if several days were missed before.
        let last = Some(t("2026-12-06T03:00:05Z"));
        assert!(!schedule_due(&s, last, created, t("2026-12-06T23:00:00Z")));
        assert!(schedule_due(&s, last, created, t("2026-12-09T10:00:00Z")));
        let v = with_backup();
        let b = scheduled_backup(&v, t("2026-12-06T03:00:05Z"));
        assert_eq!(b.name_any(), "cache-20261206030005");
        assert_eq!(b.spec.pair, "cache");
        assert_eq!(
            b.labels().get(LABEL_SCHEDULED).map(String::as_str),
            Some("true")
        );
        assert_eq!(b.owner_references()[0].kind, "RedisPair");
    }

    #[test]
    fn pair_status_shows_the_archive_and_the_newest_backup() {
        let info = EngineInfo {
            role: crate::failover::Role::Master,
            term: 1,
            offset: 500,
            link_up: false,
            master_host: None,
            degraded: false,
            replica_ack_offset: None,
            replica_lag_seconds: None,
            detached_no_history: false,
            cannot_persist: false,
            archive: Some(super::super::engine_client::ArchiveInfo {
                status: "ok".into(),
                archived_offset: 450,
                lag_bytes: 50,
                lag_ms: 120,
                last_error: None,
            }),
        };
        let done = |t: &str| RedisPairBackupStatus {
            phase: Some(BACKUP_COMPLETED.into()),
            finished_at: Some(t.into()),
            ..Default::default()
        };
        let list = [
            backup("old", "cache", Some(done("2026-12-05T03:00:00Z"))),
            backup("new", "cache", Some(done("2026-12-06T03:00:00Z"))),
            backup("running", "cache", None),
        ];
        let s = pair_status(
            Some(&info),
            "cache",
            &list,
            Some("2026-12-06T03:00:00Z".into()),
        );
        assert_eq!(s.archive_status.as_deref(), Some("ok"));
        assert_eq!(
            (s.archived_offset, s.archive_lag_bytes, s.archive_lag_ms),
            (Some(450), Some(50), Some(120))
        );
        assert_eq!(s.last_backup.as_deref(), Some("new"));
        assert_eq!(s.last_backup_time.as_deref(), Some("2026-12-06T03:00:00Z"));
        let env = store_env(&with_backup().spec.backup.unwrap().destination);
        assert_eq!(env.get("AWS_ALLOW_HTTP").map(String::as_str), Some("true"));
        assert_eq!(
            env.get("AWS_ENDPOINT").map(String::as_str),
            Some("http://10.0.0.9:8333")
        );
    }
}
