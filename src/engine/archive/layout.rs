//! The archive's layout in object storage: object names, the WAL chunk format with its
//! checksum and time index, base backup manifests, how one timeline is picked out of the
//! objects of several terms, where a restore stops for a target, and what retention deletes.
//! Pure: works on names, bytes and lists (docs/backup.md).

use serde::{Deserialize, Serialize};

use super::ArchiveError;
use crate::engine::persistence::record;

/// Prefix of the WAL chunks.
pub const WAL_DIR: &str = "wal";
/// Prefix of the base backups (`base/<id>/snapshot.rdp`, `base/<id>/manifest.json`).
pub const BASE_DIR: &str = "base";
/// First line of a WAL chunk.
const CHUNK_MAGIC: &[u8] = b"RPWAL 1\n";

/// What a WAL chunk's name says: the stream range `[start, end)` it holds, the term of the
/// master that archived it, and the CRC-32C of the whole object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalName {
    pub start: u64,
    pub end: u64,
    pub term: u64,
    pub crc: u32,
}

impl WalName {
    /// `wal/<start>-<end>-<term>-<crc>.rpwal`, numbers zero-padded so a listing in name order
    /// is in stream order.
    pub fn path(&self) -> String {
        format!(
            "{WAL_DIR}/{:020}-{:020}-{:010}-{:08x}.rpwal",
            self.start, self.end, self.term, self.crc
        )
    }

    /// The name of `path` (with or without the `wal/` prefix); None for anything else.
    pub fn parse(path: &str) -> Option<WalName> {
        let name = path.rsplit('/').next()?.strip_suffix(".rpwal")?;
        let mut it = name.split('-');
        let start = it.next()?.parse().ok()?;
        let end = it.next()?.parse().ok()?;
        let term = it.next()?.parse().ok()?;
        let crc = u32::from_str_radix(it.next()?, 16).ok()?;
        if it.next().is_some() || end <= start {
            return None;
        }
        Some(WalName {
            start,
            end,
            term,
            crc,
        })
    }
}

/// A WAL chunk found in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalObject {
    pub name: WalName,
    /// Upload time (ms since the epoch) as the store reports it: breaks ties between two
    /// chunks of the same term starting at the same offset (the later upload wins).
    pub uploaded_ms: i64,
}

/// The JSON line after the magic in a WAL chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    pub start: u64,
    pub end: u64,
    pub term: u64,
    /// Time index: `(end offset, ms since the epoch)`, ascending offsets, the last one ending at
    /// `end`. The records in `[previous end, end)` were appended to the master's log during
    /// that millisecond (or, for records whose time is unknown, before it).
    pub times: Vec<(u64, i64)>,
}

/// Encode a chunk: magic, header line, then the records as they are in the segment files.
pub fn encode_chunk(header: &ChunkHeader, records: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(CHUNK_MAGIC.len() + json.len() + 1 + records.len());
    out.extend_from_slice(CHUNK_MAGIC);
    out.extend_from_slice(&json);
    out.push(b'\n');
    out.extend_from_slice(records);
    out
}

/// A decoded, verified chunk.
#[derive(Debug)]
pub struct Chunk {
    pub header: ChunkHeader,
    /// The records (every one checked: CRC, offsets contiguous from `start` to `end`).
    pub records: Vec<u8>,
    pub positions: Vec<record::RecordPos>,
}

