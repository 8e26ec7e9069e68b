//! Sorted set commands: ZADD and its flags, ranges by rank/score/lex, pops (blocking too), set
//! algebra (ZUNION/ZINTER/ZDIFF and STORE variants), ZRANDMEMBER, ZSCAN. Pure (on the locked
//! state).

use bytes::Bytes;
use rand::Rng;

use super::args::{self, int_arg, is, syntax_error, wrongtype};
use super::flags::*;
use super::hashes::{parse_cursor, random_count, random_positions, scan_reply, ScanOptions};
use super::sets::numkeys_positions;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::{format_double, Reply};
use crate::engine::storage::zset::ZSetValue;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "sorted-set",
        zadd,
    ),
    CommandSpec::new(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "sorted-set",
        zincrby,
    ),
    CommandSpec::new("zrem", -3, WRITE | FAST, (1, 1, 1), "sorted-set", zrem),
    CommandSpec::new("zcard", 2, READONLY | FAST, (1, 1, 1), "sorted-set", zcard),
    CommandSpec::new(
        "zcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        "sorted-set",
        zcount,
    ),
    CommandSpec::new(
        "zlexcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        "sorted-set",
        zlexcount,
    ),
    CommandSpec::new(
        "zscore",
        3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted-set",
        zscore,
    ),
    CommandSpec::new(
        "zmscore",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted-set",
        zmscore,
    ),
    CommandSpec::new("zrank", 3, READONLY | FAST, (1, 1, 1), "sorted-set", zrank),
    CommandSpec::new(
        "zrevrank",
        3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted-set",
        zrevrank,
    ),
    CommandSpec::new("zrange", -4, READONLY, (1, 1, 1), "sorted-set", zrange),
    CommandSpec::new(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        (1, 2, 1),
        "sorted-set",
        zrangestore,
    ),
    CommandSpec::new(
        "zrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrangebyscore,
    ),
    CommandSpec::new(
        "zrevrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrevrangebyscore,
    ),
    CommandSpec::new(
        "zrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrangebylex,
    ),
    CommandSpec::new(
        "zrevrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrevrangebylex,
    ),
    CommandSpec::new(
        "zrevrange",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrevrange,
    ),
    CommandSpec::new(
        "zremrangebyrank",
        4,
        WRITE,
        (1, 1, 1),
        "sorted-set",
        zremrangebyrank,
    ),
    CommandSpec::new(
        "zremrangebyscore",
        4,
        WRITE,
        (1, 1, 1),
        "sorted-set",
        zremrangebyscore,
    ),
    CommandSpec::new(
        "zremrangebylex",
        4,
        WRITE,
        (1, 1, 1),
        "sorted-set",
        zremrangebylex,
    ),
    CommandSpec::new(
        "zpopmin",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        "sorted-set",
        zpopmin,
    ),
    CommandSpec::new(
        "zpopmax",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        "sorted-set",
        zpopmax,
    ),
    CommandSpec::new(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        (1, -2, 1),
        "sorted-set",
        bzpopmin,
    ),
    CommandSpec::new(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        (1, -2, 1),
        "sorted-set",
        bzpopmax,
    ),
    CommandSpec::new("zmpop", -4, WRITE, (0, 0, 0), "sorted-set", zmpop)
        .with_keys(numkeys_positions),
    CommandSpec::new(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        (0, 0, 0),
        "sorted-set",
        bzmpop,
    )
    .with_keys(bzmpop_keys),
    CommandSpec::new(
        "zrandmember",
        -2,
        READONLY,
        (1, 1, 1),
        "sorted-set",
        zrandmember,
    ),
    CommandSpec::new("zunion", -3, READONLY, (0, 0, 0), "sorted-set", zunion)
        .with_keys(numkeys_positions),
    CommandSpec::new("zinter", -3, READONLY, (0, 0, 0), "sorted-set", zinter)
        .with_keys(numkeys_positions),
    CommandSpec::new("zdiff", -3, READONLY, (0, 0, 0), "sorted-set", zdiff)
        .with_keys(numkeys_positions),
    CommandSpec::new(
        "zintercard",
        -3,
        READONLY,
        (0, 0, 0),
        "sorted-set",
        zintercard,
    )
    .with_keys(numkeys_positions),
    CommandSpec::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        (0, 0, 0),
        "sorted-set",
        zunionstore,
    )
    .with_keys(store_keys),
    CommandSpec::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        (0, 0, 0),
        "sorted-set",
        zinterstore,
    )
    .with_keys(store_keys),
    CommandSpec::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        (0, 0, 0),
        "sorted-set",
        zdiffstore,
    )
    .with_keys(store_keys),
    CommandSpec::new("zscan", -3, READONLY, (1, 1, 1), "sorted-set", zscan),
];

