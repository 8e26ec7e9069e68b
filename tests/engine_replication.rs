//! Replication over TCP between real engines on loopback: full and partial sync, cut links
//! (through a proxy the test controls), replica restarts, failover with the old master
//! rejoining (divergent tail discarded, also after the old master crashed), fencing (a master restarted empty is refused),
//! read-only replicas, ROLE, INFO, WAIT.

mod repl_support;
mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redispair::engine::server::ServerHandle;
use repl_support::{
    digest, dump_dataset, info_field, port_of, replicaof, replicaof_no_one, start_pair,
    start_process_pair, stop_and_remove_dirs, EngineProcess, Proxy,
};
use support::{redis_conn_to, start_engine, temp_dir, wait_for};

async fn field(c: &mut MultiplexedConnection, f: &str) -> String {
    info_field(c, "replication", f).await.unwrap_or_default()
}

/// Both datasets are the same: DEBUG DIGEST and a full comparison of every key.
async fn assert_same(m: &mut MultiplexedConnection, r: &mut MultiplexedConnection) {
    assert_eq!(dump_dataset(m).await, dump_dataset(r).await);
    assert_eq!(digest(m).await, digest(r).await);
}

/// Wait until the replica's link is up and its offset equals the master's.
async fn wait_in_sync(m: &mut MultiplexedConnection, r: &mut MultiplexedConnection) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mo = field(m, "master_repl_offset").await;
        let ro = field(r, "master_repl_offset").await;
        let up = field(r, "master_link_status").await;
        if up == "up" && mo == ro && !mo.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica not in sync: master {mo}, replica {ro}, link {up} ({})",
            field(r, "link_down_reason").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `write_mix` (`prefix`, `n`) on the master, then attach the replica to `master_port` (the
/// master's, or a proxy's in front of it) and wait until it is in sync.
async fn write_mix_then_attach(
    mc: &mut MultiplexedConnection,
    rc: &mut MultiplexedConnection,
    master_port: u16,
    prefix: &str,
    n: usize,
) {
    write_mix(mc, prefix, n).await;
    replicaof(rc, master_port).await;
    wait_in_sync(mc, rc).await;
}

/// Cut the replica's link at the proxy and wait until the replica reports it down.
async fn cut_and_wait_link_down(proxy: &Proxy, rc: &MultiplexedConnection) {
    proxy.cut();
    wait_for(Duration::from_secs(10), "link down", || {
        let mut rc = rc.clone();
        async move { field(&mut rc, "master_link_status").await == "down" }
    })
    .await;
}

/// Wait (`what`, up to `timeout`) until INFO persistence on `c` says `field:value`.
async fn wait_persistence_field(
    c: &MultiplexedConnection,
    field: &str,
    value: &str,
    timeout: Duration,
    what: &str,
) {
    wait_for(timeout, what, || {
        let mut c = c.clone();
        async move { info_field(&mut c, "persistence", field).await.as_deref() == Some(value) }
    })
    .await;
}

/// Every type, expiry, a transaction and another database.
async fn write_mix(c: &mut MultiplexedConnection, prefix: &str, n: usize) {
    for i in 0..n {
        let _: () = c.set(format!("{prefix}:s{i}"), i).await.unwrap();
        if i % 5 == 0 {
            let _: () = redis::cmd("RPUSH")
                .arg(format!("{prefix}:list"))
                .arg(i)
                .arg(format!("x{i}"))
                .query_async(c)
                .await
                .unwrap();
            let _: () = redis::cmd("HSET")
                .arg(format!("{prefix}:hash"))
                .arg(format!("f{}", i % 40))
                .arg(i)
                .query_async(c)
                .await
                .unwrap();
            let _: () = redis::cmd("SADD")
                .arg(format!("{prefix}:set"))
                .arg(i % 70)
                .query_async(c)
                .await
                .unwrap();
            let _: () = redis::cmd("ZADD")
                .arg(format!("{prefix}:zset"))
                .arg(i as f64 / 3.0)
                .arg(format!("m{}", i % 50))
                .query_async(c)
                .await
                .unwrap();
            let _: () = redis::cmd("EXPIRE")
                .arg(format!("{prefix}:s{i}"))
                .arg(10_000)
                .query_async(c)
                .await
                .unwrap();
        }
        if i % 7 == 0 {
            let _: Option<String> = redis::cmd("LPOP")
                .arg(format!("{prefix}:list"))
                .query_async(c)
                .await
                .unwrap();
            let _: Vec<String> = redis::cmd("SPOP")
                .arg(format!("{prefix}:set"))
                .arg(1)
                .query_async(c)
                .await
                .unwrap();
            let _: f64 = redis::cmd("INCRBYFLOAT")
                .arg(format!("{prefix}:float"))
                .arg("0.1")
                .query_async(c)
                .await
                .unwrap();
        }
        if i % 10 == 0 {
            let _: i64 = c.incr(format!("{prefix}:counter"), 1).await.unwrap();
        }
        if i % 17 == 0 {
            let _: () = c.del(format!("{prefix}:s{}", i / 2)).await.unwrap();
        }
    }
    let _: () = redis::pipe()
        .atomic()
        .incr(format!("{prefix}:tx"), 1)
        .set(format!("{prefix}:tx2"), "x")
        .query_async(c)
        .await
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(5).query_async(c).await.unwrap();
    let _: () = c.set(format!("{prefix}:db5"), "five").await.unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query_async(c).await.unwrap();
}

/// WAIT `replicas` `timeout_ms`: how many replicas acknowledged the writes so far.
async fn wait_replicas(c: &mut MultiplexedConnection, replicas: i64, timeout_ms: u64) -> i64 {
    redis::cmd("WAIT")
        .arg(replicas)
        .arg(timeout_ms)
        .query_async(c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_follows_master_and_datasets_match() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    write_mix_then_attach(&mut mc, &mut rc, port_of(&m), "before", 300).await;
    assert_same(&mut mc, &mut rc).await;
    write_mix(&mut mc, "after", 300).await;
    wait_in_sync(&mut mc, &mut rc).await;
    assert_same(&mut mc, &mut rc).await;

    // Replicas are read-only.
    let e: redis::RedisResult<()> = rc.set("x", 1).await;
    let e = format!("{:?}", e.unwrap_err());
    assert!(e.contains("READONLY") || e.contains("ReadOnly"), "{e}");
    assert_eq!(field(&mut rc, "role").await, "slave");
    assert_eq!(field(&mut rc, "slave_read_only").await, "1");
    assert_eq!(field(&mut mc, "connected_slaves").await, "1");
    let slave0 = field(&mut mc, "slave0").await;
    assert!(slave0.contains("state=online"), "{slave0}");
    assert!(
        slave0.contains(&format!("port={}", port_of(&r))),
        "{slave0}"
    );
    assert_eq!(field(&mut mc, "sync_full").await, "1");
    assert_eq!(
        field(&mut mc, "master_replid").await,
        field(&mut rc, "master_replid").await
    );
    let role: redis::Value = redis::cmd("ROLE").query_async(&mut rc).await.unwrap();
    let s = format!("{role:?}");
    assert!(s.contains("slave") && s.contains("connected"), "{s}");
    let role: redis::Value = redis::cmd("ROLE").query_async(&mut mc).await.unwrap();
    assert!(format!("{role:?}").contains("master"));

    // WAIT counts the replica once it acknowledged the write.
    let _: () = mc.set("waited", 1).await.unwrap();
    assert_eq!(wait_replicas(&mut mc, 1, 5000).await, 1);
    assert_eq!(wait_replicas(&mut mc, 2, 100).await, 1);
    // Timed out with fewer replicas than asked: the count at the deadline, which includes the
    // acknowledgement of a write made just before.
    let _: () = mc.set("waited", 2).await.unwrap();
    assert_eq!(wait_replicas(&mut mc, 2, 300).await, 1);

    // Expiry is decided by the master: the replica applies its DEL.
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query_async(&mut mc)
        .await
        .unwrap();
    wait_in_sync(&mut mc, &mut rc).await;
    // The 50 ms TTL must run out on the clock (what is tested is what happens then), so this
    // is time passing, not a wait for an event; the GET then expires the key on the master.
    tokio::time::sleep(Duration::from_millis(80)).await;
    let _: Option<String> = mc.get("short").await.unwrap();
    wait_in_sync(&mut mc, &mut rc).await;
    assert!(r.engine.state.lock().dbs[0].peek(b"short").is_none());

    // REPLICAOF NO ONE makes it a writable master keeping the old id as replid2.
    let old_id = field(&mut mc, "master_replid").await;
    replicaof_no_one(&mut rc).await;
    assert_eq!(field(&mut rc, "role").await, "master");
    assert_eq!(field(&mut rc, "master_replid2").await, old_id);
    let _: () = rc.set("x", 1).await.unwrap();
    m.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_link_resumes_by_partial_resync() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    let proxy = Proxy::start(port_of(&m)).await;
    write_mix_then_attach(&mut mc, &mut rc, proxy.port, "a", 200).await;
    for round in 0..3 {
        proxy.cut();
        wait_for(Duration::from_secs(10), "link down", || {
            let mut rc = rc.clone();
            async move { field(&mut rc, "master_link_status").await == "down" }
        })
        .await;
        write_mix(&mut mc, &format!("cut{round}"), 100).await;
        proxy.restore();
        wait_in_sync(&mut mc, &mut rc).await;
        assert_same(&mut mc, &mut rc).await;
    }
    assert_eq!(field(&mut mc, "sync_full").await, "1");
    let ok: u64 = field(&mut mc, "sync_partial_ok").await.parse().unwrap();
    assert!(ok >= 3, "sync_partial_ok {ok}");
    m.stop().await;
    r.stop().await;
}

/// A replica that receives its master's stream late (its link was cut) applies it as the master
/// did, whatever its own clock says: a PEXPIREAT already past when it arrives does not delete
/// the key (keys expire on a replica only by the master's DEL, as in Redis, where nothing is
/// expired on the master's stream), so `INCR; PEXPIRE; INCR; PERSIST` ends with the master's
/// value and no TTL instead of a key recreated from 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_stream_with_a_past_deadline_does_not_expire_keys_on_the_replica() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    let proxy = Proxy::start(port_of(&m)).await;
    write_mix_then_attach(&mut mc, &mut rc, proxy.port, "a", 20).await;
    cut_and_wait_link_down(&proxy, &rc).await;
    let _: i64 = mc.incr("p", 1).await.unwrap();
    let _: bool = mc.pexpire("p", 300).await.unwrap();
    let _: i64 = mc.incr("p", 1).await.unwrap();
    let _: bool = mc.persist("p").await.unwrap();
    let deadline: i64 = redis::cmd("TIME")
        .query_async::<(String, String)>(&mut mc)
        .await
        .map(|(s, us)| s.parse::<i64>().unwrap() * 1000 + us.parse::<i64>().unwrap() / 1000)
        .unwrap()
        + 300;
    // This sleep is the time under test: the deadline passes before the replica gets the
    // stream.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(
        (deadline - now_ms).max(0) as u64 + 200,
    ))
    .await;
    proxy.restore();
    wait_in_sync(&mut mc, &mut rc).await;
    let v: Option<String> = rc.get("p").await.unwrap();
    assert_eq!(v.as_deref(), Some("2"));
    let ttl: i64 = rc.ttl("p").await.unwrap();
    assert_eq!(ttl, -1);
    assert_same(&mut mc, &mut rc).await;
    m.stop().await;
    r.stop().await;
}

