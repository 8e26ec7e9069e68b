//! Snapshots: the whole dataset at one stream offset, as records whose payloads are the commands
//! that recreate it (SET, RPUSH, HSET, SADD, ZADD, PEXPIREAT, with SELECT between databases). The
//! same encoding feeds a full sync, so a replica loads a snapshot through its normal command path.
//! Serialising entries is pure; `load` and `SnapshotFile` do file I/O.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{io_err, record, PersistError};
use crate::engine::client::ClientState;
use crate::engine::replication::apply::apply_payload;
use crate::engine::replication::stream::encode_command;
use crate::engine::state::EngineState;
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

/// Load a snapshot file into `state`; returns its (offset, stream db).
pub fn load(
    state: &mut EngineState,
    client: &mut ClientState,
    path: &Path,
    now_ms: i64,
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
        apply_payload(state, client, r.payload(&data), now_ms)
            .map_err(|reason| corrupt(r.file_pos, &reason))?;
    }
    client.db = header.1.unwrap_or(0);
    Ok(header)
}

/// Start capturing a snapshot of every database at the current stream offset. Returns the
/// offset and the stream's database at that point.
pub fn begin(state: &mut EngineState, now_ms: i64) -> (u64, Option<usize>) {
    state.persist.epoch = state.persist.epoch.wrapping_add(1).max(1);
    let epoch = state.persist.epoch;
    state.persist.capture_epoch = epoch;
    let mut total = 0;
    for db in state.dbs.iter_mut() {
        db.begin_snapshot(epoch);
        total += db.len() as u64;
    }
    // The libraries as of this offset: FUNCTION LOAD/DELETE after it are in the log after
    // it, so the snapshot plus that log gives exactly the current set. Without them, every
    // restart from a snapshot, and every restore of a base backup, lost the libraries.
    state.persist.snapshot_libraries = state
        .scripting
        .libraries
        .values()
        .map(|l| l.code.clone())
        .collect();
    let p = &mut state.persist;
    p.snapshot_in_progress = true;
    p.snapshot_started_ms = now_ms;
    p.keys_total = total;
    p.keys_processed = 0;
    p.dirty_at_snapshot = state.dirty_since_save;
    if let Some(w) = &state.stream.log {
        // The log from the snapshot's offset on starts a new segment, so everything before it
        // can be dropped as whole files.
        w.rotate_at(state.stream.offset);
    }
    (state.stream.offset, state.stream.cur_db)
}

/// The outcome of one snapshot step.
pub enum Step {
    /// The step's commands are in the caller's buffer; `done` when the snapshot is complete
    /// (capture has ended).
    Chunk { done: bool },
    /// FLUSHDB/FLUSHALL/SWAPDB happened during the snapshot: start again.
    Aborted,
    /// The dataset was replaced (full sync, truncation): the snapshot is obsolete; stop.
    Cancelled,
}

/// Serialise up to `max_keys` more entries per database, and what copy-before-write captured
/// meanwhile: `out` is replaced by the step's commands. Called under the state lock, a step at
/// a time. `out` is the caller's, reused from step to step: a fresh buffer per step meant an
/// allocation, its growth and one more copy of every byte, all under the lock.
pub fn step(state: &mut EngineState, max_keys: usize, out: &mut Vec<u8>) -> Step {
    out.clear();
    if state.persist.epoch != state.persist.capture_epoch {
        return Step::Cancelled;
    }
    // The first step carries the libraries (REPLACE: a replica or restarted node loading the
    // snapshot over libraries of its own ends with exactly these).
    for code in std::mem::take(&mut state.persist.snapshot_libraries) {
        encode_command(
            &[
                Bytes::from_static(b"FUNCTION"),
                Bytes::from_static(b"LOAD"),
                Bytes::from_static(b"REPLACE"),
                code,
            ],
            out,
        );
    }
    let mut done = true;
    for (i, db) in state.dbs.iter_mut().enumerate() {
        if db.snap.as_ref().is_some_and(|s| s.aborted) {
            for db in state.dbs.iter_mut() {
                db.end_snapshot();
            }
            return Step::Aborted;
        }
        if db.snap.is_none() {
            continue;
        }
        let before = out.len();
        select_command(i, out);
        let after_select = out.len();
        done &= db.snapshot_walk(max_keys, out);
        if let Some(snap) = &mut db.snap {
            out.extend_from_slice(&snap.out);
            snap.out.clear();
        }
        if out.len() == after_select {
            out.truncate(before);
        }
    }
    if done {
        for db in state.dbs.iter_mut() {
            db.end_snapshot();
        }
    }
    Step::Chunk { done }
}

