//! Set commands (SADD, SPOP, SMOVE, SINTER/SUNION/SDIFF and their STORE variants, SSCAN ...).
//! Pure (on the locked state).

use rand::Rng;

use super::args::{self, is, syntax_error, wrongtype};
use super::flags::*;
use super::hashes::{parse_cursor, random_count, random_positions, scan_reply, ScanOptions};
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::set::SetValue;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", sadd),
    CommandSpec::new("srem", -3, WRITE | FAST, (1, 1, 1), "set", srem),
    CommandSpec::new("scard", 2, READONLY | FAST, (1, 1, 1), "set", scard),
    CommandSpec::new("sismember", 3, READONLY | FAST, (1, 1, 1), "set", sismember),
    CommandSpec::new(
        "smismember",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        "set",
        smismember,
    ),
    CommandSpec::new("smembers", 2, READONLY, (1, 1, 1), "set", smembers),
    CommandSpec::new("spop", -2, WRITE | FAST, (1, 1, 1), "set", spop),
    CommandSpec::new("srandmember", -2, READONLY, (1, 1, 1), "set", srandmember),
    CommandSpec::new("smove", 4, WRITE | FAST, (1, 2, 1), "set", smove),
    CommandSpec::new("sinter", -2, READONLY, (1, -1, 1), "set", sinter),
    CommandSpec::new("sunion", -2, READONLY, (1, -1, 1), "set", sunion),
    CommandSpec::new("sdiff", -2, READONLY, (1, -1, 1), "set", sdiff),
    CommandSpec::new(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sinterstore,
    ),
    CommandSpec::new(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sunionstore,
    ),
    CommandSpec::new(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sdiffstore,
    ),
    CommandSpec::new("sintercard", -3, READONLY, (0, 0, 0), "set", sintercard)
        .with_keys(numkeys_positions),
    CommandSpec::new("sscan", -3, READONLY, (1, 1, 1), "set", sscan),
];

/// Key positions of `CMD numkeys key...` (SINTERCARD, ZINTERCARD, ZUNION ...).
pub fn numkeys_positions(a: &[Arg]) -> Vec<usize> {
    let n = args::parse_i64_strict(a.get(1).map_or(&b""[..], |b| b)).unwrap_or(0);
    // A count past the arguments: no keys (Redis's invalid key spec), as for EVAL.
    if n <= 0 || 2 + n as usize > a.len() {
        return Vec::new();
    }
    (2..2 + n as usize).collect()
}

fn read_set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a SetValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(wrongtype()),
        },
    }
}

fn write_set<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    create: bool,
) -> Result<Option<&'a mut SetValue>, Reply> {
    let now = ctx.now_ms;
    let exists = match ctx.db().get(key, now) {
        None => false,
        Some(e) if matches!(e.value, Value::Set(_)) => true,
        Some(_) => return Err(wrongtype()),
    };
    if !exists {
        if !create {
            return Ok(None);
        }
        ctx.db().set(key, Value::Set(Default::default()));
    }
    match ctx.db().get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Set(s)) => Ok(Some(s)),
        _ => Ok(None),
    }
}

fn max_intset(ctx: &Ctx<'_>) -> usize {
    ctx.state.config.settings.set_max_intset_entries
}

fn bulk(m: &CompactBytes) -> Reply {
    Reply::bulk_copy(m)
}

fn sadd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let limit = max_intset(ctx);
    let s = match write_set(ctx, &a[1], true) {
        Ok(Some(s)) => s,
        Ok(None) => return wrongtype(),
        Err(e) => return e,
    };
    let added = a[2..].iter().filter(|m| s.insert(m, limit)).count();
    if added > 0 {
        ctx.modified(&a[1]);
    }
    Reply::Int(added as i64)
}

fn srem(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let s = match write_set(ctx, &a[1], false) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let removed = a[2..].iter().filter(|m| s.remove(m)).count();
    if s.is_empty() {
        ctx.db().remove(&a[1]);
    }
    if removed > 0 {
        ctx.modified(&a[1]);
    }
    Reply::Int(removed as i64)
}

