//! Lua ⇄ reply conversions of the RESP3 types only DEBUG PROTOCOL produces (big numbers,
//! attributes, verbatim strings), as Redis's `redisProtocolToLuaType` and
//! `luaReplyToRedisReply` do them. Pure.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::engine::protocol::reply::Reply;

/// A big number or an attributed reply from `redis.call` → its Lua value: a big number is
/// `{big_number = "digits"}` for a RESP3 script and a string for a RESP2 one; attributes are
/// not shown to scripts (Redis 7.0 drops them), only the reply they came with.
pub fn reply_to_lua(
    lua: &Lua,
    r: &Reply,
    resp: u8,
    convert: impl Fn(&Lua, &Reply, u8) -> mlua::Result<Value>,
) -> mlua::Result<Value> {
    match r {
        Reply::BigNum(b) if resp >= 3 => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(b)?)?;
            Ok(Value::Table(t))
        }
        Reply::BigNum(b) => Ok(Value::String(lua.create_string(b)?)),
        Reply::Attribute(a) => convert(lua, &a.1, resp),
        other => convert(lua, other, resp),
    }
}

/// A verbatim string for a RESP3 script: `{verbatim_string = {format = "txt", string = ...}}`.
pub fn verbatim_to_lua(lua: &Lua, b: &[u8]) -> mlua::Result<Value> {
    let inner = lua.create_table()?;
    inner.raw_set("format", "txt")?;
    inner.raw_set("string", lua.create_string(b)?)?;
    let t = lua.create_table()?;
    t.raw_set("verbatim_string", inner)?;
    Ok(Value::Table(t))
}

/// A script's returned table of one of these shapes → its reply, or None for other tables.
/// CR and LF in a big number become spaces (a RESP3 big number is one line), as in Redis.
pub fn lua_table_to_reply(t: &Table) -> Option<Reply> {
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let text: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect();
        return Some(Reply::BigNum(Bytes::from(text)));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let Ok(Value::String(s)) = v.raw_get::<Value>("string") {
            return Some(Reply::Verbatim(Bytes::from(s.as_bytes().to_vec())));
        }
    }
    None
}
