//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs): the Lua
//! libraries that decode bytes a client sends (`cmsgpack.unpack*`, `cjson.decode`), run in the
//! interpreter scripts get, with their results turned into plain data the targets can compare.
//! Pure.
//!
//! The other decoders a client reaches (the RESP parser, DUMP/RESTORE payloads, HyperLogLog
//! strings) are already public in `protocol` and `storage`; only the scripting libraries are
//! private to `scripting`, hence this facade.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::scripting;

/// A Lua value as plain data. Tables are their (key, value) pairs sorted, so two tables with
/// the same contents are equal whatever their iteration order; numbers are their bits with
/// -0 read as 0 and every NaN as one NaN (Lua cannot tell them apart as table keys either).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LuaData {
    Nil,
    /// `cjson.null`.
    Null,
    Bool(bool),
    Number(u64),
    Str(Vec<u8>),
    Table(Vec<(LuaData, LuaData)>),
    /// Any other type, by name (decoders never produce one).
    Other(&'static str),
}

impl LuaData {
    pub fn number(n: f64) -> LuaData {
        let n = if n == 0.0 {
            0.0
        } else if n.is_nan() {
            f64::NAN
        } else {
            n
        };
        LuaData::Number(n.to_bits())
    }

    /// Tables nested in one another, this one included (0 for a scalar).
    pub fn depth(&self) -> usize {
        match self {
            LuaData::Table(pairs) => {
                1 + pairs
                    .iter()
                    .map(|(k, v)| k.depth().max(v.depth()))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Whether a NaN or an infinity is anywhere in it.
    pub fn has_non_finite(&self) -> bool {
        match self {
            LuaData::Number(bits) => !f64::from_bits(*bits).is_finite(),
            LuaData::Table(pairs) => pairs
                .iter()
                .any(|(k, v)| k.has_non_finite() || v.has_non_finite()),
            _ => false,
        }
    }

    /// The same data with every number replaced by `f(number)`.
    pub fn map_numbers(&self, f: &impl Fn(f64) -> f64) -> LuaData {
        match self {
            LuaData::Number(bits) => LuaData::number(f(f64::from_bits(*bits))),
            LuaData::Table(pairs) => {
                let mut pairs: Vec<_> = pairs
                    .iter()
                    .map(|(k, v)| (k.map_numbers(f), v.map_numbers(f)))
                    .collect();
                pairs.sort();
                LuaData::Table(pairs)
            }
            other => other.clone(),
        }
    }

    fn from_lua(v: &Value) -> LuaData {
        match v {
            Value::Nil => LuaData::Nil,
            Value::LightUserData(p) if p.0.is_null() => LuaData::Null,
            Value::Boolean(b) => LuaData::Bool(*b),
            Value::Integer(i) => LuaData::number(*i as f64),
            Value::Number(n) => LuaData::number(*n),
            Value::String(s) => LuaData::Str(s.as_bytes().to_vec()),
            Value::Table(t) => {
                let mut pairs: Vec<_> = t
                    .pairs::<Value, Value>()
                    .flatten()
                    .map(|(k, v)| (LuaData::from_lua(&k), LuaData::from_lua(&v)))
                    .collect();
                pairs.sort();
                LuaData::Table(pairs)
            }
            other => LuaData::Other(other.type_name()),
        }
    }
}

/// The scripting libraries in an interpreter of their own, as a script sees them.
pub struct ScriptLibraries {
    lua: Lua,
}

impl ScriptLibraries {
    pub fn new() -> mlua::Result<ScriptLibraries> {
        Ok(ScriptLibraries {
            lua: scripting::new_vm(Default::default())?,
        })
    }

    /// `library.name` as a script reads it: through the scripts' environment (the prelude
    /// takes the libraries out of the globals) and its read-only proxies.
    fn function(&self, library: &str, name: &str) -> mlua::Result<Function> {
        self.lua
            .named_registry_value::<Table>("redis_internal")?
            .raw_get::<Table>("script_env")?
            .get::<Table>(library)?
            .get::<Function>(name)
    }

    /// Free what earlier calls left (the interpreter lives across fuzz inputs).
    pub fn collect_garbage(&self) {
        let _ = self.lua.gc_collect();
    }

    /// `cmsgpack.unpack(data)`, then `cmsgpack.pack` of every value it gave (empty when none):
    /// the values and the repacked bytes, or the error a script would get.
    pub fn msgpack_unpack_pack(&self, data: &[u8]) -> Result<(Vec<LuaData>, Vec<u8>), String> {
        let values: MultiValue = self
            .function("cmsgpack", "unpack")
            .and_then(|f| f.call(self.lua.create_string(data)?))
            .map_err(|e| e.to_string())?;
        let data = values.iter().map(LuaData::from_lua).collect();
        if values.is_empty() {
            return Ok((data, Vec::new()));
        }
        let packed: mlua::LuaString = self
            .function("cmsgpack", "pack")
            .and_then(|f| f.call(values))
            .map_err(|e| e.to_string())?;
        Ok((data, packed.as_bytes().to_vec()))
    }

    /// `cmsgpack.unpack_limit(data, limit, offset)`: the next offset (-1 at the end) and the
    /// values.
    pub fn msgpack_unpack_limit(
        &self,
        data: &[u8],
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<LuaData>), String> {
        let values: MultiValue = self
            .function("cmsgpack", "unpack_limit")
            .and_then(|f| f.call((self.lua.create_string(data)?, limit, offset)))
            .map_err(|e| e.to_string())?;
        let mut values = values.into_iter();
        let next = match values.next() {
            Some(Value::Integer(i)) => i,
            Some(Value::Number(n)) => n as i64,
            other => return Err(format!("unpack_limit returned {other:?} as its offset")),
        };
        Ok((next, values.map(|v| LuaData::from_lua(&v)).collect()))
    }

    /// `cjson.decode(text)`, then `cjson.encode` of the result: the value, and the JSON text or
    /// the error encoding it gave; Err if decoding failed.
    pub fn json_decode_encode(
        &self,
        text: &[u8],
    ) -> Result<(LuaData, Result<Vec<u8>, String>), String> {
        let value: Value = self
            .function("cjson", "decode")
            .and_then(|f| f.call(self.lua.create_string(text)?))
            .map_err(|e| e.to_string())?;
        let encoded = self
            .function("cjson", "encode")
            .and_then(|f| f.call::<mlua::LuaString>(&value))
            .map(|s| s.as_bytes().to_vec())
            .map_err(|e| e.to_string());
        Ok((LuaData::from_lua(&value), encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_decode_and_reencode() {
        let libs = ScriptLibraries::new().unwrap();
        // [1, "a", {"k": true}] in MessagePack.
        let (values, packed) = libs
            .msgpack_unpack_pack(b"\x93\x01\xa1a\x81\xa1k\xc3")
            .unwrap();
        assert_eq!(packed, b"\x93\x01\xa1a\x81\xa1k\xc3");
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].depth(), 2);
        assert_eq!(
            libs.msgpack_unpack_limit(b"\x01\x02\x03", 1, 1).unwrap(),
            (2, vec![LuaData::number(2.0)])
        );
        assert!(libs.msgpack_unpack_pack(b"\x92\x01").is_err());
        let (value, encoded) = libs.json_decode_encode(br#"{"a":[1,null,"x"]}"#).unwrap();
        assert_eq!(encoded.unwrap(), br#"{"a":[1,null,"x"]}"#);
        assert_eq!(value.depth(), 2);
        assert!(libs.json_decode_encode(b"[1,").is_err());
    }
}
