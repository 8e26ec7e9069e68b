//! List commands, including the blocking ones (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP). Pure (on
//! the locked state).
//!
//! Blocking: a blocking command that finds nothing to pop asks `Ctx::block_on` to park the
//! client on its keys; every push calls `Ctx::signal_ready`, and `cmd::serve_blocked` re-runs
//! the parked command for the longest waiter, which then either pops (and is answered) or asks
//! to block again. Whatever a blocking command pops is propagated as its non-blocking form
//! (BLPOP → LPOP key, BLMOVE → LMOVE ...), so a replica never waits on anything.

use bytes::Bytes;

use super::args::{self, int_arg, is, parse_i64_strict, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::list::{End, ListValue};
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        lpush,
    ),
    CommandSpec::new(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        rpush,
    ),
    CommandSpec::new(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        lpushx,
    ),
    CommandSpec::new(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        rpushx,
    ),
    CommandSpec::new("lpop", -2, WRITE | FAST, (1, 1, 1), "list", lpop),
    CommandSpec::new("rpop", -2, WRITE | FAST, (1, 1, 1), "list", rpop),
    CommandSpec::new("llen", 2, READONLY | FAST, (1, 1, 1), "list", llen),
    CommandSpec::new("lrange", 4, READONLY, (1, 1, 1), "list", lrange),
    CommandSpec::new("lindex", 3, READONLY, (1, 1, 1), "list", lindex),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", lset),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", linsert),
    CommandSpec::new("lrem", 4, WRITE, (1, 1, 1), "list", lrem),
    CommandSpec::new("ltrim", 4, WRITE, (1, 1, 1), "list", ltrim),
    CommandSpec::new("lpos", -3, READONLY, (1, 1, 1), "list", lpos),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", lmove),
    CommandSpec::new(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        (1, 2, 1),
        "list",
        rpoplpush,
    ),
    CommandSpec::new("lmpop", -4, WRITE, (0, 0, 0), "list", lmpop).with_keys(lmpop_keys),
    CommandSpec::new(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        blpop,
    ),
    CommandSpec::new(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        brpop,
    ),
    CommandSpec::new(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        blmove,
    ),
    CommandSpec::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        brpoplpush,
    ),
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), "list", blmpop)
        .with_keys(blmpop_keys),
];

/// Keys of `LMPOP numkeys key...` / `BLMPOP timeout numkeys key...` (numkeys at `at`).
fn mpop_keys(a: &[Arg], at: usize) -> Vec<usize> {
    let n = a
        .get(at)
        .and_then(|n| parse_i64_strict(n))
        .filter(|n| *n > 0)
        .unwrap_or(0) as usize;
    (at + 1..a.len()).take(n).collect()
}

fn lmpop_keys(a: &[Arg]) -> Vec<usize> {
    mpop_keys(a, 1)
}

fn blmpop_keys(a: &[Arg]) -> Vec<usize> {
    mpop_keys(a, 2)
}

/// The list at `key` for reading or writing: Ok(None) if missing, WRONGTYPE for other types.
fn lookup_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut ListValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(wrongtype()),
        },
    }
}

