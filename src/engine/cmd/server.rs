//! Connection and server commands: PING, ECHO, HELLO, AUTH, QUIT, RESET, MONITOR, INFO, TIME,
//! LASTSAVE, SLOWLOG, SHUTDOWN, and the table of the server commands whose families live beside
//! it (CLIENT in `client`, CONFIG in `config`, COMMAND in `command`, DEBUG in `debug`, MEMORY in
//! `memory`, LATENCY in `latency`). Pure (on the locked state).

use bytes::Bytes;

use super::args::{int_arg, is, lossy, not_int, syntax_error};
use super::client::validate_client_name;
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::client::{Pushed, ReplyMode};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "ping",
        -1,
        FAST | SUBSCRIBE_CONTEXT | STALE,
        (0, 0, 0),
        "connection",
        ping,
    ),
    CommandSpec::new("echo", 2, FAST, (0, 0, 0), "connection", echo),
    CommandSpec::new(
        "quit",
        -1,
        NO_AUTH | FAST | SUBSCRIBE_CONTEXT | NOT_QUEUED | SKIP_PAUSE | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        quit,
    ),
    CommandSpec::new(
        "hello",
        -1,
        NO_AUTH | FAST | STALE | LOADING | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        hello,
    ),
    CommandSpec::new(
        "auth",
        -2,
        NO_AUTH | FAST | STALE | LOADING | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        auth,
    ),
    // The engine is never in cluster mode: every CLUSTER subcommand answers as redis-server's
    // do without `cluster-enabled`.
    CommandSpec::new("cluster", -2, 0, (0, 0, 0), "cluster", container)
        .with_subcommands(CLUSTER_SUBCOMMANDS),
    CommandSpec::new(
        "readonly",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "cluster",
        ok,
    ),
    CommandSpec::new(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "cluster",
        ok,
    ),
    CommandSpec::new("time", 1, FAST | LOADING | STALE, (0, 0, 0), "server", time),
    CommandSpec::new("lolwut", -1, READONLY | FAST, (0, 0, 0), "server", lolwut),
    CommandSpec::new(
        "config",
        -2,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        "server",
        container,
    )
    .with_subcommands(super::config::CONFIG_SUBCOMMANDS),
    CommandSpec::new(
        "client",
        -2,
        NOSCRIPT | LOADING | STALE | SKIP_PAUSE,
        (0, 0, 0),
        "connection",
        container,
    )
    .with_subcommands(super::client::CLIENT_SUBCOMMANDS),
    CommandSpec::new(
        "command",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        super::command::command,
    )
    .with_subcommands(super::command::COMMAND_SUBCOMMANDS),
    CommandSpec::new(
        "info",
        -1,
        LOADING | STALE | SKIP_PAUSE,
        (0, 0, 0),
        "server",
        info,
    ),
    CommandSpec::new(
        "reset",
        1,
        NO_AUTH | NOSCRIPT | LOADING | STALE | FAST | SUBSCRIBE_CONTEXT | NOT_QUEUED | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        reset,
    ),
    CommandSpec::new(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI,
        (0, 0, 0),
        "server",
        monitor,
    ),
    CommandSpec::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        lastsave,
    ),
    CommandSpec::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        super::debug::debug,
    ),
    CommandSpec::new("memory", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(super::memory::MEMORY_SUBCOMMANDS),
    CommandSpec::new("slowlog", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(super::slowlog::SUBCOMMANDS),
    CommandSpec::new("latency", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(super::latency::LATENCY_SUBCOMMANDS),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SKIP_PAUSE | ALLOW_BUSY,
        (0, 0, 0),
        "server",
        shutdown,
    ),
];

/// Container commands never run themselves: `cmd::resolve` dispatches to a subcommand.
pub(super) fn container(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("ERR unknown subcommand")
}

/// CLUSTER's subcommands with Redis 7.0's arities and flags (only CLUSTER RESET is `noscript`);
/// every one answers as redis-server does without `cluster-enabled`.
const CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("addslots", -3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new(
        "addslotsrange",
        -4,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new("bumpepoch", 2, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new(
        "count-failure-reports",
        3,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new("countkeysinslot", 3, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("delslots", -3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new(
        "delslotsrange",
        -4,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new("failover", -2, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new(
        "flushslots",
        2,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new("forget", 3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("getkeysinslot", 4, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("info", 2, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("keyslot", 3, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("links", 2, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("meet", -4, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("myid", 2, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("nodes", 2, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("replicas", 3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("replicate", 3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new(
        "reset",
        -2,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new(
        "saveconfig",
        2,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new(
        "set-config-epoch",
        3,
        ADMIN | STALE,
        (0, 0, 0),
        "cluster",
        cluster,
    ),
    CommandSpec::new("setslot", -4, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("shards", 2, STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("slaves", 3, ADMIN | STALE, (0, 0, 0), "cluster", cluster),
    CommandSpec::new("slots", 2, STALE, (0, 0, 0), "cluster", cluster),
];

fn cluster(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("ERR This instance has cluster support disabled")
}

pub(super) fn ok(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Ok
}

fn ping(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 2 {
        return Reply::err_static("ERR wrong number of arguments for 'ping' command");
    }
    if ctx.client.in_subscribe_context() {
        // RESP2 subscribers get PING's reply in pub/sub message shape.
        return Reply::Array(vec![
            Reply::bulk(Bytes::from_static(b"pong")),
            a.get(1).map_or(Reply::Bulk(Bytes::new()), Reply::bulk_arg),
        ]);
    }
    match a.get(1) {
        Some(m) => Reply::bulk_arg(m),
        None => Reply::status("PONG"),
    }
}

fn echo(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::bulk_arg(&a[1])
}

fn quit(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    ctx.client.close_after_reply = true;
    Reply::Ok
}

fn time(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = ctx;
    Reply::Array(vec![
        Reply::bulk(Bytes::from(now.as_secs().to_string())),
        Reply::bulk(Bytes::from(now.subsec_micros().to_string())),
    ])
}

fn auth(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return syntax_error();
    }
    let (user, pass) = if a.len() == 3 {
        (Some(&a[1][..]), &a[2][..])
    } else {
        (None, &a[1][..])
    };
    // The one-argument form with a default user that needs no password is an error in Redis
    // (a misconfiguration is more likely than an intended no-op).
    if user.is_none() && ctx.state.acl.default_user().nopass {
        return Reply::err_static("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    match super::acl::authenticate(ctx, user, pass) {
        Ok(()) => Reply::Ok,
        Err(e) => e,
    }
}

fn hello(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut proto = ctx.client.proto;
    let mut i = 1;
    if a.len() >= 2 {
        match int_arg(&a[1]) {
            Ok(v) if v == 2 || v == 3 => proto = v as u8,
            Ok(_) => return Reply::err_static("NOPROTO unsupported protocol version"),
            Err(_) => {
                return Reply::err_static("ERR Protocol version is not an integer or out of range")
            }
        }
        i = 2;
    }
    let mut new_user = None;
    let mut new_name = None;
    while i < a.len() {
        if is(&a[i], "auth") && i + 2 < a.len() {
            new_user = Some((a[i + 1].clone(), a[i + 2].clone()));
            i += 3;
        } else if is(&a[i], "setname") && i + 1 < a.len() {
            if let Err(e) = validate_client_name(&a[i + 1]) {
                return e;
            }
            new_name = Some(a[i + 1].to_bytes());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                lossy(&a[i])
            ));
        }
    }
    if let Some((user, pass)) = new_user {
        if let Err(e) = super::acl::authenticate(ctx, Some(&user), &pass) {
            return e;
        }
    }
    if !ctx.client.is_authenticated() {
        return Reply::err_static(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    if let Some(n) = new_name {
        ctx.client.name = if n.is_empty() { None } else { Some(n) };
    }
    ctx.client.proto = proto;
    // A RESP3 client may receive push messages (tracking invalidations) on its connection.
    if proto >= 3 && ctx.client.push.is_some() {
        ctx.client.push_handed_out = true;
    }
    let role = if ctx.state.read_only {
        "replica"
    } else {
        "master"
    };
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (
            Reply::bulk_str("version"),
            Reply::bulk_str(crate::engine::REDIS_VERSION),
        ),
        (Reply::bulk_str("proto"), Reply::Int(proto as i64)),
        (Reply::bulk_str("id"), Reply::Int(ctx.client.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str(role)),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}

fn info(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let sections: Vec<String> = a[1..]
        .iter()
        .map(|s| lossy(s).to_ascii_lowercase())
        .collect();
    Reply::Verbatim(Bytes::from(crate::engine::info::render(ctx, &sections)))
}

/// LOLWUT [VERSION v]: Redis 7.0's own answer (its 7.x "art" is the version line). The
/// generative art Redis draws for VERSION 5 and 6 is not reproduced: the version line is
/// given for every version, after the same argument checks.
fn lolwut(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() >= 3 && is(&a[1], "version") && int_arg(&a[2]).is_err() {
        return not_int();
    }
    Reply::Verbatim(Bytes::from(format!(
        "Redis ver. {}\n",
        crate::engine::REDIS_VERSION
    )))
}

/// A HELP reply in Redis's shape: a title line, the given lines, then the HELP entry.
pub(super) fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(Bytes::from(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    for l in lines {
        out.push(Reply::Status(Bytes::copy_from_slice(l.as_bytes())));
    }
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

/// RESET: the connection goes back to its state right after connecting (Redis `resetCommand`).
fn reset(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let id = ctx.client.id;
    let c = &mut *ctx.client;
    c.multi = Default::default();
    let watched = std::mem::take(&mut c.watched);
    ctx.state.watches.unwatch_all(id, &watched);
    for ch in c.channels.drain() {
        remove_subscriber(&mut ctx.state.pubsub.channels, &ch, id);
    }
    for p in c.patterns.drain() {
        remove_subscriber(&mut ctx.state.pubsub.patterns, &p, id);
    }
    ctx.state.monitors.remove(&id);
    c.db = 0;
    c.proto = 2;
    c.name = None;
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.no_touch = false;
    // Back to the default user: authenticated only when it is on and needs no password.
    c.user = super::acl::fresh_user(ctx.state);
    c.admin = false;
    ctx.state.tracking.disable(id);
    Reply::status("RESET")
}

fn remove_subscriber(
    map: &mut std::collections::HashMap<
        Bytes,
        std::collections::HashMap<u64, crate::engine::client::PushSender>,
    >,
    name: &Bytes,
    id: u64,
) {
    if let Some(subs) = map.get_mut(name) {
        subs.remove(&id);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

/// MONITOR: from now on the client receives every command the server executes, as status
/// lines in Redis's format, through its push channel.
fn monitor(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if let Some(push) = ctx.client.push.clone() {
        ctx.client.push_handed_out = true;
        ctx.state.monitors.insert(ctx.client.id, push);
    }
    Reply::Ok
}

/// Push one executed command to every MONITOR client:
/// `+1339518083.107412 [0 127.0.0.1:60866] "set" "k" "v"` (`[0 lua]` inside scripts).
pub fn feed_monitors(ctx: &mut Ctx<'_>, args: &[Arg]) {
    use std::fmt::Write;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let origin = if ctx.in_script {
        "lua"
    } else {
        ctx.client.addr.as_str()
    };
    let mut line = format!(
        "{}.{:06} [{} {}]",
        now_us / 1_000_000,
        now_us % 1_000_000,
        ctx.client.db,
        origin
    );
    // Secrets as the slow log hides them (AUTH, HELLO AUTH, MIGRATE AUTH/AUTH2, ACL SETUSER
    // rules...): Redis redacts the same arguments in MONITOR's feed.
    let redacted = super::slowlog::redacted_positions(args);
    for (i, a) in args.iter().enumerate() {
        if redacted.contains(&i) {
            line.push_str(" \"(redacted)\"");
            continue;
        }
        line.push_str(" \"");
        for &b in a.iter() {
            match b {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                b if b.is_ascii_graphic() || b == b' ' => line.push(b as char),
                b => {
                    let _ = write!(line, "\\x{b:02x}");
                }
            }
        }
        line.push('"');
    }
    let msg = Reply::Status(Bytes::from(line));
    // MONITOR clients are of the `normal` class for client-output-buffer-limit (as in Redis).
    // A monitor whose connection is gone, or that broke the limit and is being disconnected,
    // is dropped here (its cleanup also removes it).
    let st = &mut *ctx.state;
    let limit = st.config.settings.output_limits.normal;
    let now = ctx.now_ms;
    st.monitors
        .retain(|_, tx| match tx.push(msg.clone(), limit, now) {
            Pushed::Queued => true,
            Pushed::LimitReached => {
                st.stats.client_output_buffer_limit_disconnections += 1;
                false
            }
            Pushed::Gone => false,
        });
}

fn lastsave(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(ctx.state.lastsave_secs)
}

// ---------------------------------------------------------------------------------------------
// SLOWLOG: cmd/slowlog.rs

// ---------------------------------------------------------------------------------------------
// SHUTDOWN

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. Graceful: the flag is seen by every connection
/// after its current batch (replies already computed are written), the accept loop stops and
/// the process exits 0. On success the caller gets no reply, like Redis.
fn shutdown(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for arg in &a[1..] {
        if is(arg, "save") {
            save = true;
        } else if is(arg, "nosave") {
            nosave = true;
        } else if is(arg, "abort") {
            abort = true;
        } else if is(arg, "now") || is(arg, "force") {
            // No replicas to wait for and no snapshot that could fail: nothing to skip.
        } else {
            return syntax_error();
        }
    }
    if (save && nosave) || (abort && a.len() > 2) {
        return syntax_error();
    }
    if abort {
        return Reply::err_static("ERR No shutdown in progress.");
    }
    tracing::info!("shutdown requested by client {}", ctx.client.id);
    ctx.state.shutdown_requested = true;
    Reply::NoReply
}
