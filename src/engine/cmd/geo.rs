//! GEO commands: GEOADD, GEOPOS, GEODIST, GEOHASH, GEORADIUS, GEORADIUSBYMEMBER (and their
//! `_RO` forms), GEOSEARCH and GEOSEARCHSTORE, on sorted sets whose scores are 52-bit geohashes
//! (`geohash`), with Redis 7.0's argument rules, error texts and reply formats. Pure (on the
//! locked state).
//!
//! A GEO set is an ordinary sorted set (TYPE says zset; ZRANGE, ZREM... work on it), so GEOADD
//! is ZADD with computed scores and is propagated as that ZADD. A search scans the score ranges
//! of the nine geohash boxes around the centre, keeps the points inside the shape, then sorts
//! by distance when asked (or when COUNT is given without ANY).

use super::args::{self, int_arg, is, syntax_error, wrongtype};
use super::flags::*;
use super::geohash::{self, Shape, ShapeKind};
use super::zsets::{self, ZaddFlags};
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::zset::ZSetValue;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), "geo", geoadd),
    CommandSpec::new("geodist", -4, READONLY, (1, 1, 1), "geo", geodist),
    CommandSpec::new("geohash", -2, READONLY, (1, 1, 1), "geo", geohash_cmd),
    CommandSpec::new("geopos", -2, READONLY, (1, 1, 1), "geo", geopos),
    CommandSpec::new(
        "georadius",
        -6,
        WRITE | DENYOOM,
        (1, 1, 1),
        "geo",
        georadius,
    )
    .with_keys(georadius_keys),
    CommandSpec::new("georadius_ro", -6, READONLY, (1, 1, 1), "geo", georadius_ro),
    CommandSpec::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        (1, 1, 1),
        "geo",
        georadiusbymember,
    )
    .with_keys(georadiusbymember_keys),
    CommandSpec::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        (1, 1, 1),
        "geo",
        georadiusbymember_ro,
    ),
    CommandSpec::new("geosearch", -7, READONLY, (1, 1, 1), "geo", geosearch),
    CommandSpec::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        (1, 2, 1),
        "geo",
        geosearchstore,
    ),
];

/// Keys of GEORADIUS: the source, and the targets of STORE and STOREDIST (Redis's key specs
/// find the first of each keyword from the options on).
fn store_option_keys(a: &[Arg], first_option: usize) -> Vec<usize> {
    let mut keys = vec![1];
    for word in ["store", "storedist"] {
        if let Some(i) = (first_option..a.len().saturating_sub(1)).find(|&i| is(&a[i], word)) {
            keys.push(i + 1);
        }
    }
    keys
}
fn georadius_keys(a: &[Arg]) -> Vec<usize> {
    store_option_keys(a, 6)
}
fn georadiusbymember_keys(a: &[Arg]) -> Vec<usize> {
    store_option_keys(a, 5)
}

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