/// Keys of `ZUNIONSTORE dst numkeys key...`.
fn store_keys(a: &[Arg]) -> Vec<usize> {
    let mut keys = vec![1];
    if a.len() > 2 {
        keys.extend(numkeys_positions(&a[1..]).into_iter().map(|i| i + 1));
    }
    keys
}

/// Keys of `BZMPOP timeout numkeys key...`.
fn bzmpop_keys(a: &[Arg]) -> Vec<usize> {
    if a.len() < 2 {
        return Vec::new();
    }
    numkeys_positions(&a[1..])
        .into_iter()
        .map(|i| i + 1)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Access helpers

fn read_zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ZSetValue>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(wrongtype()),
        },
    }
}

fn write_zset<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    create: bool,
) -> Result<Option<&'a mut ZSetValue>, Reply> {
    let now = ctx.now_ms;
    let exists = match ctx.db().get(key, now) {
        None => false,
        Some(e) if matches!(e.value, Value::ZSet(_)) => true,
        Some(_) => return Err(wrongtype()),
    };
    if !exists {
        if !create {
            return Ok(None);
        }
        ctx.db().set(key, Value::ZSet(Default::default()));
    }
    match ctx.db().get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::ZSet(z)) => Ok(Some(z)),
        _ => Ok(None),
    }
}

/// zset-max-listpack-entries / zset-max-listpack-value.
#[derive(Clone, Copy)]
struct Limits {
    entries: usize,
    value: usize,
}

fn limits(ctx: &Ctx<'_>) -> Limits {
    let s = &ctx.state.config.settings;
    Limits {
        entries: s.zset_max_listpack_entries,
        value: s.zset_max_listpack_value,
    }
}

/// Insert keeping track of the encoding Redis would use: a listpack stores scores as text, so
/// `-0` reads back as `0` there, while a skiplist keeps the sign.
fn add_member(z: &mut ZSetValue, member: &[u8], score: f64, lim: Limits) -> bool {
    z.insert_limited(member, score, lim.entries, lim.value)
}

/// Delete the key when a command emptied its sorted set.
fn drop_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) {
    let now = ctx.now_ms;
    let empty = matches!(
        ctx.db().get(key, now).map(|e| &e.value),
        Some(Value::ZSet(z)) if z.is_empty()
    );
    if empty {
        ctx.db().remove(key);
    }
}

fn bulk(m: &CompactBytes) -> Reply {
    Reply::bulk_copy(m)
}

/// Members with scores: RESP3 `[[m, s], ...]` when `nested`, else `[m, s, ...]`.
fn pairs_reply(items: &[(CompactBytes, f64)], nested: bool) -> Reply {
    let mut out = Vec::with_capacity(items.len() * if nested { 1 } else { 2 });
    for (m, s) in items {
        if nested {
            out.push(Reply::Array(vec![bulk(m), Reply::Double(*s)]));
        } else {
            out.push(bulk(m));
            out.push(Reply::Double(*s));
        }
    }
    Reply::Array(out)
}

fn members_reply(items: &[(CompactBytes, f64)], with_scores: bool, proto: u8) -> Reply {
    if with_scores {
        pairs_reply(items, proto >= 3)
    } else {
        Reply::Array(items.iter().map(|(m, _)| bulk(m)).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges

/// A score interval, as `zslParseRange` reads it ("(1.5", "-inf", "+inf").
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    min_ex: bool,
    max_ex: bool,
}

fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.first() {
        Some(b'(') => strtod_whole(&arg[1..]).map(|v| (v, true)),
        _ => strtod_whole(arg).map(|v| (v, false)),
    }
}

/// Range bounds go through plain `strtod` in Redis: leading spaces are skipped and an empty
/// string reads as 0 ("(" is "exclusive 0").
fn strtod_whole(s: &[u8]) -> Option<f64> {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let s = &s[start..];
    if s.is_empty() {
        return Some(0.0);
    }
    args::parse_f64(s)
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    let err = || Reply::err_static("ERR min or max is not a float");
    let (min, min_ex) = parse_score_bound(min).ok_or_else(err)?;
    let (max, max_ex) = parse_score_bound(max).ok_or_else(err)?;
    Ok(ScoreRange {
        min,
        max,
        min_ex,
        max_ex,
    })
}

impl ScoreRange {
    /// Ascending ranks `start..end` of the members inside the range.
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let r = *self;
        let start = z.count_before(|s, _| s < r.min || (r.min_ex && s <= r.min));
        let end = z.count_before(|s, _| s < r.max || (!r.max_ex && s <= r.max));
        (start, end.max(start))
    }
}

/// A lexicographic bound: `-`, `+`, `[x` (inclusive) or `(x` (exclusive).
#[derive(Clone)]
enum LexBound {
    NegInf,
    PosInf,
    Incl(Bytes),
    Excl(Bytes),
}

fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Some(LexBound::NegInf),
        Some(b'+') if arg.len() == 1 => Some(LexBound::PosInf),
        Some(b'[') => Some(LexBound::Incl(Bytes::copy_from_slice(&arg[1..]))),
        Some(b'(') => Some(LexBound::Excl(Bytes::copy_from_slice(&arg[1..]))),
        _ => None,
    }
}

struct LexRange {
    min: LexBound,
    max: LexBound,
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    let err = || Reply::err_static("ERR min or max not valid string range item");
    Ok(LexRange {
        min: parse_lex_bound(min).ok_or_else(err)?,
        max: parse_lex_bound(max).ok_or_else(err)?,
    })
}

impl LexRange {
    /// Ascending ranks of the members inside the range (meaningful when all scores are equal,
    /// which is what the lex commands require).
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let start = z.count_before(|_, m| match &self.min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m < b.as_ref(),
            LexBound::Excl(b) => m <= b.as_ref(),
        });
        let end = z.count_before(|_, m| match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= b.as_ref(),
            LexBound::Excl(b) => m < b.as_ref(),
        });
        (start, end.max(start))
    }
}

/// Redis's normalisation of rank ranges: negative indexes count from the end; returns an
/// ascending `start..end` or None when empty.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize + 1))
}

#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// The members a range command selects, in reply order.
fn select_range(
    z: &ZSetValue,
    kind: RangeType,
    reverse: bool,
    min: &[u8],
    max: &[u8],
    offset: i64,
    limit: i64,
) -> Result<Vec<(CompactBytes, f64)>, Reply> {
    let len = z.len();
    let (start, end) = match kind {
        RangeType::Rank | RangeType::Auto => {
            let (a, b) = (int_arg(min)?, int_arg(max)?);
            let Some((s, e)) = rank_range(a, b, len) else {
                return Ok(Vec::new());
            };
            if reverse {
                // Ranks counted from the highest score.
                let mut v = z.range(len - e, len - s);
                v.reverse();
                return Ok(v);
            }
            return Ok(z.range(s, e));
        }
        RangeType::Score => parse_score_range(min, max)?.ranks(z),
        RangeType::Lex => parse_lex_range(min, max)?.ranks(z),
    };
    if offset < 0 || limit == 0 || start >= end {
        return Ok(Vec::new());
    }
    let available = end - start;
    let offset = (offset as u64).min(available as u64) as usize;
    let take = if limit < 0 {
        available - offset
    } else {
        (limit as u64).min((available - offset) as u64) as usize
    };
    Ok(if reverse {
        let hi = end - offset;
        let mut v = z.range(hi - take, hi);
        v.reverse();
        v
    } else {
        z.range(start + offset, start + offset + take)
    })
}

/// `zrangeGenericCommand`: ZRANGE and every fixed-form variant, optionally storing.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    a: &[Arg],
    store: Option<&Arg>,
    key_index: usize,
    mut kind: RangeType,
    mut direction: Direction,
) -> Reply {
    let key = &a[key_index];
    let (mut min, mut max) = (&a[key_index + 1], &a[key_index + 2]);
    let mut with_scores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut limit_given = false;
    let mut j = key_index + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if store.is_none() && is(&a[j], "withscores") {
            with_scores = true;
        } else if is(&a[j], "limit") && left >= 2 {
            offset = match int_arg(&a[j + 1]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            limit = match int_arg(&a[j + 2]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            limit_given = true;
            j += 2;
        } else if direction == Direction::Auto && is(&a[j], "rev") {
            direction = Direction::Reverse;
        } else if kind == RangeType::Auto && is(&a[j], "bylex") {
            kind = RangeType::Lex;
        } else if kind == RangeType::Auto && is(&a[j], "byscore") {
            kind = RangeType::Score;
        } else {
            return syntax_error();
        }
        j += 1;
    }
    if kind == RangeType::Auto {
        kind = RangeType::Rank;
    }
    let reverse = direction == Direction::Reverse;
    // Redis treats "LIMIT x -1" as no LIMIT at all for this check.
    if limit_given && limit != -1 && kind == RangeType::Rank {
        return Reply::err_static(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if with_scores && kind == RangeType::Lex {
        return Reply::err_static(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        );
    }
    if reverse && kind != RangeType::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    // Parse the range before looking the key up (errors win over a missing key).
    let parsed = match kind {
        RangeType::Score => parse_score_range(min, max).map(|_| ()),
        RangeType::Lex => parse_lex_range(min, max).map(|_| ()),
        _ => int_arg(min).and_then(|_| int_arg(max)).map(|_| ()),
    };
    if let Err(e) = parsed {
        return e;
    }
    let proto = ctx.client.proto;
    let items = match read_zset(ctx, key) {
        Err(e) => return e,
        Ok(None) => Vec::new(),
        Ok(Some(z)) => match select_range(z, kind, reverse, min, max, offset, limit) {
            Ok(v) => v,
            Err(e) => return e,
        },
    };
    match store {
        None => members_reply(&items, with_scores, proto),
        Some(dst) => store_result(ctx, dst, &items),
    }
}

/// Store `items` as the sorted set at `dst` (replacing it), or delete `dst` when empty.
pub(super) fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], items: &[(CompactBytes, f64)]) -> Reply {
    if items.is_empty() {
        if ctx.db().remove(dst).is_some() {
            ctx.modified(dst);
        }
        return Reply::Int(0);
    }
    let lim = limits(ctx);
    let mut z = ZSetValue::default();
    // Redis builds the result as a skiplist then converts it to a listpack when it is small.
    let small = items.len() <= lim.entries && items.iter().all(|(m, _)| m.len() <= lim.value);
    if !small {
        z.convert();
    }
    for (m, s) in items {
        z.insert_limited(m, *s, lim.entries, lim.value);
    }
    ctx.db().set(dst, Value::ZSet(z));
    ctx.modified(dst);
    ctx.signal_ready(dst);
    Reply::Int(items.len() as i64)
}

fn zrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Auto, Direction::Auto)
}
fn zrangestore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let dst = a[1].clone();
    zrange_generic(ctx, a, Some(&dst), 2, RangeType::Auto, Direction::Auto)
}
fn zrevrange(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Rank, Direction::Reverse)
}
fn zrangebyscore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Score, Direction::Forward)
}
fn zrevrangebyscore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Score, Direction::Reverse)
}
fn zrangebylex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Lex, Direction::Forward)
}
fn zrevrangebylex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zrange_generic(ctx, a, None, 1, RangeType::Lex, Direction::Reverse)
}

