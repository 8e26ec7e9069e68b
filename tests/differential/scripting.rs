//! Generators for scripting commands: EVAL/EVAL_RO over a fixed set of script bodies (string,
//! list and hash commands through redis.call/pcall, conversions, error tables, sandbox errors),
//! SCRIPT LOAD/EXISTS/FLUSH with EVALSHA/EVALSHA_RO, and FUNCTION LOAD/LIST/DELETE with
//! FCALL/FCALL_RO.
//!
//! Script bodies that call list or hash commands are only generated when the engine has those
//! commands (they live in other families), so this family stays meaningful on its own.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[
    eval_strings,
    eval_strings,
    eval_conversions,
    eval_collections,
    evalsha,
    functions,
    functions,
];

/// Scripts on string and generic key commands: (body, number of keys, number of args).
const STRING_SCRIPTS: &[(&str, usize, usize)] = &[
    ("return redis.call('get', KEYS[1])", 1, 0),
    ("return redis.call('set', KEYS[1], ARGV[1])", 1, 1),
    ("return redis.call('incrby', KEYS[1], ARGV[1])", 1, 1),
    ("return redis.pcall('incr', KEYS[1])", 1, 0),
    ("local v = redis.call('get', KEYS[1]) if not v then return 'none' end return {v, #v}", 1, 0),
    (
        "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2]); return redis.call('mget', KEYS[1], KEYS[2])",
        2,
        1,
    ),
    ("return redis.call('del', KEYS[1], KEYS[2])", 2, 0),
    ("return redis.call('exists', KEYS[1])", 1, 0),
    ("return redis.call('type', KEYS[1])", 1, 0),
    ("return redis.call('type', KEYS[1]).ok", 1, 0),
    ("return redis.pcall('get', KEYS[1])", 1, 0),
    (
        "local r = redis.pcall('incr', KEYS[1]) if type(r) == 'table' and r.err then return 'caught: ' .. r.err end return r",
        1,
        0,
    ),
    (
        "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return {tostring(ok), e}",
        1,
        0,
    ),
    ("return redis.call('set', KEYS[1], ARGV[1], 'GET')", 1, 1),
    ("return redis.call('get', KEYS[1], 'extra')", 1, 0),
    ("redis.call('set', KEYS[1], ARGV[1]) return redis.call('incr', KEYS[1])", 1, 1),
    ("return redis.call('mset', KEYS[1], ARGV[1], KEYS[2], ARGV[2])", 2, 2),
    ("return redis.call('expire', KEYS[1], 100)", 1, 0),
    ("return redis.call('ttl', KEYS[1]) >= -2", 1, 0),
];

/// Scripts on lists and hashes (used only when the engine has these commands).
const COLLECTION_SCRIPTS: &[(&str, usize, usize, Norm)] = &[
    (
        "return redis.call('lpush', KEYS[1], ARGV[1], ARGV[2])",
        1,
        2,
        Norm::Exact,
    ),
    (
        "return redis.call('rpush', KEYS[1], ARGV[1])",
        1,
        1,
        Norm::Exact,
    ),
    (
        "return redis.call('lrange', KEYS[1], 0, -1)",
        1,
        0,
        Norm::Exact,
    ),
    ("return redis.call('rpop', KEYS[1])", 1, 0, Norm::Exact),
    ("return redis.call('llen', KEYS[1])", 1, 0, Norm::Exact),
    (
        "return redis.call('hset', KEYS[1], ARGV[1], ARGV[2])",
        1,
        2,
        Norm::Exact,
    ),
    (
        "return redis.call('hget', KEYS[1], ARGV[1])",
        1,
        1,
        Norm::Exact,
    ),
    (
        "return redis.call('hgetall', KEYS[1])",
        1,
        0,
        Norm::UnorderedPairs,
    ),
    (
        "return redis.pcall('hincrby', KEYS[1], ARGV[1], ARGV[2])",
        1,
        2,
        Norm::Exact,
    ),
    (
        "return redis.call('hdel', KEYS[1], ARGV[1])",
        1,
        1,
        Norm::Exact,
    ),
];

