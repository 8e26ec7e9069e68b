//! Connection and server commands: PING, ECHO, HELLO, AUTH, QUIT, RESET, CLIENT, CONFIG,
//! COMMAND, INFO, TIME, SHUTDOWN. Pure (on the locked state).

use bytes::Bytes;

use super::args::{int_arg, is, lossy, syntax_error};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::client::{ClientInfo, Pushed, ReplyMode};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::Value;

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
    CommandSpec::new(
        "config",
        -2,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        "server",
        container,
    )
    .with_subcommands(CONFIG_SUBCOMMANDS),
    CommandSpec::new(
        "client",
        -2,
        NOSCRIPT | LOADING | STALE | SKIP_PAUSE,
        (0, 0, 0),
        "connection",
        container,
    )
    .with_subcommands(CLIENT_SUBCOMMANDS),
    CommandSpec::new("command", -1, LOADING | STALE, (0, 0, 0), "server", command)
        .with_subcommands(COMMAND_SUBCOMMANDS),
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
        debug,
    ),
    CommandSpec::new("memory", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(MEMORY_SUBCOMMANDS),
    CommandSpec::new("slowlog", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(super::slowlog::SUBCOMMANDS),
    CommandSpec::new("latency", -2, 0, (0, 0, 0), "server", container)
        .with_subcommands(LATENCY_SUBCOMMANDS),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SKIP_PAUSE | ALLOW_BUSY,
        (0, 0, 0),
        "server",
        shutdown,
    ),
];

const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config_get,
    ),
    CommandSpec::new(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config_set,
    ),
    CommandSpec::new(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config_resetstat,
    ),
    CommandSpec::new(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config_rewrite,
    ),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "server", config_help),
];

const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "id",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_id,
    ),
    CommandSpec::new(
        "setname",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_setname,
    ),
    CommandSpec::new(
        "getname",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_getname,
    ),
    CommandSpec::new(
        "setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_setinfo,
    ),
    CommandSpec::new(
        "reply",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_reply,
    ),
    CommandSpec::new(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_list,
    ),
    CommandSpec::new(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_info,
    ),
    CommandSpec::new(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_kill,
    ),
    CommandSpec::new(
        "no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_no_evict,
    ),
    CommandSpec::new(
        "no-touch",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_no_touch,
    ),
    CommandSpec::new(
        "pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_pause,
    ),
    CommandSpec::new(
        "unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_unpause,
    ),
    CommandSpec::new(
        "tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_tracking,
    ),
    CommandSpec::new(
        "getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_getredir,
    ),
    CommandSpec::new(
        "unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_unblock,
    ),
    CommandSpec::new(
        "caching",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_caching,
    ),
    CommandSpec::new(
        "trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_trackinginfo,
    ),
    CommandSpec::new(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "connection",
        client_help,
    ),
];

const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "count",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_count,
    ),
    CommandSpec::new(
        "docs",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_docs,
    ),
    CommandSpec::new(
        "info",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_info_cmd,
    ),
    CommandSpec::new(
        "list",
        -2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_list,
    ),
    CommandSpec::new(
        "getkeys",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_getkeys,
    ),
    CommandSpec::new(
        "getkeysandflags",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_getkeysandflags,
    ),
    CommandSpec::new(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command_help,
    ),
];

const MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
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
    CommandSpec::new("purge", 2, 0, (0, 0, 0), "server", ok),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "server", memory_help),
];

const LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "latest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_latest,
    ),
    CommandSpec::new(
        "history",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_history,
    ),
    CommandSpec::new(
        "reset",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_reset,
    ),
    CommandSpec::new(
        "graph",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_graph,
    ),
    CommandSpec::new(
        "histogram",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_histogram,
    ),
    CommandSpec::new(
        "doctor",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_doctor,
    ),
    CommandSpec::new(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_help,
    ),
];

/// Container commands never run themselves: `cmd::resolve` dispatches to a subcommand.
fn container(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("ERR unknown subcommand")
}

fn ok(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
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

fn validate_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| c <= b' ' || c > b'~') {
        return Err(Reply::err_static(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_id(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(ctx.client.id as i64)
}

fn client_setname(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Err(e) = validate_client_name(&a[2]) {
        return e;
    }
    ctx.client.name = if a[2].is_empty() {
        None
    } else {
        Some(a[2].to_bytes())
    };
    Reply::Ok
}

fn client_getname(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    match &ctx.client.name {
        Some(n) => Reply::Bulk(n.clone()),
        None => Reply::Nil,
    }
}

fn client_setinfo(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let value = &a[3];
    if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Reply::error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            lossy(&a[2]).to_ascii_lowercase()
        ));
    }
    let v = if value.is_empty() {
        None
    } else {
        Some(value.to_bytes())
    };
    if is(&a[2], "lib-name") {
        ctx.client.lib_name = v;
    } else if is(&a[2], "lib-ver") {
        ctx.client.lib_ver = v;
    } else {
        return Reply::error(format!("ERR Unrecognized option '{}'", lossy(&a[2])));
    }
    Reply::Ok
}

