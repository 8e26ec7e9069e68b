//! The `cjson` library scripts expect (lua-cjson 2.1 as bundled with Redis): `cjson.encode`,
//! `cjson.decode`, `cjson.null`, with its defaults (sparse arrays refused, `%.14g` numbers, '/'
//! escaped) and its error texts, and the settings functions that change them for the rest of
//! the interpreter's life as lua-cjson's do (`encode_max_depth`, `decode_max_depth`,
//! `encode_invalid_numbers`, `encode_number_precision`, `encode_sparse_array`,
//! `encode_keep_buffer`). Pure.

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::raise_located;
use crate::engine::protocol::reply::format_g;

/// Nesting limit (both directions). lua-cjson allows 1000; encoding and decoding recurse on the
/// connection's worker thread, whose stack must survive a self-referencing table even in debug
/// builds, so we stop at 128 levels (same error texts, smaller number).
const MAX_DEPTH: usize = 128;

/// `cjson.null`: a NULL light userdata, as lua-cjson uses.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if p.0.is_null())
}

/// lua-cjson's settings (its `json_config_t`), shared by the library's functions.
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_max_depth: i64,
    decode_max_depth: i64,
    /// 0 off (NaN and Inf refused), 1 on (written as nan/inf), 2 null (written as null).
    encode_invalid_numbers: i64,
    encode_number_precision: i64,
    encode_keep_buffer: i64,
    encode_sparse_convert: i64,
    encode_sparse_ratio: i64,
    encode_sparse_safe: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
        }
    }
}

type Shared = std::sync::Arc<parking_lot::Mutex<Config>>;

/// Which field of [`Config`] a settings function reads and writes.
type Field = fn(&mut Config) -> &mut i64;

/// lua-cjson's `json_arg_init`: at most `n` arguments.
fn arg_count(lua: &Lua, args: &[Value], n: usize, fname: &str) -> mlua::Result<()> {
    if args.len() > n {
        return Err(raise_located(
            lua,
            &format!(
                "bad argument #{} to '{fname}' (found too many arguments)",
                n + 1
            ),
        ));
    }
    Ok(())
}

/// lua-cjson's `json_enum_option`: `options[0]`/`options[1]` are also false/true.
fn enum_option(
    lua: &Lua,
    arg: Option<&Value>,
    fname: &str,
    setting: &mut i64,
    options: &[&str],
) -> mlua::Result<Value> {
    match arg {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = *b as i64,
        Some(v) => {
            let text = match v {
                Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                Value::Integer(i) => format_g(*i as f64, 14),
                Value::Number(n) => format_g(*n, 14),
                other => {
                    return Err(raise_located(
                        lua,
                        &format!(
                            "bad argument #1 to '{fname}' (string expected, got {})",
                            other.type_name()
                        ),
                    ))
                }
            };
            let Some(pos) = options.iter().position(|o| *o == text) else {
                return Err(raise_located(
                    lua,
                    &format!("bad argument #1 to '{fname}' (invalid option '{text}')"),
                ));
            };
            *setting = pos as i64;
        }
    }
    Ok(match *setting {
        0 => Value::Boolean(false),
        1 => Value::Boolean(true),
        n => Value::String(lua.create_string(options[n as usize])?),
    })
}

/// lua-cjson's `json_integer_option` (its range error names argument #1 whichever it is).
fn integer_option(
    lua: &Lua,
    arg: Option<&Value>,
    pos: usize,
    fname: &str,
    setting: &mut i64,
    range: (i64, i64),
) -> mlua::Result<Value> {
    let number = match arg {
        None | Some(Value::Nil) => None,
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes())
            .trim()
            .parse::<f64>()
            .ok(),
        Some(_) => None,
    };
    if let Some(n) = number {
        let value = n as i64;
        if value < range.0 || value > range.1 {
            return Err(raise_located(
                lua,
                &format!(
                    "bad argument #1 to '{fname}' (expected integer between {} and {})",
                    range.0, range.1
                ),
            ));
        }
        *setting = value;
    } else if let Some(other) = arg.filter(|v| !v.is_nil()) {
        return Err(raise_located(
            lua,
            &format!(
                "bad argument #{pos} to '{fname}' (number expected, got {})",
                other.type_name()
            ),
        ));
    }
    Ok(Value::Integer(*setting as _))
}

