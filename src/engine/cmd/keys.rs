//! Generic key commands: DEL, EXISTS, TYPE, SCAN, RENAME, MOVE, COPY, expiry, OBJECT,
//! DUMP/RESTORE, databases (SELECT, SWAPDB, FLUSHDB...). Pure (on the locked state).

use bytes::Bytes;

use super::args::{int_arg, is, not_int, syntax_error, ERR_DB_RANGE, ERR_NO_SUCH_KEY};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::config::Settings;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::db::{lfu_decayed, lfu_pack, lru_clock, AccessPolicy};
use crate::engine::storage::value::string_encoding;
use crate::engine::storage::{rdb, CompactBytes, Entry, Value, ValueType};

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
    CommandSpec::new("scan", -2, READONLY, (0, 0, 0), "generic", scan),
    CommandSpec::new("randomkey", 1, READONLY, (0, 0, 0), "generic", randomkey),
    CommandSpec::new("rename", 3, WRITE, (1, 2, 1), "generic", rename),
    CommandSpec::new("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", renamenx),
    CommandSpec::new("move", 3, WRITE | FAST, (1, 1, 1), "generic", move_cmd),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", copy),
    CommandSpec::new("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", expireat),
    CommandSpec::new(
        "pexpireat",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        "generic",
        pexpireat,
    ),
    CommandSpec::new(
        "expiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        expiretime,
    ),
    CommandSpec::new(
        "pexpiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        pexpiretime,
    ),
    CommandSpec::new("touch", -2, READONLY | FAST, (1, -1, 1), "generic", touch),
    CommandSpec::new("object", -2, 0, (0, 0, 0), "generic", object_help).with_subcommands(&[
        CommandSpec::new(
            "encoding",
            3,
            READONLY,
            (2, 2, 1),
            "generic",
            object_encoding,
        ),
        CommandSpec::new(
            "refcount",
            3,
            READONLY,
            (2, 2, 1),
            "generic",
            object_refcount,
        ),
        CommandSpec::new(
            "idletime",
            3,
            READONLY,
            (2, 2, 1),
            "generic",
            object_idletime,
        ),
        CommandSpec::new("freq", 3, READONLY, (2, 2, 1), "generic", object_freq),
        CommandSpec::new(
            "help",
            2,
            LOADING | STALE,
            (0, 0, 0),
            "generic",
            object_help,
        ),
    ]),
    CommandSpec::new("swapdb", 3, WRITE | FAST, (0, 0, 0), "server", swapdb),
    CommandSpec::new("dump", 2, READONLY, (1, 1, 1), "generic", dump),
    CommandSpec::new(
        "restore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "generic",
        restore,
    ),
    // What a cluster's MIGRATE sends; without cluster mode redis-server runs it as RESTORE.
    CommandSpec::new(
        "restore-asking",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "server",
        restore,
    ),
];

