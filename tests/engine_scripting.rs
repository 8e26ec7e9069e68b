//! Scripting over TCP: EVAL/EVALSHA/SCRIPT, FUNCTION/FCALL, the sandbox, atomicity with respect
//! to other clients, and effects replication (the write log sees a script's effects as one
//! MULTI/EXEC batch, never the EVAL itself).

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use redispair::engine::protocol::arg::Arg;
use redispair::engine::state::WriteLog;
use support::{redis_conn, start_engine, RawClient};

/// A write log that records every appended effect for inspection.
#[derive(Clone, Default)]
struct RecordingLog(Arc<Mutex<Vec<Vec<String>>>>);

impl WriteLog for RecordingLog {
    fn append(&mut self, _db: usize, args: &[Arg]) {
        self.0.lock().push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        );
    }
}

impl RecordingLog {
    fn take(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Read one reply line (an error or status whose exact tail the test does not spell out).
async fn read_line(c: &mut RawClient) -> String {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), c.stream.read(&mut byte))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        assert_eq!(n, 1, "connection closed");
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[tokio::test]
async fn eval_evalsha_and_script_cache() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let v: Vec<String> = redis::cmd("EVAL")
        .arg("return {KEYS[1], ARGV[1], ARGV[2]}")
        .arg(1)
        .arg("k")
        .arg("a")
        .arg("b")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, ["k", "a", "b"]);

    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('incrby', KEYS[1], ARGV[1])")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(sha.len(), 40);
    let n: i64 = redis::cmd("EVALSHA")
        .arg(sha.to_uppercase())
        .arg(1)
        .arg("counter")
        .arg(5)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 5);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .arg("0000000000000000000000000000000000000000")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, [1, 0]);

    let mut raw = RawClient::connect(&h).await;
    raw.cmd(&["SCRIPT", "FLUSH", "ASYNC"]).await;
    raw.expect(b"+OK\r\n").await;
    raw.cmd(&["EVALSHA", &sha, "0"]).await;
    raw.expect(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
        .await;
    raw.cmd(&["SCRIPT", "KILL"]).await;
    raw.expect(b"-NOTBUSY No scripts in execution right now.\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn conversions_and_errors_match_redis() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    // Numbers truncate, false is nil, arrays stop at the first nil, ok/err tables.
    c.cmd(&[
        "EVAL",
        "return {1, 2.9, -3.9, 'a', true, false, nil, 'never'}",
        "0",
    ])
    .await;
    c.expect(b"*6\r\n:1\r\n:2\r\n:-3\r\n$1\r\na\r\n:1\r\n$-1\r\n")
        .await;
    c.cmd(&["EVAL", "return redis.status_reply('FINE')", "0"])
        .await;
    c.expect(b"+FINE\r\n").await;
    c.cmd(&["EVAL", "return redis.error_reply('MY oops')", "0"])
        .await;
    c.expect(b"-MY oops\r\n").await;
    c.cmd(&["EVAL", "return redis.error_reply('oops')", "0"])
        .await;
    c.expect(b"-ERR oops\r\n").await;
    c.cmd(&["SET", "s", "abc"]).await;
    c.expect(b"+OK\r\n").await;
    // pcall returns the error as a table; call raises it with the script's location.
    c.cmd(&["EVAL", "return redis.pcall('incr', KEYS[1]).err", "1", "s"])
        .await;
    c.expect(b"$43\r\nERR value is not an integer or out of range\r\n")
        .await;
    let script = "return redis.call('incr', KEYS[1])";
    let sha = redispair::engine::scripting::sha1_hex(script.as_bytes());
    c.cmd(&["EVAL", script, "1", "s"]).await;
    c.expect(
        format!(
            "-ERR value is not an integer or out of range script: {sha}, on @user_script:1.\r\n"
        )
        .as_bytes(),
    )
    .await;
    // Sandbox: no global writes, no unknown globals, no os.
    let script = "x = 1";
    let sha = redispair::engine::scripting::sha1_hex(script.as_bytes());
    c.cmd(&["EVAL", script, "0"]).await;
    c.expect(
        format!(
            "-ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1.\r\n"
        )
        .as_bytes(),
    )
    .await;
    let script = "return os.time()";
    let sha = redispair::engine::scripting::sha1_hex(script.as_bytes());
    c.cmd(&["EVAL", script, "0"]).await;
    c.expect(
        format!(
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: {sha}, on @user_script:1.\r\n"
        )
        .as_bytes(),
    )
    .await;
    c.cmd(&["EVAL", "return 1", "2", "a"]).await;
    c.expect(b"-ERR Number of keys can't be greater than number of args\r\n")
        .await;
    c.cmd(&["EVAL", "retur 1", "0"]).await;
    c.expect(
        b"-ERR Error compiling script (new function): user_script:1: '=' expected near '1'\r\n",
    )
    .await;
    c.cmd(&["EVAL_RO", "return redis.pcall('set', 'a', 'b')", "0"])
        .await;
    c.expect(b"-ERR Write commands are not allowed from read-only scripts.\r\n")
        .await;
    c.cmd(&["EVAL", "return redis.pcall('multi')", "0"]).await;
    c.expect(b"-ERR This Redis command is not allowed from script\r\n")
        .await;
    c.cmd(&[
        "EVAL",
        "return {bit.band(7, 3), bit.bor(1, 2), bit.tohex(255)}",
        "0",
    ])
    .await;
    c.expect(b"*3\r\n:3\r\n:3\r\n$8\r\n000000ff\r\n").await;
    c.cmd(&["EVAL", "return redis.sha1hex('')", "0"]).await;
    c.expect(b"$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n")
        .await;
    // A script that errors keeps the effects done before the error.
    c.cmd(&[
        "EVAL",
        "redis.call('set', 'before', '1'); redis.call('incr', 's'); redis.call('set', 'after', '1')",
        "0",
    ])
    .await;
    let mut rest = RawClient::connect(&h).await;
    rest.cmd(&["EXISTS", "before", "after"]).await;
    rest.expect(b":1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn resp3_conversions() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["EVAL", "redis.setresp(3); return {double = 3.5}", "0"])
        .await;
    c.expect(b"$3\r\n3.5\r\n").await;
    // RESP3 null becomes Lua nil (RESP2: false); a RESP2 client gets a true boolean as :1.
    c.cmd(&[
        "EVAL",
        "redis.setresp(3); return redis.call('get', 'nokey') == nil",
        "0",
    ])
    .await;
    c.expect(b":1\r\n").await;
    c.cmd(&["EVAL", "return redis.call('get', 'nokey') == false", "0"])
        .await;
    c.expect(b":1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn functions_load_call_list_delete() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    let lib = "#!lua name=mylib\nredis.register_function('echo2', function(keys, args) return {keys[1], args[1]} end)\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
    c.cmd(&["FUNCTION", "LOAD", lib]).await;
    c.expect(b"$5\r\nmylib\r\n").await;
    c.cmd(&["FUNCTION", "LOAD", lib]).await;
    c.expect(b"-ERR Library 'mylib' already exists\r\n").await;
    c.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]).await;
    c.expect(b"$5\r\nmylib\r\n").await;
    c.cmd(&["FCALL", "echo2", "1", "k", "v"]).await;
    c.expect(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n").await;
    c.cmd(&["FCALL_RO", "echo2", "0"]).await;
    c.expect(b"-ERR Can not execute a script with write flag using *_ro command.\r\n")
        .await;
    c.cmd(&["FCALL_RO", "ro", "1", "missing"]).await;
    c.expect(b"$-1\r\n").await;
    c.cmd(&["FCALL", "nope", "0"]).await;
    c.expect(b"-ERR Function not found\r\n").await;
    c.cmd(&["FUNCTION", "LOAD", "return 1"]).await;
    c.expect(b"-ERR Missing library metadata\r\n").await;
    c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "my*"]).await;
    c.expect(
        b"*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*2\r\n\
*6\r\n$4\r\nname\r\n$5\r\necho2\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n\
*6\r\n$4\r\nname\r\n$2\r\nro\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*1\r\n+no-writes\r\n",
    )
    .await;
    c.cmd(&["FUNCTION", "DELETE", "mylib"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["FUNCTION", "DELETE", "mylib"]).await;
    c.expect(b"-ERR Library not found\r\n").await;
    c.cmd(&["FCALL", "echo2", "0"]).await;
    c.expect(b"-ERR Function not found\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn script_effects_reach_the_write_log_as_one_batch() {
    let h = start_engine(&[]).await;
    let log = RecordingLog::default();
    h.engine.state.lock().write_log = Box::new(log.clone());
    let mut c = RawClient::connect(&h).await;

    c.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2]); return redis.call('get', KEYS[1])",
        "2",
        "a",
        "n",
        "x",
    ])
    .await;
    c.expect(b"$1\r\nx\r\n").await;
    assert_eq!(
        log.take(),
        vec![
            cmd(&["MULTI"]),
            cmd(&["set", "a", "x"]),
            cmd(&["incr", "n"]),
            cmd(&["EXEC"]),
        ]
    );

    // A read-only script propagates nothing; a single effect needs no MULTI/EXEC.
    c.cmd(&["EVAL", "return redis.call('get', 'a')", "0"]).await;
    c.expect(b"$1\r\nx\r\n").await;
    c.cmd(&["EVAL", "return redis.call('del', 'a')", "0"]).await;
    c.expect(b":1\r\n").await;
    assert_eq!(log.take(), vec![cmd(&["del", "a"])]);

    // A script that fails mid-way keeps (and propagates) what it did before the error.
    c.cmd(&[
        "EVAL",
        "redis.call('set', 'b', '1'); redis.call('set', 'c', '2'); redis.call('incr', 'nosuchtype', 'x')",
        "0",
    ])
    .await;
    let line = read_line(&mut c).await;
    assert!(
        line.starts_with("-ERR Wrong number of args calling Redis command from script"),
        "{line}"
    );
    assert_eq!(
        log.take(),
        vec![
            cmd(&["MULTI"]),
            cmd(&["set", "b", "1"]),
            cmd(&["set", "c", "2"]),
            cmd(&["EXEC"]),
        ]
    );

    // FUNCTION LOAD propagates as itself; FCALL by its effects.
    let lib = "#!lua name=l\nredis.register_function('w', function(keys) return redis.call('set', keys[1], 'v') end)";
    c.cmd(&["FUNCTION", "LOAD", lib]).await;
    c.expect(b"$1\r\nl\r\n").await;
    c.cmd(&["FCALL", "w", "1", "fk"]).await;
    c.expect(b"+OK\r\n").await;
    assert_eq!(
        log.take(),
        vec![cmd(&["FUNCTION", "LOAD", lib]), cmd(&["set", "fk", "v"])]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_atomic_for_other_clients() {
    let h = start_engine(&[]).await;
    let body =
        "for i = 1, 200 do redis.call('incr', KEYS[1]) end return redis.call('get', KEYS[1])";
    let mut writers = Vec::new();
    for _ in 0..3 {
        let mut con = redis_conn(&h).await;
        writers.push(tokio::spawn(async move {
            for _ in 0..20 {
                let _: i64 = redis::cmd("EVAL")
                    .arg(body)
                    .arg(1)
                    .arg("ctr")
                    .query_async(&mut con)
                    .await
                    .unwrap();
            }
        }));
    }
    let mut reader = redis_conn(&h).await;
    let mut seen = 0;
    while seen < 60 * 200 {
        let v: Option<i64> = redis::cmd("GET")
            .arg("ctr")
            .query_async(&mut reader)
            .await
            .unwrap();
        let v = v.unwrap_or(0);
        // Another client never observes a script half-way through.
        assert_eq!(v % 200, 0, "saw a partial script effect: {v}");
        seen = v;
    }
    for w in writers {
        w.await.unwrap();
    }
    h.stop().await;
}

/// Read replies to PING from `c` until one is not `-BUSY` (the script ended), for at most 10 s.
async fn ping_until_not_busy(c: &mut RawClient) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        c.cmd(&["PING"]).await;
        let line = read_line(c).await;
        if !line.starts_with("-BUSY") {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still BUSY after 10 s"
        );
    }
}

