//! The log writer: a dedicated thread that takes encoded records queued under the state lock,
//! writes them to the current segment, fsyncs according to `appendfsync`, rotates segments, and
//! publishes the written and durable offsets (the durable one releases replies through the
//! reply gate). Does I/O: appends to segment files, fsync.
//!
//! Queuing is a memcpy under the state lock; the write and fsync happen outside it, and one
//! fsync covers every record queued meanwhile (group commit).
//!
//! Waking the writer is batched like Redis's `beforeSleep` when the process opts in
//! ([`defer_wakeups`], done by the engine binary): an append only marks the writer pending, and
//! the runtime's park hook ([`wake_pending_writers`]) wakes it once per event-loop turn, when
//! the network thread has run every ready connection. A wake per record cost a futex call
//! and a thread switch per write (SET at P1 ran at 0.67 of redis-server with `appendonly
//! everysec`). A queue past [`WAKE_AT_BYTES`] wakes the writer at once, so a loop that never
//! parks still writes in bounded batches, and so do `appendfsync always` and an attached
//! replica (replies or a replica wait on the write). Without the opt-in (tests that run
//! engines inside their own runtime) every append wakes the writer, as before.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tracing::{error, warn};

use super::{io_err, record, segment_path, PersistError};
use crate::engine::replication::gate::ReplyGate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
}

impl FsyncPolicy {
    pub fn parse(s: &str) -> FsyncPolicy {
        match s {
            "always" => FsyncPolicy::Always,
            "no" => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }
}

#[derive(Debug)]
struct Queue {
    /// Encoded records, whole records only.
    buf: Vec<u8>,
    /// Stream offset of the first record in `buf` (meaningful when non-empty).
    buf_first: u64,
    /// Stream offset after the last queued record.
    end: u64,
    policy: FsyncPolicy,
    /// Start a new segment at the record that begins at this offset (a snapshot's offset).
    rotate_at: Option<u64>,
    /// Position in `buf` where that record starts: the new segment begins there.
    split: Option<usize>,
    stop: bool,
}

/// Shared between the engine (which queues) and the writer thread.
#[derive(Debug)]
pub struct LogWriter {
    q: Mutex<Queue>,
    cond: Condvar,
    /// Offset written to the segment file (readable by replica senders).
    pub written: AtomicU64,
    /// `written`, for replica senders waiting for it to move (they send only written bytes).
    pub written_tx: tokio::sync::watch::Sender<u64>,
    /// Offset known to be on stable storage.
    pub durable: AtomicU64,
    pub failed: AtomicBool,
    pub fsyncs: AtomicU64,
    /// `log-write-delay-us` (testing only): a slow disk, to widen the window between queueing
    /// a record and writing it.
    write_delay_us: AtomicU64,
    force_sync: AtomicBool,
    /// Records queued since the last wake-up, for the park hook (deferred mode only).
    pending: AtomicBool,
    /// Appends leave the wake-up to the park hook.
    deferred: bool,
    gate: Arc<ReplyGate>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A queue this long wakes the writer at the append, not at the next park.
pub const WAKE_AT_BYTES: usize = 64 << 10;

/// Writers whose wake-ups wait for the park hook; set once by [`defer_wakeups`].
static DEFERRED: OnceLock<Mutex<Vec<Weak<LogWriter>>>> = OnceLock::new();

/// Opt this process in to batched wake-ups: call before any writer starts, and call
/// [`wake_pending_writers`] whenever a runtime thread is about to park.
pub fn defer_wakeups() {
    let _ = DEFERRED.set(Mutex::new(Vec::new()));
}

/// Wake every writer that has records queued since its last wake-up (the park hook).
pub fn wake_pending_writers() {
    let Some(writers) = DEFERRED.get() else {
        return;
    };
    let mut writers = writers.lock();
    writers.retain(|w| match w.upgrade() {
        Some(w) => {
            if w.pending.swap(false, Ordering::AcqRel) {
                w.cond.notify_one();
            }
            true
        }
        None => false,
    });
}

/// Segments grow to about this size before a new one starts.
pub const SEGMENT_BYTES: u64 = 64 << 20;

impl LogWriter {
    /// Start writing at stream offset `offset` into a new segment under `dir`.
    pub fn start(
        dir: PathBuf,
        offset: u64,
        policy: FsyncPolicy,
        gate: Arc<ReplyGate>,
    ) -> Result<Arc<LogWriter>, PersistError> {
        let path = segment_path(&dir, offset);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        super::sync_dir(&dir);
        gate.reset_durable(offset);
        let w = Arc::new(LogWriter {
            q: Mutex::new(Queue {
                buf: Vec::new(),
                buf_first: offset,
                end: offset,
                policy,
                rotate_at: None,
                split: None,
                stop: false,
            }),
            cond: Condvar::new(),
            written: AtomicU64::new(offset),
            written_tx: tokio::sync::watch::channel(offset).0,
            durable: AtomicU64::new(offset),
            failed: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            write_delay_us: AtomicU64::new(0),
            force_sync: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            deferred: DEFERRED.get().is_some(),
            gate,
            thread: Mutex::new(None),
        });
        let w2 = w.clone();
        let t = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || w2.run(dir, file))
            .map_err(io_err(&path))?;
        *w.thread.lock() = Some(t);
        if let Some(writers) = DEFERRED.get() {
            writers.lock().push(Arc::downgrade(&w));
        }
        Ok(w)
    }

