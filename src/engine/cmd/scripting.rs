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
        CommandSpec::new("debug", 3, NOSCRIPT, (0, 0, 0), "scripting", script_debug),
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
        CommandSpec::new("dump", 2, NOSCRIPT, (0, 0, 0), "scripting", function_dump),
        CommandSpec::new(
            "restore",
            -3,
            WRITE | DENYOOM | NOSCRIPT,
            (0, 0, 0),
            "scripting",
            function_restore,
        ),
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
        CommandSpec::new(
            "help",
            2,
            LOADING | STALE,
            (0, 0, 0),
            "scripting",
            function_help,
        ),
    ]),
];

/// SCRIPT DEBUG YES|SYNC|NO. Redis's Lua debugger (LDB) takes over the connection with its
/// own protocol and, in SYNC mode, blocks the server; the engine does not have it. NO (the
/// state every connection is in) is accepted, so tools that reset it work.
fn script_debug(_ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if is(&a[2], "no") {
        Reply::Ok
    } else if is(&a[2], "yes") || is(&a[2], "sync") {
        Reply::err_static(
            "ERR SCRIPT DEBUG YES/SYNC is not supported: redispair-engine has no Lua debugger (LDB)",
        )
    } else {
        Reply::err_static("ERR Use SCRIPT DEBUG YES/SYNC/NO")
    }
}

fn function_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    super::server::help_reply(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    )
}

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
        "    Prints this help.",
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
    // A count past the arguments is a syntax error: no keys at all (Redis's key specs call it
    // an invalid spec), so ACL DRYRUN says OK and EVAL itself gives the error.
    if 3 + n > args.len() {
        return Vec::new();
    }
    (3..3 + n).collect()
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
    allow_oom: bool,
) -> Reply {
    let opened = ctx.state.begin_effects_batch();
    let reply = scripting::run(ctx, command, program, keys, argv, read_only, allow_oom);
    if opened {
        ctx.state.end_effects_batch();
    }
    ctx.propagate_nothing();
    reply
}

/// The flags a script or function declared (a `#!lua flags=...` shebang, a function's
/// `flags`). Redis lets them replace the EVAL/FCALL command's own flags (`scriptFlagsToCmdFlags`):
/// without `no-writes` the call counts as a write, without `allow-oom` (or `no-writes`) as a
/// command that may grow memory, and only `allow-stale` lets it run on a stale replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
}

impl ScriptFlags {
    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> ScriptFlags {
        let mut f = ScriptFlags::default();
        for name in names {
            match name {
                "no-writes" => f.no_writes = true,
                "allow-oom" => f.allow_oom = true,
                "allow-stale" => f.allow_stale = true,
                _ => {}
            }
        }
        f
    }

    /// Counted as a command that may grow memory (refused over maxmemory).
    pub fn deny_oom(&self) -> bool {
        !self.allow_oom && !self.no_writes
    }
}

/// The flags the script or function that the EVAL, EVALSHA, FCALL (or their `_RO` forms) in
/// `args` runs declared; None when it declared none (a script without a shebang, which keeps
/// the command's own flags), when it is unknown, or for any other command.
pub fn declared_flags(
    state: &crate::engine::state::EngineState,
    args: &[Arg],
) -> Option<ScriptFlags> {
    let target = args.get(1)?;
    let cmd = &args[0];
    if is(cmd, "eval") || is(cmd, "eval_ro") {
        parse_shebang(target).ok().flatten()
    } else if is(cmd, "evalsha") || is(cmd, "evalsha_ro") {
        let sha = String::from_utf8_lossy(target).to_ascii_lowercase();
        let body = state.scripting.scripts.get(&sha)?;
        parse_shebang(body).ok().flatten()
    } else if is(cmd, "fcall") || is(cmd, "fcall_ro") {
        let name = String::from_utf8_lossy(target);
        let meta = state.scripting.find_function(&name)?;
        Some(ScriptFlags::from_names(
            meta.flags.iter().map(String::as_str),
        ))
    } else {
        None
    }
}

