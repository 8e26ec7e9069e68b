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

pub(super) fn parse_library_metadata(code: &[u8]) -> Result<String, Reply> {
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

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags=..., description=...}`; Err is the error text raised in Lua.
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
