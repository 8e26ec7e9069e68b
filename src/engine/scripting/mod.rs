//! Lua scripting runtime (Lua 5.1 through mlua): the interpreter with Redis's sandbox, the script
//! cache (sha1 → body), function libraries, Lua ↔ reply conversions, and `redis.call` running
//! commands through the normal `cmd::call` path. Pure (on the locked state; no I/O). Split by
//! concern: the interpreter and sandbox in `vm`, Lua ↔ reply conversions in `convert`, function
//! libraries in `functions`; running scripts (EVAL, FCALL, `redis.call`) and the script cache
//! here.
//!
//! One interpreter lives for the life of the engine (like Redis's `server.lua`). Everything a
//! script can see goes through read-only proxy tables: assignments to globals or to library
//! tables fail with "Attempt to modify a readonly table" and reading an unknown global fails with
//! "Script attempted to access nonexistent global variable", as Redis 7.0.15 does. Compiled
//! scripts and functions are kept in Lua tables owned by the internal prelude, keyed by sha1 or
//! function name, so EVALSHA and FCALL never recompile.
//!
//! `redis.call` needs `&mut Ctx` (the locked state) while Lua runs. The callback that captures
//! it is created inside `Lua::scope`, so it cannot outlive the command: after the scope, the Lua
//! side only holds a dead handle that is replaced on the next run.

mod cjson;
mod cmsgpack;
mod convert;
mod functions;
mod resp3_types;
mod vm;

pub use convert::*;
pub use functions::*;
pub(crate) use vm::new_vm;
use vm::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value, Variadic};

use crate::engine::cmd::{self, flags, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::{format_double, format_g, Reply};

/// Chunk name of the engine's own Lua code: frames from it are skipped when an error is located.
const INTERNAL_CHUNK: &str = "=redis_internal";
/// How long FUNCTION LOAD lets a library's code run.
const LOAD_TIMEOUT_MS: u64 = 500;
/// Nesting at which a script's reply is cut with "reached lua stack limit".
const MAX_REPLY_DEPTH: usize = 200;

/// Metadata of one function registered by a library.
#[derive(Debug, Clone)]
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
}

impl FunctionMeta {
    pub fn no_writes(&self) -> bool {
        self.flags.iter().any(|f| f == "no-writes")
    }
}

/// A library loaded with FUNCTION LOAD.
#[derive(Debug, Clone)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FunctionMeta>,
}

/// Script and function state kept across calls.
#[derive(Default)]
pub struct Scripting {
    /// Created on first use, so an engine that never runs scripts pays nothing.
    vm: Option<Lua>,
    /// What other connections may see and ask of the running script without the state lock
    /// (the script holds it): shared with the server (`Engine::script`).
    pub watch: Arc<ScriptWatch>,
    /// Cached script bodies by lowercase sha1 hex.
    pub scripts: HashMap<String, Bytes>,
    /// Libraries in load order (FUNCTION LIST shows them in this order).
    pub libraries: IndexMap<String, Library>,
    /// Function name ([`function_key`]: lowercase) → library name.
    pub functions: HashMap<String, String>,
}

/// The key of a function name: Redis 7.0 matches function names without case (FCALL TEST runs
/// `test`; a library may not register `TEST` beside another's `test`); library names keep
/// their case.
pub fn function_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The function libraries as they were, for undoing a FUNCTION RESTORE that fails halfway
/// ([`Scripting::checkpoint`]).
pub struct FunctionsCheckpoint {
    libraries: IndexMap<String, Library>,
    functions: HashMap<String, String>,
    /// The interpreter's table of compiled functions (the live one is a copy from then on).
    table: Option<Table>,
}

/// What FUNCTION STATS shows of the running script.
#[derive(Debug, Clone)]
pub struct RunningScript {
    /// EVAL/EVALSHA (true) or FCALL (false): picks the BUSY text and which KILL applies.
    pub is_eval: bool,
    /// The sha1 of a script, the name of a function.
    pub name: String,
    /// The command that runs it, as received.
    pub command: Vec<Bytes>,
    pub started_ms: i64,
    pub libraries: usize,
    pub functions: usize,
}