/// Decode and verify the chunk stored under `name`: the object's CRC-32C must equal the one in
/// its name, its header must agree with its name, and its records must cover exactly
/// `[start, end)`. Every failure names the object.
pub fn decode_chunk(name: &WalName, data: &[u8]) -> Result<Chunk, ArchiveError> {
    let corrupt = |reason: String| ArchiveError::Corrupt {
        object: name.path(),
        reason,
    };
    let crc = record::crc32c(&[data]);
    if crc != name.crc {
        return Err(corrupt(format!(
            "checksum mismatch: CRC-32C {crc:08x}, the name says {:08x}",
            name.crc
        )));
    }
    let rest = data
        .strip_prefix(CHUNK_MAGIC)
        .ok_or_else(|| corrupt("not a WAL chunk (bad magic)".into()))?;
    let nl = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let header: ChunkHeader =
        serde_json::from_slice(&rest[..nl]).map_err(|e| corrupt(format!("bad header: {e}")))?;
    if header.start != name.start || header.end != name.end || header.term != name.term {
        return Err(corrupt("header does not match the object name".into()));
    }
    let records = rest[nl + 1..].to_vec();
    let (positions, end) = record::scan(&records, true, Some(header.start));
    if end != record::ScanEnd::Clean {
        return Err(corrupt(format!("damaged records: {end:?}")));
    }
    let reached = positions
        .last()
        .map(|r| r.offset + r.len as u64)
        .unwrap_or(header.start);
    if reached != header.end {
        return Err(corrupt(format!(
            "records end at offset {reached}, the header says {}",
            header.end
        )));
    }
    Ok(Chunk {
        header,
        records,
        positions,
    })
}

/// The manifest of a base backup, `base/<id>/manifest.json`, written after its snapshot: a
/// backup whose manifest exists is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub id: String,
    /// Stream offset of the snapshot: the dataset is exactly the stream up to here.
    pub start_offset: u64,
    /// Stream offset when the snapshot was complete (the WAL from `start_offset` on is what a
    /// restore replays after it).
    pub end_offset: u64,
    pub term: u64,
    /// When the snapshot began and ended (ms since the epoch).
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    /// Bytes of `snapshot.rdp`.
    pub size: u64,
    /// CRC-32C of `snapshot.rdp`, hex.
    pub crc32c: String,
}

impl BackupManifest {
    pub fn snapshot_path(&self) -> String {
        backup_snapshot_path(&self.id)
    }
}

pub fn backup_snapshot_path(id: &str) -> String {
    format!("{BASE_DIR}/{id}/snapshot.rdp")
}

pub fn backup_manifest_path(id: &str) -> String {
    format!("{BASE_DIR}/{id}/manifest.json")
}

/// A backup id is part of object names: letters, digits, `.`, `_`, `-`, at most 128.
pub fn valid_backup_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Where a restore stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Everything archived.
    Latest,
    /// The last record boundary at or before this offset.
    Offset(u64),
    /// Every record appended at or before this time (ms since the epoch).
    Time(i64),
}

/// The base backup a restore to `target` starts from: the one named, else the newest that
/// does not go beyond the target.
pub fn pick_backup<'a>(
    backups: &'a [BackupManifest],
    id: Option<&str>,
    target: Target,
) -> Result<&'a BackupManifest, ArchiveError> {
    if let Some(id) = id {
        let b = backups
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(|| ArchiveError::NoBackup(format!("no complete backup named {id}")))?;
        let fits = match target {
            Target::Latest => true,
            Target::Offset(o) => b.start_offset <= o,
            Target::Time(t) => b.start_time_ms <= t,
        };
        if !fits {
            return Err(ArchiveError::NoBackup(format!(
                "backup {id} (offset {}, started at {} ms) is after the target {target:?}",
                b.start_offset, b.start_time_ms
            )));
        }
        return Ok(b);
    }
    backups
        .iter()
        .filter(|b| match target {
            Target::Latest => true,
            Target::Offset(o) => b.start_offset <= o,
            Target::Time(t) => b.start_time_ms <= t,
        })
        .max_by_key(|b| (b.start_offset, b.start_time_ms))
        .ok_or_else(|| {
            ArchiveError::NoBackup(format!(
                "no complete base backup at or before the target {target:?} ({} backups in the archive)",
                backups.len()
            ))
        })
}

