//! HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST, on string values in
//! Redis's exact HLL format (see storage::hyperloglog). Pure (on the locked state).

use bytes::Bytes;

use super::args::{is, wrongtype};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::hyperloglog as hll;
use crate::engine::storage::{CompactBytes, Value};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hyperloglog",
        pfadd,
    ),
    CommandSpec::new(
        "pfcount",
        -2,
        READONLY | MAY_REPLICATE,
        (1, -1, 1),
        "hyperloglog",
        pfcount,
    ),
    CommandSpec::new(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        "hyperloglog",
        pfmerge,
    ),
    CommandSpec::new(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        (2, 2, 1),
        "hyperloglog",
        pfdebug,
    ),
    CommandSpec::new("pfselftest", 1, ADMIN, (0, 0, 0), "hyperloglog", pfselftest),
];

const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// How a key is looked up: `Read` counts a keyspace hit or miss, as Redis's `lookupKeyRead`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Read,
    Write,
}

/// The HyperLogLog at `key`: Ok(None) if missing, WRONGTYPE for other types or for strings
/// that are not HLLs.
fn read_hll(ctx: &mut Ctx<'_>, key: &[u8], lookup: Lookup) -> Result<Option<Vec<u8>>, Reply> {
    let now = ctx.now_ms;
    if lookup == Lookup::Read {
        let hit = ctx.db().contains(key, now);
        if hit {
            ctx.state.stats.keyspace_hits += 1;
        } else {
            ctx.state.stats.keyspace_misses += 1;
        }
    }
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) if hll::is_valid(s) => Ok(Some(s.to_vec())),
            Value::Str(_) => Err(Reply::err_static(ERR_NOT_HLL)),
            _ => Err(wrongtype()),
        },
    }
}

fn sparse_max_bytes(ctx: &Ctx<'_>) -> usize {
    ctx.state
        .config
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// Store an updated HLL, keeping the key's TTL (Redis modifies the string in place).
fn store(ctx: &mut Ctx<'_>, key: &[u8], s: Vec<u8>) {
    ctx.db()
        .set_keep_ttl(key, Value::Str(CompactBytes::from(s)));
    ctx.modified(key);
}

fn pfadd(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let key = &a[1];
    let now = ctx.now_ms;
    let max = sparse_max_bytes(ctx);
    // Validate first, then update the stored string in place (a dense HLL is 12 KB).
    let mut updated = match ctx.db().get(key, now) {
        None => true,
        Some(e) => match &e.value {
            Value::Str(s) if hll::is_valid(s) => false,
            Value::Str(_) => return Reply::err_static(ERR_NOT_HLL),
            _ => return wrongtype(),
        },
    };
    if updated {
        ctx.db()
            .set(key, Value::Str(CompactBytes::from(hll::new_sparse())));
    }
    let Some(Value::Str(stored)) = ctx.db().get_mut(key, now).map(|e| &mut e.value) else {
        return wrongtype();
    };
    let s = stored.as_mut_vec();
    for element in &a[2..] {
        match hll::add(s, element, max) {
            Ok(changed) => updated |= changed,
            // Like Redis, registers already raised stay raised.
            Err(hll::Corrupt) => return Reply::err_static(ERR_CORRUPT),
        }
    }
    if !updated {
        return Reply::Int(0);
    }
    hll::invalidate_cache(s);
    ctx.modified(key);
    Reply::Int(1)
}

fn pfcount(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 2 {
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &a[1..] {
            match read_hll(ctx, key, Lookup::Read) {
                Ok(Some(s)) => {
                    if hll::merge_into(&mut max, &s).is_err() {
                        return Reply::err_static(ERR_CORRUPT);
                    }
                }
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        return Reply::Int(hll::count_registers(&max) as i64);
    }
    let key = &a[1];
    let mut s = match read_hll(ctx, key, Lookup::Read) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    if let Some(card) = hll::cached_cardinality(&s) {
        return Reply::Int(card as i64);
    }
    let card = match hll::count(&s) {
        Ok(c) => c,
        Err(hll::Corrupt) => return Reply::err_static(ERR_CORRUPT),
    };
    // Caching the estimate changes the string, so (as in Redis) it counts as a write and is
    // propagated: replicas keep byte-identical values.
    hll::set_cached_cardinality(&mut s, card);
    store(ctx, key, s);
    ctx.propagate_as(a.to_vec());
    Reply::Int(card as i64)
}

fn pfmerge(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    // The destination is one of the sources, as in Redis.
    for key in &a[1..] {
        match read_hll(ctx, key, Lookup::Read) {
            Ok(Some(s)) => {
                use_dense |= s.get(4) == Some(&0);
                if hll::merge_into(&mut max, &s).is_err() {
                    return Reply::err_static(ERR_CORRUPT);
                }
            }
            Ok(None) => {}
            Err(e) => return e,
        }
    }
    let dest = &a[1];
    let mut s = match read_hll(ctx, dest, Lookup::Write) {
        Ok(Some(s)) => s,
        Ok(None) => hll::new_sparse(),
        Err(e) => return e,
    };
    if use_dense && hll::to_dense(&mut s).is_err() {
        return Reply::err_static(ERR_CORRUPT);
    }
    let sparse_max = sparse_max_bytes(ctx);
    for (index, &value) in max.iter().enumerate() {
        if value != 0 && hll::raise_register(&mut s, index, value, sparse_max).is_err() {
            return Reply::err_static(ERR_CORRUPT);
        }
    }
    hll::invalidate_cache(&mut s);
    store(ctx, dest, s);
    Reply::Ok
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's introspection, used by its test suite.
/// GETREG and TODENSE convert a sparse HLL to dense, which is a change that propagates.
fn pfdebug(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let sub = &a[1];
    let key = &a[2];
    let mut s = match read_hll(ctx, key, Lookup::Write) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::err_static("ERR The specified key does not exist"),
        Err(e) => return e,
    };
    let getreg = is(sub, "getreg");
    if getreg || is(sub, "todense") {
        let converted = hll::is_sparse(&s);
        if converted {
            if hll::to_dense(&mut s).is_err() {
                return Reply::err_static(ERR_CORRUPT);
            }
            store(ctx, key, s.clone());
        }
        if getreg {
            let regs = hll::dense_registers(&s);
            return Reply::Array(regs.into_iter().map(|r| Reply::Int(r as i64)).collect());
        }
        return Reply::Int(converted as i64);
    }
    if is(sub, "decode") {
        if !hll::is_sparse(&s) {
            return Reply::err_static("ERR HLL encoding is not sparse");
        }
        return Reply::Bulk(Bytes::from(hll::describe_sparse(&s)));
    }
    if is(sub, "encoding") {
        return Reply::status(if hll::is_sparse(&s) {
            "sparse"
        } else {
            "dense"
        });
    }
    Reply::error(format!(
        "ERR Unknown PFDEBUG subcommand '{}'",
        String::from_utf8_lossy(sub)
    ))
}

fn pfselftest(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    match hll::self_test() {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}
