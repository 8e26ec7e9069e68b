//! Black-box tests of streams over TCP: reply shapes in RESP2 and RESP3, blocking XREAD and
//! XREADGROUP (woken by XADD, timeouts, unblocked by deletion and XGROUP DESTROY, MULTI and
//! scripts never block), deterministic propagation (a replica's copy and a restart's recovery
//! equal the master's dataset), and DUMP/RESTORE both ways with a real redis-server.

mod repl_support;
mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use repl_support::{info_field, port_of, replicaof, start_pair};
use support::{free_port, redis_conn, start_engine, temp_dir, wait_for, RawClient};

async fn q(c: &mut MultiplexedConnection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

async fn q_err(c: &mut MultiplexedConnection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Value>(c).await.unwrap_err().to_string()
}

async fn q_str(c: &mut MultiplexedConnection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

async fn q_int(c: &mut MultiplexedConnection, args: &[&str]) -> i64 {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

/// Wait until the engine reports `n` blocked clients.
async fn wait_blocked(c: &MultiplexedConnection, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    wait_for(Duration::from_secs(10), &want, || {
        let mut c = c.clone();
        let want = want.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut c)
                .await
                .unwrap();
            info.contains(&want)
        }
    })
    .await;
}

/// Everything deterministic about the streams of db 0: entries, counters and groups with
/// their pending entries (owner, delivery count) but no times.
async fn stream_state(c: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(c).await.unwrap();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        if q_str(c, &["TYPE", &k]).await != "stream" {
            continue;
        }
        out.push(format!("{k} {:?}", q(c, &["XRANGE", &k, "-", "+"]).await));
        let info = without_radix_nodes(q(c, &["XINFO", "STREAM", &k]).await);
        out.push(format!("{k} {info:?}"));
        let groups = q(c, &["XINFO", "GROUPS", &k]).await;
        out.push(format!("{k} {groups:?}"));
        let Value::Array(groups) = groups else {
            continue;
        };
        for g in groups {
            let Value::Array(fields) = g else { continue };
            let Some(Value::BulkString(name)) = fields.get(1) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).to_string();
            let pending = q(c, &["XPENDING", &k, &name, "-", "+", "1000"]).await;
            // [id, consumer, idle, deliveries]: drop the idle time.
            let Value::Array(rows) = pending else {
                continue;
            };
            for row in rows {
                if let Value::Array(mut f) = row {
                    f.remove(2);
                    out.push(format!("{k} {name} {f:?}"));
                }
            }
        }
    }
    out
}

/// XINFO STREAM without `radix-tree-nodes` (the inner node count of Redis's radix tree, which
/// the engine, an ordered map, estimates) and `radix-tree-keys` (the node count, which depends
/// on stream-node-max-entries when the entries were added: a replay with other settings
/// differs; compared on its own where the settings are the same).
fn without_radix_nodes(v: Value) -> Value {
    let Value::Array(items) = v else { return v };
    let mut out = Vec::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(val)) = (it.next(), it.next()) {
        let radix = [b"radix-tree-nodes".to_vec(), b"radix-tree-keys".to_vec()];
        if !radix.iter().any(|r| k == Value::BulkString(r.clone())) {
            out.push(k);
            out.push(val);
        }
    }
    Value::Array(out)
}

/// Equal stream states, or a panic naming the lines that differ (cut short: they are long).
fn assert_same_state(want: &[String], got: &[String], what: &str) {
    let differ: Vec<(String, String)> = want
        .iter()
        .zip(got)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.chars().take(900).collect(), b.chars().take(900).collect()))
        .collect();
    assert!(
        differ.is_empty() && want.len() == got.len(),
        "{what}: {} lines, {} expected; differing: {differ:#?}",
        got.len(),
        want.len()
    );
}

