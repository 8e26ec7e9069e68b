//! Stream commands (XADD XRANGE XREVRANGE XLEN XDEL XTRIM XREAD XREADGROUP XGROUP XACK
//! XPENDING XCLAIM XAUTOCLAIM XINFO XSETID), following Redis 7.0's t_stream.c: the same
//! argument parsing order, error texts and reply shapes. Pure (on the locked state).
//!
//! Propagation is deterministic, as Redis makes it: XADD goes out with the ID it generated and,
//! when it trimmed approximately, with `MAXLEN = <length left>` / `MINID = <first ID left>`
//! (a replica's node layout may differ, so `~` would trim differently there); XREADGROUP,
//! XCLAIM and XAUTOCLAIM go out as one `XCLAIM ... TIME <ms> RETRYCOUNT <n> FORCE JUSTID
//! LASTID <id>` per pending entry they created or moved, plus `XGROUP CREATECONSUMER` where
//! NOACK leaves no XCLAIM to carry a new consumer, and `XGROUP SETID ... ENTRIESREAD` whenever
//! XREADGROUP moved the group (Redis sends it only with NOACK; see `serve_group`).
//!
//! Blocking: XREAD and XREADGROUP with BLOCK park the client through `Ctx::block_on` like the
//! list commands; XADD signals the key and `cmd::serve_blocked` runs the parked command again.
//! A `$` is replaced by the stream's last ID when the client blocks (the command must wait for
//! entries after *that* ID, not after whatever is last when it runs again), and COUNT defaults
//! to 1000 for a served blocked read, as in Redis. A parked XREADGROUP whose key stops being a
//! stream is answered `-UNBLOCKED`, and one whose group was destroyed `-NOGROUP`.

use bytes::Bytes;

use super::args::{is, parse_i64_strict, syntax_error, wrongtype, ERR_NOT_INT};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::stream::{
    AppendError, Consumer, ConsumerGroup, NodeLimits, StreamId, StreamValue, Trim,
    INVALID_ENTRIES_READ,
};
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "xadd",
        -5,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "stream",
        xadd,
    ),
    CommandSpec::new("xrange", -4, READONLY, (1, 1, 1), "stream", xrange),
    CommandSpec::new("xrevrange", -4, READONLY, (1, 1, 1), "stream", xrevrange),
    CommandSpec::new("xlen", 2, READONLY | FAST, (1, 1, 1), "stream", xlen),
    CommandSpec::new("xdel", -3, WRITE | FAST, (1, 1, 1), "stream", xdel),
    CommandSpec::new("xtrim", -4, WRITE, (1, 1, 1), "stream", xtrim),
    CommandSpec::new("xread", -4, READONLY | BLOCKING, (0, 0, 0), "stream", xread)
        .with_keys(xread_keys),
    CommandSpec::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        (0, 0, 0),
        "stream",
        xreadgroup,
    )
    .with_keys(xread_keys),
    CommandSpec::new("xack", -4, WRITE | FAST, (1, 1, 1), "stream", xack),
    CommandSpec::new("xpending", -3, READONLY, (1, 1, 1), "stream", xpending),
    CommandSpec::new("xclaim", -6, WRITE | FAST, (1, 1, 1), "stream", xclaim),
    CommandSpec::new(
        "xautoclaim",
        -6,
        WRITE | FAST,
        (1, 1, 1),
        "stream",
        xautoclaim,
    ),
    CommandSpec::new(
        "xsetid",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "stream",
        xsetid,
    ),
    CommandSpec::new("xgroup", -2, 0, (0, 0, 0), "stream", xgroup_help).with_subcommands(&[
        CommandSpec::new(
            "create",
            -5,
            WRITE | DENYOOM,
            (2, 2, 1),
            "stream",
            xgroup_create,
        ),
        CommandSpec::new("setid", -5, WRITE, (2, 2, 1), "stream", xgroup_setid),
        CommandSpec::new("destroy", 4, WRITE, (2, 2, 1), "stream", xgroup_destroy),
        CommandSpec::new(
            "createconsumer",
            5,
            WRITE | DENYOOM,
            (2, 2, 1),
            "stream",
            xgroup_createconsumer,
        ),
        CommandSpec::new(
            "delconsumer",
            5,
            WRITE,
            (2, 2, 1),
            "stream",
            xgroup_delconsumer,
        ),
        CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "stream", xgroup_help),
    ]),
    CommandSpec::new("xinfo", -2, 0, (0, 0, 0), "stream", xinfo_help).with_subcommands(&[
        CommandSpec::new("stream", -3, READONLY, (2, 2, 1), "stream", xinfo_stream),
        CommandSpec::new("groups", 3, READONLY, (2, 2, 1), "stream", xinfo_groups),
        CommandSpec::new(
            "consumers",
            4,
            READONLY,
            (2, 2, 1),
            "stream",
            xinfo_consumers,
        ),
        CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "stream", xinfo_help),
    ]),
];

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// Keys of XREAD/XREADGROUP: the first half of the arguments after STREAMS.
fn xread_keys(a: &[Arg]) -> Vec<usize> {
    let Some(at) = a.iter().skip(1).position(|x| is(x, "streams")) else {
        return Vec::new();
    };
    let first = at + 2;
    let n = (a.len() - first) / 2;
    (first..first + n).collect()
}

// ---------------------------------------------------------------------------------------------
// IDs.

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<u64>().ok()
}

/// Redis `streamGenericParseIDOrReply`: `ms-seq`, `ms` (seq = `missing_seq`), `-`/`+` unless
/// `strict`; with `allow_auto_seq`, `ms-*` too (returned with seq_given false).
fn parse_id_generic(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<(StreamId, bool), Reply> {
    let invalid = || Reply::err_static(ERR_INVALID_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    if arg == b"-" || arg == b"+" {
        if strict {
            return Err(invalid());
        }
        return Ok((
            if arg == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    let (ms_part, seq_part) = match arg.iter().position(|c| *c == b'-') {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms_part).ok_or_else(invalid)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if allow_auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((StreamId::new(ms, parse_u64(s).ok_or_else(invalid)?), true)),
    }
}

fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id_generic(arg, missing_seq, false, false).map(|x| x.0)
}

fn parse_strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id_generic(arg, missing_seq, true, false).map(|x| x.0)
}

/// A range bound: `(` makes it exclusive (then `-`/`+` are invalid).
fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_strict_id(&arg[1..], missing_seq)?, true))
    } else {
        Ok((parse_id(arg, missing_seq)?, false))
    }
}