/// `extractLongLatOrReply`: a longitude and a latitude inside the Mercator limits.
fn long_lat_arg(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], Reply> {
    let x = args::float_arg(lon)?;
    let y = args::float_arg(lat)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(Reply::error(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok([x, y])
}

/// Metres per unit (`extractUnitOrReply`).
fn unit_arg(unit: &[u8]) -> Result<f64, Reply> {
    if is(unit, "m") {
        Ok(1.0)
    } else if is(unit, "km") {
        Ok(1000.0)
    } else if is(unit, "ft") {
        Ok(0.3048)
    } else if is(unit, "mi") {
        Ok(1609.34)
    } else {
        Err(Reply::err_static(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `radius unit` → (radius, metres per unit).
fn distance_arg(radius: &[u8], unit: &[u8]) -> Result<(f64, f64), Reply> {
    let r = args::parse_f64(radius).ok_or_else(|| Reply::err_static("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(Reply::err_static("ERR radius cannot be negative"));
    }
    Ok((r, unit_arg(unit)?))
}

/// `width height unit` → (width, height, metres per unit).
fn box_arg(width: &[u8], height: &[u8], unit: &[u8]) -> Result<(f64, f64, f64), Reply> {
    let w = args::parse_f64(width).ok_or_else(|| Reply::err_static("ERR need numeric width"))?;
    let h = args::parse_f64(height).ok_or_else(|| Reply::err_static("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(Reply::err_static("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit_arg(unit)?))
}

/// A distance as Redis replies with it: fixed point with 4 decimals (`fixedpoint_d2string`,
/// which rounds with `llrint`: half to even).
fn distance_reply(d: f64) -> Reply {
    let v = (d * 10000.0).round_ties_even() as i64;
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    Reply::bulk(format!("{sign}{}.{:04}", a / 10000, a % 10000))
}

/// A coordinate as Redis replies with it (`addReplyHumanLongDouble`): `%.17Lf` with trailing
/// zeros removed; a bulk string in RESP2, a double in RESP3.
fn coordinate_reply(d: f64, proto: u8) -> Reply {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    if proto >= 3 {
        Reply::Raw(format!(",{s}\r\n").into())
    } else {
        Reply::bulk(s)
    }
}

fn coordinates_reply(xy: [f64; 2], proto: u8) -> Reply {
    Reply::Array(vec![
        coordinate_reply(xy[0], proto),
        coordinate_reply(xy[1], proto),
    ])
}

// ---------------------------------------------------------------------------------------------
// GEOADD, GEOPOS, GEODIST, GEOHASH

fn geoadd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut f = ZaddFlags::default();
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "nx") {
            f.nx = true;
        } else if is(&a[i], "xx") {
            f.xx = true;
        } else if is(&a[i], "ch") {
            f.ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || rest.len() % 3 != 0 || (f.xx && f.nx) {
        return syntax_error();
    }
    let mut scores = Vec::with_capacity(rest.len() / 3);
    for t in rest.chunks(3) {
        let xy = match long_lat_arg(&t[0], &t[1]) {
            Ok(xy) => xy,
            Err(e) => return e,
        };
        let Some(score) = geohash::encode_score(xy[0], xy[1]) else {
            return Reply::error(format!(
                "ERR invalid longitude,latitude pair {:.6},{:.6}",
                xy[0], xy[1]
            ));
        };
        scores.push(score);
    }
    let pairs: Vec<(f64, &Arg)> = scores
        .iter()
        .zip(rest.chunks(3))
        .map(|(s, t)| (*s as f64, &t[2]))
        .collect();
    let dirty_before = ctx.state.dirty;
    let reply = zsets::zadd_generic(ctx, &a[1], &pairs, &f);
    // Redis runs GEOADD as the ZADD it builds, so that ZADD is what the log and replicas get.
    if ctx.state.dirty != dirty_before {
        let mut zadd = Vec::with_capacity(i + pairs.len() * 2);
        zadd.push(Arg::from_static(b"ZADD"));
        zadd.extend(a[1..i].iter().cloned());
        for (score, member) in &pairs {
            zadd.push(Arg::copy_from_slice((*score as u64).to_string().as_bytes()));
            zadd.push((*member).clone());
        }
        ctx.propagate_as(zadd);
    }
    reply
}

fn geopos(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let proto = ctx.client.proto;
    let z = match read_zset(ctx, &a[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        a[2..]
            .iter()
            .map(
                |m| match z.and_then(|z| z.score(m)).and_then(geohash::decode_score) {
                    Some(xy) => coordinates_reply(xy, proto),
                    None => Reply::NilArray,
                },
            )
            .collect(),
    )
}

fn geodist(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let to_meter = match a.len() {
        4 => 1.0,
        5 => match unit_arg(&a[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        _ => return syntax_error(),
    };
    let z = match read_zset(ctx, &a[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let (Some(s1), Some(s2)) = (z.score(&a[2]), z.score(&a[3])) else {
        return Reply::Nil;
    };
    match (geohash::decode_score(s1), geohash::decode_score(s2)) {
        (Some(p), Some(q)) => distance_reply(geohash::distance(p[0], p[1], q[0], q[1]) / to_meter),
        _ => Reply::Nil,
    }
}

fn geohash_cmd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let z = match read_zset(ctx, &a[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        a[2..]
            .iter()
            .map(|m| {
                match z
                    .and_then(|z| z.score(m))
                    .and_then(geohash::standard_geohash)
                {
                    Some(h) => Reply::bulk_copy(&h),
                    None => Reply::Nil,
                }
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Searches

/// How a search command was called (Redis's `RADIUS_*` / `GEOSEARCH*` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SearchKind {
    /// GEORADIUS: centre from longitude latitude.
    RadiusCoords { store: bool },
    /// GEORADIUSBYMEMBER: centre from a member.
    RadiusMember { store: bool },
    /// GEOSEARCH / GEOSEARCHSTORE (FROMMEMBER|FROMLONLAT, BYRADIUS|BYBOX).
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One point found by a search.
struct GeoPoint {
    xy: [f64; 2],
    dist: f64,
    score: f64,
    member: CompactBytes,
}

fn georadius(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::RadiusCoords { store: true })
}
fn georadius_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::RadiusCoords { store: false })
}
fn georadiusbymember(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::RadiusMember { store: true })
}
fn georadiusbymember_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::RadiusMember { store: false })
}
fn geosearch(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::Search { store: false })
}
fn geosearchstore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    search_generic(ctx, a, SearchKind::Search { store: true })
}

/// `georadiusGeneric`: argument parsing in Redis's order (so the same error wins), the search,
/// then the reply or the stored result.
fn search_generic(ctx: &mut Ctx<'_>, a: &[Arg], kind: SearchKind) -> Reply {
    let src_index = if kind == (SearchKind::Search { store: true }) {
        2
    } else {
        1
    };
    let proto = ctx.client.proto;
    let z = match read_zset(ctx, &a[src_index]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let mut xy = [0.0, 0.0];
    let mut shape_kind = None;
    let mut conversion = 1.0;
    let mut storekey: Option<&Arg> = None;
    let mut storedist = false;
    let base_args;
    match kind {
        SearchKind::RadiusCoords { .. } => {
            base_args = 6;
            xy = match long_lat_arg(&a[2], &a[3]) {
                Ok(xy) => xy,
                Err(e) => return e,
            };
            let (r, c) = match distance_arg(&a[4], &a[5]) {
                Ok(x) => x,
                Err(e) => return e,
            };
            shape_kind = Some(ShapeKind::Circle { radius: r });
            conversion = c;
        }
        SearchKind::RadiusMember { .. } => {
            base_args = 5;
            // Without the source key the arguments are still parsed, to pick the reply.
            if let Some(z) = z {
                match z.score(&a[2]).and_then(geohash::decode_score) {
                    Some(p) => xy = p,
                    None => return Reply::err_static("ERR could not decode requested zset member"),
                }
                let (r, c) = match distance_arg(&a[3], &a[4]) {
                    Ok(x) => x,
                    Err(e) => return e,
                };
                shape_kind = Some(ShapeKind::Circle { radius: r });
                conversion = c;
            }
        }
        SearchKind::Search { store } => {
            base_args = if store { 3 } else { 2 };
            if store {
                storekey = Some(&a[1]);
            }
        }
    }
    let is_search = matches!(kind, SearchKind::Search { .. });
    let may_store = match kind {
        SearchKind::RadiusCoords { store } | SearchKind::RadiusMember { store } => store,
        SearchKind::Search { .. } => false,
    };
    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let opts = a.get(base_args..).unwrap_or(&[]);
    let remaining = opts.len();
    let mut i = 0;
    while i < remaining {
        let arg = &opts[i];
        if is(arg, "withdist") {
            withdist = true;
        } else if is(arg, "withhash") {
            withhash = true;
        } else if is(arg, "withcoord") {
            withcoords = true;
        } else if is(arg, "any") {
            any = true;
        } else if is(arg, "asc") {
            sort = Sort::Asc;
        } else if is(arg, "desc") {
            sort = Sort::Desc;
        } else if is(arg, "count") && i + 1 < remaining {
            count = match int_arg(&opts[i + 1]) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if count <= 0 {
                return Reply::err_static("ERR COUNT must be > 0");
            }
            i += 1;
        } else if (is(arg, "store") || is(arg, "storedist")) && i + 1 < remaining && may_store {
            storekey = Some(&opts[i + 1]);
            storedist = is(arg, "storedist");
            i += 1;
        } else if is(arg, "storedist") && kind == (SearchKind::Search { store: true }) {
            storedist = true;
        } else if is(arg, "frommember") && i + 1 < remaining && is_search && !fromloc {
            if let Some(z) = z {
                match z.score(&opts[i + 1]).and_then(geohash::decode_score) {
                    Some(p) => xy = p,
                    None => return Reply::err_static("ERR could not decode requested zset member"),
                }
            }
            frommember = true;
            i += 1;
        } else if is(arg, "fromlonlat") && i + 2 < remaining && is_search && !frommember {
            xy = match long_lat_arg(&opts[i + 1], &opts[i + 2]) {
                Ok(xy) => xy,
                Err(e) => return e,
            };
            fromloc = true;
            i += 2;
        } else if is(arg, "byradius") && i + 2 < remaining && is_search && !bybox {
            let (r, c) = match distance_arg(&opts[i + 1], &opts[i + 2]) {
                Ok(x) => x,
                Err(e) => return e,
            };
            shape_kind = Some(ShapeKind::Circle { radius: r });
            conversion = c;
            byradius = true;
            i += 2;
        } else if is(arg, "bybox") && i + 3 < remaining && is_search && !byradius {
            let (w, h, c) = match box_arg(&opts[i + 1], &opts[i + 2], &opts[i + 3]) {
                Ok(x) => x,
                Err(e) => return e,
            };
            shape_kind = Some(ShapeKind::Rectangle {
                width: w,
                height: h,
            });
            conversion = c;
            bybox = true;
            i += 3;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoords) {
        return Reply::error(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == (SearchKind::Search { store: true }) {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = || String::from_utf8_lossy(&a[0]).into_owned();
    if is_search && !(frommember || fromloc) {
        return Reply::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        ));
    }
    if is_search && !(byradius || bybox) {
        return Reply::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        ));
    }
    if any && count == 0 {
        return Reply::err_static("ERR the ANY argument requires COUNT argument");
    }
    let (Some(z), Some(shape_kind)) = (z, shape_kind) else {
        // No source key: an empty result, or an emptied destination.
        return match storekey {
            Some(dst) => {
                let dst = dst.clone();
                zsets::store_result(ctx, &dst, &[])
            }
            None => Reply::Array(Vec::new()),
        };
    };
    // The closest COUNT need a sort; ANY takes the first COUNT found.
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape {
        xy,
        conversion,
        kind: shape_kind,
    };
    let limit = if any { count as usize } else { 0 };
    let mut found = points_in_shape(z, &shape, limit);
    if found.is_empty() && storekey.is_none() {
        return Reply::Array(Vec::new());
    }
    let returned = if count == 0 {
        found.len()
    } else {
        found.len().min(count as usize)
    };
    // A stable sort: equal distances keep the order they were found in (glibc's qsort is a
    // merge sort). With COUNT, Redis sorts partially (pqsort): ties at the cut may differ.
    match sort {
        Sort::Asc => found.sort_by(|p, q| p.dist.total_cmp(&q.dist)),
        Sort::Desc => found.sort_by(|p, q| q.dist.total_cmp(&p.dist)),
        Sort::None => {}
    }
    found.truncate(returned);
    for p in &mut found {
        p.dist /= conversion;
    }
    if let Some(dst) = storekey {
        let dst = dst.clone();
        let items: Vec<(CompactBytes, f64)> = found
            .into_iter()
            .map(|p| (p.member, if storedist { p.dist } else { p.score }))
            .collect();
        return zsets::store_result(ctx, &dst, &items);
    }
    let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoords);
    Reply::Array(
        found
            .into_iter()
            .map(|p| {
                let member = Reply::bulk_copy(&p.member);
                if options == 0 {
                    return member;
                }
                let mut item = Vec::with_capacity(options + 1);
                item.push(member);
                if withdist {
                    item.push(distance_reply(p.dist));
                }
                if withhash {
                    item.push(Reply::Int(p.score as i64));
                }
                if withcoords {
                    item.push(coordinates_reply(p.xy, proto));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

/// Every member inside `shape`, scanning the boxes `geohash::areas_by_shape` picks, in Redis's
/// order; stops once `limit` (non-zero: ANY) points were found.
fn points_in_shape(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<GeoPoint> {
    let boxes = geohash::areas_by_shape(shape);
    let mut out = Vec::new();
    let full = |out: &Vec<GeoPoint>| limit != 0 && out.len() >= limit;
    let mut last_processed: Option<usize> = None;
    for (i, b) in boxes.iter().enumerate() {
        if b.is_zero() {
            continue;
        }
        // With a huge radius neighbouring boxes can be the same box: skip a repeat of the last
        // one scanned (only the last, as Redis does).
        if last_processed.is_some_and(|l| boxes[l] == *b) {
            continue;
        }
        if full(&out) {
            break;
        }
        let (min, max) = geohash::box_scores(*b);
        // Members with min <= score < max, in score order.
        let mut rank = z.count_before(|s, _| s < min);
        while let Some((member, score)) = z.by_rank(rank) {
            if score >= max {
                break;
            }
            if let Some(xy) = geohash::decode_score(score) {
                if let Some(dist) = geohash::within_shape(shape, xy) {
                    out.push(GeoPoint {
                        xy,
                        dist,
                        score,
                        member: CompactBytes::new(member),
                    });
                }
            }
            if full(&out) {
                break;
            }
            rank += 1;
        }
        last_processed = Some(i);
    }
    out
}
