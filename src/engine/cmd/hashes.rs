//! Hash commands (HSET, HGET, HINCRBY, HRANDFIELD, HSCAN ...), plus the cursor/option parsing
//! that HSCAN, SSCAN and ZSCAN share. Pure (on the locked state).

use bytes::Bytes;
use rand::Rng;

use super::args::{self, int_arg, is, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::glob::glob_match;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::{format_float_human, Reply};
use crate::engine::storage::hash::HashValue;
use crate::engine::storage::Value;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hset),
    CommandSpec::new(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hmset,
    ),
    CommandSpec::new(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hsetnx,
    ),
    CommandSpec::new("hget", 3, READONLY | FAST, (1, 1, 1), "hash", hget),
    CommandSpec::new("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", hmget),
    CommandSpec::new("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", hdel),
    CommandSpec::new("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", hlen),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", hstrlen),
    CommandSpec::new("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", hexists),
    CommandSpec::new("hkeys", 2, READONLY, (1, 1, 1), "hash", hkeys),
    CommandSpec::new("hvals", 2, READONLY, (1, 1, 1), "hash", hvals),
    CommandSpec::new("hgetall", 2, READONLY, (1, 1, 1), "hash", hgetall),
    CommandSpec::new(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrby,
    ),
    CommandSpec::new(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrbyfloat,
    ),
    CommandSpec::new("hrandfield", -2, READONLY, (1, 1, 1), "hash", hrandfield),
    CommandSpec::new("hscan", -3, READONLY, (1, 1, 1), "hash", hscan),
];

/// Read access to the hash at `key`: Ok(None) when missing, WRONGTYPE for other types.
fn read_hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a HashValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(wrongtype()),
        },
    }
}

/// Write access to the hash at `key`, created empty when missing and `create` is set.
fn write_hash<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    create: bool,
) -> Result<Option<&'a mut HashValue>, Reply> {
    let now = ctx.now_ms;
    let exists = match ctx.db().get(key, now) {
        None => false,
        Some(e) if matches!(e.value, Value::Hash(_)) => true,
        Some(_) => return Err(wrongtype()),
    };
    if !exists {
        if !create {
            return Ok(None);
        }
        ctx.db().set(key, Value::Hash(Default::default()));
    }
    match ctx.db().get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Hash(h)) => Ok(Some(h)),
        _ => Ok(None),
    }
}

fn limits(ctx: &Ctx<'_>) -> (usize, usize) {
    let s = &ctx.state.config.settings;
    (s.hash_max_listpack_entries, s.hash_max_listpack_value)
}

fn hset_generic(ctx: &mut Ctx<'_>, a: &[Arg], name: &str) -> Result<i64, Reply> {
    if a.len() % 2 != 0 {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let (max_entries, max_value) = limits(ctx);
    let h = write_hash(ctx, &a[1], true)?.ok_or_else(wrongtype)?;
    let mut added = 0;
    for pair in a[2..].chunks(2) {
        if h.insert(&pair[0], &pair[1], max_entries, max_value) {
            added += 1;
        }
    }
    ctx.modified(&a[1]);
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    hset_generic(ctx, a, "hset").map_or_else(|e| e, Reply::Int)
}

fn hmset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    hset_generic(ctx, a, "hmset").map_or_else(|e| e, |_| Reply::Ok)
}

fn hsetnx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (max_entries, max_value) = limits(ctx);
    match read_hash(ctx, &a[1]) {
        Err(e) => return e,
        Ok(Some(h)) if h.get(&a[2]).is_some() => return Reply::Int(0),
        Ok(_) => {}
    }
    match write_hash(ctx, &a[1], true) {
        Ok(Some(h)) => {
            h.insert(&a[2], &a[3], max_entries, max_value);
        }
        Ok(None) => return wrongtype(),
        Err(e) => return e,
    }
    ctx.modified(&a[1]);
    Reply::Int(1)
}

fn hget(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => h
            .and_then(|h| h.get(&a[2]))
            .map_or(Reply::Nil, Reply::bulk_copy),
    }
}

fn hmget(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Array(
            a[2..]
                .iter()
                .map(|f| {
                    h.and_then(|h| h.get(f))
                        .map_or(Reply::Nil, Reply::bulk_copy)
                })
                .collect(),
        ),
    }
}

