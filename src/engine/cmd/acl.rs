//! The ACL command (SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG, DRYRUN, GENPASS,
//! SAVE, LOAD, HELP), authentication against ACL users (AUTH, HELLO AUTH), and the permission
//! check every command passes, with Redis 7.0's error texts and ACL LOG entries. Pure, except
//! ACL SAVE / ACL LOAD, which write and read `aclfile`.

use std::sync::Arc;

use bytes::Bytes;

use super::args::{int_arg, is, lossy};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::acl::{self, Acl, Denied, LogContext, User};
use crate::engine::client::{self, ClientState};
use crate::engine::config::Config;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::state::EngineState;

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "acl",
    -2,
    NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    "server",
    container,
)
.with_subcommands(SUBCOMMANDS)];

const SUB: u32 = NOSCRIPT | LOADING | STALE;

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cat", -2, SUB, (0, 0, 0), "server", cat),
    CommandSpec::new("deluser", -3, ADMIN | SUB, (0, 0, 0), "server", deluser),
    CommandSpec::new("dryrun", -4, ADMIN | SUB, (0, 0, 0), "server", dryrun),
    CommandSpec::new("genpass", -2, SUB, (0, 0, 0), "server", genpass),
    CommandSpec::new("getuser", 3, ADMIN | SUB, (0, 0, 0), "server", getuser),
    CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "server", help),
    CommandSpec::new("list", 2, ADMIN | SUB, (0, 0, 0), "server", list),
    CommandSpec::new("load", 2, ADMIN | SUB, (0, 0, 0), "server", load),
    CommandSpec::new("log", -2, ADMIN | SUB, (0, 0, 0), "server", log),
    CommandSpec::new("save", 2, ADMIN | SUB, (0, 0, 0), "server", save),
    CommandSpec::new("setuser", -3, ADMIN | SUB, (0, 0, 0), "server", setuser),
    CommandSpec::new("users", 2, ADMIN | SUB, (0, 0, 0), "server", users),
    CommandSpec::new("whoami", 2, SUB, (0, 0, 0), "server", whoami),
];

fn container(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("ERR unknown subcommand")
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The ACL at start-up: the default user (with `requirepass` as its password, as Redis maps
/// it), the operator's admin user (`admin-user` / `admin-password`), then the users of
/// `aclfile` when one is set.
pub fn initial_acl(config: &Config) -> Result<Acl, String> {
    let mut acl = Acl::new();
    let file = config.get("aclfile").unwrap_or("").to_string();
    if !file.is_empty() {
        match std::fs::read_to_string(&file) {
            Ok(text) => acl = parse_acl_file(&text, all_channels_default(config))?,
            // Redis refuses to start without its ACL file; an absent file is an empty one here
            // (ACL SAVE creates it), so a fresh data directory starts.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{file}: {e}")),
        }
    }
    acl.set_default_password(config.settings.requirepass.as_deref());
    sync_admin_user(&mut acl, config);
    Ok(acl)
}

fn all_channels_default(config: &Config) -> bool {
    config.get("acl-pubsub-default") == Some("allchannels")
}

/// The admin user from `admin-user` / `admin-password` (after start-up and CONFIG SET):
/// everything allowed, the one password. Not in the ACL file: the operator owns it.
pub fn sync_admin_user(acl: &mut Acl, config: &Config) {
    let s = &config.settings;
    let Some(name) = s.admin_user.as_ref() else {
        return;
    };
    let name = String::from_utf8_lossy(name).into_owned();
    let mut u = User::new(&name, true);
    for op in ["+@all", "~*", "&*"] {
        let _ = u.set(op, true);
    }
    if !s.admin_password.is_empty() {
        let _ = u.set("on", true);
        let mut op = String::from(">");
        op.push_str(&String::from_utf8_lossy(&s.admin_password));
        let _ = u.set(&op, true);
    }
    acl.set_user(name, Arc::new(u));
}

fn is_admin_name(state: &EngineState, name: &str) -> bool {
    state
        .config
        .settings
        .admin_user
        .as_deref()
        .is_some_and(|a| a == name.as_bytes())
}

/// Check a command against the client's user; a refusal is logged in ACL LOG.
///
/// Inline for the common case, a client whose cached user is still valid and may run
/// anything (the default user): a comparison of the generation and the identity, no call
/// (the out-of-line check was ~85 instructions of a pipelined SET).
#[inline]
pub fn check(
    state: &mut EngineState,
    client: &mut ClientState,
    spec: &CommandSpec,
    args: &[Arg],
    context: LogContext,
    now_ms: i64,
) -> Result<(), Denied> {
    if let Some(c) = &client.acl_user {
        if c.unrestricted && c.generation == state.acl.generation() && c.who == client.user {
            return Ok(());
        }
    }
    check_slow(state, client, spec, args, context, now_ms)
}

#[inline(never)]
fn check_slow(
    state: &mut EngineState,
    client: &mut ClientState,
    spec: &CommandSpec,
    args: &[Arg],
    context: LogContext,
    now_ms: i64,
) -> Result<(), Denied> {
    let Some(user) = client_user(&state.acl, client) else {
        // The user was deleted while this client ran (its connection is closing).
        return Err(Denied::Command);
    };
    let Err(d) = user.check(spec, args) else {
        return Ok(());
    };
    let (reason, object) = acl::denial_log_fields(d, acl::full_name(spec), args);
    let username = client.user.name().to_string();
    log_entry(state, client, reason, context, object, username, now_ms);
    Err(d)
}

/// The ACL user the client runs as, from the client's cache while the users have not changed
/// since it was filled (`Acl::generation`) and the client is still who it was then (AUTH and
/// RESET change that); otherwise looked up by name and cached. None: the user was deleted.
fn client_user<'c>(acl: &Acl, client: &'c mut ClientState) -> Option<&'c Arc<User>> {
    let fresh = client
        .acl_user
        .as_ref()
        .is_some_and(|c| c.generation == acl.generation() && c.who == client.user);
    if !fresh {
        let user = acl.user(client.user.name()).cloned();
        client.acl_user = Some(client::AclUserCache {
            generation: acl.generation(),
            who: client.user.clone(),
            unrestricted: user.as_ref().is_some_and(|u| u.is_unrestricted()),
            user,
        });
    }
    client.acl_user.as_ref().and_then(|c| c.user.as_ref())
}