/// Pick the one timeline through the archive from stream offset `from`.
///
/// The first chunk is the one holding `from` (start ≤ from < end); each next one starts
/// where the previous ended. Where several chunks qualify (a failover: the new master, in a
/// higher term, archived again from the fork point what the old master had archived beyond
/// it), the highest term wins, then the latest upload; and the term never goes down along the
/// chain, so chunks an old master uploaded after it was replaced are never picked.
pub fn resolve_timeline(objects: &[WalObject], from: u64) -> Vec<WalObject> {
    let best = |cands: &mut dyn Iterator<Item = &WalObject>| {
        cands
            .max_by_key(|o| (o.name.term, o.uploaded_ms, o.name.end))
            .cloned()
    };
    let mut chain = Vec::new();
    let Some(first) = best(
        &mut objects
            .iter()
            .filter(|o| o.name.start <= from && from < o.name.end),
    ) else {
        return chain;
    };
    let mut pos = first.name.end;
    let mut term = first.name.term;
    chain.push(first);
    while let Some(next) = best(
        &mut objects
            .iter()
            .filter(|o| o.name.start == pos && o.name.term >= term),
    ) {
        pos = next.name.end;
        term = next.name.term;
        chain.push(next);
    }
    chain
}

/// The first chunk of the timeline that starts after `pos` (the chain ended at `pos`): when
/// there is one, the archive has a gap there rather than an end.
pub fn next_after_gap(objects: &[WalObject], pos: u64, term: u64) -> Option<&WalObject> {
    objects
        .iter()
        .filter(|o| o.name.start > pos && o.name.term >= term)
        .min_by_key(|o| o.name.start)
}

/// Where a master resumes archiving, given the timeline from the archive's first chunk: the
/// end of the part of it this node shares. Chunks of its own term are its own; a chunk of an
/// older term is shared only if it ends at or before `fork` (the offset at which this node's
/// history left the previous master's: where it was promoted). The first chunk that is neither
/// is archived again from its start, so the new history replaces the old tail.
pub fn resume_point(chain: &[WalObject], own_term: u64, fork: Option<u64>) -> Option<u64> {
    let mut pos = None;
    for o in chain {
        let shared = o.name.term == own_term
            || (o.name.term < own_term && fork.is_some_and(|f| o.name.end <= f))
            || (o.name.term < own_term && fork.is_none());
        if !shared {
            return Some(o.name.start);
        }
        pos = Some(o.name.end);
    }
    pos
}

/// How much of a chunk a restore keeps for `target`: the end offset of the last record to
/// keep (`header.start` for none) and whether the target was reached inside this chunk (the
/// restore stops after it).
pub fn cut(chunk: &Chunk, target: Target) -> (u64, bool) {
    match target {
        Target::Latest => (chunk.header.end, false),
        Target::Offset(o) => {
            if o >= chunk.header.end {
                return (chunk.header.end, o == chunk.header.end);
            }
            let mut keep = chunk.header.start;
            for r in &chunk.positions {
                let end = r.offset + r.len as u64;
                if end > o {
                    break;
                }
                keep = end;
            }
            (keep, true)
        }
        Target::Time(t) => {
            let mut keep = chunk.header.start;
            for (end, ms) in &chunk.header.times {
                if *ms > t {
                    return (keep, true);
                }
                keep = *end;
            }
            (keep.max(chunk.header.start), false)
        }
    }
}

/// What retention deletes: the backups and WAL chunks no restore to a point within the
/// window (`now - window` .. now) needs. Kept: every backup that ended inside the window, the
/// newest one before it (a restore to the window's first moment starts there), and the WAL
/// from the oldest kept backup's offset on. With no backup at all, nothing is deleted.
pub fn retention_plan(
    backups: &[BackupManifest],
    wal: &[WalObject],
    now_ms: i64,
    window_ms: i64,
) -> (Vec<String>, Vec<String>) {
    let horizon = now_ms - window_ms;
    let mut sorted: Vec<&BackupManifest> = backups.iter().collect();
    sorted.sort_by_key(|b| (b.start_offset, b.start_time_ms));
    // The newest backup that began at or before the horizon: the base of the oldest restore.
    let base = sorted
        .iter()
        .rposition(|b| b.start_time_ms <= horizon)
        .unwrap_or(0);
    let Some(oldest_kept) = sorted.get(base) else {
        return (Vec::new(), Vec::new());
    };
    let keep_from = oldest_kept.start_offset;
    let del_backups = sorted[..base].iter().map(|b| b.id.clone()).collect();
    let del_wal = wal
        .iter()
        .filter(|o| o.name.end <= keep_from)
        .map(|o| o.name.path())
        .collect();
    (del_backups, del_wal)
}

