//! Lua scripting runtime (Lua 5.1 through mlua): the interpreter with Redis's sandbox, the script
//! cache (sha1 → body), function libraries, Lua ↔ reply conversions, and `redis.call` running
//! commands through the normal `cmd::call` path. Pure (on the locked state; no I/O).
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
mod resp3_types;

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
    /// Function name → library name.
    pub functions: HashMap<String, String>,
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

/// The Lua prelude: builds the `redis` table, the read-only environments and the runner. It
/// receives the internal table (shared with Rust) and the error handler.
const PRELUDE: &str = r#"
local internal, handler = ...
local G = _G
local error, type, tostring, setmetatable, rawget, xpcall, pcall, select =
      error, type, tostring, setmetatable, rawget, xpcall, pcall, select

local function readonly_error() error("Attempt to modify a readonly table", 2) end
local function readonly(t)
  return setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false})
end

internal.scripts = {}
internal.functions = {}
internal.vars = {}
internal.resp = 2
internal.loading = false

-- redis.call and redis.pcall are set by the engine for each run (they need the running
-- command's context); they are C functions so a tail call keeps the user's frame for errors.
local redis = {}
internal.redis = redis
redis.error_reply = internal.error_reply
redis.status_reply = function(s)
  if type(s) ~= 'string' then error({err = 'ERR wrong number or type of arguments'}) end
  return {ok = s}
end
redis.sha1hex = internal.sha1hex
redis.log = internal.log
redis.setresp = function(v)
  if v ~= 2 and v ~= 3 then error({err = 'ERR RESP version must be 2 or 3.'}) end
  internal.resp = v
end
redis.set_repl = function(v) end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION = internal.version
redis.REDIS_VERSION_NUM = internal.version_num

-- What FUNCTION LOAD's code may use while it registers its functions.
local load_api = {
  register_function = function(...)
    local err = internal.register(...)
    if err then error({err = err}) end
  end,
  log = redis.log,
  setresp = redis.setresp,
  REDIS_VERSION = redis.REDIS_VERSION,
  REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
}
local load_redis = setmetatable({}, {
  __index = function(t, k)
    local v = load_api[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly_error, __metatable = false})
local run_redis = readonly(redis)

-- Lua's pcall returns the message of Redis error tables, not the table (as Redis 7.0 does).
local function pcall_result(ok, ...)
  -- A script killed by the time bound stays killed even if it catches the error.
  if not ok and internal.killed then error(internal.kill_err) end
  if not ok then
    local e = ...
    if type(e) == 'userdata' then
      -- Raised by a Rust function: the real error waits in internal.pending_err.
      if internal.pending_err ~= nil then
        e = internal.pending_err
        internal.pending_err = nil
      else
        e = tostring(e)
      end
    end
    if type(e) == 'table' and e.err ~= nil then return false, e.err end
    return false, e
  end
  return ok, ...
end
-- Lua 5.1's pcall/xpcall push their status after all the results of the call; with more
-- results than the C stack reserve (cmsgpack.unpack can return hundreds) that overflows
-- ("L->top < L->ci->top"). So the call's results travel packed in one table.
local unpack = unpack
local function pack(...) return {n = select('#', ...), ...} end
local function unpacked(ok, r)
  if not ok then return pcall_result(ok, r) end
  return true, unpack(r, 1, r.n)
end
local lib = {
  string = readonly(string), math = readonly(math), table = readonly(table),
  bit = readonly(G.bit),
  cjson = readonly(G.cjson),
  cmsgpack = readonly(G.cmsgpack),
  pcall = function(f, ...)
    if type(f) ~= 'function' then return pcall_result(pcall(f, ...)) end
    return unpacked(pcall(function(...) return pack(f(...)) end, ...))
  end,
  xpcall = function(f, h)
    local function guard(ok, r)
      if not ok and internal.killed then error(internal.kill_err) end
      if not ok then return false, r end
      return true, unpack(r, 1, r.n)
    end
    if type(f) ~= 'function' then return xpcall(f, h) end
    return guard(xpcall(function() return pack(f()) end, h))
  end,
}
G.bit, G.cjson, G.cmsgpack = nil, nil, nil
G.loadfile, G.dofile, G.print = nil, nil, nil
G.getfenv, G.setfenv, G.newproxy = nil, nil, nil

local function make_env(vars)
  local env
  env = setmetatable({}, {
    __index = function(t, k)
      if k == 'redis' then
        if internal.loading then return load_redis end
        return run_redis
      end
      if k == '_G' then return env end
      local v
      if vars then v = rawget(vars, k); if v ~= nil then return v end end
      v = lib[k]; if v ~= nil then return v end
      v = rawget(G, k); if v ~= nil then return v end
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end,
    __newindex = readonly_error, __metatable = false})
  return env
end
internal.script_env = make_env(internal.vars)
internal.function_env = make_env(nil)

internal.run = function(f, a, b)
  -- Only the first result is the script's reply; keeping one also keeps xpcall's stack safe.
  return xpcall(function() return (f(a, b)) end, handler)
end
"#;

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

    /// FUNCTION DELETE: false when the library does not exist.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.shift_remove(name) else {
            return false;
        };
        for f in &lib.functions {
            self.functions.remove(&f.name);
            if let Some(vm) = &self.vm {
                let _ = internal(vm)
                    .and_then(|i| i.raw_get::<Table>("functions"))
                    .and_then(|t| t.raw_set(f.name.as_str(), Value::Nil));
            }
        }
        true
    }
}