/// The running script as seen from outside the state lock (see docs/architecture.md, "Busy
/// scripts"). A script runs while its connection holds the state lock; once it has run longer
/// than `busy-reply-threshold` the Lua hook sets `busy`, and from then on other connections
/// stop waiting for the lock and answer their clients themselves: `-BUSY` for ordinary
/// commands, and SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE / FUNCTION STATS through this
/// struct (the hook polls `kill`).
#[derive(Default)]
pub struct ScriptWatch {
    /// Past busy-reply-threshold: other clients get BUSY.
    busy: AtomicBool,
    /// The script ran a command that changed the dataset (SCRIPT KILL answers UNKILLABLE).
    wrote: AtomicBool,
    /// 0: run on; [`KILL_USER`]: SCRIPT/FUNCTION KILL; [`KILL_SHUTDOWN`]: SHUTDOWN NOSAVE.
    kill: AtomicU8,
    running: parking_lot::Mutex<Option<RunningScript>>,
    /// Notified when a script ends (connections holding commands that must wait for it).
    pub done: tokio::sync::Notify,
}

const KILL_USER: u8 = 1;
const KILL_SHUTDOWN: u8 = 2;

/// Redis's replies to ordinary commands while a script is busy.
const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl ScriptWatch {
    /// True while a script runs past busy-reply-threshold. One relaxed load: every batch of
    /// every connection that finds the state lock taken checks it.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn begin(&self, running: RunningScript) {
        *self.running.lock() = Some(running);
        self.wrote.store(false, Ordering::Release);
        self.kill.store(0, Ordering::Release);
    }

    fn end(&self) {
        let was_busy = self.busy.swap(false, Ordering::AcqRel);
        self.kill.store(0, Ordering::Release);
        *self.running.lock() = None;
        if was_busy {
            self.done.notify_waiters();
        }
    }

    fn is_eval(&self) -> bool {
        self.running.lock().as_ref().is_none_or(|r| r.is_eval)
    }

    /// The `-BUSY` error for a command refused while the script runs.
    pub fn busy_error(&self) -> Reply {
        Reply::err_static(self.busy_text())
    }

    /// Its text (`BUSY Redis is busy running a script...`).
    pub fn busy_text(&self) -> &'static str {
        if self.is_eval() {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        }
    }

    /// SCRIPT KILL (`from_eval`) or FUNCTION KILL from another connection while busy, with
    /// Redis's answers (`scriptKill`).
    pub fn request_kill(&self, from_eval: bool) -> Reply {
        if !self.busy() {
            return Reply::err_static("NOTBUSY No scripts in execution right now.");
        }
        if self.wrote.load(Ordering::Acquire) {
            return Reply::err_static(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        let is_eval = self.is_eval();
        if from_eval && !is_eval {
            return Reply::err_static(BUSY_FUNCTION);
        }
        if !from_eval && is_eval {
            return Reply::err_static(BUSY_EVAL);
        }
        let _ = self
            .kill
            .compare_exchange(0, KILL_USER, Ordering::AcqRel, Ordering::Acquire);
        Reply::Ok
    }

    /// SHUTDOWN NOSAVE while busy: stop the script whatever it did (its connection then
    /// returns the error and the SHUTDOWN runs).
    pub fn request_shutdown_kill(&self) {
        self.kill.store(KILL_SHUTDOWN, Ordering::Release);
    }

    /// FUNCTION STATS while busy (the reply FUNCTION STATS gives under the lock, with the
    /// running script).
    pub fn stats_reply(&self, now_ms: i64) -> Reply {
        let bulk = |s: &str| Reply::bulk(Bytes::copy_from_slice(s.as_bytes()));
        let running = self.running.lock().clone();
        let (script, libraries, functions) = match running {
            None => (Reply::Nil, 0, 0),
            Some(r) => (
                Reply::Map(vec![
                    (bulk("name"), bulk(&r.name)),
                    (
                        bulk("command"),
                        Reply::Array(r.command.iter().cloned().map(Reply::Bulk).collect()),
                    ),
                    (
                        bulk("duration_ms"),
                        Reply::Int((now_ms - r.started_ms).max(0)),
                    ),
                ]),
                r.libraries,
                r.functions,
            ),
        };
        Reply::Map(vec![
            (bulk("running_script"), script),
            (
                bulk("engines"),
                Reply::Map(vec![(
                    bulk("LUA"),
                    Reply::Map(vec![
                        (bulk("libraries_count"), Reply::Int(libraries as i64)),
                        (bulk("functions_count"), Reply::Int(functions as i64)),
                    ]),
                )]),
            ),
        ])
    }
}

impl Scripting {
    /// The interpreter, created on first use.
    fn vm(&mut self) -> Result<Lua, String> {
        if let Some(vm) = &self.vm {
            return Ok(vm.clone());
        }
        let vm = new_vm(self.watch.clone())
            .map_err(|e| format!("ERR Lua initialisation failed: {e}"))?;
        self.vm = Some(vm.clone());
        Ok(vm)
    }

    /// SCRIPT FLUSH: forget every cached script.
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        if let Some(vm) = &self.vm {
            if let Ok(t) = vm.create_table() {
                let _ = internal(vm).and_then(|i| i.raw_set("scripts", t));
            }
            let _ = vm.gc_collect();
        }
    }

    /// FUNCTION FLUSH: forget every library.
    pub fn flush_functions(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        if let Some(vm) = &self.vm {
            if let Ok(t) = vm.create_table() {
                let _ = internal(vm).and_then(|i| i.raw_set("functions", t));
            }
        }
    }

    /// The function named `name` (matched without case) and its library's name.
    pub fn find_function(&self, name: &str) -> Option<&FunctionMeta> {
        let lib = self.functions.get(&function_key(name))?;
        self.libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Remember the libraries as they are, so that a multi-library change can be undone.
    pub fn checkpoint(&mut self) -> FunctionsCheckpoint {
        let table = self.vm.as_ref().and_then(|vm| {
            let internal = internal(vm).ok()?;
            let old: Table = internal.raw_get("functions").ok()?;
            let copy = vm.create_table().ok()?;
            for (k, v) in old.pairs::<Value, Value>().flatten() {
                copy.raw_set(k, v).ok()?;
            }
            internal.raw_set("functions", copy).ok()?;
            Some(old)
        });
        FunctionsCheckpoint {
            libraries: self.libraries.clone(),
            functions: self.functions.clone(),
            table,
        }
    }

    /// Put the libraries back as they were at `checkpoint`.
    pub fn rollback(&mut self, checkpoint: FunctionsCheckpoint) {
        self.libraries = checkpoint.libraries;
        self.functions = checkpoint.functions;
        if let (Some(vm), Some(table)) = (&self.vm, checkpoint.table) {
            let _ = internal(vm).and_then(|i| i.raw_set("functions", table));
        }
    }

    /// FUNCTION DELETE: false when the library does not exist.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.shift_remove(name) else {
            return false;
        };
        for f in &lib.functions {
            let key = function_key(&f.name);
            self.functions.remove(&key);
            if let Some(vm) = &self.vm {
                let _ = internal(vm)
                    .and_then(|i| i.raw_get::<Table>("functions"))
                    .and_then(|t| t.raw_set(key.as_str(), Value::Nil));
            }
        }
        true
    }
}

