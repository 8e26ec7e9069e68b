//! RDB files, as redis-server writes `dump.rdb` and sends a full sync: the `REDIS0010` header,
//! aux fields, functions, then per database a SELECTDB/RESIZEDB and its keys (each with an
//! optional expiry), EOF and a CRC64 of everything before it. Values are encoded and decoded by
//! the DUMP/RESTORE value codec ([`super::rdb`]), one type at a time, so a type it learns (the
//! stream) is a type files carry. Pure: bytes in, items out; bytes out to any `Write`.
//!
//! Reading accepts RDB versions 1 to 11 (Redis 2.x to 7.2; the opcodes and types of each that
//! the value codec knows); writing produces version 10, which redis-server 7.0 and later load.

use std::io::Write;

use thiserror::Error;

use super::rdb::{self, BadData};
use super::value::Value;

/// The version written (Redis 7.0).
pub const WRITE_VERSION: u16 = 10;
/// The newest version read. Redis 7.2 writes 11: the same opcodes, plus types (listpack sets,
/// stream v3) that the value codec accepts or names in a clear error.
pub const READ_VERSION_MAX: u16 = 11;

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION_PRE_GA: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

/// Why an RDB file could not be read. Every variant says where, so an operator can tell a
/// truncated copy from a file of a newer Redis.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RdbFileError {
    #[error("not an RDB file (it does not start with REDIS and a version)")]
    NotRdb,
    #[error("RDB version {0} is not supported (this engine reads 1 to {READ_VERSION_MAX})")]
    Version(u32),
    #[error("RDB file truncated at byte {0}")]
    Truncated(usize),
    #[error("corrupt RDB file at byte {pos}: {reason}")]
    Corrupt { pos: usize, reason: String },
    #[error("RDB checksum mismatch: the file says {stored:016x}, its bytes give {computed:016x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("key {key} in db {db} has RDB type {type_byte} ({type_name}), which this engine cannot load")]
    UnsupportedType {
        db: usize,
        key: String,
        type_byte: u8,
        type_name: &'static str,
    },
    #[error("key {key} in db {db} (RDB type {type_byte}) at byte {pos}: {reason}")]
    BadValue {
        db: usize,
        key: String,
        type_byte: u8,
        pos: usize,
        reason: &'static str,
    },
    #[error("{0}")]
    Rejected(String),
}

/// One thing an RDB file holds, in file order.
#[derive(Debug)]
pub enum Item {
    /// An aux field (`redis-ver`, `repl-id`, `repl-offset`, ...).
    Aux { key: Vec<u8>, value: Vec<u8> },
    /// A function library's code (FUNCTION LOAD's argument).
    Function(Vec<u8>),
    /// A key. `expire_at_ms` is 0 without an expiry.
    Entry {
        db: usize,
        key: Vec<u8>,
        value: Value,
        expire_at_ms: i64,
    },
}

/// What reading a whole file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub version: u16,
    pub keys: u64,
    /// False when the file was written without a checksum (Redis's `rdbchecksum no`: zero).
    pub checksum_verified: bool,
    /// Bytes of the file up to and including the checksum (a full sync's payload may be
    /// followed by nothing else; a file by nothing at all).
    pub len: usize,
}

/// The name Redis gives an RDB type, for errors about types this engine does not hold.
pub fn type_name(t: u8) -> &'static str {
    match t {
        0 => "string",
        1 | 10 | 14 | 18 => "list",
        2 | 11 | 20 => "set",
        3 | 5 | 12 | 17 => "zset",
        4 | 9 | 13 | 16 => "hash",
        6 | 7 => "module",
        15 | 19 | 21 => "stream",
        _ => "unknown",
    }
}

