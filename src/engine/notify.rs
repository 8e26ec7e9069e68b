//! Keyspace notifications (`notify-keyspace-events`, Redis's notify.c): the event classes, their
//! text form, each command's event name, and publishing to `__keyspace@<db>__:<key>` and
//! `__keyevent@<db>__:<event>`. Pure (works on the locked state; delivery is pushing to the
//! subscribers' in-memory queues).
//!
//! Zero cost when the setting is empty: every caller checks `settings.notify_flags` (one load
//! and compare) before anything is built.

use bytes::Bytes;

use crate::engine::cmd::CommandSpec;
use crate::engine::protocol::arg::Arg;
use crate::engine::state::EngineState;

// The classes and their text form are a leaf module so the configuration can parse the
// setting without depending on the command layer.
pub use crate::engine::events::*;

/// The class of a command group (COMMAND DOCS's group).
fn class_of_group(group: &str) -> u32 {
    match group {
        "string" | "bitmap" | "hyperloglog" => STRING,
        "list" => LIST,
        "set" => SET,
        "hash" => HASH,
        "sorted-set" | "geo" => ZSET,
        "stream" => STREAM,
        _ => GENERIC,
    }
}

/// The event a write command sends for its keys, as Redis names it (the command's name but
/// for the renames below; a container's subcommand is `parent-sub`, e.g. `xgroup-create`).
pub fn event_of(spec: &CommandSpec, parent: Option<&CommandSpec>) -> (u32, String) {
    let top = parent.unwrap_or(spec);
    let class = class_of_group(top.group);
    if let Some(p) = parent {
        return (class, format!("{}-{}", p.name, spec.name));
    }
    let name = match spec.name {
        "hmset" | "hsetnx" => "hset",
        "incr" => "incrby",
        "decr" => "decrby",
        "setnx" | "getset" | "mset" | "msetnx" | "setex" | "psetex" | "bitop" => "set",
        "expire" | "pexpire" | "expireat" | "pexpireat" => return (GENERIC, "expire".into()),
        // MIGRATE sends `del` for the keys it moved away (not for those it copied).
        "unlink" | "getdel" | "migrate" => return (GENERIC, "del".into()),
        "lpushx" => "lpush",
        "rpushx" => "rpush",
        "zincrby" => "zincr",
        "blpop" => "lpop",
        "brpop" => "rpop",
        "bzpopmin" => "zpopmin",
        "bzpopmax" => "zpopmax",
        "sort" => return (LIST, "sortstore".into()),
        "copy" => return (GENERIC, "copy_to".into()),
        other => other,
    };
    (class, name.to_string())
}

/// The event of the `i`-th key of a command that treats its keys differently (a move between
/// two keys, the destination of a STORE command); `(class, event)` for the others. None: the
/// key gets no event (a STORE command's sources).
fn key_event(
    spec: &CommandSpec,
    parent: Option<&CommandSpec>,
    args: &[Arg],
    i: usize,
    class: u32,
    event: &str,
) -> Option<(u32, String)> {
    if parent.is_some() {
        return Some((class, event.to_string()));
    }
    let side = |pos: usize| {
        args.get(pos)
            .map(|a| {
                if a.eq_ignore_ascii_case(b"left") {
                    "l"
                } else {
                    "r"
                }
            })
            .unwrap_or("r")
    };
    let pair = |from: &str, to: &str| {
        let e = if i == 0 { from } else { to };
        Some((class, e.to_string()))
    };
    match spec.name {
        "rpoplpush" | "brpoplpush" => pair("rpop", "lpush"),
        "lmove" | "blmove" => pair(&format!("{}pop", side(3)), &format!("{}push", side(4))),
        "smove" => pair("srem", "sadd"),
        // GETEX sends `expire` or `persist`, never an event of its own.
        "getex" => {
            let persist = args
                .iter()
                .skip(2)
                .any(|a| a.eq_ignore_ascii_case(b"persist"));
            Some((
                GENERIC,
                if persist { "persist" } else { "expire" }.to_string(),
            ))
        }
        "pfmerge" => (i == 0).then(|| (class, "pfadd".to_string())),
        // SORT ... STORE and COPY: the destination (their keys: the source, the destination).
        "sort" | "copy" => (i > 0).then(|| (class, event.to_string())),
        "sunionstore" | "sinterstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore" | "bitop" | "geosearchstore" => {
            (i == 0).then(|| (class, event.to_string()))
        }
        _ => Some((class, event.to_string())),
    }
}

/// Whether a write command also sets a deadline (Redis sends `expire` after its event).
pub fn also_expires(spec: &CommandSpec, args: &[Arg]) -> bool {
    match spec.name {
        "setex" | "psetex" => true,
        "set" => args.iter().skip(3).any(|a| {
            [&b"ex"[..], b"px", b"exat", b"pxat"]
                .iter()
                .any(|w| a.eq_ignore_ascii_case(w))
        }),
        _ => false,
    }
}