fn internal(vm: &Lua) -> mlua::Result<Table> {
    vm.named_registry_value("redis_internal")
}

/// The interpreter scripts run in: Redis's libraries (`cjson`, `cmsgpack`, `bit`, `redis`) and
/// sandbox. Also built by `engine::fuzzing`, which feeds the libraries untrusted bytes.
pub(crate) fn new_vm(watch: Arc<ScriptWatch>) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    let internal = lua.create_table()?;
    internal.raw_set("version", crate::engine::REDIS_VERSION)?;
    internal.raw_set("version_num", crate::engine::REDIS_VERSION_NUM)?;
    internal.raw_set(
        "error_reply",
        lua.create_function(|lua, v: Value| {
            let Value::String(s) = v else {
                return error_table(lua, "ERR wrong number or type of arguments");
            };
            // error_reply prefixes '-' when missing, then the code is parsed like any reply.
            let raw = s.as_bytes().to_vec();
            let text = if raw.first() == Some(&b'-') {
                String::from_utf8_lossy(&raw).into_owned()
            } else {
                format!("-{}", String::from_utf8_lossy(&raw))
            };
            error_table(lua, &normalise_error(&text))
        })?,
    )?;
    internal.raw_set(
        "sha1hex",
        lua.create_function(|_, v: Value| {
            let bytes = match &v {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Number(n) => format_lua_number(*n).into_bytes(),
                Value::Integer(i) => format_lua_number(*i as f64).into_bytes(),
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "wrong number of arguments".to_string(),
                    ))
                }
            };
            Ok(sha1_hex(&bytes))
        })?,
    )?;
    internal.raw_set(
        "log",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() < 2 {
                return Err(raise(
                    lua,
                    "ERR redis.log() requires two arguments or more.",
                ));
            }
            let level = match args.first() {
                Some(Value::Integer(i)) => *i,
                Some(Value::Number(n)) => *n as i64,
                _ => -1,
            };
            if !(0..=3).contains(&level) {
                return Err(raise(lua, "ERR Invalid debug level."));
            }
            let msg: Vec<String> = args[1..].iter().map(value_as_text).collect();
            let msg = msg.join(" ");
            match level {
                0 => tracing::debug!(target: "lua", "{msg}"),
                1 => tracing::trace!(target: "lua", "{msg}"),
                2 => tracing::info!(target: "lua", "{msg}"),
                _ => tracing::warn!(target: "lua", "{msg}"),
            }
            Ok(())
        })?,
    )?;
    lua.globals().raw_set("bit", bit_library(&lua)?)?;
    lua.globals().raw_set("cjson", cjson::library(&lua)?)?;
    lua.globals()
        .raw_set("cmsgpack", cmsgpack::library(&lua)?)?;
    let handler = lua.create_function(locate_error)?;
    lua.load(PRELUDE)
        .set_name(INTERNAL_CHUNK)
        .call::<()>((internal.clone(), handler))?;
    lua.set_named_registry_value("redis_internal", internal)?;
    // The time bound, checked every 100 000 instructions (as Redis does). A script past
    // busy-reply-threshold is marked busy so other connections answer BUSY (they cannot take
    // the state lock it holds) and may ask it to stop with SCRIPT KILL / FUNCTION KILL; it is
    // stopped here, from inside Lua. FUNCTION LOAD's code gets a fixed 500 ms instead, after
    // which the load fails.
    lua.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(100_000),
        move |lua, _| {
            let i = self::internal(lua)?;
            let deadline: f64 = i.raw_get("deadline").unwrap_or(0.0);
            let past = deadline > 0.0 && epoch_ms() as f64 > deadline;
            if i.raw_get("loading").unwrap_or(false) {
                if past {
                    return Err(kill(lua, &i, "FUNCTION LOAD timeout"));
                }
                return Ok(mlua::VmState::Continue);
            }
            if past && !watch.busy.load(Ordering::Relaxed) {
                watch.busy.store(true, Ordering::Release);
                tracing::warn!(
                    "Slow script detected: still in execution after the busy-reply-threshold; \
                     other clients get BUSY until it ends or SCRIPT KILL / FUNCTION KILL stops it"
                );
            }
            if watch.kill.load(Ordering::Acquire) != 0 {
                return Err(kill(
                    lua,
                    &i,
                    "ERR Script killed by user with SCRIPT KILL...",
                ));
            }
            Ok(mlua::VmState::Continue)
        },
    )?;
    Ok(lua)
}

