//! DEBUG and its subcommands, and the dataset digest (DEBUG DIGEST, DIGEST-VALUE). Pure (on
//! the locked state).

use bytes::Bytes;

use super::args::{is, lossy};
use super::server::help_reply;
use super::Ctx;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::Value;

pub(super) fn debug(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Some(reply) = super::debug_protocol::debug_extra(ctx, a) {
        return reply;
    }
    let sub = &a[1];
    if is(sub, "help") {
        return help_reply(
            "DEBUG",
            &[
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. Values are value:<num>, cut or",
                "    padded with zero bytes to <size>. Unlike Redis, the keys are written to",
                "    the log and the replicas (as SETs).",
                "JMAP",
                "    Accepted for compatibility; does nothing.",
                "LOADAOF",
                "    Reload the dataset from the data directory (last snapshot and log) without saving first.",
                "RELOAD",
                "    Save a snapshot and reload the dataset from the data directory.",
            ],
        );
    }
    if is(sub, "sleep") && a.len() == 3 {
        let secs = match super::args::parse_f64(&a[2]) {
            Some(s) if s.is_finite() => s.max(0.0),
            _ => return Reply::err_static("ERR value is not a valid float"),
        };
        // DEBUG SLEEP stops the whole server on purpose (tests use it to simulate a busy
        // server): sleeping under the state lock does exactly that.
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
        return Reply::Ok;
    }
    if is(sub, "digest") && a.len() == 2 {
        let mut total = [0u8; 20];
        for (i, db) in ctx.state.dbs.iter().enumerate() {
            for (key, entry) in db.iter() {
                if entry.expire_at != 0 && entry.expire_at <= ctx.now_ms {
                    continue;
                }
                xor_into(&mut total, &key_digest(i, key.as_slice(), entry));
            }
        }
        return Reply::Status(Bytes::from(hex(&total)));
    }
    if is(sub, "digest-value") {
        let now = ctx.now_ms;
        let db = ctx.client.db;
        let out = a[2..]
            .iter()
            .map(|k| {
                let d = match ctx.state.dbs[db].peek(k) {
                    Some(e) if e.expire_at == 0 || e.expire_at > now => value_digest(&e.value),
                    _ => [0u8; 20],
                };
                Reply::Status(Bytes::from(hex(&d)))
            })
            .collect();
        return Reply::Array(out);
    }
    // DEBUG PAUSE-CRON 1|0: the periodic task stops expiring keys and trimming the tracking
    // table (Redis's test hook; the suite uses it to hold the table over its limit).
    if is(sub, "pause-cron") && a.len() == 3 {
        return match super::args::parse_i64_strict(&a[2]) {
            Some(v) => {
                ctx.state.cron_paused = v != 0;
                Reply::Ok
            }
            None => super::args::not_int(),
        };
    }
    if is(sub, "set-active-expire") && a.len() == 3 {
        return match super::args::parse_i64_strict(&a[2]) {
            Some(v) => {
                ctx.state.active_expire_enabled = v != 0;
                Reply::Ok
            }
            None => super::args::not_int(),
        };
    }
    if is(sub, "object") && a.len() == 3 {
        let db = ctx.client.db;
        // Redis looks the key up in the dictionary itself: a key whose time ran out but that
        // nothing expired yet (active expiry off) is still shown.
        return match ctx.state.dbs[db].peek(&a[2]) {
            Some(e) => {
                let encoding = match &e.value {
                    Value::Str(s) => crate::engine::storage::value::string_encoding(s.as_slice()),
                    Value::List(_) => "quicklist",
                    Value::Hash(_) => "hashtable",
                    Value::Set(_) => "hashtable",
                    Value::ZSet(_) => "skiplist",
                    Value::Stream(_) => "stream",
                };
                Reply::Status(Bytes::from(format!(
                    "Value at:0x0 refcount:1 encoding:{encoding} serializedlength:{} lru:0 lru_seconds_idle:0",
                    e.value.memory_estimate()
                )))
            }
            _ => Reply::err_static("ERR no such key"),
        };
    }
    if is(sub, "jmap") && a.len() == 2 {
        return Reply::Ok;
    }
    if is(sub, "reload") {
        let mut opts = crate::engine::state::dump::ReloadOptions::default();
        for opt in &a[2..] {
            if is(opt, "merge") {
                opts.merge = true;
            } else if is(opt, "noflush") {
                opts.flush = false;
            } else if is(opt, "nosave") {
                opts.save = false;
            } else {
                return Reply::err_static(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                );
            }
        }
        // Reloading re-applies data already in the log: nothing to propagate.
        ctx.propagate_nothing();
        // Redis's reply; why is in the log, as Redis has it.
        let failed = |e: &dyn std::fmt::Display| {
            tracing::warn!("DEBUG RELOAD failed: {e}");
            Reply::err_static("ERR Error trying to load the RDB dump, check server logs.")
        };
        if !ctx.state.persist.enabled {
            // RDB mode: save `dir/dbfilename` and load it back, as redis-server does.
            return match crate::engine::state::dump::debug_reload(ctx.state, ctx.now_ms, opts) {
                Ok(()) => Reply::Ok,
                Err(e) => failed(&e),
            };
        }
        // With persistence on, the data directory holds what memory holds: loading it without
        // emptying memory first finds every library and key already there, which only MERGE
        // allows (Redis fails on the first library it already has).
        if !opts.flush
            && !opts.merge
            && (!ctx.state.scripting.libraries.is_empty()
                || ctx.state.dbs.iter().any(|db| !db.is_empty()))
        {
            if opts.save {
                if let Err(e) = crate::engine::state::snapshot::save_inline(ctx.state, ctx.now_ms) {
                    return failed(&e);
                }
            }
            return failed(&"NOFLUSH without MERGE: the dataset to load is already in memory");
        }
        return match crate::engine::state::snapshot::debug_reload(ctx.state, ctx.now_ms, opts.save)
        {
            Ok(()) => Reply::Ok,
            Err(e) => failed(&e),
        };
    }
    if is(sub, "populate") && (3..=5).contains(&a.len()) {
        return populate(ctx, a);
    }
    if is(sub, "loadaof") && a.len() == 2 {
        if !ctx.state.persist.enabled {
            return Reply::err_static(
                "ERR persistence is off (start the engine with --persistence on)",
            );
        }
        ctx.propagate_nothing();
        return match crate::engine::state::snapshot::debug_loadaof(ctx.state, ctx.now_ms) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::error(format!("ERR Error trying to load the AOF: {e}")),
        };
    }
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        lossy(sub)
    ))
}

