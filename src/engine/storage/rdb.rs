//! Redis's DUMP payload format, so DUMP/RESTORE move values between redis-server and this
//! engine: one RDB-encoded value, the 2-byte RDB version, and a CRC64 (Jones polynomial, as
//! Redis's crc64.c) over both. Pure.
//!
//! Writing uses the plain, encoding-independent RDB types every Redis version loads (string,
//! list, set, hash, zset2), and stream-listpacks-2 for streams (see `rdb/stream.rs`). Reading accepts what redis-server 7.0 writes: strings (integer and
//! LZF-compressed forms), quicklist2 lists of listpacks, listpack hashes and sorted sets,
//! intsets, and the plain types; plus the ziplist encodings of Redis 3.2–6.2 payloads, which
//! redis-server 7.0 also accepts.

use super::compact::CompactBytes;
use super::hash::HashValue;
use super::list::ListValue;
use super::set::SetValue;
use super::value::Value;
use super::zset::ZSetValue;

mod stream;

/// RDB version written in payloads (Redis 7.0) and the newest one accepted.
pub const RDB_VERSION: u16 = 10;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
/// Hashes of Redis before 2.6 (RDB files only: DUMP of those versions did not exist).
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Redis 7.2's small sets (RDB 11), read so a 7.2 master's full sync loads.
const TYPE_SET_LISTPACK: u8 = 20;

/// Quicklist2 node containers.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

/// Special string encodings (length byte 0b11xxxxxx).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Why a payload could not be loaded (RESTORE answers "ERR Bad data format").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadData(pub &'static str);

type Result<T> = std::result::Result<T, BadData>;

// ---------------------------------------------------------------------------------------------
// CRC64 (Jones): reflected polynomial 0xad93d23594c935a9, init 0, no final xor.

const CRC64_POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

static CRC64_TABLE: std::sync::LazyLock<[u64; 256]> = std::sync::LazyLock::new(|| {
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut crc = i as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ CRC64_POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
        *slot = crc;
    }
    table
});

/// Redis's `crc64(0, data)`.
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

/// Redis's `crc64(crc, data)`: continues a checksum over more bytes (an RDB file is
/// checksummed as it is written).
pub fn crc64_update(crc: u64, data: &[u8]) -> u64 {
    let table = &*CRC64_TABLE;
    data.iter().fold(crc, |crc, &b| {
        table[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8)
    })
}

// ---------------------------------------------------------------------------------------------
// Writing.

pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string, as an integer encoding when it is a canonical 32-bit integer (as Redis does).
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = crate::engine::storage::number::parse_i64_strict(s) {
            if let Ok(v) = i8::try_from(n) {
                out.push(0xC0 | ENC_INT8);
                out.push(v as u8);
                return;
            }
            if let Ok(v) = i16::try_from(n) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
            if let Ok(v) = i32::try_from(n) {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    // Longer strings are LZF-compressed when that saves at least 4 bytes, as Redis does with
    // `rdbcompression yes` (its default; the engine has no switch for it).
    if s.len() > 20 {
        if let Some(packed) = lzf_compress(s, s.len() - 4) {
            out.push(0xC0 | ENC_LZF);
            write_len(out, packed.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// LZF compression into the format [`lzf_decompress`] reads (Redis's lzf_c.c format; not
/// byte-identical output, which the format does not require): greedy matches of 3 to 264
/// bytes found through a hash of the next 3 bytes, at distances up to 8192; literal runs of
/// up to 32 bytes. None when the result would exceed `max_out` bytes (not worth it).
pub fn lzf_compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    const HLOG: u32 = 14;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3); // 264
    const MAX_LIT: usize = 32;
    let mut table = vec![usize::MAX; 1 << HLOG];
    let hash = |p: usize| {
        let v = (input[p] as u32) << 16 | (input[p + 1] as u32) << 8 | input[p + 2] as u32;
        (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
    };
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(input.len()) + 1);
    let mut lit_start = 0;
    let flush_literals = |out: &mut Vec<u8>, lit: &[u8]| {
        for chunk in lit.chunks(MAX_LIT) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    };
    let mut i = 0;
    while i + 2 < input.len() {
        let h = hash(i);
        let cand = table[h];
        table[h] = i;
        if cand != usize::MAX && i - cand <= MAX_OFF && input[cand..cand + 3] == input[i..i + 3] {
            let max_len = (input.len() - i).min(MAX_REF);
            let mut len = 3;
            while len < max_len && input[cand + len] == input[i + len] {
                len += 1;
            }
            flush_literals(&mut out, &input[lit_start..i]);
            let off = i - cand - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((l << 5) | (off >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (off >> 8)) as u8);
                out.push((l - 7) as u8);
            }
            out.push(off as u8);
            i += len;
            lit_start = i;
        } else {
            i += 1;
        }
        if out.len() > max_out {
            return None;
        }
    }
    flush_literals(&mut out, &input[lit_start..]);
    (out.len() <= max_out).then_some(out)
}

/// The RDB type byte and encoded value.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            write_string(out, s);
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            write_len(out, l.items.len() as u64);
            for item in &l.items {
                write_string(out, item);
            }
        }
        Value::Set(s) => {
            out.push(TYPE_SET);
            write_len(out, s.len() as u64);
            for m in s.iter() {
                write_string(out, &m);
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            write_len(out, h.len() as u64);
            for (k, v) in h.iter() {
                write_string(out, k);
                write_string(out, v);
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            write_len(out, z.len() as u64);
            for (m, score) in z.iter() {
                write_string(out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(st) => {
            out.push(stream::TYPE_STREAM_LISTPACKS_2);
            stream::encode(st, out);
        }
    }
}

/// The DUMP payload of a value.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Check the footer of a DUMP payload; returns the encoded value without it.
pub fn verify_payload(payload: &[u8]) -> Option<&[u8]> {
    if payload.len() < 10 {
        return None;
    }
    let (body, crc) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION {
        return None;
    }
    let expected = u64::from_le_bytes(crc.try_into().ok()?);
    if crc64(body) != expected {
        return None;
    }
    Some(&body[..body.len() - 2])
}

// ---------------------------------------------------------------------------------------------
// Reading.

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or a special string encoding.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(BadData("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(BadData("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn len_or_encoding(&mut self) -> Result<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => {
                let s = self.take(4)?;
                Len::Plain(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
            }
            2 if b == 0x81 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Len::Plain(u64::from_be_bytes(a))
            }
            2 => return Err(BadData("unknown length encoding")),
            _ => Len::Encoded(b & 0x3f),
        })
    }
    fn len(&mut self) -> Result<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(BadData("encoded length where a count was expected")),
        }
    }
    /// A count of items, bounded by the remaining bytes so a forged count cannot make us
    /// reserve gigabytes.
    fn count(&mut self) -> Result<usize> {
        let n = self.len()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(BadData("count larger than payload"));
        }
        Ok(n as usize)
    }
    fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(self
                .take(usize::try_from(n).map_err(|_| BadData("len"))?)?
                .to_vec()),
            Len::Encoded(ENC_INT8) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(ENC_INT16) => {
                let s = self.take(2)?;
                Ok(i16::from_le_bytes([s[0], s[1]]).to_string().into_bytes())
            }
            Len::Encoded(ENC_INT32) => {
                let s = self.take(4)?;
                Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]])
                    .to_string()
                    .into_bytes())
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.len()?;
                let len = self.len()?;
                let compressed = self.take(usize::try_from(clen).map_err(|_| BadData("len"))?)?;
                lzf_decompress(
                    compressed,
                    usize::try_from(len).map_err(|_| BadData("len"))?,
                )
            }
            Len::Encoded(_) => Err(BadData("unknown string encoding")),
        }
    }
    fn binary_double(&mut self) -> Result<f64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        let d = f64::from_le_bytes(a);
        if d.is_nan() {
            return Err(BadData("NaN score"));
        }
        Ok(d)
    }
    /// The old (RDB_TYPE_ZSET) score: a length byte then ASCII, with 253..255 for nan/±inf.
    fn ascii_double(&mut self) -> Result<f64> {
        match self.byte()? {
            253 => Err(BadData("NaN score")),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.take(n as usize)?;
                crate::engine::storage::number::parse_f64(s).ok_or(BadData("bad score"))
            }
        }
    }
}

