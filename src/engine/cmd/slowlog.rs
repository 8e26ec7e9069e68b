//! SLOWLOG: the slow command log (GET, LEN, RESET, HELP) and how a command is recorded in it
//! (argument trimming, redaction of secrets). Pure (on the locked state).
//!
//! As in Redis 7.0: every command whose run took at least `slowlog-log-slower-than`
//! microseconds is recorded after it ran, with at most 32 arguments of at most 128 bytes each,
//! the client's address and name. EXEC itself is never recorded (the commands it ran are), nor
//! is anything a script calls (the script command is). Arguments that carry secrets (passwords
//! of AUTH, HELLO, MIGRATE and sensitive CONFIG SET values, every ACL SETUSER rule) are shown as
//! `(redacted)`, as Redis's `redactClientCommandArgument` does, so that reading the slow log
//! (which needs only the `slowlog` command, not the admin user) reveals no credential.

use bytes::Bytes;

use super::args::{is, lossy};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::state::SlowLogEntry;

pub const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        -2,
        ADMIN | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog_get,
    ),
    CommandSpec::new(
        "len",
        2,
        ADMIN | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog_len,
    ),
    CommandSpec::new(
        "reset",
        2,
        ADMIN | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog_reset,
    ),
    CommandSpec::new(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog_help,
    ),
];

/// Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

/// Settings whose CONFIG SET value is a secret (Redis's SENSITIVE_CONFIG).
const SENSITIVE_CONFIGS: &[&str] = &["masterauth", "masteruser", "requirepass"];

/// Record a command that ran for `elapsed_us` microseconds, if the log is on and the command
/// is slow enough. Called by `cmd::call` after every command.
///
/// The threshold test is inline: every command makes it and almost none is slow (as a call it
/// was ~21 instructions of a pipelined SET).
#[inline]
pub fn record_if_slow(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Arg], elapsed_us: u64) {
    let threshold = ctx.state.config.settings.slowlog_slower_than;
    if threshold < 0 || (elapsed_us as i64) < threshold || ctx.in_script {
        return;
    }
    record(ctx, spec, args, elapsed_us);
}

#[inline(never)]
fn record(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Arg], elapsed_us: u64) {
    // EXEC is Redis's one CMD_SKIP_SLOWLOG command: what it ran is logged one by one.
    if spec.name == "exec" {
        return;
    }
    let max = ctx.state.config.settings.slowlog_max_len;
    if max == 0 {
        return;
    }
    let id = ctx.state.slowlog_next_id;
    ctx.state.slowlog_next_id += 1;
    let args = entry_args(args);
    ctx.state.slowlog.push_front(SlowLogEntry {
        id,
        time_secs: ctx.now_ms / 1000,
        duration_us: elapsed_us,
        args,
        addr: ctx.client.addr.clone(),
        name: ctx.client.name.clone().unwrap_or_default(),
    });
    while ctx.state.slowlog.len() > max {
        ctx.state.slowlog.pop_back();
    }
}

/// The arguments as the log shows them: secrets redacted, at most [`MAX_ARGS`] (the last one
/// then says how many more there were), each cut at [`MAX_ARG_BYTES`].
pub fn entry_args(args: &[Arg]) -> Vec<Bytes> {
    let redacted = redacted_positions(args);
    let shown = if args.len() > MAX_ARGS {
        MAX_ARGS - 1
    } else {
        args.len()
    };
    let mut out: Vec<Bytes> = args[..shown]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if redacted.contains(&i) {
                Bytes::from_static(b"(redacted)")
            } else if a.len() > MAX_ARG_BYTES {
                let mut v = a[..MAX_ARG_BYTES].to_vec();
                v.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                Bytes::from(v)
            } else {
                a.to_bytes()
            }
        })
        .collect();
    if args.len() > MAX_ARGS {
        out.push(Bytes::from(format!(
            "... ({} more arguments)",
            args.len() - shown
        )));
    }
    out
}

