//! Shared by the RDB and stock-Redis replication tests: a redis-server child process, a
//! dataset of every type filled through any server, and a key-by-key dump (content and
//! PEXPIRETIME) to compare two servers. Does I/O: processes, loopback sockets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::support::{self, redis_conn_to, wait_for};

pub const LIB: &str =
    "#!lua name=rdblib\nredis.register_function('answer', function() return 42 end)";

pub async fn qs(c: &mut MultiplexedConnection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Value>(c)
        .await
        .map_err(|e| format!("{} {}", e.code().unwrap_or("ERR"), e.detail().unwrap_or("")))
}

/// A redis-server on a free loopback port with its own `dir`, killed on drop.
pub struct RedisServer {
    pub child: Child,
    pub port: u16,
}

impl RedisServer {
    pub async fn start(dir: &std::path::Path, extra: &[&str]) -> RedisServer {
        let port = support::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(["--enable-debug-command", "yes", "--loglevel", "warning"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let url = format!("redis://127.0.0.1:{port}/");
        let own_pid = format!("process_id:{}", child.id());
        wait_for(Duration::from_secs(20), "redis-server to answer", || {
            let (url, own_pid) = (url.clone(), own_pid.clone());
            async move {
                let Ok(mut c) = redis_conn_to(&url).await else {
                    return false;
                };
                // Not while it is still loading its RDB file.
                let info: redis::RedisResult<String> = redis::cmd("INFO").query_async(&mut c).await;
                info.is_ok_and(|i| {
                    i.lines().any(|l| l.trim_end() == own_pid)
                        && i.lines().any(|l| l.trim_end() == "loading:0")
                })
            }
        })
        .await;
        RedisServer { child, port }
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The content of a key in a comparable form (sets and hashes sorted).
pub async fn content(c: &mut MultiplexedConnection, key: &str) -> String {
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
        other => vec![format!("{other:?}")],
    };
    if t == "hash" {
        parts = parts.chunks(2).map(|c| c.join("=")).collect();
        parts.sort();
    } else if t == "set" {
        parts.sort();
    }
    format!("{t}:{}", parts.join(","))
}

/// Every key of databases 0..16 with its content and PEXPIRETIME.
pub async fn dataset(url: &str) -> BTreeMap<(u32, String), (String, i64)> {
    let mut out = BTreeMap::new();
    for db in 0..16u32 {
        let mut c = redis_conn_to(&format!("{url}{db}")).await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap();
        for k in keys {
            let body = content(&mut c, &k).await;
            let at: i64 = redis::cmd("PEXPIRETIME")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap();
            out.insert((db, k), (body, at));
        }
    }
    out
}

/// Fill a server with every type in small (compact) and large (plain) forms, expiries, three
/// databases, a HyperLogLog and a function library. `cmds` run on db 0 unless a SELECT says.
pub async fn fill(url: &str) {
    let mut c = redis_conn_to(url).await.unwrap();
    let long = "v".repeat(100);
    let big_list: Vec<String> = (0..300).map(|i| format!("item-{i}")).collect();
    let mut cmds: Vec<Vec<String>> = vec![
        vec!["SET".into(), "s:int".into(), "12345".into()],
        vec!["SET".into(), "s:neg".into(), "-2000000000".into()],
        vec!["SET".into(), "s:i64".into(), "1099511627776".into()],
        vec!["SET".into(), "s:empty".into(), String::new()],
        vec!["SET".into(), "s:lzf".into(), "abcdefgh".repeat(100)],
        vec![
            "SET".into(),
            "s:ttl".into(),
            "soon".into(),
            "PX".into(),
            "86400000".into(),
        ],
        vec!["SET".into(), "s:bin".into(), "\u{0}\u{1}\r\n\u{ff}".into()],
        vec![
            "RPUSH".into(),
            "l:small".into(),
            "a".into(),
            "1".into(),
            "-7".into(),
        ],
        vec![
            "HSET".into(),
            "h:small".into(),
            "f".into(),
            "v".into(),
            "n".into(),
            "12".into(),
        ],
        vec!["HSET".into(), "h:long".into(), "f".into(), long.clone()],
        vec![
            "SADD".into(),
            "set:int".into(),
            "1".into(),
            "-2".into(),
            "70000".into(),
        ],
        vec!["SADD".into(), "set:str".into(), "a".into(), "b".into()],
        vec![
            "ZADD".into(),
            "z:small".into(),
            "1".into(),
            "a".into(),
            "2.5".into(),
            "b".into(),
            "-inf".into(),
            "c".into(),
        ],
        vec!["ZADD".into(), "z:long".into(), "3".into(), long.clone()],
        vec![
            "PFADD".into(),
            "hll".into(),
            "a".into(),
            "b".into(),
            "c".into(),
        ],
        vec!["PEXPIRE".into(), "h:small".into(), "500000000".into()],
    ];
    let mut l = vec!["RPUSH".to_string(), "l:big".into()];
    l.extend(big_list.iter().cloned());
    l.push("w".repeat(10_000));
    cmds.push(l);
    let mut h = vec!["HSET".to_string(), "h:big".into()];
    let mut s = vec!["SADD".to_string(), "set:big".into()];
    let mut z = vec!["ZADD".to_string(), "z:big".into()];
    for i in 0..600 {
        h.push(format!("field{i}"));
        h.push(format!("{}", i * 1000));
        s.push(format!("m{i}"));
        z.push(format!("{}", i as f64 / 3.0));
        z.push(format!("member{i}"));
    }
    cmds.extend([h, s, z]);
    let mut si = vec!["SADD".to_string(), "set:bigint".into()];
    si.extend((0..600).map(|i| (i * 7).to_string()));
    cmds.push(si);
    for cmd in &cmds {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        qs(&mut c, &args)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    let mut c3 = redis_conn_to(&format!("{url}3")).await.unwrap();
    qs(&mut c3, &["SET", "in-db-3", "x", "EX", "1000"])
        .await
        .unwrap();
    qs(&mut c3, &["RPUSH", "l3", "p", "q"]).await.unwrap();
    let mut c15 = redis_conn_to(&format!("{url}15")).await.unwrap();
    qs(&mut c15, &["HSET", "h15", "a", "1"]).await.unwrap();
    qs(&mut c, &["FUNCTION", "LOAD", LIB]).await.unwrap();
}

pub async fn fcall_answer(url: &str) -> Result<Value, String> {
    let mut c = redis_conn_to(url).await.unwrap();
    qs(&mut c, &["FCALL", "answer", "0"]).await
}