fn del(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    // UNLINK (or DEL with lazyfree-lazy-user-del) leaves big values to the lazyfree thread.
    let lazy = is(&a[0], "unlink") || ctx.state.config.settings.lazyfree_lazy_user_del;
    let mut n = 0;
    for k in &a[1..] {
        // Expire first so an already-expired key counts as missing (and propagates its DEL).
        if ctx.db().contains(k, now) {
            let removed = ctx.db().remove(k);
            if let (true, Some(entry)) = (lazy, removed) {
                crate::engine::state::lazyfree::free_value(&ctx.state.lazyfree, entry.value);
            }
            ctx.modified(k);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    Reply::Int(a[1..].iter().filter(|k| db.contains(k, now)).count() as i64)
}

fn type_cmd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let t = match ctx.db().get_untouched(&a[1], now) {
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
pub fn parse_expire_flags(a: &[Arg]) -> Result<ExpireFlags, Reply> {
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
pub fn expire_generic(ctx: &mut Ctx<'_>, a: &[Arg], f: ExpireFlags, at_ms: i64) -> Reply {
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
    // A deadline of 0 or below is in the past too (EXPIREAT k 0 deletes k); an entry's
    // `expire_at` of 0 means "no TTL", so such a deadline is kept as 1.
    let at_ms = at_ms.max(1);
    if ctx.db().is_due(at_ms, now) {
        // A deadline in the past deletes the key, and that is what gets propagated. Not while
        // a stream is applied: there the key keeps the deadline until the stream's DEL (the
        // master wrote a PEXPIREAT, so at the time it was in the future).
        ctx.db().remove(key);
        ctx.modified(key);
        ctx.propagate_as(vec![Arg::from_static(b"DEL"), key.clone()]);
        return Reply::Int(1);
    }
    ctx.db().set_expire(key, at_ms);
    ctx.modified(key);
    ctx.propagate_as(vec![
        Arg::from_static(b"PEXPIREAT"),
        key.clone(),
        Arg::from(at_ms.to_string()),
    ]);
    Reply::Int(1)
}

fn expire_arg(
    ctx: &Ctx<'_>,
    a: &[Arg],
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
    a: &[Arg],
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

fn expire(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    expire_command(ctx, a, 1000, false, "expire")
}
fn pexpire(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    expire_command(ctx, a, 1, false, "pexpire")
}

fn keys(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
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
        .map(|(k, _)| Reply::bulk_copy(k))
        .collect();
    Reply::Array(out)
}

/// Remaining TTL in ms: -2 missing, -1 no expiry.
pub fn ttl_ms(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    let now = ctx.now_ms;
    match ctx.db().get_untouched(key, now) {
        None => -2,
        Some(e) if e.expire_at == 0 => -1,
        Some(e) => (e.expire_at - now).max(0),
    }
}

fn ttl(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let t = ttl_ms(ctx, &a[1]);
    Reply::Int(if t < 0 { t } else { (t + 500) / 1000 })
}
fn pttl(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::Int(ttl_ms(ctx, &a[1]))
}

fn persist(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
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

/// An argument Redis reads with `getIntFromObjectOrReply`: an integer that must fit 32 bits.
fn int32_arg(arg: &[u8]) -> Result<i64, Reply> {
    let n = int_arg(arg)?;
    if n < i32::MIN as i64 || n > i32::MAX as i64 {
        return Err(Reply::err_static(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(n)
}

/// Parse a database index argument (SELECT, MOVE, COPY ... DB).
pub fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, Reply> {
    let n = int32_arg(arg)?;
    if n < 0 || n as usize >= ctx.state.dbs.len() {
        return Err(Reply::err_static(ERR_DB_RANGE));
    }
    Ok(n as usize)
}

fn select(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match db_index(ctx, &a[1]) {
        Ok(i) => {
            ctx.client.db = i;
            Reply::Ok
        }
        Err(e) => e,
    }
}

fn dbsize(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

/// Whether a flush frees in the background: ASYNC, or no mode and lazyfree-lazy-user-flush.
fn flush_option(ctx: &Ctx<'_>, a: &[Arg]) -> Result<bool, Reply> {
    match a.len() {
        1 => Ok(ctx.state.config.settings.lazyfree_lazy_user_flush),
        2 if is(&a[1], "async") => Ok(true),
        2 if is(&a[1], "sync") => Ok(false),
        _ => Err(syntax_error()),
    }
}

/// Empty database `db`, its contents freed by the lazyfree thread when `lazy`.
fn flush_one(ctx: &mut Ctx<'_>, db: usize, lazy: bool) {
    if lazy {
        let (contents, keys) = ctx.state.dbs[db].take_contents();
        crate::engine::state::lazyfree::free_contents(&ctx.state.lazyfree, contents, keys);
    } else {
        ctx.state.dbs[db].clear();
    }
}

fn flushdb(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let lazy = match flush_option(ctx, a) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let db = ctx.client.db;
    ctx.state.watches.touch_flushed(db, &ctx.state.dbs[db]);
    flush_one(ctx, db, lazy);
    ctx.state.dirty += 1;
    crate::engine::tracking::invalidate_all(ctx.state, ctx.now_ms);
    Reply::Ok
}

fn flushall(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let lazy = match flush_option(ctx, a) {
        Ok(l) => l,
        Err(e) => return e,
    };
    for db in 0..ctx.state.dbs.len() {
        ctx.state.watches.touch_flushed(db, &ctx.state.dbs[db]);
        flush_one(ctx, db, lazy);
    }
    ctx.state.dirty += 1;
    crate::engine::tracking::invalidate_all(ctx.state, ctx.now_ms);
    Reply::Ok
}

/// Parse a SCAN cursor like Redis (`strtoull`: optional sign, digits, no spaces, no overflow).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::err_static("ERR invalid cursor");
    // strtoull converts nothing from an empty string and leaves nothing unparsed: cursor 0.
    if arg.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The MATCH, COUNT and TYPE options shared by the SCAN family.
pub struct ScanOptions {
    pub pattern: Option<Arg>,
    pub count: usize,
    /// `Some(None)`: a TYPE Redis does not know, which matches nothing.
    pub type_filter: Option<Option<ValueType>>,
}

/// Parse SCAN options starting at `a[from]`; `allow_type` only for SCAN itself.
pub fn parse_scan_options(a: &[Arg], from: usize, allow_type: bool) -> Result<ScanOptions, Reply> {
    let mut opts = ScanOptions {
        pattern: None,
        count: 10,
        type_filter: None,
    };
    let mut i = from;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        if is(&a[i], "count") && has_value {
            let n = int_arg(&a[i + 1])?;
            if n < 1 {
                return Err(syntax_error());
            }
            opts.count = n as usize;
        } else if is(&a[i], "match") && has_value {
            let p = a[i + 1].clone();
            opts.pattern = if p.as_ref() == b"*" { None } else { Some(p) };
        } else if allow_type && is(&a[i], "type") && has_value {
            opts.type_filter = Some(ValueType::from_name(&a[i + 1]));
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    Ok(opts)
}

fn scan(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let cursor = match parse_cursor(&a[1]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let opts = match parse_scan_options(a, 2, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    let mut found: Vec<CompactBytes> = Vec::new();
    let mut expired: Vec<CompactBytes> = Vec::new();
    let next = ctx.db().scan(cursor, opts.count, |k, e| {
        if e.expire_at != 0 && e.expire_at <= now {
            expired.push(k.clone());
            return;
        }
        if let Some(p) = &opts.pattern {
            if !crate::engine::glob::glob_match(p, k, false) {
                return;
            }
        }
        if let Some(t) = opts.type_filter {
            if t != Some(e.value.value_type()) {
                return;
            }
        }
        found.push(k.clone());
    });
    // Expired keys met on the walk are removed (and their DEL propagated) as Redis does. They
    // sit at visited positions, so removing them cannot hide an unvisited key from the cursor.
    for k in expired {
        ctx.db().get_untouched(&k, now);
    }
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(found.iter().map(|k| Reply::bulk_copy(k)).collect()),
    ])
}

fn randomkey(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    // Expired keys found on the way are deleted; with a keyspace of only volatile keys Redis
    // gives up after 100 tries and returns an expired key rather than loop forever.
    for _ in 0..100 {
        let db = ctx.db();
        let Some(i) = db.random_index() else {
            return Reply::Nil;
        };
        let Some((k, _)) = db.get_index(i) else {
            return Reply::Nil;
        };
        let k = k.clone();
        if db.get_untouched(&k, now).is_some() {
            return Reply::bulk_copy(&k);
        }
    }
    let db = ctx.db();
    match db.random_index().and_then(|i| db.get_index(i)) {
        Some((k, _)) => Reply::bulk_copy(k),
        None => Reply::Nil,
    }
}

/// RENAME and RENAMENX: move the entry (value and TTL) to the new name.
fn rename_generic(ctx: &mut Ctx<'_>, a: &[Arg], nx: bool) -> Reply {
    let (src, dst) = (&a[1], &a[2]);
    let now = ctx.now_ms;
    if ctx.db().get_untouched(src, now).is_none() {
        return Reply::err_static(ERR_NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    if nx && ctx.db().get_untouched(dst, now).is_some() {
        return Reply::Int(0);
    }
    let Some((_, entry)) = ctx.db().remove_entry(src) else {
        return Reply::err_static(ERR_NO_SUCH_KEY);
    };
    ctx.db().insert_entry(CompactBytes::new(dst), entry);
    ctx.modified(src);
    ctx.modified(dst);
    signal_if_blockable(ctx, dst);
    if nx {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

/// A key that now holds a list, sorted set or stream may serve blocked clients.
fn signal_if_blockable(ctx: &mut Ctx<'_>, key: &[u8]) {
    let blockable = matches!(
        ctx.db().peek(key).map(|e| e.value.value_type()),
        Some(ValueType::List | ValueType::ZSet | ValueType::Stream)
    );
    if blockable {
        ctx.signal_ready(key);
    }
}

fn rename(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    rename_generic(ctx, a, false)
}
fn renamenx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    rename_generic(ctx, a, true)
}

fn move_cmd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let target = match db_index(ctx, &a[2]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let src_db = ctx.client.db;
    if target == src_db {
        return Reply::err_static("ERR source and destination objects are the same");
    }
    let now = ctx.now_ms;
    if ctx.db().get_untouched(key, now).is_none() {
        return Reply::Int(0);
    }
    if ctx.state.dbs[target].get_untouched(key, now).is_some() {
        return Reply::Int(0);
    }
    let Some((k, entry)) = ctx.db().remove_entry(key) else {
        return Reply::Int(0);
    };
    let blockable = matches!(
        entry.value.value_type(),
        ValueType::List | ValueType::ZSet | ValueType::Stream
    );
    ctx.state.dbs[target].insert_entry(k, entry);
    ctx.modified(key);
    ctx.modified_in(target, key);
    if blockable && ctx.state.blocking.has_waiters(target, key) {
        ctx.state
            .blocking
            .ready
            .push((target, CompactBytes::new(key)));
    }
    Reply::Int(1)
}

fn copy(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (src, dst) = (&a[1], &a[2]);
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        if is(&a[i], "replace") {
            replace = true;
            i += 1;
        } else if is(&a[i], "db") && i + 1 < a.len() {
            dst_db = match db_index(ctx, &a[i + 1]) {
                Ok(d) => d,
                Err(e) => return e,
            };
            i += 2;
        } else {
            return syntax_error();
        }
    }
    if src_db == dst_db && src == dst {
        return Reply::err_static("ERR source and destination objects are the same");
    }
    let now = ctx.now_ms;
    let Some(entry) = ctx.state.dbs[src_db].get(src, now).cloned() else {
        return Reply::Int(0);
    };
    if ctx.state.dbs[dst_db].get_untouched(dst, now).is_some() && !replace {
        return Reply::Int(0);
    }
    let blockable = matches!(
        entry.value.value_type(),
        ValueType::List | ValueType::ZSet | ValueType::Stream
    );
    let fresh = Entry {
        access: ctx.state.dbs[dst_db].access_policy.initial(now),
        ..entry
    };
    ctx.state.dbs[dst_db].insert_entry(CompactBytes::new(dst), fresh);
    ctx.modified_in(dst_db, dst);
    if blockable && ctx.state.blocking.has_waiters(dst_db, dst) {
        ctx.state
            .blocking
            .ready
            .push((dst_db, CompactBytes::new(dst)));
    }
    Reply::Int(1)
}

fn expireat(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    expire_command(ctx, a, 1000, true, "expireat")
}
fn pexpireat(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    expire_command(ctx, a, 1, true, "pexpireat")
}

/// Absolute expiry in ms: -2 missing, -1 no expiry.
fn expire_time_ms(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    let now = ctx.now_ms;
    match ctx.db().get_untouched(key, now) {
        None => -2,
        Some(e) if e.expire_at == 0 => -1,
        Some(e) => e.expire_at,
    }
}

fn expiretime(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let t = expire_time_ms(ctx, &a[1]);
    // Rounded to the nearest second, as Redis's ttlGenericCommand does.
    Reply::Int(if t < 0 { t } else { (t + 500) / 1000 })
}
fn pexpiretime(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::Int(expire_time_ms(ctx, &a[1]))
}

fn touch(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let db = ctx.db();
    Reply::Int(a[1..].iter().filter(|k| db.get(k, now).is_some()).count() as i64)
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

fn object_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(
        OBJECT_HELP
            .iter()
            .map(|l| Reply::Status(Bytes::from_static(l.as_bytes())))
            .collect(),
    )
}

/// What Redis 7.0 reports for a value's internal representation: the form the value is held in
/// (packed while within the `*-max-listpack-*` / set-max-intset-entries limits, converted past
/// them and never back, as in Redis).
pub fn encoding_name(_s: &Settings, value: &Value) -> &'static str {
    match value {
        // A string changed in place (APPEND, SETRANGE, SETBIT, BITFIELD, PFADD) is held in
        // its growable form, which is what Redis's `raw` is: those commands unshare the value
        // into a raw sds whatever its length or digits.
        Value::Str(CompactBytes::Growable(_)) => "raw",
        Value::Str(v) => string_encoding(v),
        // Redis 7.0 lists are always quicklists (listpack lists came with 7.2).
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            if h.is_packed() {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(set) => {
            if set.is_intset() {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if z.is_packed() {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) => "stream",
    }
}

/// Run `f` on the key's entry (looked up without counting an access) with the settings and
/// the database's access policy, or reply nil.
fn with_entry(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&Settings, AccessPolicy, &Entry) -> Reply,
) -> Reply {
    let now = ctx.now_ms;
    let state = &mut *ctx.state;
    let db = &mut state.dbs[ctx.client.db];
    let policy = db.access_policy;
    match db.get_untouched(key, now) {
        Some(e) => f(&state.config.settings, policy, e),
        None => Reply::Nil,
    }
}

fn object_encoding(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    with_entry(ctx, &a[2], |settings, _, e| {
        Reply::Bulk(Bytes::from_static(
            encoding_name(settings, &e.value).as_bytes(),
        ))
    })
}

fn object_refcount(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    with_entry(ctx, &a[2], |_, _, e| {
        // Redis shares the integers 0..9999 as immortal objects (refcount INT_MAX).
        let shared = matches!(&e.value, Value::Str(s)
            if super::args::parse_i64_strict(s).is_some_and(|n| (0..10_000).contains(&n)));
        Reply::Int(if shared { i32::MAX as i64 } else { 1 })
    })
}

fn object_idletime(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    with_entry(ctx, &a[2], |_, policy, e| {
        match policy {
        AccessPolicy::Lfu { .. } => Reply::err_static("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        AccessPolicy::Lru => Reply::Int(lru_clock(now).saturating_sub(e.access) as i64),
    }
    })
}

fn object_freq(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    with_entry(ctx, &a[2], |_, policy, e| {
        match policy {
        AccessPolicy::Lfu { decay_minutes, .. } => {
            Reply::Int(lfu_decayed(e.access, now, decay_minutes) as i64)
        }
        AccessPolicy::Lru => Reply::err_static("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
    }
    })
}

fn swapdb(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let n = ctx.state.dbs.len();
    let Ok(x) = int32_arg(&a[1]) else {
        return Reply::err_static("ERR invalid first DB index");
    };
    let Ok(y) = int32_arg(&a[2]) else {
        return Reply::err_static("ERR invalid second DB index");
    };
    if x < 0 || y < 0 || x as usize >= n || y as usize >= n {
        return Reply::err_static(ERR_DB_RANGE);
    }
    let (x, y) = (x as usize, y as usize);
    if x != y {
        let (lo, hi) = (x.min(y), x.max(y));
        let (head, tail) = ctx.state.dbs.split_at_mut(hi);
        head[lo].swap_contents(&mut tail[0]);
        let now = ctx.now_ms;
        // Like Redis's touchAllWatchedKeysInDb: a watched key in either database changed if it
        // exists on either side of the swap (a key absent from both did not change), except
        // that an expired key is as good as none: a missing key replaced with an expired one,
        // or an expired one with another (or with nothing), is no logical change. Such watches
        // are marked stale so EXEC does not fail on the expired key either.
        let is_expired =
            |e: &crate::engine::storage::db::Entry| e.expire_at != 0 && e.expire_at <= now;
        let watches = &mut ctx.state.watches;
        let dbs = &ctx.state.dbs;
        let mut failed: Vec<u64> = Vec::new();
        for ((d, k), ids) in &watches.by_key {
            if *d != x && *d != y {
                continue;
            }
            // After the swap, database `d` holds what was in the other one.
            let other = if *d == x { y } else { x };
            let (before, after) = (dbs[other].peek(k), dbs[*d].peek(k));
            if before.is_none() && after.is_none() {
                continue;
            }
            for id in ids {
                let slot = (*id, *d, k.clone());
                if watches.stale.contains(&slot) {
                    match after {
                        None => {
                            watches.stale.remove(&slot);
                            continue;
                        }
                        Some(e) if is_expired(e) => continue,
                        Some(_) => {
                            watches.stale.remove(&slot);
                        }
                    }
                } else if before.is_none() && after.is_some_and(is_expired) {
                    watches.stale.insert(slot);
                    continue;
                }
                failed.push(*id);
            }
        }
        watches.dirty.extend(failed);
        // Clients blocked in either database may find their key there now.
        let waiting: Vec<(usize, CompactBytes)> = ctx
            .state
            .blocking
            .by_key
            .keys()
            .filter(|(d, _)| *d == x || *d == y)
            .cloned()
            .collect();
        // As Redis's scanDatabaseForReadyKeys: any key present counts, expired or not. Serving
        // the waiter then finds an expired one gone, after SWAPDB itself was propagated (an
        // expiry here would propagate its DEL before the SWAPDB).
        for (d, k) in waiting {
            if ctx.state.dbs[d].peek(&k).is_some() {
                ctx.state.blocking.ready.push((d, k));
            }
        }
    }
    ctx.state.dirty += 1;
    ctx.state.dirty_since_save += 1;
    Reply::Ok
}

fn dump(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(&a[1], now) {
        Some(e) => Reply::Bulk(Bytes::from(rdb::dump_payload(&e.value))),
        None => Reply::Nil,
    }
}

fn restore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let (mut replace, mut absttl) = (false, false);
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut i = 4;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        if is(&a[i], "replace") {
            replace = true;
        } else if is(&a[i], "absttl") {
            absttl = true;
        } else if is(&a[i], "idletime") && has_value && freq.is_none() {
            let Ok(v) = int_arg(&a[i + 1]) else {
                return not_int();
            };
            if v < 0 {
                return Reply::err_static("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(v);
            i += 1;
        } else if is(&a[i], "freq") && has_value && idle.is_none() {
            let Ok(v) = int_arg(&a[i + 1]) else {
                return not_int();
            };
            if !(0..=255).contains(&v) {
                return Reply::err_static("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    let now = ctx.now_ms;
    if !replace && ctx.db().get_untouched(key, now).is_some() {
        return Reply::err_static("BUSYKEY Target key name already exists.");
    }
    let Ok(ttl) = int_arg(&a[2]) else {
        return not_int();
    };
    if ttl < 0 {
        return Reply::err_static("ERR Invalid TTL value, must be >= 0");
    }
    let body = match rdb::verify_payload(&a[3]) {
        Some(b) => b,
        None => return Reply::err_static("ERR DUMP payload version or checksum are wrong"),
    };
    let value = match rdb::load_value(body) {
        Ok(v) => v,
        Err(_) => return Reply::err_static("ERR Bad data format"),
    };
    let deleted = replace && ctx.db().remove(key).is_some();
    let at_ms = if ttl != 0 && !absttl {
        ttl.saturating_add(now)
    } else {
        ttl
    };
    if ctx.db().is_due(at_ms, now) {
        // Already expired: the key is not created; a replaced key is simply deleted. (Applying
        // a stream, the key is created as its writer created it: see `Expiry::Suspend`.)
        if deleted {
            ctx.modified(key);
            ctx.propagate_as(vec![Arg::from_static(b"DEL"), key.clone()]);
        }
        return Reply::Ok;
    }
    let blockable = matches!(
        value.value_type(),
        ValueType::List | ValueType::ZSet | ValueType::Stream
    );
    let policy = ctx.db().access_policy;
    let access = match (policy, idle, freq) {
        (AccessPolicy::Lru, Some(secs), _) => {
            lru_clock(now).saturating_sub(secs.min(u32::MAX as i64) as u32)
        }
        (AccessPolicy::Lfu { .. }, _, Some(f)) => lfu_pack(f as u8, now),
        _ => policy.initial(now),
    };
    ctx.db().insert_entry(
        CompactBytes::new(key),
        Entry {
            value,
            expire_at: at_ms,
            access,
            // insert_entry stamps the snapshot epoch.
            epoch: 0,
        },
    );
    ctx.modified(key);
    if blockable {
        ctx.signal_ready(key);
    }
    if at_ms != 0 && !absttl {
        // A relative TTL is propagated as absolute so a replica expires the key at the same
        // instant (Redis 7.0 rewrites RESTORE the same way).
        let mut args = a.to_vec();
        args[2] = Arg::from(at_ms.to_string());
        args.push(Arg::from_static(b"ABSTTL"));
        ctx.propagate_as(args);
    }
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::client::ClientState;
    use crate::engine::config::Config;
    use crate::engine::state::{BlockedClient, EngineState, WriteLog};
    use crate::engine::storage::list::ListValue;

    type Effects = Arc<Mutex<Vec<Vec<Arg>>>>;

    struct Recorder(Effects);
    impl WriteLog for Recorder {
        fn append(&mut self, _db: usize, args: &[Arg]) {
            self.0.lock().unwrap().push(args.to_vec());
        }
    }

    const NOW: i64 = 1_700_000_000_000;

    fn engine() -> (EngineState, ClientState, Effects) {
        let mut state = EngineState::new(Config::default(), NOW);
        let log = Effects::default();
        state.write_log = Box::new(Recorder(log.clone()));
        (state, ClientState::internal(1, 0, 2), log)
    }

    fn run(state: &mut EngineState, client: &mut ClientState, args: &[&[u8]]) -> Reply {
        let args: Vec<Arg> = args.iter().map(|a| Arg::copy_from_slice(a)).collect();
        let (spec, parent) = super::super::resolve(&args).expect("known command");
        let mut ctx = Ctx::new(state, client, NOW);
        super::super::call(&mut ctx, spec, parent, &args)
    }

    fn list(items: &[&str]) -> Value {
        let mut l = ListValue::default();
        l.items.extend(items.iter().map(|i| CompactBytes::from(*i)));
        Value::List(Box::new(l))
    }

    #[test]
    fn restore_with_relative_ttl_propagates_absttl() {
        let (mut state, mut client, log) = engine();
        let payload = rdb::dump_payload(&Value::str(b"v"));
        let r = run(
            &mut state,
            &mut client,
            &[b"RESTORE", b"k", b"5000", &payload],
        );
        assert!(matches!(r, Reply::Ok));
        let effects = log.lock().unwrap().clone();
        assert_eq!(effects.len(), 1);
        assert_eq!(effects[0][0].as_ref(), b"RESTORE");
        assert_eq!(effects[0][2].as_ref(), (NOW + 5000).to_string().as_bytes());
        assert_eq!(effects[0].last().unwrap().as_ref(), b"ABSTTL");
        assert_eq!(state.dbs[0].peek(b"k").unwrap().expire_at, NOW + 5000);
    }

    #[test]
    fn expireat_propagates_as_pexpireat() {
        let (mut state, mut client, log) = engine();
        state.dbs[0].set(b"k", Value::str(b"v"));
        let at = (NOW / 1000 + 100).to_string();
        let r = run(&mut state, &mut client, &[b"EXPIREAT", b"k", at.as_bytes()]);
        assert!(matches!(r, Reply::Int(1)));
        let effects = log.lock().unwrap().clone();
        assert_eq!(effects[0][0].as_ref(), b"PEXPIREAT");
        assert_eq!(
            effects[0][2].as_ref(),
            (NOW / 1000 * 1000 + 100_000).to_string().as_bytes()
        );
    }

    #[test]
    fn swapdb_readies_blocked_keys_and_fails_only_relevant_watchers() {
        let (mut state, mut client, log) = engine();
        state.dbs[1].set(b"queue", list(&["job"]));
        state.dbs[1].set(b"watched", Value::str(b"x"));
        let (tx, _rx) = tokio::sync::oneshot::channel();
        state.blocking.block(
            9,
            BlockedClient {
                db: 0,
                keys: vec![CompactBytes::from("queue")],
                args: vec![Arg::from_static(b"BLPOP")],
                proto: 2,
                reply: tx,
                timeout_reply: Reply::Nil,
            },
        );
        state
            .watches
            .by_key
            .insert((0, CompactBytes::from("watched")), vec![21]);
        state
            .watches
            .by_key
            .insert((0, CompactBytes::from("absent")), vec![22]);
        let r = run(&mut state, &mut client, &[b"SWAPDB", b"0", b"1"]);
        assert!(matches!(r, Reply::Ok));
        assert_eq!(state.blocking.ready, vec![(0, CompactBytes::from("queue"))]);
        assert!(state.watches.dirty.contains(&21));
        assert!(!state.watches.dirty.contains(&22));
        assert_eq!(log.lock().unwrap()[0][0].as_ref(), b"SWAPDB");
    }

    #[test]
    fn rename_and_move_of_lists_signal_waiters() {
        let (mut state, mut client, _) = engine();
        state.dbs[0].set(b"src", list(&["a"]));
        let (tx, _rx) = tokio::sync::oneshot::channel();
        state.blocking.block(
            9,
            BlockedClient {
                db: 0,
                keys: vec![CompactBytes::from("dst")],
                args: vec![Arg::from_static(b"BLPOP")],
                proto: 2,
                reply: tx,
                timeout_reply: Reply::Nil,
            },
        );
        let r = run(&mut state, &mut client, &[b"RENAME", b"src", b"dst"]);
        assert!(matches!(r, Reply::Ok));
        assert_eq!(state.blocking.ready, vec![(0, CompactBytes::from("dst"))]);
    }

    #[test]
    fn scan_cursor_parsing() {
        assert_eq!(parse_cursor(b"0").ok(), Some(0));
        assert_eq!(parse_cursor(b"+7").ok(), Some(7));
        assert_eq!(parse_cursor(b"-1").ok(), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615").ok(), Some(u64::MAX));
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert_eq!(parse_cursor(b"").ok(), Some(0));
        assert!(parse_cursor(b"+").is_err());
        assert!(parse_cursor(b"-").is_err());
    }
}
