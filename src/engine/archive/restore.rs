//! Restore: build a data directory from an archive (a base backup, then the WAL chunks of the
//! timeline up to a target offset or time), verifying every object's checksum; the engine
//! then starts from the directory as from its own. Also lists an archive's backups. Does I/O:
//! object storage, files under the target directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::layout::{self, BackupManifest, Target};
use super::{Archive, ArchiveError};
use crate::engine::persistence::{self, record, snapshot};

/// Segment files a restore writes grow to about this size (as the engine's own do).
const SEGMENT_BYTES: usize = 64 << 20;

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup: String,
    pub backup_offset: u64,
    /// The stream offset the restored directory ends at.
    pub offset: u64,
    /// The time of the last record restored (ms since the epoch; the backup's start when no
    /// record was replayed).
    pub time_ms: i64,
    pub chunks: usize,
    pub bytes: u64,
    /// The target was reached (for `Latest`: the archive's end).
    pub reached: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Restore `archive` into `dir` (which must hold no data: no segments, no snapshots):
/// the backup named `backup_id`, or the newest one before `target`, then the timeline's WAL up
/// to `target`. A corrupt or missing object stops the restore with an error naming it.
pub async fn restore(
    archive: &Archive,
    backup_id: Option<&str>,
    target: Target,
    dir: &Path,
) -> Result<RestoreReport, ArchiveError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if !persistence::list_segments(dir).is_empty() || !persistence::list_snapshots(dir).is_empty() {
        return Err(ArchiveError::Target(format!(
            "{} already holds data: restore into an empty directory",
            dir.display()
        )));
    }
    let backups = archive.list_backups().await?;
    let backup = layout::pick_backup(&backups, backup_id, target)?.clone();
    restore_snapshot(archive, &backup, dir).await?;
    let objects = archive.list_wal().await?;
    let chain = layout::resolve_timeline(&objects, backup.start_offset);
    let mut writer = SegmentWriter::new(dir, backup.start_offset);
    let mut report = RestoreReport {
        backup: backup.id.clone(),
        backup_offset: backup.start_offset,
        offset: backup.start_offset,
        time_ms: backup.start_time_ms,
        chunks: 0,
        bytes: 0,
        reached: false,
    };
    let mut pos = backup.start_offset;
    let mut term = 0;
    for obj in &chain {
        let path = obj.name.path();
        let data = archive.get(&path).await?;
        let chunk = layout::decode_chunk(&obj.name, &data)?;
        let (keep, reached) = layout::cut(&chunk, target);
        for r in &chunk.positions {
            let end = r.offset + r.len as u64;
            if end <= pos {
                continue; // before the backup (the first chunk starts before it)
            }
            if end > keep {
                break;
            }
            writer.write(r.offset, &chunk.records[r.file_pos..r.end_pos()])?;
            pos = end;
        }
        if let Some((_, ms)) = chunk.header.times.iter().rev().find(|(e, _)| *e <= pos) {
            report.time_ms = report.time_ms.max(*ms);
        }
        report.chunks += 1;
        report.bytes += data.len() as u64;
        term = obj.name.term;
        if reached {
            report.reached = true;
            break;
        }
    }
    // The chain ended: an end, or a gap (a chunk further on that nothing leads to)?
    if !report.reached {
        if let Some(next) = layout::next_after_gap(&objects, pos, term) {
            return Err(ArchiveError::Missing {
                object: format!("wal chunk starting at offset {pos}"),
                reason: format!(
                    "the timeline ends at {pos} but {} follows: the chunks in between are gone",
                    next.name.path()
                ),
            });
        }
        match target {
            Target::Offset(o) if o > pos => {
                return Err(ArchiveError::Target(format!(
                    "target offset {o} is beyond the archive's end at {pos}"
                )))
            }
            Target::Offset(_) => report.reached = true,
            Target::Latest => report.reached = true,
            Target::Time(_) => {}
        }
    }
    writer.finish()?;
    report.offset = pos;
    Ok(report)
}