/// Positions of the arguments Redis redacts for this command (where its command
/// implementations call `redactClientCommandArgument`). Redis redacts them whether or not the
/// command then succeeds, so this looks at the arguments only.
pub fn redacted_positions(args: &[Arg]) -> Vec<usize> {
    let Some(name) = args.first() else {
        return Vec::new();
    };
    let sub = args.get(1).map(|a| a.as_ref()).unwrap_or(b"");
    if is(name, "auth") && args.len() <= 3 {
        return (1..args.len()).collect();
    }
    if is(name, "acl") && is(sub, "setuser") {
        return (2..args.len()).collect();
    }
    if is(name, "config") && is(sub, "set") {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 1 < args.len() {
            let setting = lossy(&args[i]).to_ascii_lowercase();
            if SENSITIVE_CONFIGS.contains(&setting.as_str()) {
                out.push(i + 1);
            }
            i += 2;
        }
        return out;
    }
    if is(name, "hello") {
        // HELLO [protover [AUTH username password] [SETNAME name]]
        let mut out = Vec::new();
        let mut j = 2;
        while j < args.len() {
            if is(&args[j], "auth") && j + 2 < args.len() {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else {
                j += 1;
            }
        }
        return out;
    }
    if is(name, "migrate") {
        // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ...]
        let mut out = Vec::new();
        let mut j = 6;
        while j < args.len() {
            if is(&args[j], "auth") && j + 1 < args.len() {
                out.push(j + 1);
                j += 2;
            } else if is(&args[j], "auth2") && j + 2 < args.len() {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else if is(&args[j], "keys") {
                break;
            } else {
                j += 1;
            }
        }
        return out;
    }
    Vec::new()
}

fn slowlog_get(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            lossy(&a[1])
        ));
    }
    let count = match a.get(2) {
        None => 10,
        Some(c) => match super::args::parse_i64_strict(c) {
            Some(n) if n >= -1 => n,
            _ => return Reply::err_static("ERR count should be greater than or equal to -1"),
        },
    };
    let take = if count == -1 {
        usize::MAX
    } else {
        count as usize
    };
    Reply::Array(
        ctx.state
            .slowlog
            .iter()
            .take(take)
            .map(|e| {
                Reply::Array(vec![
                    Reply::Int(e.id as i64),
                    Reply::Int(e.time_secs),
                    Reply::Int(e.duration_us as i64),
                    Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                    Reply::bulk(Bytes::from(e.addr.clone())),
                    Reply::Bulk(e.name.clone()),
                ])
            })
            .collect(),
    )
}

fn slowlog_len(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(ctx.state.slowlog.len() as i64)
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    ctx.state.slowlog.clear();
    Reply::Ok
}

fn slowlog_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let lines = [
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Status(Bytes::from_static(l.as_bytes())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> Vec<Arg> {
        parts
            .iter()
            .map(|p| Arg::from(Bytes::copy_from_slice(p.as_bytes())))
            .collect()
    }

    fn shown(parts: &[&str]) -> Vec<String> {
        entry_args(&args(parts))
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            shown(&["acl", "setuser", "u", "on", ">pw"]),
            ["acl", "setuser", "(redacted)", "(redacted)", "(redacted)"]
        );
        assert_eq!(shown(&["AUTH", "pw"]), ["AUTH", "(redacted)"]);
        assert_eq!(
            shown(&["auth", "user", "pw"]),
            ["auth", "(redacted)", "(redacted)"]
        );
        assert_eq!(
            shown(&["config", "set", "maxmemory", "1", "MasterAuth", "pw"]),
            [
                "config",
                "set",
                "maxmemory",
                "1",
                "MasterAuth",
                "(redacted)"
            ]
        );
        assert_eq!(
            shown(&["hello", "3", "auth", "u", "pw", "setname", "n"]),
            [
                "hello",
                "3",
                "auth",
                "(redacted)",
                "(redacted)",
                "setname",
                "n"
            ]
        );
        assert_eq!(
            shown(&["migrate", "h", "1", "k", "9", "5000", "AUTH2", "u", "pw"]),
            [
                "migrate",
                "h",
                "1",
                "k",
                "9",
                "5000",
                "AUTH2",
                "(redacted)",
                "(redacted)"
            ]
        );
        assert_eq!(shown(&["set", "k", "v"]), ["set", "k", "v"]);
    }

    #[test]
    fn long_commands_are_trimmed_as_redis_does() {
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        let out = shown(&refs);
        assert_eq!(out.len(), 32);
        assert_eq!(out[30], "30");
        assert_eq!(out[31], "... (9 more arguments)");
        let long = "A".repeat(129);
        let out = shown(&["sadd", "set", &long]);
        assert_eq!(out[2], format!("{}... (1 more bytes)", "A".repeat(128)));
    }
}
