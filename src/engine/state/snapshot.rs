//! Snapshot capture on the engine's state: `begin` marks every database for copy-before-write,
//! `step` serialises a bounded number of keys under the lock, `finished` records the outcome;
//! SAVE, DEBUG RELOAD and DEBUG LOADAOF run here too. The files themselves are
//! `persistence::snapshot`'s; the background thread is `server::snapshot`. Pure (on the locked
//! state), except `save_inline`, `debug_reload` and `debug_loadaof`, which write or read the data
//! directory.

use crate::engine::persistence::snapshot::{select_command, Retention, SnapshotFile};
use crate::engine::persistence::PersistError;
use crate::engine::protocol::commands::encode_command;
use crate::engine::state::EngineState;
use bytes::Bytes;

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

/// Forget any snapshot being captured: the dataset is being replaced wholesale (full sync,
/// truncation), so what it captured describes nothing any more.
pub fn cancel(state: &mut EngineState) {
    state.persist.epoch = state.persist.epoch.wrapping_add(1).max(1);
    for db in state.dbs.iter_mut() {
        db.end_snapshot();
    }
}

/// DEBUG RELOAD: write a snapshot (unless NOSAVE), then rebuild the dataset from the data
/// directory. The directory always holds the current dataset (the log is written before a
/// command is answered), so NOFLUSH MERGE loads back what memory holds and is this same
/// rebuild; NOFLUSH without MERGE is refused by the caller when memory is not empty, as
/// Redis's load refuses a library or key it already has.
pub fn debug_reload(state: &mut EngineState, now_ms: i64, save: bool) -> Result<(), PersistError> {
    if save {
        save_inline(state, now_ms)?;
    } else if let Some(w) = &state.stream.log {
        // Without a snapshot the reload reads the log up to the engine's offset: all of it
        // must be on disk first (as DEBUG LOADAOF does).
        w.flush_sync();
    }
    reload_from_dir(state, now_ms)
}

/// DEBUG LOADAOF: rebuild the dataset from the data directory as it is (the last snapshot and
/// the log after it), without writing a snapshot first. What comes back is what a restart would
/// recover: the effects as they were propagated, replayed (Redis reloads its AOF the same way
/// to check that commands propagate deterministically).
pub fn debug_loadaof(state: &mut EngineState, now_ms: i64) -> Result<(), PersistError> {
    if let Some(w) = &state.stream.log {
        w.flush_sync();
    }
    reload_from_dir(state, now_ms)
}

/// Empty the dataset and recover it from the data directory, as a restart would; it must end
/// at the offset the engine had (anything else means the directory lost or gained records).
fn reload_from_dir(state: &mut EngineState, now_ms: i64) -> Result<(), PersistError> {
    cancel(state);
    for db in state.dbs.iter_mut() {
        db.clear();
        db.end_snapshot();
    }
    let dir = state.persist.dir.clone();
    let offset = state.stream.offset;
    let rec = super::replay::recover(state, &dir, now_ms)?;
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
    use crate::engine::persistence::snapshot::KEYS_PER_STEP;

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
        let dir = crate::engine::persistence::scratch_dir("retention");
        for offset in [10, 20, 30] {
            std::fs::write(
                crate::engine::persistence::snapshot_path(&dir, offset),
                b"x",
            )
            .unwrap();
        }
        let mut state = EngineState::new(Config::default(), 0);
        state.persist.dir = dir.clone();
        let retention = finished(&mut state, 30, true, 5_000);
        assert_eq!(state.persist.last_snapshot_offset, Some(30));
        assert_eq!(
            crate::engine::persistence::list_snapshots(&dir).len(),
            3,
            "nothing deleted yet"
        );
        retention.apply();
        let left: Vec<u64> = crate::engine::persistence::list_snapshots(&dir)
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(left, [30]);
        // A failed snapshot makes nothing obsolete.
        std::fs::write(crate::engine::persistence::snapshot_path(&dir, 5), b"x").unwrap();
        finished(&mut state, 40, false, 6_000).apply();
        assert_eq!(crate::engine::persistence::list_snapshots(&dir).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
