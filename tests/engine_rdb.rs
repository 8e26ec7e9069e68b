//! RDB files both ways between Debian's redis-server (7.0) and the engine: redis-server's
//! `dump.rdb` (every type, compact and plain encodings, expiries, several databases, a function
//! library) loads into the engine; the engine's `SAVE` and `rdb-export` files pass
//! `redis-check-rdb` and load into redis-server; both sides are compared key by key, TTLs
//! included. Damaged files stop a start with a clear error. Does I/O: processes, loopback
//! sockets, temporary directories.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{redis_conn_to, start_engine, temp_dir, wait_for};

const LIB: &str = "#!lua name=rdblib\nredis.register_function('answer', function() return 42 end)";

async fn qs(c: &mut MultiplexedConnection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Value>(c)
        .await
        .map_err(|e| format!("{} {}", e.code().unwrap_or("ERR"), e.detail().unwrap_or("")))
}

/// A redis-server on a free loopback port with its own `dir`, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    async fn start(dir: &std::path::Path, extra: &[&str]) -> RedisServer {
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
    fn url(&self) -> String {
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
async fn dataset(url: &str) -> BTreeMap<(u32, String), (String, i64)> {
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
async fn fill(url: &str) {
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

async fn fcall_answer(url: &str) -> Result<Value, String> {
    let mut c = redis_conn_to(url).await.unwrap();
    qs(&mut c, &["FCALL", "answer", "0"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_servers_dump_rdb_loads_into_the_engine_key_by_key() {
    // Small packed thresholds make the small keys listpacks/intsets and several quicklist
    // nodes (some LZF-compressed); the large ones are hashtables, skiplists and plain nodes.
    let rdir = temp_dir("rdb-from-redis-r");
    let redis = RedisServer::start(
        &rdir,
        &[
            "--list-max-listpack-size",
            "4",
            "--list-compress-depth",
            "1",
        ],
    )
    .await;
    fill(&redis.url()).await;
    let mut c = redis_conn_to(&redis.url()).await.unwrap();
    qs(&mut c, &["SAVE"]).await.unwrap();
    let expected = dataset(&redis.url()).await;
    assert!(expected.len() > 20);

    for persistence in ["off", "on"] {
        let edir = temp_dir(&format!("rdb-from-redis-e-{persistence}"));
        std::fs::copy(rdir.join("dump.rdb"), edir.join("dump.rdb")).unwrap();
        let dir = edir.display().to_string();
        let h = start_engine(&[("dir", &dir), ("persistence", persistence)]).await;
        let url = format!("redis://{}/", h.addr());
        assert_eq!(dataset(&url).await, expected, "persistence {persistence}");
        assert_eq!(fcall_answer(&url).await, Ok(Value::Int(42)));
        h.stop().await;
        if persistence == "on" {
            // The import was snapshotted into the log: a restart has it without the file.
            std::fs::remove_file(edir.join("dump.rdb")).unwrap();
            let h = start_engine(&[("dir", &dir), ("persistence", "on")]).await;
            assert_eq!(dataset(&url_of(&h)).await, expected, "after a restart");
            h.stop().await;
        }
        std::fs::remove_dir_all(&edir).unwrap();
    }
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
}

fn url_of(h: &redispair::engine::server::ServerHandle) -> String {
    format!("redis://{}/", h.addr())
}

fn check_rdb(path: &std::path::Path) {
    let out = Command::new("redis-check-rdb")
        .arg(path)
        .output()
        .expect("redis-check-rdb is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused {}:\n{text}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_save_passes_redis_check_rdb_and_loads_into_redis_server() {
    let edir = temp_dir("rdb-to-redis-e");
    let dir = edir.display().to_string();
    let h = start_engine(&[("dir", &dir), ("persistence", "off")]).await;
    let url = url_of(&h);
    fill(&url).await;
    let expected = dataset(&url).await;
    let mut c = redis_conn_to(&url).await.unwrap();
    assert_eq!(qs(&mut c, &["SAVE"]).await, Ok(Value::Okay));
    check_rdb(&edir.join("dump.rdb"));

    // BGSAVE writes the same dataset, in the background.
    std::fs::remove_file(edir.join("dump.rdb")).unwrap();
    let started = qs(&mut c, &["BGSAVE"]).await;
    assert_eq!(
        started,
        Ok(Value::SimpleString("Background saving started".into()))
    );
    wait_for(Duration::from_secs(30), "BGSAVE to finish", || {
        let url = url.clone();
        async move {
            let mut c = redis_conn_to(&url).await.unwrap();
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut c)
                .await
                .unwrap();
            info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_last_bgsave_status:ok")
        }
    })
    .await;
    check_rdb(&edir.join("dump.rdb"));
    // DEBUG RELOAD (save, empty, load) keeps everything.
    assert_eq!(qs(&mut c, &["DEBUG", "RELOAD"]).await, Ok(Value::Okay));
    assert_eq!(dataset(&url).await, expected, "after DEBUG RELOAD");
    h.stop().await;

    let redis = RedisServer::start(&edir, &[]).await;
    assert_eq!(dataset(&redis.url()).await, expected);
    assert_eq!(fcall_answer(&redis.url()).await, Ok(Value::Int(42)));
    drop(redis);
    std::fs::remove_dir_all(&edir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdb_export_writes_a_stopped_engines_data_directory_as_an_rdb_file() {
    let edir = temp_dir("rdb-export-e");
    let dir = edir.display().to_string();
    let h = start_engine(&[("dir", &dir), ("persistence", "on")]).await;
    let url = url_of(&h);
    fill(&url).await;
    let expected = dataset(&url).await;
    // A running engine's directory is refused.
    let out_dir = temp_dir("rdb-export-out");
    let refused = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg("rdb-export")
        .arg(&edir)
        .arg(out_dir.join("dump.rdb"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("an engine is running"));
    h.stop().await;

    let out = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg("rdb-export")
        .arg(&edir)
        .arg(out_dir.join("dump.rdb"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_rdb(&out_dir.join("dump.rdb"));
    let redis = RedisServer::start(&out_dir, &[]).await;
    assert_eq!(dataset(&redis.url()).await, expected);
    assert_eq!(fcall_answer(&redis.url()).await, Ok(Value::Int(42)));
    drop(redis);
    std::fs::remove_dir_all(&edir).unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_dump_rdb_stops_the_start_with_a_clear_error() {
    let rdir = temp_dir("rdb-damaged-r");
    let redis = RedisServer::start(&rdir, &[]).await;
    fill(&redis.url()).await;
    let mut c = redis_conn_to(&redis.url()).await.unwrap();
    qs(&mut c, &["SAVE"]).await.unwrap();
    drop(redis);
    let good = std::fs::read(rdir.join("dump.rdb")).unwrap();
    let edir = temp_dir("rdb-damaged-e");
    let start = |dir: std::path::PathBuf| async move {
        let mut cfg = redispair::engine::config::Config::default();
        cfg.set_startup("port", "0").unwrap();
        cfg.set_startup("bind", "127.0.0.1").unwrap();
        cfg.set_startup("persistence", "off").unwrap();
        cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
        match redispair::engine::server::start(cfg).await {
            Ok(h) => {
                h.stop().await;
                String::new()
            }
            Err(e) => e.to_string(),
        }
    };
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("checksum mismatch", {
            let mut d = good.clone();
            let mid = d.len() / 2;
            d[mid] ^= 0x40;
            d
        }),
        ("not an RDB file", b"hello".to_vec()),
    ];
    for (want, data) in cases {
        std::fs::write(edir.join("dump.rdb"), &data).unwrap();
        let e = start(edir.clone()).await;
        assert!(e.contains("dump.rdb") && e.contains(want), "{want}: {e}");
    }
    std::fs::remove_dir_all(&rdir).unwrap();
    std::fs::remove_dir_all(&edir).unwrap();
}
