//! Persistence: the write log in checksummed segment files, snapshots, the node's persisted
//! replication identity, start-up recovery and `check-log`. Does I/O: files under `dir`.
//!
//! Layout of `dir`:
//! - `seg-<first offset>.log`: log segments; records of the replication stream (see
//!   [`record`]), named by the stream offset of their first byte so a replica can be served from
//!   any retained position;
//! - `snap-<offset>.rdp`: a snapshot of the whole dataset at stream offset `offset`, as records
//!   whose payloads are commands recreating it; written to a temporary name and renamed when
//!   complete, so a snapshot file that exists is whole;
//! - `node.state`: replication id(s), term, role (see [`NodeState`]).

pub mod check;
pub mod gate;
pub mod record;
pub mod recovery;
pub mod snapshot;
pub mod writeback;
pub mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt log: {file} at byte {pos}: {reason} (run `redispair-engine check-log {dir} --truncate` to cut the log there, losing what follows)")]
    Corrupt {
        file: String,
        pos: usize,
        reason: String,
        dir: String,
    },
    #[error("log gap: {0}")]
    Gap(String),
    #[error("cannot replay {file}: {reason}")]
    Replay { file: String, reason: String },
    #[error("{file}: {source}")]
    Rdb {
        file: String,
        source: crate::engine::storage::rdbfile::RdbFileError,
    },
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn segment_path(dir: &Path, first_offset: u64) -> PathBuf {
    dir.join(format!("seg-{first_offset:020}.log"))
}

pub fn snapshot_path(dir: &Path, offset: u64) -> PathBuf {
    dir.join(format!("snap-{offset:020}.rdp"))
}

fn list_numbered(dir: &Path, prefix: &str, suffix: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    out
}

/// Log segments, ordered by their first offset.
pub fn list_segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    list_numbered(dir, "seg-", ".log")
}

/// Complete snapshots, ordered by offset.
pub fn list_snapshots(dir: &Path) -> Vec<(u64, PathBuf)> {
    list_numbered(dir, "snap-", ".rdp")
}

/// Write a file atomically: temporary name, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), PersistError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Read `[from, from + max)` of the logical stream from the segments (whole records only; what
/// the writer has not finished writing is not returned). Used to serve replicas positions that
/// are no longer in memory. Returns None if `from` is before the first retained segment.
pub fn read_stream(dir: &Path, from: u64, max: usize) -> Option<Vec<u8>> {
    let segs = list_segments(dir);
    let first = segs.iter().rposition(|(f, _)| *f <= from)?;
    let mut out = Vec::new();
    for (first_off, path) in &segs[first..] {
        let data = std::fs::read(path).ok()?;
        let (recs, _) = record::scan(&data, true, Some(*first_off));
        for r in recs {
            let end = r.offset + r.len as u64;
            if end <= from {
                continue;
            }
            let payload = r.payload(&data);
            let skip = from.saturating_sub(r.offset) as usize;
            out.extend_from_slice(&payload[skip.min(payload.len())..]);
            if out.len() >= max {
                return Some(out);
            }
        }
    }
    Some(out)
}

/// Where the archiver's last read of the segments ended, so the next one continues there
/// without scanning the segment from its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCursor {
    seg_first: u64,
    file_pos: u64,
    offset: u64,
}

