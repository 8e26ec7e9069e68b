//! Snapshot files: the whole dataset at one stream offset, as records whose payloads are the
//! commands that recreate it (SET, RPUSH, HSET, SADD, ZADD, PEXPIREAT, with SELECT between
//! databases). The same encoding feeds a full sync, so a replica loads a snapshot through its
//! normal command path. This module writes and reads the files and hands the payloads it reads
//! to its caller (`state::snapshot` captures the dataset, `state::replay` applies what is read):
//! it never applies a command itself. Serialising entries is pure; `load`, `SnapshotFile` and
//! `Retention` do file I/O.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{io_err, record, PersistError};
use crate::engine::protocol::commands::encode_command;
pub use crate::engine::storage::serialise::serialise_entry;

pub fn select_command(db: usize, out: &mut Vec<u8>) {
    encode_command(
        &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
        out,
    );
}

/// A snapshot file being written: records numbered from 0, header first, END last, renamed into
/// place by `finish`.
pub struct SnapshotFile {
    tmp: PathBuf,
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    seq: u64,
    pub bytes: u64,
    /// Writeback has been started for the file up to here ...
    writeback_started: u64,
    /// ... and has completed up to here (see [`WRITEBACK_CHUNK`]).
    writeback_done: u64,
}

/// Bytes of snapshot between writeback kicks: each chunk is handed to the disk as soon as it is
/// written, and the one before it waited for, so at most two chunks are ever dirty and the
/// final fsync has almost nothing left (see [`super::writeback`]). 4 MB, as Redis's
/// incremental fsync of RDB files.
const WRITEBACK_CHUNK: u64 = 4 << 20;

impl SnapshotFile {
    pub fn create(
        dir: &Path,
        offset: u64,
        db: Option<usize>,
    ) -> Result<SnapshotFile, PersistError> {
        let path = super::snapshot_path(dir, offset);
        let tmp = path.with_extension("rdp.tmp");
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut s = SnapshotFile {
            tmp,
            path,
            file: std::io::BufWriter::with_capacity(1 << 20, f),
            seq: 0,
            bytes: 0,
            writeback_started: 0,
            writeback_done: 0,
        };
        let db = db.map(|d| d as i64).unwrap_or(-1);
        s.record(format!("RPSNAP 1 {offset} {db}").as_bytes())?;
        Ok(s)
    }

    fn record(&mut self, payload: &[u8]) -> Result<(), PersistError> {
        // Header and payload go to the buffered file as they are: a snapshot writes its whole
        // dataset through here, so an encoded copy of each record first would be one more
        // copy of every byte on the cores that serve clients.
        let header = record::header(self.seq, payload);
        self.seq += 1;
        self.bytes += (header.len() + payload.len()) as u64;
        self.file.write_all(&header).map_err(io_err(&self.tmp))?;
        self.file.write_all(payload).map_err(io_err(&self.tmp))?;
        if self.bytes - self.writeback_started >= WRITEBACK_CHUNK {
            self.write_back()?;
        }
        Ok(())
    }

    /// Hand what was written since the last call to the disk, and wait for the chunk before.
    fn write_back(&mut self) -> Result<(), PersistError> {
        self.file.flush().map_err(io_err(&self.tmp))?;
        let f = self.file.get_ref();
        super::writeback::start(
            f,
            self.writeback_started,
            self.bytes - self.writeback_started,
        );
        super::writeback::wait(
            f,
            self.writeback_done,
            self.writeback_started - self.writeback_done,
        );
        self.writeback_done = self.writeback_started;
        self.writeback_started = self.bytes;
        Ok(())
    }

    /// Append commands (whole commands only).
    pub fn commands(&mut self, payload: &[u8]) -> Result<(), PersistError> {
        if payload.is_empty() {
            return Ok(());
        }
        self.record(payload)
    }

    pub fn finish(mut self) -> Result<PathBuf, PersistError> {
        let r = self.finish_inner();
        if r.is_err() {
            // A snapshot that failed on a full disk must not keep the space it took: the log
            // needs it (writes are refused until the log can be written).
            let _ = std::fs::remove_file(&self.tmp);
        }
        r.map(|()| self.path)
    }

    fn finish_inner(&mut self) -> Result<(), PersistError> {
        self.record(b"END")?;
        self.file.flush().map_err(io_err(&self.tmp))?;
        let f = self.file.get_ref();
        f.sync_all().map_err(io_err(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))?;
        super::sync_dir(self.path.parent().unwrap_or(Path::new(".")));
        Ok(())
    }

    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Parse a snapshot header payload: (offset, db).
pub fn parse_header(payload: &[u8]) -> Option<(u64, Option<usize>)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut w = text.split(' ');
    if w.next()? != "RPSNAP" || w.next()? != "1" {
        return None;
    }
    let offset = w.next()?.parse().ok()?;
    let db: i64 = w.next()?.parse().ok()?;
    Some((offset, (db >= 0).then_some(db as usize)))
}