/// An RDB string (plain, integer-encoded or LZF-compressed) at `buf[pos..]`; returns it and the
/// position after it. For the RDB file reader, which shares this module's encodings.
pub fn read_string_at(buf: &[u8], pos: usize) -> Result<(Vec<u8>, usize)> {
    let mut r = Reader { buf, pos };
    let s = r.string()?;
    Ok((s, r.pos))
}

/// An RDB length at `buf[pos..]` (not a special string encoding); returns it and the position
/// after it.
pub fn read_len_at(buf: &[u8], pos: usize) -> Result<(u64, usize)> {
    let mut r = Reader { buf, pos };
    let n = r.len()?;
    Ok((n, r.pos))
}

/// LZF decompression (the format of Redis's lzf_d.c): control byte < 32 is a literal run of
/// ctrl+1 bytes; otherwise a back-reference of length (ctrl >> 5) + 2 (7 means one extra length
/// byte follows) at distance ((ctrl & 0x1f) << 8 | next) + 1.
pub fn lzf_decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>> {
    let bad = BadData("corrupt LZF data");
    let mut out: Vec<u8> = Vec::with_capacity(expected_len.min(input.len().saturating_mul(64)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(i..i + run).ok_or(bad.clone())?;
            out.extend_from_slice(lit);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or(bad.clone())? as usize;
                i += 1;
            }
            len += 2;
            let low = *input.get(i).ok_or(bad.clone())? as usize;
            i += 1;
            let distance = ((ctrl & 0x1f) << 8 | low) + 1;
            if distance > out.len() {
                return Err(bad);
            }
            let start = out.len() - distance;
            // Byte by byte: a back-reference may overlap the bytes it produces.
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > expected_len {
            return Err(bad);
        }
    }
    if out.len() != expected_len {
        return Err(bad);
    }
    Ok(out)
}

/// One listpack element: bytes or an integer.
enum LpEntry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl LpEntry<'_> {
    fn to_bytes(&self) -> Vec<u8> {
        match self {
            LpEntry::Str(s) => s.to_vec(),
            LpEntry::Int(n) => n.to_string().into_bytes(),
        }
    }
}

