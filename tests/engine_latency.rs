//! The latency monitor and CLIENT UNBLOCK against a real engine on loopback: events recorded
//! from `latency-monitor-threshold` (LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH),
//! LATENCY HISTOGRAM per command and subcommand, and a blocked client released by CLIENT
//! UNBLOCK with its timeout reply or Redis's UNBLOCKED error. Does I/O: sockets.

use std::time::Duration;

mod support;

use redis::Value;
use support::{redis_conn, start_engine, wait_for, RawClient};

async fn cmd<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut q = redis::cmd(args[0]);
    for a in &args[1..] {
        q.arg(*a);
    }
    q.query_async(c).await.unwrap()
}

#[tokio::test]
async fn latency_events_follow_the_threshold() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    // Off by default: a slow command records nothing.
    let _: () = cmd(&mut c, &["DEBUG", "SLEEP", "0.05"]).await;
    let latest: Vec<Value> = cmd(&mut c, &["LATENCY", "LATEST"]).await;
    assert!(latest.is_empty());
    let doctor: String = cmd(&mut c, &["LATENCY", "DOCTOR"]).await;
    assert!(doctor.contains("no latency spike"), "{doctor}");

    let _: () = cmd(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "20"],
    )
    .await;
    let _: () = cmd(&mut c, &["DEBUG", "SLEEP", "0.05"]).await;
    let _: () = cmd(&mut c, &["PING"]).await;
    let latest: Vec<(String, i64, i64, i64)> = cmd(&mut c, &["LATENCY", "LATEST"]).await;
    assert_eq!(latest.len(), 1, "{latest:?}");
    let (event, _time, last, max) = latest[0].clone();
    assert_eq!(event, "command");
    // DEBUG SLEEP 0.05 takes at least 50 ms, whatever the machine's load.
    assert!(last >= 50 && max >= last, "{latest:?}");
    let history: Vec<(i64, i64)> = cmd(&mut c, &["LATENCY", "HISTORY", "command"]).await;
    assert_eq!(history.len(), 1);
    let doctor: String = cmd(&mut c, &["LATENCY", "DOCTOR"]).await;
    assert!(doctor.contains("1. command: 1 latency spikes"), "{doctor}");
    let graph: String = cmd(&mut c, &["LATENCY", "GRAPH", "command"]).await;
    assert!(graph.starts_with("command - high "), "{graph}");
    let n: i64 = cmd(&mut c, &["LATENCY", "RESET", "nosuch"]).await;
    assert_eq!(n, 0);
    let n: i64 = cmd(&mut c, &["LATENCY", "RESET"]).await;
    assert_eq!(n, 1);
    let latest: Vec<Value> = cmd(&mut c, &["LATENCY", "LATEST"]).await;
    assert!(latest.is_empty());

    // HISTOGRAM: calls per command, subcommands by their full name.
    let _: () = cmd(&mut c, &["CONFIG", "RESETSTAT"]).await;
    let _: () = cmd(&mut c, &["SET", "a", "1"]).await;
    let _: () = cmd(&mut c, &["SET", "b", "1"]).await;
    let _: i64 = cmd(&mut c, &["CLIENT", "ID"]).await;
    let histo: Vec<Value> = cmd(&mut c, &["LATENCY", "HISTOGRAM", "set", "client", "nosuch"]).await;
    assert_eq!(histo.len(), 4, "{histo:?}");
    let calls = |name: &str| -> Value {
        let i = histo
            .iter()
            .position(|v| matches!(v, Value::BulkString(b) if b == name.as_bytes()))
            .unwrap_or_else(|| panic!("{name} in {histo:?}"));
        match &histo[i + 1] {
            Value::Array(fields) => fields[1].clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(calls("set"), Value::Int(2));
    assert_eq!(calls("client|id"), Value::Int(1));
    h.stop().await;
}

#[tokio::test]
async fn client_unblock_releases_a_blocked_client() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let mut blocked = RawClient::connect(&h).await;
    blocked.cmd(&["CLIENT", "SETNAME", "blk"]).await;
    blocked.expect(b"+OK\r\n").await;
    let list: String = cmd(&mut admin, &["CLIENT", "LIST"]).await;
    let line = list.lines().find(|l| l.contains(" name=blk ")).unwrap();
    let id = line
        .strip_prefix("id=")
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    for (mode, expected) in [
        ("TIMEOUT", &b"*-1\r\n"[..]),
        (
            "ERROR",
            &b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"[..],
        ),
    ] {
        blocked.cmd(&["BLPOP", "nolist", "0"]).await;
        wait_for(Duration::from_secs(10), "the client to block", || {
            let mut admin = admin.clone();
            async move {
                let info: String = cmd(&mut admin, &["INFO", "clients"]).await;
                info.contains("blocked_clients:1\r\n")
            }
        })
        .await;
        let n: i64 = cmd(&mut admin, &["CLIENT", "UNBLOCK", &id, mode]).await;
        assert_eq!(n, 1);
        blocked.expect(expected).await;
    }
    let n: i64 = cmd(&mut admin, &["CLIENT", "UNBLOCK", &id]).await;
    assert_eq!(n, 0, "not blocked any more");
    h.stop().await;
}
