//! The replication stream: every effect, encoded as Redis encodes its replication stream (RESP
//! multibulk commands, with a SELECT whenever the database changes), counted in bytes. A byte
//! offset of this stream is a replication offset; the same bytes go to the persistence log and
//! to replicas, so a node's log offsets equal its master's. Pure apart from handing records to
//! the log writer and notifying replica senders.
//!
//! A MULTI … EXEC batch (transactions, scripts) is one unit: one log record, sent whole, so
//! recovery and replicas apply all of it or none of it.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::engine::persistence::writer::LogWriter;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::commands::{encode_command, encoded_len};

/// Where effects go: the replication stream, which is also the persistence log (see
/// `replication::stream::Stream`). Called under the state lock, in execution order, once per
/// effect; MULTI … EXEC batches arrive as MULTI, the effects, EXEC. `db` is the database the effect
/// applies to; effects are deterministic (see `docs/architecture.md`).
pub trait WriteLog: Send {
    fn append(&mut self, db: usize, args: &[Arg]);
}

/// The write log of an engine with persistence and replication off.
#[derive(Debug, Default)]
pub struct NoWriteLog;

impl WriteLog for NoWriteLog {
    fn append(&mut self, _db: usize, _args: &[Arg]) {}
}

fn encode_select(db: usize, out: &mut Vec<u8>) {
    encode_command(
        &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
        out,
    );
}

/// The most recent stream bytes, kept in memory to serve replicas that are only slightly behind.
/// Like Redis's backlog it exists only once replication is in use (a replica attached, or this
/// node follows a master): a standalone cache keeps no copy of its writes in memory.
#[derive(Debug, Default)]
pub struct Backlog {
    buf: VecDeque<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    cap: usize,
    active: bool,
}

impl Backlog {
    pub fn new(start: u64, cap: usize) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            start,
            cap,
            active: false,
        }
    }
    /// Start keeping bytes (from the current offset on).
    pub fn activate(&mut self) {
        self.active = true;
    }
    pub fn is_active(&self) -> bool {
        self.active
    }
    /// Bytes that were counted but not kept (inactive backlog): its start moves past them.
    pub fn push_len(&mut self, len: usize) {
        debug_assert!(!self.active);
        self.start += len as u64;
    }
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.active {
            self.start += bytes.len() as u64;
            return;
        }
        self.buf.extend(bytes);
        if self.buf.len() > self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
            self.start += excess as u64;
        }
    }
    pub fn start(&self) -> u64 {
        self.start
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }
    /// Bytes `[from, from + max)` if `from` is still held.
    pub fn read(&self, from: u64, max: usize) -> Option<Vec<u8>> {
        let end = self.start + self.buf.len() as u64;
        if from < self.start || from > end {
            return None;
        }
        let a = (from - self.start) as usize;
        let b = (a + max).min(self.buf.len());
        Some(self.buf.range(a..b).copied().collect())
    }
    /// Forget everything and restart at `start` (after a full sync or a truncation).
    pub fn reset(&mut self, start: u64) {
        self.buf.clear();
        self.start = start;
    }
}

/// The node's stream: its offset, the database context of its last command, and where its
/// bytes go.
pub struct Stream {
    /// Bytes of stream so far: `master_repl_offset`.
    pub offset: u64,
    /// Database of the last command in the stream (None: the next command must SELECT).
    pub cur_db: Option<usize>,
    batch: Option<Vec<u8>>,
    /// Reused encoding buffer for single-command units.
    scratch: Vec<u8>,
    pub backlog: Backlog,
    /// The persistence log (None with `persistence off`).
    pub log: Option<Arc<LogWriter>>,
    /// While a replica applies its master's stream (or recovery replays the log), the commands
    /// it executes must not produce effects of their own: the received bytes are appended as
    /// they are, so the offsets stay identical.
    pub suppress: bool,
    /// Stream offset after each append, for replica senders.
    pub new_data: watch::Sender<u64>,
    /// Units (records) appended since start.
    pub units: u64,
}

impl Stream {
    pub fn new(offset: u64, backlog_cap: usize) -> Stream {
        Stream {
            offset,
            cur_db: None,
            batch: None,
            scratch: Vec::new(),
            backlog: Backlog::new(offset, backlog_cap),
            log: None,
            suppress: false,
            new_data: watch::channel(offset).0,
            units: 0,
        }
    }

    /// Append one complete unit of stream bytes (already encoded).
    pub fn append_unit(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(log) = &self.log {
            log.append(self.offset, bytes);
        }
        self.backlog.push(bytes);
        self.offset += bytes.len() as u64;
        self.units += 1;
        // Only replica senders listen, and each reads `offset` under the state lock after
        // subscribing (under the lock too), so with no listener there is nobody to wake and
        // the notification (a mutex per waiter list) is skipped.
        if self.new_data.receiver_count() > 0 {
            self.new_data.send_replace(self.offset);
        }
    }

    /// Restart the stream at `offset` (full sync, truncation, recovery).
    pub fn reset(&mut self, offset: u64) {
        self.offset = offset;
        self.cur_db = None;
        self.batch = None;
        self.backlog.reset(offset);
        self.new_data.send_replace(offset);
    }

    fn encode_effect(&mut self, db: usize, args: &[Arg], out: &mut Vec<u8>) {
        if self.cur_db != Some(db) {
            encode_select(db, out);
            self.cur_db = Some(db);
        }
        encode_command(args, out);
    }
}