// ---------------------------------------------------------------------------------------------
// ZADD and single-member commands

/// ZADD's options (GEOADD passes NX, XX and CH through).
#[derive(Default)]
pub(super) struct ZaddFlags {
    pub(super) nx: bool,
    pub(super) xx: bool,
    pub(super) gt: bool,
    pub(super) lt: bool,
    pub(super) ch: bool,
    pub(super) incr: bool,
}

fn zadd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut f = ZaddFlags::default();
    let mut i = 2;
    while i < a.len() {
        let o = &a[i];
        if is(o, "nx") {
            f.nx = true;
        } else if is(o, "xx") {
            f.xx = true;
        } else if is(o, "gt") {
            f.gt = true;
        } else if is(o, "lt") {
            f.lt = true;
        } else if is(o, "ch") {
            f.ch = true;
        } else if is(o, "incr") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = a.len() - i;
    if elements % 2 != 0 || elements == 0 {
        return syntax_error();
    }
    if f.incr && elements > 2 {
        return Reply::err_static("ERR INCR option supports a single increment-element pair");
    }
    if f.nx && f.xx {
        return Reply::err_static("ERR XX and NX options at the same time are not compatible");
    }
    if [f.gt, f.lt, f.nx].iter().filter(|set| **set).count() > 1 {
        return Reply::err_static(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        );
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in a[i..].chunks(2) {
        match score_arg(&p[0]) {
            Some(s) => pairs.push((s, &p[1])),
            None => return args::not_float(),
        }
    }
    zadd_generic(ctx, &a[1], &pairs, &f)
}

pub(super) fn zadd_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    pairs: &[(f64, &Arg)],
    f: &ZaddFlags,
) -> Reply {
    let lim = limits(ctx);
    let exists = match read_zset(ctx, key) {
        Err(e) => return e,
        Ok(z) => z.is_some(),
    };
    let nothing = || {
        if f.incr {
            Reply::Nil
        } else {
            Reply::Int(0)
        }
    };
    if !exists && f.xx {
        return nothing();
    }
    let Ok(Some(z)) = write_zset(ctx, key, true) else {
        return wrongtype();
    };
    let (mut added, mut updated) = (0i64, 0i64);
    let mut result: Option<f64> = None;
    let mut error = None;
    for &(score, member) in pairs {
        match z.score(member) {
            Some(current) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { current + score } else { score };
                if new.is_nan() {
                    error = Some(Reply::err_static(
                        "ERR resulting score is not a number (NaN)",
                    ));
                    break;
                }
                if (f.lt && new >= current) || (f.gt && new <= current) {
                    continue;
                }
                if new != current {
                    add_member(z, member, new, lim);
                    updated += 1;
                }
                // The reply is the computed score, even where a listpack stores -0 as 0.
                result = Some(new);
            }
            None => {
                if f.xx {
                    continue;
                }
                add_member(z, member, score, lim);
                added += 1;
                result = Some(score);
            }
        }
    }
    drop_if_empty(ctx, key);
    if added + updated > 0 {
        ctx.modified(key);
    }
    if added > 0 {
        ctx.signal_ready(key);
    }
    if let Some(e) = error {
        return e;
    }
    if f.incr {
        result.map_or(Reply::Nil, Reply::Double)
    } else if f.ch {
        Reply::Int(added + updated)
    } else {
        Reply::Int(added)
    }
}