/// Stop the running Lua code with `text`; it stays stopped even if it catches the error (the
/// prelude's pcall/xpcall re-raise while `killed` is set).
fn kill(lua: &Lua, internal: &Table, text: &str) -> mlua::Error {
    let _ = internal.raw_set("killed", true);
    if let Ok(t) = error_table(lua, text) {
        let _ = internal.raw_set("kill_err", t);
    }
    raise(lua, text)
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Arm the time bound for the run about to start (0 disables it).
fn arm_deadline(vm: &Lua, threshold_ms: u64) -> mlua::Result<()> {
    let i = internal(vm)?;
    let deadline = if threshold_ms == 0 {
        0.0
    } else {
        (epoch_ms() + threshold_ms as i64) as f64
    };
    i.raw_set("deadline", deadline)?;
    i.raw_set("loading", false)?;
    i.raw_set("killed", false)?;
    i.raw_set("pending_err", Value::Nil)?;
    i.raw_set("wrote", false)
}

fn value_as_text(v: &Value) -> String {
    match v {
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        Value::Number(n) => format_lua_number(*n),
        Value::Integer(i) => format_lua_number(*i as f64),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".to_string(),
        other => other.type_name().to_string(),
    }
}

pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Lua 5.1's `tostring` of a number (`%.14g`).
fn format_lua_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format_g(n, 14)
}

/// A number passed to `redis.call`: Redis 7.0 formats it with `%.17g` (not Lua's `%.14g`), and
/// NaN from 0/0 carries the sign bit on x86 ("-nan").
fn format_call_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format_g(n, 17)
}

/// Redis's shape of an error message inside Lua: "CODE message". A reply that starts with '-'
/// carries its code as the first word; without a word after it, or without '-', the code is ERR.
fn normalise_error(text: &str) -> String {
    let msg = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => format!("{code} {msg}"),
            None => format!("ERR {rest}"),
        },
        None => format!("ERR {text}"),
    };
    msg.trim_end_matches(['\r', '\n']).to_string()
}

fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(t)
}

/// The message handler of every script run (Redis's `__redis__err__handler`): turns the error
/// into a table `{err=..., source=..., line=...}` pointing at the user's code.
fn locate_error(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let table = match err {
        Value::Table(t) => t,
        Value::String(s) => error_table(
            lua,
            &format!("ERR {}", String::from_utf8_lossy(&s.as_bytes())),
        )?,
        Value::Error(e) => match take_pending_error(lua) {
            Some(t) => t,
            None => {
                let text = e.to_string();
                let text = first_line(&text);
                let text = text.strip_prefix("runtime error: ").unwrap_or(text);
                error_table(lua, &format!("ERR {text}"))?
            }
        },
        other => error_table(lua, &format!("ERR {}", value_as_text(&other)))?,
    };
    // Level 0 is this handler; the first frame that is neither C nor the engine's prelude is
    // the user's code that raised (or called the function that raised).
    for level in 1..12 {
        let frame = lua.inspect_stack(level, |d| {
            let s = d.source();
            (s.what, s.source.map(|x| x.into_owned()), d.current_line())
        });
        let Some((what, source, line)) = frame else {
            break;
        };
        if what == "C" || source.as_deref() == Some(INTERNAL_CHUNK) {
            continue;
        }
        if let (Some(source), Some(line)) = (source, line) {
            table.raw_set("source", source)?;
            table.raw_set("line", line)?;
        }
        break;
    }
    Ok(table)
}

