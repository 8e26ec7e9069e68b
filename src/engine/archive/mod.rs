//! Continuous archiving to object storage and restore from it: the archive's layout
//! ([`layout`], pure), the restore that builds a data directory from an archive ([`restore`]),
//! and the object store they share with the archiver thread that uploads the write log and base
//! backups (`server::archiver`, a driver above the command layer). Does I/O: object storage (S3 and S3-compatible, GCS, Azure
//! Blob, a filesystem path) through the `object_store` crate. See docs/backup.md.

pub mod layout;
pub mod restore;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use thiserror::Error;

use layout::{BackupManifest, WalName, WalObject};

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("bad archive URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("object store: {0}")]
    Store(String),
    #[error("archive object {object} is corrupt: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("archive object {object} is missing: {reason}")]
    Missing { object: String, reason: String },
    #[error("{0}")]
    NoBackup(String),
    #[error("{0}")]
    Target(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Persist(#[from] crate::engine::persistence::PersistError),
}

/// The archive an engine writes to or a restore reads from: an object store and the URL it
/// was opened from (without credentials: they come from the environment).
#[derive(Clone)]
pub struct Archive {
    pub store: Arc<dyn ObjectStore>,
    pub url: String,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Archive({})", self.url)
    }
}

fn store_err(e: object_store::Error) -> ArchiveError {
    ArchiveError::Store(e.to_string())
}

/// Applies to a store's builder the settings whose names are its configuration keys (each
/// store's key type parses the environment variable names it reads); the others belong to
/// another store and are skipped, so one credentials Secret may hold several stores' keys.
fn with_known_settings<B, K: std::str::FromStr>(
    mut builder: B,
    settings: &[(String, String)],
    with_config: impl Fn(B, K, &str) -> B,
) -> B {
    for (name, value) in settings {
        if let Ok(key) = name.parse::<K>() {
            builder = with_config(builder, key, value);
        }
    }
    builder
}

/// The settings in a credentials directory (see [`Archive::open_with`]): (lower-cased file
/// name, value), the form the stores' config keys parse (`from_env` lower-cases the variable
/// names the same way).
pub(crate) fn read_settings_dir(dir: &Path) -> Result<Vec<(String, String)>, ArchiveError> {
    let io = |source| ArchiveError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Secret volumes hold `..data` and timestamped directories beside the keys' links.
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let raw = std::fs::read_to_string(entry.path()).map_err(|source| ArchiveError::Io {
            path: entry.path().display().to_string(),
            source,
        })?;
        let value = raw
            .strip_suffix("\r\n")
            .or_else(|| raw.strip_suffix('\n'))
            .unwrap_or(&raw);
        out.push((name.to_ascii_lowercase(), value.to_string()));
    }
    out.sort();
    Ok(out)
}

impl Archive {
    /// Open the archive at `url`: `file:///path`, `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` (also `azure://`, `abfs://`, `abfss://`). Credentials and
    /// endpoints come from the environment, under the store's usual names (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP` for an
    /// S3-compatible store on plain HTTP; `GOOGLE_SERVICE_ACCOUNT`; `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`...), so a Kubernetes Secret mounted as environment
    /// variables is all the configuration they need.
    pub fn open(url: &str) -> Result<Archive, ArchiveError> {
        Archive::open_with(url, None)
    }