/// The replica restarts (SIGKILL) and resumes from its persisted position by partial resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_restart_resumes_by_partial_resync() {
    let (mp, mut rp, mut mc, mut rc) = start_process_pair("rr", &[], &[]).await;
    write_mix_then_attach(&mut mc, &mut rc, mp.port, "a", 200).await;
    rp.kill9();
    write_mix(&mut mc, "b", 200).await;
    let rp = EngineProcess::start(rp.port, &rp.dir, &[]).await;
    let mut rc = rp.conn().await;
    wait_in_sync(&mut mc, &mut rc).await;
    assert_same(&mut mc, &mut rc).await;
    assert_eq!(field(&mut mc, "sync_full").await, "1");
    let ok: u64 = field(&mut mc, "sync_partial_ok").await.parse().unwrap();
    assert!(ok >= 1);
    stop_and_remove_dirs([rp, mp]);
}

/// Failover in async mode: the replica is promoted while the old master, cut off, keeps writing
/// a tail; the old master rejoins the new one, discards exactly that tail, and continues by
/// partial resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_master_rejoins_discarding_its_divergent_tail() {
    let mdir = temp_dir("fo-master");
    let rdir = temp_dir("fo-replica");
    let (md, rd) = (mdir.to_str().unwrap(), rdir.to_str().unwrap());
    let (m, r, mut mc, mut rc) = start_pair(
        &[("persistence", "on"), ("dir", md)],
        &[("persistence", "on"), ("dir", rd)],
    )
    .await;
    let proxy = Proxy::start(port_of(&m)).await;
    write_mix_then_attach(&mut mc, &mut rc, proxy.port, "a", 200).await;
    cut_and_wait_link_down(&proxy, &rc).await;
    // The tail the new master will never get: 7 commands.
    for i in 0..7 {
        let _: () = mc.set(format!("tail{i}"), i).await.unwrap();
    }
    replicaof_no_one(&mut rc).await;
    write_mix(&mut rc, "new", 50).await;
    // The old master follows the new one.
    replicaof(&mut mc, port_of(&r)).await;
    wait_in_sync(&mut rc, &mut mc).await;
    assert_same(&mut mc, &mut rc).await;
    let v: Option<String> = mc.get("tail0").await.unwrap();
    assert_eq!(v, None, "the divergent tail is gone");
    assert_eq!(field(&mut mc, "discarded_tail_commands").await, "7");
    let bytes: u64 = field(&mut mc, "discarded_tail_bytes")
        .await
        .parse()
        .unwrap();
    assert!(bytes > 7 * 20, "{bytes}");
    assert_eq!(field(&mut rc, "sync_full").await, "0");
    let ok: u64 = field(&mut rc, "sync_partial_ok").await.parse().unwrap();
    assert!(ok >= 1);
    // And it survives a restart of the old master (its log was cut too).
    m.stop().await;
    let m = start_engine(&[("persistence", "on"), ("dir", md)]).await;
    let mut mc = support::redis_conn(&m).await;
    wait_in_sync(&mut rc, &mut mc).await;
    assert_same(&mut mc, &mut rc).await;
    assert_eq!(field(&mut rc, "sync_full").await, "0");
    m.stop().await;
    r.stop().await;
    let _ = std::fs::remove_dir_all(&mdir);
    let _ = std::fs::remove_dir_all(&rdir);
}

