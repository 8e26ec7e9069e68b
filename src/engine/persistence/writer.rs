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
//!
//! A write or fsync that fails (a full disk: ENOSPC, or any I/O error) does not stop the thread.
//! The refused batch is kept (a partly written record is cut off the file) and written again
//! every [`RETRY_INTERVAL`], before anything queued after it; meanwhile [`LogWriter::write_error`]
//! is Some, and the engine refuses write commands with `-MISCONF` as Redis does, and the reply
//! gate fails the replies waiting for offsets the log cannot reach (they would never be
//! released). The first attempt that succeeds clears the error: writes are accepted again, and
//! replica senders, which send only written bytes, go on from where they stopped.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tracing::{error, warn};

use super::{io_err, record, segment_path, PersistError};
use crate::engine::persistence::gate::ReplyGate;

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
    /// The time index the archiver needs for point-in-time restores (None: not kept).
    times: Option<TimeIndex>,
}

/// When each record was appended, at millisecond granularity: `(end offset, ms)` entries in
/// stream order, the records in `[previous end, end)` appended during millisecond `ms`. Kept
/// only while an archiver drains it (see `server::archiver`); records appended before it was
/// enabled are labelled with the time it was (an upper bound of when they were appended).
#[derive(Debug)]
struct TimeIndex {
    /// Records before this offset were appended before `from_ms`.
    from: u64,
    from_ms: i64,
    entries: std::collections::VecDeque<(u64, i64)>,
}

