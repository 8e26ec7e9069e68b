//! String commands: GET, SET and its variants (SETNX SETEX PSETEX GETSET GETDEL GETEX MSET
//! MSETNX), counters (INCR family, INCRBYFLOAT), APPEND, STRLEN, ranges (GETRANGE SUBSTR
//! SETRANGE) and LCS. Pure (on the locked state).

mod long_double;

use bytes::Bytes;

use super::args::{self, int_arg, is, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incr),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", decr),
    CommandSpec::new(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrby,
    ),
    CommandSpec::new(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        decrby,
    ),
    CommandSpec::new("mget", -2, READONLY | FAST, (1, -1, 1), "string", mget),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", mset),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", msetnx),
    CommandSpec::new(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        setnx,
    ),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", setex),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", psetex),
    CommandSpec::new(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        getset,
    ),
    CommandSpec::new("getdel", 2, WRITE | FAST, (1, 1, 1), "string", getdel),
    CommandSpec::new("getex", -2, WRITE | FAST, (1, 1, 1), "string", getex),
    CommandSpec::new(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrbyfloat,
    ),
    CommandSpec::new(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        append,
    ),
    CommandSpec::new("strlen", 2, READONLY | FAST, (1, 1, 1), "string", strlen),
    CommandSpec::new("getrange", 4, READONLY, (1, 1, 1), "string", getrange),
    CommandSpec::new("substr", 4, READONLY, (1, 1, 1), "string", getrange),
    CommandSpec::new(
        "setrange",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "string",
        setrange,
    ),
    CommandSpec::new("lcs", -3, READONLY, (1, 2, 1), "string", lcs),
];

/// Read a string value: Ok(None) if missing, Err(WRONGTYPE) for other types.
pub fn get_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s.to_bytes())),
            _ => Err(wrongtype()),
        },
    }
}

pub fn count_lookup(ctx: &mut Ctx<'_>, hit: bool) {
    if hit {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
}

/// Read a string the way Redis's `lookupKeyRead` does: like [`get_string`], and the lookup
/// counts as a keyspace hit or miss (INFO stats; a key of the wrong type is a hit).
pub fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let r = get_string(ctx, key);
    count_lookup(ctx, !matches!(r, Ok(None)));
    r
}

fn get(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    // Like read_string, but the value is copied straight into the reply (no Bytes in between).
    let now = ctx.now_ms;
    let reply = match ctx.db().get(&a[1], now) {
        None => Reply::Nil,
        Some(e) => match &e.value {
            Value::Str(s) => Reply::bulk_copy(s),
            _ => wrongtype(),
        },
    };
    count_lookup(ctx, !matches!(reply, Reply::Nil));
    reply
}

/// The expiry unit of an `EX | PX | EXAT | PXAT` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpiryUnit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Options of SET (and, for the expiry part, GETEX), as Redis's
/// `parseExtendedStringArgumentsOrReply` accepts them: all options are parsed before any value
/// is checked, so a syntax error wins over a bad expire time.
#[derive(Debug, Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expiry: Option<(ExpiryUnit, &'a [u8])>,
}

/// Which command the options belong to (SET takes NX XX GET KEEPTTL; GETEX takes PERSIST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionsFor {
    Set,
    GetEx,
}