/// Failover after a crash: the master is cut off, writes a tail its replica never gets, and is
/// killed; the replica is promoted and takes writes; the old master restarts from its own
/// directory (a fresh replication id, the old one valid up to where it crashed) and is pointed
/// at the new master. It tells the new master the id it had before (PSYNC ... PREV), so it
/// continues by partial resync after discarding exactly its tail, instead of a full sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_old_master_rejoins_by_partial_resync_discarding_its_tail() {
    let always = [("appendfsync", "always")];
    let (mut mp, rp, mut mc, mut rc) = start_process_pair("cfo", &always, &[]).await;
    let proxy = Proxy::start(mp.port).await;
    write_mix_then_attach(&mut mc, &mut rc, proxy.port, "a", 100).await;
    let old_id = field(&mut mc, "master_replid").await;
    cut_and_wait_link_down(&proxy, &rc).await;
    // The tail the new master never gets (fsynced before each reply: it survives the kill).
    for i in 0..5 {
        let _: () = mc.set(format!("tail{i}"), i).await.unwrap();
    }
    mp.kill9();
    replicaof_no_one(&mut rc).await;
    write_mix(&mut rc, "new", 30).await;

    let mp = EngineProcess::start(mp.port, &mp.dir, &always).await;
    let mut mc = mp.conn().await;
    assert_ne!(
        field(&mut mc, "master_replid").await,
        old_id,
        "crashed: a fresh id"
    );
    assert_eq!(field(&mut mc, "master_replid2").await, old_id);
    replicaof(&mut mc, rp.port).await;
    wait_in_sync(&mut rc, &mut mc).await;
    assert_same(&mut mc, &mut rc).await;
    let v: Option<String> = mc.get("tail0").await.unwrap();
    assert_eq!(v, None, "the divergent tail is gone");
    assert_eq!(field(&mut mc, "discarded_tail_commands").await, "5");
    assert_eq!(field(&mut rc, "sync_full").await, "0", "no full sync");
    let ok: u64 = field(&mut rc, "sync_partial_ok").await.parse().unwrap();
    assert!(ok >= 1);
    stop_and_remove_dirs([mp, rp]);
}