/// Run one command for `redis.call` / `redis.pcall` through the normal command path, with
/// Redis's script-specific refusals. The bool: an error reply was already counted in the error
/// statistics (every error does: a refusal here as Redis's `scriptCall` counts it, with a
/// rejected call of the command when it was found; a failure by `cmd::call`).
///
/// `skip_oom`: the script declared `allow-oom`, or already wrote (Redis cannot stop it halfway
/// then); `wrote`: it already wrote, which also lifts the NOREPLICAS refusal for the same
/// reason (`scriptVerifyWriteCommandAllow`, `scriptVerifyOOM`).
fn script_command(
    ctx: &mut Ctx<'_>,
    args: &[Arg],
    read_only: bool,
    skip_oom: bool,
    wrote: bool,
) -> (Reply, bool) {
    match script_command_checked(ctx, args, read_only, skip_oom, wrote) {
        Ok(reply) => {
            let failed = reply.is_error();
            (reply, failed)
        }
        Err((reply, found)) => {
            cmd::count_rejection(ctx.state, found, &reply);
            (reply, true)
        }
    }
}

type Found = Option<(&'static cmd::CommandSpec, Option<&'static cmd::CommandSpec>)>;

/// [`script_command`]'s checks and run; Err: refused, with the command when it was found.
fn script_command_checked(
    ctx: &mut Ctx<'_>,
    args: &[Arg],
    read_only: bool,
    skip_oom: bool,
    wrote: bool,
) -> Result<Reply, (Reply, Found)> {
    let (spec, parent) = match cmd::resolve(args) {
        Ok(x) => x,
        Err(_) => {
            let found = cmd::lookup(&args[0]).and_then(|spec| {
                if spec.subcommands.is_empty() || args.len() < 2 {
                    Some((spec, None))
                } else {
                    cmd::lookup_sub(spec, &args[1]).map(|sub| (sub, Some(spec)))
                }
            });
            return Err(if found.is_some() {
                (
                    Reply::err_static("ERR Wrong number of args calling Redis command from script"),
                    found,
                )
            } else {
                (
                    Reply::err_static("ERR Unknown Redis command called from script"),
                    None,
                )
            });
        }
    };
    let found = Some((spec, parent));
    let top = parent.unwrap_or(spec);
    if (spec.has(flags::NOSCRIPT) || top.has(flags::NOSCRIPT)) && !ctx.state.script_disable_deny {
        return Err((
            Reply::err_static("ERR This Redis command is not allowed from script"),
            found,
        ));
    }
    // MAY_REPLICATE too (PUBLISH, PFCOUNT), as Redis: CLIENT PAUSE WRITE lets read-only scripts
    // run, so they must not write by another road.
    if read_only
        && (spec.has(flags::WRITE) || top.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE))
    {
        return Err((
            Reply::err_static("ERR Write commands are not allowed from read-only scripts."),
            found,
        ));
    }
    if !ctx.client.is_replication {
        if let Err(d) = cmd::acl::check(
            ctx.state,
            ctx.client,
            spec,
            args,
            crate::engine::acl::LogContext::Lua,
            ctx.now_ms,
        ) {
            return Err((cmd::acl::script_reply(d), found));
        }
    }
    if let Some(err) = cmd::precheck_in_script(ctx.state, ctx.client, spec, top, skip_oom) {
        return Err((err, found));
    }
    if !wrote && (spec.has(flags::WRITE) || top.has(flags::WRITE)) && !ctx.client.is_replication {
        if let Some(err) = cmd::good_replicas_refusal(ctx.state, ctx.now_ms) {
            ctx.state.stats.rejected_calls += 1;
            return Err((err, found));
        }
    }
    let reply = cmd::call(ctx, spec, parent, args);
    // Blocking commands answer at once inside scripts (`may_block` is false).
    ctx.block = None;
    Ok(reply)
}