fn start_bound(arg: &[u8]) -> Result<StreamId, Reply> {
    let (id, ex) = parse_interval(arg, 0)?;
    if ex {
        return id
            .incr()
            .ok_or_else(|| Reply::err_static("ERR invalid start ID for the interval"));
    }
    Ok(id)
}

fn end_bound(arg: &[u8]) -> Result<StreamId, Reply> {
    let (id, ex) = parse_interval(arg, u64::MAX)?;
    if ex {
        return id
            .decr()
            .ok_or_else(|| Reply::err_static("ERR invalid end ID for the interval"));
    }
    Ok(id)
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

fn id_arg(id: StreamId) -> Arg {
    Arg::from(id.to_string())
}

fn ll_arg(a: &[u8], msg: Option<&'static str>) -> Result<i64, Reply> {
    parse_i64_strict(a).ok_or_else(|| Reply::err_static(msg.unwrap_or(ERR_NOT_INT)))
}

// ---------------------------------------------------------------------------------------------
// Lookups.

/// The stream at `key`: Ok(None) if missing, WRONGTYPE for other types.
fn lookup<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut StreamValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(wrongtype()),
        },
    }
}

/// Whether `consumer` exists in `group` of the stream at `key` (keyspace notifications tell
/// when XREADGROUP, XCLAIM or XAUTOCLAIM created one). Reads nothing else, expires nothing.
pub fn consumer_exists(
    db: &crate::engine::storage::Db,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
) -> bool {
    match db.peek(key).map(|e| &e.value) {
        Some(Value::Stream(s)) => s
            .groups
            .get(group)
            .is_some_and(|g| g.consumers.contains_key(consumer)),
        _ => false,
    }
}

/// [`lookup`] counting keyspace hits and misses (reads).
fn read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut StreamValue>, Reply> {
    let now = ctx.now_ms;
    let hit = ctx.db().get(key, now).is_some();
    if hit {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
    lookup(ctx, key)
}

fn limits(ctx: &Ctx<'_>) -> NodeLimits {
    let s = &ctx.state.config.settings;
    NodeLimits {
        max_entries: s.stream_node_max_entries,
        max_bytes: s.stream_node_max_bytes,
    }
}

/// A change that Redis counts (`server.dirty++`) without signalling the key (no WATCH
/// invalidation): consumer and PEL bookkeeping.
fn count_dirty(ctx: &mut Ctx<'_>) {
    ctx.state.dirty += 1;
    ctx.state.dirty_since_save += 1;
}

fn nogroup_key(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// `[id, [field, value, ...]]`.
fn entry_reply(id: StreamId, fv: &[CompactBytes]) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fv.iter().map(|f| Reply::bulk_copy(f)).collect()),
    ])
}

