//! SORT and SORT_RO: sort a list, set or sorted set numerically or by bytes, optionally by
//! weights looked up in other keys (`BY weight_*`, `BY h_*->field`), with LIMIT, GET patterns
//! (`#` for the element) and STORE. Pure (on the locked state).
//!
//! Redis 7.0.15's semantics, quirks included: ties on the score compare the elements' bytes
//! (so the order is total); a missing weight is 0 (numeric) or sorts first (ALPHA); `BY` with
//! a pattern without `*` skips sorting, except for a set, whose iteration order is not
//! deterministic, which STORE sorts by bytes (as redis-server does for STORE and scripts);
//! a sorted set is returned in its own order when not sorted. SORT ... STORE is propagated as
//! its effect (DEL + RPUSH), never as the command, so replicas and replay store exactly what
//! the master stored whatever their iteration order.

use std::cmp::Ordering;

use super::args::{is, parse_f64, parse_i64_strict, syntax_error, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::list::{End, ListValue};
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM, (1, 1, 1), "generic", sort).with_keys(sort_keys),
    CommandSpec::new("sort_ro", -2, READONLY, (1, 1, 1), "generic", sort_ro)
        .with_keys(sort_ro_keys),
];

/// Key positions of SORT_RO: the source only, but its BY/GET patterns read other keys, so
/// Redis flags it `movablekeys` like SORT (clients must ask COMMAND GETKEYS).
fn sort_ro_keys(_a: &[Arg]) -> Vec<usize> {
    vec![1]
}

/// Key positions of SORT: the source, and the STORE destination when given.
/// Redis's `sortGetKeys`: the sorted key and the last STORE's destination (SORT itself stores
/// into the last one). As there, the word after STORE is read as an option too.
fn sort_keys(a: &[Arg]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "limit") {
            i += 2;
        } else if is(&a[i], "by") || is(&a[i], "get") {
            i += 1;
        } else if is(&a[i], "store") && i + 1 < a.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

fn sort(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    run(ctx, a, true)
}

fn sort_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    run(ctx, a, false)
}

/// The parsed options.
struct Options {
    by: Option<Vec<u8>>,
    /// `BY` named a pattern without `*`: do not sort.
    dont_sort: bool,
    limit: Option<(i64, i64)>,
    get: Vec<Vec<u8>>,
    desc: bool,
    alpha: bool,
    store: Option<Arg>,
}

/// Whether the client's user may read every key with this SORT: BY and GET patterns name keys
/// that cannot be checked one by one, so Redis allows them only then.
fn full_key_read(ctx: &Ctx<'_>, a: &[Arg]) -> bool {
    let Some(spec) = super::lookup(&a[0]) else {
        return true;
    };
    ctx.state
        .acl
        .user(ctx.client.user.name())
        .is_none_or(|u| u.can_read_all_keys(spec, a))
}