/// A master restarted on an empty directory has a history without the replica's position: the
/// replica keeps every key, stays detached and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_refuses_a_master_restarted_empty() {
    let (mut mp, rp, mut mc, mut rc) = start_process_pair("empty", &[], &[]).await;
    write_mix_then_attach(&mut mc, &mut rc, mp.port, "a", 100).await;
    let before = dump_dataset(&mut rc).await;
    mp.kill9();
    std::fs::remove_dir_all(&mp.dir).unwrap();
    std::fs::create_dir_all(&mp.dir).unwrap();
    let mp = EngineProcess::start(mp.port, &mp.dir, &[]).await;
    let mut mc = mp.conn().await;
    let _: () = mc.set("fresh", 1).await.unwrap();
    wait_for(Duration::from_secs(10), "refusal", || {
        let mut rc = rc.clone();
        async move {
            field(&mut rc, "link_down_reason")
                .await
                .contains("does not contain")
        }
    })
    .await;
    assert_eq!(field(&mut rc, "master_link_status").await, "down");
    assert_eq!(dump_dataset(&mut rc).await, before);
    stop_and_remove_dirs([mp, rp]);
}

/// A replica attaches (full sync by a fork-less snapshot) while redis-benchmark and a Rust
/// writer load the master, loses its link once mid-load, and ends with the master's dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_attached_under_load_matches_master() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    let proxy = Proxy::start(port_of(&m)).await;
    for chunk in 0..4 {
        let mut p = redis::pipe();
        for i in chunk * 2000..(chunk + 1) * 2000 {
            p.set(format!("pre:{i}"), i).ignore();
        }
        let _: () = p.query_async(&mut mc).await.unwrap();
    }
    let bench = tokio::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &port_of(&m).to_string(),
            "-t",
            "set,incr",
            "-n",
            "20000",
            "-r",
            "8000",
        ])
        .args(["-c", "4", "-P", "4", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The writer's answered commands: each step below waits for more of them, so every phase
    // (before the attach, while linked, while cut) really runs under writes.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let mut c = support::redis_conn(&m).await;
        let stop = stop.clone();
        let written = written.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("pre:{}", (n * 7919) % 8_000);
                match n % 4 {
                    0 => {
                        let _: () = c.del(&k).await.unwrap();
                    }
                    1 => {
                        let _: () = redis::pipe()
                            .atomic()
                            .set(&k, n)
                            .incr("w:tx", 1)
                            .query_async(&mut c)
                            .await
                            .unwrap();
                    }
                    _ => {
                        let _: () = c.set(&k, n).await.unwrap();
                    }
                }
                n += 1;
                written.store(n, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    support::wait_for_more(&written, 200, "writes before the attach").await;
    replicaof(&mut rc, proxy.port).await;
    wait_for(Duration::from_secs(30), "link up", || {
        let mut rc = rc.clone();
        async move { field(&mut rc, "master_link_status").await == "up" }
    })
    .await;
    support::wait_for_more(&written, 300, "writes while linked").await;
    proxy.cut();
    support::wait_for_more(&written, 300, "writes while cut").await;
    proxy.restore();
    if let Ok(mut b) = bench {
        let _ = b.wait().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    wait_in_sync(&mut mc, &mut rc).await;
    assert_same(&mut mc, &mut rc).await;
    assert_eq!(field(&mut mc, "sync_full").await, "1");
    let ok: u64 = field(&mut mc, "sync_partial_ok").await.parse().unwrap();
    assert!(ok >= 1);
    m.stop().await;
    r.stop().await;
}

/// The master restarts, cleanly (SIGTERM: same replication id) and after a crash (SIGKILL with
/// `appendfsync always`: a new id continuing the old one): the replica continues by partial
/// resync both times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restart_replica_continues_by_partial_resync() {
    let always = [("appendfsync", "always")];
    let (mut mp, rp, mut mc, mut rc) = start_process_pair("mr", &always, &[]).await;
    let (mport, mdir) = (mp.port, mp.dir.clone());
    write_mix_then_attach(&mut mc, &mut rc, mport, "a", 100).await;
    let id = field(&mut mc, "master_replid").await;
    for (round, clean) in [(0, true), (1, false)] {
        if clean {
            let pid = mp.child.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            let _ = mp.child.wait();
        } else {
            mp.kill9();
        }
        mp = EngineProcess::start(mport, &mdir, &always).await;
        let mut mc = mp.conn().await;
        if clean {
            assert_eq!(
                field(&mut mc, "master_replid").await,
                id,
                "a clean restart keeps the id"
            );
        } else {
            assert_ne!(field(&mut mc, "master_replid").await, id);
            assert_eq!(field(&mut mc, "master_replid2").await, id);
        }
        write_mix(&mut mc, &format!("r{round}"), 50).await;
        wait_in_sync(&mut mc, &mut rc).await;
        assert_same(&mut mc, &mut rc).await;
        assert_eq!(field(&mut mc, "sync_full").await, "0", "round {round}");
        assert_eq!(
            field(&mut mc, "sync_partial_ok").await,
            "1",
            "round {round}"
        );
    }
    stop_and_remove_dirs([mp, rp]);
}

/// A master with a password: the replica authenticates with masterauth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_authenticates_with_masterauth() {
    let m = start_engine(&[("requirepass", "pw")]).await;
    let r = start_engine(&[("masterauth", "pw")]).await;
    let mut mc = redis_conn_to(&format!("redis://:pw@{}/", m.addr()))
        .await
        .unwrap();
    let mut rc = support::redis_conn(&r).await;
    write_mix_then_attach(&mut mc, &mut rc, port_of(&m), "auth", 30).await;
    assert_same(&mut mc, &mut rc).await;
    m.stop().await;
    r.stop().await;
}

/// Without masterauth, a replica authenticates as the admin user the pair shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_authenticates_as_the_shared_admin_user() {
    let admin = [("admin-user", "op"), ("admin-password", "secret")];
    let m = start_engine(&[("requirepass", "pw"), admin[0], admin[1]]).await;
    let r = start_engine(&[("requirepass", "pw"), admin[0], admin[1]]).await;
    let conn = |h: &ServerHandle| {
        let url = format!("redis://:pw@{}/", h.addr());
        async move { redis_conn_to(&url).await.unwrap() }
    };
    let mut mc = conn(&m).await;
    let mut rc = conn(&r).await;
    write_mix_then_attach(&mut mc, &mut rc, port_of(&m), "auth", 30).await;
    assert_same(&mut mc, &mut rc).await;
    m.stop().await;
    r.stop().await;
}

