//! CLIENT and its subcommands (ID, SETNAME, LIST, KILL, PAUSE, TRACKING, ...). Pure (on the
//! locked state).

use bytes::Bytes;

use super::args::{int_arg, is, lossy, syntax_error};
use super::flags::*;
use super::server::help_reply;
use super::{CommandSpec, Ctx};
use crate::engine::client::{ClientInfo, ReplyMode};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub(super) const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
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

pub(super) fn validate_client_name(name: &[u8]) -> Result<(), Reply> {
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
    // Flags only the shared state knows: monitors ('O') and blocked clients ('b'). (The
    // connection's own refresh already writes 'b' for a client blocked by its last batch: not
    // twice, Redis shows `flags=b`.)
    for c in &mut infos {
        if ctx.state.monitors.contains_key(&c.id) {
            c.flags = "O".to_string();
        } else if c.blocked && !c.flags.contains('b') {
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
    let own = ctx.client.id;
    let qbuf = multibulk_len(a);
    let mut out = String::new();
    for c in client_infos(ctx, "client|list") {
        if kind.is_some_and(|k| client_type_of(&c) != k) {
            continue;
        }
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        out.push_str(&c.format_with_qbuf(now, if c.id == own { qbuf } else { 0 }));
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

/// The size of `args` as a RESP multibulk request: what Redis's query buffer holds of the
/// command while it runs (the `qbuf` of the asking client's own line).
fn multibulk_len(args: &[Arg]) -> usize {
    let digits = |n: usize| n.to_string().len();
    1 + digits(args.len())
        + 2
        + args
            .iter()
            .map(|a| 1 + digits(a.len()) + 2 + a.len() + 2)
            .sum::<usize>()
}

fn client_info(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut line = ClientInfo::from_state(ctx.client, ctx.now_ms, "client|info")
        .format_with_qbuf(ctx.now_ms, multibulk_len(a));
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
