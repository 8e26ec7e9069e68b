//! Black-box tests of MULTI/EXEC/DISCARD/WATCH over TCP: queueing errors, runtime errors,
//! WATCH failed by other clients, by expiry and by FLUSHDB, and the `redis` crate's atomic
//! pipelines.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use support::{redis_conn, start_engine, wait_for, RawClient};

#[tokio::test]
async fn queueing_errors_abort_with_execabort() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.cmd(&["NOSUCH"]).await;
    c.cmd(&["GET"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n")
        .await;
    c.cmd(&["EXISTS", "k"]).await;
    c.expect(b":0\r\n").await;
    // EXEC itself rejected: the transaction is discarded, in MULTI or not.
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.cmd(&["EXEC", "extra"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n-ERR EXEC without MULTI\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn runtime_errors_do_not_stop_the_rest() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "abc"]).await;
    c.cmd(&["INCR", "k"]).await;
    c.cmd(&["RPUSH", "k", "x"]).await;
    c.cmd(&["SET", "j", "1"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n")
        .await;
    c.cmd(&["GET", "j"]).await;
    c.expect(b"$1\r\n1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn control_command_errors() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"-ERR EXEC without MULTI\r\n").await;
    c.cmd(&["DISCARD"]).await;
    c.expect(b"-ERR DISCARD without MULTI\r\n").await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["WATCH", "k"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    // Nested MULTI and WATCH inside MULTI are errors that do not abort the transaction.
    c.expect(b"+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n*1\r\n+PONG\r\n")
        .await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.cmd(&["DISCARD"]).await;
    c.cmd(&["GET", "k"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn watch_is_failed_by_another_client() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    let mut other = redis_conn(&h).await;
    c.cmd(&["WATCH", "k", "unrelated"]).await;
    c.expect(b"+OK\r\n").await;
    let () = other.set("k", "theirs").await.unwrap();
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "mine"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n*-1\r\n").await;
    let v: String = other.get("k").await.unwrap();
    assert_eq!(v, "theirs");

    // EXEC forgets the watches: the next transaction runs.
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "mine"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n").await;

    // A write to the same key name in another database does not count; UNWATCH forgets.
    c.cmd(&["WATCH", "k"]).await;
    c.expect(b"+OK\r\n").await;
    let () = redis::cmd("SELECT")
        .arg(1)
        .query_async(&mut other)
        .await
        .unwrap();
    let () = other.set("k", "db1").await.unwrap();
    c.cmd(&["MULTI"]).await;
    c.cmd(&["GET", "k"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n*1\r\n$4\r\nmine\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn watch_is_failed_by_the_clients_own_write_and_by_flushdb() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["WATCH", "k"]).await;
    c.cmd(&["SET", "k", "1"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n").await;

    c.cmd(&["WATCH", "k", "missing"]).await;
    c.cmd(&["FLUSHDB"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n").await;

    // A flush does not fail watchers of keys that did not exist (as Redis 7.0).
    c.cmd(&["WATCH", "missing"]).await;
    c.cmd(&["FLUSHALL"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn watch_is_failed_when_the_key_expires() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    let mut other = redis_conn(&h).await;
    c.cmd(&["SET", "k", "v", "PX", "100"]).await;
    c.cmd(&["WATCH", "k"]).await;
    c.expect(b"+OK\r\n+OK\r\n").await;
    wait_for(Duration::from_secs(10), "k to expire", || {
        let mut other = other.clone();
        async move {
            let pttl: i64 = other.pttl("k").await.unwrap();
            pttl == -2
        }
    })
    .await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+QUEUED\r\n*-1\r\n").await;

    // A key already expired when WATCHed does not fail the transaction.
    let () = redis::cmd("SET")
        .arg("gone")
        .arg("v")
        .arg("PX")
        .arg(1)
        .query_async(&mut other)
        .await
        .unwrap();
    wait_for(Duration::from_secs(10), "gone to expire", || {
        let mut other = other.clone();
        async move {
            let pttl: i64 = other.pttl("gone").await.unwrap();
            pttl == -2
        }
    })
    .await;
    c.cmd(&["WATCH", "gone"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["PING"]).await;
    c.cmd(&["EXEC"]).await;
    c.expect(b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_atomic_pipeline_and_watch_retry() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    let (a, n): (String, i64) = redis::pipe()
        .atomic()
        .set("a", "1")
        .ignore()
        .get("a")
        .incr("n", 5)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a.as_str(), n), ("1", 5));

    // The optimistic-locking loop clients write: WATCH, read, MULTI, write, EXEC (nil → retry).
    let mut other = redis_conn(&h).await;
    let mut tx_conn = redis_conn(&h).await;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let () = redis::cmd("WATCH")
            .arg("n")
            .query_async(&mut tx_conn)
            .await
            .unwrap();
        let current: i64 = tx_conn.get("n").await.unwrap();
        if attempts == 1 {
            let _: i64 = other.incr("n", 100).await.unwrap();
        }
        let result: Option<(i64,)> = redis::pipe()
            .atomic()
            .set("n", current * 2)
            .ignore()
            .get("n")
            .query_async(&mut tx_conn)
            .await
            .unwrap();
        if let Some((v,)) = result {
            assert_eq!(v, 210);
            break;
        }
        assert!(attempts < 3, "the transaction keeps failing");
    }
    assert_eq!(attempts, 2);
    h.stop().await;
}
