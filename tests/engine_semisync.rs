//! Semi-sync, fencing and the admin commands over TCP: a master killed under semi-sync load
//! loses no acknowledged write; with `semi-sync-degrade operator` writes wait for the replica or
//! the operator's authorisation; `auto` degrades and recovers; a lapsed write lease refuses
//! writes and disconnects clients; PROMOTE/DEMOTE/STATE and terms.

mod repl_support;
mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use repl_support::{
    info_field, port_of, replicaof, replicaof_no_one, start_pair, start_process_pair,
    stop_and_remove_dirs, EngineProcess, Proxy,
};
use support::{redis_conn_to, start_engine, temp_dir, wait_for};

const ADMIN: [(&str, &str); 2] = [("admin-user", "op"), ("admin-password", "secret")];

async fn field(c: &mut MultiplexedConnection, f: &str) -> String {
    info_field(c, "replication", f).await.unwrap_or_default()
}

/// A connection as the admin user of `ADMIN`.
async fn admin_conn(port: u16) -> MultiplexedConnection {
    redis_conn_to(&format!("redis://op:secret@127.0.0.1:{port}/"))
        .await
        .unwrap()
}

/// REDISPAIR PROMOTE `term`.
async fn promote(admin: &mut MultiplexedConnection, term: u64) -> redis::RedisResult<()> {
    redis::cmd("REDISPAIR")
        .arg("PROMOTE")
        .arg(term)
        .query_async(admin)
        .await
}

/// REDISPAIR DEMOTE 127.0.0.1 `master_port` `term`.
async fn demote(admin: &mut MultiplexedConnection, master_port: u16, term: u64) {
    let _: () = redis::cmd("REDISPAIR")
        .arg("DEMOTE")
        .arg("127.0.0.1")
        .arg(master_port)
        .arg(term)
        .query_async(admin)
        .await
        .unwrap();
}

async fn wait_link(r: &mut MultiplexedConnection, status: &str) {
    wait_for(Duration::from_secs(20), &format!("link {status}"), || {
        let mut r = r.clone();
        let status = status.to_string();
        async move { field(&mut r, "master_link_status").await == status }
    })
    .await;
}

/// Counting writers on `mp`: writer `w` INCRs `counter:w` until its connection fails and
/// records the last value acknowledged to it.
async fn start_incr_writers(
    mp: &EngineProcess,
    n: usize,
) -> (
    std::sync::Arc<parking_lot::Mutex<Vec<i64>>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let acked = std::sync::Arc::new(parking_lot::Mutex::new(vec![0i64; n]));
    let mut writers = Vec::new();
    for w in 0..n {
        let mut c = mp.conn().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let key = format!("counter:{w}");
            while let Ok(n) = redis::cmd("INCR")
                .arg(&key)
                .query_async::<i64>(&mut c)
                .await
            {
                acked.lock()[w] = n;
            }
        }));
    }
    (acked, writers)
}

/// Writers INCR counters on a semi-sync master; it is killed with SIGKILL; the replica holds at
/// least every value a writer saw acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_master_under_semi_sync_replica_holds_every_acknowledged_write() {
    let semi = [
        ("replication-mode", "semi-sync"),
        ("semi-sync-degrade", "operator"),
    ];
    let (mut mp, rp, _, mut rc) = start_process_pair("ss", &semi, &[]).await;
    replicaof(&mut rc, mp.port).await;
    wait_link(&mut rc, "up").await;
    let (acked, writers) = start_incr_writers(&mp, 4).await;
    wait_for(Duration::from_secs(20), "writes acknowledged", || {
        let acked = acked.clone();
        async move { acked.lock().iter().all(|n| *n > 50) }
    })
    .await;
    mp.kill9();
    for w in writers {
        let _ = w.await;
    }
    wait_link(&mut rc, "down").await;
    let acked = acked.lock().clone();
    assert!(
        acked.iter().all(|n| *n > 10),
        "writers made progress: {acked:?}"
    );
    for (w, n) in acked.iter().enumerate() {
        let got: i64 = rc.get(format!("counter:{w}")).await.unwrap();
        assert!(
            got >= *n,
            "writer {w} was acknowledged {n} but the replica has {got}"
        );
    }
    stop_and_remove_dirs([rp, mp]);
}