/// [`lookup_list`] for read commands, counting keyspace hits and misses as Redis does for
/// reads (writes are not counted).
fn read_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut ListValue>, Reply> {
    let now = ctx.now_ms;
    let hit = ctx.db().get(key, now).is_some();
    let stats = &mut ctx.state.stats;
    if hit {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    lookup_list(ctx, key)
}

fn parse_end(arg: &[u8]) -> Option<End> {
    if is(arg, "left") {
        Some(End::Left)
    } else if is(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

fn end_word(end: End) -> Arg {
    Arg::from_static(match end {
        End::Left => b"LEFT",
        End::Right => b"RIGHT",
    })
}

fn pop_word(end: End) -> Arg {
    Arg::from_static(match end {
        End::Left => b"LPOP",
        End::Right => b"RPOP",
    })
}

/// Redis's `getRangeLongFromObjectOrReply(..., min, LONG_MAX, msg)`: a non-integer and an
/// out-of-range value both get `msg` ("must be positive" when the caller has none).
fn bounded_int(arg: &[u8], min: i64, msg: Option<&'static str>) -> Result<i64, Reply> {
    let fail = || Reply::err_static(msg.unwrap_or(args::ERR_NOT_POSITIVE));
    let v = parse_i64_strict(arg).ok_or_else(fail)?;
    if v < min {
        return Err(fail());
    }
    Ok(v)
}

/// Pop up to `count` elements from the list at `key`, deleting the key when it becomes
/// empty: Ok(None) if the key is missing, WRONGTYPE for other types. One lookup, as this is
/// the LPOP/RPOP hot path.
fn pop_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, Reply> {
    let mut out = Vec::with_capacity(count.min(64));
    let emptied = match lookup_list(ctx, key)? {
        None => return Ok(None),
        Some(l) => {
            while out.len() < count {
                match l.pop(end) {
                    Some(v) => out.push(v.to_bytes()),
                    None => break,
                }
            }
            l.is_empty()
        }
    };
    if emptied {
        ctx.db().remove(key);
    }
    if !out.is_empty() {
        ctx.modified(key);
    }
    Ok(Some(out))
}

/// Push `items` to the list at `key`, creating it unless `only_existing`; the new length.
fn push_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    end: End,
    items: &[impl AsRef<[u8]>],
    only_existing: bool,
) -> Result<usize, Reply> {
    let len = match lookup_list(ctx, key)? {
        Some(l) => {
            for v in items {
                l.push(end, v.as_ref());
            }
            l.len()
        }
        None if only_existing => return Ok(0),
        None => {
            let mut l = ListValue::default();
            for v in items {
                l.push(end, v.as_ref());
            }
            let len = l.len();
            ctx.db().set(key, Value::List(Box::new(l)));
            len
        }
    };
    ctx.modified(key);
    ctx.signal_ready(key);
    Ok(len)
}

fn push_cmd(ctx: &mut Ctx<'_>, a: &[Arg], end: End, only_existing: bool) -> Reply {
    match push_elements(ctx, &a[1], end, &a[2..], only_existing) {
        Ok(n) => Reply::Int(n as i64),
        Err(e) => e,
    }
}

fn lpush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    push_cmd(ctx, a, End::Left, false)
}
fn rpush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    push_cmd(ctx, a, End::Right, false)
}
fn lpushx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    push_cmd(ctx, a, End::Left, true)
}
fn rpushx(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    push_cmd(ctx, a, End::Right, true)
}

fn pop_cmd(ctx: &mut Ctx<'_>, a: &[Arg], end: End) -> Reply {
    if a.len() > 3 {
        return Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&a[0]).to_ascii_lowercase()
        ));
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match bounded_int(c, 0, None) {
            Ok(n) => Some(n as usize),
            Err(e) => return e,
        },
    };
    match (pop_elements(ctx, &a[1], end, count.unwrap_or(1)), count) {
        (Err(e), _) => e,
        (Ok(None), Some(_)) => Reply::NilArray,
        (Ok(None), None) => Reply::Nil,
        (Ok(Some(mut items)), None) => items.pop().map(Reply::Bulk).unwrap_or(Reply::Nil),
        (Ok(Some(items)), Some(_)) => Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
    }
}

fn lpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    pop_cmd(ctx, a, End::Left)
}
fn rpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    pop_cmd(ctx, a, End::Right)
}

fn llen(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_list(ctx, &a[1]) {
        Ok(Some(l)) => Reply::Int(l.len() as i64),
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn lrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (start, stop) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match read_list(ctx, &a[1]) {
        Err(e) => e,
        Ok(None) => Reply::Array(Vec::new()),
        Ok(Some(l)) => match l.range(start, stop) {
            None => Reply::Array(Vec::new()),
            Some((s, e)) => {
                Reply::Array(l.items.range(s..=e).map(|v| Reply::bulk_copy(v)).collect())
            }
        },
    }
}

fn lindex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let l = match read_list(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(l)) => l,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match l.position(index) {
        Some(p) => Reply::bulk_copy(&l.items[p]),
        None => Reply::Nil,
    }
}