/// Raise `{err = text}` from a Rust callback. mlua can only raise its own error userdata, so
/// the table waits in `internal.pending_err` for the message handler (or Lua's pcall) to pick up.
fn raise(lua: &Lua, text: &str) -> mlua::Error {
    let stored = internal(lua)
        .and_then(|i| error_table(lua, text).and_then(|t| i.raw_set("pending_err", t)));
    if let Err(e) = stored {
        return e;
    }
    mlua::Error::RuntimeError(text.to_string())
}

/// Raise a plain Lua error message prefixed with the calling line ("user_script:1: ..."), the
/// way `luaL_error` in a C library does.
fn raise_located(lua: &Lua, msg: &str) -> mlua::Error {
    // Level 0 is the Rust function itself; level 1 is its caller.
    let place = lua
        .inspect_stack(1, |d| {
            let src = d.source();
            if src.source.as_deref() == Some(INTERNAL_CHUNK) {
                return None;
            }
            match (src.what, src.short_src, d.current_line()) {
                ("C", ..) => None,
                (_, Some(short), Some(line)) => Some(format!("{short}:{line}: ")),
                _ => None,
            }
        })
        .flatten()
        .unwrap_or_default();
    let text = format!("{place}{msg}");
    let stored = internal(lua).and_then(|i| i.raw_set("pending_err", text.as_str()));
    if let Err(e) = stored {
        return e;
    }
    mlua::Error::RuntimeError(text)
}