/// A forwarder whose master→replica direction passes at most `budget` bytes until `open()`:
/// it holds a full sync in the middle of the snapshot, deterministically.
struct Valve {
    port: u16,
    budget: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Valve {
    async fn start(target: u16, budget: u64) -> Valve {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let budget = std::sync::Arc::new(tokio::sync::watch::channel(budget).0);
        let b = budget.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                let (mut ir, mut iw) = inbound.into_split();
                let (mut or, mut ow) = outbound.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut ir, &mut ow).await;
                });
                let mut rx = b.subscribe();
                tokio::spawn(async move {
                    let mut sent = 0u64;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let allowed = *rx.borrow_and_update();
                        if sent >= allowed {
                            if rx.changed().await.is_err() {
                                return;
                            }
                            continue;
                        }
                        let want = buf.len().min((allowed - sent) as usize);
                        let n = match or.read(&mut buf[..want]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if iw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n as u64;
                    }
                });
            }
        });
        Valve { port, budget }
    }
    fn open(&self) {
        self.budget.send_replace(u64::MAX);
    }
    /// Stop forwarding master→replica without closing anything: a silent master.
    fn freeze(&self) {
        self.budget.send_replace(0);
    }
}

/// While a replica loads its master's snapshot, clients get -LOADING (INFO says loading:1), so
/// a read through the read-only Service never sees half a dataset; INFO, ROLE and the admin
/// commands still answer. When the snapshot is complete, everything is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_answers_loading_until_its_full_sync_is_complete() {
    let (mp, rp, mut mc, mut rc) = start_process_pair("loading", &[], &[]).await;
    let value = "x".repeat(100);
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.set(format!("key:{i}"), &value).ignore();
    }
    let () = pipe.query_async(&mut mc).await.unwrap();
    let _: () = rc.set("stale", "replica's own data").await.unwrap();
    // ~600 KB of snapshot; let 100 KB through.
    let valve = Valve::start(mp.port, 100 * 1024).await;
    replicaof(&mut rc, valve.port).await;
    wait_persistence_field(
        &rc,
        "loading",
        "1",
        Duration::from_secs(20),
        "the replica loading",
    )
    .await;
    for cmd in [
        redis::cmd("GET").arg("key:1").clone(),
        redis::cmd("PING"),
        redis::cmd("DBSIZE"),
    ] {
        let err = cmd
            .query_async::<redis::Value>(&mut rc)
            .await
            .expect_err("a loading replica must not serve data");
        assert_eq!(err.code(), Some("LOADING"), "{err}");
    }
    assert_eq!(field(&mut rc, "role").await, "slave");
    valve.open();
    wait_in_sync(&mut mc, &mut rc).await;
    assert_eq!(
        info_field(&mut rc, "persistence", "loading")
            .await
            .as_deref(),
        Some("0")
    );
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut rc).await.unwrap();
    assert_eq!(n, 5000);
    let v: Option<String> = rc.get("stale").await.unwrap();
    assert_eq!(
        v, None,
        "the replica's own data was replaced by the master's"
    );
    stop_and_remove_dirs([mp, rp]);
}

