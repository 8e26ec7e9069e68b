//! Behaviours Redis's own test suite checks, compared reply by reply with Debian's
//! redis-server 7.0.15 (same commands to both, raw RESP frames compared byte for byte): DEBUG
//! PROTOCOL and RESP3 types through scripts, SLOWLOG's redaction and EXEC, EXEC's READONLY,
//! NOREPLICAS, MASTERDOWN and OOM refusals, SWAPDB and WATCH of expired keys, blocked pops
//! and keys of another type, the MULTI/EXEC batch on the replication stream, FUNCTION
//! DUMP/RESTORE both ways and FUNCTION LOAD errors, the script sandbox and cjson settings,
//! error statistics of scripts and their declared flags, CONFIG SET checks, CLIENT INFO qbuf,
//! MONITOR of scripts. Plus, engine
//! only: a busy script is killable while a replica is attached; DEBUG RELOAD options. Does I/O:
//! sockets, processes, files (a scratch data directory).

mod support;

// Counted allocations, as in the engine binary: maxmemory needs used_memory.
#[global_allocator]
static ALLOC: redispair::engine::memory::CountingAllocator =
    redispair::engine::memory::CountingAllocator;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, start_engine, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A redis-server on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    addr: String,
}

impl RedisServer {
    async fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .args(["--enable-debug-command", "yes", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let addr = format!("127.0.0.1:{port}");
        let own_pid = format!("process_id:{}", child.id());
        wait_for(Duration::from_secs(20), "redis-server to answer", || {
            let (addr, own_pid) = (addr.clone(), own_pid.clone());
            async move {
                let Ok(mut c) = Conn::try_connect(&addr).await else {
                    return false;
                };
                let info = c.call(&["INFO", "server"]).await;
                String::from_utf8_lossy(&info).contains(&own_pid)
            }
        })
        .await;
        RedisServer { child, addr }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RESP connection: sends commands, returns each reply's frame as its bytes.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn try_connect(addr: &str) -> std::io::Result<Conn> {
        Ok(Conn {
            stream: TcpStream::connect(addr).await?,
            buf: Vec::new(),
        })
    }
    async fn connect(addr: &str) -> Conn {
        Conn::try_connect(addr).await.expect("connect")
    }
    async fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bytes(&args).await;
    }
    async fn send_bytes(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await.unwrap();
    }
    /// The next complete reply frame (fails after 10 s).
    async fn read(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(n) = frame_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no complete reply in 10 s; got {:?}",
                        String::from_utf8_lossy(&self.buf)
                    )
                })
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
    async fn call(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args).await;
        self.read().await
    }
    async fn text(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.call(args).await).into_owned()
    }
}

/// The length of the first complete RESP2/RESP3 frame in `b`, or None if more bytes are needed.
fn frame_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&b[1..line_end]).ok()?;
    let head = line_end + 2;
    match b[0] {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => Some(head),
        b'$' | b'=' | b'!' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(head);
            }
            let total = head + n as usize + 2;
            (b.len() >= total).then_some(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(head);
            }
            let items = if matches!(b[0], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut at = head;
            for _ in 0..items {
                at += frame_len(&b[at..])?;
            }
            // An attribute precedes the reply it describes: both make one frame here.
            if b[0] == b'|' {
                at += frame_len(&b[at..])?;
            }
            Some(at)
        }
        other => panic!("not a RESP frame: {:?}", other as char),
    }
}

/// Both servers, one connection to each: every step is sent to both and the replies compared.
struct Pair {
    redis: Conn,
    engine: Conn,
}

impl Pair {
    async fn connect(redis: &str, engine: &str) -> Pair {
        Pair {
            redis: Conn::connect(redis).await,
            engine: Conn::connect(engine).await,
        }
    }
    /// `FUNCTION RESTORE <payload> [args...]` to both (the payload is binary): the same reply.
    async fn restore(&mut self, payload: &[u8], rest: &[&str]) {
        let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", payload];
        args.extend(rest.iter().map(|a| a.as_bytes()));
        self.redis.send_bytes(&args).await;
        self.engine.send_bytes(&args).await;
        let (r, e) = (self.redis.read().await, self.engine.read().await);
        assert_eq!(
            String::from_utf8_lossy(&e),
            String::from_utf8_lossy(&r),
            "engine (left) and redis-server (right) differ on FUNCTION RESTORE {rest:?}"
        );
    }
    /// Send to both and assert the same reply; returns it.
    async fn same(&mut self, args: &[&str]) -> String {
        let r = self.redis.call(args).await;
        let e = self.engine.call(args).await;
        assert_eq!(
            String::from_utf8_lossy(&e),
            String::from_utf8_lossy(&r),
            "engine (left) and redis-server (right) differ on {args:?}"
        );
        String::from_utf8_lossy(&r).into_owned()
    }
}

struct Servers {
    redis: RedisServer,
    engine: redispair::engine::server::ServerHandle,
}

