//! Black-box tests of the generic key commands over TCP, including DUMP/RESTORE both ways
//! between Debian's redis-server and the engine.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{redis_conn, redis_conn_to, start_engine, wait_for};

/// Run one command and return the raw reply (errors as `Err` text).
async fn q(c: &mut MultiplexedConnection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Value>(c).await.map_err(|e| {
        // "BUSYKEY: Target key..." → the Redis error line, so tests compare Redis's wording.
        let code = e.code().unwrap_or("ERR").to_string();
        let detail = e.detail().unwrap_or("").to_string();
        format!("{code} {detail}")
    })
}

async fn qs(c: &mut MultiplexedConnection, args: &[&str]) -> Result<Value, String> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(c, &v).await
}

fn int(v: Result<Value, String>) -> i64 {
    match v {
        Ok(Value::Int(n)) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn bulk(v: Result<Value, String>) -> Option<Vec<u8>> {
    match v {
        Ok(Value::BulkString(b)) => Some(b),
        Ok(Value::Nil) => None,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn ok(v: Result<Value, String>) {
    match v {
        Ok(Value::Okay) => {}
        Ok(Value::SimpleString(s)) if s == "OK" => {}
        other => panic!("expected OK, got {other:?}"),
    }
}

fn err(v: Result<Value, String>) -> String {
    match v {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A redis-server on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    async fn start(extra: &[&str]) -> RedisServer {
        let port = support::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .args(["--enable-debug-command", "yes", "--loglevel", "warning"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        // Ready when *this* redis-server answers (another listener could hold the port).
        let url = format!("redis://127.0.0.1:{port}/");
        let own_pid = format!("process_id:{}", child.id());
        wait_for(Duration::from_secs(20), "redis-server to answer", || {
            let (url, own_pid) = (url.clone(), own_pid.clone());
            async move {
                let Ok(mut c) = redis_conn_to(&url).await else {
                    return false;
                };
                let info: redis::RedisResult<String> =
                    redis::cmd("INFO").arg("server").query_async(&mut c).await;
                info.is_ok_and(|i| i.lines().any(|l| l.trim_end() == own_pid))
            }
        })
        .await;
        RedisServer { child, port }
    }
    async fn conn(&self) -> MultiplexedConnection {
        redis_conn_to(&format!("redis://127.0.0.1:{}/", self.port))
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The content of a key on redis-server, in a comparable form.
async fn content(c: &mut MultiplexedConnection, key: &str) -> String {
    let t = match qs(c, &["TYPE", key]).await {
        Ok(Value::SimpleString(s)) => s,
        other => panic!("TYPE failed: {other:?}"),
    };
    let v = match t.as_str() {
        "string" => qs(c, &["GET", key]).await,
        "list" => qs(c, &["LRANGE", key, "0", "-1"]).await,
        "hash" => qs(c, &["HGETALL", key]).await,
        "set" => qs(c, &["SMEMBERS", key]).await,
        "zset" => qs(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]).await,
        other => panic!("unexpected type {other}"),
    };
    let mut parts: Vec<String> = match v {
        Ok(Value::Array(items)) => items.iter().map(|i| format!("{i:?}")).collect(),
        Ok(Value::Map(pairs)) => pairs.iter().map(|p| format!("{p:?}")).collect(),
        Ok(Value::Set(items)) => items.iter().map(|i| format!("{i:?}")).collect(),
        other => vec![format!("{other:?}")],
    };
    if t == "hash" || t == "set" {
        if t == "hash" {
            // HGETALL is a flat array: sort pairs, not elements.
            let pairs: Vec<String> = parts.chunks(2).map(|c| c.join("=")).collect();
            parts = pairs;
        }
        parts.sort();
    }
    format!("{t}:{}", parts.join(","))
}

/// Build one key of every type and encoding redis-server 7.0 DUMPs.
async fn build_reference_keys(r: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |k: &str| keys.push(k.to_string());
    for (k, v) in [
        ("s:int8", "-5".to_string()),
        ("s:int16", "12345".to_string()),
        ("s:int32", "-2000000000".to_string()),
        ("s:int64", "1099511627776".to_string()),
        ("s:raw", "hello".to_string()),
        ("s:empty", String::new()),
        ("s:lzf", "abcdefgh".repeat(40)),
        (
            "s:long",
            (0..300)
                .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
                .collect(),
        ),
    ] {
        ok(qs(r, &["SET", k, &v]).await);
        add(k);
    }
    // Lists: small, many listpack nodes (some LZF-compressed by list-compress-depth), integer
    // elements of every listpack width, and plain nodes for large elements.
    int(qs(r, &["RPUSH", "l:small", "a", "1", "-1"]).await);
    add("l:small");
    let numbers = [
        "0",
        "127",
        "-1",
        "4095",
        "-4096",
        "32767",
        "-32768",
        "8388607",
        "-8388608",
        "2147483647",
        "-2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "x",
    ];
    let mut big: Vec<String> = Vec::new();
    for i in 0..60 {
        big.push(format!("element-number-{i}-{}", "z".repeat(i % 5 * 10)));
        big.push(numbers[i % numbers.len()].to_string());
    }
    big.push("w".repeat(5000));
    let mut args: Vec<&str> = vec!["RPUSH", "l:big"];
    args.extend(big.iter().map(String::as_str));
    int(qs(r, &args).await);
    add("l:big");
    ok(qs(r, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]).await);
    let large = "p".repeat(300);
    int(qs(r, &["RPUSH", "l:plain", "a", &large, "b"]).await);
    add("l:plain");
    // Hashes: listpack, hashtable by count, hashtable by value length.
    int(qs(
        r,
        &["HSET", "h:small", "f", "v", "n", "-12", "big", "70000"],
    )
    .await);
    add("h:small");
    let mut args: Vec<String> = vec!["HSET".into(), "h:big".into()];
    for i in 0..600 {
        args.push(format!("field{i}"));
        args.push(format!("{}", i * 1000));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    int(qs(r, &refs).await);
    add("h:big");
    int(qs(r, &["HSET", "h:longval", "f", &"v".repeat(100)]).await);
    add("h:longval");
    // Sets: intsets of each width, hashtable by strings, hashtable by count.
    int(qs(r, &["SADD", "set:i16", "1", "-2", "300"]).await);
    int(qs(r, &["SADD", "set:i32", "1", "70000"]).await);
    int(qs(r, &["SADD", "set:i64", "1", "-5000000000"]).await);
    int(qs(r, &["SADD", "set:str", "a", "b", "1"]).await);
    let mut args: Vec<String> = vec!["SADD".into(), "set:big".into()];
    args.extend((0..600).map(|i| i.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    int(qs(r, &refs).await);
    for k in ["set:i16", "set:i32", "set:i64", "set:str", "set:big"] {
        add(k);
    }
    // Sorted sets: listpack (integer and float scores, infinities) and skiplist.
    int(qs(
        r,
        &[
            "ZADD", "z:small", "1", "a", "2.5", "b", "-inf", "c", "1e300", "d",
        ],
    )
    .await);
    add("z:small");
    let mut args: Vec<String> = vec!["ZADD".into(), "z:big".into()];
    for i in 0..200 {
        args.push(format!("{}", i as f64 / 3.0));
        args.push(format!("member{i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    int(qs(r, &refs).await);
    add("z:big");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_restore_moves_every_type_and_encoding_both_ways() {
    let redis = RedisServer::start(&[
        "--list-max-listpack-size",
        "4",
        "--list-compress-depth",
        "1",
    ])
    .await;
    let mut r = redis.conn().await;
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    let keys = build_reference_keys(&mut r).await;
    let mut rdb_types = std::collections::BTreeSet::new();
    for key in &keys {
        // redis-server → engine.
        let payload = bulk(qs(&mut r, &["DUMP", key]).await).expect("key exists");
        rdb_types.insert(payload[0]);
        let restored = q(&mut e, &[b"RESTORE", key.as_bytes(), b"0", &payload]).await;
        ok(restored);
        assert_eq!(
            qs(&mut e, &["TYPE", key]).await,
            qs(&mut r, &["TYPE", key]).await,
            "{key}"
        );
        if key.starts_with("s:") {
            assert_eq!(
                qs(&mut e, &["GET", key]).await,
                qs(&mut r, &["GET", key]).await
            );
        }
        // Hashes/sets/sorted sets report their encoding by the same thresholds; lists in 7.0
        // are always quicklists.
        assert_eq!(
            qs(&mut e, &["OBJECT", "ENCODING", key]).await,
            qs(&mut r, &["OBJECT", "ENCODING", key]).await,
            "encoding of {key}"
        );
        // engine → redis-server, into a new key, then compare content on redis-server.
        let back = bulk(qs(&mut e, &["DUMP", key]).await).expect("key exists on the engine");
        let copy = format!("back:{key}");
        ok(q(&mut r, &[b"RESTORE", copy.as_bytes(), b"0", &back]).await);
        assert_eq!(
            content(&mut r, key).await,
            content(&mut r, &copy).await,
            "{key}"
        );
    }
    // Every RDB type redis-server 7.0 writes was exercised: string, set, hash, zset2, intset,
    // listpack hash, listpack zset, quicklist2.
    assert_eq!(
        rdb_types.into_iter().collect::<Vec<u8>>(),
        vec![0, 2, 4, 5, 11, 16, 17, 18]
    );
    h.stop().await;
}

/// A ziplist (the pre-7.0 packed encoding) of raw entries: each is (encoding+data) bytes.
fn ziplist(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev_len = 0usize;
    let mut tail = 10;
    for e in entries {
        tail = 10 + body.len();
        let mut entry = Vec::new();
        if prev_len < 254 {
            entry.push(prev_len as u8);
        } else {
            entry.push(0xFE);
            entry.extend_from_slice(&(prev_len as u32).to_le_bytes());
        }
        entry.extend_from_slice(e);
        prev_len = entry.len();
        body.extend_from_slice(&entry);
    }
    let total = 10 + body.len() + 1;
    let mut zl = Vec::new();
    zl.extend_from_slice(&(total as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

/// A DUMP payload of one RDB type whose value is a single length-prefixed blob (or, for the
/// quicklist, a node count then blobs).
fn payload(rdb_type: u8, blobs: &[Vec<u8>], with_count: bool) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 64 {
            out.push(n as u8);
        } else {
            out.push(0x40 | (n >> 8) as u8);
            out.push(n as u8);
        }
    }
    let mut p = vec![rdb_type];
    if with_count {
        len(&mut p, blobs.len());
    }
    for b in blobs {
        len(&mut p, b.len());
        p.extend_from_slice(b);
    }
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = redispair::engine::storage::rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn zl_str(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

/// Payloads in the encodings of Redis 3.2–6.2 (ziplists, quicklist of ziplists), which both
/// redis-server 7.0 and the engine must load identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_7_ziplist_payloads_load_like_redis() {
    let redis = RedisServer::start(&[]).await;
    let mut r = redis.conn().await;
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    let ints: Vec<Vec<u8>> = vec![
        vec![0xF1],                            // immediate 0
        vec![0xFD],                            // immediate 12
        vec![0xFE, 0x85],                      // int8 -123
        vec![0xC0, 0x18, 0xFC],                // int16 -1000
        vec![0xF0, 0xA0, 0x86, 0x01],          // int24 100000
        vec![0xD0, 0x00, 0x94, 0x35, 0x77],    // int32
        vec![0xE0, 1, 2, 3, 4, 5, 6, 7, 0x80], // int64
    ];
    let mut list_entries = vec![zl_str(b"first")];
    list_entries.extend(ints.iter().cloned());
    let long: Vec<u8> = [&[0x41u8, 0x2C][..], &[b'q'; 300][..]].concat();
    list_entries.push(long);
    let cases = [
        ("zl:list", payload(10, &[ziplist(&list_entries)], false)),
        (
            "zl:quicklist",
            payload(
                14,
                &[ziplist(&list_entries), ziplist(&[zl_str(b"x")])],
                true,
            ),
        ),
        (
            "zl:hash",
            payload(
                13,
                &[ziplist(&[
                    zl_str(b"f"),
                    zl_str(b"v"),
                    zl_str(b"n"),
                    vec![0xFD],
                ])],
                false,
            ),
        ),
        (
            "zl:zset",
            payload(
                12,
                &[ziplist(&[
                    zl_str(b"a"),
                    vec![0xF3],
                    zl_str(b"b"),
                    zl_str(b"2.5"),
                ])],
                false,
            ),
        ),
    ];
    for (key, p) in &cases {
        ok(q(&mut r, &[b"RESTORE", key.as_bytes(), b"0", p]).await);
        ok(q(&mut e, &[b"RESTORE", key.as_bytes(), b"0", p]).await);
        let back = bulk(qs(&mut e, &["DUMP", key]).await).unwrap();
        let copy = format!("back:{key}");
        ok(q(&mut r, &[b"RESTORE", copy.as_bytes(), b"0", &back]).await);
        assert_eq!(
            content(&mut r, key).await,
            content(&mut r, &copy).await,
            "{key}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn restore_options_and_errors() {
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    ok(qs(&mut e, &["SET", "src", "value"]).await);
    let payload = bulk(qs(&mut e, &["DUMP", "src"]).await).unwrap();
    assert_eq!(bulk(qs(&mut e, &["DUMP", "missing"]).await), None);
    let restore = |key: &'static str, ttl: &'static str, opts: &'static [&'static str]| {
        let mut args: Vec<Vec<u8>> =
            vec![b"RESTORE".to_vec(), key.into(), ttl.into(), payload.clone()];
        args.extend(opts.iter().map(|o| o.as_bytes().to_vec()));
        args
    };
    let runner = e.clone();
    let run = |args: Vec<Vec<u8>>| {
        let mut c = runner.clone();
        async move {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            q(&mut c, &refs).await
        }
    };
    assert_eq!(
        err(run(restore("src", "0", &[])).await),
        "BUSYKEY Target key name already exists."
    );
    ok(run(restore("src", "0", &["REPLACE"])).await);
    assert_eq!(
        err(run(restore("new", "-1", &[])).await),
        "ERR Invalid TTL value, must be >= 0"
    );
    assert_eq!(
        err(run(restore("new", "0", &["BOGUS"])).await),
        "ERR syntax error"
    );
    assert_eq!(
        err(run(restore("new", "0", &["IDLETIME", "-1"])).await),
        "ERR Invalid IDLETIME value, must be >= 0"
    );
    assert_eq!(
        err(run(restore("new", "0", &["FREQ", "256"])).await),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
    assert_eq!(
        err(run(restore("new", "0", &["IDLETIME", "1", "FREQ", "1"])).await),
        "ERR syntax error"
    );
    let mut corrupt = payload.clone();
    corrupt[2] ^= 0x20;
    assert_eq!(
        err(q(&mut e, &[b"RESTORE", b"new", b"0", &corrupt]).await),
        "ERR DUMP payload version or checksum are wrong"
    );
    // TTL relative, absolute, and already in the past.
    ok(run(restore("ttl", "100000", &[])).await);
    let pttl = int(qs(&mut e, &["PTTL", "ttl"]).await);
    assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
    ok(run(restore("abs", "4102444800000", &["ABSTTL"])).await);
    assert_eq!(int(qs(&mut e, &["EXPIRETIME", "abs"]).await), 4102444800);
    assert_eq!(
        int(qs(&mut e, &["PEXPIRETIME", "abs"]).await),
        4102444800000
    );
    ok(run(restore("past", "1", &["ABSTTL"])).await);
    assert_eq!(int(qs(&mut e, &["EXISTS", "past"]).await), 0);
    ok(run(restore("abs", "1", &["ABSTTL", "REPLACE"])).await);
    assert_eq!(int(qs(&mut e, &["EXISTS", "abs"]).await), 0);
    // IDLETIME under LRU, FREQ under LFU.
    ok(run(restore("idle", "0", &["IDLETIME", "1000"])).await);
    let idle = int(qs(&mut e, &["OBJECT", "IDLETIME", "idle"]).await);
    assert!((1000..1005).contains(&idle), "{idle}");
    // Inspection does not count as an access (Redis's LOOKUP_NOTOUCH); a read does.
    for cmd in [
        "TYPE",
        "EXISTS",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "OBJECT ENCODING",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("idle");
        qs(&mut e, &args).await.unwrap();
    }
    assert!(int(qs(&mut e, &["OBJECT", "IDLETIME", "idle"]).await) >= 1000);
    bulk(qs(&mut e, &["GET", "idle"]).await);
    assert!(int(qs(&mut e, &["OBJECT", "IDLETIME", "idle"]).await) <= 1);
    ok(qs(
        &mut e,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    )
    .await);
    ok(run(restore("freq", "0", &["FREQ", "100"])).await);
    assert_eq!(int(qs(&mut e, &["OBJECT", "FREQ", "freq"]).await), 100);
    h.stop().await;
}

#[tokio::test]
async fn rename_move_copy_and_swapdb() {
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    assert_eq!(
        err(qs(&mut e, &["RENAME", "nope", "x"]).await),
        "ERR no such key"
    );
    assert_eq!(
        err(qs(&mut e, &["RENAMENX", "nope", "x"]).await),
        "ERR no such key"
    );
    ok(qs(&mut e, &["SET", "a", "1"]).await);
    int(qs(&mut e, &["EXPIRE", "a", "1000"]).await);
    ok(qs(&mut e, &["RENAME", "a", "b"]).await);
    assert!(int(qs(&mut e, &["TTL", "b"]).await) > 990);
    ok(qs(&mut e, &["RENAME", "b", "b"]).await);
    ok(qs(&mut e, &["SET", "c", "2"]).await);
    assert_eq!(int(qs(&mut e, &["RENAMENX", "b", "c"]).await), 0);
    assert_eq!(int(qs(&mut e, &["RENAMENX", "b", "b"]).await), 0);
    assert_eq!(int(qs(&mut e, &["RENAMENX", "b", "d"]).await), 1);

    assert_eq!(
        err(qs(&mut e, &["MOVE", "d", "0"]).await),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(qs(&mut e, &["MOVE", "d", "16"]).await),
        "ERR DB index is out of range"
    );
    assert_eq!(int(qs(&mut e, &["MOVE", "d", "1"]).await), 1);
    assert_eq!(int(qs(&mut e, &["MOVE", "d", "1"]).await), 0);
    assert_eq!(int(qs(&mut e, &["COPY", "c", "d", "DB", "1"]).await), 0);
    assert_eq!(
        int(qs(&mut e, &["COPY", "c", "d", "DB", "1", "REPLACE"]).await),
        1
    );
    assert_eq!(int(qs(&mut e, &["COPY", "c", "e"]).await), 1);
    assert_eq!(
        err(qs(&mut e, &["COPY", "c", "e", "BOGUS"]).await),
        "ERR syntax error"
    );
    assert_eq!(
        err(qs(&mut e, &["COPY", "c", "c"]).await),
        "ERR source and destination objects are the same"
    );
    assert_eq!(int(qs(&mut e, &["TOUCH", "c", "e", "zz"]).await), 2);

    // SWAPDB exchanges databases and fails transactions watching either of them.
    let mut w = redis_conn(&h).await;
    ok(qs(&mut w, &["WATCH", "c"]).await);
    assert_eq!(
        err(qs(&mut e, &["SWAPDB", "0", "x"]).await),
        "ERR invalid second DB index"
    );
    assert_eq!(
        err(qs(&mut e, &["SWAPDB", "0", "16"]).await),
        "ERR DB index is out of range"
    );
    ok(qs(&mut e, &["SWAPDB", "0", "1"]).await);
    assert_eq!(bulk(qs(&mut e, &["GET", "d"]).await), Some(b"2".to_vec()));
    assert_eq!(bulk(qs(&mut e, &["GET", "c"]).await), None);
    ok(qs(&mut w, &["MULTI"]).await);
    qs(&mut w, &["SET", "c", "x"]).await.unwrap();
    assert_eq!(qs(&mut w, &["EXEC"]).await, Ok(Value::Nil));
    h.stop().await;
}

#[tokio::test]
async fn scan_walks_every_key_with_filters() {
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    for i in 0..500 {
        ok(qs(&mut e, &["SET", &format!("key:{i}"), "v"]).await);
    }
    assert_eq!(err(qs(&mut e, &["SCAN", "x"]).await), "ERR invalid cursor");
    assert_eq!(
        err(qs(&mut e, &["SCAN", "0", "COUNT", "0"]).await),
        "ERR syntax error"
    );
    assert_eq!(
        err(qs(&mut e, &["SCAN", "0", "MATCH"]).await),
        "ERR syntax error"
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = qs(&mut e, &["SCAN", &cursor, "MATCH", "key:1*", "COUNT", "37"]).await;
        let Ok(Value::Array(parts)) = reply else {
            panic!("{reply:?}")
        };
        let (Value::BulkString(next), Value::Array(keys)) = (&parts[0], &parts[1]) else {
            panic!("{parts:?}")
        };
        for k in keys {
            let Value::BulkString(k) = k else { panic!() };
            seen.insert(String::from_utf8(k.clone()).unwrap());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let expected: std::collections::BTreeSet<String> = (0..500)
        .map(|i| format!("key:{i}"))
        .filter(|k| k.starts_with("key:1"))
        .collect();
    assert_eq!(seen, expected);
    let reply = qs(&mut e, &["SCAN", "0", "COUNT", "1000", "TYPE", "list"]).await;
    assert_eq!(
        reply,
        Ok(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![])
        ]))
    );
    assert!(bulk(qs(&mut e, &["RANDOMKEY"]).await).is_some());
    ok(qs(&mut e, &["FLUSHDB"]).await);
    assert_eq!(bulk(qs(&mut e, &["RANDOMKEY"]).await), None);
    h.stop().await;
}

#[tokio::test]
async fn object_subcommands() {
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    ok(qs(&mut e, &["SET", "i", "123"]).await);
    ok(qs(&mut e, &["SET", "s", "short"]).await);
    ok(qs(&mut e, &["SET", "r", &"r".repeat(45)]).await);
    for (k, enc) in [("i", "int"), ("s", "embstr"), ("r", "raw")] {
        assert_eq!(
            bulk(qs(&mut e, &["OBJECT", "ENCODING", k]).await),
            Some(enc.as_bytes().to_vec())
        );
    }
    assert_eq!(
        bulk(qs(&mut e, &["OBJECT", "ENCODING", "none"]).await),
        None
    );
    assert_eq!(
        int(qs(&mut e, &["OBJECT", "REFCOUNT", "i"]).await),
        2147483647
    );
    assert_eq!(int(qs(&mut e, &["OBJECT", "REFCOUNT", "s"]).await), 1);
    assert!(int(qs(&mut e, &["OBJECT", "IDLETIME", "s"]).await) <= 1);
    assert!(err(qs(&mut e, &["OBJECT", "FREQ", "s"]).await)
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    ok(qs(
        &mut e,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
    )
    .await);
    assert!(err(qs(&mut e, &["OBJECT", "IDLETIME", "s"]).await)
        .starts_with("ERR An LFU maxmemory policy is selected"));
    ok(qs(&mut e, &["SET", "f", "v"]).await);
    for _ in 0..200 {
        bulk(qs(&mut e, &["GET", "f"]).await);
    }
    let freq = int(qs(&mut e, &["OBJECT", "FREQ", "f"]).await);
    assert!(freq > 5, "an accessed key's LFU counter grows: {freq}");
    assert!(matches!(qs(&mut e, &["OBJECT", "HELP"]).await, Ok(Value::Array(l)) if l.len() == 15));
    assert_eq!(
        err(qs(&mut e, &["OBJECT", "BOGUS"]).await),
        "ERR unknown subcommand 'BOGUS'. Try OBJECT HELP."
    );
    assert_eq!(int(qs(&mut e, &["EXPIRETIME", "f"]).await), -1);
    assert_eq!(int(qs(&mut e, &["EXPIRETIME", "none"]).await), -2);
    assert_eq!(
        int(qs(&mut e, &["PEXPIREAT", "f", "4102444800123"]).await),
        1
    );
    assert_eq!(int(qs(&mut e, &["EXPIRETIME", "f"]).await), 4102444800);
    assert_eq!(
        int(qs(&mut e, &["EXPIREAT", "f", "4102444800", "GT"]).await),
        0
    );
    assert_eq!(int(qs(&mut e, &["EXPIREAT", "f", "1"]).await), 1);
    assert_eq!(int(qs(&mut e, &["EXISTS", "f"]).await), 0);
    h.stop().await;
}

/// EXPIREAT / PEXPIREAT with a time of 0 or below deletes the key at once, as any deadline in
/// the past does (a deadline of 0 once meant "no TTL" and left the key alive for good; the
/// differential test found it, seed 1672436686000).
#[tokio::test]
async fn a_deadline_of_zero_or_below_deletes_the_key() {
    let s = start_engine(&[]).await;
    let mut c = redis_conn(&s).await;
    for (cmd, at) in [("EXPIREAT", "0"), ("PEXPIREAT", "-5"), ("EXPIREAT", "1")] {
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut c)
            .await
            .unwrap();
        let n: i64 = redis::cmd(cmd)
            .arg("k")
            .arg(at)
            .arg("LT")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 1, "{cmd} {at}");
        let exists: i64 = redis::cmd("EXISTS")
            .arg("k")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(exists, 0, "{cmd} {at} deletes the key");
    }
}

/// The TTL of `key` in milliseconds (-1: none, -2: missing).
async fn pttl(c: &mut MultiplexedConnection, key: &str) -> i64 {
    int(qs(c, &["PTTL", key]).await)
}

/// Wait until the replica behind `rc` holds `n` of the keys s, h and l.
async fn replica_holds(rc: &MultiplexedConnection, n: i64, what: &str) {
    wait_for(Duration::from_secs(30), what, || {
        let mut rc = rc.clone();
        async move {
            let held: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(&["s", "h", "l"])
                .query_async(&mut rc)
                .await;
            support::unless_loading(held) == Some(n)
        }
    })
    .await;
}

/// MIGRATE both ways between the engine and Debian's redis-server: keys arrive with their
/// content and TTL and leave the source (not with COPY), a target's error or an unreachable
/// target leaves them where they were, the moved keys reach the engine's replica as DEL, and
/// the keyspace event is `del` for a moved key only. Multi-threaded: the engine's MIGRATE blocks
/// its worker while it waits for the target, as Redis's blocks the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_keys_both_ways_with_redis_server() {
    let redis = RedisServer::start(&[]).await;
    let mut r = redis.conn().await;
    ok(qs(
        &mut r,
        &["ACL", "SETUSER", "mover", "on", ">pw", "~*", "+@all"],
    )
    .await);
    let rport = redis.port.to_string();
    let e = start_engine(&[]).await;
    let mut c = redis_conn(&e).await;
    // A replica of the engine, to see what MIGRATE propagates.
    let replica = start_engine(&[]).await;
    let mut rc = redis_conn(&replica).await;
    let eport = e.addr().port().to_string();
    ok(qs(&mut rc, &["REPLICAOF", "127.0.0.1", &eport]).await);
    // Keyspace events on the engine.
    ok(qs(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]).await);
    let mut events = support::RawClient::connect(&e).await;
    events.cmd(&["SUBSCRIBE", "__keyevent@0__:del"]).await;
    events
        .expect(b"*3\r\n$9\r\nsubscribe\r\n$18\r\n__keyevent@0__:del\r\n:1\r\n")
        .await;

    ok(qs(&mut c, &["SET", "s", "plain"]).await);
    int(qs(&mut c, &["HSET", "h", "f", "v", "g", "w"]).await);
    int(qs(&mut c, &["PEXPIRE", "h", "100000"]).await);
    int(qs(&mut c, &["RPUSH", "l", "a", "b", "c"]).await);
    replica_holds(&rc, 3, "the replica to hold s, h, l").await;

    // Nothing to move: NOKEY, without connecting anywhere (port 1 would refuse).
    match qs(
        &mut c,
        &["MIGRATE", "127.0.0.1", "1", "missing", "0", "1000"],
    )
    .await
    {
        Ok(Value::SimpleString(s)) => assert_eq!(s, "NOKEY"),
        other => panic!("expected NOKEY, got {other:?}"),
    }
    // An unreachable target: IOERR, the key stays.
    let closed = support::free_port().to_string();
    let e1 = err(qs(&mut c, &["MIGRATE", "127.0.0.1", &closed, "s", "0", "1000"]).await);
    assert!(e1.starts_with("IOERR"), "{e1}");
    assert_eq!(bulk(qs(&mut c, &["GET", "s"]).await).unwrap(), b"plain");
    // A target that refuses the credentials: its error, the keys stay.
    let e2 = err(qs(
        &mut c,
        &[
            "MIGRATE",
            "127.0.0.1",
            &rport,
            "",
            "0",
            "5000",
            "AUTH2",
            "mover",
            "wrong",
            "KEYS",
            "s",
            "h",
        ],
    )
    .await);
    assert!(
        e2.contains("Target instance replied with error: WRONGPASS"),
        "{e2}"
    );
    assert_eq!(int(qs(&mut c, &["EXISTS", "s", "h"]).await), 2);
    // ... and nothing was restored there as the default user (Redis pipelines the RESTOREs
    // behind the AUTH and they run anyway).
    assert_eq!(int(qs(&mut r, &["EXISTS", "s", "h"]).await), 0);

    // COPY: on both sides.
    ok(qs(
        &mut c,
        &["MIGRATE", "127.0.0.1", &rport, "s", "0", "5000", "COPY"],
    )
    .await);
    assert_eq!(bulk(qs(&mut r, &["GET", "s"]).await).unwrap(), b"plain");
    assert_eq!(bulk(qs(&mut c, &["GET", "s"]).await).unwrap(), b"plain");
    // Again without REPLACE: the target's BUSYKEY, the key stays here.
    let e3 = err(qs(&mut c, &["MIGRATE", "127.0.0.1", &rport, "s", "0", "5000"]).await);
    assert!(
        e3.contains("Target instance replied with error: BUSYKEY"),
        "{e3}"
    );
    assert_eq!(int(qs(&mut c, &["EXISTS", "s"]).await), 1);

    // The move: several keys, one missing, AUTH2, REPLACE.
    ok(qs(
        &mut c,
        &[
            "MIGRATE",
            "127.0.0.1",
            &rport,
            "",
            "0",
            "5000",
            "REPLACE",
            "AUTH2",
            "mover",
            "pw",
            "KEYS",
            "s",
            "h",
            "l",
            "missing",
        ],
    )
    .await);
    assert_eq!(int(qs(&mut c, &["EXISTS", "s", "h", "l"]).await), 0);
    assert_eq!(bulk(qs(&mut r, &["GET", "s"]).await).unwrap(), b"plain");
    assert_eq!(bulk(qs(&mut r, &["HGET", "h", "g"]).await).unwrap(), b"w");
    assert_eq!(int(qs(&mut r, &["LLEN", "l"]).await), 3);
    assert_eq!(pttl(&mut r, "s").await, -1);
    let ttl = pttl(&mut r, "h").await;
    assert!((1..=100000).contains(&ttl), "the TTL travels: {ttl}");
    // The replica follows: the move reached it as DEL.
    replica_holds(&rc, 0, "the replica to drop s, h, l").await;
    // One `del` event per moved key, none for the COPY or the refused attempts.
    for key in ["s", "h", "l"] {
        let msg = format!(
            "*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:del\r\n${}\r\n{key}\r\n",
            key.len()
        );
        events.expect(msg.as_bytes()).await;
    }

    // Into another database of the target.
    ok(qs(&mut c, &["SET", "d", "x"]).await);
    ok(qs(&mut c, &["MIGRATE", "127.0.0.1", &rport, "d", "3", "5000"]).await);
    ok(qs(&mut r, &["SELECT", "3"]).await);
    assert_eq!(bulk(qs(&mut r, &["GET", "d"]).await).unwrap(), b"x");
    ok(qs(&mut r, &["SELECT", "0"]).await);

    // redis-server → engine: migration in, TTL included.
    int(qs(&mut r, &["PEXPIRE", "l", "200000"]).await);
    ok(qs(
        &mut r,
        &[
            "MIGRATE",
            "127.0.0.1",
            &eport,
            "",
            "0",
            "5000",
            "KEYS",
            "s",
            "l",
        ],
    )
    .await);
    assert_eq!(int(qs(&mut r, &["EXISTS", "s", "l"]).await), 0);
    assert_eq!(bulk(qs(&mut c, &["GET", "s"]).await).unwrap(), b"plain");
    assert_eq!(int(qs(&mut c, &["LLEN", "l"]).await), 3);
    let ttl = pttl(&mut c, "l").await;
    assert!((100000..=200000).contains(&ttl), "the TTL travels: {ttl}");
}