/// The error a Rust function raised through `raise` or `raise_located`, as an error table.
fn take_pending_error(lua: &Lua) -> Option<Table> {
    let i = internal(lua).ok()?;
    let pending = i.raw_get::<Value>("pending_err").ok()?;
    let _ = i.raw_set("pending_err", Value::Nil);
    match pending {
        Value::Table(t) => Some(t),
        Value::String(s) => error_table(
            lua,
            &format!("ERR {}", String::from_utf8_lossy(&s.as_bytes())),
        )
        .ok(),
        _ => None,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The `bit` library (LuaBitOp's API on 32-bit integers), in Rust because vendored Lua 5.1 has
/// none.
fn bit_library(lua: &Lua) -> mlua::Result<Table> {
    fn tobit(n: f64) -> i32 {
        if !n.is_finite() {
            return 0;
        }
        // LuaBitOp normalises by rounding to nearest and wrapping modulo 2^32.
        n.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32
    }
    fn arg(v: &Value, pos: usize, name: &str) -> mlua::Result<i32> {
        match v {
            Value::Integer(i) => Ok(tobit(*i as f64)),
            Value::Number(n) => Ok(tobit(*n)),
            Value::String(s) => {
                let text = String::from_utf8_lossy(&s.as_bytes()).trim().to_string();
                text.parse::<f64>()
                    .map(tobit)
                    .map_err(|_| bad_arg(pos, name))
            }
            _ => Err(bad_arg(pos, name)),
        }
    }
    fn bad_arg(pos: usize, name: &str) -> mlua::Error {
        mlua::Error::RuntimeError(format!("bad argument #{pos} to '{name}' (number expected)"))
    }
    type Fold = fn(i32, i32) -> i32;
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(arg(&v, 1, "tobit")? as f64))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!arg(&v, 1, "bnot")? as f64))?,
    )?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(arg(&v, 1, "bswap")?.swap_bytes() as f64))?,
    )?;
    let folds: [(&str, Fold); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |_, args: Variadic<Value>| {
                let mut acc = arg(args.first().unwrap_or(&Value::Nil), 1, name)?;
                for (i, v) in args.iter().enumerate().skip(1) {
                    acc = op(acc, arg(v, i + 1, name)?);
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    let shifts: [(&str, Fold); 5] = [
        ("lshift", |a, n| ((a as u32) << (n & 31)) as i32),
        ("rshift", |a, n| ((a as u32) >> (n & 31)) as i32),
        ("arshift", |a, n| a >> (n & 31)),
        ("rol", |a, n| (a as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |a, n| {
            (a as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |_, (a, n): (Value, Value)| {
                Ok(op(arg(&a, 1, name)?, arg(&n, 2, name)?) as f64)
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = arg(&v, 1, "tohex")? as u32;
            let n = match n {
                Some(n) => arg(&n, 2, "tohex")?,
                None => 8,
            };
            let (upper, width) = if n < 0 {
                (true, n.unsigned_abs().min(8))
            } else {
                (false, (n as u32).min(8))
            };
            let full = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(full[8 - width as usize..].to_string())
        })?,
    )?;
    Ok(t)
}

/// Lua number → integer reply, as Redis's `(long long)` cast on x86: truncation toward zero,
/// and the "integer indefinite" value for NaN and out-of-range numbers.
fn lua_number_to_int(n: f64) -> i64 {
    // 2^63 is exactly representable; i64's range as f64 is [-2^63, 2^63).
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_POW_63..TWO_POW_63).contains(&n) {
        return i64::MIN;
    }
    n.trunc() as i64
}

/// A Lua value returned by a script → the reply sent to the client (Redis's
/// `luaReplyToRedisReply`). `resp` is the version chosen with `redis.setresp`.
pub fn lua_to_reply(v: &Value, resp: u8, depth: usize) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Boolean(b) => {
            if resp >= 3 {
                Reply::Bool(*b)
            } else if *b {
                Reply::Int(1)
            } else {
                Reply::Nil
            }
        }
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(lua_number_to_int(*n)),
        Value::String(s) => Reply::Bulk(Bytes::from(s.as_bytes().to_vec())),
        Value::Table(t) => table_to_reply(t, resp, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: &Table, resp: u8, depth: usize) -> Reply {
    // Redis stops at Lua's stack limit (about 8000 levels); we stop earlier so that a
    // self-referencing table cannot exhaust the worker thread's stack.
    if depth >= MAX_REPLY_DEPTH {
        return Reply::err_static("ERR reached lua stack limit");
    }
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        return Reply::Error(Bytes::from(e.as_bytes().to_vec()));
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        // A status line cannot hold CR/LF; Redis turns them into spaces.
        let text: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect();
        return Reply::Status(Bytes::from(text));
    }
    // Redis looks for the RESP3 shapes whatever the protocol; the client's encoder then
    // downgrades them for RESP2.
    {
        match t.raw_get::<Value>("double") {
            Ok(Value::Number(n)) => return Reply::Double(n),
            Ok(Value::Integer(i)) => return Reply::Double(i as f64),
            _ => {}
        }
        if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
            let mut pairs = Vec::new();
            for (k, v) in m.pairs::<Value, Value>().flatten() {
                pairs.push((
                    lua_to_reply(&k, resp, depth + 1),
                    lua_to_reply(&v, resp, depth + 1),
                ));
            }
            return Reply::Map(pairs);
        }
        if let Some(r) = resp3_types::lua_table_to_reply(t) {
            return r;
        }
        if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
            let mut items = Vec::new();
            for (k, _) in s.pairs::<Value, Value>().flatten() {
                items.push(lua_to_reply(&k, resp, depth + 1));
            }
            return Reply::Set(items);
        }
    }
    // An array stops at the first nil, like Redis.
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_reply(&v, resp, depth + 1)),
        }
        i += 1;
    }
    Reply::Array(items)
}

