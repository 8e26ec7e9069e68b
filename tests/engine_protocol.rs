//! Black-box protocol tests: raw RESP bytes over TCP against a real engine on loopback.

mod support;

use support::{start_engine, RawClient};

#[tokio::test]
async fn pipelined_and_inline_commands() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$2\r\nk{}\r\n$1\r\n{}\r\n",
                i % 10,
                i % 10
            )
            .as_bytes(),
        );
    }
    c.send(&batch).await;
    c.expect(&b"+OK\r\n".repeat(2000)).await;
    c.send(b"GET k7\r\nPING\r\n").await;
    c.expect(b"$1\r\n7\r\n+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn protocol_errors_reply_then_close() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.send(b"PING\r\n*1\r\nfoo\r\n").await;
    c.expect(b"+PONG\r\n-ERR Protocol error: expected '$', got 'f'\r\n")
        .await;
    c.expect_closed().await;

    let mut c = RawClient::connect(&h).await;
    c.send(b"*1\r\n$-3\r\n").await;
    c.expect(b"-ERR Protocol error: invalid bulk length\r\n")
        .await;
    c.expect_closed().await;

    let mut c = RawClient::connect(&h).await;
    c.send(b"SET \"a b\r\n").await;
    c.expect(b"-ERR Protocol error: unbalanced quotes in request\r\n")
        .await;
    c.expect_closed().await;
    h.stop().await;
}

#[tokio::test]
async fn errors_are_worded_like_redis() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["GET"]).await;
    c.expect(b"-ERR wrong number of arguments for 'get' command\r\n")
        .await;
    c.cmd(&["NOSUCH", "a", "b"]).await;
    c.expect(b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n")
        .await;
    c.cmd(&["CONFIG", "NOPE"]).await;
    c.expect(b"-ERR unknown subcommand 'NOPE'. Try CONFIG HELP.\r\n")
        .await;
    c.cmd(&["SET", "k", "v", "EX", "0"]).await;
    c.expect(b"-ERR invalid expire time in 'set' command\r\n")
        .await;
    c.cmd(&["SET", "n", "x"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["INCR", "n"]).await;
    c.expect(b"-ERR value is not an integer or out of range\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn resp3_hello_and_auth() {
    let h = start_engine(&[("requirepass", "secret")]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["GET", "x"]).await;
    c.expect(b"-NOAUTH Authentication required.\r\n").await;
    c.cmd(&["AUTH", "wrong"]).await;
    c.expect(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        .await;
    c.cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "me"])
        .await;
    c.expect(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n").await;
    h.stop().await;
}