fn client_reply(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if is(&a[2], "on") {
        ctx.client.reply_mode = ReplyMode::On;
        Reply::Ok
    } else if is(&a[2], "off") {
        ctx.client.reply_mode = ReplyMode::Off;
        Reply::NoReply
    } else if is(&a[2], "skip") {
        ctx.client.reply_mode = ReplyMode::SkipNext;
        Reply::NoReply
    } else {
        syntax_error()
    }
}

/// Settings only the admin user may read or change when there is one: the admin's own
/// credentials. A client knowing the default user's password must not learn (CONFIG GET
/// admin-password) or replace the operator's, which would let it promote, demote or fence.
const ADMIN_ONLY_SETTINGS: &[&str] = &["admin-user", "admin-password", "admin-password-file"];

fn admin_only_for(ctx: &Ctx<'_>, name: &str) -> bool {
    ctx.state.config.settings.admin_user.is_some()
        && !ctx.client.admin
        && ADMIN_ONLY_SETTINGS.contains(&name.to_ascii_lowercase().as_str())
}

fn config_get(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let patterns: Vec<&[u8]> = a[2..].iter().map(|p| &p[..]).collect();
    let mut pairs = ctx.state.config.get_matching(&patterns);
    pairs.retain(|(name, _)| !admin_only_for(ctx, name));
    Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk(Bytes::from(k)), Reply::bulk(Bytes::from(v))))
            .collect(),
    )
}