/// Build the library. Errors are raised with the caller's position, as lua-cjson's
/// `luaL_error` does.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let config: Shared = Shared::default();
    const INT_MAX: i64 = i32::MAX as i64;
    let bool_settings: [(&str, Field); 1] = [("encode_keep_buffer", |c| &mut c.encode_keep_buffer)];
    for (fname, field) in bool_settings {
        let cfg = config.clone();
        t.raw_set(
            fname,
            lua.create_function(move |lua, args: Variadic<Value>| {
                arg_count(lua, &args, 1, fname)?;
                let mut c = cfg.lock();
                enum_option(lua, args.first(), fname, field(&mut c), &["off", "on"])
            })?,
        )?;
    }
    let cfg = config.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            arg_count(lua, &args, 1, "encode_invalid_numbers")?;
            let mut c = cfg.lock();
            enum_option(
                lua,
                args.first(),
                "encode_invalid_numbers",
                &mut c.encode_invalid_numbers,
                &["off", "on", "null"],
            )
        })?,
    )?;
    let int_settings: [(&str, Field, (i64, i64)); 3] = [
        (
            "encode_max_depth",
            |c| &mut c.encode_max_depth,
            (1, INT_MAX),
        ),
        (
            "decode_max_depth",
            |c| &mut c.decode_max_depth,
            (1, INT_MAX),
        ),
        (
            "encode_number_precision",
            |c| &mut c.encode_number_precision,
            (1, 14),
        ),
    ];
    for (fname, field, range) in int_settings {
        let cfg = config.clone();
        t.raw_set(
            fname,
            lua.create_function(move |lua, args: Variadic<Value>| {
                arg_count(lua, &args, 1, fname)?;
                let mut c = cfg.lock();
                integer_option(lua, args.first(), 1, fname, field(&mut c), range)
            })?,
        )?;
    }
    let cfg = config.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let fname = "encode_sparse_array";
            arg_count(lua, &args, 3, fname)?;
            let mut c = cfg.lock();
            let convert = enum_option(
                lua,
                args.first(),
                fname,
                &mut c.encode_sparse_convert,
                &["off", "on"],
            )?;
            let ratio = integer_option(
                lua,
                args.get(1),
                2,
                fname,
                &mut c.encode_sparse_ratio,
                (0, INT_MAX),
            )?;
            let safe = integer_option(
                lua,
                args.get(2),
                3,
                fname,
                &mut c.encode_sparse_safe,
                (0, INT_MAX),
            )?;
            Ok(Variadic::from_iter([convert, ratio, safe]))
        })?,
    )?;
    let cfg = config.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return Err(raise_located(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            let c = *cfg.lock();
            match encode(&args[0], 0, &c, &mut out) {
                Ok(()) => Ok(Value::String(lua.create_string(&out)?)),
                Err(msg) => Err(raise_located(lua, &msg)),
            }
        })?,
    )?;
    let cfg = config;
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let text = match args.first() {
                Some(Value::String(s)) if args.len() == 1 => s.as_bytes().to_vec(),
                Some(Value::Number(n)) if args.len() == 1 => format_g(*n, 14).into_bytes(),
                Some(Value::Integer(i)) if args.len() == 1 => format_g(*i as f64, 14).into_bytes(),
                Some(other) if args.len() == 1 => {
                    let msg = format!(
                        "bad argument #1 to 'decode' (string expected, got {})",
                        other.type_name()
                    );
                    return Err(raise_located(lua, &msg));
                }
                _ => {
                    return Err(raise_located(
                        lua,
                        "bad argument #1 to 'decode' (expected 1 argument)",
                    ));
                }
            };
            let max_depth = cfg.lock().decode_max_depth;
            let mut p = Parser {
                lua,
                s: &text,
                pos: 0,
                invalid: ("invalid token", 0),
                max_depth: (max_depth.max(1) as usize).min(MAX_DEPTH),
            };
            match p.document() {
                Ok(v) => Ok(v),
                Err(Failure::Message(msg)) => Err(raise_located(lua, &msg)),
                Err(Failure::Lua(e)) => Err(e),
            }
        })?,
    )?;
    t.raw_set("null", null())?;
    Ok(t)
}