/// Parse a listpack blob (header: u32 total bytes, u16 count; entries with a back-length; 0xFF).
fn listpack_entries(lp: &[u8]) -> Result<Vec<LpEntry<'_>>> {
    let bad = || BadData("corrupt listpack");
    if lp.len() < 7 {
        return Err(bad());
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() || lp[lp.len() - 1] != 0xFF {
        return Err(bad());
    }
    let mut r = Reader { buf: lp, pos: 6 };
    let mut out = Vec::new();
    loop {
        let start = r.pos;
        let b = r.byte()?;
        let entry = if b == 0xFF {
            break;
        } else if b & 0x80 == 0 {
            LpEntry::Int((b & 0x7f) as i64)
        } else if b & 0xC0 == 0x80 {
            LpEntry::Str(r.take((b & 0x3f) as usize)?)
        } else if b & 0xE0 == 0xC0 {
            let v = (((b & 0x1f) as i64) << 8) | r.byte()? as i64;
            // 13-bit two's complement.
            LpEntry::Int(if v >= 1 << 12 { v - (1 << 13) } else { v })
        } else if b & 0xF0 == 0xE0 {
            let len = (((b & 0x0f) as usize) << 8) | r.byte()? as usize;
            LpEntry::Str(r.take(len)?)
        } else {
            match b {
                0xF0 => {
                    let s = r.take(4)?;
                    let len = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
                    LpEntry::Str(r.take(len)?)
                }
                0xF1 => {
                    let s = r.take(2)?;
                    LpEntry::Int(i16::from_le_bytes([s[0], s[1]]) as i64)
                }
                0xF2 => {
                    let s = r.take(3)?;
                    // Sign-extend 24 bits.
                    LpEntry::Int((i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as i64)
                }
                0xF3 => {
                    let s = r.take(4)?;
                    LpEntry::Int(i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64)
                }
                0xF4 => {
                    let s = r.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    LpEntry::Int(i64::from_le_bytes(a))
                }
                _ => return Err(bad()),
            }
        };
        // Skip the back-length: 1..5 bytes encoding the size of encoding+data.
        let entry_len = r.pos - start;
        let backlen = match entry_len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        r.take(backlen)?;
        out.push(entry);
    }
    if r.pos != lp.len() {
        return Err(bad());
    }
    Ok(out)
}

/// Parse a ziplist blob (Redis < 7.0): header u32 bytes, u32 tail offset, u16 count; entries
/// of previous-length, encoding, data; 0xFF.
fn ziplist_entries(zl: &[u8]) -> Result<Vec<LpEntry<'_>>> {
    let bad = || BadData("corrupt ziplist");
    if zl.len() < 11 {
        return Err(bad());
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if total != zl.len() || zl[zl.len() - 1] != 0xFF {
        return Err(bad());
    }
    let mut r = Reader { buf: zl, pos: 10 };
    let mut out = Vec::new();
    loop {
        let first = r.byte()?;
        if first == 0xFF {
            break;
        }
        // The previous entry's length: one byte, or 0xFE and four more.
        if first == 0xFE {
            r.take(4)?;
        }
        let enc = r.byte()?;
        let entry = match enc >> 6 {
            0 => LpEntry::Str(r.take((enc & 0x3f) as usize)?),
            1 => {
                let len = (((enc & 0x3f) as usize) << 8) | r.byte()? as usize;
                LpEntry::Str(r.take(len)?)
            }
            2 => {
                let s = r.take(4)?;
                LpEntry::Str(r.take(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)?)
            }
            _ => match enc {
                0xC0 => {
                    let s = r.take(2)?;
                    LpEntry::Int(i16::from_le_bytes([s[0], s[1]]) as i64)
                }
                0xD0 => {
                    let s = r.take(4)?;
                    LpEntry::Int(i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64)
                }
                0xE0 => {
                    let s = r.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    LpEntry::Int(i64::from_le_bytes(a))
                }
                0xF0 => {
                    let s = r.take(3)?;
                    LpEntry::Int((i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as i64)
                }
                0xFE => LpEntry::Int(r.byte()? as i8 as i64),
                // 1111xxxx with xxxx in 1..=13: the value xxxx - 1 (0..12) in the encoding.
                0xF1..=0xFD => LpEntry::Int((enc & 0x0f) as i64 - 1),
                _ => return Err(bad()),
            },
        };
        out.push(entry);
    }
    if r.pos != zl.len() {
        return Err(bad());
    }
    Ok(out)
}

/// Parse a zipmap blob (Redis < 2.6 hashes): a count byte, then per pair a length, the field,
/// a length, a "free" byte, the value and that many unused bytes; 0xFF. A length is one byte
/// below 254, else 254 and a little-endian u32.
fn zipmap_pairs(zm: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = || BadData("corrupt zipmap");
    let mut r = Reader { buf: zm, pos: 1 };
    if zm.is_empty() {
        return Err(bad());
    }
    let len = |r: &mut Reader<'_>| -> Result<Option<usize>> {
        Ok(match r.byte()? {
            0xFF => None,
            254 => {
                let s = r.take(4)?;
                Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
            }
            n => Some(n as usize),
        })
    };
    let mut out = Vec::new();
    while let Some(klen) = len(&mut r)? {
        let k = r.take(klen)?.to_vec();
        let vlen = len(&mut r)?.ok_or_else(bad)?;
        let free = r.byte()? as usize;
        let v = r.take(vlen)?.to_vec();
        r.take(free)?;
        out.push((k, v));
    }
    if r.pos != zm.len() {
        return Err(bad());
    }
    Ok(out)
}

/// Entries of a listpack or, for the pre-7.0 types, a ziplist.
fn packed_entries(blob: &[u8], ziplist: bool) -> Result<Vec<LpEntry<'_>>> {
    if ziplist {
        ziplist_entries(blob)
    } else {
        listpack_entries(blob)
    }
}

/// Parse an intset blob (u32 element width, u32 count, little-endian values).
fn intset_members(blob: &[u8]) -> Result<Vec<i64>> {
    let bad = || BadData("corrupt intset");
    if blob.len() < 8 {
        return Err(bad());
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width.checked_mul(count).ok_or_else(bad)? {
        return Err(bad());
    }
    Ok(blob[8..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }
        })
        .collect())
}