fn log_entry(
    state: &mut EngineState,
    client: &ClientState,
    reason: &'static str,
    context: LogContext,
    object: String,
    username: String,
    now_ms: i64,
) {
    let info = state
        .clients
        .get(&client.id)
        .map(|c| c.format(now_ms))
        .unwrap_or_default();
    let max = state
        .config
        .get("acllog-max-len")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    state
        .acl
        .log_denial(reason, context, object, username, info, now_ms, max);
}

/// The top-level refusal (Redis 7.0's `processCommand` texts).
pub fn toplevel_reply(d: Denied, spec: &CommandSpec) -> Reply {
    match d {
        Denied::Command => Reply::error(format!(
            "NOPERM this user has no permissions to run the '{}' command",
            acl::full_name(spec)
        )),
        Denied::Key(_) => Reply::err_static(
            "NOPERM this user has no permissions to access one of the keys used as arguments",
        ),
        Denied::Channel(_) => Reply::err_static(
            "NOPERM this user has no permissions to access one of the channels used as arguments",
        ),
    }
}

/// The refusal of a queued command when EXEC runs it after the rules changed.
pub fn exec_reply(d: Denied) -> Reply {
    let reason = match d {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    Reply::error(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and its execution. The user can no longer execute this command or access these keys, or channels: {reason}"))
}

/// The refusal of `redis.call` (Redis 7.0's `scriptCall` texts).
pub fn script_reply(d: Denied) -> Reply {
    Reply::err_static(match d {
        Denied::Command => "ERR The user executing the script can't run this command or subcommand",
        Denied::Key(_) => "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
        Denied::Channel(_) => "ERR The user executing the script can't publish to the channel mentioned in the command",
    })
}

/// AUTH / HELLO AUTH: authenticate the client as `user` (None: the default user). A failure
/// is logged in ACL LOG (reason `auth`) and answered with WRONGPASS.
pub fn authenticate(ctx: &mut Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let name = user.map_or_else(|| "default".to_string(), lossy);
    let ok = ctx
        .state
        .acl
        .user(&name)
        .is_some_and(|u| u.check_password(pass));
    if !ok {
        let (client, now) = (&*ctx.client, ctx.now_ms);
        log_entry(
            ctx.state,
            client,
            "auth",
            if client.multi.active {
                LogContext::Multi
            } else {
                LogContext::Toplevel
            },
            "AUTH".into(),
            name,
            now,
        );
        return Err(Reply::err_static(WRONGPASS));
    }
    ctx.client.admin = is_admin_name(ctx.state, &name);
    ctx.client.user = client::User::from_name(&name);
    Ok(())
}

/// The user a client has after RESET or on connecting: the default user, authenticated when
/// it is on and needs no password.
pub fn fresh_user(state: &EngineState) -> client::User {
    if state.acl.new_connections_authenticated() {
        client::User::Default
    } else {
        client::User::None
    }
}

/// After CONFIG SET: `requirepass` is the default user's password, `admin-password` the admin
/// user's.
pub fn config_changed(state: &mut EngineState, names: &[String]) {
    let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
    if has("requirepass") {
        let p = state.config.settings.requirepass.clone();
        state.acl.set_default_password(p.as_deref());
    }
    if has("admin-password") || has("admin-user") {
        sync_admin_user(&mut state.acl, &state.config);
    }
}

fn whoami(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::bulk(Bytes::from(ctx.client.user.name().to_string()))
}

fn users(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(
        ctx.state
            .acl
            .users()
            .keys()
            .map(|n| Reply::bulk(Bytes::from(n.clone())))
            .collect(),
    )
}

fn list(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(
        ctx.state
            .acl
            .users()
            .values()
            .map(|u| Reply::bulk(Bytes::from(u.describe())))
            .collect(),
    )
}

fn cat(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    match a.len() {
        2 => Reply::Array(acl::CATEGORIES.iter().map(|c| Reply::bulk_str(c)).collect()),
        3 => match acl::category_bit(&lossy(&a[2])) {
            Some(bit) => Reply::Array(
                acl::commands_in_category(bit)
                    .into_iter()
                    .map(Reply::bulk_str)
                    .collect(),
            ),
            None => Reply::error(format!("ERR Unknown category '{}'", lossy(&a[2]))),
        },
        _ => subcommand_error(&a[1]),
    }
}

fn subcommand_error(sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        lossy(sub).chars().take(128).collect::<String>()
    ))
}