/// A master that goes silent without closing the connection (a partition) is reported down by
/// the replica once `repl-timeout` passes without a byte; the operator waits for this report
/// before failing over a master its probes cannot reach. When bytes flow again the replica
/// reconnects and continues by partial resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_master_is_reported_down_after_repl_timeout() {
    let (mp, rp, mut mc, mut rc) =
        start_process_pair("silent", &[], &[("repl-timeout", "1")]).await;
    let valve = Valve::start(mp.port, u64::MAX).await;
    let _: () = mc.set("before", 1).await.unwrap();
    replicaof(&mut rc, valve.port).await;
    wait_in_sync(&mut mc, &mut rc).await;
    valve.freeze();
    wait_for(Duration::from_secs(20), "the link reported down", || {
        let mut rc = rc.clone();
        async move {
            field(&mut rc, "master_link_status").await == "down"
                && field(&mut rc, "link_down_reason").await.contains("timeout")
        }
    })
    .await;
    valve.open();
    let _: () = mc.set("after", 2).await.unwrap();
    wait_in_sync(&mut mc, &mut rc).await;
    let v: i64 = rc.get("after").await.unwrap();
    assert_eq!(v, 2);
    stop_and_remove_dirs([mp, rp]);
}

/// A replica that goes away in the middle of its full sync leaves nothing behind on the master:
/// the full-sync thread (which writes the snapshot to the socket itself) ends the capture when
/// the socket fails, so the next BGSAVE and the next replica's full sync run. A capture left
/// open would hold every later full sync waiting for it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_gone_mid_full_sync_leaves_the_master_able_to_sync_again() {
    use tokio::io::AsyncWriteExt;
    let (mp, rp, mut mc, mut rc) = start_process_pair("gone-mid-sync", &[], &[]).await;
    // ~20 MB of snapshot: more than the loopback socket buffers hold, so the master's thread
    // is still in the middle of it while the reader below reads nothing.
    let value = "v".repeat(10_000);
    for batch in 0..10 {
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.set(format!("key:{batch}:{i}"), &value).ignore();
        }
        let () = pipe.query_async(&mut mc).await.unwrap();
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut reader = socket
        .connect(format!("127.0.0.1:{}", mp.port).parse().unwrap())
        .await
        .unwrap();
    // ALLOW-FULL: our replicas say they accept a full sync (one that would wipe their data).
    reader
        .write_all(b"PSYNC ? -1 ALLOW-FULL\r\n")
        .await
        .unwrap();
    wait_persistence_field(
        &mc,
        "rdb_bgsave_in_progress",
        "1",
        Duration::from_secs(20),
        "the full sync to start",
    )
    .await;
    assert_eq!(field(&mut mc, "sync_full").await, "1");
    // Closing with unread data resets the connection: the master's next write fails.
    drop(reader);
    wait_persistence_field(
        &mc,
        "rdb_bgsave_in_progress",
        "0",
        Duration::from_secs(30),
        "the abandoned capture to end",
    )
    .await;
    let reply: String = redis::cmd("BGSAVE").query_async(&mut mc).await.unwrap();
    assert!(reply.contains("started"), "{reply}");
    replicaof(&mut rc, mp.port).await;
    wait_in_sync(&mut mc, &mut rc).await;
    assert_same(&mut mc, &mut rc).await;
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut rc).await.unwrap();
    assert_eq!(n, 2_000);
    stop_and_remove_dirs([mp, rp]);
}