/// Record a finished snapshot (under the state lock). Returns the retention to apply once the
/// lock is released: deleting a 100 MB snapshot on ext4 took ~30 ms, during which every client
/// waited when it ran under the lock.
#[must_use = "the old files stay until the retention runs"]
pub fn finished(state: &mut EngineState, offset: u64, ok: bool, now_ms: i64) -> Retention {
    let p = &mut state.persist;
    p.snapshot_in_progress = false;
    p.last_snapshot_ok = ok;
    p.last_snapshot_secs = (now_ms - p.snapshot_started_ms) / 1000;
    if !ok {
        return Retention::default();
    }
    p.snapshots_done += 1;
    p.last_snapshot_offset = Some(offset);
    p.last_snapshot_began_ms = p.snapshot_started_ms;
    p.last_snapshot_done_ms = now_ms;
    p.last_snapshot_end_offset = state.stream.offset;
    state.lastsave_secs = now_ms / 1000;
    state.dirty_since_save = state
        .dirty_since_save
        .saturating_sub(state.persist.dirty_at_snapshot);
    let setting = |name: &str| {
        state
            .config
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Retention {
        dir: Some(state.persist.dir.clone()),
        snapshot_offset: offset,
        stream_offset: state.stream.offset,
        backlog_size: setting("repl-backlog-size"),
        backlog_ttl_secs: setting("repl-backlog-ttl"),
        archived: state
            .persist
            .archive_pin
            .as_ref()
            .map(|p| p.load(std::sync::atomic::Ordering::Acquire)),
    }
}

/// What a finished snapshot makes obsolete: older snapshots, and the segments before it that
/// the replication backlog settings no longer keep. Does I/O: deletes files.
#[derive(Debug, Default)]
pub struct Retention {
    /// None: nothing to delete (the snapshot failed).
    dir: Option<PathBuf>,
    snapshot_offset: u64,
    stream_offset: u64,
    backlog_size: u64,
    backlog_ttl_secs: u64,
    /// The archive's end (archiving on): segments after it are kept.
    archived: Option<u64>,
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

/// SAVE: the whole snapshot now, under the lock (blocks every client, as Redis's SAVE does).
pub fn save_inline(state: &mut EngineState, now_ms: i64) -> Result<u64, PersistError> {
    let dir = state.persist.dir.clone();
    loop {
        let (offset, db) = begin(state, now_ms);
        let mut file = SnapshotFile::create(&dir, offset, db)?;
        let mut payload = Vec::new();
        loop {
            match step(state, usize::MAX, &mut payload) {
                Step::Aborted | Step::Cancelled => break,
                Step::Chunk { done } => {
                    if let Err(e) = file.commands(&payload) {
                        for db in state.dbs.iter_mut() {
                            db.end_snapshot();
                        }
                        finished(state, offset, false, now_ms).apply();
                        return Err(e);
                    }
                    if done {
                        let r = file.finish();
                        finished(state, offset, r.is_ok(), now_ms).apply();
                        return r.map(|_| offset);
                    }
                }
            }
        }
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

/// One step under the state lock, released *fairly*: a client thread waiting for the lock
/// gets it before this thread can take it again for the next step.
pub fn step_fair(
    state: &parking_lot::Mutex<EngineState>,
    max_keys: usize,
    out: &mut Vec<u8>,
) -> Step {
    let mut st = state.lock();
    let s = step(&mut st, max_keys, out);
    parking_lot::MutexGuard::unlock_fair(st);
    s
}

/// Paces a background snapshot while clients are being served: after each step the thread
/// sleeps for twice as long as it worked on that step (at least [`MIN_PAUSE`]), so it takes at
/// most about a third of a core; on a server nobody is using it does not pause at all.
///
/// Why sleep and not just yield: measured on two busy cores (redis-benchmark SET at P1, 1M
/// keys, snapshots back to back), a thread that only yields stays runnable, and the scheduler
/// (EEVDF, where nice sets a share, not a latency) lets it run whole slices of several ms when
/// its turn comes, often holding the lock, while the network thread waits: SET p99 went from
/// 0.9 to 5.5 ms at nice 10, and the same in the idle class. Sleeping between short steps
/// keeps every run of the thread far below a slice; p99 during snapshots fell to ~1.9 ms.
///
/// "Worked" is everything from taking the lock to the pause: the walk under the lock and
/// writing its output to the file after it. The file write (checksum, copies into the page
/// cache) is CPU taken from the same two cores, so it counts against the same budget.
#[derive(Debug, Default)]
pub struct StepPacer {
    commands_seen: u64,
    clients_active: bool,
    work_started: Option<std::time::Instant>,
}

/// The shortest pause between steps while clients are active.
pub const MIN_PAUSE: std::time::Duration = std::time::Duration::from_micros(200);

impl StepPacer {
    /// One step under the state lock (released fairly, like [`step_fair`]); notes when the
    /// work began and whether commands ran since the previous step.
    pub fn step(
        &mut self,
        state: &parking_lot::Mutex<EngineState>,
        max_keys: usize,
        out: &mut Vec<u8>,
    ) -> Step {
        let mut st = state.lock();
        self.work_started = Some(std::time::Instant::now());
        let s = step(&mut st, max_keys, out);
        let commands = st.stats.total_commands_processed;
        parking_lot::MutexGuard::unlock_fair(st);
        self.clients_active = commands != self.commands_seen;
        self.commands_seen = commands;
        s
    }

    /// How long to pause now: twice the work since the step began while clients are active,
    /// nothing otherwise.
    pub fn pause_length(&self) -> std::time::Duration {
        match self.work_started {
            Some(started) if self.clients_active => (started.elapsed() * 2).max(MIN_PAUSE),
            _ => std::time::Duration::ZERO,
        }
    }

    /// Pause before the next step: sleep while clients are active, else only yield.
    pub fn pause(&self) {
        let pause = self.pause_length();
        if pause.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause);
        }
    }
}

/// BGSAVE / BGREWRITEAOF / automatic compaction: a snapshot written by its own thread, one step
/// at a time under the state lock, while the server keeps serving. Does I/O: the snapshot file.
pub fn spawn_background(engine: std::sync::Arc<crate::engine::server::Engine>) {
    let spawned = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || background(&engine));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the snapshot thread");
    }
}