fn lset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let l = match lookup_list(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::err_static(args::ERR_NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match l.position(index) {
        Some(p) => {
            l.items[p] = CompactBytes::new(&a[3]);
            ctx.modified(&a[1]);
            Reply::Ok
        }
        None => Reply::err_static(args::ERR_INDEX_RANGE),
    }
}

fn linsert(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let after = if is(&a[2], "after") {
        true
    } else if is(&a[2], "before") {
        false
    } else {
        return syntax_error();
    };
    let l = match lookup_list(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(l)) => l,
    };
    if !l.insert_at_pivot(after, &a[3], &a[4]) {
        return Reply::Int(-1);
    }
    let len = l.len() as i64;
    ctx.modified(&a[1]);
    Reply::Int(len)
}

fn lrem(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let count = match int_arg(&a[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let key = &a[1];
    let (removed, emptied) = match lookup_list(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(l)) => (l.remove(count, &a[3]), l.is_empty()),
    };
    if emptied {
        ctx.db().remove(key);
    }
    if removed > 0 {
        ctx.modified(key);
    }
    Reply::Int(removed as i64)
}

fn ltrim(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (start, stop) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = &a[1];
    let (cut, emptied) = match lookup_list(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Ok,
        Ok(Some(l)) => {
            let before = l.len();
            l.trim(start, stop);
            (before != l.len(), l.is_empty())
        }
    };
    if emptied {
        ctx.db().remove(key);
    }
    if cut {
        ctx.modified(key);
    } else {
        // Like Redis: WATCHers fail even when nothing was cut, but there is nothing to
        // propagate.
        let db = ctx.client.db;
        ctx.state.watches.touch(db, key);
        let (id, now) = (ctx.client.id, ctx.now_ms);
        crate::engine::tracking::invalidate_key(ctx.state, key, id, now);
    }
    Reply::Ok
}

fn lpos(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        if is(&a[i], "rank") && has_value {
            match int_arg(&a[i + 1]) {
                Ok(0) => {
                    return Reply::err_static(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    )
                }
                Ok(r) => rank = r,
                Err(e) => return e,
            }
        } else if is(&a[i], "count") && has_value {
            match bounded_int(&a[i + 1], 0, Some("ERR COUNT can't be negative")) {
                Ok(c) => count = Some(c as usize),
                Err(e) => return e,
            }
        } else if is(&a[i], "maxlen") && has_value {
            match bounded_int(&a[i + 1], 0, Some("ERR MAXLEN can't be negative")) {
                Ok(m) => maxlen = m as usize,
                Err(e) => return e,
            }
        } else {
            return syntax_error();
        }
        i += 2;
    }
    let l = match read_list(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) if count.is_some() => return Reply::Array(Vec::new()),
        Ok(None) => return Reply::Nil,
        Ok(Some(l)) => l,
    };
    let found = l.positions(&a[2], rank, count.unwrap_or(1), maxlen);
    match count {
        Some(_) => Reply::Array(found.into_iter().map(|p| Reply::Int(p as i64)).collect()),
        None => found
            .first()
            .map(|p| Reply::Int(*p as i64))
            .unwrap_or(Reply::Nil),
    }
}