/// SORT ... STORE reaches the replica as its effect (DEL + RPUSH), so the replica stores
/// exactly the master's list whatever its own iteration order of the source set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_store_replicates_its_result() {
    let (m, r, mut mc, mut rc) = start_pair(&[], &[]).await;
    replicaof(&mut rc, port_of(&m)).await;
    wait_in_sync(&mut mc, &mut rc).await;
    for i in 0..50 {
        let _: () = redis::cmd("SADD")
            .arg("src")
            .arg(format!("m{i}"))
            .arg(i)
            .query_async(&mut mc)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("w_m{i}"))
            .arg(100 - i)
            .query_async(&mut mc)
            .await
            .unwrap();
    }
    for args in [
        &["SORT", "src", "BY", "nosort", "STORE", "d1"][..],
        &[
            "SORT", "src", "ALPHA", "DESC", "LIMIT", "3", "20", "STORE", "d2",
        ],
        &[
            "SORT", "src", "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", "d3",
        ],
        &["SORT", "nothing", "STORE", "d3"],
    ] {
        let n: i64 = redis::cmd(args[0])
            .arg(&args[1..])
            .query_async(&mut mc)
            .await
            .unwrap();
        assert!(n >= 0);
    }
    let d1: Vec<String> = redis::cmd("LRANGE")
        .arg("d1")
        .arg(0)
        .arg(-1)
        .query_async(&mut mc)
        .await
        .unwrap();
    let mut sorted = d1.clone();
    sorted.sort();
    assert_eq!(d1, sorted, "a set stored unsorted is sorted by its bytes");
    wait_in_sync(&mut mc, &mut rc).await;
    assert_same(&mut mc, &mut rc).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg("d3")
        .query_async(&mut rc)
        .await
        .unwrap();
    assert_eq!(
        exists, 0,
        "an empty result deletes the destination on the replica too"
    );
    drop((m, r));
}