/// Whole records of the stream from `from` (a record boundary) up to `limit`, about `max`
/// bytes of them (at least one record when there is one), exactly as they are in the segment
/// files: `(records, offset after them)`. Ok(None): `from` is not in the retained segments.
/// `cursor` remembers where the read ended (the archiver reads the log in order).
pub fn read_records(
    dir: &Path,
    cursor: &mut Option<SegmentCursor>,
    from: u64,
    limit: u64,
    max: usize,
) -> Result<Option<(Vec<u8>, u64)>, PersistError> {
    use std::io::{Read, Seek, SeekFrom};
    if limit <= from {
        return Ok(Some((Vec::new(), from)));
    }
    let segs = list_segments(dir);
    let valid = cursor
        .as_ref()
        .is_some_and(|c| c.offset == from && segs.iter().any(|(f, _)| *f == c.seg_first));
    if !valid {
        *cursor = locate(&segs, from)?;
    }
    let Some(c) = cursor.as_mut() else {
        return Ok(None);
    };
    // At most one hop: the end of a segment is the start of the next.
    for _ in 0..2 {
        let path = segment_path(dir, c.seg_first);
        let mut f = std::fs::File::open(&path).map_err(io_err(&path))?;
        f.seek(SeekFrom::Start(c.file_pos)).map_err(io_err(&path))?;
        let mut head = [0u8; record::HEADER_LEN];
        let mut got = 0;
        while got < head.len() {
            match f.read(&mut head[got..]).map_err(io_err(&path))? {
                0 => break,
                n => got += n,
            }
        }
        if got < head.len() {
            // The end of this segment (what the writer has written of it): the next segment
            // continues at this offset, if there is one yet.
            if let Some((next, _)) = segs.iter().find(|(s, _)| *s == c.offset) {
                if *next != c.seg_first {
                    c.seg_first = *next;
                    c.file_pos = 0;
                    continue;
                }
            }
            return Ok(Some((Vec::new(), from)));
        }
        let first_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let want = max.max(record::HEADER_LEN + first_len);
        let mut buf = head.to_vec();
        f.take((want - record::HEADER_LEN) as u64)
            .read_to_end(&mut buf)
            .map_err(io_err(&path))?;
        let (recs, _) = record::scan(&buf, true, Some(from));
        let mut end = from;
        let mut used = 0;
        for r in &recs {
            let e = r.offset + r.len as u64;
            if e > limit {
                break;
            }
            end = e;
            used = r.end_pos();
        }
        buf.truncate(used);
        c.file_pos += used as u64;
        c.offset = end;
        return Ok(Some((buf, end)));
    }
    Ok(Some((Vec::new(), from)))
}

/// Find the record that starts at `from` in the segments by hopping over record headers.
fn locate(segs: &[(u64, PathBuf)], from: u64) -> Result<Option<SegmentCursor>, PersistError> {
    use std::io::{BufReader, Read};
    let Some(i) = segs.iter().rposition(|(f, _)| *f <= from) else {
        return Ok(None);
    };
    let (first, path) = &segs[i];
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let (mut offset, mut pos) = (*first, 0u64);
    let mut head = [0u8; record::HEADER_LEN];
    while offset < from {
        if r.read_exact(&mut head).is_err() {
            // `from` is past what this segment holds.
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let at = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        if at != offset {
            return Err(PersistError::Gap(format!(
                "{}: record at byte {pos} has offset {at}, expected {offset}",
                path.display()
            )));
        }
        r.seek_relative(len as i64).map_err(io_err(path))?;
        offset += len;
        pos += record::HEADER_LEN as u64 + len;
    }
    if offset != from {
        return Err(PersistError::Gap(format!(
            "{}: offset {from} is inside a record",
            path.display()
        )));
    }
    Ok(Some(SegmentCursor {
        seg_first: *first,
        file_pos: pos,
        offset,
    }))
}

/// The first offset the retained segments hold.
pub fn oldest_offset(dir: &Path) -> Option<u64> {
    list_segments(dir).first().map(|(f, _)| *f)
}

/// Retention: delete segments not needed to recover from the newest snapshot (at
/// `snapshot_offset`) and older than both retention limits (`size` bytes behind the current
/// offset and `ttl_secs` since their last write), so a replica can resume from any position
/// within either limit.
///
/// `archived`: with archiving on, segments holding anything after this offset are kept too,
/// until the archiver has uploaded them.
pub fn retain(
    dir: &Path,
    snapshot_offset: u64,
    current: u64,
    size: u64,
    ttl_secs: u64,
    archived: Option<u64>,
) -> usize {
    let segs = list_segments(dir);
    let by_size = current
        .saturating_sub(size)
        .min(archived.unwrap_or(u64::MAX));
    let mut dropped = 0;
    for w in segs.windows(2) {
        let (end, path) = (w[1].0, &w[0].1);
        let old = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= ttl_secs);
        if end <= snapshot_offset && end <= by_size && old {
            if std::fs::remove_file(path).is_ok() {
                dropped += 1;
            }
        } else {
            break;
        }
    }
    dropped
}

