//! Generic key commands: DEL, EXISTS, TYPE, expiry, databases (SELECT, FLUSHDB...). Pure (on
//! the locked state).

use bytes::Bytes;

use super::args::{int_arg, is, syntax_error, ERR_DB_RANGE};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, (1, -1, 1), "generic", del),
    CommandSpec::new("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", del),
    CommandSpec::new("exists", -2, READONLY | FAST, (1, -1, 1), "generic", exists),
    CommandSpec::new("keys", 2, READONLY, (0, 0, 0), "generic", keys),
    CommandSpec::new("type", 2, READONLY | FAST, (1, 1, 1), "generic", type_cmd),
    CommandSpec::new("expire", -3, WRITE | FAST, (1, 1, 1), "generic", expire),
    CommandSpec::new("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", pexpire),
    CommandSpec::new("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", ttl),
    CommandSpec::new("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", pttl),
    CommandSpec::new("persist", 2, WRITE | FAST, (1, 1, 1), "generic", persist),
    CommandSpec::new(
        "select",
        2,
        LOADING | STALE | FAST,
        (0, 0, 0),
        "connection",
        select,
    ),
    CommandSpec::new("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", dbsize),
    CommandSpec::new("flushdb", -1, WRITE, (0, 0, 0), "server", flushdb),
    CommandSpec::new("flushall", -1, WRITE, (0, 0, 0), "server", flushall),
];

fn del(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &a[1..] {
        // Expire first so an already-expired key counts as missing (and propagates its DEL).
        if ctx.db().contains(k, now) {
            ctx.db().remove(k);
            ctx.modified(k);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    Reply::Int(a[1..].iter().filter(|k| db.contains(k, now)).count() as i64)
}

fn type_cmd(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let t = match ctx.db().get(&a[1], now) {
        Some(e) => e.value.value_type().name(),
        None => "none",
    };
    Reply::Status(Bytes::from_static(t.as_bytes()))
}

/// The NX XX GT LT options of the EXPIRE family.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Parse the options after the time argument (Redis checks them before the time itself).
pub fn parse_expire_flags(a: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in &a[3..] {
        if is(o, "nx") {
            nx = true;
        } else if is(o, "xx") {
            xx = true;
        } else if is(o, "gt") {
            gt = true;
        } else if is(o, "lt") {
            lt = true;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(o)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::err_static(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::err_static(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(ExpireFlags { nx, xx, gt, lt })
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT. `at_ms` is the absolute deadline.
pub fn expire_generic(ctx: &mut Ctx<'_>, a: &[Bytes], f: ExpireFlags, at_ms: i64) -> Reply {
    let ExpireFlags { nx, xx, gt, lt } = f;
    let key = &a[1];
    let now = ctx.now_ms;
    let Some(e) = ctx.db().get(key, now) else {
        return Reply::Int(0);
    };
    let current = e.expire_at;
    // A key without TTL counts as an infinite TTL for GT/LT (Redis semantics).
    if (nx && current != 0)
        || (xx && current == 0)
        || (gt && (current == 0 || at_ms <= current))
        || (lt && current != 0 && at_ms >= current)
    {
        return Reply::Int(0);
    }
    if at_ms <= now {
        // A deadline in the past deletes the key, and that is what gets propagated.
        ctx.db().remove(key);
        ctx.modified(key);
        ctx.propagate_as(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Reply::Int(1);
    }
    ctx.db().set_expire(key, at_ms);
    ctx.modified(key);
    ctx.propagate_as(vec![
        Bytes::from_static(b"PEXPIREAT"),
        key.clone(),
        Bytes::from(at_ms.to_string()),
    ]);
    Reply::Int(1)
}

fn expire_arg(
    ctx: &Ctx<'_>,
    a: &[Bytes],
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> Result<i64, Reply> {
    let v = int_arg(&a[2])?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{cmd}' command"));
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    if absolute {
        Ok(ms)
    } else {
        ctx.now_ms.checked_add(ms).ok_or_else(invalid)
    }
}

/// Shared body of the EXPIRE family: options first, then the time, then the change.
pub fn expire_command(
    ctx: &mut Ctx<'_>,
    a: &[Bytes],
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> Reply {
    let flags = match parse_expire_flags(a) {
        Ok(f) => f,
        Err(e) => return e,
    };
    match expire_arg(ctx, a, unit_ms, absolute, cmd) {
        Ok(at) => expire_generic(ctx, a, flags, at),
        Err(e) => e,
    }
}

fn expire(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    expire_command(ctx, a, 1000, false, "expire")
}
fn pexpire(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    expire_command(ctx, a, 1, false, "pexpire")
}

fn keys(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let pattern = &a[1];
    let all = pattern.as_ref() == b"*";
    let out = ctx
        .db()
        .iter()
        .filter(|(k, e)| {
            (e.expire_at == 0 || e.expire_at > now)
                && (all || crate::engine::glob::glob_match(pattern, k, false))
        })
        .map(|(k, _)| Reply::Bulk(k.to_bytes()))
        .collect();
    Reply::Array(out)
}

/// Remaining TTL in ms: -2 missing, -1 no expiry.
pub fn ttl_ms(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => -2,
        Some(e) if e.expire_at == 0 => -1,
        Some(e) => (e.expire_at - now).max(0),
    }
}

fn ttl(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let t = ttl_ms(ctx, &a[1]);
    Reply::Int(if t < 0 { t } else { (t + 500) / 1000 })
}
fn pttl(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    Reply::Int(ttl_ms(ctx, &a[1]))
}

fn persist(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    if ctx.db().get(&a[1], now).is_none() {
        return Reply::Int(0);
    }
    if ctx.db().persist(&a[1]) {
        ctx.modified(&a[1]);
        Reply::Int(1)
    } else {
        Reply::Int(0)
    }
}

/// Parse a database index argument.
pub fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, Reply> {
    let n = int_arg(arg)
        .map_err(|_| Reply::err_static("ERR value is not an integer or out of range"))?;
    if n < 0 || n as usize >= ctx.state.dbs.len() {
        return Err(Reply::err_static(ERR_DB_RANGE));
    }
    Ok(n as usize)
}

fn select(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match db_index(ctx, &a[1]) {
        Ok(i) => {
            ctx.client.db = i;
            Reply::Ok
        }
        Err(e) => e,
    }
}

fn dbsize(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

fn flush_option(a: &[Bytes]) -> Result<(), Reply> {
    match a.len() {
        1 => Ok(()),
        2 if is(&a[1], "async") || is(&a[1], "sync") => Ok(()),
        _ => Err(syntax_error()),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if let Err(e) = flush_option(a) {
        return e;
    }
    let db = ctx.client.db;
    ctx.state.watches.touch_flushed(db, &ctx.state.dbs[db]);
    ctx.state.dbs[db].clear();
    ctx.state.dirty += 1;
    Reply::Ok
}

fn flushall(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if let Err(e) = flush_option(a) {
        return e;
    }
    for db in 0..ctx.state.dbs.len() {
        ctx.state.watches.touch_flushed(db, &ctx.state.dbs[db]);
        ctx.state.dbs[db].clear();
    }
    ctx.state.dirty += 1;
    Reply::Ok
}