fn zincrby(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(delta) = score_arg(&a[2]) else {
        return args::not_float();
    };
    let f = ZaddFlags {
        nx: false,
        xx: false,
        gt: false,
        lt: false,
        ch: false,
        incr: true,
    };
    zadd_generic(ctx, &a[1], &[(delta, &a[3])], &f)
}

fn zrem(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let z = match write_zset(ctx, &a[1], false) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(z)) => z,
    };
    let removed = a[2..].iter().filter(|m| z.remove(m).is_some()).count();
    drop_if_empty(ctx, &a[1]);
    if removed > 0 {
        ctx.modified(&a[1]);
    }
    Reply::Int(removed as i64)
}

fn zcard(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(z) => Reply::Int(z.map_or(0, |z| z.len() as i64)),
    }
}

fn zcount(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let range = match parse_score_range(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(z)) => {
            let (s, e) = range.ranks(z);
            Reply::Int((e - s) as i64)
        }
    }
}

fn zlexcount(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let range = match parse_lex_range(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(z)) => {
            let (s, e) = range.ranks(z);
            Reply::Int((e - s) as i64)
        }
    }
}

fn zscore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(z) => z
            .and_then(|z| z.score(&a[2]))
            .map_or(Reply::Nil, Reply::Double),
    }
}

fn zmscore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(z) => Reply::Array(
            a[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
                .collect(),
        ),
    }
}

fn rank_generic(ctx: &mut Ctx<'_>, a: &[Arg], reverse: bool) -> Reply {
    match read_zset(ctx, &a[1]) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(z)) => match z.rank(&a[2]) {
            None => Reply::Nil,
            Some(r) if reverse => Reply::Int((z.len() - 1 - r) as i64),
            Some(r) => Reply::Int(r as i64),
        },
    }
}

fn zrank(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    rank_generic(ctx, a, false)
}
fn zrevrank(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    rank_generic(ctx, a, true)
}

// ---------------------------------------------------------------------------------------------
// Removal by range

/// A parsed range of any kind, resolved to ascending ranks against a given sorted set.
enum ParsedRange {
    Score(ScoreRange),
    Lex(LexRange),
    Rank(i64, i64),
}

impl ParsedRange {
    fn ranks(&self, z: &ZSetValue) -> Option<(usize, usize)> {
        match self {
            ParsedRange::Score(r) => Some(r.ranks(z)),
            ParsedRange::Lex(r) => Some(r.ranks(z)),
            ParsedRange::Rank(s, e) => rank_range(*s, *e, z.len()),
        }
    }
}

fn zremrange_generic(ctx: &mut Ctx<'_>, a: &[Arg], kind: RangeType) -> Reply {
    // Parse first: a bad range is an error even for a missing key.
    let range = match kind {
        RangeType::Score => match parse_score_range(&a[2], &a[3]) {
            Ok(r) => ParsedRange::Score(r),
            Err(e) => return e,
        },
        RangeType::Lex => match parse_lex_range(&a[2], &a[3]) {
            Ok(r) => ParsedRange::Lex(r),
            Err(e) => return e,
        },
        _ => match (int_arg(&a[2]), int_arg(&a[3])) {
            (Ok(s), Ok(e)) => ParsedRange::Rank(s, e),
            (Err(x), _) | (_, Err(x)) => return x,
        },
    };
    let z = match write_zset(ctx, &a[1], false) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(z)) => z,
    };
    let Some((start, end)) = range.ranks(z) else {
        return Reply::Int(0);
    };
    let victims = z.range(start, end);
    for (m, _) in &victims {
        z.remove(m);
    }
    drop_if_empty(ctx, &a[1]);
    if !victims.is_empty() {
        ctx.modified(&a[1]);
    }
    Reply::Int(victims.len() as i64)
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zremrange_generic(ctx, a, RangeType::Rank)
}
fn zremrangebyscore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zremrange_generic(ctx, a, RangeType::Score)
}
fn zremrangebylex(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zremrange_generic(ctx, a, RangeType::Lex)
}

// ---------------------------------------------------------------------------------------------
// Pops

/// Pop up to `count` members from the low (`max == false`) or high end of the zset at `key`.
fn pop_members(ctx: &mut Ctx<'_>, key: &[u8], max: bool, count: usize) -> Vec<(CompactBytes, f64)> {
    let Ok(Some(z)) = write_zset(ctx, key, false) else {
        return Vec::new();
    };
    let n = count.min(z.len());
    let items = if max {
        let mut v = z.range(z.len() - n, z.len());
        v.reverse();
        v
    } else {
        z.range(0, n)
    };
    for (m, _) in &items {
        z.remove(m);
    }
    drop_if_empty(ctx, key);
    if !items.is_empty() {
        ctx.modified(key);
    }
    items
}

