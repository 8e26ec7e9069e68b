//! MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE and HELP. Pure (on the locked state).

use bytes::Bytes;

use super::args::{is, syntax_error};
use super::flags::*;
use super::server::help_reply;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub(super) const MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("usage", -3, READONLY, (2, 2, 1), "server", memory_usage),
    CommandSpec::new("stats", 2, 0, (0, 0, 0), "server", memory_stats),
    CommandSpec::new("doctor", 2, 0, (0, 0, 0), "server", memory_doctor),
    CommandSpec::new(
        "malloc-stats",
        2,
        0,
        (0, 0, 0),
        "server",
        memory_malloc_stats,
    ),
    CommandSpec::new("purge", 2, 0, (0, 0, 0), "server", super::server::ok),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "server", memory_help),
];

fn memory_usage(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    // SAMPLES is accepted for compatibility: the estimate walks the whole value.
    let mut i = 3;
    while i < a.len() {
        if is(&a[i], "samples") && i + 1 < a.len() {
            match super::args::parse_i64_strict(&a[i + 1]) {
                Some(n) if n >= 0 => {}
                Some(_) => return syntax_error(),
                None => return super::args::not_int(),
            }
            i += 2;
        } else {
            return syntax_error();
        }
    }
    let now = ctx.now_ms;
    let db = ctx.client.db;
    match ctx.state.dbs[db].peek(&a[2]) {
        Some(e) if e.expire_at == 0 || e.expire_at > now => {
            // Key bytes, the entry (value slot, expiry, access clock) and the value.
            Reply::Int((a[2].len() + 40 + e.value.memory_estimate()) as i64)
        }
        _ => Reply::Nil,
    }
}

fn memory_stats(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let used = crate::engine::memory::used_memory() as i64;
    let peak = crate::engine::memory::peak_memory() as i64;
    let keys: usize = ctx.state.dbs.iter().map(|d| d.len()).sum();
    let mut fields: Vec<(Reply, Reply)> = vec![
        (Reply::bulk_str("peak.allocated"), Reply::Int(peak)),
        (Reply::bulk_str("total.allocated"), Reply::Int(used)),
        (Reply::bulk_str("startup.allocated"), Reply::Int(0)),
        (Reply::bulk_str("replication.backlog"), Reply::Int(0)),
        (Reply::bulk_str("clients.slaves"), Reply::Int(0)),
        (Reply::bulk_str("clients.normal"), Reply::Int(0)),
        (Reply::bulk_str("cluster.links"), Reply::Int(0)),
        (Reply::bulk_str("aof.buffer"), Reply::Int(0)),
        (Reply::bulk_str("lua.caches"), Reply::Int(0)),
        (Reply::bulk_str("functions.caches"), Reply::Int(0)),
    ];
    for (i, db) in ctx.state.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        fields.push((
            Reply::bulk(Bytes::from(format!("db.{i}"))),
            Reply::Map(vec![
                (
                    Reply::bulk_str("overhead.hashtable.main"),
                    Reply::Int(db.len() as i64 * 40),
                ),
                (
                    Reply::bulk_str("overhead.hashtable.expires"),
                    Reply::Int(db.volatile_len() as i64 * 32),
                ),
            ]),
        ));
    }
    fields.extend([
        (Reply::bulk_str("overhead.total"), Reply::Int(0)),
        (Reply::bulk_str("keys.count"), Reply::Int(keys as i64)),
        (
            Reply::bulk_str("keys.bytes-per-key"),
            Reply::Int(if keys > 0 { used / keys as i64 } else { 0 }),
        ),
        (Reply::bulk_str("dataset.bytes"), Reply::Int(used)),
        (Reply::bulk_str("dataset.percentage"), Reply::Double(100.0)),
        (
            Reply::bulk_str("peak.percentage"),
            Reply::Double(if peak > 0 {
                used as f64 * 100.0 / peak as f64
            } else {
                100.0
            }),
        ),
        (Reply::bulk_str("fragmentation"), Reply::Double(1.0)),
    ]);
    Reply::Map(fields)
}

fn memory_doctor(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let keys: usize = ctx.state.dbs.iter().map(|d| d.len()).sum();
    let text = if keys == 0 {
        "This instance is empty or uses very little memory: there is nothing to diagnose."
    } else {
        "No memory problems detected: memory is counted by the allocator and has no fragmentation reported."
    };
    Reply::Verbatim(Bytes::from_static(text.as_bytes()))
}

fn memory_malloc_stats(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Verbatim(Bytes::from(format!(
        "Stats not supported for the current allocator (libc with counting); used_memory={}\n",
        crate::engine::memory::used_memory()
    )))
}

fn memory_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value.",
        ],
    )
}