/// DEBUG POPULATE count [prefix] [size]: `prefix:N` = `value:N` for N in 0..count, skipping keys
/// that exist; with `size` each value is `value:N` cut or padded with zero bytes to `size`
/// bytes (Redis's layout, so tests and benchmarks written for redis-server fill the engine the
/// same way).
///
/// Unlike Redis, whose DEBUG POPULATE neither propagates nor logs its keys (an AOF or a replica
/// silently lacks them), every key is propagated as a SET: here the log is the dataset, and a
/// key the log does not hold would vanish at the next restart and be missing on the replica
/// after a failover. So it is also checked as a write first (READONLY on a replica, MISCONF on
/// a full disk, OOM, the write lease).
fn populate(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    // Redis's getPositiveLongFromObjectOrReply: one message for a negative and a non-number.
    let positive = |arg: &Arg| match super::args::parse_i64_strict(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Reply::err_static(
            "ERR value is out of range, must be positive",
        )),
    };
    let count = match positive(&a[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let size = match a.get(4).map(positive) {
        None => 0,
        Some(Ok(n)) => n as usize,
        Some(Err(e)) => return e,
    };
    let Some(set) = super::lookup(b"set") else {
        return Reply::err_static("ERR SET is not in the command table");
    };
    if let Some(refused) = super::precheck(ctx.state, ctx.client, set, set) {
        return refused;
    }
    let prefix = a.get(3).map_or(&b"key"[..], |p| p.as_ref()).to_vec();
    let now = ctx.now_ms;
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut digits = itoa::Buffer::new();
    for j in 0..count {
        key.clear();
        key.extend_from_slice(&prefix);
        key.push(b':');
        key.extend_from_slice(digits.format(j).as_bytes());
        if ctx.db().contains(&key, now) {
            continue;
        }
        let mut value = b"value:".to_vec();
        value.extend_from_slice(digits.format(j).as_bytes());
        if size > 0 {
            value.resize(size, 0);
        }
        ctx.db().set(&key, Value::str(&value));
        ctx.modified(&key);
        ctx.propagate_as(vec![
            Arg::from_static(b"SET"),
            Arg::from(key.clone()),
            Arg::from(value),
        ]);
    }
    // When no key was created, DEBUG itself must not be propagated either (a no-op when SETs
    // were queued above).
    ctx.propagate_nothing();
    Reply::Ok
}

fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn xor_into(acc: &mut [u8; 20], d: &[u8; 20]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

/// SHA-1 of length-prefixed parts (the prefix makes ("ab","c") and ("a","bc") differ).
fn sha1_parts(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.digest().bytes()
}

/// The digest of one key: database, name, type, value and expiry. The dataset digest XORs these,
/// so it does not depend on the order keys were inserted or are stored in.
fn key_digest(db: usize, key: &[u8], entry: &crate::engine::storage::db::Entry) -> [u8; 20] {
    let v = value_digest(&entry.value);
    sha1_parts(&[
        &(db as u64).to_le_bytes(),
        key,
        &v,
        &entry.expire_at.to_le_bytes(),
    ])
}

/// The digest of a value: ordered for strings and lists, order-independent (XOR of member
/// digests) for hashes, sets and sorted sets, whose internal order is not part of their content.
pub fn value_digest(v: &Value) -> [u8; 20] {
    match v {
        Value::Str(s) => sha1_parts(&[b"string", s.as_slice()]),
        Value::List(l) => {
            let mut h = sha1_smol::Sha1::new();
            h.update(b"list");
            for item in l.items.iter() {
                h.update(&(item.as_slice().len() as u64).to_le_bytes());
                h.update(item.as_slice());
            }
            h.digest().bytes()
        }
        Value::Hash(hv) => {
            let mut acc = [0u8; 20];
            for (f, val) in hv.iter() {
                xor_into(&mut acc, &sha1_parts(&[f, val]));
            }
            sha1_parts(&[b"hash", &acc])
        }
        Value::Set(sv) => {
            let mut acc = [0u8; 20];
            for m in sv.iter() {
                xor_into(&mut acc, &sha1_parts(&[m.as_slice()]));
            }
            sha1_parts(&[b"set", &acc])
        }
        Value::ZSet(z) => {
            let mut acc = [0u8; 20];
            for (m, score) in z.iter() {
                let s = crate::engine::protocol::reply::format_double(score);
                xor_into(&mut acc, &sha1_parts(&[m, s.as_bytes()]));
            }
            sha1_parts(&[b"zset", &acc])
        }
        Value::Stream(st) => stream_digest(st),
    }
}

/// A stream's digest covers, in order, its entries, its counters and its groups (last ID, read
/// counter, PEL with owners, consumers): what DUMP/RESTORE, replication and recovery must carry
/// over. Delivery times, counts and seen times are left out: reading a consumer's history bumps
/// its delivery counts on the master only (Redis propagates nothing for it either).
fn stream_digest(st: &crate::engine::storage::stream::StreamValue) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(b"stream");
    let put = |h: &mut sha1_smol::Sha1, b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for (id, fv) in &st.entries {
        put(&mut h, id.to_string().as_bytes());
        for f in fv.iter() {
            put(&mut h, f.as_slice());
        }
    }
    let meta = format!(
        "{} {} {} {}",
        st.last_id, st.entries_added, st.max_deleted_id, st.first_id
    );
    put(&mut h, meta.as_bytes());
    for (name, g) in &st.groups {
        put(&mut h, name.as_slice());
        put(
            &mut h,
            format!("{} {}", g.last_id, g.entries_read).as_bytes(),
        );
        for (id, n) in &g.pel {
            put(&mut h, id.to_string().as_bytes());
            put(&mut h, n.consumer.as_slice());
        }
        for (cname, c) in &g.consumers {
            put(&mut h, cname.as_slice());
            put(&mut h, &(c.pel.len() as u64).to_le_bytes());
        }
    }
    h.digest().bytes()
}
