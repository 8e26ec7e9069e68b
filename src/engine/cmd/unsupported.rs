//! Commands of Redis 7.0 for features the engine deliberately does not have, answered with an
//! error that says so instead of "unknown command": MODULE (no module API; MODULE LIST is an
//! empty list, which is what clients probing for RedisJSON or RediSearch ask), FAILOVER (a
//! pair's failovers belong to its operator) and ASKING (no cluster mode). Pure.
//!
//! Why answer at all: COMMAND LIST then matches redis-server's, and a client or tool that
//! probes with MODULE LIST at connect (RedisInsight, redis-om, several drivers) gets the answer
//! of a Redis without modules rather than an error it may treat as fatal. The decisions are
//! recorded in docs/compatibility.md, "Commands answered without the feature".

use bytes::Bytes;

use super::args::lossy;
use super::flags::*;
use super::server::container;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "module",
        -2,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        "server",
        container,
    )
    .with_subcommands(&[
        CommandSpec::new(
            "list",
            2,
            ADMIN | NOSCRIPT,
            (0, 0, 0),
            "server",
            module_list,
        ),
        CommandSpec::new(
            "load",
            -3,
            ADMIN | NOSCRIPT,
            (0, 0, 0),
            "server",
            module_load,
        ),
        CommandSpec::new(
            "loadex",
            -3,
            ADMIN | NOSCRIPT,
            (0, 0, 0),
            "server",
            module_load,
        ),
        CommandSpec::new(
            "unload",
            3,
            ADMIN | NOSCRIPT,
            (0, 0, 0),
            "server",
            module_unload,
        ),
        CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "server", module_help),
    ]),
    CommandSpec::new(
        "failover",
        -1,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        failover,
    ),
    CommandSpec::new("asking", 1, FAST, (0, 0, 0), "cluster", asking),
];

fn module_list(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(Vec::new())
}

fn module_load(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::Error(Bytes::from(format!(
        "ERR Error loading the extension '{}': redispair-engine has no module API (modules are C libraries built against redis-server's internals)",
        lossy(&a[2])
    )))
}

fn module_unload(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    // Redis's reply for a name that is not loaded; nothing ever is here.
    Reply::err_static("ERR Error unloading module: no such module with that name")
}

fn module_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    super::server::help_reply(
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    )
}

/// Redis's FAILOVER coordinates a switch with one of its replicas by itself. In a RedisPair the
/// operator owns every role change (it fences, promotes under a new term and moves the
/// Services); a switch made behind its back would be undone or, worse, race it.
fn failover(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static(
        "ERR FAILOVER is not supported: a RedisPair's role changes are made by its operator (kubectl redispair switchover); a standalone engine changes roles with REPLICAOF",
    )
}

fn asking(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    // redis-server's answer without cluster-enabled.
    Reply::err_static("ERR This instance has cluster support disabled")
}