/// A master killed with SIGKILL under semi-sync load and restarted from its own directory
/// (what the kubelet does within the operator's detection window) comes back with everything
/// its replica acknowledged: the master sends only bytes it has already written to its log, so
/// the replica's position is in the restarted master's history, it continues by partial resync
/// and nothing acknowledged is missing on the master. Were the replica ahead, it could not
/// follow, and a full resync from the master would discard acknowledged writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restarted_after_kill9_holds_everything_its_replica_acknowledged() {
    let semi = [
        ("replication-mode", "semi-sync"),
        ("semi-sync-degrade", "operator"),
        // A slow disk: records wait 20 ms in the writer's queue, so a master that streamed
        // queued records would have the replica acknowledge writes it then loses.
        ("log-write-delay-us", "20000"),
    ];
    let (mut mp, rp, _, mut rc) = start_process_pair("rs", &semi, &[]).await;
    replicaof(&mut rc, mp.port).await;
    wait_link(&mut rc, "up").await;
    let (acked, writers) = start_incr_writers(&mp, 4).await;
    wait_for(Duration::from_secs(20), "writes acknowledged", || {
        let acked = acked.clone();
        async move { acked.lock().iter().all(|n| *n > 50) }
    })
    .await;
    mp.kill9();
    for w in writers {
        let _ = w.await;
    }
    wait_link(&mut rc, "down").await;
    let replica_offset: u64 = field(&mut rc, "master_repl_offset").await.parse().unwrap();
    let acked = acked.lock().clone();

    let mp = EngineProcess::start(mp.port, &mp.dir, &semi).await;
    let mut mc = mp.conn().await;
    let master_offset: u64 = field(&mut mc, "master_repl_offset").await.parse().unwrap();
    assert!(
        master_offset >= replica_offset,
        "the restarted master's history ends at {master_offset}, its replica had {replica_offset}"
    );
    for (w, n) in acked.iter().enumerate() {
        let got: i64 = mc.get(format!("counter:{w}")).await.unwrap();
        assert!(
            got >= *n,
            "writer {w} was acknowledged {n} but the restarted master has {got}"
        );
    }
    // The replica, retrying the same address, continues by partial resync.
    wait_link(&mut rc, "up").await;
    let stats = |f: &'static str| {
        let mut mc = mc.clone();
        async move { info_field(&mut mc, "stats", f).await.unwrap_or_default() }
    };
    assert_eq!(stats("sync_full").await, "0", "no full resync");
    assert_eq!(stats("sync_partial_ok").await, "1");
    stop_and_remove_dirs([rp, mp]);
}

/// The mirror case: a replica killed with SIGKILL under semi-sync load and restarted from its
/// own directory holds every write the master acknowledged (which needed this replica's
/// acknowledgement). The replica acknowledges only what its log writer has written: on a slow
/// disk (records wait 20 ms in the writer's queue) a replica that acknowledged what it had
/// only queued lost acknowledged writes when killed (a promoted replica killed at once: the
/// torture's back-to-back round, 100-round run of session 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_restarted_after_kill9_holds_everything_it_acknowledged() {
    let semi = [
        ("replication-mode", "semi-sync"),
        ("semi-sync-degrade", "operator"),
    ];
    let slow = [("log-write-delay-us", "20000")];
    let (mut mp, mut rp, _, mut rc) = start_process_pair("rk", &semi, &slow).await;
    replicaof(&mut rc, mp.port).await;
    wait_link(&mut rc, "up").await;
    let (acked, writers) = start_incr_writers(&mp, 4).await;
    wait_for(Duration::from_secs(20), "writes acknowledged", || {
        let acked = acked.clone();
        async move { acked.lock().iter().all(|n| *n > 50) }
    })
    .await;
    rp.kill9();
    // Without its replica the master acknowledges nothing more (degrading is the operator's
    // call): what the writers were told is final once the master is gone too.
    mp.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().clone();
    let rp = EngineProcess::start(rp.port, &rp.dir, &slow).await;
    let mut rc = rp.conn().await;
    for (w, n) in acked.iter().enumerate() {
        let got: i64 = rc.get(format!("counter:{w}")).await.unwrap_or(0);
        assert!(
            got >= *n,
            "writer {w} was acknowledged {n} but the restarted replica has {got}"
        );
    }
    stop_and_remove_dirs([rp, mp]);
}