/// Wait until other clients get BUSY (the script ran past the threshold); returns that error.
async fn wait_busy(c: &mut RawClient) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        c.cmd(&["PING"]).await;
        let line = read_line(c).await;
        if line.starts_with("-BUSY") {
            return line;
        }
        assert_eq!(line, "+PONG\r\n");
        assert!(std::time::Instant::now() < deadline, "never BUSY");
    }
}

// The engine's own runtime is multi-threaded; a busy script runs off its worker so the other
// connections are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_busy_read_only_script_answers_busy_until_script_kill() {
    let h = start_engine(&[("busy-reply-threshold", "50")]).await;
    let mut runner = RawClient::connect(&h).await;
    let mut other = RawClient::connect(&h).await;
    // Lua's pcall cannot swallow the kill.
    runner
        .cmd(&[
            "EVAL",
            "local f = function() while true do end end while true do pcall(f) end",
            "0",
        ])
        .await;
    // A pipelined command after the script is answered once it is killed.
    runner.cmd(&["PING"]).await;
    assert_eq!(
        wait_busy(&mut other).await,
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    other.cmd(&["SET", "k", "v"]).await;
    assert!(read_line(&mut other).await.starts_with("-BUSY"));
    // FUNCTION KILL does not stop a script run by EVAL.
    other.cmd(&["FUNCTION", "KILL"]).await;
    assert!(read_line(&mut other).await.starts_with("-BUSY"));
    other.cmd(&["SCRIPT", "KILL"]).await;
    other.expect(b"+OK\r\n").await;
    let killed = read_line(&mut runner).await;
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{killed}"
    );
    runner.expect(b"+PONG\r\n").await;
    assert_eq!(ping_until_not_busy(&mut other).await, "+PONG\r\n");
    other.cmd(&["SCRIPT", "KILL"]).await;
    other
        .expect(b"-NOTBUSY No scripts in execution right now.\r\n")
        .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_busy_function_is_killed_by_function_kill_and_shows_in_function_stats() {
    let h = start_engine(&[("lua-time-limit", "50")]).await;
    let mut runner = RawClient::connect(&h).await;
    let mut other = RawClient::connect(&h).await;
    let mut stats = redis_conn(&h).await;
    runner
        .cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('spin', function() while true do end end)",
        ])
        .await;
    runner.expect(b"$3\r\nlib\r\n").await;
    runner.cmd(&["FCALL", "spin", "0"]).await;
    assert_eq!(
        wait_busy(&mut other).await,
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
    );
    // FUNCTION STATS shows the running function without waiting for it.
    let v: redis::Value = redis::cmd("FUNCTION")
        .arg("STATS")
        .query_async(&mut stats)
        .await
        .unwrap();
    let shown = format!("{v:?}");
    for part in [
        "running_script",
        "spin",
        "FCALL",
        "duration_ms",
        "functions_count",
    ] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
    other.cmd(&["SCRIPT", "KILL"]).await;
    assert!(read_line(&mut other).await.starts_with("-BUSY"));
    other.cmd(&["FUNCTION", "KILL"]).await;
    other.expect(b"+OK\r\n").await;
    let killed = read_line(&mut runner).await;
    assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
    assert_eq!(ping_until_not_busy(&mut other).await, "+PONG\r\n");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_busy_script_that_wrote_is_unkillable_but_shutdown_nosave_stops_it() {
    let h = start_engine(&[("busy-reply-threshold", "50")]).await;
    let mut runner = RawClient::connect(&h).await;
    let mut other = RawClient::connect(&h).await;
    runner
        .cmd(&[
            "EVAL",
            "redis.call('set', KEYS[1], 'y') while true do end",
            "1",
            "x",
        ])
        .await;
    wait_busy(&mut other).await;
    other.cmd(&["SCRIPT", "KILL"]).await;
    assert!(read_line(&mut other)
        .await
        .starts_with("-UNKILLABLE Sorry the script already executed write commands"));
    // Still busy; SHUTDOWN without NOSAVE is refused too.
    other.cmd(&["SHUTDOWN"]).await;
    assert!(read_line(&mut other).await.starts_with("-BUSY"));
    other.cmd(&["SHUTDOWN", "NOSAVE"]).await;
    other.expect_closed().await;
    h.stop().await;
}