/// A key for an error message: printable ASCII as it is, other bytes escaped.
fn show_key(key: &[u8]) -> String {
    format!("\"{}\"", key.escape_ascii())
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, e: BadData) -> RdbFileError {
        if e.0 == "truncated" {
            RdbFileError::Truncated(self.pos)
        } else {
            RdbFileError::Corrupt {
                pos: self.pos,
                reason: e.0.to_string(),
            }
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbFileError> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or(RdbFileError::Truncated(self.pos))?;
        self.pos += n;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, RdbFileError> {
        Ok(self.take(1)?[0])
    }
    fn string(&mut self) -> Result<Vec<u8>, RdbFileError> {
        let (s, end) = rdb::read_string_at(self.buf, self.pos).map_err(|e| self.err(e))?;
        self.pos = end;
        Ok(s)
    }
    fn len(&mut self) -> Result<u64, RdbFileError> {
        let (n, end) = rdb::read_len_at(self.buf, self.pos).map_err(|e| self.err(e))?;
        self.pos = end;
        Ok(n)
    }
}

/// Read a whole RDB file, handing each item to `visit` in order (an error from `visit` stops
/// the read and is returned as [`RdbFileError::Rejected`]). The checksum is verified before
/// anything is handed over, so a damaged file loads nothing.
pub fn read(
    data: &[u8],
    mut visit: impl FnMut(Item) -> Result<(), String>,
) -> Result<Summary, RdbFileError> {
    let summary = verify(data)?;
    let mut c = Cursor { buf: data, pos: 9 };
    let mut db = 0usize;
    let mut expire_at_ms = 0i64;
    let mut keys = 0u64;
    loop {
        let op = c.byte()?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => {
                let n = c.len()?;
                db = usize::try_from(n).map_err(|_| RdbFileError::Corrupt {
                    pos: c.pos,
                    reason: format!("database {n}"),
                })?;
            }
            OP_RESIZEDB => {
                c.len()?;
                c.len()?;
            }
            OP_AUX => {
                let key = c.string()?;
                let value = c.string()?;
                visit(Item::Aux { key, value }).map_err(RdbFileError::Rejected)?;
            }
            OP_EXPIRETIME_MS => {
                let b = c.take(8)?;
                expire_at_ms = i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
            }
            OP_EXPIRETIME => {
                let b = c.take(4)?;
                expire_at_ms = i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as i64 * 1000;
            }
            OP_FREQ => {
                c.take(1)?;
            }
            OP_IDLE => {
                c.len()?;
            }
            OP_FUNCTION2 => {
                let code = c.string()?;
                visit(Item::Function(code)).map_err(RdbFileError::Rejected)?;
            }
            OP_FUNCTION_PRE_GA => {
                return Err(RdbFileError::Corrupt {
                    pos: c.pos,
                    reason: "functions in the pre-release (7.0 RC) format are not supported".into(),
                })
            }
            OP_MODULE_AUX => {
                return Err(RdbFileError::Corrupt {
                    pos: c.pos,
                    reason: "module data (this engine has no modules)".into(),
                })
            }
            t => {
                let key = c.string()?;
                let start = c.pos;
                let (value, used) =
                    rdb::load_typed_value(t, &data[start..]).map_err(|e| match e.0 {
                        "unsupported RDB type" => RdbFileError::UnsupportedType {
                            db,
                            key: show_key(&key),
                            type_byte: t,
                            type_name: type_name(t),
                        },
                        reason => RdbFileError::BadValue {
                            db,
                            key: show_key(&key),
                            type_byte: t,
                            pos: start,
                            reason,
                        },
                    })?;
                c.pos = start + used;
                keys += 1;
                visit(Item::Entry {
                    db,
                    key,
                    value,
                    expire_at_ms,
                })
                .map_err(RdbFileError::Rejected)?;
                expire_at_ms = 0;
            }
        }
    }
    Ok(Summary { keys, ..summary })
}

/// Whether the value codec decodes RDB type `t` (asked with an empty value: any answer but
/// "unsupported" means it knows the type).
#[cfg(test)]
fn known_type(t: u8) -> bool {
    !matches!(
        rdb::load_typed_value(t, &[]),
        Err(BadData("unsupported RDB type"))
    )
}

/// Check the header and the checksum; returns the version and the file's length.
fn verify(data: &[u8]) -> Result<Summary, RdbFileError> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err(RdbFileError::NotRdb);
    }
    let version: u32 = std::str::from_utf8(&data[5..9])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(RdbFileError::NotRdb)?;
    if version == 0 || version > READ_VERSION_MAX as u32 {
        return Err(RdbFileError::Version(version));
    }
    // The EOF opcode is the last byte before the checksum (version 5 on), or the last byte.
    let (body_len, stored) = if version >= 5 {
        if data.len() < 9 + 1 + 8 {
            return Err(RdbFileError::Truncated(data.len()));
        }
        let n = data.len() - 8;
        (
            n,
            u64::from_le_bytes(data[n..].try_into().unwrap_or([0; 8])),
        )
    } else {
        (data.len(), 0)
    };
    if data[body_len - 1] != OP_EOF {
        return Err(RdbFileError::Truncated(data.len()));
    }
    let mut checksum_verified = false;
    if version >= 5 && stored != 0 {
        let computed = rdb::crc64(&data[..body_len]);
        if computed != stored {
            return Err(RdbFileError::Checksum { stored, computed });
        }
        checksum_verified = true;
    }
    Ok(Summary {
        version: version as u16,
        keys: 0,
        checksum_verified,
        len: data.len(),
    })
}

/// Writes an RDB file to `W`, checksumming as it goes. Values are written in the plain
/// encodings of the value codec (every Redis since 2.x loads them; redis-server converts them to
/// its compact encodings as it loads).
pub struct RdbWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: u64,
    value: Vec<u8>,
    pub bytes: u64,
}

/// Bytes buffered before they are checksummed and written.
const FLUSH_AT: usize = 64 << 10;