/// The first of `keys` holding a sorted set; WRONGTYPE if one before it holds another type.
fn first_nonempty(ctx: &mut Ctx<'_>, keys: &[Arg]) -> Result<Option<Arg>, Reply> {
    for k in keys {
        if read_zset(ctx, k)?.is_some() {
            return Ok(Some(k.clone()));
        }
    }
    Ok(None)
}

fn zpop_generic(ctx: &mut Ctx<'_>, a: &[Arg], max: bool) -> Reply {
    if a.len() > 3 {
        return syntax_error();
    }
    let count = if a.len() == 3 {
        match args::parse_i64_strict(&a[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err_static(args::ERR_NOT_POSITIVE),
        }
    } else {
        None
    };
    match read_zset(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(_)) => {}
    }
    let nested = count.is_some() && ctx.client.proto >= 3;
    let items = pop_members(ctx, &a[1], max, count.unwrap_or(1));
    pairs_reply(&items, nested)
}

fn zpopmin(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zpop_generic(ctx, a, false)
}
fn zpopmax(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zpop_generic(ctx, a, true)
}

/// A score or weight argument as Redis's `getDoubleFromObject` reads it: like any float, but a
/// value that overflows to infinity or underflows to zero ("1e400", "1e-400") is rejected,
/// while the literal "inf" is accepted.
fn score_arg(arg: &[u8]) -> Option<f64> {
    let v = args::parse_f64(arg)?;
    let literal_inf = arg.iter().any(|c| c.eq_ignore_ascii_case(&b'i'));
    if v.is_infinite() && !literal_inf {
        return None;
    }
    if v == 0.0 {
        // Only digits before the exponent decide whether the text was a real zero.
        let mantissa = arg
            .split(|c| *c == b'e' || *c == b'E')
            .next()
            .unwrap_or(b"");
        if mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
            return None;
        }
    }
    Some(v)
}

fn pop_command_name(max: bool) -> Arg {
    Arg::from_static(if max { b"ZPOPMAX" } else { b"ZPOPMIN" })
}

fn bzpop_generic(ctx: &mut Ctx<'_>, a: &[Arg], max: bool) -> Reply {
    let keys = &a[1..a.len() - 1];
    let deadline = match args::blocking_deadline(&a[a.len() - 1], ctx.now_ms) {
        Ok(d) => d,
        Err(e) => return e,
    };
    match first_nonempty(ctx, keys) {
        Err(e) => e,
        Ok(Some(key)) => {
            let items = pop_members(ctx, &key, max, 1);
            ctx.propagate_as(vec![pop_command_name(max), key.clone()]);
            let mut out = vec![Reply::bulk_arg(&key)];
            for (m, s) in items {
                out.push(bulk(&m));
                out.push(Reply::Double(s));
            }
            Reply::Array(out)
        }
        Ok(None) if !ctx.may_block => Reply::NilArray,
        Ok(None) => ctx.block_on(
            keys.iter().map(|k| CompactBytes::new(k)).collect(),
            deadline,
            Reply::NilArray,
        ),
    }
}

fn bzpopmin(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    bzpop_generic(ctx, a, false)
}
fn bzpopmax(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    bzpop_generic(ctx, a, true)
}