/// Scripts about conversions, error replies and the sandbox: (body, keys, args).
const CONVERSION_SCRIPTS: &[(&str, usize, usize)] = &[
    ("return {1, 2.5, -2.5, 'x', true, false, 'after'}", 0, 0),
    ("return {1, nil, 2}", 0, 0),
    ("return 3.99", 0, 0),
    ("return -3.99", 0, 0),
    ("return 1e20", 0, 0),
    ("return {ok='fine'}", 0, 0),
    ("return {err='MY err'}", 0, 0),
    ("return {ok='x', err='y'}", 0, 0),
    ("return redis.error_reply('custom')", 0, 0),
    ("return redis.error_reply('CODE with code')", 0, 0),
    ("return redis.status_reply('S')", 0, 0),
    ("return nil", 0, 0),
    ("return {}", 0, 0),
    ("return true", 0, 0),
    ("return false", 0, 0),
    (
        "return {1, {2, {3, 'deep'}}, {ok='st'}, {err='nested'}}",
        0,
        0,
    ),
    ("return tonumber(ARGV[1])", 0, 1),
    ("return #KEYS + #ARGV", 2, 1),
    ("return {KEYS[1], ARGV[1]}", 1, 1),
    ("return redis.sha1hex(ARGV[1])", 0, 1),
    ("return redis.REDIS_VERSION", 0, 0),
    ("x = 1", 0, 0),
    ("return undefinedvar", 0, 0),
    ("return os.time()", 0, 0),
    ("string.x = 1", 0, 0),
    ("error('boom')", 0, 0),
    ("error({err='TABLE err'})", 0, 0),
    ("return redis.call('nosuch')", 0, 0),
    ("return redis.call()", 0, 0),
    ("return redis.pcall()", 0, 0),
    ("return redis.call('multi')", 0, 0),
    ("return redis.call('set', 'k0', {})", 0, 0),
    ("return redis.pcall('nosuch')", 0, 0),
    ("return bit.bxor(tonumber(ARGV[1]) or 0, 5)", 0, 1),
    (
        "return {bit.band(12, 10), bit.lshift(1, 4), bit.tohex(255), bit.bnot(0)}",
        0,
        0,
    ),
    ("redis.setresp(3) return {double = 1.5}", 0, 0),
    (
        "redis.setresp(3) return redis.call('get', 'nokey') == nil",
        0,
        0,
    ),
    ("redis.setresp(5)", 0, 0),
    (
        "return string.format('%d-%s', 7, 'x') .. table.concat({'a', 'b'}, ',')",
        0,
        0,
    ),
    (
        "local t = {} for i = 1, 5 do t[i] = i * i end return t",
        0,
        0,
    ),
    ("retur 1", 0, 0),
    ("#!lua flags=no-writes\nreturn redis.call('get', 'k0')", 0, 0),
    ("#!lua flags=no-writes\nreturn redis.call('set', 'k0', 'x')", 0, 0),
    ("#!lua\nreturn redis.call('set', KEYS[1], 'sb')", 1, 0),
    ("#!lua flags=bogus\nreturn 1", 0, 0),
    ("#!lua name=x\nreturn 1", 0, 0),
    ("#!js\nreturn 1", 0, 0),
    ("return redis.sha1hex(cmsgpack.pack(1, -200, 70000, 1.5, 0.1, ARGV[1], {1, 2}, {a = 1}, true, nil))", 0, 1),
    ("return {cmsgpack.unpack(cmsgpack.pack(tonumber(ARGV[1]) or ARGV[1], {1, {2, 'x'}}))}", 0, 1),
    ("return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}", 0, 0),
    ("return cmsgpack.unpack(ARGV[1])", 0, 1),
    ("return cjson.encode({1, 'a/b', true, {x = 1.5}, {}})", 0, 0),
    ("return cjson.encode({ARGV[1], tonumber(ARGV[1])})", 0, 1),
    ("return cjson.encode({[1] = 1, [30] = 3})", 0, 0),
    ("local t = cjson.decode(ARGV[1]) return type(t) == 'table' and #t or t", 0, 1),
    ("local t = cjson.decode('{\"a\":[1,null,\"\\u00e9\"]}') return {t.a[1], t.a[2] == cjson.null, t.a[3]}", 0, 0),
    ("local ok, e = pcall(cjson.decode, '[1,') return e", 0, 0),
    ("return cjson.decode('{\"a\" 1}')", 0, 0),
    ("redis.call('set', KEYS[1], tonumber(ARGV[1]) or 0.1) return redis.call('get', KEYS[1])", 1, 1),
    ("local ok, e = pcall(error, {err='x'}) return e", 0, 0),
];

