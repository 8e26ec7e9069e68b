//! Black-box tests of pub/sub over TCP: raw RESP2 (arrays, subscribe context) and RESP3 (push
//! frames, normal commands while subscribed), and the `redis` crate's pub/sub APIs.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::{redis_conn, start_engine, wait_for, RawClient};

// The engine sees heap use only through the counting allocator (the evicted-keys notification
// needs maxmemory to bite; no other test here sets maxmemory).
#[global_allocator]
static ALLOC: redispair::engine::memory::CountingAllocator =
    redispair::engine::memory::CountingAllocator;

/// Wait until `channel` has `n` subscribers.
async fn wait_subscribers(conn: &mut redis::aio::MultiplexedConnection, channel: &str, n: i64) {
    wait_for(Duration::from_secs(10), "subscribers", || {
        let mut conn = conn.clone();
        let channel = channel.to_string();
        async move {
            let v: (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .unwrap();
            v.1 == n
        }
    })
    .await;
}

#[tokio::test]
async fn resp2_subscribe_publish_and_context() {
    let h = start_engine(&[]).await;
    let mut sub = RawClient::connect(&h).await;
    sub.cmd(&["UNSUBSCRIBE"]).await;
    sub.expect(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
        .await;
    sub.cmd(&["PUNSUBSCRIBE"]).await;
    sub.expect(b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n")
        .await;
    sub.cmd(&["SUBSCRIBE", "a", "b"]).await;
    sub.expect(
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
    )
    .await;
    sub.cmd(&["PSUBSCRIBE", "n*"]).await;
    sub.expect(b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n")
        .await;
    sub.cmd(&["GET", "x"]).await;
    sub.expect(b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
        .await;
    sub.cmd(&["PING"]).await;
    sub.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;

    let mut publisher = redis_conn(&h).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("a")
        .arg("hello")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(n, 1);
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n")
        .await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("x")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(n, 1);
    sub.expect(b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n")
        .await;

    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("a")
        .arg("zz")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(
        numsub,
        [
            redis::Value::BulkString(b"a".to_vec()),
            redis::Value::Int(1),
            redis::Value::BulkString(b"zz".to_vec()),
            redis::Value::Int(0)
        ]
    );
    let mut channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async(&mut publisher)
        .await
        .unwrap();
    channels.sort();
    assert_eq!(channels, ["a", "b"]);
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(numpat, 1);

    // Unsubscribing from everything leaves the subscribe context.
    sub.cmd(&["PUNSUBSCRIBE"]).await;
    sub.expect(b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:2\r\n")
        .await;
    sub.cmd(&["UNSUBSCRIBE", "b"]).await;
    sub.expect(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n")
        .await;
    sub.cmd(&["UNSUBSCRIBE"]).await;
    sub.expect(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n")
        .await;
    sub.cmd(&["GET", "x"]).await;
    sub.expect(b"$-1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn resp3_push_frames_and_commands_while_subscribed() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["HELLO", "3"]).await;
    c.cmd(&["PING"]).await;
    c.skip_until(b"+PONG\r\n").await;
    c.cmd(&["UNSUBSCRIBE"]).await;
    c.expect(b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n").await;
    c.cmd(&["SUBSCRIBE", "a"]).await;
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        .await;
    // Normal commands work while subscribed in RESP3.
    c.cmd(&["SET", "k", "v"]).await;
    c.expect(b"+OK\r\n").await;
    // A message to itself arrives before PUBLISH's reply, as in Redis.
    c.cmd(&["PUBLISH", "a", "hi"]).await;
    c.expect(b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n:1\r\n")
        .await;
    c.cmd(&["UNSUBSCRIBE", "a", "b"]).await;
    c.expect(b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n>3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn shard_channels_are_their_own_namespace() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SSUBSCRIBE", "s1"]).await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n")
        .await;
    c.cmd(&["SUBSCRIBE", "a"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        .await;
    let mut p = redis_conn(&h).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("s1")
        .arg("x")
        .query_async(&mut p)
        .await
        .unwrap();
    assert_eq!(n, 0, "PUBLISH does not reach shard subscribers");
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("s1")
        .arg("y")
        .query_async(&mut p)
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.expect(b"*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$1\r\ny\r\n")
        .await;
    c.cmd(&["UNSUBSCRIBE"]).await;
    c.expect(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n")
        .await;
    // Still in the subscribe context: the shard subscription remains.
    c.cmd(&["GET", "x"]).await;
    c.expect(b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
        .await;
    c.cmd(&["SUNSUBSCRIBE"]).await;
    c.expect(b"*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n")
        .await;
    c.cmd(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn subscriptions_of_a_client_that_leaves_are_dropped() {
    let h = start_engine(&[]).await;
    let mut p = redis_conn(&h).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SUBSCRIBE", "gone"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\ngone\r\n:1\r\n")
        .await;
    drop(c);
    wait_subscribers(&mut p, "gone", 0).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("gone")
        .arg("x")
        .query_async(&mut p)
        .await
        .unwrap();
    assert_eq!(n, 0);
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_resp2_pubsub_api() {
    let h = start_engine(&[]).await;
    let client = redis::Client::open(format!("redis://{}/", h.addr())).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("events").await.unwrap();
    pubsub.psubscribe("ev*").await.unwrap();
    let mut publisher = redis_conn(&h).await;
    wait_subscribers(&mut publisher, "events", 1).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("events")
        .arg("one")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(n, 2, "one channel and one pattern subscription");
    let mut stream = pubsub.on_message();
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("message in time")
            .expect("stream open");
        let payload: String = msg.get_payload().unwrap();
        got.push((
            msg.get_channel_name().to_string(),
            msg.get_pattern::<Option<String>>().unwrap(),
            payload,
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("events".to_string(), None, "one".to_string()),
            (
                "events".to_string(),
                Some("ev*".to_string()),
                "one".to_string()
            ),
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_resp3_push_messages() {
    let h = start_engine(&[]).await;
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", h.addr())).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    con.subscribe("c3").await.unwrap();
    // A normal command on the same connection while subscribed.
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut publisher = redis_conn(&h).await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("c3")
        .arg("payload")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(n, 1);
    loop {
        let push = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("push in time")
            .expect("channel open");
        if push.kind == redis::PushKind::Message {
            assert_eq!(
                push.data,
                [
                    redis::Value::BulkString(b"c3".to_vec()),
                    redis::Value::BulkString(b"payload".to_vec())
                ]
            );
            break;
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn resp3_pushes_reach_a_client_blocked_in_blpop() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["HELLO", "3"]).await;
    c.cmd(&["PING"]).await;
    c.skip_until(b"+PONG\r\n").await;
    c.cmd(&["SUBSCRIBE", "ch"]).await;
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
        .await;
    c.cmd(&["BLPOP", "k", "0"]).await;
    let mut p = redis_conn(&h).await;
    wait_for(Duration::from_secs(10), "the client to block", || {
        let mut p = p.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut p)
                .await
                .unwrap();
            info.contains("blocked_clients:1\r\n")
        }
    })
    .await;
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("m")
        .query_async(&mut p)
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n")
        .await;
    let _: i64 = redis::cmd("RPUSH")
        .arg("k")
        .arg("v")
        .query_async(&mut p)
        .await
        .unwrap();
    c.expect(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n").await;
    h.stop().await;
}

/// An engine as a child process (so its RSS is its own), killed on drop.
struct Child(std::process::Child, u16);

impl Child {
    async fn start(extra: &[&str]) -> Child {
        let port = support::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
            .args(["--port", &port.to_string(), "--persistence", "off"])
            .args(["--loglevel", "warning"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn engine");
        let c = Child(child, port);
        wait_for(Duration::from_secs(30), "engine up", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        c
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        support::redis_conn_to(&format!("redis://127.0.0.1:{}/", self.1))
            .await
            .unwrap()
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn stat(c: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap()
}

/// A subscriber that connects and subscribes, then never reads.
async fn silent_subscriber(port: u16, channel: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let cmd = format!(
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
        channel.len()
    );
    s.write_all(cmd.as_bytes()).await.unwrap();
    s
}

/// client-output-buffer-limit is enforced for pub/sub (the default `pubsub 32mb 8mb 60`): a
/// subscriber that never reads is disconnected once what waits for it reaches the hard limit,
/// counted in INFO `client_output_buffer_limit_disconnections`, and the engine's memory stays
/// bounded (it grew without limit: every message was queued for the subscriber forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_disconnected_at_the_hard_limit() {
    let e = Child::start(&[]).await;
    let mut c = e.conn().await;
    let _silent = silent_subscriber(e.1, "news").await;
    wait_subscribers(&mut c, "news", 1).await;
    let rss_before = e.rss_kb();
    let message = vec![b'm'; 100_000];
    let mut published = 0;
    // 2000 messages of 100 kB are 200 MB: six times the hard limit plus any socket buffer.
    while stat(&mut c, "client_output_buffer_limit_disconnections").await == 0 {
        assert!(
            published < 2000,
            "never disconnected after {published} messages"
        );
        for _ in 0..10 {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("news")
                .arg(&message[..])
                .query_async(&mut c)
                .await
                .unwrap();
            published += 1;
        }
    }
    wait_subscribers(&mut c, "news", 0).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!clients.contains("sub=1"), "{clients}");
    let grown_mb = e.rss_kb().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mb < 100,
        "RSS grew by {grown_mb} MB for a 32 MB limit ({published} messages)"
    );
}

/// The soft limit disconnects a subscriber that stays over it for longer than its seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_over_the_soft_limit_for_its_seconds_is_disconnected() {
    let e = Child::start(&["--client-output-buffer-limit", "pubsub 0 1mb 2"]).await;
    let mut c = e.conn().await;
    let _silent = silent_subscriber(e.1, "news").await;
    wait_subscribers(&mut c, "news", 1).await;
    let message = vec![b'm'; 100_000];
    let publish = |mut c: redis::aio::MultiplexedConnection| {
        let message = message.clone();
        async move {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("news")
                .arg(&message[..])
                .query_async(&mut c)
                .await
                .unwrap();
        }
    };
    // Over the soft limit (past what the socket buffers take).
    let started = std::time::Instant::now();
    for _ in 0..200 {
        publish(c.clone()).await;
    }
    let disconnections = stat(&mut c, "client_output_buffer_limit_disconnections").await;
    // Not for long enough yet, if this machine was quick enough to tell (no timing assumption:
    // the engine cannot have seen more time pass than this test did).
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(disconnections, 0);
    }
    // This sleep is the time under test: the soft limit's two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    publish(c.clone()).await;
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
    wait_subscribers(&mut c, "news", 0).await;
}

/// The RESP2 frame of a pattern message.
fn pmessage(pattern: &str, channel: &str, message: &str) -> Vec<u8> {
    let mut out = b"*4\r\n$8\r\npmessage\r\n".to_vec();
    for part in [pattern, channel, message] {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

/// A subscriber to `*` that silenced its replies (CLIENT REPLY OFF): the confirmation still
/// comes, as a push does in Redis.
async fn pattern_subscriber(h: &redispair::engine::server::ServerHandle) -> RawClient {
    let mut sub = RawClient::connect(h).await;
    sub.cmd(&["CLIENT", "REPLY", "OFF"]).await;
    sub.cmd(&["PSUBSCRIBE", "*"]).await;
    sub.expect(b"*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n")
        .await;
    sub
}

/// Both forms of a keyspace event on database 0, in Redis's order.
async fn expect_event(sub: &mut RawClient, event: &str, key: &str) {
    sub.expect(&pmessage("*", &format!("__keyspace@0__:{key}"), event))
        .await;
    sub.expect(&pmessage("*", &format!("__keyevent@0__:{event}"), key))
        .await;
}

async fn cmd<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con).await
}

#[tokio::test]
async fn keyspace_notifications_follow_notify_keyspace_events() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    // Off by default: a write sends nothing (the next message is the PUBLISH).
    let mut sub = pattern_subscriber(&h).await;
    let _: () = cmd(&mut con, &["SET", "quiet", "v"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["PUBLISH", "c", "m"]).await.unwrap();
    sub.expect(&pmessage("*", "c", "m")).await;

    let e = cmd::<()>(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Kq"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Invalid event class"), "{e}");
    for (given, shown) in [("$lshzxeKE", "$lshzxeKE"), ("KEA", "AKE")] {
        let _: () = cmd(
            &mut con,
            &["CONFIG", "SET", "notify-keyspace-events", given],
        )
        .await
        .unwrap();
        let got: (String, String) = cmd(&mut con, &["CONFIG", "GET", "notify-keyspace-events"])
            .await
            .unwrap();
        assert_eq!(got.1, shown);
    }
    let _: () = cmd(&mut con, &["SET", "foo", "bar"]).await.unwrap();
    expect_event(&mut sub, "set", "foo").await;
    // The last element popped: the command's event, then `del`.
    let _: i64 = cmd(&mut con, &["RPUSH", "l", "a"]).await.unwrap();
    let _: String = cmd(&mut con, &["RPOP", "l"]).await.unwrap();
    expect_event(&mut sub, "rpush", "l").await;
    expect_event(&mut sub, "rpop", "l").await;
    expect_event(&mut sub, "del", "l").await;
    // Redis's names: HMSET is `hset`, INCR `incrby`; DEL of a missing key sends nothing.
    let _: i64 = cmd(&mut con, &["DEL", "missing", "foo"]).await.unwrap();
    let _: () = cmd(&mut con, &["HMSET", "h", "f", "1"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["INCR", "n"]).await.unwrap();
    expect_event(&mut sub, "del", "foo").await;
    expect_event(&mut sub, "hset", "h").await;
    expect_event(&mut sub, "incrby", "n").await;
    // A move between two keys: each side its own event; a STORE command: the destination only.
    let _: i64 = cmd(&mut con, &["SADD", "s1", "a"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["SMOVE", "s1", "s2", "a"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["SUNIONSTORE", "s3", "s2"]).await.unwrap();
    expect_event(&mut sub, "sadd", "s1").await;
    expect_event(&mut sub, "srem", "s1").await;
    expect_event(&mut sub, "del", "s1").await;
    expect_event(&mut sub, "sadd", "s2").await;
    expect_event(&mut sub, "sunionstore", "s3").await;
    // SET with PX: `set` then `expire`; the key's expiry (by access or in the background)
    // sends `expired`.
    let _: () = cmd(&mut con, &["SET", "e", "v", "PX", "1"]).await.unwrap();
    expect_event(&mut sub, "set", "e").await;
    expect_event(&mut sub, "expire", "e").await;
    wait_for(Duration::from_secs(10), "the key to expire", || {
        let mut con = con.clone();
        async move {
            cmd::<Option<String>>(&mut con, &["GET", "e"])
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    expect_event(&mut sub, "expired", "e").await;
    // A write that only finds its key expired sends `expired`, not its own event.
    let _: () = cmd(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"])
        .await
        .unwrap();
    let _: () = cmd(&mut con, &["SET", "w", "v", "PX", "1"]).await.unwrap();
    let set_at: (String, String) = cmd(&mut con, &["TIME"]).await.unwrap();
    wait_for(Duration::from_secs(10), "2 ms of server time", || {
        let mut con = con.clone();
        let start = set_at.clone();
        async move {
            let now: (String, String) = cmd(&mut con, &["TIME"]).await.unwrap();
            let us = |t: &(String, String)| {
                t.0.parse::<i64>().unwrap() * 1_000_000 + t.1.parse::<i64>().unwrap()
            };
            us(&now) - us(&start) >= 2_000
        }
    })
    .await;
    let removed: i64 = cmd(&mut con, &["SREM", "w", "x"]).await.unwrap();
    assert_eq!(removed, 0);
    let _: i64 = cmd(&mut con, &["PUBLISH", "c", "after"]).await.unwrap();
    expect_event(&mut sub, "set", "w").await;
    expect_event(&mut sub, "expire", "w").await;
    expect_event(&mut sub, "expired", "w").await;
    sub.expect(&pmessage("*", "c", "after")).await;
    let _: () = cmd(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"])
        .await
        .unwrap();
    // `n` (new keys) is not part of A; alone it reports only keys that did not exist.
    let _: () = cmd(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "En"])
        .await
        .unwrap();
    let _: () = cmd(&mut con, &["SET", "fresh", "1"]).await.unwrap();
    let _: () = cmd(&mut con, &["SET", "fresh", "2"]).await.unwrap();
    let _: () = cmd(&mut con, &["SET", "other", "1"]).await.unwrap();
    sub.expect(&pmessage("*", "__keyevent@0__:new", "fresh"))
        .await;
    sub.expect(&pmessage("*", "__keyevent@0__:new", "other"))
        .await;
    // Evicted keys, at once when maxmemory is lowered.
    let _: () = cmd(&mut con, &["FLUSHALL"]).await.unwrap();
    let _: () = cmd(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Ee"])
        .await
        .unwrap();
    let _: () = cmd(
        &mut con,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    )
    .await
    .unwrap();
    let _: () = cmd(&mut con, &["SET", "ev", "x"]).await.unwrap();
    let _: () = cmd(&mut con, &["CONFIG", "SET", "maxmemory", "1"])
        .await
        .unwrap();
    sub.expect(&pmessage("*", "__keyevent@0__:evicted", "ev"))
        .await;
    let _: () = cmd(&mut con, &["CONFIG", "SET", "maxmemory", "0"])
        .await
        .unwrap();
    h.stop().await;
}

#[tokio::test]
async fn client_reply_off_on_and_skip() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["CLIENT", "REPLY", "OFF"]).await;
    c.cmd(&["SET", "a", "1"]).await;
    c.cmd(&["GET", "a"]).await;
    c.cmd(&["CLIENT", "REPLY", "ON"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["CLIENT", "REPLY", "SKIP"]).await;
    c.cmd(&["INCR", "a"]).await;
    c.cmd(&["GET", "a"]).await;
    c.expect(b"$1\r\n2\r\n").await;
    h.stop().await;
}
