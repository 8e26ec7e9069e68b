//! The archiver: a thread of the engine that uploads the write log to the archive in chunks
//! as it becomes durable, uploads base backups (a snapshot and its manifest) when asked for,
//! and applies the archive's retention. It never blocks a write: it reads the segment files
//! and takes the state lock only to copy a few fields. Does I/O: segment and snapshot files,
//! object storage.
//!
//! Only a master uploads WAL. A replica lists the archive now and then to learn where it ends,
//! so its own retention keeps what a failover would make it upload. A node that becomes master
//! (or changes term) lists the archive and resumes where the part of the timeline it shares
//! ends (`layout::resume_point`): one timeline across failovers, with no gap and no fork.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::engine::archive::layout::{self, BackupManifest, ChunkHeader, WalName};
use crate::engine::archive::{Archive, ArchiveError, ArchiveStatus, BackupPhase};
use crate::engine::clock::now_ms;
use crate::engine::core::Engine;
use crate::engine::persistence::writer::{FsyncPolicy, LogWriter};
use crate::engine::persistence::{self, record, SegmentCursor};
use crate::engine::replication::Role;

/// How often the loop looks for work.
const TICK: Duration = Duration::from_millis(100);
/// A replica's look at where the archive ends.
const REPLICA_LIST_EVERY: Duration = Duration::from_secs(10);
/// Retention runs this often (and after each backup).
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// Failed uploads are retried after a delay that doubles up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Start the archiver thread for `url` (settings also read from `credentials_dir`, see
/// [`Archive::open_with`]). The status it returns is what INFO and the admin
/// commands see; `status.archived` is the pin the persistence retention honours.
pub fn start(
    engine: Arc<Engine>,
    url: &str,
    credentials_dir: Option<&std::path::Path>,
) -> Result<Arc<ArchiveStatus>, ArchiveError> {
    let archive = Archive::open_with(url, credentials_dir)?;
    let source = StoreSource::new(url, credentials_dir);
    let status = Arc::new(ArchiveStatus::new(url));
    let s = status.clone();
    std::thread::Builder::new()
        .name("archiver".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the archiver");
                    return;
                }
            };
            rt.block_on(run(engine, archive, source, s));
        })
        .map_err(|e| ArchiveError::Io {
            path: "archiver thread".into(),
            source: e,
        })?;
    Ok(status)
}

/// Where the store's settings came from, to open it again when its credentials directory
/// changes: a Kubernetes Secret volume is updated in place by the kubelet, so credentials that
/// were missing, wrong or rotated take effect without restarting the engine (which would cost
/// the pair a failover, for a backup problem).
struct StoreSource {
    url: String,
    dir: Option<PathBuf>,
    /// The settings the store was opened with (None: the directory could not be read).
    settings: Option<Vec<(String, String)>>,
}

impl StoreSource {
    fn new(url: &str, dir: Option<&Path>) -> StoreSource {
        StoreSource {
            url: url.to_string(),
            dir: dir.map(Path::to_path_buf),
            settings: dir.and_then(|d| crate::engine::archive::read_settings_dir(d).ok()),
        }
    }

    /// The archive opened again if the directory's settings changed since it was opened.
    fn reopen_if_changed(&mut self) -> Option<Archive> {
        let dir = self.dir.as_deref()?;
        let now = crate::engine::archive::read_settings_dir(dir).ok();
        if now.is_none() || now == self.settings {
            return None;
        }
        match Archive::open_with(&self.url, Some(dir)) {
            Ok(a) => {
                self.settings = now;
                info!(dir = %dir.display(), "archive credentials changed: the store is opened again");
                Some(a)
            }
            Err(e) => {
                warn!(error = %e, "archive credentials changed but the store cannot be opened with them");
                None
            }
        }
    }
}

/// What the loop copies out of the state at each tick.
struct Observed {
    role: Role,
    term: u64,
    fork: Option<u64>,
    writer: Option<Arc<LogWriter>>,
    dir: PathBuf,
    snapshots_done: u64,
    snapshot: Option<(u64, i64, i64, u64)>,
    timeout_ms: i64,
    chunk_bytes: usize,
    retention_ms: i64,
}

