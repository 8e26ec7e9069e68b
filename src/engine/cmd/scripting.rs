//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO.
//! Pure (on the locked state; the Lua runtime is in `engine::scripting`).
//!
//! Scripts replicate by effects: every command a script runs propagates itself through
//! `cmd::call`, collected into one effects batch so the write log sees the whole script as one
//! MULTI/EXEC; the EVAL itself propagates nothing. FUNCTION LOAD/DELETE/FLUSH change the
//! function set and propagate as received.

use bytes::Bytes;

use super::args::{int_arg, is, lossy};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::glob::glob_match;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::scripting::{self, Program};

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | MAY_REPLICATE;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, EVAL_FLAGS, (0, 0, 0), "scripting", eval).with_keys(numkeys_at_2),
    CommandSpec::new("evalsha", -3, EVAL_FLAGS, (0, 0, 0), "scripting", evalsha)
        .with_keys(numkeys_at_2),
    CommandSpec::new(
        "eval_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        (0, 0, 0),
        "scripting",
        eval_ro,
    )
    .with_keys(numkeys_at_2),
    CommandSpec::new(
        "evalsha_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        (0, 0, 0),
        "scripting",
        evalsha_ro,
    )
    .with_keys(numkeys_at_2),
    CommandSpec::new("fcall", -3, EVAL_FLAGS, (0, 0, 0), "scripting", fcall)
        .with_keys(numkeys_at_2),
    CommandSpec::new(
        "fcall_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        (0, 0, 0),
        "scripting",
        fcall_ro,
    )
    .with_keys(numkeys_at_2),
    CommandSpec::new("script", -2, 0, (0, 0, 0), "scripting", container).with_subcommands(&[
        CommandSpec::new(
            "load",
            3,
            NOSCRIPT | STALE,
            (0, 0, 0),
            "scripting",
            script_load,
        ),
        CommandSpec::new(
            "exists",
            -3,
            NOSCRIPT | STALE,
            (0, 0, 0),
            "scripting",
            script_exists,
        ),
        CommandSpec::new(
            "flush",
            -2,
            NOSCRIPT | STALE,
            (0, 0, 0),
            "scripting",
            script_flush,
        ),
        CommandSpec::new(
            "kill",
            2,
            NOSCRIPT | ALLOW_BUSY,
            (0, 0, 0),
            "scripting",
            script_kill,
        ),
        CommandSpec::new(
            "help",
            2,
            LOADING | STALE,
            (0, 0, 0),
            "scripting",
            script_help,
        ),
    ]),
    CommandSpec::new("function", -2, 0, (0, 0, 0), "scripting", container).with_subcommands(&[
        CommandSpec::new(
            "load",
            -3,
            WRITE | DENYOOM | NOSCRIPT,
            (0, 0, 0),
            "scripting",
            function_load,
        ),
        CommandSpec::new("list", -2, NOSCRIPT, (0, 0, 0), "scripting", function_list),
        CommandSpec::new(
            "delete",
            3,
            WRITE | NOSCRIPT,
            (0, 0, 0),
            "scripting",
            function_delete,
        ),
        CommandSpec::new(
            "flush",
            -2,
            WRITE | NOSCRIPT,
            (0, 0, 0),
            "scripting",
            function_flush,
        ),
        CommandSpec::new(
            "kill",
            2,
            NOSCRIPT | ALLOW_BUSY,
            (0, 0, 0),
            "scripting",
            function_kill,
        ),
        CommandSpec::new(
            "stats",
            2,
            NOSCRIPT | ALLOW_BUSY,
            (0, 0, 0),
            "scripting",
            function_stats,
        ),
    ]),
];

/// Container commands never run themselves (`resolve` picks the subcommand).
fn script_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(l)).collect())
}

fn container(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("ERR unknown subcommand")
}

/// Key positions of `CMD script numkeys key... arg...`.
fn numkeys_at_2(args: &[Arg]) -> Vec<usize> {
    let n = args
        .get(2)
        .and_then(|a| super::args::parse_i64_strict(a))
        .unwrap_or(0)
        .max(0) as usize;
    (3..3 + n).take_while(|&i| i < args.len()).collect()
}