fn entries_reply(
    s: &StreamValue,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) -> Reply {
    Reply::Array(
        s.range(start, end, rev, count)
            .into_iter()
            .map(|(id, fv)| entry_reply(id, fv))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// XADD / XTRIM.

struct AddTrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID value (for the propagated rewrite).
    trim_arg: usize,
    /// XADD: the ID argument's index, the ID (None = `*`) and whether its seq was given.
    id_pos: usize,
    id: Option<(StreamId, bool)>,
    no_mkstream: bool,
}

/// Redis `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &Ctx<'_>, a: &[Arg], xadd: bool) -> Result<AddTrimArgs, Reply> {
    let mut p = AddTrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        trim_arg: 0,
        id_pos: 0,
        id: None,
        no_mkstream: false,
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = &a[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if p.trim.is_some() {
                return Err(Reply::err_static(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            p.approx = false;
            let next = &a[i + 1][..];
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if is(opt, "maxlen") {
                let n = ll_arg(&a[i + 1], None)?;
                if n < 0 {
                    return Err(Reply::err_static("ERR The MAXLEN argument must be >= 0."));
                }
                p.trim = Some(Trim::MaxLen(n as u64));
            } else {
                p.trim = Some(Trim::MinId(parse_strict_id(&a[i + 1], 0)?));
            }
            i += 1;
            p.trim_arg = i;
        } else if is(opt, "limit") && more > 0 {
            limit = ll_arg(&a[i + 1], None)?;
            if limit < 0 {
                return Err(Reply::err_static("ERR The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            p.no_mkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id_generic(opt, 0, true, true)?;
            p.id = Some((id, seq_given));
            break;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    p.id_pos = i;
    if limit != 0 && p.trim.is_none() {
        return Err(Reply::err_static(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && p.trim.is_none() {
        return Err(Reply::err_static(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.client.is_replication {
        // The master rewrote `~` to `=` with the exact outcome: apply it without a limit.
        p.limit = 0;
    } else if limit_given {
        if !p.approx {
            return Err(Reply::err_static(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        p.limit = limit as u64;
    } else if p.approx {
        let per_node = ctx.state.config.settings.stream_node_max_entries as i64;
        let mut l = per_node.saturating_mul(100);
        if l <= 0 {
            l = 10_000;
        }
        p.limit = l.min(1_000_000) as u64;
    }
    Ok(p)
}

/// The propagated form of an approximate trim: `~` → `=`, the value → the exact outcome.
fn rewrite_trim(args: &mut [Arg], p: &AddTrimArgs, s: &StreamValue) {
    if !p.approx {
        return;
    }
    if p.trim_arg >= 1 {
        // The `~` sits just before the value (it was there: `approx` is only set by it).
        args[p.trim_arg - 1] = Arg::from_static(b"=");
    }
    args[p.trim_arg] = match p.trim {
        Some(Trim::MaxLen(_)) => Arg::from(s.len().to_string()),
        _ => id_arg(
            s.entries
                .first_key_value()
                .map(|(k, _)| *k)
                .unwrap_or_default(),
        ),
    };
}

fn xadd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let p = match parse_add_trim(ctx, a, true) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let field_pos = p.id_pos + 1;
    if a.len() < field_pos + 2 || (a.len() - field_pos) % 2 == 1 {
        return Reply::err_static("ERR wrong number of arguments for 'xadd' command");
    }
    if let Some((id, true)) = p.id {
        if id.is_zero() {
            return Reply::err_static("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &a[1];
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let created = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(Some(_)) => false,
        Ok(None) if p.no_mkstream => return Reply::Nil,
        Ok(None) => true,
    };
    if created {
        ctx.db().set(key, Value::Stream(Box::default()));
    }
    let Ok(Some(s)) = lookup(ctx, key) else {
        return Reply::Nil;
    };
    if s.last_id == StreamId::MAX {
        return Reply::err_static(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        );
    }
    let id = match p.id {
        Some((id, true)) => Some(id),
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                s.last_id.incr().filter(|n| n.ms == id.ms)
            } else {
                Some(id)
            }
        }
        None => s.next_id(now),
    };
    let fields: Vec<&[u8]> = a[field_pos..].iter().map(|x| &x[..]).collect();
    let result = match id {
        Some(id) => s.append(id, &fields, limits).map(|_| id),
        None => Err(AppendError::NotGreater),
    };
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            // A stream created for this XADD is not left behind empty.
            if created {
                ctx.db().remove(key);
            }
            return Reply::err_static(match e {
                AppendError::NotGreater => {
                    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
                }
                AppendError::TooLarge => "ERR Elements are too large to be stored",
            });
        }
    };
    let mut prop: Vec<Arg> = a.to_vec();
    if let Some(t) = p.trim {
        s.trim(t, p.approx, p.limit);
        rewrite_trim(&mut prop, &p, s);
    }
    if !matches!(p.id, Some((_, true))) {
        prop[p.id_pos] = id_arg(id);
    }
    ctx.modified(key);
    ctx.propagate_as(prop);
    ctx.signal_ready(key);
    id_reply(id)
}

fn xtrim(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let p = match parse_add_trim(ctx, a, false) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let key = &a[1];
    let s = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s,
    };
    let Some(t) = p.trim else {
        return Reply::Int(0);
    };
    let deleted = s.trim(t, p.approx, p.limit);
    if deleted > 0 {
        let mut prop = a.to_vec();
        rewrite_trim(&mut prop, &p, s);
        ctx.modified(key);
        ctx.propagate_as(prop);
    }
    Reply::Int(deleted as i64)
}

// ---------------------------------------------------------------------------------------------
// XRANGE / XREVRANGE / XLEN / XDEL.

fn xrange_generic(ctx: &mut Ctx<'_>, a: &[Arg], rev: bool) -> Reply {
    let (start_arg, end_arg) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let start = match start_bound(start_arg) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let end = match end_bound(end_arg) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if is(&a[j], "count") && j + 1 < a.len() {
            match ll_arg(&a[j + 1], None) {
                Ok(c) => count = c.max(0),
                Err(e) => return e,
            }
            j += 2;
        } else {
            return syntax_error();
        }
    }
    let s = match read(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return Reply::NilArray;
    }
    let count = if count < 0 { 0 } else { count as usize };
    entries_reply(s, start, end, rev, count)
}

fn xrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    xrange_generic(ctx, a, false)
}
fn xrevrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    xrange_generic(ctx, a, true)
}

fn xlen(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read(ctx, &a[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(s)) => Reply::Int(s.len() as i64),
    }
}

fn xdel(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(a.len() - 2);
    for x in &a[2..] {
        match parse_strict_id(x, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let Ok(Some(s)) = lookup(ctx, key) else {
        return Reply::Int(0);
    };
    let deleted = ids.into_iter().filter(|id| s.delete(*id)).count();
    if deleted > 0 {
        ctx.modified(key);
        ctx.state.dirty += deleted as u64 - 1;
    }
    Reply::Int(deleted as i64)
}

// ---------------------------------------------------------------------------------------------
// XREAD / XREADGROUP.

/// The default COUNT of a blocked read once it is served (Redis XREAD_BLOCKED_DEFAULT_COUNT).
const BLOCKED_DEFAULT_COUNT: i64 = 1000;

/// What a read asks for on one stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// XREAD `$`: after the stream's last ID.
    Last,
    /// XREADGROUP `>`: entries never delivered to the group.
    New,
}

fn xread(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    xread_generic(ctx, a, false)
}
fn xreadgroup(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    xread_generic(ctx, a, true)
}

fn xread_generic(ctx: &mut Ctx<'_>, a: &[Arg], group_cmd: bool) -> Reply {
    let name = String::from_utf8_lossy(&a[0]).into_owned();
    let mut timeout: Option<i64> = None;
    let mut count: i64 = 0;
    let mut streams_at = 0usize;
    let mut noack = false;
    let mut group: Option<(&Arg, &Arg)> = None;
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i][..];
        if is(o, "block") && more > 0 {
            if ctx.in_script {
                return Reply::error(format!(
                    "ERR {name} command is not allowed with BLOCK option from scripts"
                ));
            }
            i += 1;
            let t = match ll_arg(&a[i], Some("ERR timeout is not an integer or out of range")) {
                Ok(t) => t,
                Err(e) => return e,
            };
            if t < 0 {
                return Reply::err_static("ERR timeout is negative");
            }
            timeout = Some(t);
        } else if is(o, "count") && more > 0 {
            i += 1;
            match ll_arg(&a[i], None) {
                Ok(c) => count = c.max(0),
                Err(e) => return e,
            }
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            if (a.len() - streams_at) % 2 != 0 {
                return Reply::err_static(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                );
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_cmd {
                return Reply::err_static(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                );
            }
            group = Some((&a[i + 1], &a[i + 2]));
            i += 2;
        } else if is(o, "noack") {
            if !group_cmd {
                return Reply::err_static(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                );
            }
            noack = true;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    if streams_at == 0 {
        return syntax_error();
    }
    if group_cmd && group.is_none() {
        return Reply::err_static("ERR Missing GROUP option for XREADGROUP");
    }
    let n = (a.len() - streams_at) / 2;
    let keys = &a[streams_at..streams_at + n];
    let id_args = &a[streams_at + n..];
    // A parked command run again: the key may have been deleted or retyped meanwhile.
    let rerun = ctx.serving_blocked;
    let mut froms = Vec::with_capacity(n);
    for (key, id_arg) in keys.iter().zip(id_args) {
        let exists = match lookup(ctx, key) {
            Ok(s) => s.is_some(),
            Err(_) if rerun && group.is_none() => false,
            Err(_) if rerun => {
                return Reply::err_static("UNBLOCKED the stream key no longer exists");
            }
            Err(e) => return e,
        };
        if let Some((g, _)) = group {
            let has = exists
                && lookup(ctx, key)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.groups.contains_key(&g[..]));
            if !has {
                if rerun && !exists {
                    return Reply::err_static("UNBLOCKED the stream key no longer exists");
                }
                if rerun {
                    return Reply::err_static(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    );
                }
                return Reply::error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                ));
            }
        }
        let from = if &id_arg[..] == b"$" {
            if group_cmd {
                return Reply::err_static(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                );
            }
            ReadFrom::Last
        } else if &id_arg[..] == b">" {
            if !group_cmd {
                return Reply::err_static(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                );
            }
            ReadFrom::New
        } else {
            match parse_strict_id(id_arg, 0) {
                Ok(id) => ReadFrom::After(id),
                Err(e) => return e,
            }
        };
        froms.push(from);
    }
    // `$` is the last ID now (0-0 for a missing key).
    let resolved: Vec<ReadFrom> = keys
        .iter()
        .zip(&froms)
        .map(|(key, f)| match f {
            ReadFrom::Last => ReadFrom::After(
                lookup(ctx, key)
                    .ok()
                    .flatten()
                    .map(|s| s.last_id)
                    .unwrap_or_default(),
            ),
            other => *other,
        })
        .collect();
    if group_cmd {
        // Effects are propagated as XCLAIM / XGROUP SETID / XGROUP CREATECONSUMER, never as
        // the read itself.
        ctx.propagate_nothing();
    }
    let mut out: Vec<(Reply, Reply)> = Vec::new();
    for (key, from) in keys.iter().zip(&resolved) {
        let served = match group {
            None => serve_plain(ctx, key, *from, count),
            Some((g, c)) => serve_group(ctx, key, g, c, *from, count, noack),
        };
        if let Some(entries) = served {
            out.push((Reply::bulk_copy(key), entries));
        }
    }
    if !out.is_empty() {
        if ctx.client.proto >= 3 {
            return Reply::Map(out);
        }
        return Reply::Array(
            out.into_iter()
                .map(|(k, v)| Reply::Array(vec![k, v]))
                .collect(),
        );
    }
    let Some(ms) = timeout else {
        return Reply::NilArray;
    };
    if !ctx.may_block {
        return Reply::NilArray;
    }
    // Park with `$` resolved and the served COUNT fixed, so running the command again reads
    // what arrived after this moment.
    let mut parked: Vec<Arg> = vec![a[0].clone()];
    if let Some((g, c)) = group {
        parked.extend([Arg::from_static(b"GROUP"), g.clone(), c.clone()]);
    }
    if noack {
        parked.push(Arg::from_static(b"NOACK"));
    }
    parked.extend([
        Arg::from_static(b"COUNT"),
        Arg::from(
            (if count > 0 {
                count
            } else {
                BLOCKED_DEFAULT_COUNT
            })
            .to_string(),
        ),
        Arg::from_static(b"BLOCK"),
        Arg::from(ms.to_string()),
        Arg::from_static(b"STREAMS"),
    ]);
    parked.extend(keys.iter().cloned());
    for f in &resolved {
        parked.push(match f {
            ReadFrom::After(id) => id_arg(*id),
            _ => Arg::from_static(b">"),
        });
    }
    let deadline = if ms == 0 {
        0
    } else {
        ctx.now_ms.saturating_add(ms)
    };
    let keys: Vec<CompactBytes> = keys.iter().map(|k| CompactBytes::new(k)).collect();
    ctx.block_on(keys, deadline, Reply::NilArray);
    ctx.block_args(parked);
    Reply::NoReply
}

/// XREAD on one stream: the entries after `from`, or None when there are none.
fn serve_plain(ctx: &mut Ctx<'_>, key: &[u8], from: ReadFrom, count: i64) -> Option<Reply> {
    let ReadFrom::After(after) = from else {
        return None;
    };
    let s = read(ctx, key).ok().flatten()?;
    if s.is_empty() || s.last_valid_id() <= after {
        return None;
    }
    let start = after.incr()?;
    Some(entries_reply(
        s,
        start,
        StreamId::MAX,
        false,
        count as usize,
    ))
}

/// XREADGROUP on one stream: new entries (`>`) or the consumer's history (an ID), creating
/// the consumer and the PEL entries; None when `>` finds nothing new.
#[allow(clippy::too_many_arguments)]
fn serve_group(
    ctx: &mut Ctx<'_>,
    key: &Arg,
    group: &Arg,
    consumer: &Arg,
    from: ReadFrom,
    count: i64,
    noack: bool,
) -> Option<Reply> {
    let now = ctx.now_ms;
    let s = lookup(ctx, key).ok().flatten()?;
    let g = s.groups.get(&group[..])?;
    let history = match from {
        ReadFrom::After(id) => Some(id),
        _ => None,
    };
    if history.is_none() && (s.is_empty() || s.last_valid_id() <= g.last_id) {
        return None;
    }
    let mut created_consumer = false;
    {
        let g = s.groups.get_mut(&group[..])?;
        match g.consumers.get_mut(&consumer[..]) {
            Some(c) => c.seen_time = now,
            None => {
                g.consumers.insert(
                    CompactBytes::new(consumer),
                    Consumer {
                        seen_time: now,
                        pel: Default::default(),
                    },
                );
                created_consumer = true;
            }
        }
    }
    let mut props: Vec<Vec<Arg>> = Vec::new();
    if created_consumer && noack {
        props.push(vec![
            Arg::from_static(b"XGROUP"),
            Arg::from_static(b"CREATECONSUMER"),
            key.clone(),
            group.clone(),
            consumer.clone(),
        ]);
    }
    let limit = if count > 0 {
        count as usize
    } else {
        usize::MAX
    };
    let reply = if let Some(after) = history {
        // The consumer's own pending entries after `after` (Redis serves history from its
        // PEL only, so each consumer sees just what was delivered to it).
        let g = s.groups.get(&group[..])?;
        let ids: Vec<StreamId> = match (after.incr(), g.consumers.get(&consumer[..])) {
            (Some(start), Some(c)) => c.pel.range(start..).take(limit).copied().collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match s.entries.get(&id) {
                Some(fv) => {
                    out.push(entry_reply(id, fv));
                    if let Some(n) = s
                        .groups
                        .get_mut(&group[..])
                        .and_then(|g| g.pel.get_mut(&id))
                    {
                        n.delivery_time = now;
                        n.delivery_count += 1;
                    }
                }
                None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
            }
        }
        Reply::Array(out)
    } else {
        let last = s.groups.get(&group[..])?.last_id;
        let start = last.incr()?;
        let served: Vec<(StreamId, Box<[CompactBytes]>)> = s
            .entries
            .range(start..)
            .take(limit)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut out = Vec::with_capacity(served.len());
        let mut moved = false;
        for (id, fv) in &served {
            moved |= s.advance_group(&group[..], *id);
            out.push(entry_reply(*id, fv));
            if !noack {
                let g = s.groups.get_mut(&group[..])?;
                g.assign(*id, &consumer[..], now, Some(1));
                let n = &g.pel[id];
                props.push(xclaim_prop(
                    key,
                    group,
                    g,
                    *id,
                    n.delivery_time,
                    n.delivery_count,
                ));
            }
        }
        // Redis propagates the group's new last ID only with NOACK (otherwise the XCLAIMs'
        // LASTID carry it), so its replicas keep a stale entries-read counter (XCLAIM does
        // not set it). XGROUP SETID after the XCLAIMs carries both, for every read that moved
        // the group: a replica's XINFO GROUPS then matches the master's.
        if moved {
            let g = s.groups.get(&group[..])?;
            props.push(setid_prop(key, group, g));
        }
        Reply::Array(out)
    };
    for p in props {
        ctx.propagate_as(p);
    }
    count_dirty(ctx);
    Some(reply)
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID group-last-id`.
fn xclaim_prop(
    key: &Arg,
    group: &Arg,
    g: &ConsumerGroup,
    id: StreamId,
    time: i64,
    count: u64,
) -> Vec<Arg> {
    let owner = g
        .pel
        .get(&id)
        .map(|n| Arg::copy_from_slice(n.consumer.as_slice()))
        .unwrap_or_else(|| Arg::from_static(b""));
    vec![
        Arg::from_static(b"XCLAIM"),
        key.clone(),
        group.clone(),
        owner,
        Arg::from_static(b"0"),
        id_arg(id),
        Arg::from_static(b"TIME"),
        Arg::from(time.to_string()),
        Arg::from_static(b"RETRYCOUNT"),
        Arg::from(count.to_string()),
        Arg::from_static(b"FORCE"),
        Arg::from_static(b"JUSTID"),
        Arg::from_static(b"LASTID"),
        id_arg(g.last_id),
    ]
}

/// `XGROUP SETID key group last-id ENTRIESREAD n`.
fn setid_prop(key: &Arg, group: &Arg, g: &ConsumerGroup) -> Vec<Arg> {
    vec![
        Arg::from_static(b"XGROUP"),
        Arg::from_static(b"SETID"),
        key.clone(),
        group.clone(),
        id_arg(g.last_id),
        Arg::from_static(b"ENTRIESREAD"),
        Arg::from(g.entries_read.to_string()),
    ]
}

// ---------------------------------------------------------------------------------------------
// XGROUP.

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

fn xgroup_help(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() != 2 {
        return subcommand_syntax_error(a);
    }
    help_reply("XGROUP", XGROUP_HELP)
}

/// Redis's `addReplyHelp` shape (title, lines, then HELP / "Prints this help.").
fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(Bytes::from(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Reply::Status(Bytes::copy_from_slice(l.as_bytes()))),
    );
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

fn subcommand_syntax_error(a: &[Arg]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(a.get(1).map(|x| &x[..]).unwrap_or(b"")),
        String::from_utf8_lossy(&a[0]).to_ascii_uppercase()
    ))
}

/// The common part of XGROUP's subcommands (Redis parses them in one function): options
/// (MKSTREAM, ENTRIESREAD), the key's type, and the key/group existence errors.
struct GroupArgs {
    mkstream: bool,
    entries_read: i64,
    exists: bool,
}

fn xgroup_prepare(ctx: &mut Ctx<'_>, a: &[Arg], sub: &str) -> Result<GroupArgs, Reply> {
    let mut g = GroupArgs {
        mkstream: false,
        entries_read: INVALID_ENTRIES_READ,
        exists: false,
    };
    let create = sub == "create";
    let setid = sub == "setid";
    let mut i = 5;
    while i < a.len() {
        if create && is(&a[i], "mkstream") {
            g.mkstream = true;
            i += 1;
        } else if (create || setid) && is(&a[i], "entriesread") && i + 1 < a.len() {
            let n = ll_arg(&a[i + 1], None)?;
            if n < 0 && n != INVALID_ENTRIES_READ {
                return Err(Reply::err_static(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            g.entries_read = n;
            i += 2;
        } else {
            return Err(subcommand_syntax_error(a));
        }
    }
    let key = &a[2];
    let group = &a[3];
    let has_group = match lookup(ctx, key)? {
        Some(s) => {
            g.exists = true;
            s.groups.contains_key(&group[..])
        }
        None => false,
    };
    if !g.mkstream {
        if !g.exists {
            return Err(Reply::err_static(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        }
        if !has_group && matches!(sub, "setid" | "createconsumer" | "delconsumer") {
            return Err(Reply::error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(group),
                String::from_utf8_lossy(key)
            )));
        }
    }
    Ok(g)
}

fn xgroup_create(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let g = match xgroup_prepare(ctx, a, "create") {
        Ok(g) => g,
        Err(e) => return e,
    };
    if a.len() > 8 {
        return subcommand_syntax_error(a);
    }
    let key = &a[2];
    let id = if &a[4][..] == b"$" {
        lookup(ctx, key)
            .ok()
            .flatten()
            .map(|s| s.last_id)
            .unwrap_or_default()
    } else {
        match parse_strict_id(&a[4], 0) {
            Ok(id) => id,
            Err(e) => return e,
        }
    };
    if !g.exists {
        ctx.db().set(key, Value::Stream(Box::default()));
        ctx.modified(key);
    }
    let Ok(Some(s)) = lookup(ctx, key) else {
        return Reply::Nil;
    };
    if s.groups.contains_key(&a[3][..]) {
        return Reply::err_static("BUSYGROUP Consumer Group name already exists");
    }
    s.groups.insert(
        CompactBytes::new(&a[3]),
        ConsumerGroup::new(id, g.entries_read),
    );
    count_dirty(ctx);
    Reply::Ok
}

fn xgroup_setid(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let g = match xgroup_prepare(ctx, a, "setid") {
        Ok(g) => g,
        Err(e) => return e,
    };
    if a.len() != 5 && a.len() != 7 {
        return subcommand_syntax_error(a);
    }
    let Ok(Some(s)) = lookup(ctx, &a[2]) else {
        return subcommand_syntax_error(a);
    };
    let id = if &a[4][..] == b"$" {
        s.last_id
    } else {
        match parse_id(&a[4], 0) {
            Ok(id) => id,
            Err(e) => return e,
        }
    };
    let Some(cg) = s.groups.get_mut(&a[3][..]) else {
        return subcommand_syntax_error(a);
    };
    cg.last_id = id;
    cg.entries_read = g.entries_read;
    count_dirty(ctx);
    Reply::Ok
}

fn xgroup_destroy(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Err(e) = xgroup_prepare(ctx, a, "destroy") {
        return e;
    }
    let Ok(Some(s)) = lookup(ctx, &a[2]) else {
        return Reply::Int(0);
    };
    if s.groups.remove(&a[3][..]).is_none() {
        return Reply::Int(0);
    }
    count_dirty(ctx);
    // Clients parked in XREADGROUP on this group are answered -NOGROUP.
    ctx.signal_ready(&a[2]);
    Reply::Int(1)
}

fn xgroup_createconsumer(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Err(e) = xgroup_prepare(ctx, a, "createconsumer") {
        return e;
    }
    let now = ctx.now_ms;
    let Ok(Some(s)) = lookup(ctx, &a[2]) else {
        return Reply::Int(0);
    };
    let Some(g) = s.groups.get_mut(&a[3][..]) else {
        return Reply::Int(0);
    };
    if g.consumers.contains_key(&a[4][..]) {
        return Reply::Int(0);
    }
    g.consumers.insert(
        CompactBytes::new(&a[4]),
        Consumer {
            seen_time: now,
            pel: Default::default(),
        },
    );
    count_dirty(ctx);
    Reply::Int(1)
}

fn xgroup_delconsumer(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Err(e) = xgroup_prepare(ctx, a, "delconsumer") {
        return e;
    }
    let Ok(Some(s)) = lookup(ctx, &a[2]) else {
        return Reply::Int(0);
    };
    let Some(g) = s.groups.get_mut(&a[3][..]) else {
        return Reply::Int(0);
    };
    let Some(c) = g.consumers.remove(&a[4][..]) else {
        return Reply::Int(0);
    };
    for id in &c.pel {
        g.pel.remove(id);
    }
    count_dirty(ctx);
    Reply::Int(c.pel.len() as i64)
}

// ---------------------------------------------------------------------------------------------
// XSETID / XACK / XPENDING.

fn xsetid(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let id = match parse_strict_id(&a[2], 0) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let mut entries_added: i64 = -1;
    let mut max_del = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "entriesadded") && more > 0 {
            match ll_arg(&a[i + 1], None) {
                Ok(n) if n < 0 => return Reply::err_static("ERR entries_added must be positive"),
                Ok(n) => entries_added = n,
                Err(e) => return e,
            }
            i += 2;
        } else if is(&a[i], "maxdeletedid") && more > 0 {
            match parse_strict_id(&a[i + 1], 0) {
                Ok(m) if id < m => {
                    return Reply::err_static(
                        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    )
                }
                Ok(m) => max_del = m,
                Err(e) => return e,
            }
            i += 2;
        } else {
            return syntax_error();
        }
    }
    let s = match lookup(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::err_static(super::args::ERR_NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return Reply::err_static(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() as i64 > entries_added {
            return Reply::err_static(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_del.is_zero() {
        s.max_deleted_id = max_del;
    }
    count_dirty(ctx);
    Reply::Ok
}

fn xack(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let has_group = match lookup(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => false,
        Ok(Some(s)) => s.groups.contains_key(&a[2][..]),
    };
    if !has_group {
        return Reply::Int(0);
    }
    let mut ids = Vec::with_capacity(a.len() - 3);
    for x in &a[3..] {
        match parse_strict_id(x, 0) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let Ok(Some(s)) = lookup(ctx, &a[1]) else {
        return Reply::Int(0);
    };
    let Some(g) = s.groups.get_mut(&a[2][..]) else {
        return Reply::Int(0);
    };
    let acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    for _ in 0..acked {
        count_dirty(ctx);
    }
    Reply::Int(acked as i64)
}

fn xpending(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let summary = a.len() == 3;
    if a.len() != 3 && (a.len() < 6 || a.len() > 9) {
        return syntax_error();
    }
    let mut range = None;
    let mut consumer: Option<&Arg> = None;
    let mut min_idle = 0i64;
    if a.len() >= 6 {
        let mut at = 3;
        if is(&a[3], "idle") {
            match ll_arg(&a[4], None) {
                Ok(n) => min_idle = n,
                Err(e) => return e,
            }
            if a.len() < 8 {
                return syntax_error();
            }
            at += 2;
        }
        let count = match ll_arg(&a[at + 2], None) {
            Ok(c) => c.max(0),
            Err(e) => return e,
        };
        let start = match start_bound(&a[at]) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let end = match end_bound(&a[at + 1]) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if at + 3 < a.len() {
            consumer = Some(&a[at + 3]);
        }
        range = Some((start, end, count));
    }
    let now = ctx.now_ms;
    let s = match read(ctx, &a[1]) {
        Err(e) => return e,
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(&a[2][..])) else {
        return nogroup_key(&a[1], &a[2]);
    };
    if summary {
        let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value())
        else {
            return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
        };
        let owners: Vec<Reply> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![
                    Reply::bulk_copy(name),
                    Reply::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return Reply::Array(vec![
            Reply::Int(g.pel.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(owners),
        ]);
    }
    let Some((start, end, mut count)) = range else {
        return syntax_error();
    };
    let ids: Vec<StreamId> = match consumer {
        Some(c) => match g.consumers.get(&c[..]) {
            None => return Reply::Array(Vec::new()),
            Some(c) => {
                if start > end {
                    Vec::new()
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        let idle = now - n.delivery_time;
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::bulk_copy(&n.consumer),
            Reply::Int(idle.max(0)),
            Reply::Int(n.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

// ---------------------------------------------------------------------------------------------
// XCLAIM / XAUTOCLAIM.

fn ensure_consumer(g: &mut ConsumerGroup, name: &[u8], now: i64) -> bool {
    match g.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => {
            g.consumers.insert(
                CompactBytes::new(name),
                Consumer {
                    seen_time: now,
                    pel: Default::default(),
                },
            );
            true
        }
    }
}

fn xclaim(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (key, group, name) = (&a[1], &a[2], &a[3]);
    let has_group = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => false,
        Ok(Some(s)) => s.groups.contains_key(&group[..]),
    };
    if !has_group {
        return nogroup_key(key, group);
    }
    let min_idle = match ll_arg(&a[4], Some("ERR Invalid min-idle-time argument for XCLAIM")) {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < a.len() {
        match parse_strict_id(&a[j], 0) {
            Ok(id) => ids.push((id, j)),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut delivery: i64 = -1;
    let mut retry: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let o = &a[j][..];
        if is(o, "force") {
            force = true;
        } else if is(o, "justid") {
            justid = true;
        } else if is(o, "idle") && more > 0 {
            j += 1;
            match ll_arg(&a[j], Some("ERR Invalid IDLE option argument for XCLAIM")) {
                Ok(n) => delivery = now - n,
                Err(e) => return e,
            }
        } else if is(o, "time") && more > 0 {
            j += 1;
            match ll_arg(&a[j], Some("ERR Invalid TIME option argument for XCLAIM")) {
                Ok(n) => delivery = n,
                Err(e) => return e,
            }
        } else if is(o, "retrycount") && more > 0 {
            j += 1;
            match ll_arg(
                &a[j],
                Some("ERR Invalid RETRYCOUNT option argument for XCLAIM"),
            ) {
                Ok(n) => retry = n,
                Err(e) => return e,
            }
        } else if is(o, "lastid") && more > 0 {
            j += 1;
            match parse_strict_id(&a[j], 0) {
                Ok(id) => last_id = id,
                Err(e) => return e,
            }
        } else {
            return Reply::error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(o)
            ));
        }
        j += 1;
    }
    let Ok(Some(s)) = lookup(ctx, key) else {
        return nogroup_key(key, group);
    };
    let mut propagate_last_id = false;
    {
        let Some(g) = s.groups.get_mut(&group[..]) else {
            return nogroup_key(key, group);
        };
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last_id = true;
        }
    }
    let delivery = if delivery != -1 {
        if delivery < 0 || delivery > now {
            now
        } else {
            delivery
        }
    } else {
        now
    };
    let mut out = Vec::new();
    let mut props: Vec<Vec<Arg>> = Vec::new();
    let mut dirty = 0;
    let mut consumer_ready = false;
    for (id, _) in ids {
        let exists = s.entries.contains_key(&id);
        let Some(g) = s.groups.get_mut(&group[..]) else {
            break;
        };
        if !exists {
            if let Some(n) = g.pel.get(&id) {
                let (t, c) = (n.delivery_time, n.delivery_count);
                props.push(xclaim_prop(key, group, g, id, t, c));
                propagate_last_id = false;
                dirty += 1;
                g.ack(id);
            }
            continue;
        }
        let pending = g.pel.get(&id).map(|n| (n.delivery_time, n.delivery_count));
        if pending.is_none() && !force {
            continue;
        }
        if let Some((t, _)) = pending {
            if min_idle > 0 && now - t < min_idle {
                continue;
            }
        }
        if !consumer_ready {
            ensure_consumer(g, name, now);
            consumer_ready = true;
        }
        // A Nack FORCE creates starts with one delivery (Redis `streamCreateNACK`).
        let old_count = pending.map(|(_, c)| c).unwrap_or(1);
        let count = if retry >= 0 {
            retry as u64
        } else if !justid {
            old_count + 1
        } else {
            old_count
        };
        g.assign(id, name, delivery, Some(count));
        props.push(xclaim_prop(key, group, g, id, delivery, count));
        propagate_last_id = false;
        dirty += 1;
        if justid {
            out.push(id_reply(id));
        } else if let Some(fv) = s.entries.get(&id) {
            out.push(entry_reply(id, fv));
        }
    }
    if propagate_last_id {
        if let Some(g) = s.groups.get(&group[..]) {
            props.push(setid_prop(key, group, g));
        }
        dirty += 1;
    }
    ctx.propagate_nothing();
    for p in props {
        ctx.propagate_as(p);
    }
    for _ in 0..dirty {
        count_dirty(ctx);
    }
    Reply::Array(out)
}

fn xautoclaim(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (key, group, name) = (&a[1], &a[2], &a[3]);
    let min_idle = match ll_arg(
        &a[4],
        Some("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    ) {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let start = match start_bound(&a[5]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if is(&a[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64_strict(&a[j + 1]) {
                Some(n) if (1..=max).contains(&n) => count = n,
                _ => return Reply::err_static("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if is(&a[j], "justid") {
            justid = true;
        } else {
            return syntax_error();
        }
        j += 1;
    }
    let has_group = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => false,
        Ok(Some(s)) => s.groups.contains_key(&group[..]),
    };
    if !has_group {
        return nogroup_key(key, group);
    }
    let now = ctx.now_ms;
    let Ok(Some(s)) = lookup(ctx, key) else {
        return nogroup_key(key, group);
    };
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut props: Vec<Vec<Arg>> = Vec::new();
    let mut consumer_ready = false;
    let mut cursor = start;
    let mut next_id = StreamId::MIN;
    while let Some(g) = s.groups.get_mut(&group[..]) {
        let Some((&id, n)) = g.pel.range(cursor..).next() else {
            break;
        };
        if attempts == 0 || count == 0 {
            next_id = id;
            break;
        }
        attempts -= 1;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let (t, c) = (n.delivery_time, n.delivery_count);
        if !s.entries.contains_key(&id) {
            props.push(xclaim_prop(key, group, g, id, t, c));
            g.ack(id);
            deleted.push(id);
            count -= 1;
        } else if min_idle > 0 && now - t < min_idle {
            // Not idle long enough.
        } else {
            if !consumer_ready {
                ensure_consumer(g, name, now);
                consumer_ready = true;
            }
            let new_count = if justid { c } else { c + 1 };
            g.assign(id, name, now, Some(new_count));
            props.push(xclaim_prop(key, group, g, id, now, new_count));
            claimed.push(id);
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    let mut entries = Vec::with_capacity(claimed.len());
    for id in claimed {
        if justid {
            entries.push(id_reply(id));
        } else if let Some(fv) = s.entries.get(&id) {
            entries.push(entry_reply(id, fv));
        }
    }
    let dirty = props.len();
    ctx.propagate_nothing();
    for p in props {
        ctx.propagate_as(p);
    }
    for _ in 0..dirty {
        count_dirty(ctx);
    }
    Reply::Array(vec![
        id_reply(next_id),
        Reply::Array(entries),
        Reply::Array(deleted.into_iter().map(id_reply).collect()),
    ])
}

// ---------------------------------------------------------------------------------------------
// XINFO.

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn xinfo_help(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() != 2 {
        return subcommand_syntax_error(a);
    }
    help_reply("XINFO", XINFO_HELP)
}

fn xinfo_key<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut StreamValue, Reply> {
    match read(ctx, key)? {
        Some(s) => Ok(s),
        None => Err(Reply::err_static(super::args::ERR_NO_SUCH_KEY)),
    }
}

fn field(name: &'static str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(name), v)
}

fn xinfo_stream(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let opts = &a[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if opts.len() != 1 && opts.len() != 3 {
            return subcommand_syntax_error(a);
        }
        if !is(&opts[0], "full") {
            return subcommand_syntax_error(a);
        }
        full = true;
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return subcommand_syntax_error(a);
            }
            match ll_arg(&opts[2], None) {
                Ok(c) => count = if c < 0 { 10 } else { c },
                Err(e) => return e,
            }
        }
    }
    let s = match xinfo_key(ctx, &a[2]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let nodes = s.nodes.len() as i64;
    let mut m = vec![
        field("length", Reply::Int(s.len() as i64)),
        field("radix-tree-keys", Reply::Int(nodes)),
        // Redis's radix tree has about one inner node per key plus the root.
        field("radix-tree-nodes", Reply::Int(nodes + 1)),
        field("last-generated-id", id_reply(s.last_id)),
        field("max-deleted-entry-id", id_reply(s.max_deleted_id)),
        field("entries-added", Reply::Int(s.entries_added as i64)),
        field("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    if !full {
        m.push(field("groups", Reply::Int(s.groups.len() as i64)));
        let first = s.entries.first_key_value();
        let last = s.entries.last_key_value();
        m.push(field(
            "first-entry",
            first.map(|(k, v)| entry_reply(*k, v)).unwrap_or(Reply::Nil),
        ));
        m.push(field(
            "last-entry",
            last.map(|(k, v)| entry_reply(*k, v)).unwrap_or(Reply::Nil),
        ));
        return Reply::Map(m);
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    m.push(field(
        "entries",
        entries_reply(
            s,
            StreamId::MIN,
            StreamId::MAX,
            false,
            if count == 0 { 0 } else { count as usize },
        ),
    ));
    let mut groups = Vec::new();
    for (name, g) in &s.groups {
        let pending: Vec<Reply> = g
            .pel
            .iter()
            .take(limit)
            .map(|(id, n)| {
                Reply::Array(vec![
                    id_reply(*id),
                    Reply::bulk_copy(&n.consumer),
                    Reply::Int(n.delivery_time),
                    Reply::Int(n.delivery_count as i64),
                ])
            })
            .collect();
        let consumers: Vec<Reply> = g
            .consumers
            .iter()
            .map(|(cname, c)| {
                let cp: Vec<Reply> = c
                    .pel
                    .iter()
                    .take(limit)
                    .filter_map(|id| g.pel.get(id).map(|n| (id, n)))
                    .map(|(id, n)| {
                        Reply::Array(vec![
                            id_reply(*id),
                            Reply::Int(n.delivery_time),
                            Reply::Int(n.delivery_count as i64),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    field("name", Reply::bulk_copy(cname)),
                    field("seen-time", Reply::Int(c.seen_time)),
                    field("pel-count", Reply::Int(c.pel.len() as i64)),
                    field("pending", Reply::Array(cp)),
                ])
            })
            .collect();
        groups.push(Reply::Map(vec![
            field("name", Reply::bulk_copy(name)),
            field("last-delivered-id", id_reply(g.last_id)),
            field("entries-read", entries_read_reply(g)),
            field("lag", s.group_lag(g).map(Reply::Int).unwrap_or(Reply::Nil)),
            field("pel-count", Reply::Int(g.pel.len() as i64)),
            field("pending", Reply::Array(pending)),
            field("consumers", Reply::Array(consumers)),
        ]));
    }
    m.push(field("groups", Reply::Array(groups)));
    Reply::Map(m)
}

fn entries_read_reply(g: &ConsumerGroup) -> Reply {
    if g.entries_read == INVALID_ENTRIES_READ {
        Reply::Nil
    } else {
        Reply::Int(g.entries_read)
    }
}

fn xinfo_groups(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let s = match xinfo_key(ctx, &a[2]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    Reply::Array(
        s.groups
            .iter()
            .map(|(name, g)| {
                Reply::Map(vec![
                    field("name", Reply::bulk_copy(name)),
                    field("consumers", Reply::Int(g.consumers.len() as i64)),
                    field("pending", Reply::Int(g.pel.len() as i64)),
                    field("last-delivered-id", id_reply(g.last_id)),
                    field("entries-read", entries_read_reply(g)),
                    field("lag", s.group_lag(g).map(Reply::Int).unwrap_or(Reply::Nil)),
                ])
            })
            .collect(),
    )
}

fn xinfo_consumers(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let now = ctx.now_ms;
    let s = match xinfo_key(ctx, &a[2]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(g) = s.groups.get(&a[3][..]) else {
        return Reply::error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(&a[3]),
            String::from_utf8_lossy(&a[2])
        ));
    };
    Reply::Array(
        g.consumers
            .iter()
            .map(|(name, c)| {
                Reply::Map(vec![
                    field("name", Reply::bulk_copy(name)),
                    field("pending", Reply::Int(c.pel.len() as i64)),
                    field("idle", Reply::Int((now - c.seen_time).max(0))),
                ])
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Blocking helpers for `cmd::serve_blocked`.

/// XREAD and XREADGROUP: parked readers each wait for their own IDs.
pub fn is_stream_read(spec: &CommandSpec) -> bool {
    matches!(spec.name, "xread" | "xreadgroup")
}

/// After a write: a key that clients wait on in XREADGROUP and that is no longer a stream
/// (deleted, overwritten, moved away) is made ready, so they are answered `-UNBLOCKED` (Redis
/// signals a deleted stream key for the same reason). Cheap when nobody blocks in XREADGROUP.
///
/// Inline up to the test for blocked clients, which every write makes (~18 instructions as a
/// call); the walk is out of line.
#[inline]
pub fn signal_lost_streams(state: &mut crate::engine::state::EngineState) {
    if state.blocking.clients.is_empty() {
        return;
    }
    signal_lost_streams_walk(state);
}

#[inline(never)]
fn signal_lost_streams_walk(state: &mut crate::engine::state::EngineState) {
    let mut lost = Vec::new();
    for b in state.blocking.clients.values() {
        if !is(&b.args[0], "xreadgroup") {
            continue;
        }
        for k in &b.keys {
            let is_stream = state.dbs[b.db]
                .peek(k)
                .is_some_and(|e| matches!(e.value, Value::Stream(_)));
            if !is_stream {
                lost.push((b.db, k.clone()));
            }
        }
    }
    for r in lost {
        if !state.blocking.ready.contains(&r) {
            state.blocking.ready.push(r);
        }
    }
}