/// A command's reply → the Lua value `redis.call` returns (Redis's `redisProtocolToLuaType`),
/// for protocol `resp` (2 or 3, set by `redis.setresp`).
fn reply_to_lua(lua: &Lua, r: &Reply, resp: u8) -> mlua::Result<Value> {
    let seq = |items: &[Reply]| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, reply_to_lua(lua, item, resp)?)?;
        }
        Ok(Value::Table(t))
    };
    Ok(match r {
        Reply::Ok => {
            let t = lua.create_table()?;
            t.raw_set("ok", "OK")?;
            Value::Table(t)
        }
        Reply::Status(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s)?)?;
            Value::Table(t)
        }
        Reply::Error(e) => {
            let text = normalise_error(&format!("-{}", String::from_utf8_lossy(e)));
            Value::Table(error_table(lua, &text)?)
        }
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Verbatim(b) if resp >= 3 => resp3_types::verbatim_to_lua(lua, b)?,
        Reply::Bulk(b) | Reply::Verbatim(b) => Value::String(lua.create_string(b)?),
        Reply::SmallBulk(b) => Value::String(lua.create_string(b.as_slice())?),
        Reply::Nil | Reply::NilArray => {
            if resp >= 3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Push(items) => seq(items)?,
        Reply::Set(items) => {
            if resp >= 3 {
                let set = lua.create_table()?;
                for item in items {
                    set.raw_set(reply_to_lua(lua, item, resp)?, true)?;
                }
                let t = lua.create_table()?;
                t.raw_set("set", set)?;
                Value::Table(t)
            } else {
                seq(items)?
            }
        }
        Reply::Map(pairs) => {
            if resp >= 3 {
                let map = lua.create_table()?;
                for (k, v) in pairs {
                    map.raw_set(reply_to_lua(lua, k, resp)?, reply_to_lua(lua, v, resp)?)?;
                }
                let t = lua.create_table()?;
                t.raw_set("map", map)?;
                Value::Table(t)
            } else {
                let flat: Vec<Reply> = pairs
                    .iter()
                    .flat_map(|(k, v)| [k.clone(), v.clone()])
                    .collect();
                seq(&flat)?
            }
        }
        Reply::Double(d) => {
            if resp >= 3 {
                let t = lua.create_table()?;
                t.raw_set("double", *d)?;
                Value::Table(t)
            } else {
                Value::String(lua.create_string(format_double(*d))?)
            }
        }
        Reply::Bool(b) => {
            if resp >= 3 {
                Value::Boolean(*b)
            } else {
                Value::Number(if *b { 1.0 } else { 0.0 })
            }
        }
        // RESP3 types only DEBUG PROTOCOL makes: see cmd/debug_protocol.rs.
        Reply::BigNum(_) | Reply::Attribute(_) => {
            resp3_types::reply_to_lua(lua, r, resp, reply_to_lua)?
        }
        Reply::Raw(_) | Reply::NoReply => Value::Boolean(false),
    })
}

/// Run one command for `redis.call` / `redis.pcall` through the normal command path, with
/// Redis's script-specific refusals.
fn script_command(ctx: &mut Ctx<'_>, args: &[Arg], read_only: bool) -> Reply {
    let (spec, parent) = match cmd::resolve(args) {
        Ok(x) => x,
        Err(_) => {
            let known = cmd::lookup(&args[0]).is_some_and(|spec| {
                spec.subcommands.is_empty()
                    || args.len() < 2
                    || args
                        .get(1)
                        .is_some_and(|sub| cmd::lookup_sub(spec, sub).is_some())
            });
            return if known {
                Reply::err_static("ERR Wrong number of args calling Redis command from script")
            } else {
                Reply::err_static("ERR Unknown Redis command called from script")
            };
        }
    };
    let top = parent.unwrap_or(spec);
    if (spec.has(flags::NOSCRIPT) || top.has(flags::NOSCRIPT)) && !ctx.state.script_disable_deny {
        return Reply::err_static("ERR This Redis command is not allowed from script");
    }
    // MAY_REPLICATE too (PUBLISH, PFCOUNT), as Redis: CLIENT PAUSE WRITE lets read-only scripts
    // run, so they must not write by another road.
    if read_only
        && (spec.has(flags::WRITE) || top.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE))
    {
        return Reply::err_static("ERR Write commands are not allowed from read-only scripts.");
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
            return cmd::acl::script_reply(d);
        }
    }
    if let Some(err) = cmd::precheck(ctx.state, ctx.client, spec, top) {
        return err;
    }
    let reply = cmd::call(ctx, spec, parent, args);
    // Blocking commands answer at once inside scripts (`may_block` is false).
    ctx.block = None;
    reply
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
    let result = run_in_vm(&vm, ctx, program, keys, argv, read_only);
    watch.end();
    // A SELECT inside the script does not change the caller's database.
    ctx.client.db = saved_db;
    ctx.in_script = saved_in_script;
    ctx.may_block = saved_may_block;
    match result {
        Ok(RunOutcome::Reply(r)) => r,
        Ok(RunOutcome::Failed { msg, source, line }) => match (source, line) {
            (Some(source), Some(line)) => {
                Reply::error(format!("{msg} script: {funcname}, on {source}:{line}."))
            }
            _ => Reply::error(msg),
        },
        Err(e) => Reply::error(format!(
            "ERR Error running script {funcname}, {}",
            first_line(&e.to_string())
        )),
    }
}