    /// Queue one record (called under the state lock).
    pub fn append(&self, offset: u64, payload: &[u8]) {
        let mut q = self.q.lock();
        if q.buf.is_empty() {
            q.buf_first = offset;
        }
        if q.rotate_at == Some(offset) {
            q.rotate_at = None;
            q.split = Some(q.buf.len());
        }
        record::encode(offset, payload, &mut q.buf);
        q.end = offset + payload.len() as u64;
        // Wake at once when something waits on this record's write: a reply under
        // `appendfsync always`, or a replica sender (they send only written bytes, and
        // semi-sync replies wait for the replica). Otherwise nothing but the clock does:
        // `everysec` may lose a second anyway, and the writer's own 200 ms wait bounds the
        // delay even if no park hook ever ran.
        let wake_now = q.buf.len() >= WAKE_AT_BYTES
            || q.policy == FsyncPolicy::Always
            || self.written_tx.receiver_count() > 0;
        drop(q);
        if self.deferred && !wake_now {
            // The writer only sleeps on an empty queue, so one wake-up at the next park
            // covers every record queued until then.
            self.pending.store(true, Ordering::Release);
        } else {
            self.cond.notify_one();
        }
    }

    pub fn set_write_delay_us(&self, us: u64) {
        self.write_delay_us.store(us, Ordering::Relaxed);
    }

    pub fn set_policy(&self, policy: FsyncPolicy) {
        self.q.lock().policy = policy;
        self.cond.notify_one();
    }

    /// Start a new segment with the record that begins at stream offset `at` (the next one
    /// queued), so a snapshot at `at` can drop every older segment whole.
    pub fn rotate_at(&self, at: u64) {
        self.q.lock().rotate_at = Some(at);
    }

    /// Write and fsync everything queued, then stop the thread.
    pub fn stop(&self) {
        self.q.lock().stop = true;
        self.cond.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Block until everything queued so far is written and fsynced (SAVE, shutdown, tests).
    pub fn flush_sync(&self) {
        let target = self.q.lock().end;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.durable.load(Ordering::Acquire) < target && Instant::now() < deadline {
            if self.failed.load(Ordering::Acquire) {
                return;
            }
            // Ask for an fsync even under `everysec` / `no`.
            self.force_sync.store(true, Ordering::Release);
            self.cond.notify_one();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stream offset after the last queued record.
    pub fn end(&self) -> u64 {
        self.q.lock().end
    }

    fn run(&self, dir: PathBuf, mut file: File) {
        let mut seg_size: u64 = 0;
        let mut last_sync = Instant::now();
        let mut unsynced = false;
        loop {
            let (buf, buf_first, end, policy, split, stop) = {
                let mut q = self.q.lock();
                if q.buf.is_empty() && !q.stop && !self.force_sync.load(Ordering::Acquire) {
                    self.cond.wait_for(&mut q, Duration::from_millis(200));
                }
                let buf = std::mem::take(&mut q.buf);
                let split = q.split.take();
                (buf, q.buf_first, q.end, q.policy, split, q.stop)
            };
            if !buf.is_empty() {
                let delay = self.write_delay_us.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_micros(delay));
                }
                // Records before the rotation point go to the current segment, the rest to a new
                // one named by the offset of its first record.
                let (head, tail, tail_first) = match split {
                    Some(at) => {
                        let mut first = [0u8; 8];
                        first.copy_from_slice(&buf[at + 8..at + 16]);
                        (&buf[..at], &buf[at..], u64::from_le_bytes(first))
                    }
                    None if seg_size >= SEGMENT_BYTES => (&buf[..0], &buf[..], buf_first),
                    None => (&buf[..], &buf[..0], 0),
                };
                for (part, new_segment) in [(head, false), (tail, true)] {
                    if new_segment && (split.is_some() || !part.is_empty()) {
                        let _ = file.sync_data();
                        let path = segment_path(&dir, tail_first);
                        match std::fs::OpenOptions::new()
                            .create(true)
                            .write(true)
                            .truncate(true)
                            .open(&path)
                        {
                            Ok(f) => {
                                file = f;
                                seg_size = 0;
                                super::sync_dir(&dir);
                            }
                            Err(e) => {
                                error!(path = %path.display(), error = %e, "cannot start a log segment")
                            }
                        }
                    }
                    if part.is_empty() {
                        continue;
                    }
                    if let Err(e) = file.write_all(part) {
                        // The log is the durability promise: stop acknowledging (the gate is
                        // never released again) rather than pretend.
                        error!(error = %e, "write log failed; writes will not be acknowledged");
                        self.failed.store(true, Ordering::Release);
                        return;
                    }
                    seg_size += part.len() as u64;
                }
                self.written.store(end, Ordering::Release);
                if self.written_tx.receiver_count() > 0 {
                    self.written_tx.send_replace(end);
                }
                unsynced = true;
            }
            let force = self.force_sync.swap(false, Ordering::AcqRel);
            let due = match policy {
                FsyncPolicy::Always => unsynced,
                FsyncPolicy::EverySec => unsynced && last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if (due || force || stop) && unsynced {
                if let Err(e) = file.sync_data() {
                    error!(error = %e, "fsync of the write log failed");
                    self.failed.store(true, Ordering::Release);
                    return;
                }
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
                last_sync = Instant::now();
                unsynced = false;
            }
            if !unsynced {
                let written = self.written.load(Ordering::Acquire);
                if self.durable.swap(written, Ordering::AcqRel) != written {
                    self.gate.set_durable(written);
                }
            }
            if stop && self.q.lock().buf.is_empty() {
                return;
            }
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.thread.get_mut().is_some() {
            warn!("log writer dropped without stop");
        }
    }
}
