//! Conversions between Lua values and replies, both ways, and the number formats Redis's Lua
//! uses. Pure.

use super::*;

pub(super) fn value_as_text(v: &Value) -> String {
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
pub(super) fn format_lua_number(n: f64) -> String {
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
pub(super) fn format_call_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format_g(n, 17)
}

/// Lua number → integer reply, as Redis's `(long long)` cast on x86: truncation toward zero,
/// and the "integer indefinite" value for NaN and out-of-range numbers.
pub(super) fn lua_number_to_int(n: f64) -> i64 {
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

pub(super) fn table_to_reply(t: &Table, resp: u8, depth: usize) -> Reply {
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
        if let Some(r) = super::resp3_types::lua_table_to_reply(t) {
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
pub(super) fn reply_to_lua(lua: &Lua, r: &Reply, resp: u8) -> mlua::Result<Value> {
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
        Reply::Verbatim(b) if resp >= 3 => super::resp3_types::verbatim_to_lua(lua, b)?,
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
            super::resp3_types::reply_to_lua(lua, r, resp, reply_to_lua)?
        }
        Reply::Raw(_) | Reply::NoReply => Value::Boolean(false),
    })
}
