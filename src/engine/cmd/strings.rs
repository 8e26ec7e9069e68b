//! String commands: GET, SET and its variants, counters, ranges. Pure (on the locked state).

use bytes::Bytes;

use super::args::{self, int_arg, is, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::Value;

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

fn count_lookup(ctx: &mut Ctx<'_>, hit: bool) {
    if hit {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
}

fn get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match get_string(ctx, &a[1]) {
        Ok(Some(v)) => {
            count_lookup(ctx, true);
            Reply::Bulk(v)
        }
        Ok(None) => {
            count_lookup(ctx, false);
            Reply::Nil
        }
        Err(e) => e,
    }
}

/// Expiry option of SET / GETEX, resolved to an absolute time in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExpiryArg {
    None,
    At(i64),
    KeepTtl,
    Persist,
}

/// Parse `EX s | PX ms | EXAT ts | PXAT ms` at a[i] (value at a[i+1]); Redis's checks and
/// messages ("invalid expire time in 'set' command").
pub fn parse_expiry(cmd: &str, unit: &[u8], value: &[u8], now_ms: i64) -> Result<i64, Reply> {
    let v = int_arg(value)?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{cmd}' command"));
    if v <= 0 {
        return Err(invalid());
    }
    let (ms, absolute) = if is(unit, "ex") {
        (v.checked_mul(1000).ok_or_else(invalid)?, false)
    } else if is(unit, "px") {
        (v, false)
    } else if is(unit, "exat") {
        (v.checked_mul(1000).ok_or_else(invalid)?, true)
    } else {
        (v, true)
    };
    if absolute {
        Ok(ms)
    } else {
        now_ms.checked_add(ms).ok_or_else(invalid)
    }
}

fn set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut get_old) = (false, false, false);
    let mut expiry = ExpiryArg::None;
    let mut i = 3;
    while i < a.len() {
        let o = &a[i];
        if is(o, "nx") && !xx {
            nx = true;
        } else if is(o, "xx") && !nx {
            xx = true;
        } else if is(o, "get") {
            get_old = true;
        } else if is(o, "keepttl") && expiry == ExpiryArg::None {
            expiry = ExpiryArg::KeepTtl;
        } else if (is(o, "ex") || is(o, "px") || is(o, "exat") || is(o, "pxat"))
            && expiry == ExpiryArg::None
            && i + 1 < a.len()
        {
            match parse_expiry("set", o, &a[i + 1], ctx.now_ms) {
                Ok(at) => expiry = ExpiryArg::At(at),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    let key = &a[1];
    let old = if get_old {
        match get_string(ctx, key) {
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
    let value = Value::str(&a[2]);
    match expiry {
        ExpiryArg::KeepTtl => ctx.db().set_keep_ttl(key, value),
        _ => ctx.db().set(key, value),
    }
    if let ExpiryArg::At(at) = expiry {
        ctx.db().set_expire(key, at);
        // Replicas and the log get an absolute time, so replay gives the same deadline.
        let mut p = vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            a[2].clone(),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ];
        if get_old {
            p.push(Bytes::from_static(b"GET"));
        }
        ctx.propagate_as(p);
    }
    ctx.modified(key);
    match old {
        Some(v) => v.map(Reply::Bulk).unwrap_or(Reply::Nil),
        None => Reply::Ok,
    }
}

/// Add `delta` to the integer at `key` (INCR family).
pub fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Reply {
    let now = ctx.now_ms;
    let current = match ctx.db().get(key, now) {
        None => 0,
        Some(e) => match &e.value {
            Value::Str(s) => match args::parse_i64_strict(s) {
                Some(v) => v,
                None => return args::not_int(),
            },
            _ => return wrongtype(),
        },
    };
    let Some(new) = current.checked_add(delta) else {
        return Reply::err_static(args::ERR_OVERFLOW);
    };
    let mut buf = [0u8; 20];
    let text = crate::engine::protocol::reply::fmt_i64(new, &mut buf);
    ctx.db().set_keep_ttl(key, Value::str(text));
    ctx.modified(key);
    Reply::Int(new)
}

fn incr(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    incr_by(ctx, &a[1], 1)
}
fn decr(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    incr_by(ctx, &a[1], -1)
}
fn incrby(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match int_arg(&a[2]) {
        Ok(d) => incr_by(ctx, &a[1], d),
        Err(e) => e,
    }
}
fn decrby(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match int_arg(&a[2]) {
        Ok(d) if d == i64::MIN => Reply::err_static("ERR decrement would overflow"),
        Ok(d) => incr_by(ctx, &a[1], -d),
        Err(e) => e,
    }
}

fn mget(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    let out = a[1..]
        .iter()
        .map(|k| match db.get(k, now) {
            Some(e) => match &e.value {
                Value::Str(s) => Reply::Bulk(s.to_bytes()),
                _ => Reply::Nil,
            },
            None => Reply::Nil,
        })
        .collect();
    Reply::Array(out)
}

fn mset(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if a.len() % 2 == 0 {
        return Reply::err_static("ERR wrong number of arguments for 'mset' command");
    }
    for pair in a[1..].chunks(2) {
        ctx.db().set(&pair[0], Value::str(&pair[1]));
        ctx.modified(&pair[0]);
    }
    Reply::Ok
}