fn genpass(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let bits = match a.len() {
        2 => 256,
        3 => match int_arg(&a[2]) {
            Ok(b) if (1..=4096).contains(&b) => b as usize,
            _ => return Reply::err_static("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
        },
        _ => return subcommand_error(&a[1]),
    };
    let chars = bits.div_ceil(4);
    let mut hex = crate::engine::ids::random_hex(chars);
    hex.truncate(chars);
    Reply::bulk(Bytes::from(hex))
}

fn getuser(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(u) = ctx.state.acl.user(&lossy(&a[2])) else {
        return Reply::Nil;
    };
    let descs = u.selector_descriptions();
    let selector_map = |(c, k, ch): &(String, String, String)| {
        Reply::Map(vec![
            (
                Reply::bulk_str("commands"),
                Reply::bulk(Bytes::from(c.clone())),
            ),
            (Reply::bulk_str("keys"), Reply::bulk(Bytes::from(k.clone()))),
            (
                Reply::bulk_str("channels"),
                Reply::bulk(Bytes::from(ch.clone())),
            ),
        ])
    };
    let Reply::Map(root) = selector_map(&descs[0]) else {
        unreachable!("selector_map builds a map")
    };
    let mut fields = vec![
        (
            Reply::bulk_str("flags"),
            Reply::Set(u.flag_names().into_iter().map(Reply::bulk_str).collect()),
        ),
        (
            Reply::bulk_str("passwords"),
            Reply::Array(
                u.passwords
                    .iter()
                    .map(|p| Reply::bulk(Bytes::from(p.clone())))
                    .collect(),
            ),
        ),
    ];
    fields.extend(root);
    fields.push((
        Reply::bulk_str("selectors"),
        Reply::Array(descs[1..].iter().map(selector_map).collect()),
    ));
    Reply::Map(fields)
}

fn setuser(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    if a[2].iter().any(|&c| c == b' ' || c == 0) {
        return Reply::err_static("ERR Usernames can't contain spaces or null characters");
    }
    if is_admin_name(ctx.state, &name) && !ctx.client.admin {
        return Reply::err_static("NOPERM only the admin user may modify the admin user");
    }
    let ops: Vec<String> = a[3..].iter().map(|x| lossy(x)).collect();
    let ops = match acl::merge_selector_args(&ops) {
        Ok(o) => o,
        Err(i) => {
            return Reply::error(format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                ops[i]
            ))
        }
    };
    let all_channels = all_channels_default(&ctx.state.config);
    let existing = ctx.state.acl.user(&name).cloned();
    let mut u = existing
        .as_deref()
        .cloned()
        .unwrap_or_else(|| User::new(&name, all_channels));
    for op in &ops {
        if op.is_empty() {
            return Reply::error(format!(
                "ERR Error in ACL SETUSER modifier '{op}': Syntax error"
            ));
        }
        if let Err(e) = u.set(op, all_channels) {
            return Reply::error(format!("ERR Error in ACL SETUSER modifier '{op}': {e}"));
        }
    }
    let u = Arc::new(u);
    ctx.state.acl.set_user(name.clone(), u.clone());
    if existing.is_some() {
        kill_revoked_subscribers(ctx, &name, &u);
    }
    Reply::Ok
}