enum RunOutcome {
    Reply(Reply),
    Failed {
        msg: String,
        source: Option<String>,
        line: Option<i64>,
    },
}

fn run_in_vm(
    vm: &Lua,
    ctx: &mut Ctx<'_>,
    program: Program<'_>,
    keys: &[Arg],
    argv: &[Arg],
    read_only: bool,
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
                functions.raw_get(name)?,
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
        let reply = script_command(&mut ctx, &cmd_args, read_only);
        if ctx.state.dirty != dirty_before {
            internal.raw_set("wrote", true)?;
            ctx.state
                .scripting
                .watch
                .wrote
                .store(true, Ordering::Release);
        }
        let value = reply_to_lua(lua, &reply, resp)?;
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
                        Err(raise(lua, &text))
                    }
                    Err(other) => Ok(other),
                },
            )?;
        let pcall = scope.create_function(|lua, args: Variadic<Value>| {
            Ok(match run_command(lua, &args)? {
                Ok(v) | Err(v) => v,
            })
        })?;
        redis.raw_set("call", call)?;
        redis.raw_set("pcall", pcall)?;
        let (ok, value): (bool, Value) = runner.call((f, a, b))?;
        let resp: u8 = internal.raw_get("resp").unwrap_or(2);
        if ok {
            return Ok(RunOutcome::Reply(lua_to_reply(&value, resp, 0)));
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
                }
            }
            other => RunOutcome::Failed {
                msg: format!("ERR Error running script, {}", value_as_text(&other)),
                source: None,
                line: None,
            },
        })
    })
}

/// FUNCTION LOAD: parse the metadata line, run the code to collect its functions, and install
/// the library. Error texts as Redis 7.0.
pub fn load_library(
    scripting: &mut Scripting,
    code: &[u8],
    replace: bool,
) -> Result<String, Reply> {
    let name = parse_library_metadata(code)?;
    if scripting.libraries.contains_key(&name) && !replace {
        return Err(Reply::error(format!("ERR Library '{name}' already exists")));
    }
    let vm = scripting.vm().map_err(Reply::error)?;
    let chunk = compile(&vm, code, "@user_function", "function_env")
        .map_err(|msg| Reply::error(format!("ERR Error compiling function: {msg}")))?;
    // Redis gives a library's loading code 500 ms (`LOAD_TIMEOUT_MS`), whatever
    // busy-reply-threshold says.
    arm_deadline(&vm, LOAD_TIMEOUT_MS)
        .and_then(|()| internal(&vm)?.raw_set("loading", true))
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    let registered = register_functions(&vm, chunk);
    let _ = internal(&vm).and_then(|i| i.raw_set("loading", false));
    let registered = registered.map_err(|e| match e {
        RegisterError::Lua(e) => Reply::error(format!(
            "ERR Error registering functions: {}",
            first_line(&e.to_string())
        )),
        RegisterError::Script(msg) => {
            Reply::error(format!("ERR Error registering functions: {msg}"))
        }
    })?;
    if registered.is_empty() {
        return Err(Reply::err_static("ERR No functions registered"));
    }
    for (meta, _) in &registered {
        if let Some(owner) = scripting.functions.get(&meta.name) {
            if *owner != name {
                return Err(Reply::error(format!(
                    "ERR Function {} already exists",
                    meta.name
                )));
            }
        }
    }
    scripting.delete_library(&name);
    let table: Table = internal(&vm)
        .and_then(|i| i.raw_get("functions"))
        .map_err(|e| Reply::error(format!("ERR {e}")))?;
    let mut metas = Vec::new();
    for (meta, f) in registered {
        table
            .raw_set(meta.name.as_str(), f)
            .map_err(|e| Reply::error(format!("ERR {e}")))?;
        scripting.functions.insert(meta.name.clone(), name.clone());
        metas.push(meta);
    }
    scripting.libraries.insert(
        name.clone(),
        Library {
            name: name.clone(),
            code: Bytes::copy_from_slice(code),
            functions: metas,
        },
    );
    Ok(name)
}