/// Convert `redis.call` arguments to command arguments; None when one is not a string/number.
fn command_args(args: &[Value]) -> Option<Vec<Arg>> {
    args.iter()
        .map(|v| match v {
            Value::String(s) => Some(Arg::copy_from_slice(&s.as_bytes())),
            Value::Number(n) => Some(Arg::from(format_call_number(*n))),
            Value::Integer(i) => Some(Arg::from(format_call_number(*i as f64))),
            _ => None,
        })
        .collect()
}

/// What to run: a cached script (by sha1) or a library function (by name).
pub enum Program<'a> {
    Script(&'a str),
    Function(&'a str),
}

/// Compile and cache a script body; returns its sha1. Error texts as SCRIPT LOAD / EVAL give them.
pub fn load_script(ctx: &mut Ctx<'_>, body: &[u8]) -> Result<String, Reply> {
    let sha = sha1_hex(body);
    if ctx.state.scripting.scripts.contains_key(&sha) {
        return Ok(sha);
    }
    let vm = ctx.state.scripting.vm().map_err(Reply::error)?;
    let compiled = compile(&vm, body, "@user_script", "script_env");
    let f = match compiled {
        Ok(f) => f,
        Err(msg) => {
            return Err(Reply::error(format!(
                "ERR Error compiling script (new function): {msg}"
            )))
        }
    };
    let stored = internal(&vm)
        .and_then(|i| i.raw_get::<Table>("scripts"))
        .and_then(|t| t.raw_set(sha.as_str(), f));
    if let Err(e) = stored {
        return Err(Reply::error(format!("ERR {e}")));
    }
    ctx.state
        .scripting
        .scripts
        .insert(sha.clone(), Bytes::copy_from_slice(body));
    Ok(sha)
}

/// Compile `body` with the shebang line commented out (line numbers stay the same).
fn compile(vm: &Lua, body: &[u8], name: &str, env: &str) -> Result<Function, String> {
    let mut code = body.to_vec();
    if code.starts_with(b"#!") {
        code[0] = b'-';
        code[1] = b'-';
    }
    let env: Table = internal(vm)
        .and_then(|i| i.raw_get(env))
        .map_err(|e| e.to_string())?;
    vm.load(code)
        .set_name(name)
        .set_environment(env)
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })
}