#[tokio::test]
async fn commands_and_reply_shapes_in_resp2_and_resp3() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    assert_eq!(q_str(&mut c, &["XADD", "s", "1-1", "a", "1"]).await, "1-1");
    assert_eq!(q_str(&mut c, &["XADD", "s", "1-*", "b", "2"]).await, "1-2");
    assert_eq!(q_str(&mut c, &["XADD", "s", "5", "c", "3"]).await, "5-0");
    assert!(q_err(&mut c, &["XADD", "s", "4-0", "x", "y"])
        .await
        .ends_with("The ID specified in XADD is equal or smaller than the target stream top item"));
    assert!(q_err(&mut c, &["XADD", "s", "0-0", "x", "y"])
        .await
        .contains("must be greater than 0-0"));
    assert_eq!(
        q(&mut c, &["XADD", "nope", "NOMKSTREAM", "*", "a", "b"]).await,
        Value::Nil
    );
    assert_eq!(q_int(&mut c, &["EXISTS", "nope"]).await, 0);
    assert_eq!(q_str(&mut c, &["TYPE", "s"]).await, "stream");
    assert_eq!(q_str(&mut c, &["OBJECT", "ENCODING", "s"]).await, "stream");
    assert_eq!(q_int(&mut c, &["XLEN", "s"]).await, 3);
    // Exclusive ranges and COUNT.
    let r = q(&mut c, &["XRANGE", "s", "(1-1", "+", "COUNT", "1"]).await;
    assert_eq!(
        format!("{r:?}"),
        format!("{:?}", q(&mut c, &["XRANGE", "s", "1-2", "1-2"]).await)
    );
    let r = q(&mut c, &["XREVRANGE", "s", "+", "-", "COUNT", "1"]).await;
    assert!(format!("{r:?}").contains("5-0"), "{r:?}");
    assert_eq!(
        q(&mut c, &["XRANGE", "s", "-", "+", "COUNT", "0"]).await,
        Value::Nil
    );
    // Groups, PEL, claims.
    assert_eq!(
        q_str(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]).await,
        "OK"
    );
    assert!(q_err(&mut c, &["XGROUP", "CREATE", "s", "g", "0"])
        .await
        .contains("BUSYGROUP"));
    let r = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    assert!(format!("{r:?}").contains("1-2"), "{r:?}");
    let pending = q(&mut c, &["XPENDING", "s", "g"]).await;
    assert_eq!(
        format!("{pending:?}"),
        format!(
            "{:?}",
            Value::Array(vec![
                Value::Int(2),
                Value::BulkString(b"1-1".to_vec()),
                Value::BulkString(b"1-2".to_vec()),
                Value::Array(vec![Value::Array(vec![
                    Value::BulkString(b"alice".to_vec()),
                    Value::BulkString(b"2".to_vec())
                ])])
            ])
        )
    );
    let r = q(&mut c, &["XCLAIM", "s", "g", "bob", "0", "1-1", "JUSTID"]).await;
    assert_eq!(r, Value::Array(vec![Value::BulkString(b"1-1".to_vec())]));
    let r = q(
        &mut c,
        &["XAUTOCLAIM", "s", "g", "carol", "0", "0", "COUNT", "1"],
    )
    .await;
    // The scan starts at 0: it takes 1-1 (from bob) and says where to go on (1-2).
    let Value::Array(parts) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(parts[0], Value::BulkString(b"1-2".to_vec()), "{r:?}");
    assert!(format!("{:?}", parts[1]).contains("1-1"), "{r:?}");
    assert_eq!(
        q_int(&mut c, &["XACK", "s", "g", "1-1", "1-2", "9-9"]).await,
        2
    );
    assert!(q_err(
        &mut c,
        &["XREADGROUP", "GROUP", "nog", "a", "STREAMS", "s", ">"]
    )
    .await
    .contains("NOGROUP"));
    let _ = q(&mut c, &["SET", "str", "1"]).await;
    assert!(q_err(&mut c, &["XADD", "str", "*", "a", "b"])
        .await
        .contains("WRONGTYPE"));
    let scan: (String, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("stream")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(scan.1, ["s"]);

    // XREAD in RESP2: [[key, [[id, [f, v]]]]]; in RESP3 a map key → entries.
    let mut raw = RawClient::connect(&h).await;
    raw.cmd(&["XREAD", "STREAMS", "s", "1-2"]).await;
    raw.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n")
        .await;
    raw.cmd(&["XREAD", "STREAMS", "s", "5-0"]).await;
    raw.expect(b"*-1\r\n").await;
    raw.cmd(&["HELLO", "3"]).await;
    raw.skip_until(b"modules\r\n*0\r\n").await;
    raw.cmd(&["XREAD", "STREAMS", "s", "1-2"]).await;
    raw.expect(b"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n")
        .await;
    raw.cmd(&["XREAD", "STREAMS", "s", "5-0"]).await;
    raw.expect(b"_\r\n").await;
    raw.cmd(&["XINFO", "GROUPS", "s"]).await;
    raw.expect(
        b"*1\r\n%6\r\n$4\r\nname\r\n$1\r\ng\r\n$9\r\nconsumers\r\n:3\r\n$7\r\npending\r\n:0\r\n\
$17\r\nlast-delivered-id\r\n$3\r\n1-2\r\n$12\r\nentries-read\r\n:2\r\n$3\r\nlag\r\n:1\r\n",
    )
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_are_woken_time_out_and_are_unblocked() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    let _ = q(&mut c, &["XADD", "s", "1-0", "a", "1"]).await;

    // XREAD BLOCK with `$` waits for entries after the last ID at the time it blocked.
    let mut r1 = RawClient::connect(&h).await;
    r1.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).await;
    wait_blocked(&c, 1).await;
    let _ = q(&mut c, &["XADD", "s", "2-0", "b", "2"]).await;
    r1.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n")
        .await;

    // A timeout answers a nil array.
    r1.cmd(&["XREAD", "BLOCK", "30", "STREAMS", "s", "$"]).await;
    r1.expect(b"*-1\r\n").await;

    // XREADGROUP BLOCK with `>`: served by XADD, the entry lands in the consumer's PEL.
    let _ = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]).await;
    r1.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    wait_blocked(&c, 1).await;
    let _ = q(&mut c, &["XADD", "s", "3-0", "c", "3"]).await;
    r1.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n")
        .await;
    let pending = q(&mut c, &["XPENDING", "s", "g"]).await;
    assert!(format!("{pending:?}").contains("alice"), "{pending:?}");

    // Deleting the key answers a parked XREADGROUP -UNBLOCKED; XREAD keeps waiting.
    let mut r2 = RawClient::connect(&h).await;
    r1.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    r2.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).await;
    wait_blocked(&c, 2).await;
    let _ = q(&mut c, &["DEL", "s"]).await;
    r1.expect(b"-UNBLOCKED the stream key no longer exists\r\n")
        .await;
    wait_blocked(&c, 1).await;
    // It waits for IDs after 3-0 (the last ID when it blocked), whatever the key holds now.
    let _ = q(&mut c, &["XADD", "s", "2-0", "d", "4"]).await;
    let _ = q(&mut c, &["XADD", "s", "9-0", "d", "5"]).await;
    r2.expect(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n9-0\r\n*2\r\n$1\r\nd\r\n$1\r\n5\r\n")
        .await;

    // XGROUP DESTROY answers -NOGROUP.
    let _ = q(&mut c, &["XGROUP", "CREATE", "s", "g2", "$"]).await;
    r1.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g2",
        "bob",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    wait_blocked(&c, 1).await;
    let _ = q(&mut c, &["XGROUP", "DESTROY", "s", "g2"]).await;
    r1.expect(b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n")
        .await;

    // Inside MULTI and scripts a read never blocks.
    r1.cmd(&["MULTI"]).await;
    r1.expect(b"+OK\r\n").await;
    r1.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).await;
    r1.expect(b"+QUEUED\r\n").await;
    r1.cmd(&["EXEC"]).await;
    r1.expect(b"*1\r\n*-1\r\n").await;
    let err = q_err(
        &mut c,
        &[
            "EVAL",
            "return redis.call('XREAD','BLOCK','0','STREAMS','s','$')",
            "0",
        ],
    )
    .await;
    assert!(
        err.contains("not allowed with BLOCK option from scripts"),
        "{err}"
    );
    assert_eq!(
        info_field(&mut c, "clients", "blocked_clients")
            .await
            .as_deref(),
        Some("0")
    );
    h.stop().await;
}

