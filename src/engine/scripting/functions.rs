//! Function libraries (FUNCTION LOAD): the `#!lua name=` header, registering functions and their
//! flags, and loading a library into the interpreter. Pure (on the locked state).

use super::*;

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
        if let Some(owner) = scripting.functions.get(&function_key(&meta.name)) {
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
        let key = function_key(&meta.name);
        table
            .raw_set(key.as_str(), f)
            .map_err(|e| Reply::error(format!("ERR {e}")))?;
        scripting.functions.insert(key, name.clone());
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

/// The `#!<engine> name=<name>` line that starts a library: split as Redis 7.0.15 splits it
/// (`sdssplitargs`, so `name="foo"` is `foo`), with its error texts and their order (metadata,
/// then the name's format, then the engine, which is matched without case).
pub fn parse_library_metadata(code: &[u8]) -> Result<String, Reply> {
    if !code.starts_with(b"#!") {
        return Err(Reply::err_static("ERR Missing library metadata"));
    }
    let Some(line_end) = code.iter().position(|&c| c == b'\n') else {
        return Err(Reply::err_static("ERR Invalid library metadata"));
    };
    let parts = match crate::engine::protocol::parse::split_args(&code[..line_end]) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err(Reply::err_static("ERR Invalid library metadata")),
    };
    // The first part is `#!<engine>` (just `#!` when a space follows: engine '').
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(Reply::err_static(
                    "ERR Invalid metadata value, name argument was given multiple times",
                ));
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(Reply::error(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        )));
    }
    let Some(name) = name else {
        return Err(Reply::err_static("ERR Library name was not given"));
    };
    if !valid_name(&name) {
        return Err(Reply::err_static(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    Ok(name)
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

pub(super) enum RegisterError {
    Lua(mlua::Error),
    Script(String),
}

impl From<mlua::Error> for RegisterError {
    fn from(e: mlua::Error) -> Self {
        RegisterError::Lua(e)
    }
}

/// Run the library's code in load mode and collect what it registers.
pub(super) fn register_functions(
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

/// The flags a function may declare, in the order Redis lists them (`scripts_flags_def`).
pub const FUNCTION_FLAGS: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Lua's `lua_isstring` + `lua_tostring`: strings and numbers (as Lua prints them).
fn lua_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Integer(i) => Some(format_lua_number(*i as f64)),
        Value::Number(n) => Some(format_lua_number(*n)),
        _ => None,
    }
}

/// The `flags` table of a named registration: a sequence of flag names (matched without case),
/// read up to its first nil as Redis reads it; Err when one is not a known flag. Returned in
/// Redis's order, each once (Redis keeps them as a bit mask).
fn parse_flags(t: &Table) -> Result<Vec<String>, ()> {
    let mut mask = [false; FUNCTION_FLAGS.len()];
    for i in 1.. {
        let v: Value = t.raw_get(i).map_err(|_| ())?;
        if v.is_nil() {
            break;
        }
        let flag = lua_string(&v).ok_or(())?;
        let pos = FUNCTION_FLAGS
            .iter()
            .position(|f| f.eq_ignore_ascii_case(&flag))
            .ok_or(())?;
        mask[pos] = true;
    }
    Ok(FUNCTION_FLAGS
        .iter()
        .zip(mask)
        .filter(|(_, on)| *on)
        .map(|(f, _)| f.to_string())
        .collect())
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags=..., description=...}`; Err is the error text raised in Lua. Checks and
/// texts as Redis 7.0.15's `luaRegisterFunctionReadArgs` and `functionLibCreateFunction`:
/// named-argument keys match without case, names may be numbers (as Lua converts them), and
/// function names are unique within a library without case.
pub(super) fn parse_registration(
    args: &[Value],
    out: &mut Vec<(FunctionMeta, Function)>,
) -> Result<(), String> {
    let (name, callback, flags, description) = match args {
        [Value::Table(t)] => {
            let mut name = None;
            let mut callback = None;
            let mut flags = Vec::new();
            let mut description = None;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| format!("ERR {e}"))?;
                let Some(key) = lua_string(&k) else {
                    return Err(
                        "ERR named argument key given to redis.register_function is not a string"
                            .to_string(),
                    );
                };
                if key.eq_ignore_ascii_case("function_name") {
                    name = Some(lua_string(&v).ok_or_else(|| {
                        "ERR function_name argument given to redis.register_function must be a string"
                            .to_string()
                    })?);
                } else if key.eq_ignore_ascii_case("description") {
                    description = Some(lua_string(&v).ok_or_else(|| {
                        "ERR description argument given to redis.register_function must be a string"
                            .to_string()
                    })?);
                } else if key.eq_ignore_ascii_case("callback") {
                    let Value::Function(f) = v else {
                        return Err("ERR callback argument given to redis.register_function must be a function".to_string());
                    };
                    callback = Some(f);
                } else if key.eq_ignore_ascii_case("flags") {
                    let Value::Table(ft) = v else {
                        return Err("ERR flags argument to redis.register_function must be a table representing function flags".to_string());
                    };
                    flags = parse_flags(&ft).map_err(|()| "ERR unknown flag given".to_string())?;
                } else {
                    return Err(
                        "ERR unknown argument given to redis.register_function".to_string()
                    );
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
        [_] => return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".to_string()),
        [n, f] => {
            let Some(name) = lua_string(n) else {
                return Err(
                    "ERR first argument to redis.register_function must be a string".to_string(),
                );
            };
            let Value::Function(f) = f else {
                return Err(
                    "ERR second argument to redis.register_function must be a function"
                        .to_string(),
                );
            };
            (name, f.clone(), Vec::new(), None)
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function".to_string()),
    };
    if !valid_name(&name) {
        // Redis 7.0 says "Library names" here too.
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".to_string());
    }
    if out.iter().any(|(m, _)| m.name.eq_ignore_ascii_case(&name)) {
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