fn engine_has(name: &str) -> bool {
    redispair::engine::cmd::lookup(name.as_bytes()).is_some()
}

/// `EVAL|EVAL_RO body numkeys keys... args...` with a sometimes-wrong numkeys.
fn eval_step(
    rng: &mut StdRng,
    k: &Keys,
    body: &str,
    nkeys: usize,
    nargs: usize,
    norm: Norm,
) -> Step {
    let verb = if rng.gen_range(0..8) == 0 {
        "EVAL_RO"
    } else {
        "EVAL"
    };
    let mut args = vec![verb.to_string(), body.to_string()];
    let keys: Vec<String> = (0..nkeys).map(|_| k.pick(rng)).collect();
    let argv: Vec<String> = (0..nargs).map(|_| value(rng)).collect();
    match rng.gen_range(0..20) {
        0 => args.push("-1".to_string()),
        1 => args.push((nkeys + nargs + 1).to_string()),
        2 => args.push("x".to_string()),
        _ => args.push(nkeys.to_string()),
    }
    args.extend(keys);
    args.extend(argv);
    Step::with(norm, &args)
}

fn eval_strings(rng: &mut StdRng, k: &Keys) -> Step {
    let (body, nkeys, nargs) = *pick(rng, STRING_SCRIPTS);
    eval_step(rng, k, body, nkeys, nargs, Norm::Exact)
}

fn eval_collections(rng: &mut StdRng, k: &Keys) -> Step {
    let available: Vec<_> = COLLECTION_SCRIPTS
        .iter()
        .filter(|(body, ..)| {
            let name = body.split('\'').nth(1).unwrap_or("");
            engine_has(name)
        })
        .collect();
    if available.is_empty() {
        return eval_strings(rng, k);
    }
    let (body, nkeys, nargs, norm) = *available[rng.gen_range(0..available.len())];
    eval_step(rng, k, body, nkeys, nargs, norm)
}

fn eval_conversions(rng: &mut StdRng, k: &Keys) -> Step {
    let (body, nkeys, nargs) = *pick(rng, CONVERSION_SCRIPTS);
    eval_step(rng, k, body, nkeys, nargs, Norm::Exact)
}

fn sha(body: &str) -> String {
    redispair::engine::scripting::sha1_hex(body.as_bytes())
}

fn evalsha(rng: &mut StdRng, k: &Keys) -> Step {
    let (body, nkeys, nargs) = *pick(rng, STRING_SCRIPTS);
    match rng.gen_range(0..10) {
        0 | 1 => Step::exact(&["SCRIPT", "LOAD", body]),
        2 => Step::exact(&["SCRIPT", "EXISTS", &sha(body), &"0".repeat(40)]),
        3 => {
            let mode = *pick(rng, &["", "ASYNC", "SYNC", "BOGUS"]);
            let mut args = vec!["SCRIPT", "FLUSH"];
            if !mode.is_empty() {
                args.push(mode);
            }
            Step::exact(&args)
        }
        4 => Step::exact(&["SCRIPT", "LOAD", "return +"]),
        5 => Step::exact(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]),
        _ => {
            let verb = *pick(rng, &["EVALSHA", "EVALSHA", "EVALSHA_RO"]);
            let mut args = vec![verb.to_string(), sha(body), nkeys.to_string()];
            args.extend((0..nkeys).map(|_| k.pick(rng)));
            args.extend((0..nargs).map(|_| value(rng)));
            Step::exact(&args)
        }
    }
}