/// Clients of `name` subscribed to a channel or pattern the user may no longer use are
/// disconnected (Redis's `ACLKillPubsubClientsIfNeeded`).
fn kill_revoked_subscribers(ctx: &mut Ctx<'_>, name: &str, u: &User) {
    if u.all_channels() {
        return;
    }
    let st = &*ctx.state;
    let mut victims = std::collections::HashSet::new();
    let of_user = |id: &u64| st.clients.get(id).is_some_and(|c| &*c.user == name);
    for (map, pattern) in [
        (&st.pubsub.channels, false),
        (&st.pubsub.shard_channels, false),
        (&st.pubsub.patterns, true),
    ] {
        for (ch, subs) in map {
            if u.channel_allowed(ch, pattern) {
                continue;
            }
            victims.extend(subs.keys().filter(|id| of_user(id)).copied());
        }
    }
    kill_clients(ctx, &victims);
}

fn kill_clients(ctx: &mut Ctx<'_>, ids: &std::collections::HashSet<u64>) {
    for id in ids {
        if *id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else if let Some(c) = ctx.state.clients.get(id) {
            c.handle.kill();
        }
    }
}

fn deluser(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let names: Vec<String> = a[2..].iter().map(|x| lossy(x)).collect();
    if names.iter().any(|n| n == "default") {
        return Reply::err_static("ERR The 'default' user cannot be removed");
    }
    if names.iter().any(|n| is_admin_name(ctx.state, n)) && !ctx.client.admin {
        return Reply::err_static("NOPERM only the admin user may delete the admin user");
    }
    let mut deleted = 0;
    let mut victims = std::collections::HashSet::new();
    for n in &names {
        if ctx.state.acl.remove_user(n).is_some() {
            deleted += 1;
            victims.extend(
                ctx.state
                    .clients
                    .values()
                    .filter(|c| &*c.user == n.as_str())
                    .map(|c| c.id),
            );
            if ctx.client.user.name() == n {
                victims.insert(ctx.client.id);
            }
        }
    }
    kill_clients(ctx, &victims);
    Reply::Int(deleted)
}

fn dryrun(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    let Some(u) = ctx.state.acl.user(&name).cloned() else {
        return Reply::error(format!("ERR User '{name}' not found"));
    };
    let args = &a[3..];
    let (spec, _parent) = match super::resolve(args) {
        Ok(x) => x,
        Err(e) => {
            if super::lookup(&args[0]).is_none() {
                return Reply::error(format!("ERR Command '{}' not found", lossy(&args[0])));
            }
            return e;
        }
    };
    match u.check(spec, args) {
        Ok(()) => Reply::Ok,
        Err(Denied::Command) => Reply::bulk(Bytes::from(format!(
            "This user has no permissions to run the '{}' command",
            acl::full_name(spec)
        ))),
        Err(Denied::Key(p)) => Reply::bulk(Bytes::from(format!(
            "This user has no permissions to access the '{}' key",
            lossy(&args[p])
        ))),
        Err(Denied::Channel(p)) => Reply::bulk(Bytes::from(format!(
            "This user has no permissions to access the '{}' channel",
            lossy(&args[p])
        ))),
    }
}

