//! The background snapshot (BGSAVE, BGREWRITEAOF, automatic compaction): a thread that captures
//! the dataset a step at a time under the state lock (`state::snapshot`) and writes the file
//! (`persistence::snapshot`) while the server keeps serving. Does I/O: the snapshot file.

use crate::engine::clock::now_ms;
use crate::engine::core::Engine;
use crate::engine::persistence::snapshot::{lower_thread_priority, SnapshotFile, KEYS_PER_STEP};
use crate::engine::state::snapshot::{begin, finished, Step, StepPacer};

/// BGSAVE / BGREWRITEAOF / automatic compaction: a snapshot written by its own thread, one step
/// at a time under the state lock, while the server keeps serving. Does I/O: the snapshot file.
pub fn spawn_background(engine: std::sync::Arc<Engine>) {
    let spawned = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || background(&engine));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the snapshot thread");
    }
}

fn background(engine: &Engine) {
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
