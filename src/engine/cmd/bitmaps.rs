//! Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO. Pure (on the locked state). Bit 0 is the most significant bit of the first
//! byte, as in Redis.

use bytes::Bytes;

use super::args::{int_arg, is, parse_i64_strict, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", setbit),
    CommandSpec::new("getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", getbit),
    CommandSpec::new("bitcount", -2, READONLY, (1, 1, 1), "bitmap", bitcount),
    CommandSpec::new("bitpos", -3, READONLY, (1, 1, 1), "bitmap", bitpos),
    CommandSpec::new(
        "bitfield",
        -2,
        WRITE | DENYOOM,
        (1, 1, 1),
        "bitmap",
        bitfield,
    ),
    CommandSpec::new(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        (1, 1, 1),
        "bitmap",
        bitfield_ro,
    ),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", bitop),
];

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";

/// The bytes of a string value, writable in place. The value takes its growable form first
/// (one copy, the first time only): that is Redis's `raw`, which SETBIT and BITFIELD make of
/// any string they write (OBJECT ENCODING says so), and later writes need no copy.
pub fn bytes_mut(s: &mut CompactBytes) -> &mut [u8] {
    s.as_mut_vec().as_mut_slice()
}

/// A bit offset argument: a non-negative integer whose byte stays below proto-max-bulk-len.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u64, Reply> {
    let err = || Reply::err_static(ERR_BIT_OFFSET);
    let off = parse_i64_strict(arg).ok_or_else(err)?;
    let limit = ctx.state.config.settings.proto_max_bulk_len;
    if off < 0 || ((off >> 3) >= limit && !ctx.client.is_replication) {
        return Err(err());
    }
    Ok(off as u64)
}

/// Read the string at `key` for a bitmap command: None if missing, WRONGTYPE for other types
/// (a read lookup: counts as a keyspace hit or miss).
fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    super::strings::read_string(ctx, key)
}

fn setbit(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let offset = match bit_offset(ctx, &a[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match parse_i64_strict(&a[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Reply::err_static(ERR_BIT_VALUE),
    };
    let key = &a[1];
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let now = ctx.now_ms;
    let (old, grown) = match ctx.db().get_mut(key, now) {
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                if byte < s.len() {
                    let bytes = bytes_mut(s);
                    let old = bytes[byte] & mask != 0;
                    if on {
                        bytes[byte] |= mask;
                    } else {
                        bytes[byte] &= !mask;
                    }
                    (old, false)
                } else {
                    let v = s.as_mut_vec();
                    v.resize(byte + 1, 0);
                    if on {
                        v[byte] |= mask;
                    }
                    (false, true)
                }
            }
            _ => return wrongtype(),
        },
        None => {
            let mut v = vec![0u8; byte + 1];
            if on {
                v[byte] |= mask;
            }
            ctx.db().set(key, Value::Str(CompactBytes::from(v)));
            (false, true)
        }
    };
    // Like Redis, rewriting a bit with the value it already has is not a change.
    if grown || old != on {
        ctx.modified(key);
    }
    Reply::Int(old as i64)
}

fn getbit(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let offset = match bit_offset(ctx, &a[2]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let s = match read_string(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let byte = (offset >> 3) as usize;
    let bit = s
        .get(byte)
        .is_some_and(|b| b & (1u8 << (7 - (offset & 7))) != 0);
    Reply::Int(bit as i64)
}

/// Whether a range is in bytes (the default) or bits.
fn range_unit(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(syntax_error())
    }
}

/// Clamp a `start..=end` range (negative = from the end) over `total` units, Redis style.
/// Returns None when the range is empty.
fn clamp(mut start: i64, mut end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start = (total + start).max(0);
    }
    if end < 0 {
        end = (total + end).max(0);
    }
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start, end))
}

fn bit_at(s: &[u8], pos: u64) -> bool {
    s.get((pos >> 3) as usize)
        .is_some_and(|b| b & (1u8 << (7 - (pos & 7))) != 0)
}

/// Number of set bits in the inclusive bit range `from..=to` of `s` (both inside `s`).
fn count_bits(s: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let Some(bytes) = s.get(first..=last) else {
        return 0;
    };
    let mut count: u64 = bytes.iter().map(|b| b.count_ones() as u64).sum();
    // Subtract the bits of the edge bytes that fall outside the range.
    let head = bytes.first().copied().unwrap_or(0) & !(0xffu8 >> (from & 7));
    let tail = bytes.last().copied().unwrap_or(0) & (0x7fu8 >> (to & 7));
    count -= head.count_ones() as u64 + tail.count_ones() as u64;
    count
}

