//! Black-box tests of hashes, sets and sorted sets over TCP (raw RESP and the `redis` crate):
//! reply orders Redis guarantees for small encodings, RESP2/RESP3 shapes, large sorted sets,
//! SCAN completeness, blocking pops (wake-up order, timeouts), plus the deterministic rewrites
//! these commands propagate (checked in-process through the write-log seam).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redispair::engine::client::ClientState;
use redispair::engine::cmd::{process, Outcome};
use redispair::engine::config::Config;
use redispair::engine::protocol::arg::Arg;
use redispair::engine::state::{EngineState, WriteLog};
use support::{redis_conn, start_engine, wait_for, RawClient};

#[tokio::test]
async fn small_hashes_keep_insertion_order_and_resp3_maps() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]).await;
    c.expect(b":3\r\n").await;
    c.cmd(&["HDEL", "h", "b"]).await;
    c.expect(b":1\r\n").await;
    c.cmd(&["HSET", "h", "b", "4"]).await;
    c.expect(b":1\r\n").await;
    c.cmd(&["HGETALL", "h"]).await;
    c.expect(b"*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n4\r\n")
        .await;
    c.cmd(&["HSCAN", "h", "0", "MATCH", "[ab]"]).await;
    c.expect(b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n4\r\n")
        .await;
    c.cmd(&["HINCRBYFLOAT", "h", "a", "0.5"]).await;
    c.expect(b"$3\r\n1.5\r\n").await;
    c.cmd(&["HINCRBY", "h", "c", "x"]).await;
    c.expect(b"-ERR value is not an integer or out of range\r\n")
        .await;
    c.cmd(&["HINCRBY", "h", "b", "9223372036854775807"]).await;
    c.expect(b"-ERR increment or decrement would overflow\r\n")
        .await;
    // RESP3: HGETALL is a map.
    let mut r3 = RawClient::connect(&h).await;
    r3.cmd(&["HELLO", "3"]).await;
    r3.cmd(&["PING"]).await;
    read_until(&mut r3, b"+PONG\r\n").await;
    r3.cmd(&["HGETALL", "h"]).await;
    r3.expect(b"%3\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n4\r\n")
        .await;
    r3.cmd(&["HRANDFIELD", "h", "1", "WITHVALUES"]).await;
    r3.expect(b"*1\r\n*2\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn integer_sets_reply_in_numeric_order() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SADD", "s", "10", "-3", "2", "2"]).await;
    c.expect(b":3\r\n").await;
    c.cmd(&["SMEMBERS", "s"]).await;
    c.expect(b"*3\r\n$2\r\n-3\r\n$1\r\n2\r\n$2\r\n10\r\n").await;
    c.cmd(&["SSCAN", "s", "0"]).await;
    c.expect(b"*2\r\n$1\r\n0\r\n*3\r\n$2\r\n-3\r\n$1\r\n2\r\n$2\r\n10\r\n")
        .await;
    c.cmd(&["SINTERCARD", "0", "s"]).await;
    c.expect(b"-ERR numkeys should be greater than 0\r\n").await;
    c.cmd(&["SPOP", "s", "-1"]).await;
    c.expect(b"-ERR value is out of range, must be positive\r\n")
        .await;
    c.cmd(&["SET", "str", "x"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["SMOVE", "nosuch", "str", "a"]).await;
    c.expect(b":0\r\n").await;
    c.cmd(&["SMOVE", "s", "str", "2"]).await;
    c.expect(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
        .await;
    c.cmd(&["SPOP", "s", "10"]).await;
    c.expect(b"*3\r\n$2\r\n-3\r\n$1\r\n2\r\n$2\r\n10\r\n").await;
    c.cmd(&["EXISTS", "s"]).await;
    c.expect(b":0\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn sorted_set_replies_and_errors() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["ZADD", "z", "1.1", "a", "2", "b", "-inf", "c"])
        .await;
    c.expect(b":3\r\n").await;
    c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await;
    c.expect(
        b"*6\r\n$1\r\nc\r\n$4\r\n-inf\r\n$1\r\na\r\n$18\r\n1.1000000000000001\r\n$1\r\nb\r\n$1\r\n2\r\n",
    )
    .await;
    c.cmd(&["ZRANGE", "z", "(1.1", "+inf", "BYSCORE"]).await;
    c.expect(b"*1\r\n$1\r\nb\r\n").await;
    c.cmd(&["ZADD", "z", "NX", "XX", "1", "a"]).await;
    c.expect(b"-ERR XX and NX options at the same time are not compatible\r\n")
        .await;
    c.cmd(&["ZADD", "z", "nan", "a"]).await;
    c.expect(b"-ERR value is not a valid float\r\n").await;
    c.cmd(&["ZINCRBY", "z", "+inf", "c"]).await;
    c.expect(b"-ERR resulting score is not a number (NaN)\r\n")
        .await;
    c.cmd(&["ZCOUNT", "z", "x", "1"]).await;
    c.expect(b"-ERR min or max is not a float\r\n").await;
    c.cmd(&["ZRANGEBYLEX", "z", "a", "b"]).await;
    c.expect(b"-ERR min or max not valid string range item\r\n")
        .await;
    c.cmd(&["ZRANK", "z", "b"]).await;
    c.expect(b":2\r\n").await;
    c.cmd(&["ZPOPMAX", "z"]).await;
    c.expect(b"*2\r\n$1\r\nb\r\n$1\r\n2\r\n").await;

    // RESP3: doubles, and pairs nested where Redis nests them.
    let mut r3 = RawClient::connect(&h).await;
    r3.cmd(&["HELLO", "3"]).await;
    r3.cmd(&["PING"]).await;
    read_until(&mut r3, b"+PONG\r\n").await;
    r3.cmd(&["ZSCORE", "z", "a"]).await;
    r3.expect(b",1.1000000000000001\r\n").await;
    r3.cmd(&["ZRANGE", "z", "0", "0", "WITHSCORES"]).await;
    r3.expect(b"*1\r\n*2\r\n$1\r\nc\r\n,-inf\r\n").await;
    r3.cmd(&["ZPOPMIN", "z"]).await;
    r3.expect(b"*2\r\n$1\r\nc\r\n,-inf\r\n").await;
    r3.cmd(&["ZMPOP", "1", "nosuch", "MIN"]).await;
    r3.expect(b"_\r\n").await;
    h.stop().await;
}

/// Discard everything up to and including `marker` (for long replies such as HELLO's).
async fn read_until(c: &mut RawClient, marker: &[u8]) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.ends_with(marker) {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout_at(deadline, c.stream.read(&mut b))
            .await
            .expect("marker arrives")
            .unwrap();
        assert!(n > 0, "connection closed");
        seen.push(b[0]);
    }
}

#[tokio::test]
async fn large_sorted_sets_rank_and_scan_every_member() {
    let h = start_engine(&[]).await;
    let mut conn = redis_conn(&h).await;
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("ZADD")
            .arg("big")
            .arg(i * 2)
            .arg(format!("m{i:05}"))
            .ignore();
    }
    let _: () = pipe.query_async(&mut conn).await.unwrap();
    let rank: i64 = redis::cmd("ZRANK")
        .arg("big")
        .arg("m04321")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(rank, 4321);
    let range: Vec<String> = redis::cmd("ZRANGE")
        .arg("big")
        .arg("(100")
        .arg("106")
        .arg("BYSCORE")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(range, vec!["m00051", "m00052", "m00053"]);
    let rev: Vec<String> = redis::cmd("ZREVRANGE")
        .arg("big")
        .arg("0")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(rev, vec!["m04999", "m04998"]);

    // ZSCAN returns every member present for the whole walk, despite deletions meanwhile.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    let mut round = 0;
    loop {
        let (next, items): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query_async(&mut conn)
            .await
            .unwrap();
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        round += 1;
        let _: i64 = redis::cmd("ZREM")
            .arg("big")
            .arg(format!("m{:05}", round * 7))
            .query_async(&mut conn)
            .await
            .unwrap();
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg("big")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    for m in left {
        assert!(seen.contains(&m), "{m} missed by ZSCAN");
    }
    h.stop().await;
}

async fn blocked_clients(conn: &mut redis::aio::MultiplexedConnection) -> usize {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_blocked(conn: &mut redis::aio::MultiplexedConnection, n: usize) {
    let conn = Arc::new(tokio::sync::Mutex::new(conn.clone()));
    wait_for(Duration::from_secs(10), "clients to block", || {
        let conn = conn.clone();
        async move { blocked_clients(&mut *conn.lock().await).await == n }
    })
    .await;
}

#[tokio::test]
async fn bzpopmin_serves_longest_waiter_first_and_times_out() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut first = RawClient::connect(&h).await;
    first.cmd(&["BZPOPMIN", "z", "0"]).await;
    wait_blocked(&mut admin, 1).await;
    let mut second = RawClient::connect(&h).await;
    second.cmd(&["BZPOPMIN", "other", "z", "0"]).await;
    wait_blocked(&mut admin, 2).await;
    let mut third = RawClient::connect(&h).await;
    third.cmd(&["BZPOPMIN", "z", "0.2"]).await;
    wait_blocked(&mut admin, 3).await;

    // The third waiter's timeout passes while nothing arrives.
    third.expect(b"*-1\r\n").await;
    wait_blocked(&mut admin, 2).await;

    let added: i64 = redis::cmd("ZADD")
        .arg("z")
        .arg(2)
        .arg("b")
        .arg(1)
        .arg("a")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(added, 2);
    first
        .expect(b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n")
        .await;
    second
        .expect(b"*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n")
        .await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg("z")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // BZMPOP wakes on a STORE into one of its keys and pops up to COUNT.
    let mut waiter = RawClient::connect(&h).await;
    waiter
        .cmd(&["BZMPOP", "0", "2", "x", "y", "MAX", "COUNT", "5"])
        .await;
    wait_blocked(&mut admin, 1).await;
    let _: i64 = redis::cmd("ZADD")
        .arg("src")
        .arg(1)
        .arg("p")
        .arg(3)
        .arg("q")
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZUNIONSTORE")
        .arg("y")
        .arg(1)
        .arg("src")
        .query_async(&mut admin)
        .await
        .unwrap();
    waiter
        .expect(b"*2\r\n$1\r\ny\r\n*2\r\n*2\r\n$1\r\nq\r\n$1\r\n3\r\n*2\r\n$1\r\np\r\n$1\r\n1\r\n")
        .await;

    // Inside MULTI a blocking pop answers at once.
    let mut tx = RawClient::connect(&h).await;
    tx.cmd(&["MULTI"]).await;
    tx.cmd(&["BZPOPMAX", "empty", "0"]).await;
    tx.cmd(&["EXEC"]).await;
    tx.expect(b"+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n").await;
    h.stop().await;
}

/// A timeout under 1 ms is rounded up to 1 ms, as redis-server 7.0.15 and the list commands do:
/// `BZPOPMIN z 0.0001` times out at once instead of blocking forever (it was truncated to 0,
/// which means "no timeout"). A negative value that rounds to 0 still means forever, as in Redis.
#[tokio::test]
async fn sorted_set_blocking_timeouts_under_a_millisecond_round_up() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    for cmd in [
        &["BZPOPMIN", "z", "0.0001"][..],
        &["BZPOPMAX", "z", "0.0001"],
        &["BZMPOP", "0.0001", "1", "z", "MIN"],
        &["BLPOP", "l", "0.0001"],
    ] {
        // `expect` fails after 10 s: a command that blocks forever fails the test.
        c.cmd(cmd).await;
        c.expect(b"*-1\r\n").await;
    }
    h.stop().await;
}

/// Records every effect the engine propagates.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Vec<String>>>>);

impl WriteLog for Recorder {
    fn append(&mut self, _db: usize, args: &[Arg]) {
        self.0.lock().unwrap().push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        );
    }
}

