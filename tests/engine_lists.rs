//! Black-box tests of list commands over TCP: replies in RESP2 and RESP3, and the blocking
//! commands (wake-up order, timeouts, disconnects, BLMOVE chains, MULTI).

mod support;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use support::{redis_conn, start_engine, wait_for, RawClient};

/// Wait until the engine reports `n` blocked clients.
async fn wait_blocked(conn: &mut redis::aio::MultiplexedConnection, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    wait_for(Duration::from_secs(10), &want, || {
        let mut conn = conn.clone();
        let want = want.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut conn)
                .await
                .unwrap();
            info.contains(&want)
        }
    })
    .await;
}

#[tokio::test]
async fn list_commands_through_the_redis_crate() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    let n: i64 = c.rpush("l", &["a", "b", "c", "b"]).await.unwrap();
    assert_eq!(n, 4);
    let n: i64 = c.lpush("l", "z").await.unwrap();
    assert_eq!(n, 5);
    let all: Vec<String> = c.lrange("l", 0, -1).await.unwrap();
    assert_eq!(all, ["z", "a", "b", "c", "b"]);
    let removed: i64 = c.lrem("l", -1, "b").await.unwrap();
    assert_eq!(removed, 1);
    let v: Option<String> = c.lindex("l", -1).await.unwrap();
    assert_eq!(v.as_deref(), Some("c"));
    let () = c.lset("l", 0, "y").await.unwrap();
    let err = c.lset::<_, _, ()>("nokey", 0, "y").await.unwrap_err();
    assert!(err.to_string().contains("no such key"), "{err}");
    let err = c.lset::<_, _, ()>("l", 10, "y").await.unwrap_err();
    assert!(err.to_string().contains("index out of range"), "{err}");
    let pos: Vec<i64> = redis::cmd("LPOS")
        .arg("l")
        .arg("b")
        .arg("COUNT")
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(pos, [2]);
    let moved: String = redis::cmd("LMOVE")
        .arg("l")
        .arg("other")
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(moved, "c");
    let () = c.ltrim("l", 1, 1).await.unwrap();
    let all: Vec<String> = c.lrange("l", 0, -1).await.unwrap();
    assert_eq!(all, ["a"]);
    let popped: Option<String> = c.rpop("l", None).await.unwrap();
    assert_eq!(popped.as_deref(), Some("a"));
    let exists: bool = c.exists("l").await.unwrap();
    assert!(!exists, "an emptied list is deleted");
    h.stop().await;
}

#[tokio::test]
async fn pop_nil_shapes_in_resp2_and_resp3() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["LPOP", "none"]).await;
    c.expect(b"$-1\r\n").await;
    c.cmd(&["LPOP", "none", "2"]).await;
    c.expect(b"*-1\r\n").await;
    c.cmd(&["RPUSH", "l", "a"]).await;
    c.expect(b":1\r\n").await;
    c.cmd(&["LPOP", "l", "0"]).await;
    c.expect(b"*0\r\n").await;
    c.cmd(&["LMPOP", "1", "none", "LEFT"]).await;
    c.expect(b"*-1\r\n").await;
    c.cmd(&["LMPOP", "2", "none", "l", "RIGHT", "COUNT", "5"])
        .await;
    c.expect(b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\na\r\n").await;
    c.cmd(&["BLPOP", "none", "0.01"]).await;
    c.expect(b"*-1\r\n").await;
    c.cmd(&["BLMOVE", "none", "x", "LEFT", "LEFT", "0.01"])
        .await;
    c.expect(b"*-1\r\n").await;
    c.cmd(&["HELLO", "3"]).await;
    c.cmd(&["PING"]).await;
    c.skip_until(b"+PONG\r\n").await;
    for args in [
        &["LPOP", "none"][..],
        &["LPOP", "none", "2"],
        &["LMPOP", "1", "none", "LEFT"],
        &["BLPOP", "none", "0.01"],
        &["BRPOPLPUSH", "none", "x", "0.01"],
    ] {
        c.cmd(args).await;
        c.expect(b"_\r\n").await;
    }
    h.stop().await;
}