fn observe(engine: &Engine) -> Observed {
    let st = engine.state.lock();
    let setting = |name: &str, default: i64| {
        st.config
            .get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(default)
    };
    let p = &st.persist;
    Observed {
        role: st.repl.role,
        term: st.repl.term,
        fork: (st.repl.second_offset >= 0).then_some(st.repl.second_offset as u64),
        writer: st.stream.log.clone(),
        dir: p.dir.clone(),
        snapshots_done: p.snapshots_done,
        snapshot: p.last_snapshot_offset.map(|o| {
            (
                o,
                p.last_snapshot_began_ms,
                p.last_snapshot_done_ms,
                p.last_snapshot_end_offset,
            )
        }),
        timeout_ms: setting("archive-timeout", 5000),
        chunk_bytes: setting("archive-chunk-size", 16 << 20).max(4096) as usize,
        retention_ms: st
            .config
            .get("archive-retention")
            .and_then(layout::parse_duration_ms)
            .unwrap_or(0),
    }
}

/// A chunk built but not uploaded yet (kept across failed attempts: its time index was taken
/// out of the writer).
struct Pending {
    name: WalName,
    data: Vec<u8>,
}

async fn run(
    engine: Arc<Engine>,
    mut archive: Archive,
    mut source: StoreSource,
    status: Arc<ArchiveStatus>,
) {
    info!(url = %status.url, "archiver started");
    let mut cursor: Option<SegmentCursor> = None;
    // The (term, fork) the resume point was computed for; None: compute it again.
    let mut resumed_for: Option<(u64, Option<u64>)> = None;
    let mut pending: Option<Pending> = None;
    let mut backoff = Duration::from_millis(100);
    let mut retry_at = Instant::now();
    let mut next_replica_list = Instant::now();
    let mut next_retention = Instant::now() + RETENTION_EVERY;
    let mut uploads = tokio::task::JoinSet::new();
    loop {
        if status.stop.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(TICK).await;
        while let Some(r) = uploads.try_join_next() {
            if let Ok(true) = r {
                next_retention = Instant::now();
            }
        }
        let o = observe(&engine);
        let Some(writer) = o.writer.clone() else {
            continue;
        };
        writer.track_times();
        let limit = match writer.policy() {
            // Only what is on the disk: a node restarted after a power loss must never hold
            // less than the archive says it wrote.
            FsyncPolicy::Always | FsyncPolicy::EverySec => writer.durable.load(Ordering::Acquire),
            FsyncPolicy::No => writer.written.load(Ordering::Acquire),
        };
        status.limit.store(limit, Ordering::Release);
        start_backups(&archive, &status, &o, &mut uploads);
        if Instant::now() < retry_at {
            continue;
        }
        let result = if o.role == Role::Master {
            archive_wal(
                &archive,
                &status,
                &o,
                &writer,
                limit,
                &mut cursor,
                &mut resumed_for,
                &mut pending,
            )
            .await
        } else {
            resumed_for = None;
            pending = None;
            if Instant::now() >= next_replica_list {
                next_replica_list = Instant::now() + REPLICA_LIST_EVERY;
                follow_archive_end(&archive, &status, &writer).await
            } else {
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                if status.last_error.lock().take().is_some() {
                    info!("archiving works again");
                }
            }
            Err(e) => {
                status.errors.fetch_add(1, Ordering::Relaxed);
                let text = e.to_string();
                let mut last = status.last_error.lock();
                if last.as_deref() != Some(text.as_str()) {
                    warn!(error = %text, retry_ms = backoff.as_millis() as u64, "archiving failed; retrying");
                }
                *last = Some(text);
                retry_at = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                drop(last);
                // Failing for want of credentials? Fixed files are used at the next try.
                if let Some(fresh) = source.reopen_if_changed() {
                    archive = fresh;
                    backoff = Duration::from_millis(100);
                    retry_at = Instant::now();
                }
            }
        }
        if o.role == Role::Master && o.retention_ms > 0 && Instant::now() >= next_retention {
            next_retention = Instant::now() + RETENTION_EVERY;
            if let Err(e) = apply_retention(&archive, o.retention_ms).await {
                warn!(error = %e, "archive retention failed");
            }
        }
    }
}

