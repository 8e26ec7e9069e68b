//! Black-box tests of pub/sub over TCP: raw RESP2 (arrays, subscribe context) and RESP3 (push
//! frames, normal commands while subscribed), and the `redis` crate's pub/sub APIs.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::{redis_conn, start_engine, wait_for, RawClient};

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