#[tokio::test]
async fn timeout_errors_and_zero_means_forever() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["BLPOP", "k", "x"]).await;
    c.expect(b"-ERR timeout is not a float or out of range\r\n")
        .await;
    c.cmd(&["BLPOP", "k", "-1"]).await;
    c.expect(b"-ERR timeout is negative\r\n").await;
    c.cmd(&["BLMPOP", "1", "0", "k", "LEFT"]).await;
    c.expect(b"-ERR numkeys should be greater than 0\r\n").await;
    let started = Instant::now();
    c.cmd(&["BRPOP", "k", "0.2"]).await;
    c.expect(b"*-1\r\n").await;
    assert!(started.elapsed() >= Duration::from_millis(190));

    let mut admin = redis_conn(&h).await;
    c.cmd(&["BLPOP", "k", "0"]).await;
    wait_blocked(&mut admin, 1).await;
    let _: i64 = admin.rpush("k", "v").await.unwrap();
    c.expect(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn longest_waiter_is_served_first() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut waiters = Vec::new();
    for i in 0..3 {
        let mut c = RawClient::connect(&h).await;
        c.cmd(&["BLPOP", "other", "q", "0"]).await;
        wait_blocked(&mut admin, i + 1).await;
        waiters.push(c);
    }
    // One push of three elements: each waiter gets one, in the order they blocked.
    let _: i64 = admin.rpush("q", &["a", "b", "c"]).await.unwrap();
    for (c, v) in waiters.iter_mut().zip(["a", "b", "c"]) {
        c.expect(format!("*2\r\n$1\r\nq\r\n$1\r\n{v}\r\n").as_bytes())
            .await;
    }
    let len: i64 = admin.llen("q").await.unwrap();
    assert_eq!(len, 0);
    wait_blocked(&mut admin, 0).await;
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_while_blocked_is_forgotten() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut gone = RawClient::connect(&h).await;
    gone.cmd(&["BLPOP", "k", "0"]).await;
    let mut stays = RawClient::connect(&h).await;
    wait_blocked(&mut admin, 1).await;
    stays.cmd(&["BRPOP", "k", "0"]).await;
    wait_blocked(&mut admin, 2).await;
    drop(gone);
    wait_blocked(&mut admin, 1).await;
    let _: i64 = admin.rpush("k", &["x", "y"]).await.unwrap();
    stays.expect(b"*2\r\n$1\r\nk\r\n$1\r\ny\r\n").await;
    // The element nobody took is still there.
    let rest: Vec<String> = admin.lrange("k", 0, -1).await.unwrap();
    assert_eq!(rest, ["x"]);
    h.stop().await;
}

#[tokio::test]
async fn blmove_chains_feed_the_next_waiter() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut first = RawClient::connect(&h).await;
    first.cmd(&["BLMOVE", "a", "b", "RIGHT", "LEFT", "0"]).await;
    wait_blocked(&mut admin, 1).await;
    let mut second = RawClient::connect(&h).await;
    second.cmd(&["BRPOPLPUSH", "b", "c", "0"]).await;
    wait_blocked(&mut admin, 2).await;
    let mut third = RawClient::connect(&h).await;
    third
        .cmd(&["BLMPOP", "0", "2", "x", "c", "LEFT", "COUNT", "3"])
        .await;
    wait_blocked(&mut admin, 3).await;
    let _: i64 = admin.rpush("a", "v").await.unwrap();
    first.expect(b"$1\r\nv\r\n").await;
    second.expect(b"$1\r\nv\r\n").await;
    third.expect(b"*2\r\n$1\r\nc\r\n*1\r\n$1\r\nv\r\n").await;
    for k in ["a", "b", "c"] {
        let exists: bool = admin.exists(k).await.unwrap();
        assert!(!exists, "{k} was emptied by the chain");
    }
    h.stop().await;
}

#[tokio::test]
async fn push_inside_multi_wakes_the_waiter_after_exec() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut waiter = RawClient::connect(&h).await;
    waiter.cmd(&["BLPOP", "k", "0"]).await;
    wait_blocked(&mut admin, 1).await;
    let mut tx = RawClient::connect(&h).await;
    tx.cmd(&["MULTI"]).await;
    tx.cmd(&["RPUSH", "k", "a", "b"]).await;
    tx.cmd(&["LLEN", "k"]).await;
    tx.cmd(&["EXEC"]).await;
    // Inside the transaction the waiter has not taken anything yet.
    tx.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:2\r\n:2\r\n")
        .await;
    waiter.expect(b"*2\r\n$1\r\nk\r\n$1\r\na\r\n").await;
    let rest: Vec<String> = admin.lrange("k", 0, -1).await.unwrap();
    assert_eq!(rest, ["b"]);
    h.stop().await;
}

#[tokio::test]
async fn blocking_commands_inside_multi_answer_at_once() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["BLPOP", "k", "0"]).await;
    c.cmd(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]).await;
    c.cmd(&["BLMPOP", "0", "1", "k", "LEFT"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n*-1\r\n$-1\r\n*-1\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn pipelined_commands_wait_behind_a_blocked_one() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut c = RawClient::connect(&h).await;
    c.send(b"PING\r\nBLPOP k 0\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n").await;
    wait_blocked(&mut admin, 1).await;
    let _: i64 = admin.lpush("k", "v").await.unwrap();
    c.expect(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn wrong_type_is_reported_not_waited_on() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SET", "s", "x"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["BLPOP", "none", "s", "0"]).await;
    c.expect(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
        .await;
    c.cmd(&["RPUSH", "l", "a"]).await;
    c.expect(b":1\r\n").await;
    c.cmd(&["LMOVE", "l", "s", "LEFT", "LEFT"]).await;
    c.expect(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
        .await;
    c.cmd(&["LLEN", "l"]).await;
    c.expect(b":1\r\n").await;
    h.stop().await;
}
