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
use crate::engine::storage::{CompactBytes, Entry, Value};

/// Elements per command for big collections (keeps each command small).
const CHUNK: usize = 128;

/// Append the commands recreating `key` to `out`.
pub fn serialise_entry(key: &CompactBytes, e: &Entry, out: &mut Vec<u8>) {
    let k = key.to_bytes();
    let b = |c: &CompactBytes| c.to_bytes();
    match &e.value {
        Value::Str(s) => encode_command(&[Bytes::from_static(b"SET"), k.clone(), b(s)], out),
        Value::List(l) => {
            let items: Vec<&CompactBytes> = l.items.iter().collect();
            for chunk in items.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"RPUSH"), k.clone()];
                args.extend(chunk.iter().map(|i| b(i)));
                encode_command(&args, out);
            }
        }
        Value::Hash(h) => {
            let pairs: Vec<_> = h.map.iter().collect();
            for chunk in pairs.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"HSET"), k.clone()];
                for (f, v) in chunk {
                    args.push(b(f));
                    args.push(b(v));
                }
                encode_command(&args, out);
            }
        }
        Value::Set(s) => {
            let members: Vec<_> = s.members.iter().collect();
            for chunk in members.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"SADD"), k.clone()];
                args.extend(chunk.iter().map(|m| b(m)));
                encode_command(&args, out);
            }
        }
        Value::ZSet(z) => {
            let pairs: Vec<_> = z.iter().collect();
            for chunk in pairs.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"ZADD"), k.clone()];
                for (m, score) in chunk {
                    args.push(Bytes::from(format_score(*score)));
                    args.push(b(m));
                }
                encode_command(&args, out);
            }
        }
    }
    if e.expire_at != 0 {
        encode_command(
            &[
                Bytes::from_static(b"PEXPIREAT"),
                k,
                Bytes::from(e.expire_at.to_string()),
            ],
            out,
        );
    }
}

/// A score as text that parses back to exactly the same double.
fn format_score(s: f64) -> String {
    if s == f64::INFINITY {
        "inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        // Rust's shortest round-trip representation.
        format!("{s:?}")
    }
}

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
    buf: Vec<u8>,
    pub bytes: u64,
}

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
            buf: Vec::new(),
            bytes: 0,
        };
        let db = db.map(|d| d as i64).unwrap_or(-1);
        s.record(format!("RPSNAP 1 {offset} {db}").as_bytes())?;
        Ok(s)
    }

    fn record(&mut self, payload: &[u8]) -> Result<(), PersistError> {
        self.buf.clear();
        record::encode(self.seq, payload, &mut self.buf);
        self.seq += 1;
        self.bytes += self.buf.len() as u64;
        self.file.write_all(&self.buf).map_err(io_err(&self.tmp))
    }

    /// Append commands (whole commands only).
    pub fn commands(&mut self, payload: &[u8]) -> Result<(), PersistError> {
        if payload.is_empty() {
            return Ok(());
        }
        self.record(payload)
    }

    pub fn finish(mut self) -> Result<PathBuf, PersistError> {
        self.record(b"END")?;
        self.file.flush().map_err(io_err(&self.tmp))?;
        let f = self.file.get_ref();
        f.sync_all().map_err(io_err(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))?;
        super::sync_dir(self.path.parent().unwrap_or(Path::new(".")));
        Ok(self.path)
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