fn log(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut count = usize::MAX;
    if a.len() == 3 {
        if is(&a[2], "reset") {
            ctx.state.acl.log.clear();
            return Reply::Ok;
        }
        match int_arg(&a[2]) {
            Ok(n) if n >= 0 => count = n as usize,
            _ => return Reply::err_static("ERR value is out of range, must be positive"),
        }
    } else if a.len() > 3 {
        return subcommand_error(&a[1]);
    }
    let now = ctx.now_ms;
    Reply::Array(
        ctx.state
            .acl
            .log
            .iter()
            .take(count)
            .map(|e| {
                Reply::Map(vec![
                    (Reply::bulk_str("count"), Reply::Int(e.count as i64)),
                    (Reply::bulk_str("reason"), Reply::bulk_str(e.reason)),
                    (
                        Reply::bulk_str("context"),
                        Reply::bulk_str(e.context.name()),
                    ),
                    (
                        Reply::bulk_str("object"),
                        Reply::bulk(Bytes::from(e.object.clone())),
                    ),
                    (
                        Reply::bulk_str("username"),
                        Reply::bulk(Bytes::from(e.username.clone())),
                    ),
                    (
                        Reply::bulk_str("age-seconds"),
                        Reply::Double((now - e.created_ms).max(0) as f64 / 1000.0),
                    ),
                    (
                        Reply::bulk_str("client-info"),
                        Reply::bulk(Bytes::from(e.client_info.clone())),
                    ),
                ])
            })
            .collect(),
    )
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn aclfile(ctx: &Ctx<'_>) -> Option<String> {
    ctx.state
        .config
        .get("aclfile")
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

/// The ACL file's text: every user but the admin user (the operator's, from the settings).
fn acl_file_text(state: &EngineState) -> String {
    let mut out = String::new();
    for (name, u) in state.acl.users() {
        if is_admin_name(state, name) {
            continue;
        }
        out.push_str(&u.describe());
        out.push('\n');
    }
    out
}

/// Parse an ACL file (`user <name> <rules...>` lines; blank lines and `#` comments skipped).
/// All or nothing: the first bad line is the error, naming its line number.
pub fn parse_acl_file(text: &str, all_channels: bool) -> Result<Acl, String> {
    let mut acl = Acl::new();
    let mut seen = std::collections::HashSet::new();
    let mut default_seen = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<String> = line.split_ascii_whitespace().map(str::to_string).collect();
        if words[0] != "user" || words.len() < 2 {
            return Err(format!("/{}: line should start with user keyword", n + 1));
        }
        let name = &words[1];
        if !seen.insert(name.clone()) {
            return Err(format!("{}: Duplicate user '{name}' found", n + 1));
        }
        let ops = acl::merge_selector_args(&words[2..]).map_err(|i| {
            format!(
                "{}: Unmatched parenthesis in acl selector starting at '{}'.",
                n + 1,
                words[2 + i]
            )
        })?;
        let mut u = User::new(name, all_channels);
        if name == "default" {
            default_seen = true;
            // Redis resets the default user before applying the file's rules.
            let _ = u.set("reset", all_channels);
        }
        for op in &ops {
            u.set(op, all_channels)
                .map_err(|e| format!("{}: Error in user declaration '{op}': {e}", n + 1))?;
        }
        acl.set_user(name.clone(), Arc::new(u));
    }
    let _ = default_seen;
    Ok(acl)
}

fn save(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let Some(path) = aclfile(ctx) else {
        return Reply::err_static(NO_ACLFILE);
    };
    let text = acl_file_text(ctx.state);
    // Written beside and renamed over, so a crash leaves the old file or the new one.
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => Reply::Ok,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(error = %e, path, "ACL SAVE failed");
            Reply::err_static("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
        }
    }
}

fn load(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let Some(path) = aclfile(ctx) else {
        return Reply::err_static(NO_ACLFILE);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return Reply::error(format!(
                "ERR Error loading ACLs, opening file '{path}': {e}"
            ))
        }
    };
    let all_channels = all_channels_default(&ctx.state.config);
    let mut acl = match parse_acl_file(&text, all_channels) {
        Ok(a) => a,
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    // The file replaces the users; the log, the requirepass mapping and the admin user stay.
    acl.log = std::mem::take(&mut ctx.state.acl.log);
    if !text
        .lines()
        .any(|l| l.split_ascii_whitespace().nth(1) == Some("default"))
    {
        let p = ctx.state.config.settings.requirepass.clone();
        acl.set_default_password(p.as_deref());
    }
    sync_admin_user(&mut acl, &ctx.state.config);
    ctx.state.acl = acl;
    // Clients of users that no longer exist are disconnected (their rights are gone).
    let gone: std::collections::HashSet<u64> = ctx
        .state
        .clients
        .values()
        .filter(|c| ctx.state.acl.user(&c.user).is_none())
        .map(|c| c.id)
        .collect();
    kill_clients(ctx, &gone);
    Reply::Ok
}

fn help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let lines = [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_files_round_trip_and_bad_lines_are_named() {
        let text = "user alice on #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 ~cached:* resetchannels &chan -@all +get\nuser default on nopass ~* &* +@all\n";
        let acl = parse_acl_file(text, false).unwrap();
        let listed: Vec<String> = acl.users().values().map(|u| u.describe()).collect();
        assert_eq!(listed.join("\n") + "\n", text);
        let err = parse_acl_file("user bob on +nosuch\n", false).unwrap_err();
        assert!(
            err.starts_with("1: Error in user declaration '+nosuch'"),
            "{err}"
        );
    }
}
