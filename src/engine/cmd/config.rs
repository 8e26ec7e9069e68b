//! CONFIG GET, SET, RESETSTAT, REWRITE and HELP. Pure (on the locked state), except CONFIG
//! REWRITE, which writes the config file.

use bytes::Bytes;

use super::args::lossy;
use super::flags::*;
use super::server::help_reply;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub(super) const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
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
    // replicaof (alias slaveof): the master this engine follows, "host port" or empty, as
    // Redis shows it. Not a start-up setting here (the operator or REPLICAOF sets the
    // master), so it is read from the replication state.
    let master = ctx
        .state
        .repl
        .master
        .as_ref()
        .map(|(host, port)| format!("{host} {port}"))
        .unwrap_or_default();
    for name in ["replicaof", "slaveof"] {
        let matches = patterns.iter().any(|p| {
            crate::engine::glob::glob_match(&p.to_ascii_lowercase(), name.as_bytes(), false)
        });
        if matches && !pairs.iter().any(|(n, _)| n == name) {
            pairs.push((name.to_string(), master.clone()));
        }
    }
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

fn config_resetstat(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    ctx.state.stats = Default::default();
    ctx.state.lazyfree.reset_freed();
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
