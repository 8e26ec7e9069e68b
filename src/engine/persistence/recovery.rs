//! Start-up recovery: the newest snapshot, then the log from the snapshot's offset on. A torn
//! last record is cut off with a warning; damage anywhere else stops the start with the file and
//! byte position. The records are handed, in order, to a [`Replayer`] (the layer above applies
//! them through the command path; persistence never runs a command itself). Does I/O: reads (and
//! for a torn tail, truncates) files under `dir`.

use std::path::Path;

use tracing::{info, warn};

use super::{io_err, list_segments, list_snapshots, record, snapshot, PersistError};

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Stream offset after the last applied record.
    pub offset: u64,
    /// Database of the last command in the stream.
    pub cur_db: Option<usize>,
    /// Offset of the snapshot loaded, if any.
    pub snapshot: Option<u64>,
    /// A torn tail that was cut: (file, position).
    pub torn: Option<(String, usize)>,
    pub records: u64,
    pub commands: u64,
}

/// Where recovery hands what it reads: the records of the newest snapshot, then those of the
/// log from the snapshot's offset on, each once and in stream order.
pub trait Replayer {
    /// Apply one record's payload (whole commands); returns how many commands it held, or why
    /// it could not be applied.
    fn apply(&mut self, payload: &[u8]) -> Result<usize, String>;
    /// The stream's database is `db` from here on (where a snapshot leaves it).
    fn select(&mut self, db: usize);
    /// The stream's database after what was applied so far.
    fn db(&self) -> usize;
}

/// Read the dataset in `dir` and hand it to `replayer` (which starts from an empty dataset).
pub fn recover(dir: &Path, replayer: &mut impl Replayer) -> Result<Recovered, PersistError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    // Leftovers of snapshots or state files a crash interrupted.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut rec = Recovered::default();
    let mut expect = 0u64;
    if let Some((_, path)) = list_snapshots(dir).last() {
        let (offset, db) = snapshot::load(path, |p| replayer.apply(p).map(|_| ()))?;
        // The snapshot leaves the stream in its header's database (the SELECTs inside it are
        // the capture's own).
        replayer.select(db.unwrap_or(0));
        expect = offset;
        rec.snapshot = Some(offset);
        rec.cur_db = db;
        info!(file = %path.display(), offset, "snapshot loaded");
    }
    let segs = list_segments(dir);
    let dir_s = dir.display().to_string();
    for (i, (first, path)) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        let data = std::fs::read(path).map_err(io_err(path))?;
        let (recs, end) = record::scan(&data, true, Some(*first));
        match end {
            record::ScanEnd::Clean => {}
            record::ScanEnd::Torn { at } if is_last => {
                warn!(
                    file = %path.display(),
                    at,
                    dropped_bytes = data.len() - at,
                    "log ends with a torn record (crash during a write): dropping it"
                );
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(at as u64).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
                rec.torn = Some((path.display().to_string(), at));
            }
            record::ScanEnd::Torn { at } => {
                return Err(PersistError::Corrupt {
                    file: path.display().to_string(),
                    pos: at,
                    reason: "incomplete record before the last segment".into(),
                    dir: dir_s,
                })
            }
            record::ScanEnd::Corrupt { at, reason } => {
                return Err(PersistError::Corrupt {
                    file: path.display().to_string(),
                    pos: at,
                    reason,
                    dir: dir_s,
                })
            }
        }
        let seg_end = recs
            .last()
            .map(|r| r.offset + r.len as u64)
            .unwrap_or(*first);
        if seg_end <= expect {
            continue;
        }
        if *first > expect {
            return Err(PersistError::Gap(format!(
                "{} starts at offset {first} but the data before it ends at {expect}",
                path.display()
            )));
        }
        for r in recs {
            let end = r.offset + r.len as u64;
            if end <= expect {
                continue;
            }
            if r.offset != expect {
                return Err(PersistError::Gap(format!(
                    "{}: record at offset {} does not start at {expect}",
                    path.display(),
                    r.offset
                )));
            }
            let n = replayer
                .apply(r.payload(&data))
                .map_err(|reason| PersistError::Replay {
                    file: format!("{} at byte {}", path.display(), r.file_pos),
                    reason,
                })?;
            rec.commands += n as u64;
            rec.records += 1;
            expect = end;
        }
        rec.cur_db = Some(replayer.db());
    }
    rec.offset = expect;
    Ok(rec)
}