/// The stream operations whose effects depend on the clock or on the node layout.
async fn stream_workload(c: &mut MultiplexedConnection) {
    for i in 0..120 {
        let v = i.to_string();
        let _ = q(
            c,
            &[
                "XADD",
                "s",
                "MAXLEN",
                "~",
                "50",
                "*",
                "n",
                &v,
                "pad",
                "xxxxxxxxxx",
            ],
        )
        .await;
        let _ = q(c, &["XADD", "t", "*", "n", &v]).await;
    }
    let _ = q(c, &["XTRIM", "t", "MINID", "~", "0-1"]).await;
    let _ = q(c, &["XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", "0"]).await;
    let _ = q(c, &["XGROUP", "CREATE", "s", "quiet", "0"]).await;
    let _ = q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    let _ = q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "quiet",
            "dan",
            "COUNT",
            "5",
            "NOACK",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    let ids = q(c, &["XRANGE", "s", "-", "+", "COUNT", "3"]).await;
    let Value::Array(entries) = ids else {
        panic!("XRANGE: {ids:?}");
    };
    let first_ids: Vec<String> = entries
        .iter()
        .filter_map(|e| match e {
            Value::Array(p) => match &p[0] {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut claim = vec!["XCLAIM", "s", "g", "bob", "0"];
    claim.extend(first_ids.iter().map(|s| s.as_str()));
    claim.extend(["IDLE", "5000"]);
    let _ = q(c, &claim).await;
    let _ = q(
        c,
        &["XAUTOCLAIM", "s", "g", "carol", "0", "0", "COUNT", "2"],
    )
    .await;
    let _ = q(c, &["XACK", "s", "g", &first_ids[2]]).await;
    // An entry nobody has pending (a compaction drops pending entries whose stream entry is
    // gone, as Redis's AOF rewrite does: docs/compatibility.md).
    let _ = q(c, &["XDEL", "s", "0-0", &first_ids[2]]).await;
    let _ = q(c, &["XGROUP", "CREATECONSUMER", "s", "g", "erin"]).await;
    let _ = q(c, &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"]).await;
    let _ = q(
        c,
        &[
            "XSETID",
            "empty",
            "7-7",
            "ENTRIESADDED",
            "3",
            "MAXDELETEDID",
            "5-0",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_and_a_restart_get_the_same_streams() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    replicaof(&mut rc, port_of(&m)).await;
    stream_workload(&mut mc).await;
    let want = stream_state(&mut mc).await;
    assert!(want.iter().any(|l| l.contains("alice")), "{want:?}");
    wait_for(Duration::from_secs(20), "replica in sync", || {
        let (mut mc, mut rc) = (mc.clone(), rc.clone());
        async move {
            let mo = info_field(&mut mc, "replication", "master_repl_offset").await;
            let ro = info_field(&mut rc, "replication", "master_repl_offset").await;
            let up = info_field(&mut rc, "replication", "master_link_status").await;
            up.as_deref() == Some("up") && mo == ro
        }
    })
    .await;
    assert_same_state(&want, &stream_state(&mut rc).await, "the replica's streams");
    let digest = |c: MultiplexedConnection| async move {
        let mut c = c;
        q_str(&mut c, &["DEBUG", "DIGEST"]).await
    };
    assert_eq!(digest(mc.clone()).await, digest(rc.clone()).await);
    // A replica attached now gets the streams by a full sync (the snapshot serialisation).
    let late = start_engine(&[]).await;
    let mut lc = redis_conn(&late).await;
    replicaof(&mut lc, port_of(&m)).await;
    wait_for(Duration::from_secs(20), "late replica in sync", || {
        let (mut mc, mut lc) = (mc.clone(), lc.clone());
        async move {
            let mo = info_field(&mut mc, "replication", "master_repl_offset").await;
            let lo = info_field(&mut lc, "replication", "master_repl_offset").await;
            let up = info_field(&mut lc, "replication", "master_link_status").await;
            up.as_deref() == Some("up") && mo == lo
        }
    })
    .await;
    assert_same_state(
        &want,
        &stream_state(&mut lc).await,
        "a fully synced replica",
    );
    assert_eq!(digest(mc.clone()).await, digest(lc.clone()).await);
    late.stop().await;
    m.stop().await;
    r.stop().await;

    // Recovery: the log replayed (DEBUG LOADAOF), then a restart from snapshot + log.
    let dir = temp_dir("streams-restart");
    let settings = [
        ("persistence", "on"),
        ("dir", dir.to_str().unwrap()),
        ("stream-node-max-entries", "7"),
    ];
    let h = start_engine(&settings).await;
    let mut c = redis_conn(&h).await;
    stream_workload(&mut c).await;
    let want = stream_state(&mut c).await;
    let before = q_str(&mut c, &["DEBUG", "DIGEST"]).await;
    // Replayed with other node sizes, approximate trims must still come out the same.
    let _ = q(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "2"]).await;
    assert_eq!(q_str(&mut c, &["DEBUG", "LOADAOF"]).await, "OK");
    assert_same_state(&want, &stream_state(&mut c).await, "after DEBUG LOADAOF");
    assert_eq!(q_str(&mut c, &["DEBUG", "DIGEST"]).await, before);
    let _ = q_str(&mut c, &["BGREWRITEAOF"]).await;
    wait_for(Duration::from_secs(20), "compaction", || {
        let engine = h.engine.clone();
        async move {
            let st = engine.state.lock();
            st.persist.snapshots_done >= 1 && !st.persist.snapshot_in_progress
        }
    })
    .await;
    h.stop().await;
    let h = start_engine(&settings).await;
    let mut c = redis_conn(&h).await;
    assert_same_state(&want, &stream_state(&mut c).await, "after a restart");
    assert_eq!(q_str(&mut c, &["DEBUG", "DIGEST"]).await, before);
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A redis-server child on a free loopback port, killed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_redis() -> RedisServer {
    let port = free_port();
    let dir = temp_dir(&format!("streams-redis-{port}"));
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (hack/install-test-deps.sh)");
    let server = RedisServer {
        child,
        port,
        _dir: dir,
    };
    wait_for(
        Duration::from_secs(20),
        "redis-server answers",
        || async move {
            match redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
                Ok(cl) => cl.get_multiplexed_async_connection().await.is_ok(),
                Err(_) => false,
            }
        },
    )
    .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_and_restore_move_streams_between_the_engine_and_redis_server() {
    let redis = start_redis().await;
    let mut rs = support::redis_conn_to(&format!("redis://127.0.0.1:{}/", redis.port))
        .await
        .unwrap();
    let h = start_engine(&[]).await;
    let mut e = redis_conn(&h).await;
    for c in [&mut e, &mut rs] {
        let _ = q(c, &["CONFIG", "SET", "stream-node-max-entries", "4"]).await;
        for i in 0..30 {
            let id = format!("{}-{}", 100 + i / 3, i % 3);
            let v = (i * 7).to_string();
            let fields: Vec<&str> = if i % 4 == 0 {
                vec!["other", &v]
            } else {
                vec!["n", &v, "s", "a string value"]
            };
            let mut args = vec!["XADD", "src", &id];
            args.extend(fields);
            let _ = q(c, &args).await;
        }
        let _ = q(c, &["XDEL", "src", "101-0", "103-1"]).await;
        let _ = q(c, &["XGROUP", "CREATE", "src", "g", "0"]).await;
        let _ = q(
            c,
            &["XGROUP", "CREATE", "src", "h", "105-0", "ENTRIESREAD", "-1"],
        )
        .await;
        let _ = q(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "6",
                "STREAMS",
                "src",
                ">",
            ],
        )
        .await;
        let _ = q(
            c,
            &[
                "XCLAIM",
                "src",
                "g",
                "bob",
                "0",
                "102-0",
                "TIME",
                "1700000000000",
            ],
        )
        .await;
        let _ = q(c, &["XGROUP", "CREATECONSUMER", "src", "h", "idle"]).await;
        let _ = q(c, &["XGROUP", "CREATE", "blank", "g", "$", "MKSTREAM"]).await;
    }
    let want_engine = stream_state(&mut e).await;
    let want_redis = stream_state(&mut rs).await;
    // The same commands give the same streams on both servers (radix-tree figures aside, the
    // XINFO STREAM line included: the node layout is kept like Redis's).
    assert_eq!(want_engine, want_redis);

    // Engine → redis-server.
    for key in ["src", "blank"] {
        let payload: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut e)
            .await
            .unwrap();
        let copy = format!("{key}-from-engine");
        let ok: String = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&payload)
            .query_async(&mut rs)
            .await
            .unwrap();
        assert_eq!(ok, "OK");
    }
    // redis-server → engine.
    for key in ["src", "blank"] {
        let payload: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut rs)
            .await
            .unwrap();
        let copy = format!("{key}-from-engine");
        let ok: String = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&payload)
            .query_async(&mut e)
            .await
            .unwrap();
        assert_eq!(ok, "OK");
    }
    let on_redis = stream_state(&mut rs).await;
    let on_engine = stream_state(&mut e).await;
    let copies = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| l.contains("-from-engine"))
            .map(|l| l.replace("-from-engine", ""))
            .collect()
    };
    assert_eq!(
        copies(&on_redis),
        want_engine,
        "redis-server's copy of the engine's DUMP"
    );
    assert_eq!(
        copies(&on_engine),
        want_redis,
        "the engine's copy of redis-server's DUMP"
    );
    // Both keep the same nodes (stream-node-max-entries 4, entries deleted inside nodes).
    for (conn, key) in [(&e, "src"), (&rs, "src"), (&e, "src-from-engine")] {
        let info = q(&mut conn.clone(), &["XINFO", "STREAM", key]).await;
        assert!(
            format!("{info:?}").contains("\"radix-tree-keys\"'), int(8)"),
            "{key}: {info:?}"
        );
    }
    // Delivery and seen times travel too.
    let full_e =
        without_radix_nodes(q(&mut e, &["XINFO", "STREAM", "src-from-engine", "FULL"]).await);
    let full_r = without_radix_nodes(q(&mut rs, &["XINFO", "STREAM", "src", "FULL"]).await);
    assert!(
        format!("{full_e:?}").contains("1700000000000"),
        "{full_e:?}"
    );
    assert_eq!(format!("{full_e:?}"), format!("{full_r:?}"));
    h.stop().await;
}