/// More entries than this (an archiver that cannot upload for a long time) and the newest one
/// absorbs the next records, labelled with the latest time: a restore to a moment inside it
/// then stops before it rather than including a write made after that moment.
const TIME_INDEX_CAP: usize = 1 << 20;

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
    /// The last write or fsync failed and has not succeeded since (see
    /// [`LogWriter::write_error`]).
    pub failed: AtomicBool,
    /// The OS's text of the last failure, while `failed`.
    error: Mutex<Option<String>>,
    /// Failed writes and fsyncs since start (INFO `log_write_errors`).
    pub write_errors: AtomicU64,
    pub fsyncs: AtomicU64,
    /// How long each successful fsync took (the Prometheus endpoint's histogram).
    pub fsync_latency: crate::engine::latency::AtomicLatency,
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
                times: None,
            }),
            cond: Condvar::new(),
            written: AtomicU64::new(offset),
            written_tx: tokio::sync::watch::channel(offset).0,
            durable: AtomicU64::new(offset),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            write_errors: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            fsync_latency: Default::default(),
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
        let end = q.end;
        if let Some(t) = &mut q.times {
            // A truncated log (an old master cut back to its new master's history) appends
            // again below entries of the discarded tail: they describe nothing now.
            while t.entries.back().is_some_and(|e| e.0 > offset) {
                t.entries.pop_back();
            }
            let ms = wall_ms();
            let full = t.entries.len() >= TIME_INDEX_CAP;
            match t.entries.back_mut() {
                Some(last) if last.1 >= ms || full => {
                    last.0 = end;
                    last.1 = last.1.max(ms);
                }
                _ => t.entries.push_back((end, ms)),
            }
        }
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

    /// Wake the writer now (a replica about to acknowledge waits for what is queued).
    pub fn wake(&self) {
        self.cond.notify_one();
    }

    /// Start keeping the time index (idempotent). The archiver calls it on the current writer.
    pub fn track_times(&self) {
        let mut q = self.q.lock();
        if q.times.is_none() {
            let from = q.end;
            q.times = Some(TimeIndex {
                from,
                from_ms: wall_ms(),
                entries: Default::default(),
            });
        }
    }

    /// The time index for `[from, upto)`, as `(end offset, ms)` entries ending at `upto`,
    /// forgetting what ends at or before `upto` (an entry that spans `upto` is kept for the
    /// rest of it). Empty when no index is kept.
    pub fn take_times(&self, from: u64, upto: u64) -> Vec<(u64, i64)> {
        let mut q = self.q.lock();
        let Some(t) = &mut q.times else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if from < t.from {
            out.push((upto.min(t.from), t.from_ms));
        }
        while let Some(&(end, ms)) = t.entries.front() {
            if end <= from {
                t.entries.pop_front();
                continue;
            }
            if end <= upto {
                out.push((end, ms));
                t.entries.pop_front();
            } else {
                out.push((upto, ms));
                break;
            }
        }
        // Records the index does not cover (none expected): labelled now, an upper bound.
        if out.last().is_none_or(|e| e.0 < upto) {
            out.push((upto, wall_ms()));
        }
        out.dedup_by_key(|e| e.0);
        out
    }

    /// Forget the time index up to `upto` (a replica: its master archived that far).
    pub fn forget_times(&self, upto: u64) {
        let mut q = self.q.lock();
        if let Some(t) = &mut q.times {
            while t.entries.front().is_some_and(|e| e.0 <= upto) {
                t.entries.pop_front();
            }
        }
    }

    /// The time the oldest record after `from` was appended, if known (archive lag).
    pub fn time_after(&self, from: u64) -> Option<i64> {
        let q = self.q.lock();
        let t = q.times.as_ref()?;
        if from < t.from {
            return Some(t.from_ms);
        }
        t.entries.iter().find(|e| e.0 > from).map(|e| e.1)
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

    pub fn policy(&self) -> FsyncPolicy {
        self.q.lock().policy
    }

    /// Stream offset after the last queued record.
    pub fn end(&self) -> u64 {
        self.q.lock().end
    }

    /// The writer thread. It never exits on an I/O error: a batch the disk refused is kept
    /// and written again every [`RETRY_INTERVAL`] until it fits (see [`LogWriter::write_error`]
    /// for what the engine does meanwhile). It exits only when stopped.
    fn run(&self, dir: PathBuf, file: File) {
        let mut seg = Segment {
            dir,
            file,
            size: 0,
            dirty_tail: false,
        };
        let mut last_sync = Instant::now();
        let mut unsynced = false;
        // A batch the disk refused: written again before anything queued after it, so records
        // reach the file in stream order.
        let mut retry: Option<Batch> = None;
        let mut next_attempt = Instant::now();
        loop {
            let (batch, policy, stop) = {
                let mut q = self.q.lock();
                if self.failed.load(Ordering::Acquire) {
                    // Failing: wait for the next attempt (appends wake the condvar, so wait
                    // for the deadline itself). A stop makes one last attempt at once.
                    while !q.stop && Instant::now() < next_attempt {
                        self.cond.wait_until(&mut q, next_attempt);
                    }
                } else if q.buf.is_empty() && !q.stop && !self.force_sync.load(Ordering::Acquire) {
                    self.cond.wait_for(&mut q, Duration::from_millis(200));
                }
                let batch = match retry.take() {
                    Some(b) => b,
                    None => Batch {
                        buf: std::mem::take(&mut q.buf),
                        first: q.buf_first,
                        end: q.end,
                        split: q.split.take(),
                    },
                };
                (batch, q.policy, q.stop)
            };
            let mut error = None;
            if !batch.buf.is_empty() {
                let delay = self.write_delay_us.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_micros(delay));
                }
                match seg.write_batch(&batch) {
                    Ok(()) => {
                        self.written.store(batch.end, Ordering::Release);
                        if self.written_tx.receiver_count() > 0 {
                            self.written_tx.send_replace(batch.end);
                        }
                        unsynced = true;
                    }
                    Err((rest, e)) => {
                        retry = Some(rest);
                        error = Some(e);
                    }
                }
            }
            let force = self.force_sync.swap(false, Ordering::AcqRel);
            let due = match policy {
                FsyncPolicy::Always => unsynced,
                FsyncPolicy::EverySec => unsynced && last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if error.is_none() && (due || force || stop) && unsynced {
                let started = Instant::now();
                match seg.file.sync_data() {
                    Ok(()) => {
                        self.fsyncs.fetch_add(1, Ordering::Relaxed);
                        self.fsync_latency
                            .record_us(started.elapsed().as_micros() as u64);
                        last_sync = Instant::now();
                        unsynced = false;
                    }
                    // Kept unsynced: the fsync is tried again with the next attempt. (Linux may
                    // have dropped the dirty pages a failed fsync covered, so a later fsync that
                    // succeeds does not prove they reached the disk; Redis exits under
                    // `always` here. We refuse writes meanwhile and count on the retry: a full
                    // disk, the case met in practice, fails the write, not the fsync.)
                    Err(e) => error = Some(e),
                }
            }
            match error {
                Some(e) => {
                    self.note_failure(&e);
                    next_attempt = Instant::now() + RETRY_INTERVAL;
                }
                None => self.note_success(),
            }
            if !unsynced {
                let written = self.written.load(Ordering::Acquire);
                if self.durable.swap(written, Ordering::AcqRel) != written {
                    self.gate.set_durable(written);
                }
            }
            if stop && (self.q.lock().buf.is_empty() || retry.is_some()) {
                if retry.is_some() {
                    error!("write log stopped with records the disk refused: they are lost");
                }
                return;
            }
        }
    }

    /// A write or fsync failed: refuse writes (the engine checks [`LogWriter::write_error`]),
    /// fail the replies waiting for offsets the log cannot reach, and say so once.
    fn note_failure(&self, e: &std::io::Error) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let text = os_error_text(e);
        *self.error.lock() = Some(text.clone());
        if !self.failed.swap(true, Ordering::AcqRel) {
            error!(error = %text, "error writing to the write log: write commands are refused until it can be written again (retried every second)");
        }
        self.gate
            .set_log_failed_at(Some(self.written.load(Ordering::Acquire)));
    }

    /// A pass with no error: if the log was failing, it works again.
    fn note_success(&self) {
        if self.failed.swap(false, Ordering::AcqRel) {
            *self.error.lock() = None;
            self.gate.set_log_failed_at(None);
            warn!("write log error looks solved: write commands are accepted again");
        }
    }

    /// Whether the log cannot be written now (then [`LogWriter::write_error`] says why): one
    /// atomic load, for the check every write command makes.
    #[inline]
    pub fn write_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The OS's text of the error that makes the log unwritable (`No space left on device`),
    /// or None when it works. While Some, write commands are refused with `-MISCONF`.
    pub fn write_error(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.error.lock().clone()
    }
}