/// Whether the EVAL, EVALSHA or FCALL in `args` runs a script or function that declared
/// `no-writes` (Redis drops the command's `may-replicate` for it, so CLIENT PAUSE WRITE lets
/// it run). False for any other command.
pub fn declares_no_writes(state: &crate::engine::state::EngineState, args: &[Arg]) -> bool {
    declared_flags(state, args).is_some_and(|f| f.no_writes)
}

/// Parse an EVAL script's shebang line (`#!lua flags=no-writes,allow-oom`): None without one,
/// else the flags it declares. Split and checked as Redis 7.0.15's `evalExtractShebangFlags`
/// (its error texts; flag names match with case).
fn parse_shebang(body: &[u8]) -> Result<Option<ScriptFlags>, Reply> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err(Reply::err_static("ERR Invalid script shebang"));
    };
    let parts = match crate::engine::protocol::parse::split_args(&body[..end]) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err(Reply::err_static("ERR Invalid engine in script shebang")),
    };
    if parts[0] != b"#!lua" {
        return Err(Reply::error(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        )));
    }
    let mut names = Vec::new();
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(Reply::error(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            )));
        };
        // `flags=` declares none; otherwise every comma-separated name must be known (an
        // empty one too, as `sdssplitlen` yields it).
        if list.is_empty() {
            continue;
        }
        for flag in list.split(|&c| c == b',') {
            let flag = String::from_utf8_lossy(flag).into_owned();
            if !scripting::FUNCTION_FLAGS.contains(&flag.as_str()) {
                return Err(Reply::error(format!(
                    "ERR Unexpected flag in script shebang: {flag}"
                )));
            }
            names.push(flag);
        }
    }
    Ok(Some(ScriptFlags::from_names(
        names.iter().map(String::as_str),
    )))
}

/// Whether a script runs read-only; a shebang script without `no-writes` is refused by the
/// `_RO` variants up front.
fn script_read_only(ro: bool, shebang: Option<ScriptFlags>) -> Result<bool, Reply> {
    match shebang.map(|f| f.no_writes) {
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
    let shebang = match parse_shebang(&a[1]) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let read_only = match script_read_only(ro, shebang) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let allow_oom = shebang.is_some_and(|f| f.allow_oom);
    let sha = match scripting::load_script(ctx, &a[1]) {
        Ok(sha) => sha,
        Err(e) => return e,
    };
    run_batched(
        ctx,
        a,
        Program::Script(&sha),
        keys,
        argv,
        read_only,
        allow_oom,
    )
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
    let shebang = parse_shebang(&body).unwrap_or(None);
    let read_only = match script_read_only(ro, shebang) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let allow_oom = shebang.is_some_and(|f| f.allow_oom);
    run_batched(
        ctx,
        a,
        Program::Script(&sha),
        keys,
        argv,
        read_only,
        allow_oom,
    )
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
    let flags = match ctx.state.scripting.find_function(&name) {
        Some(m) => ScriptFlags::from_names(m.flags.iter().map(String::as_str)),
        None => return Reply::err_static("ERR Function not found"),
    };
    let no_writes = flags.no_writes;
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
        flags.allow_oom,
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

/// Redis's `addReplySubcommandSyntaxError` for FUNCTION's and SCRIPT's subcommands: the
/// subcommand as the client typed it.
fn subcommand_syntax_error(a: &[Arg]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(&a[1]),
        String::from_utf8_lossy(&a[0]).to_ascii_uppercase()
    ))
}

