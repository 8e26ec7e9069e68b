//! Connection and server commands: PING, ECHO, HELLO, AUTH, QUIT, RESET, CLIENT, CONFIG,
//! COMMAND, INFO, TIME, SHUTDOWN. Pure (on the locked state).

use bytes::Bytes;

use super::args::{int_arg, is, lossy, syntax_error};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::client::{ReplyMode, User};
use crate::engine::protocol::reply::Reply;

pub const REDIS_VERSION: &str = "7.2.0";

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
        NO_AUTH | FAST | SUBSCRIBE_CONTEXT | NOT_QUEUED | SKIP_PAUSE,
        (0, 0, 0),
        "connection",
        quit,
    ),
    CommandSpec::new(
        "hello",
        -1,
        NO_AUTH | FAST | STALE | LOADING | NOSCRIPT,
        (0, 0, 0),
        "connection",
        hello,
    ),
    CommandSpec::new(
        "auth",
        -2,
        NO_AUTH | FAST | STALE | LOADING | NOSCRIPT,
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
        NOSCRIPT | LOADING | STALE,
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
];

/// Container commands never run themselves: `cmd::resolve` dispatches to a subcommand.
fn container(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::err_static("ERR unknown subcommand")
}

fn ok(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Ok
}

fn ping(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if a.len() > 2 {
        return Reply::err_static("ERR wrong number of arguments for 'ping' command");
    }
    if ctx.client.in_subscribe_context() {
        // RESP2 subscribers get PING's reply in pub/sub message shape.
        return Reply::Array(vec![
            Reply::bulk(Bytes::from_static(b"pong")),
            Reply::Bulk(a.get(1).cloned().unwrap_or_default()),
        ]);
    }
    match a.get(1) {
        Some(m) => Reply::Bulk(m.clone()),
        None => Reply::status("PONG"),
    }
}

fn echo(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    Reply::Bulk(a[1].clone())
}

fn quit(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    ctx.client.close_after_reply = true;
    Reply::Ok
}

fn time(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = ctx;
    Reply::Array(vec![
        Reply::bulk(Bytes::from(now.as_secs().to_string())),
        Reply::bulk(Bytes::from(now.subsec_micros().to_string())),
    ])
}

/// Check a username/password pair; returns the user it authenticates as.
pub fn check_credentials(ctx: &Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Option<User> {
    let s = &ctx.state.config.settings;
    match user {
        Some(u) if s.admin_user.as_deref() == Some(u) => {
            (!s.admin_password.is_empty() && s.admin_password == pass).then_some(User::Admin)
        }
        Some(u) if u != b"default" => None,
        _ => match &s.requirepass {
            Some(p) if p.as_slice() == pass => Some(User::Default),
            None => Some(User::Default),
            _ => None,
        },
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if a.len() > 3 {
        return syntax_error();
    }
    let (user, pass) = if a.len() == 3 {
        (Some(&a[1][..]), &a[2][..])
    } else {
        (None, &a[1][..])
    };
    if user.is_none() && ctx.state.config.settings.requirepass.is_none() {
        return Reply::err_static("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    match check_credentials(ctx, user, pass) {
        Some(u) => {
            ctx.client.user = u;
            Reply::Ok
        }
        None => Reply::err_static(WRONGPASS),
    }
}

fn hello(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
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
            match check_credentials(ctx, Some(&a[i + 1]), &a[i + 2]) {
                Some(u) => new_user = Some(u),
                None => return Reply::err_static(WRONGPASS),
            }
            i += 3;
        } else if is(&a[i], "setname") && i + 1 < a.len() {
            if let Err(e) = validate_client_name(&a[i + 1]) {
                return e;
            }
            new_name = Some(a[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                lossy(&a[i])
            ));
        }
    }
    if let Some(u) = new_user {
        ctx.client.user = u;
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
    let role = if ctx.state.read_only {
        "replica"
    } else {
        "master"
    };
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
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

fn client_id(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Int(ctx.client.id as i64)
}

fn client_setname(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if let Err(e) = validate_client_name(&a[2]) {
        return e;
    }
    ctx.client.name = if a[2].is_empty() {
        None
    } else {
        Some(a[2].clone())
    };
    Reply::Ok
}

fn client_getname(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    match &ctx.client.name {
        Some(n) => Reply::Bulk(n.clone()),
        None => Reply::Nil,
    }
}

fn client_setinfo(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
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
        Some(value.clone())
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

fn client_reply(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
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

fn config_get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let patterns: Vec<&[u8]> = a[2..].iter().map(|p| &p[..]).collect();
    let pairs = ctx.state.config.get_matching(&patterns);
    Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk(Bytes::from(k)), Reply::bulk(Bytes::from(v))))
            .collect(),
    )
}

fn config_set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if (a.len() - 2) % 2 != 0 {
        return Reply::err_static("ERR wrong number of arguments for 'config|set' command");
    }
    let pairs: Vec<(String, String)> = a[2..]
        .chunks(2)
        .map(|p| (lossy(&p[0]), lossy(&p[1])))
        .collect();
    match ctx.state.config.set_many(&pairs) {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

fn command(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Array(super::all_commands().map(command_info).collect())
}

/// The COMMAND / COMMAND INFO entry of one command (Redis 7 shape).
pub fn command_info(c: &CommandSpec) -> Reply {
    let flag_names = super::flags::NAMES
        .iter()
        .filter(|(bit, _)| c.flags & bit != 0)
        .map(|(_, n)| Reply::Status(Bytes::from_static(n.as_bytes())))
        .collect();
    Reply::Array(vec![
        Reply::bulk_str(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(flag_names),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.key_step as i64),
        Reply::Set(vec![]),
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

fn command_count(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Int(super::all_commands().count() as i64)
}

fn command_docs(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let wanted: Vec<&'static CommandSpec> = if a.len() > 2 {
        a[2..].iter().filter_map(|n| super::lookup(n)).collect()
    } else {
        super::all_commands().collect()
    };
    Reply::Map(
        wanted
            .into_iter()
            .map(|c| {
                (
                    Reply::bulk_str(c.name),
                    Reply::Map(vec![
                        (Reply::bulk_str("summary"), Reply::bulk_str("")),
                        (Reply::bulk_str("since"), Reply::bulk_str("1.0.0")),
                        (Reply::bulk_str("group"), Reply::bulk_str(c.group)),
                    ]),
                )
            })
            .collect(),
    )
}

fn info(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let sections: Vec<String> = a[1..]
        .iter()
        .map(|s| lossy(s).to_ascii_lowercase())
        .collect();
    Reply::Verbatim(Bytes::from(crate::engine::info::render(ctx, &sections)))
}