/// ZMPOP / BZMPOP with `numkeys` at `a[numkeys_index]`.
fn zmpop_generic(
    ctx: &mut Ctx<'_>,
    a: &[Arg],
    numkeys_index: usize,
    deadline: Option<i64>,
) -> Reply {
    let numkeys = match args::parse_i64_strict(&a[numkeys_index]) {
        Some(n) if n > 0 => n as usize,
        _ => return Reply::err_static("ERR numkeys should be greater than 0"),
    };
    let where_index = numkeys_index.saturating_add(numkeys).saturating_add(1);
    if where_index >= a.len() {
        return syntax_error();
    }
    let max = if is(&a[where_index], "min") {
        false
    } else if is(&a[where_index], "max") {
        true
    } else {
        return syntax_error();
    };
    let mut count: Option<usize> = None;
    let mut j = where_index + 1;
    while j < a.len() {
        if count.is_none() && is(&a[j], "count") && j + 1 < a.len() {
            match args::parse_i64_strict(&a[j + 1]) {
                Some(n) if n > 0 => count = Some(n as usize),
                _ => return Reply::err_static("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return syntax_error();
        }
    }
    let count = count.unwrap_or(1);
    let keys = &a[numkeys_index + 1..where_index];
    match first_nonempty(ctx, keys) {
        Err(e) => e,
        Ok(Some(key)) => {
            let items = pop_members(ctx, &key, max, count);
            ctx.propagate_as(vec![
                pop_command_name(max),
                key.clone(),
                Arg::from(items.len().to_string()),
            ]);
            Reply::Array(vec![Reply::bulk_arg(&key), pairs_reply(&items, true)])
        }
        Ok(None) => match deadline {
            Some(d) if ctx.may_block => ctx.block_on(
                keys.iter().map(|k| CompactBytes::new(k)).collect(),
                d,
                Reply::NilArray,
            ),
            _ => Reply::NilArray,
        },
    }
}

fn zmpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zmpop_generic(ctx, a, 1, None)
}

fn bzmpop(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match args::blocking_deadline(&a[1], ctx.now_ms) {
        Ok(d) => zmpop_generic(ctx, a, 2, Some(d)),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN

fn zrandmember(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut with_scores = false;
    let mut count = None;
    if a.len() >= 3 {
        match random_count(&a[2]) {
            Ok(n) => count = Some(n),
            Err(e) => return e,
        }
        if a.len() == 4 && is(&a[3], "withscores") {
            with_scores = true;
        } else if a.len() > 3 {
            return syntax_error();
        }
        if with_scores && count.is_some_and(|n| n < -(i64::MAX / 2)) {
            return Reply::err_static("ERR value is out of range");
        }
    }
    let proto = ctx.client.proto;
    let z = match read_zset(ctx, &a[1]) {
        Err(e) => return e,
        Ok(z) => z,
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return match z {
            None => Reply::Nil,
            Some(z) => z
                .dict_index(rng.gen_range(0..z.len().max(1)))
                .map_or(Reply::Nil, |(m, _)| Reply::bulk_copy(m)),
        };
    };
    let Some(z) = z else {
        return Reply::Array(Vec::new());
    };
    let items: Vec<(CompactBytes, f64)> = if count >= 0 && count as usize >= z.len() {
        // The whole set: Redis 7.0 returns a listpack from the highest score down.
        let mut all: Vec<_> = z.iter().map(|(m, s)| (CompactBytes::new(m), s)).collect();
        all.reverse();
        all
    } else {
        z.entries_at(&random_positions(z.len(), count, &mut rng))
    };
    members_reply(&items, with_scores, proto)
}

fn zscan(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let cursor = match parse_cursor(&a[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let z = match read_zset(ctx, &a[1]) {
        Err(e) => return e,
        Ok(None) => return scan_reply(0, Vec::new()),
        Ok(Some(z)) => z,
    };
    let opts = match ScanOptions::parse(a, 3) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    // ZSCAN replies carry scores as plain strings in both protocols.
    let mut push = |m: &[u8], s: f64| {
        if opts.matches(m) {
            items.push(Reply::bulk_copy(m));
            items.push(Reply::Bulk(Bytes::from(format_double(s))));
        }
    };
    if z.is_packed() {
        // Redis returns a listpack whole, in score order, in one call.
        for (m, s) in z.iter() {
            push(m, s);
        }
        return scan_reply(0, items);
    }
    let next = crate::engine::storage::db::scan_positions(z.len(), cursor, opts.count, |i| {
        if let Some((m, s)) = z.dict_index(i) {
            push(m, s);
        }
    });
    scan_reply(next, items)
}

// ---------------------------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input of a set operation: a sorted set or a plain set (members score 1).
enum Source {
    Missing,
    ZSet(Vec<(CompactBytes, f64)>),
    Set(Vec<CompactBytes>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::ZSet(v) => v.len(),
            Source::Set(v) => v.len(),
        }
    }
    fn items(&self) -> Vec<(CompactBytes, f64)> {
        match self {
            Source::Missing => Vec::new(),
            Source::ZSet(v) => v.clone(),
            Source::Set(v) => v.iter().map(|m| (m.clone(), 1.0)).collect(),
        }
    }
}

fn aggregate(op: Aggregate, acc: f64, v: f64) -> f64 {
    match op {
        Aggregate::Sum => {
            let s = acc + v;
            // inf + -inf: Redis stores 0 rather than NaN.
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        // Written as Redis compares, so a NaN input leaves the accumulator unchanged.
        Aggregate::Min => {
            if v < acc {
                v
            } else {
                acc
            }
        }
        Aggregate::Max => {
            if v > acc {
                v
            } else {
                acc
            }
        }
    }
}

/// `zunionInterDiffGenericCommand`. `numkeys_index` is where numkeys is; `dst` for STORE
/// variants; `card_only` for ZINTERCARD.
fn zsetop_generic(
    ctx: &mut Ctx<'_>,
    a: &[Arg],
    numkeys_index: usize,
    dst: Option<&Arg>,
    op: SetOp,
    card_only: bool,
    name: &str,
) -> Reply {
    let setnum = match int_arg(&a[numkeys_index]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if setnum < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let setnum = setnum as usize;
    if setnum > a.len() - numkeys_index - 1 {
        return syntax_error();
    }
    let now = ctx.now_ms;
    let mut sources = Vec::with_capacity(setnum);
    for k in &a[numkeys_index + 1..numkeys_index + 1 + setnum] {
        let src = match ctx.db().get(k, now).map(|e| &e.value) {
            None => Source::Missing,
            Some(Value::ZSet(z)) => {
                Source::ZSet(z.iter().map(|(m, s)| (CompactBytes::new(m), s)).collect())
            }
            Some(Value::Set(s)) => Source::Set(s.ordered()),
            Some(_) => return wrongtype(),
        };
        sources.push(src);
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut with_scores = false;
    let mut limit = 0usize;
    let mut j = numkeys_index + 1 + setnum;
    while j < a.len() {
        let remaining = a.len() - j;
        if op != SetOp::Diff && !card_only && remaining > setnum && is(&a[j], "weights") {
            j += 1;
            for w in weights.iter_mut() {
                match score_arg(&a[j]) {
                    Some(v) => *w = v,
                    None => return Reply::err_static("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(&a[j], "aggregate") {
            agg = if is(&a[j + 1], "sum") {
                Aggregate::Sum
            } else if is(&a[j + 1], "min") {
                Aggregate::Min
            } else if is(&a[j + 1], "max") {
                Aggregate::Max
            } else {
                return syntax_error();
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(&a[j], "withscores") {
            with_scores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(&a[j], "limit") {
            match args::parse_i64_strict(&a[j + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Reply::err_static("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return syntax_error();
        }
    }
    let weighted = |v: f64, w: f64| {
        let s = v * w;
        if s.is_nan() {
            0.0
        } else {
            s
        }
    };
    let mut result = ZSetValue::default();
    match op {
        SetOp::Union => {
            let mut acc: indexmap::IndexMap<CompactBytes, f64> = indexmap::IndexMap::new();
            for (src, w) in sources.iter().zip(&weights) {
                for (m, s) in src.items() {
                    let v = weighted(s, *w);
                    match acc.get_mut(&m) {
                        Some(cur) => *cur = aggregate(agg, *cur, v),
                        None => {
                            acc.insert(m, v);
                        }
                    }
                }
            }
            for (m, s) in acc {
                result.insert(m, s);
            }
        }
        SetOp::Inter => {
            if sources.iter().all(|s| !matches!(s, Source::Missing)) {
                let mut order: Vec<usize> = (0..setnum).collect();
                order.sort_by_key(|&i| sources[i].len());
                let lookups: Vec<std::collections::HashMap<CompactBytes, f64>> = sources
                    .iter()
                    .map(|s| s.items().into_iter().collect())
                    .collect();
                let first = order[0];
                for (m, s) in sources[first].items() {
                    let mut score = weighted(s, weights[first]);
                    let mut everywhere = true;
                    for &i in &order[1..] {
                        match lookups[i].get(&m) {
                            // Redis only maps NaN to 0 for the first input's weighted score.
                            Some(v) => score = aggregate(agg, score, *v * weights[i]),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if everywhere {
                        result.insert(m, score);
                        if card_only && limit > 0 && result.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        SetOp::Diff => {
            let others: Vec<std::collections::HashSet<CompactBytes>> = sources[1..]
                .iter()
                .map(|s| s.items().into_iter().map(|(m, _)| m).collect())
                .collect();
            for (m, s) in sources[0].items() {
                if !others.iter().any(|o| o.contains(&m)) {
                    result.insert(m, s);
                }
            }
        }
    }
    if card_only {
        return Reply::Int(result.len() as i64);
    }
    let items: Vec<(CompactBytes, f64)> = result
        .iter()
        .map(|(m, s)| (CompactBytes::new(m), s))
        .collect();
    match dst {
        Some(d) => store_result(ctx, d, &items),
        None => {
            let proto = ctx.client.proto;
            members_reply(&items, with_scores, proto)
        }
    }
}

fn zunion(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zsetop_generic(ctx, a, 1, None, SetOp::Union, false, "zunion")
}
fn zinter(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zsetop_generic(ctx, a, 1, None, SetOp::Inter, false, "zinter")
}
fn zdiff(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zsetop_generic(ctx, a, 1, None, SetOp::Diff, false, "zdiff")
}
fn zintercard(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    zsetop_generic(ctx, a, 1, None, SetOp::Inter, true, "zintercard")
}
fn zunionstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let dst = a[1].clone();
    zsetop_generic(ctx, a, 2, Some(&dst), SetOp::Union, false, "zunionstore")
}
fn zinterstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let dst = a[1].clone();
    zsetop_generic(ctx, a, 2, Some(&dst), SetOp::Inter, false, "zinterstore")
}
fn zdiffstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let dst = a[1].clone();
    zsetop_generic(ctx, a, 2, Some(&dst), SetOp::Diff, false, "zdiffstore")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_ranges_follow_redis() {
        assert_eq!(rank_range(0, -1, 3), Some((0, 3)));
        assert_eq!(rank_range(-2, -1, 3), Some((1, 3)));
        assert_eq!(rank_range(5, 10, 3), None);
        assert_eq!(rank_range(-10, 0, 3), Some((0, 1)));
        assert_eq!(rank_range(2, 1, 3), None);
    }
}