fn background(engine: &crate::engine::server::Engine) {
    use crate::engine::server::now_ms;
    lower_thread_priority();
    'restart: loop {
        let (offset, db, dir) = {
            let mut st = engine.state.lock();
            let (o, d) = begin(&mut st, now_ms());
            (o, d, st.persist.dir.clone())
        };
        let mut file = match SnapshotFile::create(&dir, offset, db) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "snapshot failed");
                let mut st = engine.state.lock();
                for db in st.dbs.iter_mut() {
                    db.end_snapshot();
                }
                finished(&mut st, offset, false, now_ms()).apply();
                return;
            }
        };
        let mut pacer = StepPacer::default();
        let mut payload = Vec::new();
        loop {
            match pacer.step(&engine.state, KEYS_PER_STEP, &mut payload) {
                Step::Aborted => {
                    file.abandon();
                    continue 'restart;
                }
                Step::Cancelled => {
                    file.abandon();
                    engine.state.lock().persist.snapshot_in_progress = false;
                    return;
                }
                Step::Chunk { done } => {
                    if let Err(e) = file.commands(&payload) {
                        tracing::error!(error = %e, "snapshot failed");
                        file.abandon();
                        let mut st = engine.state.lock();
                        for db in st.dbs.iter_mut() {
                            db.end_snapshot();
                        }
                        finished(&mut st, offset, false, now_ms()).apply();
                        return;
                    }
                    if done {
                        break;
                    }
                }
            }
            pacer.pause();
        }
        let r = file.finish();
        if let Err(e) = &r {
            tracing::error!(error = %e, "snapshot failed");
        } else {
            tracing::info!(offset, "snapshot written");
        }
        // The guard is dropped at the end of the `let`: the files go after the lock is free.
        let retention = finished(&mut engine.state.lock(), offset, r.is_ok(), now_ms());
        retention.apply();
        return;
    }
}