fn encode(v: &Value, depth: usize, cfg: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    let precision = cfg.encode_number_precision.clamp(1, 14) as usize;
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // mlua hands integral Lua 5.1 numbers over as integers; lua-cjson formats all numbers
        // with %.14g (the precision is a setting).
        Value::Integer(i) => out.extend_from_slice(format_g(*i as f64, precision).as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                match cfg.encode_invalid_numbers {
                    0 => return Err("Cannot serialise number: must not be NaN or Inf".to_string()),
                    // What lua-cjson's %.14g writes (NaN always as "nan", whatever its sign).
                    1 if n.is_nan() => out.extend_from_slice(b"nan"),
                    1 if *n > 0.0 => out.extend_from_slice(b"inf"),
                    1 => out.extend_from_slice(b"-inf"),
                    _ => out.extend_from_slice(b"null"),
                }
                return Ok(());
            }
            out.extend_from_slice(format_g(*n, precision).as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => encode_table(t, depth + 1, cfg, out)?,
        v if is_null(v) => out.extend_from_slice(b"null"),
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua-cjson's array detection: every key a positive integer, and not excessively sparse
/// (by default more than 10 slots and more than twice as many slots as items: an error, or an
/// object with `encode_sparse_array(true)`). None = not an array.
fn array_length(t: &Table, cfg: &Config) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return Ok(None) };
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 || n > 1e9 {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if cfg.encode_sparse_ratio > 0
        && max as i64 > items as i64 * cfg.encode_sparse_ratio
        && max as i64 > cfg.encode_sparse_safe
    {
        if cfg.encode_sparse_convert == 0 {
            return Err("Cannot serialise table: excessively sparse array".to_string());
        }
        return Ok(None);
    }
    Ok(if max > 0 { Some(max) } else { None })
}

fn encode_table(t: &Table, depth: usize, cfg: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > (cfg.encode_max_depth.max(1) as usize).min(MAX_DEPTH) {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    if let Some(len) = array_length(t, cfg)? {
        out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                out.push(b',');
            }
            let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
            encode(&v, depth, cfg, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &k {
            Value::String(s) => encode_string(&s.as_bytes(), out),
            Value::Number(n) => encode_string(format_g(*n, 14).as_bytes(), out),
            Value::Integer(i) => encode_string(format_g(*i as f64, 14).as_bytes(), out),
            other => {
                return Err(format!(
                    "Cannot serialise {}: table key must be a number or string",
                    other.type_name()
                ))
            }
        }
        out.push(b':');
        encode(&v, depth, cfg, out)?;
    }
    out.push(b'}');
    Ok(())
}

enum Failure {
    Message(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Self {
        Failure::Lua(e)
    }
}

/// A token as lua-cjson names it in error messages.
#[derive(Clone, Copy, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Invalid,
}

impl Token {
    fn name(self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str => "T_STRING",
            Token::Number => "T_NUMBER",
            Token::Boolean => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Invalid => "invalid token",
        }
    }
}

struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    /// What the last invalid token was ("invalid token", "invalid number", "invalid escape
    /// code") and where lua-cjson reports it.
    invalid: (&'static str, usize),
    /// `decode_max_depth`, within the engine's own limit.
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn expected(&self, what: &str, found: Token, at: usize) -> Failure {
        if found == Token::Invalid {
            return expected_msg(what, self.invalid.0, self.invalid.1);
        }
        expected_msg(what, found.name(), at)
    }

    fn invalid(&mut self, what: &'static str, at: usize) -> Result<(Token, usize, Value), Failure> {
        self.invalid = (what, at);
        Ok((Token::Invalid, at, Value::Nil))
    }

    fn document(&mut self) -> Result<Value, Failure> {
        let (tok, at, v) = self.next_token(0)?;
        let value = self.value(tok, at, v, 1)?;
        let (tok, at, _) = self.next_token(0)?;
        if tok != Token::End {
            return Err(self.expected("the end", tok, at));
        }
        Ok(value)
    }

    fn value(&mut self, tok: Token, at: usize, v: Value, depth: usize) -> Result<Value, Failure> {
        match tok {
            Token::Str | Token::Number | Token::Boolean | Token::Null => Ok(v),
            Token::ObjBegin => self.object(depth, at),
            Token::ArrBegin => self.array(depth, at),
            other => Err(self.expected("value", other, at)),
        }
    }

    fn check_depth(&self, depth: usize, at: usize) -> Result<(), Failure> {
        if depth > self.max_depth {
            return Err(Failure::Message(format!(
                "Found too many nested data structures ({depth}) at character {}",
                at + 1
            )));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize, at: usize) -> Result<Value, Failure> {
        self.check_depth(depth, at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at, mut v) = self.next_token(0)?;
        if tok == Token::ObjEnd {
            return Ok(Value::Table(t));
        }
        loop {
            if tok != Token::Str {
                return Err(self.expected("object key string", tok, at));
            }
            let key = v;
            let (colon, cat, _) = self.next_token(0)?;
            if colon != Token::Colon {
                return Err(self.expected("colon", colon, cat));
            }
            let (vt, vat, vv) = self.next_token(depth)?;
            let value = self.value(vt, vat, vv, depth + 1)?;
            t.raw_set(key, value)?;
            let (sep, sat, _) = self.next_token(0)?;
            match sep {
                Token::ObjEnd => return Ok(Value::Table(t)),
                Token::Comma => {}
                other => return Err(self.expected("comma or object end", other, sat)),
            }
            (tok, at, v) = self.next_token(0)?;
        }
    }

    fn array(&mut self, depth: usize, at: usize) -> Result<Value, Failure> {
        self.check_depth(depth, at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at, mut v) = self.next_token(depth)?;
        if tok == Token::ArrEnd {
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let value = self.value(tok, at, v, depth + 1)?;
            t.raw_set(i, value)?;
            i += 1;
            let (sep, sat, _) = self.next_token(0)?;
            match sep {
                Token::ArrEnd => return Ok(Value::Table(t)),
                Token::Comma => {}
                other => return Err(self.expected("comma or array end", other, sat)),
            }
            (tok, at, v) = self.next_token(depth)?;
        }
    }

    /// The next token, its 0-based start, and its value for scalars.
    fn next_token(&mut self, _depth: usize) -> Result<(Token, usize, Value), Failure> {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos;
        let Some(&c) = self.s.get(self.pos) else {
            return Ok((Token::End, at, Value::Nil));
        };
        let single = |t| Ok((t, at, Value::Nil));
        match c {
            b'{' => {
                self.pos += 1;
                single(Token::ObjBegin)
            }
            b'}' => {
                self.pos += 1;
                single(Token::ObjEnd)
            }
            b'[' => {
                self.pos += 1;
                single(Token::ArrBegin)
            }
            b']' => {
                self.pos += 1;
                single(Token::ArrEnd)
            }
            b':' => {
                self.pos += 1;
                single(Token::Colon)
            }
            b',' => {
                self.pos += 1;
                single(Token::Comma)
            }
            b'"' => self.string(at),
            b'-' | b'0'..=b'9' => self.number(at),
            _ => {
                for (word, tok, v) in [
                    (&b"true"[..], Token::Boolean, Value::Boolean(true)),
                    (&b"false"[..], Token::Boolean, Value::Boolean(false)),
                    (&b"null"[..], Token::Null, null()),
                ] {
                    if self.s[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok((tok, at, v));
                    }
                }
                self.invalid("invalid token", at)
            }
        }
    }

    fn number(&mut self, at: usize) -> Result<(Token, usize, Value), Failure> {
        let mut end = self.pos;
        while end < self.s.len()
            && matches!(self.s[end], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        {
            end += 1;
        }
        let text = std::str::from_utf8(&self.s[self.pos..end]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => {
                self.pos = end;
                Ok((Token::Number, at, Value::Number(n)))
            }
            Err(_) => self.invalid("invalid number", at),
        }
    }

    fn string(&mut self, at: usize) -> Result<(Token, usize, Value), Failure> {
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        loop {
            let Some(&c) = self.s.get(i) else {
                return self.invalid("unexpected end of string", i);
            };
            i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let escape_at = i - 1;
                    let Some(&e) = self.s.get(i) else {
                        return self.invalid("invalid escape code", escape_at);
                    };
                    i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(mut cp) = hex4(self.s.get(i..i + 4)) else {
                                return self.invalid("invalid unicode escape code", escape_at);
                            };
                            i += 4;
                            if (0xd800..0xdc00).contains(&cp) {
                                // A high surrogate must be followed by a low one.
                                let low = if self.s.get(i..i + 2) == Some(b"\\u") {
                                    hex4(self.s.get(i + 2..i + 6))
                                } else {
                                    None
                                };
                                match low {
                                    Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                        i += 6;
                                    }
                                    _ => {
                                        return self
                                            .invalid("invalid unicode escape code", escape_at)
                                    }
                                }
                            }
                            let Some(ch) = char::from_u32(cp) else {
                                return self.invalid("invalid unicode escape code", escape_at);
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return self.invalid("invalid escape code", escape_at),
                    }
                }
                c => out.push(c),
            }
        }
        self.pos = i;
        Ok((Token::Str, at, Value::String(self.lua.create_string(&out)?)))
    }
}