/// Make a restored directory continue the archive it was restored from (a rollback of a
/// running pair onto its own archive), rather than be a copy that must keep off it.
///
/// Why: when a node becomes master, its archiver resumes at the end of the part of the
/// archive's timeline it shares (`layout::resume_point`): chunks of older terms count as shared
/// up to the node's fork offset (`second_offset`, where its history left the previous
/// master's). A restored directory starts with no replication identity, so no fork, and every
/// older-term chunk counts as shared: after a rollback, the chunks of the discarded writes
/// reach beyond the restored log, and the archiver refuses ("is archive-url another pair's
/// archive?"), as it must for a clone pointed at its source. A rollback means to supersede
/// those chunks, so its restore records the fork where the restored history ends: a new
/// replication id (no replica can continue the old history from it by partial resync: the
/// operator full-syncs the other pod), a second id no one holds, `second_offset` = `offset`,
/// and a clean end at `offset`, which the engine takes as is when it loads the directory. The
/// new master (elected above every term) then archives again from the start of the first
/// chunk past `offset`, in its higher term, which a restore's timeline prefers.
pub fn continue_archive_from(dir: &Path, offset: u64) -> Result<(), ArchiveError> {
    use crate::engine::ids::random_hex;
    persistence::NodeState {
        replid: random_hex(40),
        replid2: random_hex(40),
        second_offset: offset as i64,
        term: 0,
        master: None,
        clean_offset: Some(offset),
    }
    .save(dir)?;
    Ok(())
}

/// Fetch and verify the backup's snapshot, and write it where the engine looks for it.
async fn restore_snapshot(
    archive: &Archive,
    backup: &BackupManifest,
    dir: &Path,
) -> Result<(), ArchiveError> {
    let object = backup.snapshot_path();
    let data = archive.get(&object).await?;
    let crc = format!("{:08x}", record::crc32c(&[&data]));
    if data.len() as u64 != backup.size || crc != backup.crc32c {
        return Err(ArchiveError::Corrupt {
            object,
            reason: format!(
                "{} bytes with CRC-32C {crc}, the manifest says {} bytes with {}",
                data.len(),
                backup.size,
                backup.crc32c
            ),
        });
    }
    // The snapshot's own header must name the manifest's offset.
    let (recs, _) = record::scan(&data, false, None);
    let header = recs
        .first()
        .and_then(|r| snapshot::parse_header(r.payload(&data)));
    if header.map(|h| h.0) != Some(backup.start_offset) {
        return Err(ArchiveError::Corrupt {
            object,
            reason: format!(
                "its header does not name offset {} as the manifest does",
                backup.start_offset
            ),
        });
    }
    let path = persistence::snapshot_path(dir, backup.start_offset);
    persistence::write_atomic(&path, &data)?;
    Ok(())
}

/// Writes restored records into segment files named as the engine names its own.
struct SegmentWriter {
    dir: PathBuf,
    file: Option<(std::fs::File, PathBuf, usize)>,
    next_first: u64,
}

impl SegmentWriter {
    fn new(dir: &Path, first: u64) -> SegmentWriter {
        SegmentWriter {
            dir: dir.to_path_buf(),
            file: None,
            next_first: first,
        }
    }

    fn write(&mut self, offset: u64, rec: &[u8]) -> Result<(), ArchiveError> {
        if self.file.as_ref().is_some_and(|f| f.2 >= SEGMENT_BYTES) {
            self.close()?;
            self.next_first = offset;
        }
        if self.file.is_none() {
            let path = persistence::segment_path(&self.dir, self.next_first.max(offset));
            let f = std::fs::File::create(&path).map_err(io(&path))?;
            self.file = Some((f, path, 0));
        }
        if let Some((f, path, size)) = self.file.as_mut() {
            f.write_all(rec).map_err(io(path))?;
            *size += rec.len();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ArchiveError> {
        if let Some((f, path, _)) = self.file.take() {
            f.sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), ArchiveError> {
        self.close()?;
        persistence::sync_dir(&self.dir);
        Ok(())
    }
}

/// One line per complete backup, for `redispair-engine backups --from URL`.
pub async fn list(archive: &Archive) -> Result<Vec<BackupManifest>, ArchiveError> {
    archive.list_backups().await
}