/// Split `numkeys key... arg...` starting at a[2]; Redis's errors for bad counts (a count that is
/// not a number is worded differently by EVAL and FCALL).
fn split_keys<'a>(a: &'a [Arg], bad_count: &'static str) -> Result<(&'a [Arg], &'a [Arg]), Reply> {
    let n = int_arg(&a[2]).map_err(|_| Reply::err_static(bad_count))?;
    if n < 0 {
        return Err(Reply::err_static("ERR Number of keys can't be negative"));
    }
    let rest = &a[3..];
    if n as usize > rest.len() {
        return Err(Reply::err_static(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(n as usize))
}

/// Run a program inside one effects batch; the EVAL/FCALL itself propagates nothing.
fn run_batched(
    ctx: &mut Ctx<'_>,
    command: &[Arg],
    program: Program<'_>,
    keys: &[Arg],
    argv: &[Arg],
    read_only: bool,
) -> Reply {
    let opened = ctx.state.begin_effects_batch();
    let reply = scripting::run(ctx, command, program, keys, argv, read_only);
    if opened {
        ctx.state.end_effects_batch();
    }
    ctx.propagate_nothing();
    reply
}

/// Whether the EVAL, EVALSHA or FCALL in `args` runs a script or function that declared
/// `no-writes` (Redis drops the command's `may-replicate` for it, so CLIENT PAUSE WRITE lets
/// it run). False for any other command.
pub fn declares_no_writes(state: &crate::engine::state::EngineState, args: &[Arg]) -> bool {
    let Some(target) = args.get(1) else {
        return false;
    };
    if is(&args[0], "eval") {
        matches!(parse_shebang(target), Ok(Some(true)))
    } else if is(&args[0], "evalsha") {
        let sha = String::from_utf8_lossy(target).to_ascii_lowercase();
        state
            .scripting
            .scripts
            .get(&sha)
            .is_some_and(|body| matches!(parse_shebang(body), Ok(Some(true))))
    } else if is(&args[0], "fcall") {
        let name = String::from_utf8_lossy(target);
        let s = &state.scripting;
        s.functions
            .get(name.as_ref())
            .and_then(|lib| s.libraries.get(lib))
            .and_then(|lib| lib.functions.iter().find(|f| f.name == name))
            .is_some_and(|m| m.no_writes())
    } else {
        false
    }
}

/// Parse an EVAL script's shebang line (`#!lua flags=no-writes,allow-oom`): None without one,
/// else whether the script declared `no-writes`. Redis 7.0's errors for other engines, options
/// and flags.
fn parse_shebang(body: &[u8]) -> Result<Option<bool>, Reply> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let end = body.iter().position(|&c| c == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(Reply::error(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut no_writes = false;
    for w in words {
        let Some(flags) = w.strip_prefix("flags=") else {
            return Err(Reply::error(format!("ERR Unknown lua shebang option: {w}")));
        };
        for flag in flags.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => {
                    return Err(Reply::error(format!(
                        "ERR Unexpected flag in script shebang: {other}"
                    )))
                }
            }
        }
    }
    Ok(Some(no_writes))
}

/// Whether a script runs read-only; a shebang script without `no-writes` is refused by the
/// `_RO` variants up front.
fn script_read_only(ro: bool, shebang: Option<bool>) -> Result<bool, Reply> {
    match shebang {
        Some(false) if ro => Err(Reply::err_static(
            "ERR Can not execute a script with write flag using *_ro command.",
        )),
        Some(no_writes) => Ok(ro || no_writes),
        None => Ok(ro),
    }
}

fn eval_generic(ctx: &mut Ctx<'_>, a: &[Arg], ro: bool) -> Reply {
    let (keys, argv) = match split_keys(a, super::args::ERR_NOT_INT) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let read_only = match parse_shebang(&a[1]).and_then(|s| script_read_only(ro, s)) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let sha = match scripting::load_script(ctx, &a[1]) {
        Ok(sha) => sha,
        Err(e) => return e,
    };
    run_batched(ctx, a, Program::Script(&sha), keys, argv, read_only)
}

fn evalsha_generic(ctx: &mut Ctx<'_>, a: &[Arg], ro: bool) -> Reply {
    let sha = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
    let Some(body) = ctx.state.scripting.scripts.get(&sha).cloned() else {
        return Reply::err_static("NOSCRIPT No matching script. Please use EVAL.");
    };
    let (keys, argv) = match split_keys(a, super::args::ERR_NOT_INT) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let read_only = match script_read_only(ro, parse_shebang(&body).unwrap_or(None)) {
        Ok(x) => x,
        Err(e) => return e,
    };
    run_batched(ctx, a, Program::Script(&sha), keys, argv, read_only)
}

fn eval(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    eval_generic(ctx, a, false)
}
fn eval_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    eval_generic(ctx, a, true)
}
fn evalsha(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    evalsha_generic(ctx, a, false)
}
fn evalsha_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    evalsha_generic(ctx, a, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, a: &[Arg], ro: bool) -> Reply {
    let name = String::from_utf8_lossy(&a[1]).into_owned();
    let no_writes = {
        let s = &ctx.state.scripting;
        let meta = s
            .functions
            .get(&name)
            .and_then(|lib| s.libraries.get(lib))
            .and_then(|lib| lib.functions.iter().find(|f| f.name == name));
        match meta {
            Some(m) => m.no_writes(),
            None => return Reply::err_static("ERR Function not found"),
        }
    };
    let (keys, argv) = match split_keys(a, "ERR Bad number of keys provided") {
        Ok(x) => x,
        Err(e) => return e,
    };
    if ro && !no_writes {
        return Reply::err_static(
            "ERR Can not execute a script with write flag using *_ro command.",
        );
    }
    run_batched(
        ctx,
        a,
        Program::Function(&name),
        keys,
        argv,
        ro || no_writes,
    )
}