    /// [`Archive::open`], with settings also read from `credentials_dir`: one file per
    /// setting, named as the environment variable (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `GOOGLE_SERVICE_ACCOUNT_KEY`, `AZURE_STORAGE_ACCOUNT_KEY`...), holding its value (one
    /// trailing newline is not part of it). A Kubernetes Secret mounted as a volume is such a
    /// directory: credentials then reach the engine through neither its command line nor its
    /// environment (both readable by anyone who can inspect the container). Files override the
    /// environment; names the store does not know, and hidden files (the kubelet's `..data`),
    /// are ignored.
    pub fn open_with(url: &str, credentials_dir: Option<&Path>) -> Result<Archive, ArchiveError> {
        let settings = match credentials_dir {
            Some(dir) => read_settings_dir(dir)?,
            None => Vec::new(),
        };
        let bad = |reason: String| ArchiveError::Url {
            url: url.to_string(),
            reason,
        };
        // The HTTP transport's TLS needs a process-wide crypto provider (ring, as the rest
        // of the crate uses); a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://...".into()))?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            "file" => {
                let path = format!("/{}", rest.trim_start_matches('/'));
                std::fs::create_dir_all(&path).map_err(|e| bad(format!("{path}: {e}")))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&path)
                    .map_err(|e| bad(e.to_string()))?
                    .with_automatic_cleanup(true);
                return Ok(Archive {
                    store: Arc::new(fs),
                    url: url.to_string(),
                });
            }
            "s3" | "s3a" => {
                let b = object_store::aws::AmazonS3Builder::from_env();
                let b = with_known_settings(b, &settings, |b, k, v| b.with_config(k, v));
                Arc::new(
                    b.with_url(format!("s3://{bucket}"))
                        .build()
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            "gs" => {
                let b = object_store::gcp::GoogleCloudStorageBuilder::from_env();
                let b = with_known_settings(b, &settings, |b, k, v| b.with_config(k, v));
                Arc::new(
                    b.with_url(format!("gs://{bucket}"))
                        .build()
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let b = object_store::azure::MicrosoftAzureBuilder::from_env();
                let b = with_known_settings(b, &settings, |b, k, v| b.with_config(k, v));
                Arc::new(
                    b.with_url(format!("{scheme}://{bucket}"))
                        .build()
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            other => return Err(bad(format!("unsupported scheme {other}"))),
        };
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Archive {
            store,
            url: url.to_string(),
        })
    }

    pub async fn put(&self, path: &str, data: Vec<u8>) -> Result<(), ArchiveError> {
        self.store
            .put(&ObjectPath::from(path), data.into())
            .await
            .map(|_| ())
            .map_err(store_err)
    }

    /// The object at `path`; a missing one is [`ArchiveError::Missing`] naming it.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, ArchiveError> {
        match self.store.get(&ObjectPath::from(path)).await {
            Ok(r) => Ok(r.bytes().await.map_err(store_err)?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(ArchiveError::Missing {
                object: path.to_string(),
                reason: "not found".into(),
            }),
            Err(e) => Err(store_err(e)),
        }
    }

    pub async fn delete(&self, path: &str) -> Result<(), ArchiveError> {
        match self.store.delete(&ObjectPath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Every WAL chunk in the archive, in stream order.
    pub async fn list_wal(&self) -> Result<Vec<WalObject>, ArchiveError> {
        let prefix = ObjectPath::from(layout::WAL_DIR);
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(store_err)?;
        let mut out: Vec<WalObject> = metas
            .iter()
            .filter_map(|m| {
                Some(WalObject {
                    name: WalName::parse(m.location.as_ref())?,
                    uploaded_ms: m.last_modified.timestamp_millis(),
                })
            })
            .collect();
        out.sort_by_key(|o| (o.name.start, o.name.term, o.uploaded_ms));
        Ok(out)
    }

    /// Every complete base backup (those with a manifest), oldest first. A manifest that
    /// cannot be read or parsed is an error naming it; one deleted since the listing is not
    /// there.
    pub async fn list_backups(&self) -> Result<Vec<BackupManifest>, ArchiveError> {
        let prefix = ObjectPath::from(layout::BASE_DIR);
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(store_err)?;
        let mut out = Vec::new();
        for m in metas {
            let path = m.location.to_string();
            if !path.ends_with("/manifest.json") {
                continue;
            }
            let data = match self.get(&path).await {
                Ok(d) => d,
                // Deleted between the listing and the read: retention removing an old backup
                // (manifest first) while a restore or a listing runs. Such a backup is no
                // longer complete, as one that never had a manifest (found by the S3 test).
                Err(ArchiveError::Missing { .. }) => continue,
                Err(e) => return Err(e),
            };
            let manifest: BackupManifest =
                serde_json::from_slice(&data).map_err(|e| ArchiveError::Corrupt {
                    object: path.clone(),
                    reason: format!("bad manifest: {e}"),
                })?;
            out.push(manifest);
        }
        out.sort_by_key(|b| (b.start_offset, b.start_time_ms));
        Ok(out)
    }
}

/// Phases of a base backup asked for with `REDISPAIR BACKUP <id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupPhase {
    /// Waiting for a snapshot that completes after the request.
    Snapshotting,
    Uploading,
    Completed,
    Failed,
}

impl BackupPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupPhase::Snapshotting => "snapshotting",
            BackupPhase::Uploading => "uploading",
            BackupPhase::Completed => "completed",
            BackupPhase::Failed => "failed",
        }
    }
}

/// A base backup this engine was asked for.
#[derive(Debug, Clone)]
pub struct BackupStatus {
    pub phase: BackupPhase,
    pub requested_ms: i64,
    /// `snapshots_done` when it was asked for: the next snapshot to complete is its own.
    pub after_snapshot: u64,
    pub manifest: Option<BackupManifest>,
    pub error: Option<String>,
}