/// How long the writer waits before writing a refused batch again (Redis retries from its
/// once-a-second cron).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// `No space left on device` for an OS error (strerror, as Redis prints it), without the
/// ` (os error 28)` Rust appends; other errors as they display.
pub fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_string)
            .unwrap_or(text),
        None => text,
    }
}

/// Records taken from the queue to be written together.
#[derive(Debug)]
struct Batch {
    /// Whole encoded records.
    buf: Vec<u8>,
    /// Stream offset of the first record.
    first: u64,
    /// Stream offset after the last record.
    end: u64,
    /// Position in `buf` where a new segment starts (a snapshot's offset).
    split: Option<usize>,
}

/// The segment being appended to.
struct Segment {
    dir: PathBuf,
    file: File,
    /// Bytes of whole records in the file: where the next record goes.
    size: u64,
    /// A failed write may have left part of a record after `size`.
    dirty_tail: bool,
}

impl Segment {
    /// Write `b` (rotating first to a new segment where it says, or when this one is full).
    /// On an error, returns what is still to be written, as a batch of whole records, and
    /// the error.
    fn write_batch(&mut self, b: &Batch) -> Result<(), (Batch, std::io::Error)> {
        // Records before the rotation point go to the current segment, the rest to a new one
        // named by the offset of its first record.
        let split = match b.split {
            Some(at) => Some(at),
            None if self.size >= SEGMENT_BYTES => Some(0),
            None => None,
        };
        let at = split.unwrap_or(b.buf.len());
        let (head, tail) = b.buf.split_at(at);
        if !head.is_empty() {
            if let Err(e) = self.append(head) {
                return Err((
                    Batch {
                        buf: b.buf.clone(),
                        first: b.first,
                        end: b.end,
                        split: b.split,
                    },
                    e,
                ));
            }
        }
        let Some(at) = split else {
            return Ok(());
        };
        // From here on, what is left to write is the tail, starting a new segment.
        let tail_first = if at == 0 {
            b.first
        } else {
            let mut first = [0u8; 8];
            first.copy_from_slice(&b.buf[at + 8..at + 16]);
            u64::from_le_bytes(first)
        };
        let rest = |e| {
            (
                Batch {
                    buf: tail.to_vec(),
                    first: tail_first,
                    end: b.end,
                    split: Some(0),
                },
                e,
            )
        };
        let _ = self.file.sync_data();
        let path = segment_path(&self.dir, tail_first);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(rest)?;
        self.file = file;
        self.size = 0;
        self.dirty_tail = false;
        super::sync_dir(&self.dir);
        if !tail.is_empty() {
            self.append(tail).map_err(|e| {
                let (mut r, e) = rest(e);
                // The new segment exists now: the retry appends to it.
                r.split = None;
                (r, e)
            })?;
        }
        Ok(())
    }

    /// Append whole records. A failed write can leave part of them in the file: it is cut off
    /// before the next attempt, so the file only ever grows by whole records (a crash while
    /// failing leaves at most a torn last record, which recovery cuts anyway).
    fn append(&mut self, part: &[u8]) -> std::io::Result<()> {
        if self.dirty_tail {
            use std::io::Seek;
            self.file.set_len(self.size)?;
            self.file.seek(std::io::SeekFrom::Start(self.size))?;
            self.dirty_tail = false;
        }
        if let Err(e) = self.file.write_all(part) {
            self.dirty_tail = true;
            return Err(e);
        }
        self.size += part.len() as u64;
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.thread.get_mut().is_some() {
            warn!("log writer dropped without stop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time index covers exactly what was asked, in order, ending at the limit; an entry
    /// that spans the limit keeps the rest for the next take; records appended before the
    /// index started are labelled with its start.
    #[test]
    fn the_time_index_covers_every_record_once() {
        let dir = crate::engine::persistence::scratch_dir("times");
        let w = LogWriter::start(
            dir.clone(),
            0,
            FsyncPolicy::No,
            Arc::new(ReplyGate::default()),
        )
        .unwrap();
        w.append(0, b"before");
        let t0 = wall_ms();
        w.track_times();
        let mut off = 6;
        for i in 0..200u64 {
            let p = format!("record-{i}");
            w.append(off, p.as_bytes());
            off += p.len() as u64;
        }
        let t1 = wall_ms();
        let first = w.take_times(0, 50);
        assert_eq!(
            first[0],
            (6, first[0].1),
            "the part before tracking ends at 6"
        );
        assert!(first[0].1 >= t0 && first[0].1 <= t1);
        assert_eq!(first.last().unwrap().0, 50);
        let rest = w.take_times(50, off);
        assert_eq!(rest.last().unwrap().0, off);
        for pair in first.windows(2).chain(rest.windows(2)) {
            assert!(pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1, "{pair:?}");
        }
        assert!(rest.iter().all(|(_, ms)| *ms >= t0 && *ms <= t1));
        // Taken: the index holds nothing more before `off`.
        assert_eq!(w.time_after(off), None);
        w.stop();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
