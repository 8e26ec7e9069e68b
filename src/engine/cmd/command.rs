//! COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS): the
//! command table described to clients. Pure.

use bytes::Bytes;

use super::args::{is, lossy, syntax_error};
use super::flags::*;
use super::server::help_reply;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub(super) const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
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

pub(super) fn command(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
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

/// A command or subcommand by its Redis full name ("get", "config|get").
pub(super) fn lookup_full_name(
    name: &[u8],
) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
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