impl<W: Write> RdbWriter<W> {
    /// The header and aux fields (name, value).
    pub fn new(out: W, aux: &[(&str, String)]) -> std::io::Result<Self> {
        let mut w = RdbWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            crc: 0,
            value: Vec::new(),
            bytes: 0,
        };
        w.buf
            .extend_from_slice(format!("REDIS{WRITE_VERSION:04}").as_bytes());
        for (k, v) in aux {
            w.buf.push(OP_AUX);
            rdb::write_string(&mut w.buf, k.as_bytes());
            rdb::write_string(&mut w.buf, v.as_bytes());
        }
        Ok(w)
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc = rdb::crc64_update(self.crc, &self.buf);
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// A function library's code.
    pub fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.push(OP_FUNCTION2);
        rdb::write_len(&mut self.buf, code.len() as u64);
        self.buf.extend_from_slice(code);
        self.maybe_flush()
    }

    /// Start a database: SELECTDB and its sizes (which let the loader presize its tables).
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> std::io::Result<()> {
        self.buf.push(OP_SELECTDB);
        rdb::write_len(&mut self.buf, db as u64);
        self.buf.push(OP_RESIZEDB);
        rdb::write_len(&mut self.buf, keys);
        rdb::write_len(&mut self.buf, expires);
        self.maybe_flush()
    }

    /// One key of the current database; `expire_at_ms` 0 for none.
    pub fn entry(&mut self, key: &[u8], value: &Value, expire_at_ms: i64) -> std::io::Result<()> {
        if expire_at_ms != 0 {
            self.buf.push(OP_EXPIRETIME_MS);
            self.buf.extend_from_slice(&expire_at_ms.to_le_bytes());
        }
        // The codec writes the type byte and the value together; in a file the key goes
        // between them.
        self.value.clear();
        rdb::encode_value(value, &mut self.value);
        self.buf.push(self.value[0]);
        rdb::write_len(&mut self.buf, key.len() as u64);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&self.value[1..]);
        self.maybe_flush()
    }

    /// EOF and the checksum; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(OP_EOF);
        self.flush_buf()?;
        let crc = self.crc.to_le_bytes();
        self.out.write_all(&crc)?;
        self.bytes += 8;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::storage::CompactBytes;

    fn sample() -> Vec<u8> {
        let mut w = RdbWriter::new(Vec::new(), &[("redis-ver", "7.0.15".into())]).unwrap();
        w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            .unwrap();
        w.select_db(0, 2, 1).unwrap();
        w.entry(b"a", &Value::str(b"hello"), 0).unwrap();
        w.entry(b"n", &Value::str(b"12345"), 1_900_000_000_000)
            .unwrap();
        w.select_db(3, 1, 0).unwrap();
        let mut l = crate::engine::storage::list::ListValue::default();
        l.items.push_back(CompactBytes::new(b"x"));
        w.entry(b"l", &Value::List(Box::new(l)), 0).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_written_file_reads_back_item_by_item() {
        let data = sample();
        let mut seen = Vec::new();
        let summary = read(&data, |item| {
            seen.push(match item {
                Item::Aux { key, value } => {
                    format!("aux {}={}", key.escape_ascii(), value.escape_ascii())
                }
                Item::Function(code) => format!("function {}", code.len()),
                Item::Entry {
                    db,
                    key,
                    value,
                    expire_at_ms,
                } => format!(
                    "{db} {} {} {expire_at_ms}",
                    key.escape_ascii(),
                    value.value_type().name()
                ),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "aux redis-ver=7.0.15",
                "function 68",
                "0 a string 0",
                "0 n string 1900000000000",
                "3 l list 0"
            ]
        );
        assert_eq!(summary.keys, 3);
        assert!(summary.checksum_verified);
        assert_eq!(summary.version, 10);
    }

    #[test]
    fn damage_anywhere_is_an_error_not_a_panic() {
        let data = sample();
        for cut in 0..data.len() {
            assert!(read(&data[..cut], |_| Ok(())).is_err(), "cut at {cut}");
        }
        for i in 9..data.len() - 8 {
            let mut d = data.clone();
            d[i] ^= 0x5a;
            assert!(
                matches!(
                    read(&d, |_| Ok(())),
                    Err(RdbFileError::Checksum { .. } | RdbFileError::Truncated(_))
                ),
                "flip at {i}"
            );
        }
        // Without the checksum (zero), damage reaches the parser, which must still not panic.
        for i in 9..data.len() - 9 {
            let mut d = data.clone();
            let n = d.len();
            d[n - 8..].fill(0);
            d[i] ^= 0xff;
            let _ = read(&d, |_| Ok(()));
        }
    }

    #[test]
    fn a_stream_key_is_named_in_the_error() {
        // REDIS0010, a key "s" of type 19 (stream listpacks 2), garbage, EOF, no checksum.
        let mut d = b"REDIS0010\x13\x01s\x00\x00\xff".to_vec();
        d.extend_from_slice(&[0; 8]);
        let e = read(&d, |_| Ok(())).unwrap_err();
        if known_type(19) {
            // The value codec knows streams now: the garbage is a bad value.
            assert!(matches!(e, RdbFileError::BadValue { .. }), "{e}");
        } else {
            assert_eq!(
                e.to_string(),
                "key \"s\" in db 0 has RDB type 19 (stream), which this engine cannot load"
            );
        }
    }

    #[test]
    fn newer_versions_and_other_files_are_refused() {
        assert_eq!(
            read(b"REDIS0012\xff\0\0\0\0\0\0\0\0", |_| Ok(())),
            Err(RdbFileError::Version(12))
        );
        assert_eq!(read(b"RPSNAP 1 0", |_| Ok(())), Err(RdbFileError::NotRdb));
    }
}