/// With `operator`, a master cut off from its replica acknowledges nothing until the operator
/// authorises degrading in the current term; the replica catching up restores semi-sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_mode_writes_wait_until_degrade_is_authorised() {
    let (m, r, mut mc, mut rc) = start_pair(
        &[
            ADMIN[0],
            ADMIN[1],
            ("replication-mode", "semi-sync"),
            ("semi-sync-degrade", "operator"),
            ("semi-sync-timeout", "100"),
        ],
        &[],
    )
    .await;
    let proxy = Proxy::start(port_of(&m)).await;
    replicaof(&mut rc, proxy.port).await;
    wait_link(&mut rc, "up").await;
    let _: () = mc.set("before", 1).await.unwrap();
    proxy.cut();
    wait_link(&mut rc, "down").await;
    // A raw client: no client-side timeout, so we see exactly when the reply comes.
    let mut wc = support::RawClient::connect(&m).await;
    wc.cmd(&["SET", "during", "1"]).await;
    async fn no_reply_within(c: &mut support::RawClient, ms: u64) {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_millis(ms), c.stream.read(&mut b)).await;
        assert!(
            r.is_err(),
            "a write was acknowledged without the replica: {r:?}"
        );
    }
    no_reply_within(&mut wc, 500).await;
    assert_eq!(field(&mut mc, "semi_sync_degraded").await, "0");
    let mut admin = admin_conn(port_of(&m)).await;
    let e: redis::RedisResult<()> = redis::cmd("REDISPAIR")
        .arg("AUTHORIZE-DEGRADE")
        .arg(7)
        .query_async(&mut admin)
        .await;
    assert!(e.is_err(), "authorisation for another term is refused");
    no_reply_within(&mut wc, 200).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("AUTHORIZE-DEGRADE")
        .arg(0)
        .query_async(&mut admin)
        .await
        .unwrap();
    wc.expect(b"+OK\r\n").await;
    assert_eq!(field(&mut mc, "semi_sync_degraded").await, "1");
    let _: () = mc.set("degraded-write", 1).await.unwrap();
    proxy.restore();
    wait_for(Duration::from_secs(20), "back to semi-sync", || {
        let mut mc = mc.clone();
        async move { field(&mut mc, "semi_sync_degraded").await == "0" }
    })
    .await;
    let v: Option<i64> = rc.get("degraded-write").await.unwrap();
    assert_eq!(v, Some(1));
    // A non-admin client may not run the admin commands.
    let e: redis::RedisResult<()> = redis::cmd("REDISPAIR")
        .arg("STATE")
        .query_async(&mut mc)
        .await;
    let e = format!("{:?}", e.unwrap_err());
    assert!(
        e.contains("NOPERM") || e.contains("NoPerm") || e.contains("permission"),
        "{e}"
    );
    m.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_degrades_after_the_timeout_and_recovers() {
    let (m, r, mut mc, mut rc) = start_pair(
        &[
            ("replication-mode", "semi-sync"),
            ("semi-sync-degrade", "auto"),
            ("semi-sync-timeout", "300"),
        ],
        &[],
    )
    .await;
    let proxy = Proxy::start(port_of(&m)).await;
    replicaof(&mut rc, proxy.port).await;
    wait_link(&mut rc, "up").await;
    let started = std::time::Instant::now();
    let _: () = mc.set("in-sync", 1).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    proxy.cut();
    wait_link(&mut rc, "down").await;
    let started = std::time::Instant::now();
    let _: () = mc.set("waits", 1).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(field(&mut mc, "semi_sync_degraded").await, "1");
    let started = std::time::Instant::now();
    let _: () = mc.set("degraded", 1).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(250));
    proxy.restore();
    wait_for(Duration::from_secs(20), "back to semi-sync", || {
        let mut mc = mc.clone();
        async move { field(&mut mc, "semi_sync_degraded").await == "0" }
    })
    .await;
    let _: () = mc.set("after", 1).await.unwrap();
    let v: Option<i64> = rc.get("after").await.unwrap();
    assert_eq!(
        v,
        Some(1),
        "semi-sync: acknowledged means the replica has it"
    );
    m.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_write_lease_refuses_writes_and_reads_and_disconnects_clients() {
    let m = start_engine(&[ADMIN[0], ADMIN[1], ("write-lease-ms", "400")]).await;
    let mut mc = support::redis_conn(&m).await;
    let e: redis::RedisResult<()> = mc.set("k", 1).await;
    assert!(
        format!("{:?}", e.unwrap_err()).contains("lease"),
        "no lease yet"
    );
    let mut admin = admin_conn(port_of(&m)).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("LEASE")
        .arg(400)
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut raw = support::RawClient::connect(&m).await;
    raw.cmd(&["SET", "k", "1"]).await;
    raw.expect(b"+OK\r\n").await;
    // Without renewal the client is disconnected and writes are refused within the lease.
    raw.expect_closed().await;
    let mut c2 = support::redis_conn(&m).await;
    let e: redis::RedisResult<()> = c2.set("k", 2).await;
    let e = format!("{:?}", e.unwrap_err());
    assert!(e.contains("READONLY") || e.contains("ReadOnly"), "{e}");
    // Reads are refused too: this master may have been replaced, and the value it holds may be
    // older than writes a promoted replica acknowledged since.
    let e: redis::RedisResult<i64> = c2.get("k").await;
    let e = format!("{:?}", e.unwrap_err());
    assert!(e.contains("MasterDown"), "a stale read was served: {e}");
    let e: redis::RedisResult<Vec<Option<i64>>> = redis::cmd("MGET")
        .arg("k")
        .arg("other")
        .query_async(&mut c2)
        .await;
    assert!(format!("{:?}", e.unwrap_err()).contains("MasterDown"));
    let pong: String = redis::cmd("PING").query_async(&mut c2).await.unwrap();
    assert_eq!(pong, "PONG", "connection commands still work");
    // The operator's admin user still sees the data (it inspects, e.g. DEBUG DIGEST).
    let v: i64 = redis::cmd("GET")
        .arg("k")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(v, 1);

    // A replica's acknowledgements of heartbeats keep the lease fresh.
    let r = start_engine(&[("write-lease-ms", "400")]).await;
    let mut rc = support::redis_conn(&r).await;
    replicaof(&mut rc, port_of(&m)).await;
    wait_link(&mut rc, "up").await;
    wait_for(
        Duration::from_secs(5),
        "lease renewed by the replica",
        || {
            let mut c = c2.clone();
            async move { c.set::<_, _, ()>("k", 3).await.is_ok() }
        },
    )
    .await;
    // Two lease periods pass with no admin renewal: the master still takes writes only
    // because the replica's acknowledgements renew its lease (the time passing is what is
    // tested here, not a wait for an event).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut c3 = support::redis_conn(&m).await;
    let _: () = c3.set("k", 4).await.unwrap();
    let v: i64 = c3.get("k").await.unwrap();
    assert_eq!(v, 4, "reads are served while the lease is fresh");
    // A replica configured with a lease serves reads whatever its lease (it never had one):
    // the lease fences masters only.
    let v: i64 = rc.get("k").await.unwrap();
    assert!(v >= 3);
    let st: redis::Value = redis::cmd("REDISPAIR")
        .arg("STATE")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(format!("{st:?}").contains("lease_remaining_ms"));
    m.stop().await;
    r.stop().await;
}