fn run(state: &mut EngineState, client: &mut ClientState, args: &[&str]) {
    let args = args.iter().map(|a| Arg::from(a.to_string())).collect();
    match process(state, client, args, 1_000_000) {
        Outcome::Reply(_) => {}
        _ => panic!("unexpected outcome"),
    }
}

#[test]
fn random_and_relative_effects_propagate_deterministically() {
    let mut state = EngineState::new(Config::default(), 1_000_000);
    let log = Recorder::default();
    state.write_log = Box::new(log.clone());
    let mut client = ClientState::internal(1, 0, 2);
    run(&mut state, &mut client, &["SADD", "s", "a", "b", "c"]);
    run(&mut state, &mut client, &["SPOP", "s"]);
    run(&mut state, &mut client, &["SPOP", "s", "5"]);
    run(&mut state, &mut client, &["HINCRBYFLOAT", "h", "f", "1.5"]);
    run(
        &mut state,
        &mut client,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
    );
    run(&mut state, &mut client, &["BZPOPMAX", "z", "0"]);
    run(
        &mut state,
        &mut client,
        &["ZMPOP", "1", "z", "MIN", "COUNT", "9"],
    );
    let effects = log.0.lock().unwrap().clone();
    assert_eq!(effects[0], vec!["SADD", "s", "a", "b", "c"]);
    assert_eq!(effects[1][..2], ["SREM".to_string(), "s".to_string()]);
    assert_eq!(effects[1].len(), 3);
    assert_eq!(effects[2], vec!["DEL", "s"]);
    assert_eq!(effects[3], vec!["HSET", "h", "f", "1.5"]);
    assert_eq!(effects[5], vec!["ZPOPMAX", "z"]);
    assert_eq!(effects[6], vec!["ZPOPMIN", "z", "2"]);
}