fn config_set(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if (a.len() - 2) % 2 != 0 {
        return Reply::err_static("ERR wrong number of arguments for 'config|set' command");
    }
    let pairs: Vec<(String, String)> = a[2..]
        .chunks(2)
        .map(|p| (lossy(&p[0]), lossy(&p[1])))
        .collect();
    if let Some((name, _)) = pairs.iter().find(|(n, _)| admin_only_for(ctx, n)) {
        return Reply::error(format!("NOPERM only the admin user may set '{name}'"));
    }
    match ctx.state.config.set_many(&pairs) {
        Ok(()) => {
            let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
            super::acl::config_changed(ctx.state, &names);
            // A lower maxmemory evicts at once, as Redis does (not at the next write).
            if pairs
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("maxmemory"))
            {
                crate::engine::eviction::free_memory_if_needed(ctx.state);
            }
            Reply::Ok
        }
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

fn command(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(super::all_commands().map(command_info).collect())
}

/// The COMMAND / COMMAND INFO entry of one command (Redis 7 shape).
pub fn command_info(c: &CommandSpec) -> Reply {
    let mut flag_names: Vec<Reply> = super::flags::NAMES
        .iter()
        .filter(|(bit, _)| c.flags & bit != 0)
        .map(|(_, n)| Reply::Status(Bytes::from_static(n.as_bytes())))
        .collect();
    // Key positions computed from the arguments: clients (cluster routing) must ask GETKEYS.
    if c.keys.is_some() {
        flag_names.push(Reply::status("movablekeys"));
    }
    let categories = crate::engine::acl::categories_of_spec(c)
        .into_iter()
        .map(|cat| Reply::Status(Bytes::from(format!("@{cat}"))))
        .collect();
    Reply::Array(vec![
        Reply::bulk_str(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(flag_names),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.key_step as i64),
        Reply::Set(categories),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(
            c.subcommands
                .iter()
                .map(|s| {
                    let mut r = command_info(s);
                    if let Reply::Array(items) = &mut r {
                        items[0] = Reply::bulk(Bytes::from(format!("{}|{}", c.name, s.name)));
                    }
                    r
                })
                .collect(),
        ),
    ])
}

fn command_count(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(super::all_commands().count() as i64)
}

fn command_docs(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let wanted: Vec<(&'static CommandSpec, Option<&'static CommandSpec>)> = if a.len() > 2 {
        a[2..].iter().filter_map(|n| lookup_full_name(n)).collect()
    } else {
        super::all_commands().map(|c| (c, None)).collect()
    };
    Reply::Map(
        wanted
            .into_iter()
            .map(|(c, parent)| {
                let name = match parent {
                    Some(p) => format!("{}|{}", p.name, c.name),
                    None => c.name.to_string(),
                };
                (
                    Reply::bulk(Bytes::from(name.clone())),
                    command_doc(c, &name),
                )
            })
            .collect(),
    )
}

/// One COMMAND DOCS entry (Redis 7 shape): summary, since, group, arguments, subcommands.
fn command_doc(c: &'static CommandSpec, full_name: &str) -> Reply {
    let (summary, since, args) = super::docs::lookup(full_name).unwrap_or(("", "1.0.0", vec![]));
    let mut fields = vec![
        (Reply::bulk_str("summary"), Reply::bulk_str(summary)),
        (Reply::bulk_str("since"), Reply::bulk_str(since)),
        (Reply::bulk_str("group"), Reply::bulk_str(c.group)),
    ];
    if !args.is_empty() {
        fields.push((Reply::bulk_str("arguments"), Reply::Array(args)));
    }
    if !c.subcommands.is_empty() {
        let subs = c
            .subcommands
            .iter()
            .map(|s| {
                let n = format!("{full_name}|{}", s.name);
                (Reply::bulk(Bytes::from(n.clone())), command_doc(s, &n))
            })
            .collect();
        fields.push((Reply::bulk_str("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

fn info(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let sections: Vec<String> = a[1..]
        .iter()
        .map(|s| lossy(s).to_ascii_lowercase())
        .collect();
    Reply::Verbatim(Bytes::from(crate::engine::info::render(ctx, &sections)))
}

/// A HELP reply in Redis's shape: a title line, the given lines, then the HELP entry.
fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(Bytes::from(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    for l in lines {
        out.push(Reply::Status(Bytes::copy_from_slice(l.as_bytes())));
    }
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Print this help."));
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
    for a in args {
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
// CLIENT

/// The CLIENT LIST / INFO entries, with the calling client's own entry fresh (the registry is
/// refreshed only after each batch).
fn client_infos(ctx: &Ctx<'_>, current_cmd: &str) -> Vec<ClientInfo> {
    let mut infos: Vec<ClientInfo> = ctx
        .state
        .clients
        .values()
        .filter(|c| c.id != ctx.client.id)
        .cloned()
        .collect();
    if ctx.state.clients.contains_key(&ctx.client.id) {
        infos.push(ClientInfo::from_state(ctx.client, ctx.now_ms, current_cmd));
    }
    infos.sort_by_key(|c| c.id);
    // Flags only the shared state knows: monitors ('O') and blocked clients ('b').
    for c in &mut infos {
        if ctx.state.monitors.contains_key(&c.id) {
            c.flags = "O".to_string();
        } else if c.blocked {
            c.flags = if c.flags == "N" {
                "b".to_string()
            } else {
                format!("{}b", c.flags)
            };
        }
    }
    infos
}

/// The client types CLIENT LIST / KILL filter on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

fn parse_client_type(arg: &[u8]) -> Result<ClientType, Reply> {
    let t = arg.to_ascii_lowercase();
    Ok(match t.as_slice() {
        b"normal" => ClientType::Normal,
        b"replica" | b"slave" => ClientType::Replica,
        b"master" => ClientType::Master,
        b"pubsub" => ClientType::PubSub,
        _ => {
            return Err(Reply::error(format!(
                "ERR Unknown client type '{}'",
                lossy(arg)
            )))
        }
    })
}

fn client_type_of(c: &ClientInfo) -> ClientType {
    if c.is_replication {
        ClientType::Replica
    } else if c.sub + c.psub > 0 {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

fn client_list(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut kind = None;
    let mut ids: Option<Vec<u64>> = None;
    if a.len() == 4 && is(&a[2], "type") {
        match parse_client_type(&a[3]) {
            Ok(t) => kind = Some(t),
            Err(e) => return e,
        }
    } else if a.len() >= 4 && is(&a[2], "id") {
        let mut v = Vec::new();
        for x in &a[3..] {
            match super::args::parse_i64_strict(x) {
                Some(n) if n > 0 => v.push(n as u64),
                _ => return Reply::err_static("ERR Invalid client ID"),
            }
        }
        ids = Some(v);
    } else if a.len() != 2 {
        return syntax_error();
    }
    let now = ctx.now_ms;
    let mut out = String::new();
    for c in client_infos(ctx, "client|list") {
        if kind.is_some_and(|k| client_type_of(&c) != k) {
            continue;
        }
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        out.push_str(&c.format(now));
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

fn client_info(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let mut line = ClientInfo::from_state(ctx.client, ctx.now_ms, "client|info").format(ctx.now_ms);
    line.push('\n');
    Reply::Verbatim(Bytes::from(line))
}

/// CLIENT KILL addr:port (old form: OK or an error) or CLIENT KILL <filter value>... (new form:
/// the number of clients killed). Killing goes through each client's handle: the connection
/// closes after the reply it is writing.
fn client_kill(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() == 3 {
        let addr = &a[2][..];
        let target = ctx
            .state
            .clients
            .values()
            .find(|c| c.addr.as_bytes() == addr)
            .map(|c| c.handle.clone());
        return match target {
            Some(h) => {
                h.kill();
                Reply::Ok
            }
            None => Reply::err_static("ERR No such client"),
        };
    }
    if a.len() % 2 != 0 {
        return syntax_error();
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut user = None;
    let mut kind = None;
    let mut skipme = true;
    for pair in a[2..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "id") {
            match super::args::parse_i64_strict(val) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return Reply::err_static("ERR client-id should be greater than 0"),
            }
        } else if is(opt, "type") {
            match parse_client_type(val) {
                Ok(t) => kind = Some(t),
                Err(e) => return e,
            }
        } else if is(opt, "addr") {
            addr = Some(val.clone());
        } else if is(opt, "laddr") {
            laddr = Some(val.clone());
        } else if is(opt, "user") {
            let known = &val[..] == b"default"
                || ctx.state.config.settings.admin_user.as_deref() == Some(&val[..]);
            if !known {
                return Reply::error(format!("ERR No such user '{}'", lossy(val)));
            }
            user = Some(val.clone());
        } else if is(opt, "skipme") {
            if is(val, "yes") {
                skipme = true;
            } else if is(val, "no") {
                skipme = false;
            } else {
                return syntax_error();
            }
        } else {
            return syntax_error();
        }
    }
    let me = ctx.client.id;
    let victims: Vec<_> = ctx
        .state
        .clients
        .values()
        .filter(|c| id.is_none_or(|i| c.id == i))
        .filter(|c| addr.as_ref().is_none_or(|x| c.addr.as_bytes() == &x[..]))
        .filter(|c| laddr.as_ref().is_none_or(|x| c.laddr.as_bytes() == &x[..]))
        .filter(|c| user.as_ref().is_none_or(|x| c.user.as_bytes() == &x[..]))
        .filter(|c| kind.is_none_or(|k| client_type_of(c) == k))
        .filter(|c| !(skipme && c.id == me))
        .map(|c| c.handle.clone())
        .collect();
    for h in &victims {
        h.kill();
    }
    Reply::Int(victims.len() as i64)
}

fn on_off(arg: &[u8]) -> Option<bool> {
    if is(arg, "on") {
        Some(true)
    } else if is(arg, "off") {
        Some(false)
    } else {
        None
    }
}

fn client_no_evict(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match on_off(&a[2]) {
        Some(v) => {
            ctx.client.no_evict = v;
            Reply::Ok
        }
        None => syntax_error(),
    }
}

fn client_no_touch(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match on_off(&a[2]) {
        Some(v) => {
            ctx.client.no_touch = v;
            Reply::Ok
        }
        None => syntax_error(),
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL]: `cmd::process` answers paused commands with
/// `Outcome::Paused` and their connection waits. A new pause never shortens a longer one nor
/// weakens ALL to WRITE (as Redis).
fn client_pause(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let timeout = match super::args::parse_i64_strict(&a[2]) {
        Some(t) => t,
        None => return Reply::err_static("ERR timeout is not an integer or out of range"),
    };
    if timeout < 0 {
        return Reply::err_static("ERR timeout is negative");
    }
    let writes_only = match a.get(3) {
        None => false,
        Some(m) if is(m, "all") => false,
        Some(m) if is(m, "write") => true,
        Some(_) => return Reply::err_static("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    if a.len() > 4 {
        return syntax_error();
    }
    let until = ctx.now_ms.saturating_add(timeout);
    let p = &mut ctx.state.pause;
    let active = p.until_ms > ctx.now_ms;
    if !active || until > p.until_ms {
        p.until_ms = until;
    }
    p.writes_only = if active {
        p.writes_only && writes_only
    } else {
        writes_only
    };
    Reply::Ok
}

fn client_unpause(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    ctx.state.pause = Default::default();
    // The connections wake their paused clients when they see this flag after their batch.
    ctx.state.unpause_requested = true;
    Reply::Ok
}

/// Client-side caching is not supported: TRACKING OFF is accepted (it is the state every client
/// is in), TRACKING ON is refused with an explicit error.
/// CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], with
/// Redis 7.0's checks and texts.
fn client_tracking(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    use crate::engine::tracking::TrackingClient;
    let mut o = TrackingClient::default();
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if is(&a[j], "redirect") && more {
            j += 1;
            if o.redirect != 0 {
                return Reply::err_static(
                    "ERR A client can only redirect to a single other client",
                );
            }
            let id = match int_arg(&a[j]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if id <= 0 || !ctx.state.clients.contains_key(&(id as u64)) {
                return Reply::err_static("ERR The client ID you want redirect to does not exist");
            }
            o.redirect = id as u64;
        } else if is(&a[j], "bcast") {
            o.bcast = true;
        } else if is(&a[j], "optin") {
            o.optin = true;
        } else if is(&a[j], "optout") {
            o.optout = true;
        } else if is(&a[j], "noloop") {
            o.noloop = true;
        } else if is(&a[j], "prefix") && more {
            j += 1;
            o.prefixes.push(a[j].to_bytes());
        } else {
            return syntax_error();
        }
        j += 1;
    }
    let id = ctx.client.id;
    match on_off(&a[2]) {
        Some(true) => {
            if !o.bcast && !o.prefixes.is_empty() {
                return Reply::err_static("ERR PREFIX option requires BCAST mode to be enabled");
            }
            let current = ctx.state.tracking.clients.get(&id).cloned();
            if current.as_ref().is_some_and(|c| c.bcast != o.bcast) {
                return Reply::err_static("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
            if o.bcast && (o.optin || o.optout) {
                return Reply::err_static("ERR OPTIN and OPTOUT are not compatible with BCAST");
            }
            if o.optin && o.optout {
                return Reply::err_static("ERR You can't use both OPTIN and OPTOUT");
            }
            if current
                .as_ref()
                .is_some_and(|c| (o.optin && c.optout) || (o.optout && c.optin))
            {
                return Reply::err_static("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
            match ctx.state.tracking.enable(id, o) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::error(e),
            }
        }
        Some(false) => {
            ctx.state.tracking.disable(id);
            Reply::Ok
        }
        None => syntax_error(),
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: a client blocked on keys gets its timeout reply now, or
/// Redis's UNBLOCKED error. 1 when it was blocked, 0 otherwise.
fn client_unblock(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 4 {
        return syntax_error();
    }
    let as_error = match a.get(3) {
        None => false,
        Some(m) if is(m, "timeout") => false,
        Some(m) if is(m, "error") => true,
        Some(_) => {
            return Reply::err_static("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        }
    };
    let id = match int_arg(&a[2]) {
        Ok(v) if v > 0 => v as u64,
        Ok(_) => return Reply::Int(0),
        Err(e) => return e,
    };
    match ctx.state.blocking.unblock(id) {
        Some(b) => {
            let reply = if as_error {
                Reply::err_static("UNBLOCKED client unblocked via CLIENT UNBLOCK")
            } else {
                b.timeout_reply
            };
            let _ = b.reply.send(reply);
            Reply::Int(1)
        }
        None => Reply::Int(0),
    }
}

fn client_caching(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(t) = ctx.state.tracking.clients.get_mut(&ctx.client.id) else {
        return Reply::err_static("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if is(&a[2], "yes") {
        if !t.optin {
            return Reply::err_static(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
        t.caching = Some(true);
    } else if is(&a[2], "no") {
        if !t.optout {
            return Reply::err_static(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
        t.caching = Some(false);
    } else {
        return syntax_error();
    }
    Reply::Ok
}

fn client_getredir(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    match ctx.state.tracking.clients.get(&ctx.client.id) {
        Some(t) => Reply::Int(t.redirect as i64),
        None => Reply::Int(-1),
    }
}

fn client_trackinginfo(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let t = ctx.state.tracking.clients.get(&ctx.client.id);
    let mut flags = Vec::new();
    let (redirect, prefixes) = match t {
        None => {
            flags.push("off");
            (-1, Vec::new())
        }
        Some(t) => {
            flags.push("on");
            for (on, name) in [
                (t.bcast, "bcast"),
                (t.optin, "optin"),
                (t.optout, "optout"),
                (t.optin && t.caching == Some(true), "caching-yes"),
                (t.optout && t.caching == Some(false), "caching-no"),
                (t.noloop, "noloop"),
                (t.broken_redirect, "broken_redirect"),
            ] {
                if on {
                    flags.push(name);
                }
            }
            (t.redirect as i64, t.prefixes.clone())
        }
    };
    Reply::Map(vec![
        (
            Reply::bulk_str("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk_str).collect()),
        ),
        (Reply::bulk_str("redirect"), Reply::Int(redirect)),
        (
            Reply::bulk_str("prefixes"),
            Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect()),
        ),
    ])
}

fn client_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, TYPE (NORMAL|MASTER|REPLICA|PUBSUB),",
            "    USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
            "LIST [options ...]",
            "    Return information about client connections. Options: TYPE (NORMAL|MASTER|REPLICA|PUBSUB), ID <client-id> [...].",
            "NO-EVICT (ON|OFF)",
            "    Protect the current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Commands of this client do not change the LRU/LFU of the keys they access.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client meta attr.",
            "TRACKING OFF",
            "    Client-side caching is not supported; only OFF is accepted.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// CONFIG

fn config_resetstat(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    ctx.state.stats = Default::default();
    Reply::Ok
}

/// CONFIG REWRITE: write the current settings back into the file the server was started with.
/// This is the one command that does file I/O under the lock; Redis does the same (it is rare and
/// the file is small).
fn config_rewrite(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let Some(path) = ctx.state.config.file.clone() else {
        return Reply::err_static("ERR The server is running without a config file");
    };
    let original = std::fs::read_to_string(&path).unwrap_or_default();
    let text = ctx.state.config.rewrite_text(&original);
    // Write a sibling file and rename it over the original, so a crash never leaves half a file.
    let tmp = format!("{path}.tmp-rewrite");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
    match result {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR Rewriting config file: {e}")),
    }
}

fn config_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// COMMAND

/// A command or subcommand by its Redis full name ("get", "config|get").
fn lookup_full_name(name: &[u8]) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
    match name.iter().position(|&c| c == b'|') {
        None => super::lookup(name).map(|c| (c, None)),
        Some(i) => {
            let parent = super::lookup(&name[..i])?;
            super::lookup_sub(parent, &name[i + 1..]).map(|s| (s, Some(parent)))
        }
    }
}

fn command_info_cmd(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() == 2 {
        return Reply::Array(super::all_commands().map(command_info).collect());
    }
    Reply::Array(
        a[2..]
            .iter()
            .map(|n| match lookup_full_name(n) {
                Some((c, None)) => command_info(c),
                Some((s, Some(p))) => {
                    let mut r = command_info(s);
                    if let Reply::Array(items) = &mut r {
                        items[0] = Reply::bulk(Bytes::from(format!("{}|{}", p.name, s.name)));
                    }
                    r
                }
                None => Reply::NilArray,
            })
            .collect(),
    )
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command and
/// subcommand by full name.
fn command_list(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    enum Filter {
        None,
        Module,
        AclCat(String),
        Pattern(Bytes),
    }
    let filter = match a.len() {
        2 => Filter::None,
        5 if is(&a[2], "filterby") => {
            if is(&a[3], "module") {
                Filter::Module
            } else if is(&a[3], "aclcat") {
                Filter::AclCat(lossy(&a[4]).to_ascii_lowercase())
            } else if is(&a[3], "pattern") {
                Filter::Pattern(a[4].to_bytes())
            } else {
                return syntax_error();
            }
        }
        _ => return syntax_error(),
    };
    let mut names = Vec::new();
    for c in super::all_commands() {
        names.push((c.name.to_string(), c, c));
        for s in c.subcommands {
            names.push((format!("{}|{}", c.name, s.name), s, c));
        }
    }
    let out = names
        .into_iter()
        .filter(|(name, spec, _top)| match &filter {
            Filter::None => true,
            Filter::Module => false,
            Filter::AclCat(cat) => crate::engine::acl::categories_of_spec(spec)
                .iter()
                .any(|c| c == cat),
            Filter::Pattern(p) => crate::engine::glob::glob_match(p, name.as_bytes(), true),
        })
        .map(|(name, _, _)| Reply::bulk(Bytes::from(name)))
        .collect();
    Reply::Array(out)
}

/// Resolve `COMMAND GETKEYS cmd args...` to the command's key positions, with Redis's errors.
fn getkeys_positions(
    a: &[Arg],
) -> Result<(Vec<usize>, &'static CommandSpec, &'static CommandSpec), Reply> {
    let target = &a[2..];
    let Some(top) = super::lookup(&target[0]) else {
        return Err(Reply::err_static("ERR Invalid command specified"));
    };
    let (spec, args_arity) = if top.subcommands.is_empty() {
        (top, top.arity)
    } else {
        match target.get(1).and_then(|s| super::lookup_sub(top, s)) {
            Some(s) => (s, s.arity),
            None => return Err(Reply::err_static("ERR Invalid command specified")),
        }
    };
    let n = target.len();
    let arity_ok = (args_arity > 0 && n == args_arity as usize)
        || (args_arity < 0 && n >= (-args_arity) as usize);
    if !arity_ok {
        return Err(Reply::err_static(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys = spec.key_positions(target);
    if keys.is_empty() {
        if spec.keys.is_none() && spec.first_key <= 0 {
            return Err(Reply::err_static("ERR The command has no key arguments"));
        }
        // Scripts may take no keys (Redis's `no_mandatory_keys`): that is an empty answer.
        let no_mandatory_keys = matches!(
            top.name,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
        );
        if !no_mandatory_keys {
            return Err(Reply::err_static(
                "ERR Invalid arguments specified for command",
            ));
        }
    }
    Ok((keys, spec, top))
}

fn command_getkeys(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match getkeys_positions(a) {
        Ok((keys, _, _)) => Reply::Array(
            keys.into_iter()
                .filter_map(|i| a.get(i + 2))
                .map(Reply::bulk_arg)
                .collect(),
        ),
        Err(e) => e,
    }
}

/// Like GETKEYS with per-key flags. The table has no key specs, so flags are derived from the
/// command's flags: RW/update for writes, RO/access for reads.
/// Redis's key-spec flags of the `n`th key of some commands whose keys are not plainly "RW
/// update" (writes) or "RO access" (reads): overwritten, read then deleted, inserted into.
fn key_flags(command: &str, args: &[Arg], n: usize) -> Option<&'static [&'static str]> {
    const OW_UPDATE: &[&str] = &["OW", "update"];
    Some(match (command, n) {
        ("set", _) if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) => {
            &["RW", "access", "update"]
        }
        ("set" | "setex" | "psetex" | "mset" | "msetnx", _) => OW_UPDATE,
        ("lmove" | "blmove" | "rpoplpush" | "brpoplpush", 0) => &["RW", "access", "delete"],
        ("lmove" | "blmove" | "rpoplpush" | "brpoplpush", _) => &["RW", "insert"],
        ("sort" | "sort_ro", 0) => &["RO", "access"],
        ("sort", _) => OW_UPDATE,
        _ => return None,
    })
}

fn command_getkeysandflags(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match getkeys_positions(a) {
        Ok((keys, spec, top)) => {
            let write = spec.has(WRITE) || top.has(WRITE);
            let default: &[&str] = if write {
                &["RW", "update"]
            } else {
                &["RO", "access"]
            };
            let target = &a[2..];
            Reply::Array(
                keys.into_iter()
                    .enumerate()
                    .filter_map(|(n, i)| a.get(i + 2).map(|k| (n, k)))
                    .map(|(n, k)| {
                        let flags = key_flags(top.name, target, n).unwrap_or(default);
                        Reply::Array(vec![
                            Reply::bulk_arg(k),
                            Reply::Set(
                                flags
                                    .iter()
                                    .map(|f| Reply::Status(Bytes::from_static(f.as_bytes())))
                                    .collect(),
                            ),
                        ])
                    })
                    .collect(),
            )
        }
        Err(e) => e,
    }
}

fn command_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full command.",
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// DEBUG

fn debug(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
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
        let now = ctx.now_ms;
        return match ctx.state.dbs[db].peek(&a[2]) {
            Some(e) if e.expire_at == 0 || e.expire_at > now => {
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
    if is(sub, "reload") && a.len() == 2 {
        // Reloading re-applies data already in the log: nothing to propagate.
        ctx.propagate_nothing();
        if !ctx.state.persist.enabled {
            // RDB mode: save `dir/dbfilename` and load it back, as redis-server does.
            return match crate::engine::persistence::dump::debug_reload(ctx.state, ctx.now_ms) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::error(format!("ERR Error trying to load the RDB dump: {e}")),
            };
        }
        return match crate::engine::persistence::snapshot::debug_reload(ctx.state, ctx.now_ms) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::error(format!("ERR Error trying to load the RDB dump: {e}")),
        };
    }
    if is(sub, "loadaof") && a.len() == 2 {
        if !ctx.state.persist.enabled {
            return Reply::err_static(
                "ERR persistence is off (start the engine with --persistence on)",
            );
        }
        ctx.propagate_nothing();
        return match crate::engine::persistence::snapshot::debug_loadaof(ctx.state, ctx.now_ms) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::error(format!("ERR Error trying to load the AOF: {e}")),
        };
    }
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        lossy(sub)
    ))
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
            for (f, val) in hv.map.iter() {
                xor_into(&mut acc, &sha1_parts(&[f.as_slice(), val.as_slice()]));
            }
            sha1_parts(&[b"hash", &acc])
        }
        Value::Set(sv) => {
            let mut acc = [0u8; 20];
            for m in sv.members.iter() {
                xor_into(&mut acc, &sha1_parts(&[m.as_slice()]));
            }
            sha1_parts(&[b"set", &acc])
        }
        Value::ZSet(z) => {
            let mut acc = [0u8; 20];
            for (m, score) in z.iter() {
                let s = crate::engine::protocol::reply::format_double(score);
                xor_into(&mut acc, &sha1_parts(&[m.as_slice(), s.as_bytes()]));
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

// ---------------------------------------------------------------------------------------------
// MEMORY

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

// ---------------------------------------------------------------------------------------------
// LATENCY (SLOWLOG: cmd/slowlog.rs)

/// LATENCY LATEST: per event, [name, time of the latest sample, its latency, the highest].
fn latency_latest(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(
        ctx.state
            .latency_monitor
            .events
            .iter()
            .filter_map(|(name, s)| {
                let (t, ms) = *s.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::bulk(Bytes::from(name.clone())),
                    Reply::Int(t),
                    Reply::Int(ms as i64),
                    Reply::Int(s.max_ms as i64),
                ]))
            })
            .collect(),
    )
}

/// LATENCY HISTORY event: [time, latency] of each sample, oldest first.
fn latency_history(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    Reply::Array(
        ctx.state
            .latency_monitor
            .events
            .get(&name)
            .map(|s| {
                s.samples
                    .iter()
                    .map(|(t, ms)| Reply::Array(vec![Reply::Int(*t), Reply::Int(*ms as i64)]))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn latency_reset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let names: Vec<String> = a[2..].iter().map(|n| lossy(n)).collect();
    Reply::Int(ctx.state.latency_monitor.reset(&names) as i64)
}

fn latency_graph(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    match ctx.state.latency_monitor.graph(&name) {
        Some(g) => Reply::Verbatim(Bytes::from(g)),
        None => Reply::error(format!("ERR No samples available for event '{name}'")),
    }
}

/// LATENCY HISTOGRAM [command ...]: per command (subcommands by their full name) that ran,
/// its calls and the cumulative count per bucket (upper bounds in µs; the engine's buckets are
/// powers of four, Redis's powers of two). A container named alone stands for its
/// subcommands; unknown names are skipped, as in Redis.
fn latency_histogram(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let stats = &ctx.state.stats.commands;
    let mut wanted: Vec<&'static str> = Vec::new();
    let mut push = |spec: &'static CommandSpec, parent: Option<&'static CommandSpec>| {
        let name = if parent.is_some() {
            crate::engine::acl::full_name(spec)
        } else {
            spec.name
        };
        if !wanted.contains(&name) {
            wanted.push(name);
        }
    };
    if a.len() == 2 {
        for c in super::all_commands() {
            push(c, None);
            for s in c.subcommands {
                push(s, Some(c));
            }
        }
    } else {
        for n in &a[2..] {
            match lookup_full_name(n) {
                Some((c, Some(p))) => push(c, Some(p)),
                Some((c, None)) if !c.subcommands.is_empty() => {
                    for s in c.subcommands {
                        push(s, Some(c));
                    }
                }
                Some((c, None)) => push(c, None),
                None => {}
            }
        }
    }
    let mut out = Vec::new();
    for name in wanted {
        let Some(st) = stats.get(&crate::engine::state::CommandName(name)) else {
            continue;
        };
        if st.calls == 0 {
            continue;
        }
        let mut cumulative = 0;
        let mut buckets = Vec::new();
        for (i, n) in st.hist.iter().enumerate() {
            cumulative += n;
            if *n == 0 {
                continue;
            }
            let bound = if i < crate::engine::latency::FINITE_BUCKETS {
                1i64 << (2 * i)
            } else {
                i64::MAX
            };
            buckets.push((Reply::Int(bound), Reply::Int(cumulative as i64)));
        }
        out.push((
            Reply::bulk(Bytes::from(name)),
            Reply::Map(vec![
                (Reply::bulk_str("calls"), Reply::Int(st.calls as i64)),
                (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    Reply::Map(out)
}

fn latency_doctor(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Verbatim(Bytes::from(ctx.state.latency_monitor.doctor()))
}

fn latency_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "HISTOGRAM [<command> ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram.",
        ],
    )
}

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