/// The master's part: find where to resume (once per term), then upload a chunk when enough
/// is waiting or the oldest waiting record is `archive-timeout` old.
#[allow(clippy::too_many_arguments)]
async fn archive_wal(
    archive: &Archive,
    status: &ArchiveStatus,
    o: &Observed,
    writer: &LogWriter,
    limit: u64,
    cursor: &mut Option<SegmentCursor>,
    resumed_for: &mut Option<(u64, Option<u64>)>,
    pending: &mut Option<Pending>,
) -> Result<(), ArchiveError> {
    if *resumed_for != Some((o.term, o.fork)) {
        *pending = None;
        *cursor = None;
        let written = writer.written.load(Ordering::Acquire);
        let start = resume(archive, status, o, limit, written).await?;
        status.archived.store(start, Ordering::Release);
        status.known.store(true, Ordering::Release);
        *resumed_for = Some((o.term, o.fork));
    }
    if pending.is_none() {
        let archived = status.archived.load(Ordering::Acquire);
        if limit <= archived {
            status.oldest_waiting_ms.store(0, Ordering::Release);
            return Ok(());
        }
        let oldest = writer.time_after(archived).unwrap_or_else(now_ms);
        status.oldest_waiting_ms.store(oldest, Ordering::Release);
        let full = limit - archived >= o.chunk_bytes as u64;
        if !full && now_ms() - oldest < o.timeout_ms {
            return Ok(());
        }
        let Some((records, end)) =
            persistence::read_records(&o.dir, cursor, archived, limit, o.chunk_bytes)?
        else {
            // The local log no longer holds where the archive ends (a node that was a replica
            // too long, or retention without archiving): continue from what it holds; the
            // archive has a gap a restore will report.
            let oldest_local = persistence::oldest_offset(&o.dir).unwrap_or(limit);
            let gap = format!("the archive ends at offset {archived} but this node's log starts at {oldest_local}: take a base backup");
            warn!("{gap}");
            *status.gap.lock() = Some(gap);
            status.archived.store(oldest_local, Ordering::Release);
            *cursor = None;
            return Ok(());
        };
        if end == archived {
            return Ok(());
        }
        let header = ChunkHeader {
            start: archived,
            end,
            term: o.term,
            times: writer.take_times(archived, end),
        };
        let data = layout::encode_chunk(&header, &records);
        let name = WalName {
            start: archived,
            end,
            term: o.term,
            crc: record::crc32c(&[&data]),
        };
        *pending = Some(Pending { name, data });
    }
    let Some(p) = pending.as_ref() else {
        return Ok(());
    };
    archive.put(&p.name.path(), p.data.clone()).await?;
    status.archived.store(p.name.end, Ordering::Release);
    status.chunks.fetch_add(1, Ordering::Relaxed);
    status
        .bytes
        .fetch_add(p.data.len() as u64, Ordering::Relaxed);
    status.last_upload_ms.store(now_ms(), Ordering::Relaxed);
    status.oldest_waiting_ms.store(0, Ordering::Release);
    *pending = None;
    Ok(())
}

/// Where this master continues the archive: the end of the part of the timeline it shares,
/// or, for an empty archive, the oldest offset its log holds.
async fn resume(
    archive: &Archive,
    status: &ArchiveStatus,
    o: &Observed,
    limit: u64,
    written: u64,
) -> Result<u64, ArchiveError> {
    let objects = archive.list_wal().await?;
    let oldest_local = persistence::oldest_offset(&o.dir).unwrap_or(limit);
    let first = objects.iter().map(|o| o.name.start).min();
    let chain = first
        .map(|f| layout::resolve_timeline(&objects, f))
        .unwrap_or_default();
    let start = match layout::resume_point(&chain, o.term, o.fork) {
        None => oldest_local,
        Some(p) if p > written => {
            // Chunks we share reach beyond our own log: this is not our archive (another
            // pair's, or a restored copy pointed at its source). Refuse rather than fork it.
            return Err(ArchiveError::Target(format!(
                "the archive holds offsets up to {p} in term {} but this node's log ends at {written}: is archive-url another pair's archive?",
                o.term
            )));
        }
        Some(p) if p < oldest_local => {
            let gap = format!("the archive ends at offset {p} but this node's log starts at {oldest_local}: take a base backup");
            warn!("{gap}");
            *status.gap.lock() = Some(gap);
            oldest_local
        }
        Some(p) => p,
    };
    info!(
        offset = start,
        term = o.term,
        chunks = chain.len(),
        "archiving resumes"
    );
    Ok(start)
}