/// Delete segments that end at or before `keep_from` (never the newest one).
pub fn drop_segments_before(dir: &Path, keep_from: u64) -> usize {
    let segs = list_segments(dir);
    let mut dropped = 0;
    for w in segs.windows(2) {
        let (next_first, _) = &w[1];
        if *next_first <= keep_from {
            if std::fs::remove_file(&w[0].1).is_ok() {
                dropped += 1;
            }
        } else {
            break;
        }
    }
    dropped
}

/// The node's replication identity, persisted so a restarted node resumes where it was:
/// a replica resumes by partial resync, and a term never goes backwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    pub replid: String,
    pub replid2: String,
    /// Last offset shared with the history named by `replid2` (-1: none).
    pub second_offset: i64,
    pub term: u64,
    /// Set when the node is a replica: the master it follows.
    pub master: Option<(String, u16)>,
    /// Written at a clean shutdown: the stream offset the log ends at.
    pub clean_offset: Option<u64>,
}

const NODE_STATE: &str = "node.state";

impl NodeState {
    pub fn load(dir: &Path) -> Option<NodeState> {
        let text = std::fs::read_to_string(dir.join(NODE_STATE)).ok()?;
        let mut s = NodeState {
            second_offset: -1,
            ..Default::default()
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once(' ') else {
                continue;
            };
            match k {
                "replid" => s.replid = v.to_string(),
                "replid2" => s.replid2 = v.to_string(),
                "second_offset" => s.second_offset = v.parse().unwrap_or(-1),
                "term" => s.term = v.parse().unwrap_or(0),
                "clean_offset" => s.clean_offset = v.parse().ok(),
                "master" => {
                    if let Some((h, p)) = v.rsplit_once(' ') {
                        if let Ok(p) = p.parse() {
                            s.master = Some((h.to_string(), p));
                        }
                    }
                }
                _ => {}
            }
        }
        (!s.replid.is_empty()).then_some(s)
    }

    pub fn save(&self, dir: &Path) -> Result<(), PersistError> {
        let mut text = format!(
            "replid {}\nreplid2 {}\nsecond_offset {}\nterm {}\n",
            self.replid, self.replid2, self.second_offset, self.term
        );
        if let Some((h, p)) = &self.master {
            text.push_str(&format!("master {h} {p}\n"));
        }
        if let Some(o) = self.clean_offset {
            text.push_str(&format!("clean_offset {o}\n"));
        }
        write_atomic(&dir.join(NODE_STATE), text.as_bytes())
    }
}