/// Run a script or function with KEYS/ARGV; `funcname` names it in error messages. Effects of
/// the commands it runs are propagated by `cmd::call` into the caller's effects batch.
pub fn run(
    ctx: &mut Ctx<'_>,
    command: &[Arg],
    program: Program<'_>,
    keys: &[Arg],
    argv: &[Arg],
    read_only: bool,
    allow_oom: bool,
) -> Reply {
    let vm = match ctx.state.scripting.vm() {
        Ok(vm) => vm,
        Err(e) => return Reply::error(e),
    };
    let watch = ctx.state.scripting.watch.clone();
    watch.begin(RunningScript {
        is_eval: matches!(program, Program::Script(_)),
        name: match &program {
            Program::Script(sha) => (*sha).to_string(),
            Program::Function(name) => (*name).to_string(),
        },
        command: command.iter().map(Arg::to_bytes).collect(),
        started_ms: epoch_ms(),
        libraries: ctx.state.scripting.libraries.len(),
        functions: ctx.state.scripting.functions.len(),
    });
    let saved_db = ctx.client.db;
    let saved_in_script = ctx.in_script;
    let saved_may_block = ctx.may_block;
    ctx.in_script = true;
    ctx.may_block = false;
    let funcname = match &program {
        Program::Script(sha) => (*sha).to_string(),
        Program::Function(name) => (*name).to_string(),
    };
    let result = run_in_vm(&vm, ctx, program, keys, argv, read_only, allow_oom);
    watch.end();
    // A SELECT inside the script does not change the caller's database.
    ctx.client.db = saved_db;
    ctx.in_script = saved_in_script;
    ctx.may_block = saved_may_block;
    match result {
        Ok(RunOutcome::Reply(r, counted)) => {
            ctx.error_counted = counted && r.is_error();
            r
        }
        Ok(RunOutcome::Failed {
            msg,
            source,
            line,
            counted,
        }) => {
            ctx.error_counted = counted;
            match (source, line) {
                (Some(source), Some(line)) => {
                    Reply::error(format!("{msg} script: {funcname}, on {source}:{line}."))
                }
                _ => Reply::error(msg),
            }
        }
        Err(e) => Reply::error(format!(
            "ERR Error running script {funcname}, {}",
            first_line(&e.to_string())
        )),
    }
}