impl WriteLog for Stream {
    fn append(&mut self, db: usize, args: &[Arg]) {
        if self.suppress {
            return;
        }
        let name = args.first().map(|a| a.as_ref()).unwrap_or(b"");
        if name.eq_ignore_ascii_case(b"MULTI") {
            let mut buf = Vec::new();
            self.encode_effect(db, args, &mut buf);
            self.batch = Some(buf);
            return;
        }
        if let Some(mut buf) = self.batch.take() {
            self.encode_effect(db, args, &mut buf);
            if name.eq_ignore_ascii_case(b"EXEC") {
                self.append_unit(&buf);
            } else {
                self.batch = Some(buf);
            }
            return;
        }
        // Nobody reads these bytes: no persistence log, no backlog (no replica ever attached
        // and this node follows nobody), no MULTI batch open. Only the offset must move exactly
        // as if they had been encoded, so count them instead of writing them (a standalone
        // cache pays nothing per write for replication it does not use, as with Redis).
        if self.log.is_none() && !self.backlog.is_active() {
            let mut len = encoded_len(args);
            if self.cur_db != Some(db) {
                len += encoded_len(&[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())]);
                self.cur_db = Some(db);
            }
            self.backlog.push_len(len);
            self.offset += len as u64;
            self.units += 1;
            if self.new_data.receiver_count() > 0 {
                self.new_data.send_replace(self.offset);
            }
            return;
        }
        // One scratch buffer reused for every single-command unit: no allocation per write.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.encode_effect(db, args, &mut buf);
        self.append_unit(&buf);
        // A huge value must not stay pinned in memory by the scratch buffer.
        if buf.capacity() <= 64 * 1024 {
            self.scratch = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Arg {
        Arg::from(s.to_string())
    }

    #[test]
    fn encoded_len_matches_the_encoding() {
        let cases: Vec<Vec<Arg>> = vec![
            vec![b("PING")],
            vec![b("SET"), b("key"), Arg::from(vec![b'x'; 1234])],
            vec![b("DEL"), Arg::from_static(b"")],
            (0..12).map(|i| b(&"v".repeat(i * 37))).collect(),
            // Every length where the count of digits changes, both sides.
            [0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 100_000]
                .iter()
                .map(|&n| Arg::from(vec![b'y'; n]))
                .collect(),
            (0..1001).map(|_| Arg::from_static(b"a")).collect(),
        ];
        for args in cases {
            let mut out = Vec::new();
            encode_command(&args, &mut out);
            assert_eq!(encoded_len(&args), out.len());
        }
    }

    /// A write counted without encoding moves the offset exactly as an encoded one: a node
    /// that starts keeping its stream later (a replica attaches) agrees on positions.
    #[test]
    fn counted_and_encoded_writes_move_the_offset_alike() {
        let writes: Vec<(usize, Vec<Arg>)> = vec![
            (0, vec![b("SET"), b("a"), b("1")]),
            (3, vec![b("SET"), b("b"), b("22")]),
            (3, vec![b("MSET"), b("c"), b("3"), b("d"), b("4")]),
            (11, vec![b("DEL"), b("a")]),
        ];
        let mut counted = Stream::new(100, 1 << 20);
        let mut kept = Stream::new(100, 1 << 20);
        kept.backlog.activate();
        for (db, args) in &writes {
            counted.append(*db, args);
            kept.append(*db, args);
            assert_eq!(counted.offset, kept.offset);
        }
        assert_eq!(counted.backlog.start(), counted.offset);
        assert_eq!(kept.backlog.len() as u64, kept.offset - 100);
    }

    #[test]
    fn offsets_count_resp_bytes_with_select() {
        let mut s = Stream::new(0, 1 << 20);
        s.backlog.activate();
        s.append(0, &[b("SET"), b("k"), b("v")]);
        let first = s.offset;
        // SELECT 0 (23 bytes) + SET k v (27 bytes)
        assert_eq!(first, 23 + 27);
        s.append(0, &[b("DEL"), b("k")]);
        assert_eq!(s.offset, first + 20);
        s.append(1, &[b("DEL"), b("k")]);
        assert_eq!(s.offset, first + 20 + 23 + 20);
        assert_eq!(s.units, 3);
        let all = s.backlog.read(0, 1 << 20).unwrap();
        assert!(all.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n"));
    }

    #[test]
    fn a_transaction_is_one_unit() {
        let mut s = Stream::new(100, 1 << 20);
        s.append(0, &[b("MULTI")]);
        s.append(0, &[b("INCR"), b("a")]);
        assert_eq!(s.offset, 100);
        s.append(0, &[b("EXEC")]);
        assert_eq!(s.units, 1);
        assert!(s.offset > 100);
    }

    #[test]
    fn backlog_keeps_the_newest_bytes() {
        let mut bl = Backlog::new(10, 4);
        bl.push(b"xy");
        assert!(bl.read(10, 1).is_none(), "inactive: keeps nothing");
        bl = Backlog::new(10, 4);
        bl.activate();
        bl.push(b"abcdef");
        assert_eq!(bl.start(), 12);
        assert_eq!(bl.read(12, 10).unwrap(), b"cdef");
        assert_eq!(bl.read(14, 1).unwrap(), b"e");
        assert!(bl.read(11, 1).is_none());
        assert_eq!(bl.read(16, 5).unwrap(), b"");
    }
}