/// `7d`, `12h`, `30m`, `45s`, or a number of seconds, as milliseconds; 0 = keep everything.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(start: u64, end: u64, term: u64, up: i64) -> WalObject {
        WalObject {
            name: WalName {
                start,
                end,
                term,
                crc: 0,
            },
            uploaded_ms: up,
        }
    }

    #[test]
    fn names_round_trip_and_sort_in_stream_order() {
        let n = WalName {
            start: 7,
            end: 1234,
            term: 3,
            crc: 0xdead_beef,
        };
        assert_eq!(WalName::parse(&n.path()), Some(n));
        assert_eq!(WalName::parse("wal/garbage.rpwal"), None);
        assert_eq!(
            WalName::parse(
                "wal/00000000000000000009-00000000000000000009-0000000000-00000000.rpwal"
            ),
            None
        );
        let a = wal(9, 100, 0, 0).name.path();
        let b = wal(100, 200, 0, 0).name.path();
        assert!(a < b);
    }

    #[test]
    fn chunk_round_trip_and_every_damage_is_named() {
        let mut records = Vec::new();
        record::encode(10, b"abc", &mut records);
        record::encode(13, b"defg", &mut records);
        let h = ChunkHeader {
            start: 10,
            end: 17,
            term: 2,
            times: vec![(13, 1000), (17, 1005)],
        };
        let data = encode_chunk(&h, &records);
        let name = WalName {
            start: 10,
            end: 17,
            term: 2,
            crc: record::crc32c(&[&data]),
        };
        let c = decode_chunk(&name, &data).unwrap();
        assert_eq!(c.header, h);
        assert_eq!(c.positions.len(), 2);
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x40;
            let e = decode_chunk(&name, &bad).unwrap_err().to_string();
            assert!(e.contains(&name.path()), "{e}");
        }
        // A chunk whose name lies about its range is refused even with the right checksum.
        let lying = WalName { end: 18, ..name };
        assert!(decode_chunk(&lying, &data).is_err());
    }

    #[test]
    fn cut_by_offset_and_time() {
        let mut records = Vec::new();
        record::encode(0, b"aa", &mut records);
        record::encode(2, b"bb", &mut records);
        record::encode(4, b"cc", &mut records);
        let h = ChunkHeader {
            start: 0,
            end: 6,
            term: 0,
            times: vec![(2, 100), (6, 200)],
        };
        let data = encode_chunk(&h, &records);
        let name = WalName {
            start: 0,
            end: 6,
            term: 0,
            crc: record::crc32c(&[&data]),
        };
        let c = decode_chunk(&name, &data).unwrap();
        assert_eq!(cut(&c, Target::Latest), (6, false));
        assert_eq!(cut(&c, Target::Offset(3)), (2, true));
        assert_eq!(cut(&c, Target::Offset(4)), (4, true));
        assert_eq!(cut(&c, Target::Offset(6)), (6, true));
        assert_eq!(cut(&c, Target::Offset(60)), (6, false));
        assert_eq!(cut(&c, Target::Time(99)), (0, true));
        assert_eq!(cut(&c, Target::Time(150)), (2, true));
        assert_eq!(cut(&c, Target::Time(200)), (6, false));
    }

    #[test]
    fn the_timeline_follows_the_higher_term_across_a_failover() {
        // Term 1 archived [0,100) [100,200) [200,300); the new master (term 2) was promoted at
        // 150 and archived again from 100. The old master, not yet fenced, uploaded
        // [300,400) in term 1 later still: never picked.
        let objs = vec![
            wal(0, 100, 1, 1),
            wal(100, 200, 1, 2),
            wal(200, 300, 1, 3),
            wal(100, 180, 2, 4),
            wal(180, 260, 2, 5),
            wal(300, 400, 1, 9),
        ];
        let chain = resolve_timeline(&objs, 0);
        let ranges: Vec<_> = chain.iter().map(|o| (o.name.start, o.name.end)).collect();
        assert_eq!(ranges, vec![(0, 100), (100, 180), (180, 260)]);
        // From inside a chunk.
        assert_eq!(
            resolve_timeline(&objs, 120)[0].name,
            wal(100, 180, 2, 0).name
        );
        // Same term, same start: the later upload wins.
        let objs = vec![wal(0, 10, 0, 1), wal(0, 12, 0, 2)];
        assert_eq!(resolve_timeline(&objs, 0)[0].name.end, 12);
        assert!(resolve_timeline(&[], 0).is_empty());
    }

    #[test]
    fn a_new_master_resumes_at_its_fork_point() {
        let chain = vec![wal(0, 100, 1, 1), wal(100, 200, 1, 2), wal(200, 300, 1, 3)];
        // Promoted at 150: [100, 200) holds a tail it never had; archived again from 100.
        assert_eq!(resume_point(&chain, 2, Some(150)), Some(100));
        // Promoted at 300 (it had everything): continues at the end.
        assert_eq!(resume_point(&chain, 2, Some(300)), Some(300));
        // Its own term: continues.
        assert_eq!(resume_point(&chain, 1, None), Some(300));
        assert_eq!(resume_point(&[], 1, None), None);
    }

    fn backup(id: &str, offset: u64, t: i64) -> BackupManifest {
        BackupManifest {
            id: id.into(),
            start_offset: offset,
            end_offset: offset,
            term: 0,
            start_time_ms: t,
            end_time_ms: t,
            size: 0,
            crc32c: String::new(),
        }
    }

    #[test]
    fn retention_keeps_what_the_window_needs() {
        let backups = vec![
            backup("a", 0, 10),
            backup("b", 100, 20),
            backup("c", 200, 30),
        ];
        let wal_objs = vec![wal(0, 100, 0, 0), wal(100, 200, 0, 0), wal(200, 300, 0, 0)];
        // Window from 25: b is the base of a restore to 25; a and [0,100) go.
        let (b, w) = retention_plan(&backups, &wal_objs, 35, 10);
        assert_eq!(b, vec!["a".to_string()]);
        assert_eq!(w, vec![wal(0, 100, 0, 0).name.path()]);
        // Window covering everything: nothing goes.
        assert_eq!(
            retention_plan(&backups, &wal_objs, 35, 100),
            (vec![], vec![])
        );
        // No backup: nothing goes.
        assert_eq!(retention_plan(&[], &wal_objs, 35, 1), (vec![], vec![]));
    }

    #[test]
    fn picks_the_newest_backup_before_the_target() {
        let backups = vec![backup("a", 0, 10), backup("b", 100, 20)];
        assert_eq!(pick_backup(&backups, None, Target::Latest).unwrap().id, "b");
        assert_eq!(
            pick_backup(&backups, None, Target::Offset(99)).unwrap().id,
            "a"
        );
        assert_eq!(
            pick_backup(&backups, None, Target::Time(19)).unwrap().id,
            "a"
        );
        assert!(pick_backup(&backups, None, Target::Time(5)).is_err());
        assert!(pick_backup(&backups, Some("b"), Target::Offset(50)).is_err());
        assert!(pick_backup(&backups, Some("zz"), Target::Latest).is_err());
    }

    #[test]
    fn durations_and_ids() {
        assert_eq!(parse_duration_ms("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_duration_ms("90"), Some(90_000));
        assert_eq!(parse_duration_ms("0"), Some(0));
        assert_eq!(parse_duration_ms("3x"), None);
        assert!(valid_backup_id("nightly-2026.12.06_1"));
        assert!(!valid_backup_id("../x"));
        assert!(!valid_backup_id(""));
    }
}