fn scard(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_set(ctx, &a[1]) {
        Ok(s) => Reply::Int(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

fn sismember(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_set(ctx, &a[1]) {
        Ok(s) => Reply::Int(s.is_some_and(|s| s.contains(&a[2])) as i64),
        Err(e) => e,
    }
}

fn smismember(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_set(ctx, &a[1]) {
        Ok(s) => Reply::Array(
            a[2..]
                .iter()
                .map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

fn smembers(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_set(ctx, &a[1]) {
        Ok(s) => Reply::Set(s.map_or_else(Vec::new, |s| s.ordered().iter().map(bulk).collect())),
        Err(e) => e,
    }
}

fn spop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return syntax_error();
    }
    let count = if a.len() == 3 {
        match args::parse_i64_strict(&a[2]) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Reply::err_static(args::ERR_NOT_POSITIVE),
        }
    } else {
        None
    };
    let key = a[1].clone();
    let s = match write_set(ctx, &key, false) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return if count.is_some() {
                Reply::Set(Vec::new())
            } else {
                Reply::Nil
            }
        }
        Err(e) => return e,
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        let i = rng.gen_range(0..s.len().max(1));
        let Some(m) = s.get_index(i) else {
            return Reply::Nil;
        };
        s.remove(&m);
        if s.is_empty() {
            ctx.db().remove(&key);
        }
        ctx.modified(&key);
        ctx.propagate_as(vec![
            Arg::from_static(b"SREM"),
            key,
            Arg::copy_from_slice(&m),
        ]);
        return Reply::bulk_copy(&m);
    };
    if count == 0 {
        return Reply::Set(Vec::new());
    }
    if count as usize >= s.len() {
        let all = s.ordered();
        ctx.db().remove(&key);
        ctx.modified(&key);
        ctx.propagate_as(vec![Arg::from_static(b"DEL"), key]);
        return Reply::Set(all.iter().map(bulk).collect());
    }
    let positions = random_positions(s.len(), count as i64, &mut rng);
    let popped: Vec<CompactBytes> = s.members_at(&positions);
    for m in &popped {
        s.remove(m);
    }
    ctx.modified(&key);
    // One SREM per batch of members, like Redis: replicas remove exactly what was popped.
    for chunk in popped.chunks(1024) {
        let mut p = vec![Arg::from_static(b"SREM"), key.clone()];
        p.extend(chunk.iter().map(|m| Arg::copy_from_slice(m)));
        ctx.propagate_as(p);
    }
    Reply::Set(popped.iter().map(bulk).collect())
}

fn srandmember(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return syntax_error();
    }
    let count = if a.len() == 3 {
        match random_count(&a[2]) {
            Ok(n) => Some(n),
            Err(e) => return e,
        }
    } else {
        None
    };
    let s = match read_set(ctx, &a[1]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut rng = rand::thread_rng();
    match (s, count) {
        (None, None) => Reply::Nil,
        (None, Some(_)) => Reply::Array(Vec::new()),
        (Some(s), None) => {
            let i = rng.gen_range(0..s.len().max(1));
            s.get_index(i).map_or(Reply::Nil, |m| bulk(&m))
        }
        (Some(s), Some(n)) if n >= 0 && n as usize >= s.len() => {
            Reply::Array(s.ordered().iter().map(bulk).collect())
        }
        (Some(s), Some(n)) => Reply::Array(
            s.members_at(&random_positions(s.len(), n, &mut rng))
                .iter()
                .map(bulk)
                .collect(),
        ),
    }
}

fn smove(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (src, dst, member) = (&a[1], &a[2], &a[3]);
    // Redis answers 0 for a missing source before looking at the destination's type.
    let src_has = match read_set(ctx, src) {
        Err(e) => Err(e),
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => Ok(s.contains(member)),
    };
    let src_has = match (src_has, read_set(ctx, dst)) {
        (Err(e), _) | (_, Err(e)) => return e,
        (Ok(has), Ok(_)) => has,
    };
    if src == dst {
        return Reply::Int(src_has as i64);
    }
    if !src_has {
        return Reply::Int(0);
    }
    if let Ok(Some(s)) = write_set(ctx, src, false) {
        s.remove(member);
        if s.is_empty() {
            ctx.db().remove(src);
        }
    }
    ctx.modified(src);
    let limit = max_intset(ctx);
    if let Ok(Some(d)) = write_set(ctx, dst, true) {
        if d.insert(member, limit) {
            ctx.modified(dst);
        }
    }
    Reply::Int(1)
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// Compute a set operation over `keys`; WRONGTYPE if any key holds another type.
fn set_op(ctx: &mut Ctx<'_>, keys: &[Arg], op: SetOp) -> Result<SetValue, Reply> {
    let limit = max_intset(ctx);
    // First pass: type checks and lazy expiry (needs the database mutably). Second pass:
    // borrow every input at once, without copying them.
    for k in keys {
        read_set(ctx, k)?;
    }
    let now = ctx.now_ms;
    let db = &ctx.state.dbs[ctx.client.db];
    let sets: Vec<Option<&SetValue>> = keys
        .iter()
        .map(|k| match db.peek(k) {
            // A replica keeps expired keys until the master's DEL: they still read as missing.
            Some(e) if db.is_due(e.expire_at, now) => None,
            Some(e) => match &e.value {
                Value::Set(s) => Some(s),
                _ => None,
            },
            None => None,
        })
        .collect();
    let mut out = SetValue::default();
    match op {
        SetOp::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(out);
            }
            let mut present: Vec<&SetValue> = sets.iter().flatten().copied().collect();
            present.sort_by_key(|s| s.len());
            if let Some((smallest, rest)) = present.split_first() {
                for m in smallest.ordered() {
                    if rest.iter().all(|s| s.contains(&m)) {
                        out.insert(&m, limit);
                    }
                }
            }
        }
        SetOp::Union => {
            for s in sets.iter().flatten() {
                for m in s.ordered() {
                    out.insert(&m, limit);
                }
            }
        }
        SetOp::Diff => {
            if let Some(Some(first)) = sets.first() {
                for m in first.ordered() {
                    if !sets[1..].iter().flatten().any(|s| s.contains(&m)) {
                        out.insert(&m, limit);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn set_op_reply(ctx: &mut Ctx<'_>, keys: &[Arg], op: SetOp) -> Reply {
    match set_op(ctx, keys, op) {
        Ok(s) => Reply::Set(s.ordered().iter().map(bulk).collect()),
        Err(e) => e,
    }
}

fn set_op_store(ctx: &mut Ctx<'_>, a: &[Arg], op: SetOp) -> Reply {
    let dst = &a[1];
    let result = match set_op(ctx, &a[2..], op) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let card = result.len() as i64;
    if result.is_empty() {
        if ctx.db().remove(dst).is_some() {
            ctx.modified(dst);
        }
    } else {
        ctx.db().set(dst, Value::Set(result));
        ctx.modified(dst);
    }
    Reply::Int(card)
}

fn sinter(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_reply(ctx, &a[1..], SetOp::Inter)
}
fn sunion(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_reply(ctx, &a[1..], SetOp::Union)
}
fn sdiff(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_reply(ctx, &a[1..], SetOp::Diff)
}
fn sinterstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_store(ctx, a, SetOp::Inter)
}
fn sunionstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_store(ctx, a, SetOp::Union)
}
fn sdiffstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    set_op_store(ctx, a, SetOp::Diff)
}

/// Parse `numkeys` of SINTERCARD/ZINTERCARD & co.: Ok(n) with `n` keys present in `a`.
pub fn parse_numkeys(a: &[Arg], first_key: usize) -> Result<usize, Reply> {
    let n = match args::parse_i64_strict(&a[first_key - 1]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(Reply::err_static("ERR numkeys should be greater than 0")),
    };
    if n > a.len() - first_key {
        return Err(Reply::err_static(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(n)
}

/// Parse the `LIMIT n` option of SINTERCARD / ZINTERCARD (0 = no limit).
pub fn parse_card_limit(rest: &[Arg]) -> Result<usize, Reply> {
    let mut limit = 0usize;
    let mut i = 0;
    while i < rest.len() {
        if is(&rest[i], "limit") && i + 1 < rest.len() {
            match args::parse_i64_strict(&rest[i + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Err(Reply::err_static("ERR LIMIT can't be negative")),
            }
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(limit)
}

fn sintercard(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let n = match parse_numkeys(a, 2) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let limit = match parse_card_limit(&a[2 + n..]) {
        Ok(l) => l,
        Err(e) => return e,
    };
    match set_op(ctx, &a[2..2 + n], SetOp::Inter) {
        Ok(s) if limit > 0 => Reply::Int(s.len().min(limit) as i64),
        Ok(s) => Reply::Int(s.len() as i64),
        Err(e) => e,
    }
}

fn sscan(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let cursor = match parse_cursor(&a[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let s = match read_set(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return scan_reply(0, Vec::new()),
        Ok(Some(s)) => s,
    };
    let opts = match ScanOptions::parse(a, 3) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if s.is_intset() {
        // Redis returns an intset whole, in ascending order, in one call.
        let items = s
            .ordered()
            .iter()
            .filter(|m| opts.matches(m))
            .map(bulk)
            .collect();
        return scan_reply(0, items);
    }
    let mut items = Vec::new();
    let next = crate::engine::storage::db::scan_positions(s.len(), cursor, opts.count, |i| {
        if let Some(m) = s.get_index(i) {
            if opts.matches(&m) {
                items.push(bulk(&m));
            }
        }
    });
    scan_reply(next, items)
}