fn parse_library_metadata(code: &[u8]) -> Result<String, Reply> {
    let Some(rest) = code.strip_prefix(b"#!") else {
        return Err(Reply::err_static("ERR Missing library metadata"));
    };
    let line_end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..line_end]).into_owned();
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    let mut name = None;
    for w in words {
        match w.strip_prefix("name=") {
            Some(n) => name = Some(n.to_string()),
            None => {
                return Err(Reply::error(format!(
                    "ERR Invalid metadata value given: {w}"
                )))
            }
        }
    }
    let Some(name) = name else {
        return Err(Reply::err_static("ERR Library name was not given"));
    };
    if !valid_name(&name) {
        return Err(Reply::err_static(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

enum RegisterError {
    Lua(mlua::Error),
    Script(String),
}

impl From<mlua::Error> for RegisterError {
    fn from(e: mlua::Error) -> Self {
        RegisterError::Lua(e)
    }
}

/// Run the library's code in load mode and collect what it registers.
fn register_functions(
    vm: &Lua,
    chunk: Function,
) -> Result<Vec<(FunctionMeta, Function)>, RegisterError> {
    let internal = internal(vm)?;
    let runner: Function = internal.raw_get("run")?;
    let mut registered: Vec<(FunctionMeta, Function)> = Vec::new();
    internal.raw_set("loading", true)?;
    let outcome = vm.scope(|scope| {
        let register = scope.create_function_mut(|_, args: Variadic<Value>| {
            Ok(parse_registration(&args, &mut registered).err())
        })?;
        internal.raw_set("register", register)?;
        runner.call::<(bool, Value)>((chunk, Value::Nil, Value::Nil))
    });
    internal.raw_set("loading", false)?;
    let (ok, value) = outcome?;
    if !ok {
        let msg = match value {
            Value::Table(t) => match t.raw_get::<Value>("err") {
                Ok(v) => value_as_text(&v),
                Err(e) => e.to_string(),
            },
            other => value_as_text(&other),
        };
        return Err(RegisterError::Script(msg));
    }
    Ok(registered)
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags=..., description=...}`; Err is the error text raised in Lua.
fn parse_registration(
    args: &[Value],
    out: &mut Vec<(FunctionMeta, Function)>,
) -> Result<(), String> {
    let (name, callback, flags, description) = match args {
        [Value::Table(t)] => {
            let mut name = None;
            let mut callback = None;
            let mut flags = Vec::new();
            let mut description = None;
            for (k, v) in t.pairs::<Value, Value>().flatten() {
                let key = value_as_text(&k);
                match (key.as_str(), v) {
                    ("function_name", Value::String(s)) => {
                        name = Some(String::from_utf8_lossy(&s.as_bytes()).into_owned())
                    }
                    ("callback", Value::Function(f)) => callback = Some(f),
                    ("description", Value::String(s)) => {
                        description = Some(String::from_utf8_lossy(&s.as_bytes()).into_owned())
                    }
                    ("flags", Value::Table(ft)) => {
                        for f in ft.sequence_values::<Value>().flatten() {
                            let flag = value_as_text(&f);
                            if !matches!(
                                flag.as_str(),
                                "no-writes"
                                    | "allow-oom"
                                    | "allow-stale"
                                    | "no-cluster"
                                    | "allow-cross-slot-keys"
                            ) {
                                return Err("ERR unknown flag given".to_string());
                            }
                            flags.push(flag);
                        }
                    }
                    ("function_name" | "callback" | "description" | "flags", _) => {
                        return Err(format!("ERR {key} argument given to redis.register_function must be of the right type"));
                    }
                    _ => return Err("ERR unknown argument given to redis.register_function".to_string()),
                }
            }
            let Some(name) = name else {
                return Err("ERR redis.register_function must get a function name argument".to_string());
            };
            let Some(callback) = callback else {
                return Err("ERR redis.register_function must get a callback argument".to_string());
            };
            (name, callback, flags, description)
        }
        [Value::String(n), Value::Function(f)] => (
            String::from_utf8_lossy(&n.as_bytes()).into_owned(),
            f.clone(),
            Vec::new(),
            None,
        ),
        [_] => return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".to_string()),
        _ => return Err("ERR wrong number of arguments to redis.register_function".to_string()),
    };
    if !valid_name(&name) {
        // Redis 7.0 says "Library names" here too.
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".to_string());
    }
    if out.iter().any(|(m, _)| m.name == name) {
        return Err("ERR Function already exists in the library".to_string());
    }
    out.push((
        FunctionMeta {
            name,
            description,
            flags,
        },
        callback,
    ));
    Ok(())
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