/// PROMOTE and DEMOTE with terms: the promoted replica takes writes, the old master follows it
/// by partial resync, and a node never follows a master of a lower term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_demote_and_terms() {
    let mdir = temp_dir("pd-a");
    let rdir = temp_dir("pd-b");
    let (md, rd) = (mdir.to_str().unwrap(), rdir.to_str().unwrap());
    let a = start_engine(&[ADMIN[0], ADMIN[1], ("persistence", "on"), ("dir", md)]).await;
    let b = start_engine(&[ADMIN[0], ADMIN[1], ("persistence", "on"), ("dir", rd)]).await;
    let mut aa = admin_conn(port_of(&a)).await;
    let mut ba = admin_conn(port_of(&b)).await;
    promote(&mut aa, 1).await.unwrap();
    demote(&mut ba, port_of(&a), 1).await;
    let mut ac = support::redis_conn(&a).await;
    let mut bc = support::redis_conn(&b).await;
    for i in 0..100 {
        let _: () = ac.set(format!("k{i}"), i).await.unwrap();
    }
    wait_link(&mut bc, "up").await;
    // Switchover: promote B in term 2, demote A under it.
    wait_for(Duration::from_secs(10), "b caught up", || {
        let (mut ac, mut bc) = (ac.clone(), bc.clone());
        async move {
            field(&mut ac, "master_repl_offset").await == field(&mut bc, "master_repl_offset").await
        }
    })
    .await;
    promote(&mut ba, 2).await.unwrap();
    // Repeating it is harmless; an older term is refused.
    promote(&mut ba, 2).await.unwrap();
    assert!(promote(&mut ba, 1).await.is_err());
    demote(&mut aa, port_of(&b), 2).await;
    let mut bc = support::redis_conn(&b).await;
    let _: () = bc.set("on-b", 1).await.unwrap();
    let mut ac = support::redis_conn(&a).await;
    wait_link(&mut ac, "up").await;
    wait_for(Duration::from_secs(10), "a follows b", || {
        let mut ac = ac.clone();
        async move { ac.get::<_, Option<i64>>("on-b").await.ok().flatten() == Some(1) }
    })
    .await;
    // The operator repeats DEMOTE until it sees the replica follow: a repeat keeps the
    // replica's own clients connected (only the demotion itself cuts them).
    demote(&mut aa, port_of(&b), 2).await;
    let v: Option<i64> = ac.get("on-b").await.unwrap();
    assert_eq!(v, Some(1), "a repeated DEMOTE cut the replica's client");
    assert_eq!(
        field(&mut bc, "sync_full").await,
        "0",
        "the old master rejoined by partial resync"
    );
    assert_eq!(field(&mut ac, "term").await, "2");
    let st: Vec<redis::Value> = redis::cmd("REDISPAIR")
        .arg("STATE")
        .query_async(&mut aa)
        .await
        .unwrap();
    let text = format!("{st:?}");
    assert!(
        text.contains("replica") && text.contains("link_status"),
        "{text}"
    );

    // A node of a higher term refuses to follow a master of a lower term.
    let c = start_engine(&[ADMIN[0], ADMIN[1]]).await;
    let mut ca = admin_conn(port_of(&c)).await;
    demote(&mut ca, port_of(&a), 5).await;
    let cc = support::redis_conn(&c).await;
    wait_for(Duration::from_secs(10), "term refusal", || {
        let mut cc = cc.clone();
        async move {
            field(&mut cc, "link_down_reason")
                .await
                .contains("lower than ours")
        }
    })
    .await;
    a.stop().await;
    b.stop().await;
    c.stop().await;
    let _ = std::fs::remove_dir_all(&mdir);
    let _ = std::fs::remove_dir_all(&rdir);
}