/// A fresh directory for one unit test of this module's file handling (the caller removes it).
#[cfg(test)]
pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments `seg-0` (records at 0, 3, 7) and `seg-9` (9, 14): read_records returns whole
    /// records, never past the limit, continues with its cursor across the segment boundary,
    /// and finds a position again without one.
    #[test]
    fn read_records_walks_the_segments_in_order() {
        let dir = scratch_dir("readrec");
        let mut a = Vec::new();
        record::encode(0, b"abc", &mut a);
        record::encode(3, b"defg", &mut a);
        record::encode(7, b"hi", &mut a);
        std::fs::write(segment_path(&dir, 0), &a).unwrap();
        let mut b = Vec::new();
        record::encode(9, b"jklmn", &mut b);
        record::encode(14, b"o", &mut b);
        std::fs::write(segment_path(&dir, 9), &b).unwrap();
        let mut cur = None;
        // max of one byte still returns one whole record.
        let (recs, end) = read_records(&dir, &mut cur, 0, 100, 1).unwrap().unwrap();
        assert_eq!((recs.len(), end), (HEADER + 3, 3));
        // The limit cuts at a record boundary: 3..7 fits under 8, 7..9 does not.
        let (recs, end) = read_records(&dir, &mut cur, 3, 8, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((recs.len(), end), (HEADER + 4, 7));
        let (_, end) = read_records(&dir, &mut cur, 7, 100, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(end, 9);
        // The end of seg-0: the cursor hops to seg-9.
        let (recs, end) = read_records(&dir, &mut cur, 9, 100, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(end, 15);
        assert_eq!(&recs[..], &b[..]);
        // Without a cursor, from the middle.
        let mut fresh = None;
        let (_, end) = read_records(&dir, &mut fresh, 14, 100, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(end, 15);
        // Inside a record: an error; nothing yet at the end; before the segments: None.
        assert!(read_records(&dir, &mut None, 4, 100, 1 << 20).is_err());
        let (recs, end) = read_records(&dir, &mut None, 15, 100, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((recs.len(), end), (0, 15));
        std::fs::remove_file(segment_path(&dir, 0)).unwrap();
        assert!(read_records(&dir, &mut None, 3, 100, 1 << 20)
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const HEADER: usize = record::HEADER_LEN;

    #[test]
    fn node_state_round_trip() {
        let dir = scratch_dir("ns");
        let s = NodeState {
            replid: "a".repeat(40),
            replid2: "b".repeat(40),
            second_offset: 77,
            term: 3,
            master: Some(("127.0.0.1".into(), 7000)),
            clean_offset: Some(9),
        };
        s.save(&dir).unwrap();
        assert_eq!(NodeState::load(&dir), Some(s));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Persistence status, for INFO persistence and the snapshot commands.
#[derive(Debug, Clone, Default)]
pub struct PersistInfo {
    pub enabled: bool,
    pub dir: PathBuf,
    pub loading: bool,
    pub snapshot_in_progress: bool,
    /// The function libraries' code as of the snapshot in progress's offset, taken by `begin`
    /// and written by its first step (libraries live outside the databases the steps walk).
    pub snapshot_libraries: Vec<bytes::Bytes>,
    pub snapshot_started_ms: i64,
    /// The newest complete snapshot: when it began and ended, and the stream offset at its
    /// end (a base backup's manifest records them).
    pub last_snapshot_began_ms: i64,
    pub last_snapshot_done_ms: i64,
    pub last_snapshot_end_offset: u64,
    pub last_snapshot_ok: bool,
    pub last_snapshot_secs: i64,
    pub last_snapshot_offset: Option<u64>,
    pub snapshots_done: u64,
    pub keys_processed: u64,
    pub keys_total: u64,
    /// Epoch of the newest snapshot (entries carry the epoch they were last written in).
    pub epoch: u32,
    /// Epoch of the snapshot being captured; differs from `epoch` once it was cancelled.
    pub capture_epoch: u32,
    /// `dirty_since_save` when the running snapshot began.
    pub dirty_at_snapshot: u64,
    /// BGSAVE / BGREWRITEAOF asked for a snapshot; the persistence task starts it.
    pub snapshot_requested: bool,
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    pub recovered: Option<recovery::Recovered>,
    /// The exclusive lock on the data directory, held for the process's life (see
    /// [`try_lock_dir`]).
    pub dir_lock: Option<std::sync::Arc<std::fs::File>>,
    /// With archiving on: the offset the archive holds the stream up to (0 until known).
    /// Retention keeps the segments after it (see [`retain`]).
    pub archive_pin: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// The data directory's lock file.
pub const DIR_LOCK: &str = "redispair.lock";

/// Take the exclusive lock on `dir` (a `flock` on `dir/redispair.lock`, created if needed).
/// Ok(None): another process holds it.
///
/// Two engines on one data directory would interleave their writes to the same log segments.
/// On Kubernetes that happens without this lock: a force-deleted pod's engine runs on until the
/// kubelet stops it (its preStop hook can hold it for 20 s), while the replacement pod, same
/// name and same claim (a local volume keeps it on the same node), already starts. The newcomer
/// waits here until the old process is gone; the kernel drops the lock when it exits, however
/// it exits.
pub fn try_lock_dir(dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(DIR_LOCK))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