impl Servers {
    async fn start() -> Servers {
        Servers {
            redis: RedisServer::start().await,
            engine: start_engine(&[]).await,
        }
    }
    fn engine_addr(&self) -> String {
        self.engine.addr().to_string()
    }
    async fn pair(&self) -> Pair {
        Pair::connect(&self.redis.addr, &self.engine_addr()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_protocol_replies_as_redis_in_resp2_and_resp3() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let types = [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push",
        "verbatim", "true", "false", "nosuch",
    ];
    for t in types {
        p.same(&["DEBUG", "PROTOCOL", t]).await;
    }
    p.redis.call(&["HELLO", "3"]).await;
    p.engine.call(&["HELLO", "3"]).await;
    for t in types {
        p.same(&["DEBUG", "PROTOCOL", t]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_see_resp3_types_of_debug_protocol() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    // Not allowed from scripts until the test hook says so.
    p.same(&[
        "EVAL",
        "return redis.call('debug', 'protocol', 'true')",
        "0",
    ])
    .await;
    p.same(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]).await;
    for client in ["2", "3"] {
        p.redis.call(&["HELLO", client]).await;
        p.engine.call(&["HELLO", client]).await;
        for lua in ["2", "3"] {
            for t in [
                "bignum", "map", "set", "double", "null", "verbatim", "true", "false", "attrib",
            ] {
                let script =
                    format!("redis.setresp({lua}); return redis.call('debug', 'protocol', '{t}')");
                p.same(&["EVAL", &script, "0"]).await;
            }
        }
        // A big number a script returns, with CR/LF in it (sent as spaces).
        p.same(&["EVAL", "return {big_number='123\\r\\n123'}", "0"])
            .await;
    }
    p.same(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]).await;
    p.same(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1b"]).await;
    p.same(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"]).await;
    p.same(&["DEBUG", "REPLYBUFFER", "RESIZING", "0"]).await;
    p.same(&["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "never"])
        .await;
}

/// The argument lists of a SLOWLOG GET reply (ids, times, durations and addresses differ).
fn slowlog_args(reply: &[u8]) -> Vec<Vec<String>> {
    // Parse just enough: entries are arrays of 6; the 4th is an array of bulk strings.
    let text = String::from_utf8_lossy(reply);
    let mut out = Vec::new();
    let mut lines = text.split("\r\n").peekable();
    let _top = lines.next();
    while let Some(l) = lines.next() {
        if l != "*6" {
            continue;
        }
        // id, time, duration
        lines.next();
        lines.next();
        lines.next();
        let n: usize = lines.next().unwrap()[1..].parse().unwrap();
        let mut args = Vec::new();
        for _ in 0..n {
            lines.next(); // $len
            args.push(lines.next().unwrap().to_string());
        }
        out.push(args);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_redacts_secrets_and_logs_what_exec_ran() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    p.same(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])
        .await;
    p.same(&["SLOWLOG", "RESET"]).await;
    p.redis
        .call(&["ACL", "SETUSER", "slowlog test user", "+get"])
        .await;
    p.engine
        .call(&["ACL", "SETUSER", "slowlog test user", "+get"])
        .await;
    p.same(&["CONFIG", "SET", "masterauth", ""]).await;
    p.same(&["ACL", "SETUSER", "slowlog-user", "+get", "+set"])
        .await;
    p.same(&["AUTH", "nosuchuser", "secret"]).await;
    p.same(&["MULTI"]).await;
    p.same(&["SET", "k", "v"]).await;
    p.same(&["EXEC"]).await;
    let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let mut sadd = vec!["SADD", "set"];
    sadd.extend(many.iter().map(|s| s.as_str()));
    p.same(&sadd).await;
    let long = "A".repeat(129);
    p.same(&["SADD", "set", &long]).await;
    p.same(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"])
        .await;
    let r = slowlog_args(&p.redis.call(&["SLOWLOG", "GET", "-1"]).await);
    let e = slowlog_args(&p.engine.call(&["SLOWLOG", "GET", "-1"]).await);
    assert_eq!(e, r, "SLOWLOG GET: engine (left), redis-server (right)");
    // What it must show, so a change to both would not pass unnoticed.
    let flat: Vec<String> = r.iter().map(|a| a.join(" ")).collect();
    assert!(flat.contains(&"ACL SETUSER (redacted) (redacted) (redacted)".to_string()));
    assert!(flat.contains(&"CONFIG SET masterauth (redacted)".to_string()));
    assert!(flat.contains(&"SET k v".to_string()));
    assert!(!flat.iter().any(|a| a.starts_with("EXEC")), "{flat:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_checks_replica_state_once_and_refuses_as_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let dead_port = free_port().to_string();
    // REPLICAOF inside the transaction: the writes queued after it still run.
    p.same(&["MULTI"]).await;
    p.same(&["SET", "foo2", "bar"]).await;
    p.same(&["REPLICAOF", "127.0.0.1", &dead_port]).await;
    p.same(&["SET", "foo3", "bar"]).await;
    p.same(&["EXEC"]).await;
    p.same(&["SET", "foo4", "bar"]).await; // READONLY now
                                           // replica-serve-stale-data no, link down: MASTERDOWN, and EXEC of a GET or PING aborts.
    p.same(&["CONFIG", "SET", "replica-serve-stale-data", "no"])
        .await;
    p.same(&["GET", "foo2"]).await;
    p.same(&["REPLICAOF", "NO", "ONE"]).await;
    p.same(&["MULTI"]).await;
    p.same(&["PING"]).await;
    let mut other = s.pair().await;
    other.same(&["REPLICAOF", "127.0.0.1", &dead_port]).await;
    p.same(&["EXEC"]).await;
    other.same(&["REPLICAOF", "NO", "ONE"]).await;
    p.same(&["CONFIG", "SET", "replica-serve-stale-data", "yes"])
        .await;
    // min-replicas-to-write without replicas: NOREPLICAS, and EXEC with a write aborts.
    p.same(&["MULTI"]).await;
    p.same(&["INCR", "counter"]).await;
    other
        .same(&["CONFIG", "SET", "min-replicas-to-write", "1"])
        .await;
    p.same(&["EXEC"]).await;
    p.same(&["SET", "x", "1"]).await;
    p.same(&["GET", "counter"]).await;
    p.same(&["CONFIG", "SET", "min-replicas-to-write", "0"])
        .await;
    // Over maxmemory: EXEC of a transaction that may grow memory aborts with OOM.
    p.same(&["MULTI"]).await;
    p.same(&["SET", "x", "1"]).await;
    p.same(&["GET", "x"]).await;
    other.same(&["CONFIG", "SET", "maxmemory", "1"]).await;
    p.same(&["EXEC"]).await;
    other.same(&["CONFIG", "SET", "maxmemory", "0"]).await;
    p.same(&["GET", "foo3"]).await;
}

/// The server's clock (TIME) in milliseconds.
async fn server_ms(c: &mut Conn) -> i64 {
    let t = c.text(&["TIME"]).await;
    let nums: Vec<i64> = t
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .map(|l| l.parse().unwrap())
        .collect();
    nums[0] * 1000 + nums[1] / 1000
}

/// Poll until `INFO clients` of `c` reports `n` blocked clients (10 s at most).
async fn wait_blocked(c: &mut Conn, n: usize) {
    let want = format!("blocked_clients:{n}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.text(&["INFO", "clients"]).await.contains(&want) {
        assert!(Instant::now() < deadline, "no {want}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapdb_with_expired_keys_does_not_fail_watch() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    p.same(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).await;
    // A missing watched key replaced by an expired one: no change.
    // Expired without being touched: wait on each server's own clock (TIME), not on the key.
    let mut start = Vec::new();
    for c in [&mut p.redis, &mut p.engine] {
        start.push(server_ms(c).await);
        c.call(&["SET", "x", "foo", "PX", "1"]).await;
    }
    for (c, t0) in [&mut p.redis, &mut p.engine].into_iter().zip(start) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while server_ms(c).await < t0 + 3 {
            assert!(Instant::now() < deadline, "the server clock does not move");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    p.same(&["SELECT", "1"]).await;
    p.same(&["WATCH", "x"]).await;
    p.same(&["SWAPDB", "0", "1"]).await;
    p.same(&["MULTI"]).await;
    p.same(&["PING"]).await;
    p.same(&["EXEC"]).await;
    // A live key replacing the watched one does fail it.
    p.same(&["SELECT", "0"]).await;
    p.same(&["SET", "y", "live"]).await;
    p.same(&["SELECT", "1"]).await;
    p.same(&["WATCH", "y"]).await;
    p.same(&["SWAPDB", "0", "1"]).await;
    p.same(&["MULTI"]).await;
    p.same(&["PING"]).await;
    p.same(&["EXEC"]).await;
    p.same(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_pop_ignores_a_key_of_another_type() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let mut blocked = s.pair().await;
    blocked.redis.send(&["BLPOP", "list", "0"]).await;
    blocked.engine.send(&["BLPOP", "list", "0"]).await;
    wait_blocked(&mut p.redis, 1).await;
    wait_blocked(&mut p.engine, 1).await;
    p.same(&["MULTI"]).await;
    p.same(&["LPUSH", "list", "a"]).await;
    p.same(&["DEL", "list"]).await;
    p.same(&["SET", "list", "foo"]).await;
    p.same(&["EXEC"]).await;
    // Still blocked on both: nothing was answered (the next reply is the pop of "b").
    p.same(&["DEL", "list"]).await;
    p.same(&["LPUSH", "list", "b"]).await;
    let r = blocked.redis.read().await;
    let e = blocked.engine.read().await;
    assert_eq!(String::from_utf8_lossy(&e), String::from_utf8_lossy(&r));
    assert_eq!(r, b"*2\r\n$4\r\nlist\r\n$1\r\nb\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_store_serves_a_blocked_pop() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let mut blocked = s.pair().await;
    blocked.redis.send(&["BLPOP", "dst", "0"]).await;
    blocked.engine.send(&["BLPOP", "dst", "0"]).await;
    wait_blocked(&mut p.redis, 1).await;
    wait_blocked(&mut p.engine, 1).await;
    p.same(&["RPUSH", "src", "3", "1", "2"]).await;
    p.same(&["SORT", "src", "STORE", "dst"]).await;
    let r = blocked.redis.read().await;
    let e = blocked.engine.read().await;
    assert_eq!(String::from_utf8_lossy(&e), String::from_utf8_lossy(&r));
    assert_eq!(r, b"*2\r\n$3\r\ndst\r\n$1\r\n1\r\n");
    p.same(&["LRANGE", "dst", "0", "-1"]).await;
}

/// Read the replication stream after SYNC's RDB payload: the next `n` commands, as text.
async fn stream_commands(c: &mut Conn, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = c.read().await;
        let text = String::from_utf8_lossy(&frame).into_owned();
        // Arrays of bulk strings: keep the arguments only.
        let args: Vec<&str> = text
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .collect();
        // redis-server writes MULTI/EXEC in lower case, the engine in upper case (the
        // suite's reader compares lower-cased too).
        out.push(args.join(" ").to_lowercase());
    }
    out
}

/// SYNC and skip the RDB payload (and the newlines a master may send before it).
async fn sync(addr: &str) -> Conn {
    let mut c = Conn::connect(addr).await;
    c.stream.write_all(b"SYNC\r\n").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while c.buf.first() == Some(&b'\n') {
            c.buf.remove(0);
        }
        if let Some(end) = c.buf.windows(2).position(|w| w == b"\r\n") {
            let len: usize = std::str::from_utf8(&c.buf[1..end])
                .unwrap()
                .parse()
                .unwrap();
            if c.buf.len() >= end + 2 + len {
                c.buf.drain(..end + 2 + len);
                return c;
            }
        }
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout_at(deadline.into(), c.stream.read(&mut chunk))
            .await
            .expect("RDB payload in time")
            .unwrap();
        assert!(n > 0, "connection closed during SYNC");
        c.buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_across_databases_is_streamed_as_redis_streams_it() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    p.same(&["SET", "before", "1"]).await;
    let mut r = sync(&s.redis.addr).await;
    let mut e = sync(&s.engine_addr()).await;
    p.same(&["MULTI"]).await;
    for (db, key) in [("1", "a"), ("2", "b"), ("3", "c")] {
        p.same(&["SELECT", db]).await;
        p.same(&["SET", key, "v"]).await;
    }
    p.same(&["EXEC"]).await;
    let want = 8; // select, multi, set, select, set, select, set, exec
    let rs = stream_commands(&mut r, want).await;
    let es = stream_commands(&mut e, want).await;
    // The first SELECT names whatever database the stream was last in; the rest must agree.
    assert_eq!(es[1..], rs[1..], "engine (left), redis-server (right)");
    assert_eq!(rs.last().map(|s| s.as_str()), Some("exec"));
}

/// An engine binary on a free port (its default single network thread, as in production),
/// killed on drop.
struct EngineProcess {
    child: Child,
    addr: String,
}

impl EngineProcess {
    async fn start(extra: &[&str]) -> EngineProcess {
        let port = free_port();
        let dir = support::temp_dir(&format!("compat-{port}"));
        let child = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--persistence", "off", "--dir", dir.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the engine binary runs");
        let addr = format!("127.0.0.1:{port}");
        let own_pid = format!("process_id:{}", child.id());
        wait_for(Duration::from_secs(20), "the engine to answer", || {
            let (addr, own_pid) = (addr.clone(), own_pid.clone());
            async move {
                let Ok(mut c) = Conn::try_connect(&addr).await else {
                    return false;
                };
                String::from_utf8_lossy(&c.call(&["INFO", "server"]).await).contains(&own_pid)
            }
        })
        .await;
        EngineProcess { child, addr }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Engine only: a script past busy-reply-threshold can be killed while a replica is attached
/// and after a REPLICAOF / REPLICAOF NO ONE (their replication tasks once took the state with
/// a blocking lock and held the only network thread, so SCRIPT KILL was never read). The engine
/// runs as its own process: in-process it would share this test's runtime threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_script_is_killable_with_a_replica_attached() {
    let engine =
        EngineProcess::start(&["--busy-reply-threshold", "10", "--worker-threads", "1"]).await;
    let addr = engine.addr.clone();
    let _replica = sync(&addr).await;
    let mut admin = Conn::connect(&addr).await;
    let dead_port = free_port().to_string();
    admin.call(&["REPLICAOF", "127.0.0.1", &dead_port]).await;
    admin.call(&["REPLICAOF", "NO", "ONE"]).await;
    let mut runner = Conn::connect(&addr).await;
    runner.send(&["EVAL", "while true do end", "0"]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !admin.text(&["PING"]).await.starts_with("-BUSY") {
        assert!(Instant::now() < deadline, "the script never became busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(admin.text(&["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(runner
        .read()
        .await
        .starts_with(b"-ERR Script killed by user with SCRIPT KILL"));
    assert_eq!(admin.text(&["PING"]).await, "+PONG\r\n");
}

/// A library with two functions, as the suite's tests write them.
/// (One function per library: Redis lists a library's functions in its hash table's order.)
const LIB1: &str = "#!lua name=lib1\nlocal function add1(a) return a + 1 end\nredis.register_function{function_name='F2', callback=function(keys, args) return add1(2) end, flags={'NO-WRITES', 'allow-oom'}, description='two'}";
const LIB2: &str =
    "#!lua name=lib2\nredis.register_function('f3', function(keys, args) return 3 end)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_dump_and_restore_move_libraries_both_ways_with_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    p.same(&["FUNCTION", "LOAD", LIB1]).await;
    p.same(&["FUNCTION", "LOAD", LIB2]).await;
    // Names of functions match without case, libraries' with it.
    p.same(&["FCALL", "F2", "0"]).await;
    p.same(&["FCALL_RO", "f2", "0"]).await;
    for lib in ["lib1", "lib2", "other"] {
        p.same(&["FUNCTION", "LIST", "LIBRARYNAME", lib]).await;
    }
    // The engine's payload restored into redis-server, and redis-server's into the engine:
    // each side then lists exactly what the other had.
    let from_engine = p.engine.call(&["FUNCTION", "DUMP"]).await;
    let from_redis = p.redis.call(&["FUNCTION", "DUMP"]).await;
    // A bulk string frame: "$<len>\r\n<payload>\r\n" (the payload is not UTF-8 in general).
    let payload = |frame: &[u8]| -> Vec<u8> {
        let start = frame.iter().position(|&b| b == b'\n').unwrap() + 1;
        frame[start..frame.len() - 2].to_vec()
    };
    let (e_payload, r_payload) = (payload(&from_engine), payload(&from_redis));
    p.same(&["FUNCTION", "FLUSH"]).await;
    p.redis
        .send_bytes(&[b"FUNCTION", b"RESTORE", &e_payload])
        .await;
    p.engine
        .send_bytes(&[b"FUNCTION", b"RESTORE", &r_payload])
        .await;
    let (r, e) = (p.redis.read().await, p.engine.read().await);
    assert_eq!(
        (r.as_slice(), e.as_slice()),
        (&b"+OK\r\n"[..], &b"+OK\r\n"[..])
    );
    for lib in ["lib1", "lib2", "other"] {
        p.same(&["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", lib])
            .await;
    }
    p.same(&["FCALL", "f3", "0"]).await;
    // The policies (redis-server's payload to both): APPEND (the default) refuses an existing
    // library, REPLACE checks function names against the other libraries, FLUSH starts over;
    // a failure changes nothing.
    // (Which of two existing libraries Redis names depends on its hash table's order: only
    // one exists here.)
    p.same(&["FUNCTION", "DELETE", "lib2"]).await;
    p.restore(&r_payload, &[]).await;
    p.restore(&r_payload, &["APPEND"]).await;
    p.same(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=other\nredis.register_function('f3', function() return 33 end)",
    ])
    .await;
    p.restore(&r_payload, &["REPLACE"]).await;
    for lib in ["lib1", "lib2", "other"] {
        p.same(&["FUNCTION", "LIST", "LIBRARYNAME", lib]).await;
    }
    p.restore(&r_payload, &["FLUSH"]).await;
    for lib in ["lib1", "lib2", "other"] {
        p.same(&["FUNCTION", "LIST", "LIBRARYNAME", lib]).await;
    }
    p.restore(&r_payload, &["BAD"]).await;
    p.restore(b"bad_payload", &[]).await;
    p.restore(&r_payload, &["FLUSH", "x"]).await;
    p.same(&["FUNCTION", "RESTORE"]).await;
    p.same(&["FUNCTION", "FLUSH", "SYNC", "x"]).await;
    p.same(&["SCRIPT", "FLUSH", "SYNC", "x"]).await;
    p.same(&[
        "FUNCTION",
        "LIST",
        "WITHCODE",
        "LIBRARYNAME",
        "a",
        "LIBRARYNAME",
        "b",
    ])
    .await;
    for lib in ["lib1", "lib2", "other"] {
        p.same(&["FUNCTION", "LIST", "LIBRARYNAME", lib]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_load_errors_are_redis_errors() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let f = "redis.register_function('f', function() return 1 end)";
    let cases = [
        // Metadata: split like sdssplitargs, errors in Redis's order.
        format!("#!lua name=a name=b\n{f}"),
        format!("#! name=a\n{f}"),
        format!("#!lua name=\"quoted\"\n{f}"),
        format!("#!lua name=\"unbalanced\n{f}"),
        format!("#!bad name=bad-name\n{f}"),
        format!("#!LUA NAME=upper\n{f}"),
        "#!lua name=nonl".to_string(),
        // register_function's arguments.
        "#!lua name=r\nredis.register_function(nil, function() return 1 end)".to_string(),
        "#!lua name=r\nredis.register_function('f', 'not a function')".to_string(),
        "#!lua name=r\nredis.register_function(5, function() return 1 end)".to_string(),
        "#!lua name=r2\nredis.register_function{function_name=function() end, callback=function() end}".to_string(),
        "#!lua name=r\nredis.register_function{function_name='f', callback='x'}".to_string(),
        "#!lua name=r\nredis.register_function{function_name='f', callback=function() end, description=function() end}".to_string(),
        "#!lua name=r\nredis.register_function{function_name='f', callback=function() end, flags='x'}".to_string(),
        "#!lua name=r\nredis.register_function{function_name='f', callback=function() end, flags={1}}".to_string(),
        "#!lua name=r\nredis.register_function{[1]='f', callback=function() end}".to_string(),
        "#!lua name=r\nredis.register_function('x', function() end)\nredis.register_function('X', function() end)".to_string(),
        // Only the library API is visible while loading.
        "#!lua name=r\nreturn math.random()".to_string(),
        "#!lua name=r\nreturn redis.setresp(3)".to_string(),
        "#!lua name=r\nmt = getmetatable(_G)".to_string(),
        "#!lua name=r\nlocal s = string.format('%d', 1)".to_string(),
    ];
    for code in &cases {
        p.same(&["FUNCTION", "LOAD", code]).await;
    }
    p.same(&["FUNCTION", "LOAD", "foo", "bar", &cases[2]]).await;
    p.same(&["FUNCTION", "LOAD", "REPLACE", "replace", &cases[2]])
        .await;
    // A function that kept the load-time API cannot register later.
    p.same(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=keep\nlocal lib = redis\nlib.register_function('later', function() lib.register_function('x', function() end) end)",
    ])
    .await;
    p.same(&["FCALL", "later", "0"]).await;
    // Redis lists libraries in its hash table's order, the engine in load order: one at a time.
    for lib in ["r", "quoted", "keep", "upper", "r2"] {
        p.same(&["FUNCTION", "LIST", "LIBRARYNAME", lib]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_sandbox_and_libraries_answer_as_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    for script in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G); g.__index = {}",
        "return type(getmetatable(_G))",
        "return loadstring(string.dump(function() return 1 end))()",
        "return {cjson.encode_keep_buffer(false), cjson.encode_keep_buffer(), cjson.encode_keep_buffer('on')}",
        "return cjson.encode_keep_buffer('x')",
        "return cjson.encode_keep_buffer(1, 2)",
        "cjson.encode_max_depth(1); local ok = pcall(cjson.encode, {a={1}}); cjson.encode_max_depth(1000); return ok",
        "cjson.decode_max_depth(1); local ok = pcall(cjson.decode, '{\"a\":[1]}'); cjson.decode_max_depth(1000); return ok",
        "cjson.encode_invalid_numbers(true); local s = cjson.encode({0/0, 1/0, -1/0}); cjson.encode_invalid_numbers(false); return s",
        "cjson.encode_invalid_numbers('null'); local s = cjson.encode({0/0}); cjson.encode_invalid_numbers(false); return s",
        "return cjson.encode_max_depth(0)",
        "return {cjson.encode_number_precision(3), cjson.encode({1/3}), cjson.encode_number_precision(14)}",
        "return {cjson.encode_sparse_array(true), cjson.encode({[20]=1}), cjson.encode_sparse_array(false)}",
        "return redis.acl_check_cmd('set', 'x', 1)",
        "return redis.acl_check_cmd('nosuch')",
        "return redis.pcall('bzpopmin', 'z', 0)",
        "return redis.pcall('cluster', 'reset', 'hard')",
    ] {
        p.same(&["EVAL", script, "0"]).await;
    }
    p.same(&["CLUSTER", "INFO"]).await;
    p.same(&["SADD", "myset", "b", "a", "c", "aa", "10", "2"])
        .await;
    p.same(&[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'by', '_')",
        "1",
        "myset",
    ])
    .await;
}

/// The error statistics and per-command counts (without the times) of INFO.
async fn error_stats(c: &mut Conn) -> Vec<String> {
    let text = c.text(&["INFO", "everything"]).await;
    text.lines()
        .filter(|l| {
            l.starts_with("errorstat_")
                || l.starts_with("total_error_replies")
                || l.starts_with("cmdstat_")
        })
        .map(|l| {
            // cmdstat_x:calls=N,usec=N,usec_per_call=N,rejected_calls=N,failed_calls=N
            l.split(',')
                .filter(|f| !f.starts_with("usec"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_count_errors_once_and_judge_declared_flags_as_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    p.same(&["SET", "x", "1"]).await;
    p.same(&["CONFIG", "SET", "maxmemory", "1"]).await;
    for script in [
        "return redis.call('set', 'x', 'y')",
        "local t = redis.pcall('set', 'x', 'y') return t['err']",
        "return redis.pcall('set', 'x', 'y')",
        "return redis.pcall('nosuchcmd')",
        "return redis.pcall('get')",
        "return redis.pcall('eval', 'return 1', 0)",
        "return redis.pcall()",
        "return redis.call('select', 99)",
        "return redis.error_reply('MY err')",
        // Declared flags replace the command's: refused up front unless allow-oom/no-writes.
        "#!lua flags=\nreturn 1",
        "#!lua\nreturn redis.call('get', 'x')",
        "#!lua flags=no-writes\nreturn redis.call('get', 'x')",
        "#!lua flags=allow-oom\nreturn redis.call('set', 'x', 2)",
        "#!lua flags=allow-oom,what?\nreturn 1",
        "#!lua\nreturn 1",
    ] {
        p.same(&["CONFIG", "RESETSTAT"]).await;
        p.same(&["EVAL", script, "1", "x"]).await;
        assert_eq!(
            error_stats(&mut p.engine).await,
            error_stats(&mut p.redis).await,
            "statistics after {script:?} (engine left)"
        );
    }
    p.same(&["CONFIG", "SET", "maxmemory", "0"]).await;
    p.same(&["CONFIG", "SET", "min-replicas-to-write", "1"])
        .await;
    for script in [
        "#!lua flags=no-writes\nreturn redis.call('get', 'x')",
        "return redis.call('get', 'x')",
        "#!lua\nreturn redis.call('get', 'x')",
        "return redis.call('set', 'x', 1)",
    ] {
        p.same(&["EVAL", script, "1", "x"]).await;
    }
    p.same(&["CONFIG", "SET", "min-replicas-to-write", "0"])
        .await;
    p.same(&["SCRIPT", "LOAD", "return 1"]).await;
    let cached = |info: String| {
        info.lines()
            .find(|l| l.starts_with("number_of_"))
            .map(str::to_string)
    };
    assert_eq!(
        cached(p.engine.text(&["INFO", "memory"]).await),
        cached(p.redis.text(&["INFO", "memory"]).await)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_reload_options_keep_or_merge_the_dataset() {
    let dir = std::env::temp_dir().join(format!("redispair-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let engine = start_engine(&[("dir", dir.to_str().unwrap())]).await;
    let mut c = Conn::connect(&engine.addr().to_string()).await;
    c.call(&["FUNCTION", "LOAD", LIB1]).await;
    c.call(&["SET", "k", "1"]).await;
    assert_eq!(c.text(&["DEBUG", "RELOAD"]).await, "+OK\r\n");
    // Loading the file into a dataset that holds it already fails without MERGE (Redis: its
    // first library), and changes nothing.
    assert_eq!(
        c.text(&["DEBUG", "RELOAD", "NOFLUSH"]).await,
        "-ERR Error trying to load the RDB dump, check server logs.\r\n"
    );
    c.call(&["FUNCTION", "LOAD", LIB2]).await;
    c.call(&["SET", "k2", "2"]).await;
    // NOSAVE NOFLUSH MERGE: the file (lib1, k) merged into memory (lib1, lib2, k, k2).
    assert_eq!(
        c.text(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"])
            .await,
        "+OK\r\n"
    );
    assert_eq!(c.text(&["FCALL", "f3", "0"]).await, ":3\r\n");
    assert_eq!(c.text(&["FCALL", "f2", "0"]).await, ":3\r\n");
    assert_eq!(c.text(&["DBSIZE"]).await, ":2\r\n");
    // NOSAVE alone: back to the file as saved (lib1, k).
    assert_eq!(c.text(&["DEBUG", "RELOAD", "NOSAVE"]).await, "+OK\r\n");
    assert_eq!(c.text(&["DBSIZE"]).await, ":1\r\n");
    assert!(c
        .text(&["FCALL", "f3", "0"])
        .await
        .starts_with("-ERR Function not found"));
    assert_eq!(
        c.text(&["DEBUG", "RELOAD", "BAD"]).await,
        "-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_checks_and_client_info_qbuf_as_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    for args in [
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "maxmemory",
            "10000002",
        ][..],
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "MAXMEMORY",
            "10000002",
        ],
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "maxmemory-clients",
            "200%",
            "client-query-buffer-limit",
            "invalid",
        ],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory-clients", "10%"],
        &["CONFIG", "GET", "maxmemory-clients"],
        &["CONFIG", "SET", "maxmemory-clients", "0"],
        &["CONFIG", "SET", "daemonize", "no"],
        &["CONFIG", "SET", "repl-diskless-sync", "no"],
        &["CONFIG", "GET", "repl-diskless-sync"],
        &["CONFIG", "GET", "key-load-delay"],
        &["CONFIG", "GET", "key-load-*"],
        &["CONFIG", "GET", "replicaof"],
        &["CONFIG", "GET", "slaveof"],
    ] {
        p.same(args).await;
    }
    // The asking client's own command is in its query buffer (qbuf) while it runs.
    let qbuf = |line: String| {
        line.split(' ')
            .find(|f| f.starts_with("qbuf="))
            .map(str::to_string)
    };
    assert_eq!(
        qbuf(p.engine.text(&["CLIENT", "INFO"]).await),
        qbuf(p.redis.text(&["CLIENT", "INFO"]).await)
    );
}

/// The next MONITOR line without its timestamp and client address.
async fn monitor_line(c: &mut Conn) -> String {
    let line = String::from_utf8_lossy(&c.read().await).into_owned();
    // +1700000000.123456 [0 127.0.0.1:5555] "set" ...  /  [0 lua] "set" ...
    let (_, rest) = line.split_once(' ').unwrap_or(("", &line));
    let (db_and_addr, cmd) = rest.split_once("] ").unwrap_or((rest, ""));
    let db = db_and_addr
        .trim_start_matches('[')
        .split(' ')
        .next()
        .unwrap_or("");
    let who = if db_and_addr.ends_with(" lua") {
        "lua"
    } else {
        "client"
    };
    format!("[{db} {who}] {}", cmd.trim_end())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_a_script_before_its_commands_as_redis() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let mut redis_mon = Conn::connect(&s.redis.addr).await;
    let mut engine_mon = Conn::connect(&s.engine_addr()).await;
    assert_eq!(redis_mon.text(&["MONITOR"]).await, "+OK\r\n");
    assert_eq!(engine_mon.text(&["MONITOR"]).await, "+OK\r\n");
    p.same(&[
        "EVAL",
        "redis.call('set', KEYS[1], ARGV[1])",
        "1",
        "foo",
        "bar",
    ])
    .await;
    p.same(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=m\nredis.register_function('m', function() return redis.call('get', 'foo') end)",
    ])
    .await;
    p.same(&["FCALL", "m", "0"]).await;
    for _ in 0..5 {
        assert_eq!(
            monitor_line(&mut engine_mon).await,
            monitor_line(&mut redis_mon).await
        );
    }
}

/// Every command redis-server 7.0.15 lists exists in the engine (COMMAND LIST), and those of
/// features the engine deliberately lacks answer as a Redis without them, or with an error that
/// names the decision (docs/compatibility.md, "Commands answered without the feature").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_command_exists_and_the_absent_features_say_so() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    let list = |reply: &[u8]| -> std::collections::BTreeSet<String> {
        String::from_utf8_lossy(reply)
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .map(str::to_string)
            .collect()
    };
    let redis = list(&p.redis.call(&["COMMAND", "LIST"]).await);
    let engine = list(&p.engine.call(&["COMMAND", "LIST"]).await);
    let missing: Vec<_> = redis.difference(&engine).collect();
    assert!(
        redis.len() > 200,
        "COMMAND LIST of redis-server: {}",
        redis.len()
    );
    assert!(
        missing.is_empty(),
        "commands redis-server has and the engine lacks: {missing:?}"
    );

    // Answered exactly as redis-server answers (without modules, cluster mode or a debugger
    // session).
    p.same(&["MODULE", "LIST"]).await;
    p.same(&["MODULE", "HELP"]).await;
    p.same(&["FUNCTION", "HELP"]).await;
    // Every HELP ends as Redis's `addReplyHelp` ends it ("Prints this help.": the engine said
    // "Print" in five of them until this test compared them).
    for c in [
        "CLIENT", "CONFIG", "OBJECT", "MEMORY", "XINFO", "SLOWLOG", "LATENCY", "ACL", "COMMAND",
        "PUBSUB", "SCRIPT", "XGROUP",
    ] {
        let (r, e) = (
            p.redis.call(&[c, "HELP"]).await,
            p.engine.call(&[c, "HELP"]).await,
        );
        let last = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end()
                .rsplit("\r\n")
                .next()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(last(&e), last(&r), "the last line of {c} HELP");
    }
    p.same(&["ASKING"]).await;
    p.same(&["SCRIPT", "DEBUG", "NO"]).await;
    p.same(&["SCRIPT", "DEBUG", "MAYBE"]).await;
    p.same(&["LOLWUT", "VERSION", "x"]).await;
    p.same(&["LOLWUT"]).await;
    // RESTORE-ASKING is RESTORE without cluster mode.
    p.same(&["SET", "src", "v"]).await;
    let dump = p.engine.call(&["DUMP", "src"]).await;
    let payload = &dump[dump.iter().position(|&b| b == b'\n').unwrap() + 1..dump.len() - 2];
    for c in [&mut p.redis, &mut p.engine] {
        c.send_bytes(&[b"RESTORE-ASKING", b"dst", b"0", payload])
            .await;
        assert_eq!(c.read().await, b"+OK\r\n");
    }
    p.same(&["GET", "dst"]).await;
    // DEBUG POPULATE fills as redis-server does (names, values, sizes, errors). (FLUSHALL
    // first: the redis-server may have loaded a dump.rdb another test left in its directory.)
    p.same(&["FLUSHALL"]).await;
    p.same(&["DEBUG", "POPULATE", "5"]).await;
    p.same(&["DEBUG", "POPULATE", "3", "p", "12"]).await;
    p.same(&["DEBUG", "POPULATE", "3", "q", "4"]).await;
    for k in ["key:0", "key:4", "p:2", "q:1"] {
        p.same(&["GET", k]).await;
    }
    p.same(&["DBSIZE"]).await;
    p.same(&["DEBUG", "POPULATE", "-1"]).await;
    p.same(&["DEBUG", "POPULATE", "x"]).await;
    p.same(&["DEBUG", "POPULATE", "1", "k", "-3"]).await;
    // The refusals name the decision.
    let e =
        String::from_utf8_lossy(&p.engine.call(&["MODULE", "LOAD", "/x.so"]).await).into_owned();
    assert!(
        e.starts_with("-ERR Error loading the extension") && e.contains("no module API"),
        "{e}"
    );
    // (redis-server refuses MODULE LOAD/UNLOAD by default, `enable-module-command no`, a
    // setting the engine does not have: its own reasons instead.)
    let e = String::from_utf8_lossy(&p.engine.call(&["MODULE", "UNLOAD", "x"]).await).into_owned();
    assert!(e.contains("no such module"), "{e}");
    let e = String::from_utf8_lossy(&p.engine.call(&["FAILOVER"]).await).into_owned();
    assert!(e.starts_with("-ERR FAILOVER is not supported"), "{e}");
    let e = String::from_utf8_lossy(&p.engine.call(&["SCRIPT", "DEBUG", "YES"]).await).into_owned();
    assert!(e.contains("no Lua debugger"), "{e}");
}

/// OBJECT ENCODING of strings as redis-server reports it: `int` / `embstr` when set whole,
/// `raw` once changed in place (SETRANGE, APPEND, SETBIT), `int` again after INCR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_changed_in_place_are_raw() {
    let s = Servers::start().await;
    let mut p = s.pair().await;
    for step in [
        &["SET", "k", "1234"][..],
        &["OBJECT", "ENCODING", "k"],
        &["SETRANGE", "k", "0", ""],
        &["OBJECT", "ENCODING", "k"],
        &["SETRANGE", "k", "0", "2"],
        &["OBJECT", "ENCODING", "k"],
        &["INCR", "k"],
        &["OBJECT", "ENCODING", "k"],
        &["SET", "s", "short"],
        &["OBJECT", "ENCODING", "s"],
        &["APPEND", "s", "er"],
        &["OBJECT", "ENCODING", "s"],
        &["SET", "b", "x"],
        &["SETBIT", "b", "1", "1"],
        &["OBJECT", "ENCODING", "b"],
    ] {
        p.same(step).await;
    }
}