fn parse_string_options(
    a: &[Arg],
    from: usize,
    cmd: OptionsFor,
) -> Result<StringOptions<'_>, Reply> {
    let mut o = StringOptions::default();
    let set = cmd == OptionsFor::Set;
    let mut i = from;
    while i < a.len() {
        let opt = &a[i];
        let next = a.get(i + 1);
        let unit = if is(opt, "ex") {
            Some(ExpiryUnit::Ex)
        } else if is(opt, "px") {
            Some(ExpiryUnit::Px)
        } else if is(opt, "exat") {
            Some(ExpiryUnit::ExAt)
        } else if is(opt, "pxat") {
            Some(ExpiryUnit::PxAt)
        } else {
            None
        };
        if set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(opt, "get") {
            o.get = true;
        } else if set && is(opt, "keepttl") && !o.persist && o.expiry.is_none() {
            o.keep_ttl = true;
        } else if !set && is(opt, "persist") && o.expiry.is_none() && !o.keep_ttl {
            o.persist = true;
        } else if let (Some(u), Some(v)) = (unit, next) {
            // The same unit may repeat (the last one wins); mixing units is a syntax error.
            let conflict = o.keep_ttl || o.persist || o.expiry.is_some_and(|(prev, _)| prev != u);
            if conflict {
                return Err(syntax_error());
            }
            o.expiry = Some((u, v));
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    Ok(o)
}

/// Resolve an expiry option to an absolute time in ms, with Redis's checks and message
/// ("invalid expire time in 'set' command").
fn expiry_at(cmd: &str, unit: ExpiryUnit, value: &[u8], now_ms: i64) -> Result<i64, Reply> {
    let v = int_arg(value)?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{cmd}' command"));
    let seconds = matches!(unit, ExpiryUnit::Ex | ExpiryUnit::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { v * 1000 } else { v };
    let at = match unit {
        ExpiryUnit::Ex | ExpiryUnit::Px => now_ms.checked_add(ms).ok_or_else(invalid)?,
        ExpiryUnit::ExAt | ExpiryUnit::PxAt => ms,
    };
    if at <= 0 {
        return Err(invalid());
    }
    Ok(at)
}

fn set(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let o = match parse_string_options(a, 3, OptionsFor::Set) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expire_at = match o.expiry {
        Some((unit, v)) => match expiry_at("set", unit, v, ctx.now_ms) {
            Ok(at) => Some(at),
            Err(e) => return e,
        },
        None => None,
    };
    set_generic(ctx, &a[1], &a[2], o.nx, o.xx, o.get, o.keep_ttl, expire_at)
}

/// Redis `setGenericCommand`: the shared body of SET, SETNX, SETEX and PSETEX. With `get` the
/// reply is the old value; otherwise OK, or nil when NX/XX refused the write.
#[allow(clippy::too_many_arguments)]
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &Arg,
    value: &Arg,
    nx: bool,
    xx: bool,
    get_old: bool,
    keep_ttl: bool,
    expire_at: Option<i64>,
) -> Reply {
    let old = if get_old {
        match read_string(ctx, key) {
            Ok(v) => Some(v),
            Err(e) => return e,
        }
    } else {
        None
    };
    let now = ctx.now_ms;
    let exists = ctx.db().contains(key, now);
    if (nx && exists) || (xx && !exists) {
        return match old {
            Some(v) => v.map(Reply::Bulk).unwrap_or(Reply::Nil),
            None => Reply::Nil,
        };
    }
    let v = Value::str(value);
    if keep_ttl {
        ctx.db().set_keep_ttl(key, v);
    } else {
        ctx.db().set(key, v);
    }
    if let Some(at) = expire_at {
        ctx.db().set_expire(key, at);
        // Replicas and the log get an absolute time, so replay gives the same deadline.
        ctx.propagate_as(vec![
            Arg::from_static(b"SET"),
            key.clone(),
            value.clone(),
            Arg::from_static(b"PXAT"),
            Arg::from(at.to_string()),
        ]);
    }
    ctx.modified(key);
    match old {
        Some(v) => v.map(Reply::Bulk).unwrap_or(Reply::Nil),
        None => Reply::Ok,
    }
}

fn setnx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    if ctx.db().contains(&a[1], now) {
        return Reply::Int(0);
    }
    ctx.db().set(&a[1], Value::str(&a[2]));
    ctx.modified(&a[1]);
    Reply::Int(1)
}

fn setex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match expiry_at("setex", ExpiryUnit::Ex, &a[2], ctx.now_ms) {
        Ok(at) => set_generic(ctx, &a[1], &a[3], false, false, false, false, Some(at)),
        Err(e) => e,
    }
}

fn psetex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match expiry_at("psetex", ExpiryUnit::Px, &a[2], ctx.now_ms) {
        Ok(at) => set_generic(ctx, &a[1], &a[3], false, false, false, false, Some(at)),
        Err(e) => e,
    }
}

