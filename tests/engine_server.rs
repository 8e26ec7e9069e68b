//! Server and connection commands over TCP: RESET, CLIENT, CONFIG, COMMAND, DEBUG, MEMORY,
//! SLOWLOG, LATENCY, SHUTDOWN, the idle timeout. Does I/O: loopback sockets.

mod support;

use std::time::Duration;

use redis::Value;
use support::{redis_conn, start_engine, wait_for, RawClient};

async fn q<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con).await
}

/// Whether the engine under test has a command (families land on main at different times).
async fn has_command(h: &redispair::engine::server::ServerHandle, name: &str) -> bool {
    let mut con = redis_conn(h).await;
    let info: Vec<Value> = q(&mut con, &["COMMAND", "INFO", name]).await.unwrap();
    info.first().is_some_and(|v| *v != Value::Nil)
}

fn err_text(e: redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

#[tokio::test]
async fn reset_returns_connection_to_initial_state() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SELECT", "3"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["CLIENT", "SETNAME", "x"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["MULTI"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["SET", "a", "1"]).await;
    c.expect(b"+QUEUED\r\n").await;
    // RESET runs at once inside MULTI and discards the transaction.
    c.cmd(&["RESET"]).await;
    c.expect(b"+RESET\r\n").await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"-ERR EXEC without MULTI\r\n").await;
    c.cmd(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$-1\r\n").await;
    let pubsub = has_command(&h, "subscribe").await;
    if pubsub {
        c.cmd(&["SUBSCRIBE", "ch"]).await;
        c.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
            .await;
        c.cmd(&["RESET"]).await;
        c.expect(b"+RESET\r\n").await;
    }
    // Out of the subscribe context, back in db 0.
    c.cmd(&["SET", "k", "v"]).await;
    c.expect(b"+OK\r\n").await;
    let mut con = redis_conn(&h).await;
    let v: Option<String> = q(&mut con, &["GET", "k"]).await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    if pubsub {
        let n: i64 = q(&mut con, &["PUBLISH", "ch", "m"]).await.unwrap();
        assert_eq!(n, 0);
    }
    h.stop().await;
}