/// A master cut off from its replica holds a semi-sync write; the operator promotes the replica
/// and demotes the old master: the waiting client is disconnected, never acknowledged, and the
/// write it sent is discarded as a divergent tail when the old master rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demotion_disconnects_waiting_clients_without_acknowledging() {
    let mdir = temp_dir("dm-a");
    let rdir = temp_dir("dm-b");
    let (md, rd) = (mdir.to_str().unwrap(), rdir.to_str().unwrap());
    let (m, r, mut mc, mut rc) = start_pair(
        &[
            ADMIN[0],
            ADMIN[1],
            ("persistence", "on"),
            ("dir", md),
            ("replication-mode", "semi-sync"),
            ("semi-sync-degrade", "operator"),
        ],
        &[ADMIN[0], ADMIN[1], ("persistence", "on"), ("dir", rd)],
    )
    .await;
    let proxy = Proxy::start(port_of(&m)).await;
    replicaof(&mut rc, proxy.port).await;
    wait_link(&mut rc, "up").await;
    let _: () = mc.set("acked", 1).await.unwrap();
    proxy.cut();
    wait_link(&mut rc, "down").await;
    let mut ma = admin_conn(port_of(&m)).await;
    let offset = |c: &MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let v = field(&mut c, "master_repl_offset").await;
            v.parse::<u64>().unwrap_or(0)
        }
    };
    let before = offset(&ma).await;
    let mut waiting = support::RawClient::connect(&m).await;
    waiting.cmd(&["SET", "never-acked", "1"]).await;
    // The SET is in the master's log (its offset moved) but can never be acknowledged: that
    // is the divergent tail the demotion must discard.
    wait_for(
        Duration::from_secs(10),
        "the SET in the master's log",
        || {
            let ma = ma.clone();
            async move { offset(&ma).await > before }
        },
    )
    .await;
    let mut ra = admin_conn(port_of(&r)).await;
    promote(&mut ra, 1).await.unwrap();
    demote(&mut ma, port_of(&r), 1).await;
    waiting.expect_closed().await;
    let mut mc = support::redis_conn(&m).await;
    wait_link(&mut mc, "up").await;
    assert_eq!(field(&mut mc, "discarded_tail_commands").await, "1");
    let v: Option<i64> = mc.get("never-acked").await.unwrap();
    assert_eq!(v, None);
    let v: Option<i64> = mc.get("acked").await.unwrap();
    assert_eq!(v, Some(1));
    m.stop().await;
    r.stop().await;
    let _ = std::fs::remove_dir_all(&mdir);
    let _ = std::fs::remove_dir_all(&rdir);
}

