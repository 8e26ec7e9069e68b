//! The `cmsgpack` library scripts expect (lua-cmsgpack as bundled with Redis): `pack`,
//! `unpack`, `unpack_one`, `unpack_limit`, with its encoding choices (smallest integer form,
//! float32 when exact, tables as arrays only when keys are exactly 1..n, nesting cut at 16
//! levels) and its error texts. Pure.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::raise_located;

/// Deeper tables are encoded as nil (guards against reference cycles), as lua-cmsgpack does.
const MAX_NESTING: usize = 16;
/// Deepest nesting `unpack` accepts.
const MAX_DECODE_DEPTH: usize = 128;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(raise_located(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for a in args.iter() {
                encode(a, 0, &mut out);
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = input(lua, &args, "unpack")?;
            let (values, _) = decode_many(lua, &data, 0, 0)?;
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = input(lua, &args, "unpack_one")?;
            let offset = int_at(&args, 1);
            unpack_limited(lua, &data, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let data = input(lua, &args, "unpack_limit")?;
            let limit = int_at(&args, 1);
            let offset = int_at(&args, 2);
            unpack_limited(lua, &data, limit, offset)
        })?,
    )?;
    Ok(t)
}

fn int_at(args: &[Value], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Integer(n)) => *n,
        Some(Value::Number(n)) => *n as i64,
        _ => 0,
    }
}

fn input(lua: &Lua, args: &[Value], name: &str) -> mlua::Result<Vec<u8>> {
    match args.first() {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Number(n)) => Ok(super::format_lua_number(*n).into_bytes()),
        Some(Value::Integer(i)) => Ok(super::format_lua_number(*i as f64).into_bytes()),
        other => {
            let got = other.map_or("no value", |v| v.type_name());
            Err(raise_located(
                lua,
                &format!("bad argument #1 to '{name}' (string expected, got {got})"),
            ))
        }
    }
}

/// `unpack_one` / `unpack_limit`: the offset after the values (-1 at the end), then the values.
fn unpack_limited(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    if offset < 0 || limit < 0 {
        return Err(raise_located(
            lua,
            "Invalid request to unpack with offset of 0 and limit of 0.",
        ));
    }
    let start = (offset as usize).min(data.len());
    let (mut values, end) = decode_many(lua, data, start, limit as usize)?;
    let next = if end >= data.len() { -1 } else { end as i64 };
    values.insert(0, Value::Number(next as f64));
    Ok(MultiValue::from_vec(values))
}

/// Decode values from `start` (all of them when `limit` is 0); returns them and the end offset.
fn decode_many(
    lua: &Lua,
    data: &[u8],
    start: usize,
    limit: usize,
) -> mlua::Result<(Vec<Value>, usize)> {
    let mut cur = Cursor { data, pos: start };
    let mut values = Vec::new();
    while cur.pos < data.len() && (limit == 0 || values.len() < limit) {
        match cur.value(lua, 0) {
            Ok(v) => values.push(v),
            Err(Decode::Eof) => return Err(raise_located(lua, "Missing bytes in input.")),
            Err(Decode::BadFormat) => return Err(raise_located(lua, "Bad data format in input.")),
            Err(Decode::TooDeep) => {
                return Err(raise_located(
                    lua,
                    "stack overflow (in function mp_decode_to_lua_array)",
                ))
            }
            Err(Decode::Lua(e)) => return Err(e),
        }
    }
    Ok((values, cur.pos))
}

fn encode(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => encode_table(t, level, out),
        _ => out.push(0xc0),
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    // An integral value that fits i64 is encoded as an integer.
    if n.is_finite()
        && n.fract() == 0.0
        && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n)
    {
        encode_int(n as i64, out);
        return;
    }
    let f = n as f32;
    if f as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(n: usize, fix: u8, wide16: u8, wide32: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(t: &Table, level: usize, out: &mut Vec<u8>) {
    let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().flatten().collect();
    // An array when the keys are exactly 1..n (lua-cmsgpack's table_is_an_array).
    let mut max = 0.0f64;
    let is_array = pairs.iter().all(|(k, _)| {
        let n = match k {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            _ => return false,
        };
        if n > 0.0 && n.fract() == 0.0 {
            max = max.max(n);
            true
        } else {
            false
        }
    }) && max == pairs.len() as f64;
    if is_array {
        header(pairs.len(), 0x90, 0xdc, 0xdd, out);
        for i in 1..=pairs.len() {
            let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
            encode(&v, level + 1, out);
        }
    } else {
        header(pairs.len(), 0x80, 0xde, 0xdf, out);
        for (k, v) in &pairs {
            encode(k, level + 1, out);
            encode(v, level + 1, out);
        }
    }
}

enum Decode {
    Eof,
    TooDeep,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Decode {
    fn from(e: mlua::Error) -> Self {
        Decode::Lua(e)
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Decode> {
        let end = self.pos.checked_add(n).ok_or(Decode::Eof)?;
        let s = self.data.get(self.pos..end).ok_or(Decode::Eof)?;
        self.pos = end;
        Ok(s)
    }
    fn be(&mut self, n: usize) -> Result<u64, Decode> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, Decode> {
        // Redis runs out of Lua stack (about 8000 levels); decoding recurses on the worker
        // thread, so we stop much earlier, with the same message.
        if depth > MAX_DECODE_DEPTH {
            return Err(Decode::TooDeep);
        }
        let tag = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => num(tag as f64),
            0x80..=0x8f => self.map(lua, (tag & 0x0f) as usize, depth),
            0x90..=0x9f => self.array(lua, (tag & 0x0f) as usize, depth),
            0xa0..=0xbf => self.string(lua, (tag & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                self.string(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                self.string(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                self.string(lua, n)
            }
            0xca => num(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => num(f64::from_bits(self.be(8)?)),
            0xcc => num(self.be(1)? as f64),
            0xcd => num(self.be(2)? as f64),
            0xce => num(self.be(4)? as f64),
            0xcf => num(self.be(8)? as f64),
            0xd0 => num(self.be(1)? as u8 as i8 as f64),
            0xd1 => num(self.be(2)? as u16 as i16 as f64),
            0xd2 => num(self.be(4)? as u32 as i32 as f64),
            0xd3 => num(self.be(8)? as i64 as f64),
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(lua, n, depth)
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(lua, n, depth)
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(lua, n, depth)
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(lua, n, depth)
            }
            0xe0..=0xff => num(tag as i8 as f64),
            _ => Err(Decode::BadFormat),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<Value, Decode> {
        let s = self.take(n)?;
        Ok(Value::String(lua.create_string(s)?))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, Decode> {
        // Never trust a length prefix for preallocation: each element needs at least a byte.
        if n > self.data.len() - self.pos {
            return Err(Decode::Eof);
        }
        let t = lua.create_table_with_capacity(n, 0)?;
        for i in 1..=n {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, Decode> {
        if n > self.data.len() - self.pos {
            return Err(Decode::Eof);
        }
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}