fn zset_insert(z: &mut ZSetValue, member: Vec<u8>, score: f64) -> Result<()> {
    if score.is_nan() {
        return Err(BadData("NaN score"));
    }
    z.insert(CompactBytes::from(member), score);
    Ok(())
}

/// Decode a value (type byte + RDB encoding, the payload without its footer). Empty
/// collections and duplicate members are rejected, as Redis does.
pub fn load_value(body: &[u8]) -> Result<Value> {
    let (&t, rest) = body.split_first().ok_or(BadData("truncated"))?;
    let (value, used) = load_typed_value(t, rest)?;
    if used != rest.len() {
        return Err(BadData("trailing bytes"));
    }
    Ok(value)
}

/// Decode one value of RDB type `t` from the start of `buf`; returns it and the bytes it took.
/// The RDB file reader uses this: in a file the key sits between the type byte and the value.
pub fn load_typed_value(t: u8, buf: &[u8]) -> Result<(Value, usize)> {
    let mut r = Reader { buf, pos: 0 };
    let value = match t {
        TYPE_STRING => Value::Str(CompactBytes::from(r.string()?)),
        TYPE_LIST => {
            let n = r.count()?;
            let mut l = ListValue::default();
            for _ in 0..n {
                l.items.push_back(CompactBytes::from(r.string()?));
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_ZIPLIST | TYPE_LIST_QUICKLIST => {
            // Pre-7.0 lists: one ziplist, or a quicklist whose nodes are ziplists.
            let nodes = if t == TYPE_LIST_QUICKLIST {
                r.count()?
            } else {
                1
            };
            let mut l = ListValue::default();
            for _ in 0..nodes {
                let blob = r.string()?;
                for e in ziplist_entries(&blob)? {
                    l.items.push_back(CompactBytes::from(e.to_bytes()));
                }
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            let mut l = ListValue::default();
            for _ in 0..nodes {
                let container = r.len()?;
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => l.items.push_back(CompactBytes::from(blob)),
                    QUICKLIST_NODE_PACKED => {
                        for e in listpack_entries(&blob)? {
                            l.items.push_back(CompactBytes::from(e.to_bytes()));
                        }
                    }
                    _ => return Err(BadData("unknown quicklist container")),
                }
            }
            Value::List(Box::new(l))
        }
        TYPE_SET => {
            let n = r.count()?;
            let mut s = SetValue::default();
            for _ in 0..n {
                if !s.insert_loaded(&r.string()?) {
                    return Err(BadData("duplicate set member"));
                }
            }
            Value::Set(s)
        }
        TYPE_SET_INTSET => {
            let blob = r.string()?;
            let mut s = SetValue::default();
            for n in intset_members(&blob)? {
                if !s.insert_loaded(n.to_string().as_bytes()) {
                    return Err(BadData("duplicate intset member"));
                }
            }
            Value::Set(s)
        }
        TYPE_SET_LISTPACK => {
            let blob = r.string()?;
            let mut s = SetValue::default();
            for e in listpack_entries(&blob)? {
                if !s.insert_loaded(&e.to_bytes()) {
                    return Err(BadData("duplicate set member"));
                }
            }
            Value::Set(s)
        }
        TYPE_HASH => {
            let n = r.count()?;
            let mut h = HashValue::default();
            for _ in 0..n {
                let k = r.string()?;
                let v = r.string()?;
                if !h.insert_loaded(&k, &v) {
                    return Err(BadData("duplicate hash field"));
                }
            }
            Value::Hash(h)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = r.string()?;
            let mut h = HashValue::default();
            for (k, v) in zipmap_pairs(&blob)? {
                if !h.insert_loaded(&k, &v) {
                    return Err(BadData("duplicate hash field"));
                }
            }
            Value::Hash(h)
        }
        TYPE_HASH_LISTPACK | TYPE_HASH_ZIPLIST => {
            let blob = r.string()?;
            let entries = packed_entries(&blob, t == TYPE_HASH_ZIPLIST)?;
            if entries.len() % 2 != 0 {
                return Err(BadData("odd hash listpack"));
            }
            let mut h = HashValue::default();
            for pair in entries.chunks_exact(2) {
                let (k, v) = (pair[0].to_bytes(), pair[1].to_bytes());
                if !h.insert_loaded(&k, &v) {
                    return Err(BadData("duplicate hash field"));
                }
            }
            Value::Hash(h)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count()?;
            let mut z = ZSetValue::default();
            for _ in 0..n {
                let m = r.string()?;
                let score = if t == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.ascii_double()?
                };
                zset_insert(&mut z, m, score)?;
            }
            if z.len() != n {
                return Err(BadData("duplicate zset member"));
            }
            Value::ZSet(z)
        }
        TYPE_ZSET_LISTPACK | TYPE_ZSET_ZIPLIST => {
            let blob = r.string()?;
            let entries = packed_entries(&blob, t == TYPE_ZSET_ZIPLIST)?;
            if entries.len() % 2 != 0 {
                return Err(BadData("odd zset listpack"));
            }
            let mut z = ZSetValue::default();
            for pair in entries.chunks_exact(2) {
                let score = match &pair[1] {
                    LpEntry::Int(n) => *n as f64,
                    LpEntry::Str(s) => {
                        crate::engine::storage::number::parse_f64(s).ok_or(BadData("bad score"))?
                    }
                };
                zset_insert(&mut z, pair[0].to_bytes(), score)?;
            }
            if z.len() != entries.len() / 2 {
                return Err(BadData("duplicate zset member"));
            }
            Value::ZSet(z)
        }
        stream::TYPE_STREAM_LISTPACKS
        | stream::TYPE_STREAM_LISTPACKS_2
        | stream::TYPE_STREAM_LISTPACKS_3 => Value::Stream(Box::new(stream::decode(&mut r, t)?)),
        _ => return Err(BadData("unsupported RDB type")),
    };
    let used = r.pos;
    let empty = match &value {
        Value::Str(_) => false,
        Value::List(l) => l.items.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        // Only `iter`, `len` and `insert` are part of the sorted-set API this module relies on.
        Value::ZSet(z) => z.iter().next().is_none(),
        // A stream may be empty (XDEL of every entry, XGROUP CREATE ... MKSTREAM).
        Value::Stream(_) => false,
    };
    if empty {
        return Err(BadData("empty collection"));
    }
    Ok((value, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zipmap_hash_loads() {
        // zipmap {f: v, long: 300 x 'x'}: count, (len, key, len, free, value, free bytes)...
        let mut zm = vec![2u8, 1, b'f', 1, 0, b'v', 4];
        zm.extend_from_slice(b"long");
        zm.push(254);
        zm.extend_from_slice(&300u32.to_le_bytes());
        zm.push(2);
        zm.extend_from_slice(&[b'x'; 300]);
        zm.extend_from_slice(&[0, 0, 0xFF]);
        let mut body = vec![TYPE_HASH_ZIPMAP];
        write_len(&mut body, zm.len() as u64);
        body.extend_from_slice(&zm);
        let Ok(Value::Hash(h)) = load_value(&body) else {
            panic!("not a hash");
        };
        assert_eq!(h.len(), 2);
        let pairs: Vec<(Vec<u8>, usize)> = h.iter().map(|(k, v)| (k.to_vec(), v.len())).collect();
        assert_eq!(pairs, [(b"f".to_vec(), 1), (b"long".to_vec(), 300)]);
        // Cut anywhere: an error, not a panic.
        for cut in 1..body.len() {
            assert!(load_value(&body[..cut]).is_err());
        }
    }

    #[test]
    fn crc64_matches_redis_check_value() {
        // The check value from Redis's crc64.c self-test.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn redis_string_payloads_load() {
        // DUMP of SET k hello and SET k 123 on redis-server 7.0.
        let hello = b"\x00\x05hello\n\x00cr\xdfve4 \n";
        let body = verify_payload(hello).expect("valid payload");
        assert!(matches!(load_value(body), Ok(Value::Str(s)) if s.as_slice() == b"hello"));
        let mut p = Vec::new();
        encode_value(&Value::str(b"123"), &mut p);
        assert_eq!(p, b"\x00\xc0\x7b");
    }

    #[test]
    fn roundtrip_every_type() {
        let mut z = ZSetValue::default();
        z.insert(CompactBytes::from("a"), 1.5);
        z.insert(CompactBytes::from("b"), f64::NEG_INFINITY);
        let mut l = ListValue::default();
        l.items.push_back(CompactBytes::from("x"));
        l.items.push_back(CompactBytes::from("-70000"));
        let values = [
            Value::str(b"-129"),
            Value::str(&[b'y'; 300]),
            Value::ZSet(z),
            Value::List(Box::new(l)),
        ];
        for v in values {
            let p = dump_payload(&v);
            let back = load_value(verify_payload(&p).unwrap()).unwrap();
            assert_eq!(dump_payload(&back), p);
        }
    }

    #[test]
    fn corrupt_payloads_are_rejected_without_panic() {
        let p = dump_payload(&Value::str(b"hello world"));
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert!(verify_payload(&bad).is_none());
        for cut in 0..p.len() {
            let _ = verify_payload(&p[..cut]).map(load_value);
        }
        // Forged bodies behind a valid footer.
        for body in [
            &b"\x12\x05"[..],
            b"\x10\xc3\x05\x05\x00",
            b"\x0b\x01\x00",
            b"\x01\xbf",
        ] {
            let mut v = body.to_vec();
            v.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64(&v);
            v.extend_from_slice(&crc.to_le_bytes());
            assert!(load_value(verify_payload(&v).unwrap()).is_err());
        }
    }

    proptest::proptest! {
        /// Arbitrary bodies behind a valid footer never panic (RESTORE input is untrusted).
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut v = body.clone();
            v.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64(&v);
            v.extend_from_slice(&crc.to_le_bytes());
            let _ = load_value(verify_payload(&v).expect("valid footer"));
            let _ = lzf_decompress(&body, body.len() * 3);
            let _ = listpack_entries(&body);
        }

        /// Type bytes followed by arbitrary data exercise every decoder.
        #[test]
        fn typed_bodies_never_panic(
            t in proptest::sample::select(vec![0u8, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21]),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
        ) {
            let mut body = vec![t];
            body.extend_from_slice(&rest);
            let _ = load_value(&body);
        }
    }

    #[test]
    fn lzf_compress_round_trips_and_compresses() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut inputs: Vec<Vec<u8>> = vec![
            b"a".repeat(1000),
            b"abcabcabcabcabcabcabcabcabc".to_vec(),
            (0..5000u32)
                .flat_map(|i| format!("item-{}", i % 97).into_bytes())
                .collect(),
        ];
        for len in [21usize, 64, 300, 9000, 70_000] {
            // Few distinct bytes: repetitive at every distance, including beyond 8192.
            inputs.push((0..len).map(|_| b"abcd"[(next() % 4) as usize]).collect());
            inputs.push((0..len).map(|_| next() as u8).collect());
        }
        for input in &inputs {
            match lzf_compress(input, input.len() - 4) {
                Some(packed) => {
                    assert!(packed.len() <= input.len() - 4);
                    assert_eq!(&lzf_decompress(&packed, input.len()).unwrap(), input);
                }
                // Only incompressible input (random bytes, or too short to gain 4 bytes) stays plain.
                None => assert!(
                    input.len() <= 64 || input.iter().any(|b| *b > b'z'),
                    "{} bytes left plain: {:?}",
                    input.len(),
                    &input[..input.len().min(40)]
                ),
            }
        }
        assert!(lzf_compress(&b"x".repeat(1000), 996).unwrap().len() < 40);
        // write_string picks LZF for a long compressible string, and reads it back.
        let mut out = Vec::new();
        write_string(&mut out, &b"hello ".repeat(50));
        assert_eq!(out[0], 0xC0 | ENC_LZF);
        assert!(out.len() < 100);
    }

    #[test]
    fn lzf_back_references() {
        // Literal "ab" then a back-reference of length 4 at distance 2: "ababab".
        let data = [1, b'a', b'b', (2 << 5), 1];
        assert_eq!(lzf_decompress(&data, 6).unwrap(), b"ababab");
        assert!(lzf_decompress(&data, 5).is_err());
    }
}