/// The STATE field `name` (the admin command's reply is a flat list of names and values).
async fn state_field(admin: &mut MultiplexedConnection, name: &str) -> String {
    let v: Vec<redis::Value> = redis::cmd("REDISPAIR")
        .arg("STATE")
        .query_async(admin)
        .await
        .unwrap();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    v.chunks(2)
        .find(|kv| text(&kv[0]) == name)
        .map(|kv| text(&kv[1]))
        .unwrap_or_default()
}

/// An authorisation that arrives while the replica is connected and in sync (an operator pass
/// acting on an older observation) is not kept: a latent one would let the master degrade by
/// itself at a later failover, when the promoted replica stops acknowledging, and acknowledge
/// writes the new master never gets. Once the replica really is gone, an authorisation counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degrade_authorised_while_the_replica_is_in_sync_is_not_kept() {
    let (m, r, mut mc, mut rc) = start_pair(
        &[
            ADMIN[0],
            ADMIN[1],
            ("replication-mode", "semi-sync"),
            ("semi-sync-degrade", "operator"),
        ],
        &[],
    )
    .await;
    replicaof(&mut rc, port_of(&m)).await;
    wait_link(&mut rc, "up").await;
    let _: () = mc.set("acked", 1).await.unwrap();
    let mut admin = admin_conn(port_of(&m)).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("AUTHORIZE-DEGRADE")
        .arg(0)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        state_field(&mut admin, "degrade_authorized_term").await,
        "-1",
        "nothing to authorise while the replica is in sync"
    );
    // The replica goes away (promoted: it drops its link): now the authorisation is kept and
    // used at the next write.
    replicaof_no_one(&mut rc).await;
    wait_for(Duration::from_secs(20), "the replica disconnected", || {
        let mut mc = mc.clone();
        async move { field(&mut mc, "connected_slaves").await == "0" }
    })
    .await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("AUTHORIZE-DEGRADE")
        .arg(0)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        state_field(&mut admin, "degrade_authorized_term").await,
        "0"
    );
    let _: () = mc.set("degraded-write", 1).await.unwrap();
    assert_eq!(field(&mut mc, "semi_sync_degraded").await, "1");
    m.stop().await;
    r.stop().await;
}