fn function_load(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    // Every argument before the last is an option (REPLACE, any number of times), as Redis
    // parses them.
    let mut replace = false;
    for opt in &a[2..a.len() - 1] {
        if !is(opt, "replace") {
            return Reply::error(format!("ERR Unknown option given: {}", lossy(opt)));
        }
        replace = true;
    }
    let code = &a[a.len() - 1];
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
    if a.len() > 3 {
        return subcommand_syntax_error(a);
    }
    if !flush_mode_ok(a) {
        return Reply::err_static("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    ctx.state.scripting.flush_functions();
    functions_changed(ctx);
    Reply::Ok
}

/// RDB opcode of a function library in Redis 7.0 (`RDB_OPCODE_FUNCTION2`): its code follows as
/// an RDB string.
const RDB_OPCODE_FUNCTION2: u8 = 245;
/// The opcode Redis 7.0's release candidates wrote (`RDB_OPCODE_FUNCTION`), refused.
const RDB_OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// FUNCTION DUMP: every library as Redis 7.0 serialises them (`rdbSaveFunctions`): per library
/// the FUNCTION2 opcode and its code as an RDB string (LZF-compressed when that pays), then the
/// DUMP footer (RDB version, CRC64). FUNCTION RESTORE on redis-server reads it, and the reverse.
fn function_dump(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    use crate::engine::storage::rdb;
    let mut out = Vec::new();
    for lib in ctx.state.scripting.libraries.values() {
        out.push(RDB_OPCODE_FUNCTION2);
        rdb::write_string(&mut out, &lib.code);
    }
    out.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Reply::Bulk(Bytes::from(out))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// FUNCTION RESTORE <payload> [FLUSH|APPEND|REPLACE], as Redis 7.0.15: the payload is checked
/// whole (footer, opcodes, each library's metadata) before anything changes, and a library that
/// fails to load undoes the libraries loaded before it, so a failed RESTORE leaves the
/// functions as they were. APPEND (the default) refuses a library that exists; REPLACE replaces
/// it; FLUSH drops every library first. Either way a function name may not clash with another
/// library's.
fn function_restore(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    use crate::engine::storage::rdb;
    if a.len() > 4 {
        return subcommand_syntax_error(a);
    }
    let policy =
        match a.get(3) {
            None => RestorePolicy::Append,
            Some(p) if is(p, "append") => RestorePolicy::Append,
            Some(p) if is(p, "replace") => RestorePolicy::Replace,
            Some(p) if is(p, "flush") => RestorePolicy::Flush,
            Some(_) => return Reply::err_static(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    let Some(body) = rdb::verify_payload(&a[2]) else {
        return Reply::err_static("ERR DUMP payload version or checksum are wrong");
    };
    let mut libraries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        match body[pos] {
            RDB_OPCODE_FUNCTION2 => {}
            RDB_OPCODE_FUNCTION_PRE_GA => {
                return Reply::err_static("ERR Pre-GA function format not supported")
            }
            _ => return Reply::err_static("ERR given type is not a function"),
        }
        let Ok((code, next)) = rdb::read_string_at(body, pos + 1) else {
            return Reply::err_static("ERR Failed loading library payload");
        };
        pos = next;
        let name = match scripting::parse_library_metadata(&code) {
            Ok(name) => name,
            Err(e) => return e,
        };
        // Redis loads the payload into a library set of its own first: a name twice is refused.
        if libraries.iter().any(|(n, _)| *n == name) {
            return Reply::error(format!("ERR Library '{name}' already exists"));
        }
        libraries.push((name, code));
    }
    let s = &mut ctx.state.scripting;
    if policy == RestorePolicy::Append {
        if let Some((name, _)) = libraries.iter().find(|(n, _)| s.libraries.contains_key(n)) {
            return Reply::error(format!("ERR Library {name} already exists"));
        }
    }
    let checkpoint = s.checkpoint();
    match policy {
        RestorePolicy::Flush => s.flush_functions(),
        // Redis removes every library being replaced before it looks for clashing function
        // names, so a payload may move a function from one of its libraries to another.
        RestorePolicy::Replace => {
            for (name, _) in &libraries {
                s.delete_library(name);
            }
        }
        RestorePolicy::Append => {}
    }
    for (_, code) in &libraries {
        if let Err(e) = scripting::load_library(s, code, false) {
            s.rollback(checkpoint);
            return e;
        }
    }
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
    // A second WITHCODE or LIBRARYNAME is an unknown argument, as in Redis.
    while i < a.len() {
        if !with_code && is(&a[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(&a[i], "libraryname") {
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