/// The value of exactly four hex digits (`from_str_radix` alone would also take a sign).
fn hex4(b: Option<&[u8]>) -> Option<u32> {
    let b = b?;
    if b.len() != 4 || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

fn expected_msg(what: &str, found: &str, at: usize) -> Failure {
    Failure::Message(format!(
        "Expected {what} but found {found} at character {}",
        at + 1
    ))
}

#[cfg(test)]
mod tests {
    use crate::engine::fuzzing::{LuaData, ScriptLibraries};

    #[test]
    fn unicode_escapes_take_exactly_four_hex_digits() {
        let libs = ScriptLibraries::new().unwrap();
        let decoded = |text: &str| libs.json_decode_encode(text.as_bytes()).map(|(v, _)| v);
        assert_eq!(decoded(r#""\u0041\u00e9""#), Ok(LuaData::Str("Aé".into())));
        // lua-cjson reads four hex digits, so a sign is no digit (Rust's from_str_radix takes
        // one): redis-server 7.0 answers "invalid unicode escape code".
        for text in [
            r#""\u+041""#,
            r#""\u-041""#,
            r#""\u+dbff\udc00""#,
            r#""\ud800\u+c00""#,
        ] {
            let err = decoded(text).unwrap_err();
            assert!(err.contains("invalid unicode escape code"), "{text}: {err}");
        }
    }
}