fn hdel(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let h = match write_hash(ctx, &a[1], false) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(h)) => h,
    };
    let mut removed = 0;
    for f in &a[2..] {
        if h.remove(f) {
            removed += 1;
        }
    }
    let empty = h.is_empty();
    if empty {
        ctx.db().remove(&a[1]);
    }
    if removed > 0 {
        ctx.modified(&a[1]);
    }
    Reply::Int(removed)
}

fn hlen(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Int(h.map_or(0, |h| h.len() as i64)),
    }
}

fn hstrlen(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Int(h.and_then(|h| h.get(&a[2])).map_or(0, |v| v.len() as i64)),
    }
}

fn hexists(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Int(h.and_then(|h| h.get(&a[2])).is_some() as i64),
    }
}

fn hkeys(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Array(h.map_or_else(Vec::new, |h| {
            h.iter().map(|(k, _)| Reply::bulk_copy(k)).collect()
        })),
    }
}

fn hvals(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Array(h.map_or_else(Vec::new, |h| {
            h.iter().map(|(_, v)| Reply::bulk_copy(v)).collect()
        })),
    }
}

fn hgetall(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_hash(ctx, &a[1]) {
        Err(e) => e,
        Ok(h) => Reply::Map(h.map_or_else(Vec::new, |h| {
            h.iter()
                .map(|(k, v)| (Reply::bulk_copy(k), Reply::bulk_copy(v)))
                .collect()
        })),
    }
}