/// Publish `event` on `key` of database `db` if its class is enabled.
pub fn notify(
    state: &mut EngineState,
    now_ms: i64,
    class: u32,
    event: &str,
    key: &[u8],
    db: usize,
) {
    let flags = state.config.settings.notify_flags;
    if flags & class == 0 {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{db}__:").into_bytes();
        ch.extend_from_slice(key);
        crate::engine::cmd::pubsub::deliver_to(
            state,
            now_ms,
            &Bytes::from(ch),
            &Bytes::copy_from_slice(event.as_bytes()),
            false,
        );
    }
    if flags & KEYEVENT != 0 {
        let ch = format!("__keyevent@{db}__:{event}");
        crate::engine::cmd::pubsub::deliver_to(
            state,
            now_ms,
            &Bytes::from(ch),
            &Bytes::copy_from_slice(key),
            false,
        );
    }
}

/// The keys of a write command about to run, each with whether it exists now (for `new`, and
/// `del` when a command empties a key). Built only when notifications are on.
pub fn keys_before(
    state: &EngineState,
    db: usize,
    spec: &CommandSpec,
    args: &[Arg],
    now_ms: i64,
) -> Vec<(Bytes, bool)> {
    let Some(d) = state.dbs.get(db) else {
        return Vec::new();
    };
    if let Some((group, consumer)) = group_consumer(spec, args) {
        // XREADGROUP / XCLAIM / XAUTOCLAIM: "existed" is whether the consumer did.
        return spec
            .key_positions(args)
            .into_iter()
            .filter_map(|i| args.get(i))
            .map(|k| {
                let had = crate::engine::cmd::streams::consumer_exists(d, k, group, consumer);
                (k.to_bytes(), had)
            })
            .collect();
    }
    spec.key_positions(args)
        .into_iter()
        .filter_map(|i| args.get(i))
        .map(|k| (k.to_bytes(), exists(d, k, now_ms)))
        .collect()
}

/// The group and consumer of the stream commands that create consumers on the way.
fn group_consumer<'a>(spec: &CommandSpec, args: &'a [Arg]) -> Option<(&'a [u8], &'a [u8])> {
    match spec.name {
        "xreadgroup" => Some((args.get(2)?, args.get(3)?)),
        "xclaim" | "xautoclaim" => Some((args.get(2)?, args.get(3)?)),
        _ => None,
    }
}

fn exists(d: &crate::engine::storage::Db, key: &[u8], now_ms: i64) -> bool {
    d.peek(key).is_some_and(|e| !d.is_due(e.expire_at, now_ms))
}

/// Send the events of a write command that changed the dataset: its own event for each key
/// (DEL only for keys that existed), `new` before it for a key it created, `expire` after it
/// when it also set a deadline, `del` when it emptied a key (RPOP of the last element).
pub fn after_write(
    state: &mut EngineState,
    db: usize,
    spec: &CommandSpec,
    parent: Option<&CommandSpec>,
    args: &[Arg],
    keys: &[(Bytes, bool)],
    now_ms: i64,
) {
    if let Some((group, consumer)) = group_consumer(spec, args) {
        // They send no event of their own, only `xgroup-createconsumer` for a new consumer.
        for (key, had) in keys {
            let has = state.dbs.get(db).is_some_and(|d| {
                crate::engine::cmd::streams::consumer_exists(d, key, group, consumer)
            });
            if has && !had {
                notify(state, now_ms, STREAM, "xgroup-createconsumer", key, db);
            }
        }
        return;
    }
    let (class, event) = event_of(spec, parent);
    let expires = also_expires(spec, args);
    let renames = parent.is_none() && matches!(spec.name, "rename" | "renamenx");
    for (i, (key, existed)) in keys.iter().enumerate() {
        let now_exists = state.dbs.get(db).is_some_and(|d| exists(d, key, now_ms));
        if renames {
            let ev = if i == 0 { "rename_from" } else { "rename_to" };
            notify(state, now_ms, GENERIC, ev, key, db);
            continue;
        }
        let Some((class, event)) = key_event(spec, parent, args, i, class, &event) else {
            continue;
        };
        if event == "del" && (!existed || now_exists) {
            continue;
        }
        if !existed && now_exists {
            notify(state, now_ms, NEW, "new", key, db);
        }
        notify(state, now_ms, class, &event, key, db);
        if expires && now_exists {
            notify(state, now_ms, GENERIC, "expire", key, db);
        }
        if *existed && !now_exists && event != "del" {
            notify(state, now_ms, GENERIC, "del", key, db);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_as_redis_writes_them() {
        for (given, shown) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("Exn", "xnE"),
        ] {
            assert_eq!(to_text(parse(given).unwrap()), shown, "{given}");
        }
        assert_eq!(parse("Kq"), None);
        assert_eq!(parse("A").unwrap() & (NEW | KEY_MISS), 0);
    }
}