fn getset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let old = match read_string(ctx, &a[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    ctx.db().set(&a[1], Value::str(&a[2]));
    ctx.modified(&a[1]);
    // Redis 7 propagates GETSET as the SET it amounts to.
    ctx.propagate_as(vec![Arg::from_static(b"SET"), a[1].clone(), a[2].clone()]);
    old.map(Reply::Bulk).unwrap_or(Reply::Nil)
}

fn getdel(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_string(ctx, &a[1]) {
        Ok(Some(v)) => {
            ctx.db().remove(&a[1]);
            ctx.modified(&a[1]);
            // Redis 7 propagates GETDEL as the DEL it amounts to.
            ctx.propagate_as(vec![Arg::from_static(b"DEL"), a[1].clone()]);
            Reply::Bulk(v)
        }
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn getex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let o = match parse_string_options(a, 2, OptionsFor::GetEx) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let key = &a[1];
    let value = match read_string(ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    if let Some((unit, v)) = o.expiry {
        let at = match expiry_at("getex", unit, v, now) {
            Ok(at) => at,
            Err(e) => return e,
        };
        let absolute = matches!(unit, ExpiryUnit::ExAt | ExpiryUnit::PxAt);
        if absolute && at <= now {
            // An absolute time already in the past deletes the key, and replicas see a DEL.
            ctx.db().remove(key);
            ctx.propagate_as(vec![Arg::from_static(b"DEL"), key.clone()]);
        } else {
            ctx.db().set_expire(key, at);
            ctx.propagate_as(vec![
                Arg::from_static(b"PEXPIREAT"),
                key.clone(),
                Arg::from(at.to_string()),
            ]);
        }
        ctx.modified(key);
    } else if o.persist && ctx.db().persist(key) {
        ctx.propagate_as(vec![Arg::from_static(b"PERSIST"), key.clone()]);
        ctx.modified(key);
    }
    Reply::Bulk(value)
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_string_length(ctx: &Ctx<'_>, offset: i64, append: usize) -> Result<(), Reply> {
    let limit = ctx.state.config.settings.proto_max_bulk_len;
    let total = offset.checked_add(append as i64);
    match total {
        Some(t) if t <= limit || ctx.client.is_replication => Ok(()),
        _ => Err(Reply::err_static(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

fn append(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let current_len = match get_string_len(ctx, key) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let len = match current_len {
        None => {
            ctx.db().set(key, Value::str(&a[2]));
            a[2].len()
        }
        Some(old_len) => {
            if let Err(e) = check_string_length(ctx, old_len as i64, a[2].len()) {
                return e;
            }
            match string_vec(ctx, key) {
                Some(v) => {
                    v.extend_from_slice(&a[2]);
                    v.len()
                }
                None => return wrongtype(),
            }
        }
    };
    ctx.modified(key);
    Reply::Int(len as i64)
}

/// The length of the string at `key` (None if missing, WRONGTYPE for other types), without
/// copying it.
fn get_string_len(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<usize>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s.len())),
            _ => Err(wrongtype()),
        },
    }
}

/// The existing string at `key` as a growable vector, for in-place modification.
fn string_vec<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c mut Vec<u8>> {
    let now = ctx.now_ms;
    match ctx.db().get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Str(s)) => Some(s.as_mut_vec()),
        _ => None,
    }
}

fn strlen(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let hit = ctx.db().contains(&a[1], now);
    count_lookup(ctx, hit);
    match ctx.db().get(&a[1], now) {
        None => Reply::Int(0),
        Some(e) => match &e.value {
            Value::Str(s) => Reply::Int(s.len() as i64),
            _ => wrongtype(),
        },
    }
}

/// The byte range GETRANGE returns for `start..=end` (negative = from the end) of a string of
/// `len` bytes, following Redis's clamping rules; None for the empty result.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let mut end = if end < 0 { (len + end).max(0) } else { end };
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let start = match int_arg(&a[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let end = match int_arg(&a[3]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    let hit = ctx.db().contains(&a[1], now);
    count_lookup(ctx, hit);
    match ctx.db().get(&a[1], now) {
        None => Reply::Bulk(Bytes::new()),
        Some(e) => match &e.value {
            Value::Str(s) => match clamp_range(start, end, s.len()) {
                Some((from, to)) => Reply::Bulk(Bytes::copy_from_slice(&s[from..=to])),
                None => Reply::Bulk(Bytes::new()),
            },
            _ => wrongtype(),
        },
    }
}

fn setrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let value = &a[3];
    let offset = match int_arg(&a[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if offset < 0 {
        return Reply::err_static("ERR offset is out of range");
    }
    let current_len = match get_string_len(ctx, key) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if value.is_empty() {
        // Nothing to write: the key is neither created nor touched.
        return Reply::Int(current_len.unwrap_or(0) as i64);
    }
    if let Err(e) = check_string_length(ctx, offset, value.len()) {
        return e;
    }
    if current_len.is_none() {
        ctx.db().set(key, Value::Str(CompactBytes::empty()));
    }
    let offset = offset as usize;
    let end = offset + value.len();
    let Some(buf) = string_vec(ctx, key) else {
        return wrongtype();
    };
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(value);
    let len = buf.len() as i64;
    ctx.modified(key);
    Reply::Int(len)
}

fn msetnx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() % 2 == 0 {
        return Reply::err_static("ERR wrong number of arguments for 'msetnx' command");
    }
    let now = ctx.now_ms;
    for pair in a[1..].chunks(2) {
        if ctx.db().contains(&pair[0], now) {
            return Reply::Int(0);
        }
    }
    for pair in a[1..].chunks(2) {
        if let [k, v] = pair {
            ctx.db().set(k, Value::str(v));
            ctx.modified(k);
        }
    }
    Reply::Int(1)
}

/// Add `delta` to the integer at `key` (INCR family).
pub fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Reply {
    let now = ctx.now_ms;
    let mut buf = itoa::Buffer::new();
    // An existing counter is rewritten where it lies: one hash and probe per INCR instead of a
    // lookup and then an insert (INCR at -P 16 cost the engine as much CPU as redis-server, whose
    // SET costs more than ours, until this). The TTL is kept, as Redis's INCR keeps it.
    let new = match ctx.db().get_mut(key, now) {
        Some(e) => {
            let Value::Str(s) = &mut e.value else {
                return wrongtype();
            };
            let Some(current) = args::parse_i64_strict(s) else {
                return args::not_int();
            };
            let Some(new) = current.checked_add(delta) else {
                return Reply::err_static(args::ERR_OVERFLOW);
            };
            *s = CompactBytes::new(crate::engine::protocol::reply::fmt_i64(new, &mut buf));
            new
        }
        None => {
            let text = crate::engine::protocol::reply::fmt_i64(delta, &mut buf);
            ctx.db().set(key, Value::str(text));
            delta
        }
    };
    ctx.modified(key);
    Reply::Int(new)
}

fn incr(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    incr_by(ctx, &a[1], 1)
}
fn decr(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    incr_by(ctx, &a[1], -1)
}
fn incrby(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match int_arg(&a[2]) {
        Ok(d) => incr_by(ctx, &a[1], d),
        Err(e) => e,
    }
}
fn decrby(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match int_arg(&a[2]) {
        Ok(d) if d == i64::MIN => Reply::err_static("ERR decrement would overflow"),
        Ok(d) => incr_by(ctx, &a[1], -d),
        Err(e) => e,
    }
}

fn mget(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut hits = 0;
    let out: Vec<Reply> = a[1..]
        .iter()
        .map(|k| match db.get(k, now) {
            Some(e) => {
                hits += 1;
                match &e.value {
                    Value::Str(s) => Reply::bulk_copy(s),
                    _ => Reply::Nil,
                }
            }
            None => Reply::Nil,
        })
        .collect();
    ctx.state.stats.keyspace_hits += hits;
    ctx.state.stats.keyspace_misses += (a.len() - 1) as u64 - hits;
    Reply::Array(out)
}

fn mset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() % 2 == 0 {
        return Reply::err_static("ERR wrong number of arguments for 'mset' command");
    }
    for pair in a[1..].chunks(2) {
        ctx.db().set(&pair[0], Value::str(&pair[1]));
        ctx.modified(&pair[0]);
    }
    Reply::Ok
}

/// The text INCRBYFLOAT stores for `current + incr`: computed and printed exactly as Redis does
/// in x87 `long double` (see long_double.rs), so replies match redis-server digit for digit.
fn add_floats(current: &[u8], incr: &[u8]) -> Result<String, Reply> {
    use long_double::Parsed;
    let cur = long_double::parse(current);
    let inc = long_double::parse(incr);
    let overflow = || Reply::err_static("ERR increment would produce NaN or Infinity");
    match (cur, inc) {
        (Parsed::Invalid, _) | (_, Parsed::Invalid) => Err(args::not_float()),
        (Parsed::Infinite, _) | (_, Parsed::Infinite) => Err(overflow()),
        (Parsed::Finite(a), Parsed::Finite(b)) => match long_double::add(a, b) {
            Parsed::Finite(sum) => Ok(long_double::format_human(sum)),
            _ => Err(overflow()),
        },
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let current = match get_string(ctx, key) {
        Ok(v) => v.unwrap_or_else(|| Bytes::from_static(b"0")),
        Err(e) => return e,
    };
    let text = match add_floats(&current, &a[2]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let result = Bytes::from(text);
    ctx.db().set_keep_ttl(key, Value::str(&result));
    ctx.modified(key);
    // The replica must store exactly our text, not redo a float addition.
    ctx.propagate_as(vec![
        Arg::from_static(b"SET"),
        key.clone(),
        Arg::from(result.clone()),
        Arg::from_static(b"KEEPTTL"),
    ]);
    Reply::Bulk(result)
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence,
/// by Redis's dynamic programming table and its backward walk (so ties resolve the same way).
fn lcs(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut strings = Vec::with_capacity(2);
    for key in &a[1..3] {
        match read_string(ctx, key) {
            Ok(v) => strings.push(v.unwrap_or_default()),
            Err(_) => {
                return Reply::err_static("ERR The specified keys must contain string values")
            }
        }
    }
    let (x, y) = (&strings[0], &strings[1]);
    let (mut get_len, mut get_idx, mut with_match_len) = (false, false, false);
    let mut min_match_len: i64 = 0;
    let mut i = 3;
    while i < a.len() {
        let opt = &a[i];
        if is(opt, "idx") {
            get_idx = true;
        } else if is(opt, "len") {
            get_len = true;
        } else if is(opt, "withmatchlen") {
            with_match_len = true;
        } else if is(opt, "minmatchlen") && i + 1 < a.len() {
            match int_arg(&a[i + 1]) {
                Ok(v) => min_match_len = v.max(0),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    if get_idx && get_len {
        return Reply::err_static(
            "ERR If you want both the length and indexes, please just use IDX.",
        );
    }
    let (xl, yl) = (x.len(), y.len());
    let cells = (xl as u128 + 1) * (yl as u128 + 1);
    if cells * 4 > ctx.state.config.settings.proto_max_bulk_len.max(0) as u128 {
        return Reply::err_static(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    let width = yl + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=xl {
        for j in 1..=yl {
            table[i * width + j] = if x[i - 1] == y[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[xl * width + yl];
    if get_len {
        return Reply::Int(total as i64);
    }
    // Walk back from the end, collecting the subsequence and the contiguous matching ranges.
    let mut result = vec![0u8; total as usize];
    let mut remaining = total as usize;
    let mut matches = Vec::new();
    let mut range: Option<(usize, usize, usize, usize)> = None; // a_start, a_end, b_start, b_end
    let (mut i, mut j) = (xl, yl);
    while i > 0 && j > 0 {
        let mut emit = false;
        if x[i - 1] == y[j - 1] {
            if let Some(slot) = remaining.checked_sub(1).and_then(|r| result.get_mut(r)) {
                *slot = x[i - 1];
            }
            range = match range {
                None => Some((i - 1, i - 1, j - 1, j - 1)),
                Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                    Some((a_start - 1, a_end, b_start - 1, b_end))
                }
                Some(r) => {
                    emit = true;
                    Some(r)
                }
            };
            if range.is_some_and(|(a_start, _, b_start, _)| a_start == 0 || b_start == 0) {
                emit = true;
            }
            remaining = remaining.saturating_sub(1);
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit {
            if let Some((a_start, a_end, b_start, b_end)) = range.take() {
                let len = (a_end - a_start + 1) as i64;
                if get_idx && (min_match_len == 0 || len >= min_match_len) {
                    let mut m = vec![
                        Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                        Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                    ];
                    if with_match_len {
                        m.push(Reply::Int(len));
                    }
                    matches.push(Reply::Array(m));
                }
            }
        }
    }
    if get_idx {
        Reply::Map(vec![
            (Reply::bulk_str("matches"), Reply::Array(matches)),
            (Reply::bulk_str("len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(Bytes::from(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_clamping_follows_redis() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(-100, 100, 5), Some((0, 4)));
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
    }

    #[test]
    fn float_increments_are_exact_for_small_decimals() {
        assert_eq!(add_floats(b"0.1", b"0.2").ok(), Some("0.3".to_string()));
        assert_eq!(add_floats(b"10.50", b"0.1").ok(), Some("10.6".to_string()));
        assert_eq!(add_floats(b"1.5", b"-1.5").ok(), Some("0".to_string()));
        assert_eq!(add_floats(b"-3.45", b"1.5").ok(), Some("-1.95".to_string()));
        assert_eq!(
            add_floats(b"5.0e3", b"2.0e2").ok(),
            Some("5200".to_string())
        );
        assert!(add_floats(b"abc", b"1").is_err());
        assert!(add_floats(b"1", b"inf").is_err());
    }
}