/// Forget any snapshot being captured: the dataset is being replaced wholesale (full sync,
/// truncation), so what it captured describes nothing any more.
pub fn cancel(state: &mut EngineState) {
    state.persist.epoch = state.persist.epoch.wrapping_add(1).max(1);
    for db in state.dbs.iter_mut() {
        db.end_snapshot();
    }
}

/// DEBUG RELOAD: write a snapshot, then rebuild the dataset from the data directory.
pub fn debug_reload(state: &mut EngineState, now_ms: i64) -> Result<(), PersistError> {
    save_inline(state, now_ms)?;
    cancel(state);
    for db in state.dbs.iter_mut() {
        db.clear();
        db.end_snapshot();
    }
    let dir = state.persist.dir.clone();
    let offset = state.stream.offset;
    let rec = super::recovery::recover(state, &dir, now_ms)?;
    if rec.offset != offset {
        return Err(PersistError::Gap(format!(
            "reload ended at offset {} instead of {offset}",
            rec.offset
        )));
    }
    Ok(())
}

/// DEBUG LOADAOF: rebuild the dataset from the data directory as it is (the last snapshot and
/// the log after it), without writing a snapshot first. What comes back is what a restart would
/// recover: the effects as they were propagated, replayed (Redis reloads its AOF the same way
/// to check that commands propagate deterministically).
pub fn debug_loadaof(state: &mut EngineState, now_ms: i64) -> Result<(), PersistError> {
    if let Some(w) = &state.stream.log {
        w.flush_sync();
    }
    cancel(state);
    for db in state.dbs.iter_mut() {
        db.clear();
        db.end_snapshot();
    }
    let dir = state.persist.dir.clone();
    let offset = state.stream.offset;
    let rec = super::recovery::recover(state, &dir, now_ms)?;
    if rec.offset != offset {
        return Err(PersistError::Gap(format!(
            "reload ended at offset {} instead of {offset}",
            rec.offset
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Config;

    #[test]
    fn the_pacer_pauses_only_after_steps_during_which_commands_ran() {
        let state = parking_lot::Mutex::new(EngineState::new(Config::default(), 0));
        let mut pacer = StepPacer::default();
        let mut out = Vec::new();
        assert!(pacer.pause_length().is_zero(), "no step yet");
        pacer.step(&state, KEYS_PER_STEP, &mut out);
        assert!(pacer.pause_length().is_zero(), "nobody is using the server");
        state.lock().stats.total_commands_processed += 3;
        pacer.step(&state, KEYS_PER_STEP, &mut out);
        assert!(
            pacer.pause_length() >= MIN_PAUSE,
            "commands ran since the last step"
        );
        pacer.step(&state, KEYS_PER_STEP, &mut out);
        assert!(pacer.pause_length().is_zero(), "none since");
    }

    #[test]
    fn a_finished_snapshot_deletes_older_ones_only_when_its_retention_is_applied() {
        let dir = super::super::scratch_dir("retention");
        for offset in [10, 20, 30] {
            std::fs::write(super::super::snapshot_path(&dir, offset), b"x").unwrap();
        }
        let mut state = EngineState::new(Config::default(), 0);
        state.persist.dir = dir.clone();
        let retention = finished(&mut state, 30, true, 5_000);
        assert_eq!(state.persist.last_snapshot_offset, Some(30));
        assert_eq!(
            super::super::list_snapshots(&dir).len(),
            3,
            "nothing deleted yet"
        );
        retention.apply();
        let left: Vec<u64> = super::super::list_snapshots(&dir)
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(left, [30]);
        // A failed snapshot makes nothing obsolete.
        std::fs::write(super::super::snapshot_path(&dir, 5), b"x").unwrap();
        finished(&mut state, 40, false, 6_000).apply();
        assert_eq!(super::super::list_snapshots(&dir).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
