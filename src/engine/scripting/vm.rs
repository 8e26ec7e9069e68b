//! The interpreter and its sandbox: the internal prelude (read-only proxies, `redis.*`), the
//! script deadline and kill, the `bit` library, and Lua errors shaped as Redis shapes them. Pure.

use super::*;

/// The Lua prelude: builds the `redis` table, the read-only environments and the runner. It
/// receives the internal table (shared with Rust) and the error handler.
pub(super) const PRELUDE: &str = r#"
local internal, handler = ...
local G = _G
local error, type, tostring, setmetatable, getmetatable, rawget, rawequal, xpcall, pcall, select =
      error, type, tostring, setmetatable, getmetatable, rawget, rawequal, xpcall, pcall, select

local function readonly_error() error("Attempt to modify a readonly table", 2) end
-- What getmetatable returns for every protected table (Redis returns the real metatable, which
-- is itself read-only): assigning to it fails as in Redis, and setmetatable (below) recognises
-- a protected table by it.
local protected_mt = setmetatable({}, {__newindex = readonly_error, __metatable = false})
local function readonly(t)
  return setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = protected_mt})
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

-- What FUNCTION LOAD's code may use while it registers its functions (Redis's library API:
-- nothing else, not even the standard libraries, is visible then).
local load_api = {
  register_function = function(...)
    -- A function that kept a reference to the load-time `redis` may call it later.
    if not internal.loading then
      error({err = 'ERR redis.register_function can only be called on FUNCTION LOAD command'})
    end
    local err = internal.register(...)
    if err then error({err = err}) end
  end,
  log = redis.log,
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
  __newindex = readonly_error, __metatable = protected_mt})
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
  -- Redis's Lua refuses protected tables' metatables with its read-only error.
  setmetatable = function(t, mt)
    if rawequal(getmetatable(t), protected_mt) then
      -- Raised inside Redis's lua_setmetatable: no position in the message.
      error("Attempt to modify a readonly table", 0)
    end
    return setmetatable(t, mt)
  end,
  -- Redis's Lua refuses precompiled (binary) chunks: loadstring returns nil and the message.
  loadstring = function(s, ...)
    if type(s) == 'string' and string.byte(s, 1) == 27 then
      return nil, 'Binary code loading is not supported'
    end
    return G.loadstring(s, ...)
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
      if internal.loading then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      if k == '_G' then return env end
      local v
      if vars then v = rawget(vars, k); if v ~= nil then return v end end
      v = lib[k]; if v ~= nil then return v end
      v = rawget(G, k); if v ~= nil then return v end
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end,
    __newindex = readonly_error, __metatable = protected_mt})
  return env
end
internal.script_env = make_env(internal.vars)
internal.function_env = make_env(nil)

internal.run = function(f, a, b)
  -- Only the first result is the script's reply; keeping one also keeps xpcall's stack safe.
  return xpcall(function() return (f(a, b)) end, handler)
end
"#;

pub(super) fn internal(vm: &Lua) -> mlua::Result<Table> {
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
pub(super) fn kill(lua: &Lua, internal: &Table, text: &str) -> mlua::Error {
    let _ = internal.raw_set("killed", true);
    if let Ok(t) = error_table(lua, text) {
        let _ = internal.raw_set("kill_err", t);
    }
    raise(lua, text)
}

pub(super) fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Arm the time bound for the run about to start (0 disables it).
pub(super) fn arm_deadline(vm: &Lua, threshold_ms: u64) -> mlua::Result<()> {
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

/// Redis's shape of an error message inside Lua: "CODE message". A reply that starts with '-'
/// carries its code as the first word; without a word after it, or without '-', the code is ERR.
pub(super) fn normalise_error(text: &str) -> String {
    let msg = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => format!("{code} {msg}"),
            None => format!("ERR {rest}"),
        },
        None => format!("ERR {text}"),
    };
    msg.trim_end_matches(['\r', '\n']).to_string()
}

pub(super) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(t)
}

/// The message handler of every script run (Redis's `__redis__err__handler`): turns the error
/// into a table `{err=..., source=..., line=...}` pointing at the user's code.
pub(super) fn locate_error(lua: &Lua, err: Value) -> mlua::Result<Table> {
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
pub(super) fn raise(lua: &Lua, text: &str) -> mlua::Error {
    let stored = internal(lua)
        .and_then(|i| error_table(lua, text).and_then(|t| i.raw_set("pending_err", t)));
    if let Err(e) = stored {
        return e;
    }
    mlua::Error::RuntimeError(text.to_string())
}

/// [`raise`], with the error table marked as counted in the error statistics already when
/// `counted` (see `RunOutcome`).
pub(super) fn raise_marked(lua: &Lua, text: &str, counted: bool) -> mlua::Error {
    let err = raise(lua, text);
    if counted {
        let _ = internal(lua)
            .and_then(|i| i.raw_get::<Table>("pending_err"))
            .and_then(|t| t.raw_set(COUNTED_KEY, true));
    }
    err
}

/// Raise a plain Lua error message prefixed with the calling line ("user_script:1: ..."), the
/// way `luaL_error` in a C library does.
pub(super) fn raise_located(lua: &Lua, msg: &str) -> mlua::Error {
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
pub(super) fn take_pending_error(lua: &Lua) -> Option<Table> {
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

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The `bit` library (LuaBitOp's API on 32-bit integers), in Rust because vendored Lua 5.1 has
/// none.
pub(super) fn bit_library(lua: &Lua) -> mlua::Result<Table> {
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
