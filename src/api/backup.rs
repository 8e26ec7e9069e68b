//! Backup and recovery types (issue 16): `spec.backup` of a RedisPair (where its archive goes,
//! the base backup schedule and retention), `spec.bootstrap.recovery` (a new pair restored
//! from an archive), the `RedisPairBackup` resource (one on-demand base backup), the backup
//! part of a pair's status, and a rollback of a running pair to a point of its own archive
//! (the `redispair.io/rollback` annotation and `status.rollback`). Pure types: no client, no
//! I/O.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Continuous archiving of the pair's write log and base backups (docs/backup.md). The
/// master's engine uploads as it writes; the operator only passes the settings and asks for
/// base backups.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The object store the archive goes to. Give each pair a prefix of its own: an engine
    /// refuses to continue another pair's history.
    pub destination: ObjectStoreSpec,
    /// When base backups are taken: a cron expression of five fields (minute hour
    /// day-of-month month day-of-week, UTC), for example `0 3 * * *`. Unset: on demand only
    /// (`RedisPairBackup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How far back a restore must stay possible (`7d`, `12h`, `30m`): older base backups and
    /// log chunks are deleted from the store. Unset: keep everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+[smhd]$')").message("backup.retention must be a number followed by s, m, h or d (for example 7d)"))]
    pub retention: Option<String>,
}

/// An object store location and how to reach it.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (also `azure://`,
    /// `abfs://`, `abfss://`) or `file:///path` (a volume the pods mount: tests).
    #[x_kube(validation = Rule::new("self.matches('^(s3|s3a|gs|az|azure|abfs|abfss|file)://.+')").message("destinationPath must be s3://, gs://, az:// or file:// followed by a bucket or path"))]
    pub destination_path: String,
    /// Endpoint of an S3-compatible store (SeaweedFS, MinIO, Ceph), for example
    /// `http://seaweedfs.storage:8333`; plain `http://` is allowed. Unset: AWS.
    #[serde(
        default,
        rename = "endpointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    /// S3 region (default us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret in the pair's namespace holding the credentials, one key per setting named as
    /// the store's environment variable: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`;
    /// `GOOGLE_SERVICE_ACCOUNT_KEY`; `AZURE_STORAGE_ACCOUNT_NAME` and
    /// `AZURE_STORAGE_ACCOUNT_KEY`. Mounted into the engine pods as files (never in their
    /// environment or command line); the operator never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<LocalSecretRef>,
}

impl ObjectStoreSpec {
    /// The URL the engine opens (`archive-url`, `restore --from`).
    pub fn url(&self) -> &str {
        self.destination_path.trim_end_matches('/')
    }
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
pub struct LocalSecretRef {
    #[x_kube(validation = Rule::new("self != ''").message("the Secret name must not be empty"))]
    pub name: String,
}

/// A new pair's data restored from an archive before its first master starts: a backup of
/// this or another pair (a clone), up to a point in time or offset.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.targetTime) && has(self.targetOffset))").message("give targetTime or targetOffset, not both"))]
pub struct RecoverySpec {
    /// The archive to restore from (another pair's `spec.backup.destination`).
    pub source: ObjectStoreSpec,
    /// The base backup to start from (its id, as `kubectl redispair backups` shows it).
    /// Unset: the newest one that starts before the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Restore every write made up to this time (RFC 3339) and none after. Unset (and no
    /// targetOffset): everything the archive holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$')").message("targetTime must be an RFC 3339 time, for example 2026-12-06T10:00:00Z"))]
    pub target_time: Option<String>,
    /// Restore the stream up to this replication offset (the last whole write at or before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("targetOffset must not be negative"))]
    pub target_offset: Option<i64>,
}

/// One base backup of a pair, taken on its current master (`REDISPAIR BACKUP`), on demand
/// (`kubectl redispair backup NAME`) or by `spec.backup.schedule`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "redispair.io",
    version = "v1alpha1",
    kind = "RedisPairBackup",
    plural = "redispairbackups",
    singular = "redispairbackup",
    shortname = "rpb",
    namespaced,
    status = "RedisPairBackupStatus",
    printcolumn = r#"{"name":"Pair","type":"string","jsonPath":".spec.pair"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.size"}"#,
    printcolumn = r#"{"name":"Offset","type":"integer","jsonPath":".status.startOffset"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisPairBackupSpec {
    /// The RedisPair (same namespace) to back up; it needs `spec.backup`.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.pair is immutable"))]
    pub pair: String,
}

/// Phases of a [`RedisPairBackup`].
pub const BACKUP_PENDING: &str = "Pending";
pub const BACKUP_RUNNING: &str = "Running";
pub const BACKUP_COMPLETED: &str = "Completed";
pub const BACKUP_FAILED: &str = "Failed";

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RedisPairBackupStatus {
    /// Pending (waiting for a master), Running, Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The backup's id in the archive (`base/<id>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The master pod it was taken on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// RFC 3339: when the snapshot began and when the backup was complete in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The replication offset the snapshot holds the dataset at (a restore starts there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<i64>,
    /// The offset when the snapshot was complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<i64>,
    /// Bytes of the snapshot object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Where it is: `<destinationPath>/base/<id>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RedisPairBackupStatus {
    /// Completed or Failed: nothing more happens to it.
    pub fn is_done(&self) -> bool {
        matches!(
            self.phase.as_deref(),
            Some(BACKUP_COMPLETED) | Some(BACKUP_FAILED)
        )
    }
}

/// The archive and base backups of a pair, in its status.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PairBackupStatus {
    /// The master's archiver: starting, ok or failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_status: Option<String>,
    /// The stream offset up to which the log is in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_offset: Option<i64>,
    /// Bytes of durable log not archived yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_lag_bytes: Option<i64>,
    /// Age in ms of the oldest write not archived yet (the recovery point objective now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_lag_ms: Option<i64>,
    /// The archiver's last error, while it is failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_error: Option<String>,
    /// The newest completed RedisPairBackup, and when it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<String>,
    /// When `spec.backup.schedule` last created a backup (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
}

/// A rollback request: the value of the `redispair.io/rollback` annotation, as JSON
/// (`kubectl annotate rp cache redispair.io/rollback='{"id":"r1","confirm":"cache",
/// "targetTime":"2026-12-06T10:00:00Z"}'`). It discards every write after the target, on
/// both pods: `confirm` must repeat the pair's name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackRequest {
    /// Names this request: a request is carried out (or refused) once, whatever happens to
    /// the annotation afterwards; a new rollback needs a new id.
    pub id: String,
    /// The pair's name, repeated: the confirmation that newer writes may be discarded.
    pub confirm: String,
    /// Every write up to this time (RFC 3339) is kept, none after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
    /// The stream up to this replication offset (the last whole write at or before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_offset: Option<u64>,
    /// The base backup to start from (default: the newest before the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// The phases of a rollback, each recorded before it is acted on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackPhase {
    /// Clients cut off (the read-write Service selects nothing), both pods deleted.
    Fencing,
    /// The first pod restores its data directory from the archive before its engine starts
    /// and is elected in a new term; the other pod full-syncs from it.
    Restoring,
    /// The pair was Ready in the new term.
    Completed,
    /// Refused (the message says why); nothing was done.
    Failed,
}

/// A rollback in the pair's status.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// The request's id.
    pub id: String,
    pub phase: RollbackPhase,
    /// The target, as requested (neither: the archive's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The pair's term when the rollback started: the restored master is elected above it.
    pub from_term: i64,
    /// The uids of the pods that held the newer writes (deleted in `Fencing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_pod_uids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}