#[tokio::test]
async fn function_load_code_is_stopped_after_500_ms() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=lib\nlocal a = 1 while 1 do a = a + 1 end",
    ])
    .await;
    let line = read_line(&mut c).await;
    assert!(line.contains("FUNCTION LOAD timeout"), "{line}");
    c.cmd(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn self_referencing_tables_do_not_crash_the_engine() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["EVAL", "local t = {} t[1] = t return t", "0"])
        .await;
    let mut expected = b"*1\r\n".repeat(200);
    expected.extend_from_slice(b"-ERR reached lua stack limit\r\n");
    c.expect(&expected).await;
    c.cmd(&["EVAL", "local t = {} t[1] = t return cjson.encode(t)", "0"])
        .await;
    let line = read_line(&mut c).await;
    assert!(
        line.contains("Cannot serialise, excessive nesting"),
        "{line}"
    );
    c.cmd(&[
        "EVAL",
        "local t = {} t[1] = t return #cmsgpack.pack(t)",
        "0",
    ])
    .await;
    c.expect(b":17\r\n").await;
    c.cmd(&[
        "EVAL",
        "return cmsgpack.unpack(string.rep(string.char(0x91), 5000) .. string.char(1))",
        "0",
    ])
    .await;
    let line = read_line(&mut c).await;
    assert!(line.contains("stack overflow"), "{line}");
    c.cmd(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    h.stop().await;
}