fn parse(a: &[Arg], store_allowed: bool, full_key_read: bool) -> Result<Options, Reply> {
    let mut o = Options {
        by: None,
        dont_sort: false,
        limit: None,
        get: Vec::new(),
        desc: false,
        alpha: false,
        store: None,
    };
    let mut i = 2;
    while i < a.len() {
        let left = a.len() - i - 1;
        if is(&a[i], "asc") {
            o.desc = false;
        } else if is(&a[i], "desc") {
            o.desc = true;
        } else if is(&a[i], "alpha") {
            o.alpha = true;
        } else if is(&a[i], "limit") && left >= 2 {
            let (Some(off), Some(count)) =
                (parse_i64_strict(&a[i + 1]), parse_i64_strict(&a[i + 2]))
            else {
                return Err(Reply::err_static(
                    "ERR value is not an integer or out of range",
                ));
            };
            o.limit = Some((off, count));
            i += 2;
        } else if is(&a[i], "store") && left >= 1 && store_allowed {
            o.store = Some(a[i + 1].clone());
            i += 1;
        } else if is(&a[i], "by") && left >= 1 {
            let pattern = a[i + 1].to_vec();
            o.dont_sort = !pattern.contains(&b'*');
            if !o.dont_sort && !full_key_read {
                return Err(Reply::err_static(
                    "ERR BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.by = Some(pattern);
            i += 1;
        } else if is(&a[i], "get") && left >= 1 {
            if !full_key_read {
                return Err(Reply::err_static(
                    "ERR GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.get.push(a[i + 1].to_vec());
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    Ok(o)
}

/// The value a pattern names for `element` (Redis's `lookupKeyByPattern`): `#` is the element
/// itself; otherwise the first `*` is replaced by the element and the key read as a string,
/// or, with `->field` after the `*`, the field of a hash. None: no such key, field or `*`, or
/// the wrong type.
fn lookup(ctx: &mut Ctx<'_>, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    // A field only when `->` comes after the `*` and names something.
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| p + star + 1)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let now = ctx.now_ms;
    let entry = ctx.db().get(&key, now)?;
    match (arrow, &entry.value) {
        (None, Value::Str(s)) => Some(s.to_vec()),
        (Some(p), Value::Hash(h)) => h.get(&pattern[p + 2..]).map(|v| v.to_vec()),
        _ => None,
    }
}

/// A weight as SORT reads it: C's `strtod` over the whole string, so leading whitespace is
/// skipped, the empty string is 0 (no digits and nothing left over), and an overflow or NaN is
/// an error (Redis's `sortCommandGeneric`).
fn sort_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let v = parse_f64(&s[start..])?;
    let literal_infinity = s[start..].iter().any(|b| b.eq_ignore_ascii_case(&b'i'));
    (v.is_finite() || literal_infinity).then_some(v)
}

/// One element being sorted, with its weight.
struct Item {
    element: CompactBytes,
    score: f64,
    /// ALPHA with BY: the weight's bytes (None: missing, sorts first).
    by_bytes: Option<Vec<u8>>,
}

fn run(ctx: &mut Ctx<'_>, a: &[Arg], store_allowed: bool) -> Reply {
    let o = match parse(a, store_allowed, full_key_read(ctx, a)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    // The source, in its own order.
    let (elements, is_list, is_set, is_zset): (Vec<CompactBytes>, bool, bool, bool) =
        match ctx.db().get(&a[1], now).map(|e| &e.value) {
            None => (Vec::new(), false, false, false),
            Some(Value::List(l)) => (l.items.iter().cloned().collect(), true, false, false),
            Some(Value::Set(s)) => (s.ordered(), false, true, false),
            Some(Value::ZSet(z)) => (
                z.iter().map(|(m, _)| CompactBytes::new(m)).collect(),
                false,
                false,
                true,
            ),
            Some(_) => return wrongtype(),
        };
    let mut dont_sort = o.dont_sort;
    let mut alpha = o.alpha;
    let mut by = if dont_sort { None } else { o.by.clone() };
    // A set's iteration order is not deterministic: what is stored, or what a script sees
    // (its effects must replay the same), must not depend on it, so it is sorted by its
    // elements' bytes instead (Redis: "alpha, no BY" for STORE and for scripts).
    if dont_sort && is_set && (o.store.is_some() || ctx.in_script) {
        dont_sort = false;
        alpha = true;
        by = None;
    }
    let mut items = Vec::with_capacity(elements.len());
    for element in elements {
        let mut item = Item {
            element,
            score: 0.0,
            by_bytes: None,
        };
        if !dont_sort {
            let weight = match &by {
                Some(pattern) => lookup(ctx, pattern, &item.element),
                None => Some(item.element.to_vec()),
            };
            if alpha {
                if by.is_some() {
                    item.by_bytes = weight;
                }
            } else if let Some(w) = weight {
                match sort_score(&w) {
                    Some(v) => item.score = v,
                    None => {
                        return Reply::err_static(
                            "ERR One or more scores can't be converted into double",
                        )
                    }
                }
            }
        }
        items.push(item);
    }
    let len = items.len() as i64;
    let (start, count) = match o.limit {
        Some((off, count)) => {
            let start = off.clamp(0, len);
            let count = if count < 0 { len } else { count };
            (start, count.min(len - start))
        }
        None => (0, len),
    };
    if !dont_sort {
        items.sort_by(|x, y| {
            let c = if alpha {
                match (&by, &x.by_bytes, &y.by_bytes) {
                    (Some(_), None, None) => Ordering::Equal,
                    (Some(_), None, Some(_)) => Ordering::Less,
                    (Some(_), Some(_), None) => Ordering::Greater,
                    (Some(_), Some(a), Some(b)) => a.cmp(b),
                    (None, ..) => x.element[..].cmp(&y.element[..]),
                }
            } else {
                x.score
                    .partial_cmp(&y.score)
                    .unwrap_or(Ordering::Equal)
                    // Equal scores: the elements' bytes, so the order is total.
                    .then_with(|| x.element[..].cmp(&y.element[..]))
            };
            if o.desc {
                c.reverse()
            } else {
                c
            }
        });
    } else if (is_zset || is_list) && o.desc {
        // Not sorted, but DESC still reverses a list's or a sorted set's own order (as Redis
        // does).
        items.reverse();
    }
    let chosen = &items[start as usize..(start + count.max(0)) as usize];
    // The result: the elements, or the GET patterns' values for each.
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for item in chosen {
        if o.get.is_empty() {
            out.push(Some(item.element.to_vec()));
        } else {
            for pattern in &o.get {
                out.push(lookup(ctx, pattern, &item.element));
            }
        }
    }
    let Some(dst) = o.store else {
        return Reply::Array(
            out.into_iter()
                .map(|v| match v {
                    Some(v) => Reply::bulk(v),
                    None => Reply::Nil,
                })
                .collect(),
        );
    };
    let stored = out.len() as i64;
    let existed = ctx.db().remove(&dst).is_some();
    let mut propagate = vec![Arg::from_static(b"DEL"), dst.clone()];
    if out.is_empty() {
        if existed {
            ctx.modified(&dst);
            ctx.propagate_as(propagate);
        } else {
            ctx.propagate_nothing();
        }
        return Reply::Int(0);
    }
    let mut list = ListValue::default();
    let mut rpush = vec![Arg::from_static(b"RPUSH"), dst.clone()];
    for v in out {
        // A missing GET value is stored as an empty string, as Redis does.
        let v = v.unwrap_or_default();
        list.push(End::Right, &v);
        rpush.push(Arg::from(v));
    }
    ctx.db().set(&dst, Value::List(Box::new(list)));
    ctx.modified(&dst);
    // A client blocked on the destination (BLPOP) is served by the stored list, as in Redis.
    ctx.signal_ready(&dst);
    // Propagated as its effect (see the module comment): DEL then RPUSH, in one go.
    propagate.truncate(2);
    ctx.propagate_as(propagate);
    ctx.propagate_as(rpush);
    Reply::Int(stored)
}