#[tokio::test]
async fn reset_requires_auth_again_with_requirepass() {
    let h = start_engine(&[("requirepass", "pw")]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["AUTH", "pw"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["RESET"]).await;
    c.expect(b"+RESET\r\n").await;
    c.cmd(&["GET", "a"]).await;
    c.expect(b"-NOAUTH Authentication required.\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn client_list_info_and_filters() {
    let h = start_engine(&[]).await;
    let mut a = redis_conn(&h).await;
    let mut b = redis_conn(&h).await;
    let _: () = q(&mut b, &["CLIENT", "SETNAME", "bee"]).await.unwrap();
    let b_id: i64 = q(&mut b, &["CLIENT", "ID"]).await.unwrap();
    let list: String = q(&mut a, &["CLIENT", "LIST"]).await.unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("name=bee"), "{list}");
    assert!(list.contains("cmd=client|list"), "{list}");
    let only: String = q(&mut a, &["CLIENT", "LIST", "ID", &b_id.to_string()])
        .await
        .unwrap();
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with(&format!("id={b_id} ")));
    let normal: String = q(&mut a, &["CLIENT", "LIST", "TYPE", "normal"])
        .await
        .unwrap();
    assert_eq!(normal.lines().count(), 2);
    let pubsub: String = q(&mut a, &["CLIENT", "LIST", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert_eq!(pubsub, "");
    let info: String = q(&mut b, &["CLIENT", "INFO"]).await.unwrap();
    assert!(info.contains("name=bee") && info.contains("cmd=client|info") && info.ends_with('\n'));
    for (args, want) in [
        (
            vec!["CLIENT", "LIST", "TYPE", "foo"],
            "ERR Unknown client type 'foo'",
        ),
        (vec!["CLIENT", "LIST", "ID", "abc"], "ERR Invalid client ID"),
        (vec!["CLIENT", "LIST", "foo"], "ERR syntax error"),
    ] {
        let e = q::<Value>(&mut a, &args).await.unwrap_err();
        assert_eq!(err_text(e), want);
    }
    h.stop().await;
}

/// CLIENT KILL ends a connection whatever it waits for: input (idle), a blocked command, a
/// pause. The connection waits for its kill through one registered waiter for its whole life
/// (`KillSignal` in server/connection.rs), so every kind of wait must see it.
#[tokio::test]
async fn client_kill_reaches_idle_blocked_and_paused_clients() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut idle = RawClient::connect(&h).await;
    idle.cmd(&["CLIENT", "ID"]).await;
    idle.expect(b":2\r\n").await;
    let mut blocked = RawClient::connect(&h).await;
    blocked.cmd(&["BLPOP", "nothing", "0"]).await;
    let mut paused = RawClient::connect(&h).await;
    // The idle and the blocked client ran a command before (a round trip each), so their
    // waiter is the registered one the kill must wake.
    paused.cmd(&["PING"]).await;
    paused.expect(b"+PONG\r\n").await;
    wait_for(Duration::from_secs(10), "BLPOP to block", || {
        let mut admin = admin.clone();
        async move {
            let n: i64 = q(&mut admin, &["CLIENT", "LIST"])
                .await
                .map(|l: String| l.lines().filter(|l| l.contains(" flags=b ")).count() as i64)
                .unwrap_or(0);
            n == 1
        }
    })
    .await;
    let _: String = q(&mut admin, &["CLIENT", "PAUSE", "60000", "ALL"])
        .await
        .unwrap();
    paused.cmd(&["PING"]).await;
    wait_for(
        Duration::from_secs(10),
        "PING to be held by the pause",
        || {
            let mut admin = admin.clone();
            async move {
                let l: String = q(&mut admin, &["CLIENT", "LIST"]).await.unwrap_or_default();
                l.lines().filter(|l| l.contains(" flags=b ")).count() == 2
            }
        },
    )
    .await;
    let n: i64 = q(
        &mut admin,
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    idle.expect_closed().await;
    blocked.expect_closed().await;
    paused.expect_closed().await;
    let _: String = q(&mut admin, &["CLIENT", "UNPAUSE"]).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn client_kill_forms() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut victim = RawClient::connect(&h).await;
    victim.cmd(&["CLIENT", "ID"]).await;
    let victim_addr = victim.stream.local_addr().unwrap().to_string();
    victim.expect(b":").await;
    // Old form: by address.
    let r: String = q(&mut admin, &["CLIENT", "KILL", &victim_addr])
        .await
        .unwrap();
    assert_eq!(r, "OK");
    victim.expect(b"2\r\n").await;
    victim.expect_closed().await;
    let e = q::<Value>(&mut admin, &["CLIENT", "KILL", "1.2.3.4:5"])
        .await
        .unwrap_err();
    assert_eq!(err_text(e), "ERR No such client");
    // New form: by ID, and SKIPME.
    let mut v2 = RawClient::connect(&h).await;
    v2.cmd(&["CLIENT", "ID"]).await;
    v2.expect(b":3\r\n").await;
    let n: i64 = q(&mut admin, &["CLIENT", "KILL", "ID", "3"]).await.unwrap();
    assert_eq!(n, 1);
    v2.expect_closed().await;
    let n: i64 = q(&mut admin, &["CLIENT", "KILL", "ID", "99"])
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = q(&mut admin, &["CLIENT", "KILL", "TYPE", "normal"])
        .await
        .unwrap();
    assert_eq!(n, 0, "SKIPME yes by default spares the caller");
    let mut v3 = RawClient::connect(&h).await;
    v3.cmd(&["PING"]).await;
    v3.expect(b"+PONG\r\n").await;
    let laddr = v3.stream.peer_addr().unwrap().to_string();
    let n: i64 = q(
        &mut admin,
        &["CLIENT", "KILL", "LADDR", &laddr, "USER", "default"],
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    v3.expect_closed().await;
    for (args, want) in [
        (
            vec!["CLIENT", "KILL", "ID", "0"],
            "ERR client-id should be greater than 0",
        ),
        (
            vec!["CLIENT", "KILL", "ID", "x"],
            "ERR client-id should be greater than 0",
        ),
        (
            vec!["CLIENT", "KILL", "TYPE", "foo"],
            "ERR Unknown client type 'foo'",
        ),
        (
            vec!["CLIENT", "KILL", "USER", "foo"],
            "ERR No such user 'foo'",
        ),
        (
            vec!["CLIENT", "KILL", "SKIPME", "maybe"],
            "ERR syntax error",
        ),
        (
            vec!["CLIENT", "KILL", "ID", "1", "ADDR"],
            "ERR syntax error",
        ),
    ] {
        let e = q::<Value>(&mut admin, &args).await.unwrap_err();
        assert_eq!(err_text(e), want, "{args:?}");
    }
    // Killing oneself: the reply is still written, then the connection closes.
    let mut me = RawClient::connect(&h).await;
    me.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"])
        .await;
    me.expect(b":").await;
    h.stop().await;
}

#[tokio::test]
async fn client_pause_write_and_unpause() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = q(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"])
        .await
        .unwrap();
    let mut writer = RawClient::connect(&h).await;
    // Reads go through, the write waits.
    writer.cmd(&["GET", "a"]).await;
    writer.expect(b"$-1\r\n").await;
    writer.cmd(&["SET", "a", "1"]).await;
    let mut probe = redis_conn(&h).await;
    let still: Option<String> = q(&mut probe, &["GET", "a"]).await.unwrap();
    assert_eq!(still, None);
    let _: () = q(&mut admin, &["CLIENT", "UNPAUSE"]).await.unwrap();
    writer.expect(b"+OK\r\n").await;
    for (args, want) in [
        (
            vec!["CLIENT", "PAUSE", "abc"],
            "ERR timeout is not an integer or out of range",
        ),
        (vec!["CLIENT", "PAUSE", "-1"], "ERR timeout is negative"),
        (
            vec!["CLIENT", "PAUSE", "10", "foo"],
            "ERR CLIENT PAUSE mode must be WRITE or ALL",
        ),
    ] {
        let e = q::<Value>(&mut admin, &args).await.unwrap_err();
        assert_eq!(err_text(e), want);
    }
    // A short ALL pause ends by itself.
    let _: () = q(&mut admin, &["CLIENT", "PAUSE", "50"]).await.unwrap();
    let v: String = q(&mut probe, &["PING"]).await.unwrap();
    assert_eq!(v, "PONG");
    h.stop().await;
}

#[tokio::test]
async fn client_flags_tracking_and_help() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    for sub in ["NO-EVICT", "NO-TOUCH"] {
        let _: () = q(&mut con, &["CLIENT", sub, "on"]).await.unwrap();
        let _: () = q(&mut con, &["CLIENT", sub, "OFF"]).await.unwrap();
        let e = q::<Value>(&mut con, &["CLIENT", sub, "maybe"])
            .await
            .unwrap_err();
        assert_eq!(err_text(e), "ERR syntax error");
    }
    let _: () = q(&mut con, &["CLIENT", "TRACKING", "off"]).await.unwrap();
    let r: i64 = q(&mut con, &["CLIENT", "GETREDIR"]).await.unwrap();
    assert_eq!(r, -1);
    // Tracking itself is tested in tests/engine_tracking.rs.
    let _: () = q(&mut con, &["CLIENT", "TRACKING", "on"]).await.unwrap();
    let r: i64 = q(&mut con, &["CLIENT", "GETREDIR"]).await.unwrap();
    assert_eq!(r, 0);
    let e = q::<Value>(&mut con, &["CLIENT", "TRACKING", "maybe"])
        .await
        .unwrap_err();
    assert_eq!(err_text(e), "ERR syntax error");
    let help: Vec<String> = q(&mut con, &["CLIENT", "HELP"]).await.unwrap();
    assert!(help[0].starts_with("CLIENT <subcommand>"));
    let e = q::<Value>(&mut con, &["CLIENT", "BOGUS"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR unknown subcommand 'BOGUS'. Try CLIENT HELP."
    );
    h.stop().await;
}

#[tokio::test]
async fn config_resetstat_rewrite_and_help() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let _: Value = q(&mut con, &["NOSUCHCMD"]).await.unwrap_or(Value::Nil);
    let info: String = q(&mut con, &["INFO", "stats"]).await.unwrap();
    assert!(!info.contains("total_error_replies:0"), "{info}");
    let _: () = q(&mut con, &["CONFIG", "RESETSTAT"]).await.unwrap();
    let info: String = q(&mut con, &["INFO", "stats"]).await.unwrap();
    assert!(info.contains("total_error_replies:0"), "{info}");
    let e = q::<Value>(&mut con, &["CONFIG", "REWRITE"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR The server is running without a config file"
    );
    let help: Vec<String> = q(&mut con, &["CONFIG", "HELP"]).await.unwrap();
    assert!(help.len() > 4);
    h.stop().await;
}

#[tokio::test]
async fn config_rewrite_writes_the_file() {
    let dir = std::env::temp_dir().join(format!("rp-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("engine.conf");
    std::fs::write(
        &path,
        "# my settings\nmaxmemory 1mb\nunknown-line-kept yes\n",
    )
    .unwrap();
    let mut cfg = redispair::engine::config::Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("persistence", "off").unwrap();
    cfg.set_startup("maxmemory", "1mb").unwrap();
    cfg.file = Some(path.to_string_lossy().into_owned());
    let h = redispair::engine::server::start(cfg).await.unwrap();
    let mut con = redis_conn(&h).await;
    let _: () = q(
        &mut con,
        &["CONFIG", "SET", "maxmemory", "2mb", "slowlog-max-len", "7"],
    )
    .await
    .unwrap();
    let _: () = q(&mut con, &["CONFIG", "REWRITE"]).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# my settings\nmaxmemory 2097152\n"),
        "{text}"
    );
    assert!(text.contains("unknown-line-kept yes\n"), "{text}");
    assert!(text.contains("slowlog-max-len 7\n"), "{text}");
    // The rewritten file loads back to the same settings.
    let mut back = redispair::engine::config::Config::default();
    back.apply_text(&text.replace("unknown-line-kept yes\n", ""))
        .unwrap();
    assert_eq!(back.get("maxmemory"), Some("2097152"));
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn command_introspection() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let all: Vec<Value> = q(&mut con, &["COMMAND"]).await.unwrap();
    let count: i64 = q(&mut con, &["COMMAND", "COUNT"]).await.unwrap();
    assert_eq!(all.len() as i64, count);
    let info: Vec<Value> = q(&mut con, &["COMMAND", "INFO", "get", "nope", "config|get"])
        .await
        .unwrap();
    assert_eq!(info.len(), 3);
    assert_eq!(info[1], Value::Nil);
    let Value::Array(get) = &info[0] else {
        panic!("{info:?}")
    };
    assert_eq!(get[0], Value::BulkString(b"get".to_vec()));
    assert_eq!(get[1], Value::Int(2));
    let list: Vec<String> = q(&mut con, &["COMMAND", "LIST"]).await.unwrap();
    assert!(list.contains(&"get".to_string()) && list.contains(&"config|get".to_string()));
    let filtered: Vec<String> = q(
        &mut con,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "client*"],
    )
    .await
    .unwrap();
    assert!(filtered.iter().all(|n| n.starts_with("client")) && !filtered.is_empty());
    let strings: Vec<String> = q(
        &mut con,
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"],
    )
    .await
    .unwrap();
    assert!(strings.contains(&"get".to_string()) && !strings.contains(&"ping".to_string()));
    let modules: Vec<String> = q(&mut con, &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"])
        .await
        .unwrap();
    assert!(modules.is_empty());
    let keys: Vec<String> = q(
        &mut con,
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    )
    .await
    .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    let kf: Value = q(&mut con, &["COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b"])
        .await
        .unwrap();
    // SET overwrites its key: Redis's key flags say OW (overwrite) and update.
    let kf = format!("{kf:?}");
    assert!(kf.contains("OW") && kf.contains("update"), "{kf}");
    for (args, want) in [
        (
            vec!["COMMAND", "GETKEYS", "foo", "bar"],
            "ERR Invalid command specified",
        ),
        (
            vec!["COMMAND", "GETKEYS", "get", "a", "b"],
            "ERR Invalid number of arguments specified for command",
        ),
        (
            vec!["COMMAND", "GETKEYS", "ping", "x"],
            "ERR The command has no key arguments",
        ),
        (
            vec!["COMMAND", "GETKEYS", "set"],
            "ERR wrong number of arguments for 'command|getkeys' command",
        ),
        (
            vec!["COMMAND", "LIST", "FILTERBY", "bogus", "x"],
            "ERR syntax error",
        ),
        (
            vec!["COMMAND", "BOGUS"],
            "ERR unknown subcommand 'BOGUS'. Try COMMAND HELP.",
        ),
    ] {
        let e = q::<Value>(&mut con, &args).await.unwrap_err();
        assert_eq!(err_text(e), want, "{args:?}");
    }
    let docs: Value = q(&mut con, &["COMMAND", "DOCS", "get"]).await.unwrap();
    assert!(format!("{docs:?}").contains("summary"));
    h.stop().await;
}

#[tokio::test]
async fn debug_digest_is_order_independent() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let empty: String = q(&mut con, &["DEBUG", "DIGEST"]).await.unwrap();
    assert_eq!(empty, "0".repeat(40));
    let _: () = q(&mut con, &["SET", "a", "1"]).await.unwrap();
    let _: () = q(&mut con, &["SET", "b", "2"]).await.unwrap();
    let d1: String = q(&mut con, &["DEBUG", "DIGEST"]).await.unwrap();
    let _: () = q(&mut con, &["FLUSHALL"]).await.unwrap();
    let _: () = q(&mut con, &["SET", "b", "2"]).await.unwrap();
    let _: () = q(&mut con, &["SET", "a", "1"]).await.unwrap();
    let d2: String = q(&mut con, &["DEBUG", "DIGEST"]).await.unwrap();
    assert_eq!(d1, d2);
    let _: () = q(&mut con, &["SET", "a", "other"]).await.unwrap();
    let d3: String = q(&mut con, &["DEBUG", "DIGEST"]).await.unwrap();
    assert_ne!(d1, d3);
    let vals: Vec<String> = q(&mut con, &["DEBUG", "DIGEST-VALUE", "a", "missing"])
        .await
        .unwrap();
    assert_eq!(vals.len(), 2);
    assert_eq!(vals[1], "0".repeat(40));
    assert_ne!(vals[0], "0".repeat(40));
    let _: () = q(&mut con, &["DEBUG", "SLEEP", "0"]).await.unwrap();
    let _: () = q(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"])
        .await
        .unwrap();
    let obj: String = q(&mut con, &["DEBUG", "OBJECT", "a"]).await.unwrap();
    assert!(obj.contains("encoding:embstr"), "{obj}");
    let e = q::<Value>(&mut con, &["DEBUG", "BOGUS"]).await.unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR unknown subcommand or wrong number of arguments for 'BOGUS'. Try DEBUG HELP."
    );
    h.stop().await;
}

#[tokio::test]
async fn debug_set_active_expire_stops_background_expiry() {
    let h = start_engine(&[("hz", "100")]).await;
    let mut con = redis_conn(&h).await;
    let _: () = q(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"])
        .await
        .unwrap();
    let _: () = q(&mut con, &["SET", "k", "v", "PX", "1"]).await.unwrap();
    // Without active expiry the key stays in the keyspace (DBSIZE does not touch it) ...
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n: i64 = q(&mut con, &["DBSIZE"]).await.unwrap();
    assert_eq!(n, 1);
    // ... and with it back on, the periodic task removes it.
    let _: () = q(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"])
        .await
        .unwrap();
    wait_for(Duration::from_secs(5), "active expiry", || {
        let mut con = con.clone();
        async move { q::<i64>(&mut con, &["DBSIZE"]).await.unwrap() == 0 }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn memory_slowlog_latency_lastsave() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let _: () = q(&mut con, &["SET", "a", "hello"]).await.unwrap();
    let n: i64 = q(&mut con, &["MEMORY", "USAGE", "a"]).await.unwrap();
    assert!(n > 5);
    let n2: i64 = q(&mut con, &["MEMORY", "USAGE", "a", "SAMPLES", "0"])
        .await
        .unwrap();
    assert_eq!(n, n2);
    let none: Option<i64> = q(&mut con, &["MEMORY", "USAGE", "nokey"]).await.unwrap();
    assert_eq!(none, None);
    for args in [
        vec!["MEMORY", "USAGE", "a", "SAMPLES"],
        vec!["MEMORY", "USAGE", "a", "SAMPLES", "-1"],
        vec!["MEMORY", "USAGE", "a", "foo"],
    ] {
        let e = q::<Value>(&mut con, &args).await.unwrap_err();
        assert_eq!(err_text(e), "ERR syntax error");
    }
    let stats: Value = q(&mut con, &["MEMORY", "STATS"]).await.unwrap();
    assert!(format!("{stats:?}").contains("keys.count"));
    let _: String = q(&mut con, &["MEMORY", "DOCTOR"]).await.unwrap();
    let _: Vec<String> = q(&mut con, &["MEMORY", "HELP"]).await.unwrap();

    let _: () = q(&mut con, &["SLOWLOG", "RESET"]).await.unwrap();
    let _: () = q(&mut con, &["CONFIG", "SET", "slowlog-log-slower-than", "0"])
        .await
        .unwrap();
    let _: () = q(&mut con, &["SET", "slow", "1"]).await.unwrap();
    let len: i64 = q(&mut con, &["SLOWLOG", "LEN"]).await.unwrap();
    assert!(len >= 2, "{len}");
    let entries: Vec<Value> = q(&mut con, &["SLOWLOG", "GET", "1"]).await.unwrap();
    assert_eq!(entries.len(), 1);
    let Value::Array(e) = &entries[0] else {
        panic!()
    };
    assert_eq!(e.len(), 6);
    let all: Vec<Value> = q(&mut con, &["SLOWLOG", "GET", "-1"]).await.unwrap();
    assert!(all.len() as i64 >= len);
    assert!(format!("{all:?}").contains("slow"));
    let e = q::<Value>(&mut con, &["SLOWLOG", "GET", "-2"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR count should be greater than or equal to -1"
    );
    let _: () = q(&mut con, &["SLOWLOG", "RESET"]).await.unwrap();
    let _: () = q(
        &mut con,
        &["CONFIG", "SET", "slowlog-log-slower-than", "10000"],
    )
    .await
    .unwrap();
    let len: i64 = q(&mut con, &["SLOWLOG", "LEN"]).await.unwrap();
    assert!(len <= 1);

    let latest: Vec<Value> = q(&mut con, &["LATENCY", "LATEST"]).await.unwrap();
    assert!(latest.is_empty());
    let hist: Vec<Value> = q(&mut con, &["LATENCY", "HISTORY", "command"])
        .await
        .unwrap();
    assert!(hist.is_empty());
    let n: i64 = q(&mut con, &["LATENCY", "RESET"]).await.unwrap();
    assert_eq!(n, 0);
    let _: String = q(&mut con, &["LATENCY", "DOCTOR"]).await.unwrap();
    let _: Vec<String> = q(&mut con, &["LATENCY", "HELP"]).await.unwrap();
    let ls: i64 = q(&mut con, &["LASTSAVE"]).await.unwrap();
    assert!(ls > 1_600_000_000);
    h.stop().await;
}

#[tokio::test]
async fn shutdown_options_and_graceful_stop() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let e = q::<Value>(&mut con, &["SHUTDOWN", "ABORT"])
        .await
        .unwrap_err();
    assert_eq!(err_text(e), "ERR No shutdown in progress.");
    let e = q::<Value>(&mut con, &["SHUTDOWN", "SAVE", "NOSAVE"])
        .await
        .unwrap_err();
    assert_eq!(err_text(e), "ERR syntax error");
    let e = q::<Value>(&mut con, &["SHUTDOWN", "BOGUS"])
        .await
        .unwrap_err();
    assert_eq!(err_text(e), "ERR syntax error");
    // A pipeline ending in SHUTDOWN: earlier replies arrive, then the connection closes.
    let mut c = RawClient::connect(&h).await;
    c.send(b"SET a 1\r\nGET a\r\nSHUTDOWN NOSAVE NOW\r\n").await;
    c.expect(b"+OK\r\n$1\r\n1\r\n").await;
    c.expect_closed().await;
    tokio::time::timeout(Duration::from_secs(10), h.task)
        .await
        .expect("server task ends after SHUTDOWN")
        .unwrap();
}

#[tokio::test]
async fn idle_clients_are_closed_after_timeout() {
    let h = start_engine(&[("timeout", "1")]).await;
    let mut idle = RawClient::connect(&h).await;
    idle.cmd(&["PING"]).await;
    idle.expect(b"+PONG\r\n").await;
    idle.expect_closed().await;
    if !has_command(&h, "subscribe").await {
        h.stop().await;
        return;
    }
    let mut sub = RawClient::connect(&h).await;
    sub.cmd(&["SUBSCRIBE", "c"]).await;
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
        .await;
    // Longer than the timeout, polled without sleeping as synchronisation: the subscriber must
    // still be connected after another client was closed for idling meanwhile.
    let mut idle2 = RawClient::connect(&h).await;
    idle2.cmd(&["PING"]).await;
    idle2.expect(b"+PONG\r\n").await;
    idle2.expect_closed().await;
    // The subscriber is exempt and still served.
    let mut con = redis_conn(&h).await;
    let n: i64 = q(&mut con, &["PUBLISH", "c", "m"]).await.unwrap();
    assert_eq!(n, 1);
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn info_sections_clients_read() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let info: String = q(&mut con, &["INFO"]).await.unwrap();
    for field in [
        "redis_version:",
        "redis_mode:standalone",
        "tcp_port:",
        "uptime_in_seconds:",
        "connected_clients:",
        "used_memory:",
        "maxmemory_policy:",
        "loading:0",
        "total_commands_processed:",
        "keyspace_hits:",
        "role:master",
        "used_cpu_sys:",
        "cluster_enabled:0",
    ] {
        assert!(info.contains(field), "INFO lacks {field}");
    }
    let everything: String = q(&mut con, &["INFO", "everything"]).await.unwrap();
    let titles: Vec<&str> = everything.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        titles,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Commandstats",
            "# Errorstats",
            "# Latencystats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert!(everything.contains("latency_percentiles_usec_info:p50="));
    // Every line of a section is `field:value` (redis-py and ioredis split on the first ':').
    for line in everything.lines() {
        assert!(
            line.is_empty() || line.starts_with('#') || line.contains(':'),
            "malformed INFO line {line:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn monitor_streams_executed_commands() {
    use tokio::io::AsyncReadExt;
    let h = start_engine(&[]).await;
    // Connected first: the crate's own CLIENT SETINFO calls are not part of what is checked.
    let mut con = redis_conn(&h).await;
    let mut mon = RawClient::connect(&h).await;
    mon.cmd(&["MONITOR"]).await;
    mon.expect(b"+OK\r\n").await;
    let _: () = q(&mut con, &["SET", "k", "a \"quoted\"\nvalue"])
        .await
        .unwrap();
    // Admin commands are not shown (as in Redis).
    let _: Value = q(&mut con, &["CONFIG", "GET", "maxmemory"]).await.unwrap();
    let _: Option<String> = q(&mut con, &["GET", "k"]).await.unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.iter().filter(|&&b| b == b'\n').count() < 2 {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline.into(), mon.stream.read(&mut chunk))
            .await
            .expect("monitor lines arrive")
            .unwrap();
        assert!(n > 0, "monitor connection closed");
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with('+'), "{text}");
    assert!(
        lines[0].ends_with(r#"] "SET" "k" "a \"quoted\"\nvalue""#),
        "{text}"
    );
    assert!(lines[0].contains(" [0 127.0.0.1:"), "{text}");
    assert!(lines[1].ends_with(r#"] "GET" "k""#), "{text}");
    let list: String = q(&mut con, &["CLIENT", "LIST"]).await.unwrap();
    assert!(list.contains("flags=O"), "{list}");
    h.stop().await;
}

#[tokio::test]
async fn client_pause_stops_active_expiry() {
    let h = start_engine(&[("hz", "100")]).await;
    let mut con = redis_conn(&h).await;
    let _: () = q(&mut con, &["SET", "k", "v", "PX", "1"]).await.unwrap();
    let _: () = q(&mut con, &["CLIENT", "PAUSE", "100000", "WRITE"])
        .await
        .unwrap();
    // Several expiry ticks (10 ms each) pass while paused: the key stays in the keyspace.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n: i64 = q(&mut con, &["DBSIZE"]).await.unwrap();
    assert_eq!(n, 1);
    let _: () = q(&mut con, &["CLIENT", "UNPAUSE"]).await.unwrap();
    wait_for(
        Duration::from_secs(5),
        "active expiry after unpause",
        || {
            let mut con = con.clone();
            async move { q::<i64>(&mut con, &["DBSIZE"]).await.unwrap() == 0 }
        },
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn client_pause_write_holds_exec_of_writes() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut c = RawClient::connect(&h).await;
    c.send(b"MULTI\r\nSET t 1\r\n").await;
    c.expect(b"+OK\r\n+QUEUED\r\n").await;
    let _: () = q(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"])
        .await
        .unwrap();
    c.send(b"EXEC\r\n").await;
    // A read-only transaction is not held.
    let mut r = RawClient::connect(&h).await;
    r.send(b"MULTI\r\nGET t\r\nEXEC\r\n").await;
    r.expect(b"+OK\r\n+QUEUED\r\n*1\r\n$-1\r\n").await;
    let _: () = q(&mut admin, &["CLIENT", "UNPAUSE"]).await.unwrap();
    c.expect(b"*1\r\n+OK\r\n").await;
    h.stop().await;
}

/// One Redis version everywhere, the reference server's: INFO's `redis_version`, HELLO's
/// `version` and Lua's `redis.REDIS_VERSION` / `REDIS_VERSION_NUM` agree, and are 7.0.15 (the
/// behaviour the engine matches; clients pick features by it).
#[tokio::test]
async fn hello_info_and_lua_report_the_same_redis_version() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let info: String = q(&mut con, &["INFO", "server"]).await.unwrap();
    let info_version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("redis_version in INFO")
        .trim()
        .to_string();
    let hello: Vec<Value> = q(&mut con, &["HELLO", "2"]).await.unwrap();
    let hello_version = hello
        .chunks(2)
        .find_map(|kv| match kv {
            [Value::BulkString(k), v] if k.as_slice() == b"version" => {
                Some(redis::from_redis_value::<String>(v.clone()).unwrap())
            }
            _ => None,
        })
        .expect("version in HELLO");
    let lua_version: String = q(&mut con, &["EVAL", "return redis.REDIS_VERSION", "0"])
        .await
        .unwrap();
    let lua_num: i64 = q(&mut con, &["EVAL", "return redis.REDIS_VERSION_NUM", "0"])
        .await
        .unwrap();
    assert_eq!(hello_version, info_version);
    assert_eq!(lua_version, info_version);
    assert_eq!(info_version, "7.0.15");
    assert_eq!(lua_num, 0x0007_000f);
    h.stop().await;
}