fn hincrby(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let delta = match int_arg(&a[3]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let (max_entries, max_value) = limits(ctx);
    let h = match write_hash(ctx, &a[1], true) {
        Err(e) => return e,
        Ok(None) => return wrongtype(),
        Ok(Some(h)) => h,
    };
    let current = match h.get(&a[2]) {
        None => 0,
        Some(v) => match args::parse_i64_strict(v) {
            Some(n) => n,
            None => return Reply::err_static("ERR hash value is not an integer"),
        },
    };
    let Some(new) = current.checked_add(delta) else {
        return Reply::err_static(args::ERR_OVERFLOW);
    };
    h.insert(&a[2], new.to_string().as_bytes(), max_entries, max_value);
    ctx.modified(&a[1]);
    Reply::Int(new)
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let delta = match args::float_arg(&a[3]) {
        Ok(d) if d.is_infinite() => return Reply::err_static("ERR value is NaN or Infinity"),
        Ok(d) => d,
        Err(e) => return e,
    };
    let (max_entries, max_value) = limits(ctx);
    let h = match write_hash(ctx, &a[1], true) {
        Err(e) => return e,
        Ok(None) => return wrongtype(),
        Ok(Some(h)) => h,
    };
    let current = match h.get(&a[2]) {
        None => 0.0,
        Some(v) => match args::parse_f64(v) {
            Some(n) => n,
            None => return Reply::err_static("ERR hash value is not a float"),
        },
    };
    let new = current + delta;
    if !new.is_finite() {
        return Reply::err_static("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_float_human(new));
    h.insert(&a[2], &text, max_entries, max_value);
    ctx.modified(&a[1]);
    // Replicas get the result, not the addition: float rounding must not differ between them.
    ctx.propagate_as(vec![
        Arg::from_static(b"HSET"),
        a[1].clone(),
        a[2].clone(),
        Arg::from(text.clone()),
    ]);
    Reply::Bulk(text)
}

/// Parse the `count` argument of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER like Redis 7.0
/// (`-LONG_MAX..=LONG_MAX`).
pub fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    match args::parse_i64_strict(arg) {
        // Redis would try to emit that many elements (and never finish); we refuse counts whose
        // reply could not be built in memory, instead of aborting on allocation.
        Some(i64::MIN) => Err(Reply::err_static(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        Some(n) if n < -MAX_RANDOM_REPEATS => Err(Reply::err_static("ERR value is out of range")),
        Some(n) => Ok(n),
        None => Err(args::not_int()),
    }
}

/// The largest number of (possibly repeated) elements a negative random count may ask for.
pub const MAX_RANDOM_REPEATS: i64 = 1 << 24;

/// Positions for a "random members with count" reply: distinct positions when `count >= 0`
/// (at most `len`), otherwise `-count` positions that may repeat.
pub fn random_positions(len: usize, count: i64, rng: &mut impl Rng) -> Vec<usize> {
    if len == 0 || count == 0 {
        return Vec::new();
    }
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        return (0..n).map(|_| rng.gen_range(0..len)).collect();
    }
    let n = (count as usize).min(len);
    let mut picked = rand::seq::index::sample(rng, len, n).into_vec();
    if n == len {
        // Redis returns the whole collection in its own order in this case.
        picked.sort_unstable();
    }
    picked
}

fn hrandfield(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut with_values = false;
    let mut count = None;
    if a.len() >= 3 {
        match random_count(&a[2]) {
            Ok(n) => count = Some(n),
            Err(e) => return e,
        }
        if a.len() == 4 && is(&a[3], "withvalues") {
            with_values = true;
        } else if a.len() > 3 {
            return syntax_error();
        }
    }
    let proto = ctx.client.proto;
    let h = match read_hash(ctx, &a[1]) {
        Err(e) => return e,
        Ok(h) => h,
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return match h {
            None => Reply::Nil,
            Some(h) => {
                let i = rng.gen_range(0..h.len().max(1));
                h.get_index(i)
                    .map_or(Reply::Nil, |(k, _)| Reply::bulk_copy(k))
            }
        };
    };
    let Some(h) = h else {
        return Reply::Array(Vec::new());
    };
    let mut out = Vec::new();
    let positions = random_positions(h.len(), count, &mut rng);
    for (k, v) in h.pairs_at(&positions) {
        if with_values && proto >= 3 {
            out.push(Reply::Array(vec![Reply::bulk_copy(k), Reply::bulk_copy(v)]));
        } else {
            out.push(Reply::bulk_copy(k));
            if with_values {
                out.push(Reply::bulk_copy(v));
            }
        }
    }
    Reply::Array(out)
}

/// Parse a SCAN cursor like Redis's `strtoul`-based parser: "ERR invalid cursor" otherwise.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::err_static("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let text = std::str::from_utf8(digits).map_err(|_| invalid())?;
    let v: u64 = text.parse().map_err(|_| invalid())?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// MATCH / COUNT options of HSCAN, SSCAN and ZSCAN.
pub struct ScanOptions {
    pub pattern: Option<Arg>,
    pub count: usize,
}

impl ScanOptions {
    /// Parse the options starting at `a[from]`.
    pub fn parse(a: &[Arg], from: usize) -> Result<ScanOptions, Reply> {
        let mut opts = ScanOptions {
            pattern: None,
            count: 10,
        };
        let mut i = from;
        while i < a.len() {
            if is(&a[i], "count") && i + 1 < a.len() {
                let n = int_arg(&a[i + 1])?;
                if n < 1 {
                    return Err(syntax_error());
                }
                opts.count = n as usize;
            } else if is(&a[i], "match") && i + 1 < a.len() {
                let p = a[i + 1].clone();
                // "*" matches everything: skip the matcher, as Redis does.
                opts.pattern = if p.as_ref() == b"*" { None } else { Some(p) };
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
        Ok(opts)
    }

    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, item, false))
    }
}

/// The reply of the SCAN family: `[cursor, [items...]]`.
pub fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}

fn hscan(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let cursor = match parse_cursor(&a[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let h = match read_hash(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return scan_reply(0, Vec::new()),
        Ok(Some(h)) => h,
    };
    let opts = match ScanOptions::parse(a, 3) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    let mut push = |k: &[u8], v: &[u8]| {
        if opts.matches(k) {
            items.push(Reply::Bulk(Bytes::copy_from_slice(k)));
            items.push(Reply::Bulk(Bytes::copy_from_slice(v)));
        }
    };
    if h.is_packed() {
        // Redis returns a listpack hash whole, in order, in one call.
        for (k, v) in h.iter() {
            push(k, v);
        }
        return scan_reply(0, items);
    }
    let next = crate::engine::storage::db::scan_positions(h.len(), cursor, opts.count, |i| {
        if let Some((k, v)) = h.get_index(i) {
            push(k, v);
        }
    });
    scan_reply(next, items)
}