fn bitcount(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    // Redis 7.0 looks the key up before it parses the range: a missing key counts 0 and a
    // wrong type errors whatever the other arguments are.
    let s = match read_string(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let mut range = None;
    let mut in_bits = false;
    match a.len() {
        2 => {}
        4 | 5 => {
            let start = match int_arg(&a[2]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let end = match int_arg(&a[3]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            // Redis answers this empty range before it looks at the unit word.
            if start < 0 && end < 0 && start > end {
                return Reply::Int(0);
            }
            if let Some(unit) = a.get(4) {
                match range_unit(unit) {
                    Ok(b) => in_bits = b,
                    Err(e) => return e,
                }
            }
            range = Some((start, end));
        }
        _ => return syntax_error(),
    }
    let bits = match range {
        None => clamp(0, -1, s.len() as i64).map(|(f, t)| (f as u64 * 8, t as u64 * 8 + 7)),
        Some((start, end)) => {
            let total = if in_bits {
                s.len() as i64 * 8
            } else {
                s.len() as i64
            };
            match clamp(start, end, total) {
                None => None,
                Some((f, t)) if in_bits => Some((f as u64, t as u64)),
                Some((f, t)) => Some((f as u64 * 8, t as u64 * 8 + 7)),
            }
        }
    };
    match bits {
        Some((from, to)) => Reply::Int(count_bits(&s, from, to) as i64),
        None => Reply::Int(0),
    }
}

fn bitpos(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let want = match int_arg(&a[2]) {
        Ok(v @ (0 | 1)) => v == 1,
        Ok(_) => return Reply::err_static("ERR The bit argument must be 1 or 0."),
        Err(e) => return e,
    };
    // A missing key is an infinite run of zeros.
    let s = match read_string(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(if want { -1 } else { 0 }),
        Err(e) => return e,
    };
    let len = s.len() as i64;
    let mut end_given = false;
    let range = match a.len() {
        3 => clamp(0, len - 1, len).map(|(f, t)| (f as u64 * 8, t as u64 * 8 + 7)),
        4..=6 => {
            let start = match int_arg(&a[3]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let mut in_bits = false;
            if let Some(unit) = a.get(5) {
                match range_unit(unit) {
                    Ok(b) => in_bits = b,
                    Err(e) => return e,
                }
            }
            let end = match a.get(4) {
                Some(arg) => match int_arg(arg) {
                    Ok(v) => {
                        end_given = true;
                        v
                    }
                    Err(e) => return e,
                },
                None if in_bits => len * 8 + 7,
                None => len - 1,
            };
            let total = if in_bits { len * 8 } else { len };
            match clamp(start, end, total) {
                None => None,
                Some((f, t)) if in_bits => Some((f as u64, t as u64)),
                Some((f, t)) => Some((f as u64 * 8, t as u64 * 8 + 7)),
            }
        }
        _ => return syntax_error(),
    };
    // An empty range contains neither a 0 nor a 1.
    let Some((from, to)) = range else {
        return Reply::Int(-1);
    };
    match find_bit(&s, from, to, want) {
        Some(p) => Reply::Int(p as i64),
        // Without an explicit end the string is thought of as padded with zeros on the right.
        None if !want && !end_given => Reply::Int(to as i64 + 1),
        None => Reply::Int(-1),
    }
}

/// The first bit equal to `want` in the inclusive range `from..=to`, skipping whole bytes that
/// cannot contain it.
fn find_bit(s: &[u8], from: u64, to: u64, want: bool) -> Option<u64> {
    let skip = if want { 0x00 } else { 0xff };
    let mut pos = from;
    while pos <= to {
        if pos & 7 == 0 && pos + 7 <= to && s.get((pos >> 3) as usize) == Some(&skip) {
            pos += 8;
            continue;
        }
        if bit_at(s, pos) == want {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let op = if is(&a[1], "and") {
        BitOp::And
    } else if is(&a[1], "or") {
        BitOp::Or
    } else if is(&a[1], "xor") {
        BitOp::Xor
    } else if is(&a[1], "not") {
        BitOp::Not
    } else {
        return syntax_error();
    };
    if op == BitOp::Not && a.len() != 4 {
        return Reply::err_static("ERR BITOP NOT must be called with a single source key.");
    }
    let mut sources = Vec::with_capacity(a.len() - 3);
    for key in &a[3..] {
        match read_string(ctx, key) {
            Ok(v) => sources.push(v.unwrap_or_default()),
            Err(e) => return e,
        }
    }
    let max_len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte_at = |s: &Bytes, j: usize| s.get(j).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(max_len);
    for j in 0..max_len {
        let mut acc = sources.first().map_or(0, |s| byte_at(s, j));
        match op {
            BitOp::Not => acc = !acc,
            BitOp::And => sources[1..].iter().for_each(|s| acc &= byte_at(s, j)),
            BitOp::Or => sources[1..].iter().for_each(|s| acc |= byte_at(s, j)),
            BitOp::Xor => sources[1..].iter().for_each(|s| acc ^= byte_at(s, j)),
        }
        out.push(acc);
    }
    let dest = &a[2];
    if max_len > 0 {
        ctx.db().set(dest, Value::Str(CompactBytes::from(out)));
        ctx.modified(dest);
    } else if ctx.db().remove(dest).is_some() {
        ctx.modified(dest);
    }
    Reply::Int(max_len as i64)
}

/// What BITFIELD does when INCRBY or SET overflows the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One parsed BITFIELD operation on a field of `bits` bits at bit `offset`.
#[derive(Debug, Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

const ERR_FIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// `i1..i64` or `u1..u63` (lowercase only, as in Redis).
fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let err = || Reply::err_static(ERR_FIELD_TYPE);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let bits = parse_i64_strict(&arg[1..]).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

/// A field offset: a bit offset, or `#N` meaning N fields of this width.
fn field_offset(ctx: &Ctx<'_>, arg: &[u8], bits: u32) -> Result<u64, Reply> {
    let err = || Reply::err_static(ERR_BIT_OFFSET);
    let (by_index, digits) = match arg {
        [b'#', rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, arg),
    };
    let mut off = parse_i64_strict(digits).ok_or_else(err)?;
    if by_index {
        off = off.wrapping_mul(bits as i64);
    }
    let limit = ctx.state.config.settings.proto_max_bulk_len;
    if off < 0 || ((off >> 3) >= limit && !ctx.client.is_replication) {
        return Err(err());
    }
    Ok(off as u64)
}

fn read_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0u64, |v, i| (v << 1) | bit_at(s, offset + i) as u64)
}

fn read_signed_field(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = read_field(s, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn write_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = value & (1u64 << (bits as u64 - 1 - j)) != 0;
        let pos = offset + j;
        if let Some(b) = s.get_mut((pos >> 3) as usize) {
            let mask = 1u8 << (7 - (pos & 7));
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: Some(value to store) or None (FAIL) on overflow.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<u64>> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > max_incr) {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if incr < 0 && incr < min_incr {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, same contract as [`unsigned_overflow`].
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

fn parse_fields(ctx: &Ctx<'_>, a: &[Arg]) -> Result<Vec<Field>, Reply> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let remaining = a.len() - j - 1;
        let word = &a[j];
        let is_get = is(word, "get") && remaining >= 2;
        let is_set = is(word, "set") && remaining >= 3;
        let is_incr = is(word, "incrby") && remaining >= 3;
        if is(word, "overflow") && remaining >= 1 {
            let kind = &a[j + 1];
            overflow = if is(kind, "wrap") {
                Overflow::Wrap
            } else if is(kind, "sat") {
                Overflow::Sat
            } else if is(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err_static("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        }
        if !(is_get || is_set || is_incr) {
            return Err(syntax_error());
        }
        let (signed, bits) = field_type(&a[j + 1])?;
        let offset = field_offset(ctx, &a[j + 2], bits)?;
        let op = if is_get {
            FieldOp::Get
        } else {
            let v = int_arg(&a[j + 3])?;
            if is_set {
                FieldOp::Set(v)
            } else {
                FieldOp::IncrBy(v)
            }
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if is_get { 3 } else { 4 };
    }
    Ok(fields)
}

/// Apply one SET/INCRBY field operation in place; the reply is the old value (SET), the new
/// value (INCRBY), or nil when OVERFLOW FAIL refused it.
fn apply_field(s: &mut [u8], f: &Field) -> Reply {
    let (FieldOp::Set(arg) | FieldOp::IncrBy(arg)) = f.op else {
        return Reply::Nil;
    };
    let is_incr = matches!(f.op, FieldOp::IncrBy(_));
    if f.signed {
        let old = read_signed_field(s, f.offset, f.bits);
        let (value, incr) = if is_incr { (old, arg) } else { (arg, 0) };
        let new = match signed_overflow(value, incr, f.bits, f.overflow) {
            Some(None) => return Reply::Nil,
            Some(Some(limited)) => limited,
            None => value.wrapping_add(incr),
        };
        write_field(s, f.offset, f.bits, new as u64);
        Reply::Int(if is_incr { new } else { old })
    } else {
        let old = read_field(s, f.offset, f.bits);
        let (value, incr) = if is_incr { (old, arg) } else { (arg as u64, 0) };
        let new = match unsigned_overflow(value, incr, f.bits, f.overflow) {
            Some(None) => return Reply::Nil,
            Some(Some(limited)) => limited,
            None => value.wrapping_add(incr as u64),
        };
        write_field(s, f.offset, f.bits, new);
        Reply::Int(if is_incr { new as i64 } else { old as i64 })
    }
}

fn bitfield_generic(ctx: &mut Ctx<'_>, a: &[Arg], read_only_command: bool) -> Reply {
    let fields = match parse_fields(ctx, a) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let key = &a[1];
    let writes = fields.iter().any(|f| f.op != FieldOp::Get);
    let get_reply = |s: &[u8], f: &Field| {
        if f.signed {
            Reply::Int(read_signed_field(s, f.offset, f.bits))
        } else {
            Reply::Int(read_field(s, f.offset, f.bits) as i64)
        }
    };
    if !writes {
        let s = match read_string(ctx, key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return e,
        };
        return Reply::Array(fields.iter().map(|f| get_reply(&s, f)).collect());
    }
    if read_only_command {
        return Reply::err_static("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    // A write lookup (Redis `lookupKeyWrite`): no keyspace hit/miss accounting.
    if let Err(e) = super::strings::get_string(ctx, key) {
        return e;
    }
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut grown = false;
    if db.get(key, now).is_none() {
        db.set(key, Value::Str(CompactBytes::empty()));
        grown = true;
    }
    let Some(Value::Str(stored)) = db.get_mut(key, now).map(|e| &mut e.value) else {
        return wrongtype();
    };
    let s = stored.as_mut_vec();
    let needed = (highest >> 3) as usize + 1;
    if s.len() < needed {
        s.resize(needed, 0);
        grown = true;
    }
    // Like Redis 7.0.15, each write counts as a change (dirty) only when the key was created
    // or grown, or the field's value changed (a SET to the same value, or an OVERFLOW FAIL
    // refusal, is none); with no change at all the key is not touched nor propagated.
    let mut changes = 0u64;
    let replies = fields
        .iter()
        .map(|f| match f.op {
            FieldOp::Get => get_reply(s, f),
            _ => {
                let before = read_field(s, f.offset, f.bits);
                let reply = apply_field(s, f);
                let changed = if matches!(f.op, FieldOp::Set(_)) {
                    grown || read_field(s, f.offset, f.bits) != before
                } else {
                    // INCRBY counts whenever it wrote (not when OVERFLOW FAIL refused it).
                    !matches!(reply, Reply::Nil)
                };
                changes += changed as u64;
                reply
            }
        })
        .collect();
    if changes > 0 {
        ctx.modified(key);
        ctx.state.dirty += changes - 1;
        ctx.state.dirty_since_save += changes - 1;
    }
    Reply::Array(replies)
}

fn bitfield(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    bitfield_generic(ctx, a, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    bitfield_generic(ctx, a, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_and_finding_bits_in_ranges() {
        let s = [0b1010_0000u8, 0xff, 0x01];
        assert_eq!(count_bits(&s, 0, 23), 11);
        assert_eq!(count_bits(&s, 1, 2), 1);
        assert_eq!(count_bits(&s, 2, 9), 3);
        assert_eq!(count_bits(&s, 23, 23), 1);
        assert_eq!(find_bit(&s, 0, 23, true), Some(0));
        assert_eq!(find_bit(&s, 3, 23, true), Some(8));
        assert_eq!(find_bit(&s, 8, 15, false), None);
        assert_eq!(find_bit(&s, 8, 23, false), Some(16));
    }
}