/// How a run ended; `counted`: its error came from a command the script ran and was counted
/// in the error statistics then.
enum RunOutcome {
    Reply(Reply, bool),
    Failed {
        msg: String,
        source: Option<String>,
        line: Option<i64>,
        counted: bool,
    },
}

/// The field of an error table that marks it as counted already (see [`RunOutcome`]).
const COUNTED_KEY: &str = "ignore_error_stats_update";

fn run_in_vm(
    vm: &Lua,
    ctx: &mut Ctx<'_>,
    program: Program<'_>,
    keys: &[Arg],
    argv: &[Arg],
    read_only: bool,
    allow_oom: bool,
) -> mlua::Result<RunOutcome> {
    let internal = internal(vm)?;
    internal.raw_set("resp", 2)?;
    arm_deadline(vm, ctx.state.config.settings.busy_reply_threshold_ms)?;
    let strings = |items: &[Arg]| -> mlua::Result<Table> {
        let t = vm.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, vm.create_string(item)?)?;
        }
        Ok(t)
    };
    let (f, a, b): (Function, Value, Value) = match program {
        Program::Script(sha) => {
            let vars: Table = internal.raw_get("vars")?;
            vars.raw_set("KEYS", strings(keys)?)?;
            vars.raw_set("ARGV", strings(argv)?)?;
            let scripts: Table = internal.raw_get("scripts")?;
            (scripts.raw_get(sha)?, Value::Nil, Value::Nil)
        }
        Program::Function(name) => {
            let functions: Table = internal.raw_get("functions")?;
            (
                functions.raw_get(function_key(name))?,
                Value::Table(strings(keys)?),
                Value::Table(strings(argv)?),
            )
        }
    };
    let runner: Function = internal.raw_get("run")?;
    let redis: Table = internal.raw_get("redis")?;
    let ctx = std::cell::RefCell::new(ctx);
    let run_command = |lua: &Lua, args: &[Value]| -> mlua::Result<Result<Value, Value>> {
        let resp: u8 = internal.raw_get("resp").unwrap_or(2);
        if args.is_empty() {
            let t = error_table(
                lua,
                "ERR Please specify at least one argument for this redis lib call",
            )?;
            return Ok(Err(Value::Table(t)));
        }
        let Some(cmd_args) = command_args(args) else {
            let t = error_table(
                lua,
                "ERR Lua redis lib command arguments must be strings or integers",
            )?;
            return Ok(Err(Value::Table(t)));
        };
        let Ok(mut ctx) = ctx.try_borrow_mut() else {
            return Err(mlua::Error::RecursiveMutCallback);
        };
        let dirty_before = ctx.state.dirty;
        let wrote: bool = internal.raw_get("wrote").unwrap_or(false);
        let (reply, counted) =
            script_command(&mut ctx, &cmd_args, read_only, allow_oom || wrote, wrote);
        if ctx.state.dirty != dirty_before {
            internal.raw_set("wrote", true)?;
            ctx.state
                .scripting
                .watch
                .wrote
                .store(true, Ordering::Release);
        }
        let value = reply_to_lua(lua, &reply, resp)?;
        if let (true, Value::Table(t)) = (counted, &value) {
            // Returned by the script (pcall), or raised (call), this error must not be counted
            // again (Redis's `ignore_error_stats_update`).
            t.raw_set(COUNTED_KEY, true)?;
        }
        Ok(if reply.is_error() {
            Err(value)
        } else {
            Ok(value)
        })
    };
    vm.scope(|scope| {
        let call =
            scope.create_function(
                |lua, args: Variadic<Value>| match run_command(lua, &args)? {
                    Ok(v) => Ok(v),
                    Err(Value::Table(t)) => {
                        let text: String = t.raw_get("err").unwrap_or_default();
                        let counted: bool = t.raw_get(COUNTED_KEY).unwrap_or(false);
                        Err(raise_marked(lua, &text, counted))
                    }
                    Err(other) => Ok(other),
                },
            )?;
        let pcall = scope.create_function(|lua, args: Variadic<Value>| {
            Ok(match run_command(lua, &args)? {
                Ok(v) | Err(v) => v,
            })
        })?;
        // redis.acl_check_cmd(cmd, args...): whether the user running the script may run
        // that command with those arguments (Redis's luaRedisAclCheckCmdPermissionsCommand).
        let acl_check = scope.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(raise(
                    lua,
                    "ERR Please specify at least one argument for this redis lib call",
                ));
            }
            let Some(cmd_args) = command_args(&args) else {
                return Err(raise(
                    lua,
                    "ERR Lua redis lib command arguments must be strings or integers",
                ));
            };
            // Redis's lookupCommand: the subcommand when the command has subcommands and one
            // is given; no arity check.
            let spec = cmd::lookup(&cmd_args[0]).and_then(|spec| {
                if spec.subcommands.is_empty() || cmd_args.len() == 1 {
                    Some(spec)
                } else {
                    cmd::lookup_sub(spec, &cmd_args[1])
                }
            });
            let Some(spec) = spec else {
                return Err(raise(
                    lua,
                    "ERR Invalid command passed to redis.acl_check_cmd()",
                ));
            };
            let Ok(ctx) = ctx.try_borrow() else {
                return Err(mlua::Error::RecursiveMutCallback);
            };
            let allowed = ctx
                .state
                .acl
                .user(ctx.client.user.name())
                .is_some_and(|user| user.check(spec, &cmd_args).is_ok());
            Ok(allowed)
        })?;
        redis.raw_set("call", call)?;
        redis.raw_set("pcall", pcall)?;
        redis.raw_set("acl_check_cmd", acl_check)?;
        let (ok, value): (bool, Value) = runner.call((f, a, b))?;
        let resp: u8 = internal.raw_get("resp").unwrap_or(2);
        if ok {
            let counted = match &value {
                Value::Table(t) => t.raw_get::<bool>(COUNTED_KEY).unwrap_or(false),
                _ => false,
            };
            return Ok(RunOutcome::Reply(lua_to_reply(&value, resp, 0), counted));
        }
        Ok(match value {
            Value::Table(t) => {
                let msg = match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    Ok(other) => value_as_text(&other),
                    Err(_) => "ERR unknown error".to_string(),
                };
                RunOutcome::Failed {
                    msg,
                    source: t.raw_get::<Option<String>>("source").ok().flatten(),
                    line: t.raw_get::<Option<i64>>("line").ok().flatten(),
                    counted: t.raw_get::<bool>(COUNTED_KEY).unwrap_or(false),
                }
            }
            other => RunOutcome::Failed {
                msg: format!("ERR Error running script, {}", value_as_text(&other)),
                source: None,
                line: None,
                counted: false,
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_normalisation_matches_redis() {
        assert_eq!(normalise_error("-x"), "ERR x");
        assert_eq!(normalise_error("-x y"), "x y");
        assert_eq!(normalise_error("x"), "ERR x");
        assert_eq!(normalise_error("-WRONGTYPE Op\r\n"), "WRONGTYPE Op");
    }

    #[test]
    fn lua_numbers_truncate_like_redis() {
        assert_eq!(lua_number_to_int(3.99), 3);
        assert_eq!(lua_number_to_int(-3.99), -3);
        assert_eq!(lua_number_to_int(1e20), i64::MIN);
        assert_eq!(lua_number_to_int(f64::NAN), i64::MIN);
        assert_eq!(format_lua_number(2.5), "2.5");
        assert_eq!(format_lua_number(3.0), "3");
        assert_eq!(format_call_number(0.1), "0.10000000000000001");
        assert_eq!(format_call_number(123456789012345.0), "123456789012345");
        assert_eq!(format_call_number(1e20), "1e+20");
    }

    #[test]
    fn library_metadata() {
        assert_eq!(parse_library_metadata(b"#!lua name=a\n").unwrap(), "a");
        assert!(parse_library_metadata(b"return 1").is_err());
        assert!(parse_library_metadata(b"#!lua\n").is_err());
        assert!(parse_library_metadata(b"#!js name=x\n").is_err());
    }
}