/// Read a snapshot file and hand each payload between its header and END, in order, to
/// `apply` (whole commands, as written); returns the file's (offset, stream db). An `apply`
/// error stops the load as damage at that record.
pub fn load(
    path: &Path,
    mut apply: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(u64, Option<usize>), PersistError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    let corrupt = |pos: usize, reason: &str| PersistError::Corrupt {
        file: path.display().to_string(),
        pos,
        reason: reason.to_string(),
        dir: path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    };
    let (recs, end) = record::scan(&data, false, None);
    match end {
        record::ScanEnd::Clean => {}
        record::ScanEnd::Torn { at } | record::ScanEnd::Corrupt { at, .. } => {
            return Err(corrupt(at, "damaged snapshot"))
        }
    }
    let Some(first) = recs.first() else {
        return Err(corrupt(0, "empty snapshot"));
    };
    let header = parse_header(first.payload(&data)).ok_or_else(|| corrupt(0, "bad header"))?;
    let Some(last) = recs.last() else {
        return Err(corrupt(0, "empty snapshot"));
    };
    if recs.len() < 2 || last.payload(&data) != b"END" {
        return Err(corrupt(last.file_pos, "snapshot without END"));
    }
    for r in &recs[1..recs.len() - 1] {
        apply(r.payload(&data)).map_err(|reason| corrupt(r.file_pos, &reason))?;
    }
    Ok(header)
}

/// What a finished snapshot makes obsolete: older snapshots, and the segments before it that
/// the replication backlog settings no longer keep. Does I/O: deletes files.
#[derive(Debug, Default)]
pub struct Retention {
    /// None: nothing to delete (the snapshot failed).
    pub dir: Option<PathBuf>,
    pub snapshot_offset: u64,
    pub stream_offset: u64,
    pub backlog_size: u64,
    pub backlog_ttl_secs: u64,
    /// The archive's end (archiving on): segments after it are kept.
    pub archived: Option<u64>,
}

impl Retention {
    /// Delete the obsolete files. Needs no lock: they are older than the newest snapshot, which
    /// recovery and full syncs start from, and outside the retained backlog that replicas read.
    pub fn apply(self) {
        let Some(dir) = self.dir else {
            return;
        };
        for (o, path) in super::list_snapshots(&dir) {
            if o < self.snapshot_offset {
                let _ = std::fs::remove_file(path);
            }
        }
        super::retain(
            &dir,
            self.snapshot_offset,
            self.stream_offset,
            self.backlog_size,
            self.backlog_ttl_secs,
            self.archived,
        );
    }
}

/// Keys serialised per database per step: small, so a step holds the lock only briefly.
///
/// Why 32 and not more: measured on two busy cores (1M keys of 64 bytes, redis-benchmark at
/// P1, snapshots back to back), the p99 of clients during snapshots was 1.8-2.1 ms with 256
/// keys a step (~60 us under the lock), 1.3-1.5 ms with 64 and 0.9-1.6 ms with 32: a client
/// that finds the lock taken waits for the whole step, and a step short enough for the
/// lock's brief spinning to cover spares it a sleep and a wake-up. The price is a slower
/// snapshot under load (the pacer's minimum pause comes once a step): ~8 s for 1M keys
/// instead of ~2 s. On an idle server the pacer does not pause and the speed is the same.
pub const KEYS_PER_STEP: usize = 32;

/// Nice value of the threads that serialise snapshots (BGSAVE, compaction, full syncs).
/// Serving clients comes first: on a busy machine a snapshot thread at the same priority took
/// a full share of a core from the threads answering clients, and their p99 grew several
/// times over. At nice 10 the kernel gives it about a tenth of a contended core (it still
/// progresses under full load, so the copy-before-write state it holds stays bounded), and all
/// of an idle one.
const SNAPSHOT_NICE: i32 = 10;

/// Lower the calling thread's scheduling priority to [`SNAPSHOT_NICE`]. Best effort: a
/// failure (a sandbox refusing setpriority) only costs latency, so it is logged and ignored.
pub fn lower_thread_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), SNAPSHOT_NICE) {
        tracing::debug!(error = %e, "cannot lower the snapshot thread's priority");
    }
}