/// The archiver's state, shared with INFO and the admin commands.
#[derive(Debug)]
pub struct ArchiveStatus {
    pub url: String,
    /// The archive holds the stream up to here (the archiver's position); shared with the
    /// persistence retention, which keeps the segments after it.
    pub archived: Arc<AtomicU64>,
    /// `archived` was read from the archive (false until the first listing succeeds).
    pub known: AtomicBool,
    /// Stream offset the archiver may upload to (durable on the local disk).
    pub limit: AtomicU64,
    /// When the oldest record not yet archived was appended (0: none waiting).
    pub oldest_waiting_ms: AtomicI64,
    pub chunks: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub last_upload_ms: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// A gap the archive cannot fill (the local log no longer holds where it ends).
    pub gap: Mutex<Option<String>>,
    pub backups: Mutex<BTreeMap<String, BackupStatus>>,
    pub stop: AtomicBool,
}

impl ArchiveStatus {
    pub fn new(url: &str) -> ArchiveStatus {
        ArchiveStatus {
            url: redact(url),
            archived: Arc::new(AtomicU64::new(0)),
            known: AtomicBool::new(false),
            limit: AtomicU64::new(0),
            oldest_waiting_ms: AtomicI64::new(0),
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_upload_ms: AtomicI64::new(0),
            last_error: Mutex::new(None),
            gap: Mutex::new(None),
            backups: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        }
    }

    /// The archive's lag: (bytes durable here and not archived, ms the oldest of them has
    /// waited). Both 0 on a replica (it does not upload).
    pub fn lag(&self, now_ms: i64) -> (u64, i64) {
        let archived = self.archived.load(Ordering::Acquire);
        let limit = self.limit.load(Ordering::Acquire);
        let oldest = self.oldest_waiting_ms.load(Ordering::Acquire);
        let ms = if oldest > 0 {
            (now_ms - oldest).max(0)
        } else {
            0
        };
        (limit.saturating_sub(archived), ms)
    }

    /// Uploads currently fail (the last attempt's error is kept until one succeeds).
    pub fn failing(&self) -> bool {
        self.last_error.lock().is_some()
    }

    /// INFO fields (section `persistence`).
    pub fn info(&self, now_ms: i64) -> String {
        let archived = self.archived.load(Ordering::Acquire);
        let limit = self.limit.load(Ordering::Acquire);
        let oldest = self.oldest_waiting_ms.load(Ordering::Acquire);
        let lag_ms = if oldest > 0 {
            (now_ms - oldest).max(0)
        } else {
            0
        };
        let last_backup = self
            .backups
            .lock()
            .values()
            .filter_map(|b| b.manifest.as_ref())
            .max_by_key(|m| m.end_time_ms)
            .map(|m| m.id.clone())
            .unwrap_or_default();
        format!(
            "archive_enabled:1\r\narchive_url:{}\r\narchive_status:{}\r\narchived_offset:{archived}\r\narchive_lag_bytes:{}\r\narchive_lag_ms:{lag_ms}\r\narchive_chunks:{}\r\narchive_bytes:{}\r\narchive_errors:{}\r\narchive_last_error:{}\r\narchive_last_upload_time:{}\r\narchive_gap:{}\r\narchive_last_backup:{last_backup}\r\n",
            self.url,
            // Failing first: an archiver that never reached the store (wrong credentials from
            // the start) is failing, not starting.
            if self.last_error.lock().is_some() {
                "failing"
            } else if !self.known.load(Ordering::Acquire) {
                "starting"
            } else {
                "ok"
            },
            limit.saturating_sub(archived),
            self.chunks.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.last_error.lock().clone().unwrap_or_default(),
            self.last_upload_ms.load(Ordering::Relaxed) / 1000,
            self.gap.lock().clone().unwrap_or_default(),
        )
    }
}

/// The URL without a password (`scheme://user:pass@host` → `scheme://user:***@host`).
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_directory_is_read_as_a_secret_volume_lays_it_out() {
        let dir = std::env::temp_dir().join(format!("rp-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("..2026_12_06_12_00_00.1")).unwrap();
        std::fs::write(dir.join("AWS_ACCESS_KEY_ID"), "key-id\n").unwrap();
        std::fs::write(dir.join("AWS_SECRET_ACCESS_KEY"), "s3cr3t\r\n").unwrap();
        std::fs::write(dir.join("..data"), "kubelet bookkeeping").unwrap();
        let settings = read_settings_dir(&dir).unwrap();
        assert_eq!(
            settings,
            [
                ("aws_access_key_id".to_string(), "key-id".to_string()),
                ("aws_secret_access_key".to_string(), "s3cr3t".to_string()),
            ]
        );
        // An S3 archive opens with them (names the store does not know are ignored).
        std::fs::write(dir.join("unrelated"), "x").unwrap();
        assert!(Archive::open_with("s3://bucket/prefix", Some(&dir)).is_ok());
        let missing = Archive::open_with("s3://bucket/p", Some(&dir.join("nope"))).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