/// A replica: learn where the archive ends, so retention keeps the segments after it and the
/// time index forgets what is archived.
async fn follow_archive_end(
    archive: &Archive,
    status: &ArchiveStatus,
    writer: &LogWriter,
) -> Result<(), ArchiveError> {
    let objects = archive.list_wal().await?;
    let end = objects
        .iter()
        .map(|o| o.name.start)
        .min()
        .map(|f| layout::resolve_timeline(&objects, f))
        .and_then(|c| c.last().map(|o| o.name.end))
        .unwrap_or(0);
    status.archived.store(end, Ordering::Release);
    status.known.store(true, Ordering::Release);
    writer.forget_times(end);
    Ok(())
}

/// Start uploading the backups whose snapshot has completed since they were asked for.
fn start_backups(
    archive: &Archive,
    status: &Arc<ArchiveStatus>,
    o: &Observed,
    uploads: &mut tokio::task::JoinSet<bool>,
) {
    let Some((offset, began, done, end_offset)) = o.snapshot else {
        return;
    };
    let mut backups = status.backups.lock();
    for (id, b) in backups.iter_mut() {
        if b.phase != BackupPhase::Snapshotting || o.snapshots_done <= b.after_snapshot {
            continue;
        }
        b.phase = BackupPhase::Uploading;
        let manifest = BackupManifest {
            id: id.clone(),
            start_offset: offset,
            end_offset,
            term: o.term,
            start_time_ms: began,
            end_time_ms: done,
            size: 0,
            crc32c: String::new(),
        };
        let path = persistence::snapshot_path(&o.dir, offset);
        // Open now: a newer snapshot deletes this file, and an open file outlives that.
        let file = std::fs::File::open(&path);
        let (archive, status, id) = (archive.clone(), status.clone(), id.clone());
        uploads.spawn(async move {
            let r = match file {
                Ok(f) => upload_backup(&archive, manifest, f, &path).await,
                Err(e) => Err(ArchiveError::Io {
                    path: path.display().to_string(),
                    source: e,
                }),
            };
            let mut backups = status.backups.lock();
            let Some(b) = backups.get_mut(&id) else {
                return false;
            };
            match r {
                Ok(m) => {
                    info!(
                        id,
                        offset = m.start_offset,
                        size = m.size,
                        "base backup uploaded"
                    );
                    b.phase = BackupPhase::Completed;
                    b.manifest = Some(m);
                    true
                }
                Err(e) => {
                    warn!(id, error = %e, "base backup failed");
                    b.phase = BackupPhase::Failed;
                    b.error = Some(e.to_string());
                    false
                }
            }
        });
    }
}

/// Upload a snapshot file in parts, checksumming it as it goes, then its manifest (last: a
/// backup with a manifest is complete).
async fn upload_backup(
    archive: &Archive,
    mut manifest: BackupManifest,
    mut file: std::fs::File,
    path: &Path,
) -> Result<BackupManifest, ArchiveError> {
    use object_store::ObjectStoreExt;
    use std::io::Read;
    let object = manifest.snapshot_path();
    let upload = archive
        .store
        .put_multipart(&object_store::path::Path::from(object.as_str()))
        .await
        .map_err(|e| ArchiveError::Store(e.to_string()))?;
    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut crc = 0u32;
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| ArchiveError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        size += n as u64;
        w.wait_for_capacity(2)
            .await
            .map_err(|e| ArchiveError::Store(e.to_string()))?;
        w.write(&buf[..n]);
    }
    w.finish()
        .await
        .map_err(|e| ArchiveError::Store(e.to_string()))?;
    manifest.size = size;
    manifest.crc32c = format!("{crc:08x}");
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    archive
        .put(&layout::backup_manifest_path(&manifest.id), json)
        .await?;
    Ok(manifest)
}

/// Delete the backups and chunks no restore within the retention window needs.
pub async fn apply_retention(archive: &Archive, window_ms: i64) -> Result<usize, ArchiveError> {
    let backups = archive.list_backups().await?;
    let wal = archive.list_wal().await?;
    let (del_backups, del_wal) = layout::retention_plan(&backups, &wal, now_ms(), window_ms);
    let n = del_backups.len() + del_wal.len();
    // The manifest first: a backup without one is not offered for restores any more.
    for id in &del_backups {
        archive.delete(&layout::backup_manifest_path(id)).await?;
        archive.delete(&layout::backup_snapshot_path(id)).await?;
    }
    for path in &del_wal {
        archive.delete(path).await?;
    }
    if n > 0 {
        info!(
            backups = del_backups.len(),
            chunks = del_wal.len(),
            "archive retention deleted what the window no longer needs"
        );
    }
    Ok(n)
}