/// Move one element from `src` to `dst` (LMOVE and friends). Ok(None) when `src` is missing;
/// WRONGTYPE when either key holds another type (the destination is only checked when there is
/// something to move, as in Redis).
fn move_element(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, Reply> {
    if lookup_list(ctx, src)?.is_none() {
        return Ok(None);
    }
    lookup_list(ctx, dst)?;
    let Some(v) = pop_elements(ctx, src, from, 1)?.and_then(|mut v| v.pop()) else {
        return Ok(None);
    };
    push_elements(ctx, dst, to, std::slice::from_ref(&v), false)?;
    Ok(Some(v))
}

fn lmove(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (Some(from), Some(to)) = (parse_end(&a[3]), parse_end(&a[4])) else {
        return syntax_error();
    };
    match move_element(ctx, &a[1], &a[2], from, to) {
        Ok(Some(v)) => Reply::Bulk(v),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn rpoplpush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match move_element(ctx, &a[1], &a[2], End::Right, End::Left) {
        Ok(Some(v)) => Reply::Bulk(v),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]` of LMPOP/BLMPOP.
struct MpopArgs<'a> {
    keys: &'a [Arg],
    end: End,
    count: usize,
}

fn parse_mpop(a: &[Arg], numkeys_at: usize) -> Result<MpopArgs<'_>, Reply> {
    let numkeys = bounded_int(
        &a[numkeys_at],
        1,
        Some("ERR numkeys should be greater than 0"),
    )?;
    let where_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_at + 1))
        .filter(|w| *w < a.len())
        .ok_or_else(syntax_error)?;
    let end = parse_end(&a[where_at]).ok_or_else(syntax_error)?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < a.len() {
        if count.is_none() && is(&a[i], "count") && i + 1 < a.len() {
            let c = bounded_int(&a[i + 1], 1, Some("ERR count should be greater than 0"))?;
            count = Some(c as usize);
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(MpopArgs {
        keys: &a[numkeys_at + 1..where_at],
        end,
        count: count.unwrap_or(1),
    })
}

/// Pop from the first non-empty list among `keys`: Ok(Some(reply)) with `[key, [elements]]`
/// (propagated as LPOP/RPOP key count), Ok(None) if all are missing.
fn mpop_first(
    ctx: &mut Ctx<'_>,
    keys: &[Arg],
    end: End,
    count: usize,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        let Some(items) = pop_elements(ctx, key, end, count)? else {
            continue;
        };
        ctx.propagate_as(vec![
            pop_word(end),
            key.clone(),
            Arg::from(items.len().to_string()),
        ]);
        return Ok(Some(Reply::Array(vec![
            Reply::bulk_copy(key),
            Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
        ])));
    }
    Ok(None)
}

fn lmpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let m = match parse_mpop(a, 1) {
        Ok(m) => m,
        Err(e) => return e,
    };
    match mpop_first(ctx, m.keys, m.end, m.count) {
        Ok(Some(r)) => r,
        Ok(None) => Reply::NilArray,
        Err(e) => e,
    }
}

fn keys_of(keys: &[Arg]) -> Vec<CompactBytes> {
    keys.iter().map(|k| CompactBytes::new(k)).collect()
}

/// BLPOP / BRPOP: `[key, element]` from the first non-empty key, else block.
fn blocking_pop(ctx: &mut Ctx<'_>, a: &[Arg], end: End) -> Reply {
    let deadline = match args::blocking_deadline(&a[a.len() - 1], ctx.now_ms) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let keys = &a[1..a.len() - 1];
    for key in keys {
        let v = match pop_elements(ctx, key, end, 1) {
            Err(e) => return e,
            Ok(popped) => match popped.and_then(|mut v| v.pop()) {
                Some(v) => v,
                None => continue,
            },
        };
        ctx.propagate_as(vec![pop_word(end), key.clone()]);
        return Reply::Array(vec![Reply::bulk_copy(key), Reply::Bulk(v)]);
    }
    if !ctx.may_block {
        return Reply::NilArray;
    }
    ctx.block_on(keys_of(keys), deadline, Reply::NilArray)
}

fn blpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    blocking_pop(ctx, a, End::Left)
}
fn brpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    blocking_pop(ctx, a, End::Right)
}

/// BLMOVE / BRPOPLPUSH: move one element, else block on `src`. Served moves propagate as
/// LMOVE. Inside MULTI an empty source answers a nil bulk at once; a timeout answers a nil
/// array (both as Redis 7.0).
fn blocking_move(ctx: &mut Ctx<'_>, a: &[Arg], from: End, to: End, timeout: &[u8]) -> Reply {
    let deadline = match args::blocking_deadline(timeout, ctx.now_ms) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let (src, dst) = (&a[1], &a[2]);
    match move_element(ctx, src, dst, from, to) {
        Err(e) => e,
        Ok(Some(v)) => {
            ctx.propagate_as(vec![
                Arg::from_static(b"LMOVE"),
                src.clone(),
                dst.clone(),
                end_word(from),
                end_word(to),
            ]);
            Reply::Bulk(v)
        }
        Ok(None) if !ctx.may_block => Reply::Nil,
        Ok(None) => ctx.block_on(
            keys_of(std::slice::from_ref(src)),
            deadline,
            Reply::NilArray,
        ),
    }
}

fn blmove(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (Some(from), Some(to)) = (parse_end(&a[3]), parse_end(&a[4])) else {
        return syntax_error();
    };
    blocking_move(ctx, a, from, to, &a[5])
}

fn brpoplpush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    blocking_move(ctx, a, End::Right, End::Left, &a[3])
}

fn blmpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let m = match parse_mpop(a, 2) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let deadline = match args::blocking_deadline(&a[1], ctx.now_ms) {
        Ok(d) => d,
        Err(e) => return e,
    };
    match mpop_first(ctx, m.keys, m.end, m.count) {
        Ok(Some(r)) => r,
        Ok(None) if !ctx.may_block => Reply::NilArray,
        Ok(None) => ctx.block_on(keys_of(m.keys), deadline, Reply::NilArray),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::client::ClientState;
    use crate::engine::cmd::{process, Outcome};
    use crate::engine::config::Config;
    use crate::engine::state::{EngineState, WriteLog};

    /// A write log that remembers what reached it.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl WriteLog for Recorder {
        fn append(&mut self, _db: usize, args: &[Arg]) {
            let line: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            self.0.lock().unwrap().push(line.join(" "));
        }
    }

    fn args(line: &str) -> Vec<Arg> {
        line.split(' ')
            .map(|w| Arg::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn setup() -> (EngineState, Recorder, ClientState, ClientState) {
        let mut state = EngineState::new(Config::default(), 1_000);
        let log = Recorder::default();
        state.write_log = Box::new(log.clone());
        let a = ClientState::new(1, String::new(), String::new(), 0, false);
        let b = ClientState::new(2, String::new(), String::new(), 0, false);
        (state, log, a, b)
    }

    #[test]
    fn served_blocking_commands_propagate_as_their_plain_forms() {
        let (mut state, log, mut waiter, mut writer) = setup();
        let Outcome::Blocked { mut rx, .. } = process(
            &mut state,
            &mut waiter,
            args("BLMOVE src dst LEFT RIGHT 0"),
            1_000,
        ) else {
            panic!("BLMOVE on an empty list blocks");
        };
        let mut second = ClientState::new(3, String::new(), String::new(), 0, false);
        let Outcome::Blocked { rx: mut rx2, .. } =
            process(&mut state, &mut second, args("BLPOP dst 0"), 1_000)
        else {
            panic!("BLPOP on an empty list blocks");
        };
        assert!(
            log.0.lock().unwrap().is_empty(),
            "blocking propagates nothing"
        );
        let Outcome::Reply(r) = process(&mut state, &mut writer, args("RPUSH src a b"), 1_000)
        else {
            panic!("RPUSH answers");
        };
        assert_eq!(r, Reply::Int(2));
        assert_eq!(
            rx.try_recv().unwrap(),
            Reply::Bulk(Bytes::from_static(b"a"))
        );
        assert_eq!(
            rx2.try_recv().unwrap(),
            Reply::Array(vec![
                Reply::bulk_copy(b"dst"),
                Reply::Bulk(Bytes::from_static(b"a"))
            ])
        );
        assert_eq!(
            *log.0.lock().unwrap(),
            ["RPUSH src a b", "LMOVE src dst LEFT RIGHT", "LPOP dst"]
        );
        assert!(state.blocking.clients.is_empty());
    }

    #[test]
    fn immediate_blocking_pops_propagate_deterministically() {
        let (mut state, log, mut c, _) = setup();
        for line in [
            "RPUSH l a b c",
            "BRPOP l 0",
            "BLMPOP 0 1 l LEFT COUNT 5",
            "LPOP l",
        ] {
            let _ = process(&mut state, &mut c, args(line), 1_000);
        }
        assert_eq!(
            *log.0.lock().unwrap(),
            ["RPUSH l a b c", "RPOP l", "LPOP l 2"]
        );
    }
}