fn fcall(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    fcall_generic(ctx, a, false)
}
fn fcall_ro(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    fcall_generic(ctx, a, true)
}

fn script_load(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if let Err(e) = parse_shebang(&a[2]) {
        return e;
    }
    match scripting::load_script(ctx, &a[2]) {
        Ok(sha) => Reply::Bulk(Bytes::from(sha)),
        Err(e) => e,
    }
}

fn script_exists(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let scripts = &ctx.state.scripting.scripts;
    Reply::Array(
        a[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Int(scripts.contains_key(&sha) as i64)
            })
            .collect(),
    )
}

/// `[ASYNC|SYNC]` of SCRIPT FLUSH / FUNCTION FLUSH; both flush at once here.
fn flush_mode_ok(a: &[Arg]) -> bool {
    match a.len() {
        2 => true,
        3 => is(&a[2], "async") || is(&a[2], "sync"),
        _ => false,
    }
}

fn script_flush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if !flush_mode_ok(a) {
        return Reply::err_static("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    ctx.state.scripting.flush_scripts();
    Reply::Ok
}

fn script_kill(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    // Scripts run under the state lock to completion; none is ever observed running.
    Reply::err_static("NOTBUSY No scripts in execution right now.")
}

fn function_kill(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::err_static("NOTBUSY No scripts in execution right now.")
}

/// A change to the function set: counted as dirty so `call` propagates the command.
fn functions_changed(ctx: &mut Ctx<'_>) {
    ctx.state.dirty += 1;
    ctx.state.dirty_since_save += 1;
}

fn function_load(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let (replace, code) = match a.len() {
        3 => (false, &a[2]),
        4 if is(&a[2], "replace") => (true, &a[3]),
        4 => {
            return Reply::error(format!("ERR Unknown option given: {}", lossy(&a[2])));
        }
        _ => return Reply::err_static("ERR wrong number of arguments for 'function|load' command"),
    };
    match scripting::load_library(&mut ctx.state.scripting, code, replace) {
        Ok(name) => {
            functions_changed(ctx);
            Reply::Bulk(Bytes::from(name))
        }
        Err(e) => e,
    }
}

fn function_delete(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = String::from_utf8_lossy(&a[2]).into_owned();
    if !ctx.state.scripting.delete_library(&name) {
        return Reply::err_static("ERR Library not found");
    }
    functions_changed(ctx);
    Reply::Ok
}

fn function_flush(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if !flush_mode_ok(a) {
        return Reply::err_static("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    ctx.state.scripting.flush_functions();
    functions_changed(ctx);
    Reply::Ok
}

fn bulk(s: &str) -> Reply {
    Reply::bulk_str(s)
}

fn function_list(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let mut with_code = false;
    let mut pattern: Option<&Arg> = None;
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "withcode") {
            if with_code {
                return Reply::err_static("ERR Unknown argument withcode");
            }
            with_code = true;
        } else if is(&a[i], "libraryname") {
            if pattern.is_some() {
                return Reply::err_static("ERR library name can be given once");
            }
            let Some(p) = a.get(i + 1) else {
                return Reply::err_static("ERR library name argument was not given");
            };
            pattern = Some(p);
            i += 1;
        } else {
            return Reply::error(format!("ERR Unknown argument {}", lossy(&a[i])));
        }
        i += 1;
    }
    let libs = ctx
        .state
        .scripting
        .libraries
        .values()
        .filter(|lib| pattern.is_none_or(|p| glob_match(p, lib.name.as_bytes(), false)));
    let out = libs
        .map(|lib| {
            let functions = lib
                .functions
                .iter()
                .map(|f| {
                    Reply::Map(vec![
                        (bulk("name"), bulk(&f.name)),
                        (
                            bulk("description"),
                            f.description.as_deref().map_or(Reply::Nil, bulk),
                        ),
                        (
                            bulk("flags"),
                            Reply::Set(
                                f.flags
                                    .iter()
                                    .map(|x| Reply::Status(Bytes::from(x.clone())))
                                    .collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            let mut fields = vec![
                (bulk("library_name"), bulk(&lib.name)),
                (bulk("engine"), bulk("LUA")),
                (bulk("functions"), Reply::Array(functions)),
            ];
            if with_code {
                fields.push((bulk("library_code"), Reply::Bulk(lib.code.clone())));
            }
            Reply::Map(fields)
        })
        .collect();
    Reply::Array(out)
}

fn function_stats(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let s = &ctx.state.scripting;
    Reply::Map(vec![
        (bulk("running_script"), Reply::Nil),
        (
            bulk("engines"),
            Reply::Map(vec![(
                bulk("LUA"),
                Reply::Map(vec![
                    (
                        bulk("libraries_count"),
                        Reply::Int(s.libraries.len() as i64),
                    ),
                    (
                        bulk("functions_count"),
                        Reply::Int(s.functions.len() as i64),
                    ),
                ]),
            )]),
        ),
    ])
}