/// Two libraries: `difflib_a` with one function (so FUNCTION LIST of it has a defined order)
/// and `difflib_b` with a write function and a `no-writes` one.
const LIB_A: &str = "#!lua name=difflib_a\nredis.register_function('fa_get', function(keys, args) return redis.call('get', keys[1]) end)";
const LIB_A_V2: &str = "#!lua name=difflib_a\nredis.register_function{function_name='fa_get', callback=function(keys, args) return {keys[1], args[1]} end, flags={'no-writes'}, description='second version'}";
const LIB_B: &str = "#!lua name=difflib_b\nlocal function set(keys, args) return redis.call('set', keys[1], args[1]) end\nredis.register_function('fb_set', set)\nredis.register_function{function_name='fb_ro', callback=function(keys) return redis.call('exists', keys[1]) end, flags={'no-writes'}}\nredis.register_function{function_name='fb_bad', callback=function(keys) return redis.call('set', keys[1], 'x') end, flags={'no-writes'}}";
const BAD_LIBS: &[&str] = &[
    "return 1",
    "#!lua\nreturn 1",
    "#!js name=x\nreturn 1",
    "#!lua name=x foo=bar\nreturn 1",
    "#!lua name=difflib_c\nreturn 1",
    "#!lua name=difflib_c\nlocal x =",
    "#!lua name=difflib_c\nx = 1",
    "#!lua name=difflib_c\nredis.call('get', 'k')",
    "#!lua name=difflib_c\nredis.register_function('fa_get', function() return 1 end)",
    "#!lua name=difflib_c\nredis.register_function('bad-name', function() return 1 end)",
    "#!lua name=difflib_c\nredis.register_function('one')",
    "#!lua name=bad-lib\nredis.register_function('f', function() return 1 end)",
    "#!lua name=difflib_c\nredis.register_function{function_name='f', callback=function() end, flags={'nope'}}",
];

fn functions(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..16) {
        0 => Step::exact(&["FUNCTION", "LOAD", LIB_A]),
        1 => Step::exact(&[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            *pick(rng, &[LIB_A, LIB_A_V2]),
        ]),
        2 => Step::exact(&["FUNCTION", "LOAD", LIB_B]),
        3 => Step::exact(&["FUNCTION", "LOAD", *pick(rng, BAD_LIBS)]),
        4 => Step::exact(&[
            "FUNCTION",
            "DELETE",
            *pick(rng, &["difflib_a", "difflib_b", "nolib"]),
        ]),
        5 => Step::exact(&["FUNCTION", "LIST", "LIBRARYNAME", "difflib_a", "WITHCODE"]),
        6 => Step::exact(&["FUNCTION", "LIST", "LIBRARYNAME", "difflib_a"]),
        7 => Step::with(Norm::Shape, &["FUNCTION", "LIST"]),
        8 => Step::exact(&["FUNCTION", "LIST", *pick(rng, &["BOGUS", "LIBRARYNAME"])]),
        9 => {
            if rng.gen_range(0..4) == 0 {
                Step::exact(&["FUNCTION", "FLUSH", *pick(rng, &["SYNC", "ASYNC", "BAD"])])
            } else {
                Step::exact(&["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"])
            }
        }
        10 => Step::exact(&["FCALL", "fa_get", "1", &key, &value(rng)]),
        11 => Step::exact(&["FCALL", "fb_set", "1", &key, &value(rng)]),
        12 => Step::exact(&[
            *pick(rng, &["FCALL", "FCALL_RO"]),
            *pick(rng, &["fb_ro", "fb_bad", "fa_get", "fb_set"]),
            "1",
            &key,
        ]),
        13 => Step::exact(&["FCALL", "nosuchfunc", "0"]),
        14 => Step::exact(&["FCALL", "fa_get", *pick(rng, &["5", "-1", "x"]), &key]),
        _ => Step::exact(&["FCALL_RO", "fa_get", "1", &key, "arg"]),
    }
}
