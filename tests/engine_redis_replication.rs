//! Replication between the engine and stock redis-server (Debian's 7.0.15) in both directions,
//! over loopback: the engine follows a Redis master (full sync from an RDB payload, disk-based
//! and diskless, then the stream; partial resync after a dropped link), and a Redis replica
//! follows the engine (SYNC/PSYNC answered with an RDB payload, then the stream; partial resync
//! after a dropped link). Writes run throughout; both sides are compared key by key at the end,
//! TTLs included. Does I/O: processes, loopback sockets, temporary directories.

mod rdb_support;
mod repl_support;
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdb_support::{dataset, fill, RedisServer};
use redis::{AsyncCommands, Value};
use repl_support::{free_port, EngineProcess};
use support::{redis_conn_to, start_engine, temp_dir, wait_for, wait_for_more};

/// One field of INFO.
async fn info_field(url: &str, section: &str, name: &str) -> String {
    let mut c = redis_conn_to(url).await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or("")
        .to_string()
}

/// Writes to `url` until stopped (strings, counters, lists, TTLs, a second database),
/// counting the answered ones.
fn start_writer(url: String) -> (Arc<AtomicBool>, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let (s, n) = (stop.clone(), count.clone());
    let task = tokio::spawn(async move {
        let mut c = redis_conn_to(&url).await.unwrap();
        let mut i = 0u64;
        while !s.load(Ordering::Relaxed) {
            let k = format!("w:{}", i % 500);
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&k).arg(i).ignore();
            pipe.cmd("INCR").arg("w:counter").ignore();
            pipe.cmd("RPUSH").arg("w:list").arg(i).ignore();
            pipe.cmd("EXPIRE").arg(&k).arg(100_000 + i % 7).ignore();
            pipe.cmd("SELECT").arg(2).ignore();
            pipe.cmd("HSET").arg("w:h2").arg(i % 100).arg(i).ignore();
            pipe.cmd("SELECT").arg(0).ignore();
            let r: redis::RedisResult<()> = pipe.query_async(&mut c).await;
            r.unwrap();
            n.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    });
    (stop, count, task)
}

/// Wait until the replica at `replica_url` has applied everything the master at `master_url`
/// has written (the master no longer writes).
async fn wait_caught_up(master_url: &str, replica_url: &str) {
    // A Redis master's PINGs may move its offset on meanwhile: at least the target will do.
    let target: u64 = info_field(master_url, "replication", "master_repl_offset")
        .await
        .parse()
        .unwrap();
    wait_for(Duration::from_secs(60), "the replica to catch up", || {
        let r = replica_url.to_string();
        async move {
            info_field(&r, "replication", "master_link_status").await == "up"
                && info_field(&r, "replication", "slave_repl_offset")
                    .await
                    .parse::<u64>()
                    .is_ok_and(|o| o >= target)
        }
    })
    .await;
}

/// Whether the function library of `fill` is loaded (FCALL of a function that may write is
/// refused on a read-only replica).
async fn has_library(url: &str) -> bool {
    format!("{:?}", cmd(url, &["FUNCTION", "LIST"]).await).contains("rdblib")
}

async fn cmd(url: &str, args: &[&str]) -> Value {
    let mut c = redis_conn_to(url).await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

async fn engine_follows_a_redis_master(diskless: &str) {
    let rdir = temp_dir(&format!("follow-redis-r-{diskless}"));
    let redis = RedisServer::start(
        &rdir,
        &[
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
            "--list-max-listpack-size",
            "4",
        ],
    )
    .await;
    let murl = redis.url();
    fill(&murl).await;
    let edir = temp_dir(&format!("follow-redis-e-{diskless}"));
    let h = start_engine(&[("dir", edir.to_str().unwrap()), ("persistence", "on")]).await;
    let eurl = format!("redis://{}/", h.addr());
    let (stop, count, writer) = start_writer(murl.clone());
    wait_for_more(&count, 50, "writes before the sync").await;
    let port = redis.port.to_string();
    cmd(&eurl, &["REPLICAOF", "127.0.0.1", &port]).await;
    wait_for(
        Duration::from_secs(60),
        "the engine's link to come up",
        || {
            let eurl = eurl.clone();
            async move { info_field(&eurl, "replication", "master_link_status").await == "up" }
        },
    )
    .await;
    wait_for_more(&count, 200, "writes after the sync").await;
    // Drop the link from the master's side: the engine comes back by partial resync.
    let full_before = info_field(&murl, "stats", "sync_full").await;
    cmd(&murl, &["CLIENT", "KILL", "TYPE", "replica"]).await;
    wait_for_more(&count, 200, "writes across the dropped link").await;
    wait_for(Duration::from_secs(60), "a partial resync", || {
        let murl = murl.clone();
        async move { info_field(&murl, "stats", "sync_partial_ok").await != "0" }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    wait_caught_up(&murl, &eurl).await;
    assert_eq!(info_field(&murl, "stats", "sync_full").await, full_before);
    assert_eq!(info_field(&murl, "stats", "sync_full").await, "1");
    let expected = dataset(&murl).await;
    assert!(expected.len() > 500);
    assert_eq!(dataset(&eurl).await, expected);
    assert!(has_library(&eurl).await);
    h.stop().await;
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
    std::fs::remove_dir_all(&edir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_follows_a_redis_master_disk_based_sync() {
    engine_follows_a_redis_master("no").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_follows_a_redis_master_diskless_sync() {
    engine_follows_a_redis_master("yes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_replica_follows_the_engine() {
    let edir = temp_dir("redis-follows-e");
    let h = start_engine(&[("dir", edir.to_str().unwrap()), ("persistence", "on")]).await;
    let eurl = format!("redis://{}/", h.addr());
    fill(&eurl).await;
    let (stop, count, writer) = start_writer(eurl.clone());
    wait_for_more(&count, 50, "writes before the sync").await;
    let rdir = temp_dir("redis-follows-r");
    let port = h.addr().port().to_string();
    let redis = RedisServer::start(&rdir, &["--replicaof", "127.0.0.1", &port]).await;
    let rurl = redis.url();
    wait_for(Duration::from_secs(60), "the Redis replica's link", || {
        let rurl = rurl.clone();
        async move { info_field(&rurl, "replication", "master_link_status").await == "up" }
    })
    .await;
    wait_for_more(&count, 200, "writes after the sync").await;
    cmd(&rurl, &["CLIENT", "KILL", "TYPE", "master"]).await;
    wait_for_more(&count, 200, "writes across the dropped link").await;
    wait_for(Duration::from_secs(60), "a partial resync", || {
        let eurl = eurl.clone();
        async move { info_field(&eurl, "stats", "sync_partial_ok").await != "0" }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    wait_caught_up(&eurl, &rurl).await;
    assert_eq!(info_field(&eurl, "stats", "sync_full").await, "1");
    let expected = dataset(&eurl).await;
    assert!(expected.len() > 500);
    assert_eq!(dataset(&rurl).await, expected);
    assert!(has_library(&rurl).await);

    // SYNC (redis-cli --rdb): the RDB payload alone, a file redis-check-rdb accepts.
    let out = rdir.join("sync.rdb");
    let cli = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "--rdb"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let check = Command::new("redis-check-rdb").arg(&out).output().unwrap();
    assert!(
        check.status.success() && String::from_utf8_lossy(&check.stdout).contains("RDB looks OK"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    h.stop().await;
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
    std::fs::remove_dir_all(&edir).unwrap();
}

/// What the operator does for a migration (docs/migration.md), command for command, on
/// loopback: two engines of a pair (shared admin credentials) follow a password-protected
/// redis-server as the admin user (`CONFIG SET masterauth`, `REPLICAOF`) under a write load;
/// the cutover pauses the source's writes, reads its offset, waits until engine A has it,
/// promotes A in term 1 and grants its lease, then clears B's `masterauth` and demotes it to
/// A. Checked: the engines' offsets are the source's (comparable as the operator compares
/// them), B continues from A by partial resync (no second full sync), A holds exactly the
/// source's dataset at the pause, and B holds A's after a write on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_migrates_from_a_redis_master_and_takes_over() {
    let rdir = temp_dir("migrate-r");
    let redis = RedisServer::start(&rdir, &["--repl-diskless-sync-delay", "0"]).await;
    // The password once it answers (`start` waits for it without one).
    cmd(&redis.url(), &["CONFIG", "SET", "requirepass", "src-pw"]).await;
    let murl = format!("redis://:src-pw@127.0.0.1:{}/", redis.port);
    fill(&murl).await;
    let admin = [("admin-user", "op"), ("admin-password", "adm")];
    let a = start_engine(&admin).await;
    let b = start_engine(&admin).await;
    let admin_url =
        |h: &redispair::engine::server::ServerHandle| format!("redis://op:adm@{}/", h.addr());
    let (aurl, burl) = (admin_url(&a), admin_url(&b));
    let (stop, count, writer) = start_writer(murl.clone());
    wait_for_more(&count, 50, "writes before the sync").await;
    let port = redis.port.to_string();
    for url in [&aurl, &burl] {
        cmd(url, &["CONFIG", "SET", "masteruser", ""]).await;
        cmd(url, &["CONFIG", "SET", "masterauth", "src-pw"]).await;
        cmd(url, &["REPLICAOF", "127.0.0.1", &port]).await;
    }
    for url in [&aurl, &burl] {
        wait_for(Duration::from_secs(60), "the link to the source", || {
            let url = url.clone();
            async move { info_field(&url, "replication", "master_link_status").await == "up" }
        })
        .await;
        // Read-only while it follows: nothing can diverge from the source.
        let err = redis_conn_to(url)
            .await
            .unwrap()
            .set::<_, _, ()>("diverge", 1)
            .await
            .unwrap_err();
        assert!(err.to_string().to_uppercase().contains("READONLY"), "{err}");
    }
    wait_for_more(&count, 200, "writes while both follow").await;
    // Cutover: pause, then the offset on the same connection.
    let mut src = redis_conn_to(&murl).await.unwrap();
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(20_000)
        .arg("WRITE")
        .query_async(&mut src)
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut src)
        .await
        .unwrap();
    let paused_at: i64 = info
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("master_repl_offset:"))
        .unwrap()
        .parse()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    wait_for(Duration::from_secs(60), "A at the source's offset", || {
        let aurl = aurl.clone();
        async move {
            info_field(&aurl, "replication", "master_repl_offset")
                .await
                .parse::<i64>()
                .is_ok_and(|o| o >= paused_at)
        }
    })
    .await;
    // The writer's last write waits in the pause: it is not acknowledged, and not checked.
    writer.abort();
    let expected = dataset(&murl).await;
    cmd(&aurl, &["REDISPAIR", "PROMOTE", "1"]).await;
    cmd(&aurl, &["REDISPAIR", "LEASE", "60000"]).await;
    cmd(&burl, &["CONFIG", "SET", "masterauth", ""]).await;
    let aport = a.addr().port().to_string();
    cmd(&burl, &["REDISPAIR", "DEMOTE", "127.0.0.1", &aport, "1"]).await;
    assert_eq!(
        dataset(&aurl).await,
        expected,
        "A holds the source's dataset"
    );
    cmd(&aurl, &["SET", "after-cutover", "1"]).await;
    wait_caught_up(&aurl, &burl).await;
    assert_eq!(info_field(&aurl, "replication", "sync_full").await, "0");
    assert_eq!(
        info_field(&aurl, "replication", "sync_partial_ok").await,
        "1"
    );
    assert_eq!(dataset(&burl).await, dataset(&aurl).await);
    a.stop().await;
    b.stop().await;
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
}

/// docs/migration.md, "Out: a stock redis-server following the pair", step by step on loopback:
/// an engine process (persistence on, a password) under a writer of unique keys; a Debian
/// redis-server gets `CONFIG SET masterauth` and `REPLICAOF` the engine; once its link is up
/// and its offset is the engine's, the engine's writes are paused (`CLIENT PAUSE 60000 WRITE`),
/// the offsets are waited equal again, and `REPLICAOF NO ONE` makes redis-server a master; the
/// writer, whose write to the paused engine got no answer, moves to it. Checked: every write
/// acknowledged by the engine or by redis-server is on redis-server, and redis-server holds
/// exactly the engine's dataset at the pause plus what was written to it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_server_takes_over_from_the_engine_as_the_runbook_says() {
    const PASSWORD: &str = "out-pw";
    let edir = temp_dir("out-e");
    let engine = EngineProcess::start(free_port(), &edir, &[]).await;
    let plain = format!("redis://127.0.0.1:{}/", engine.port);
    cmd(&plain, &["CONFIG", "SET", "requirepass", PASSWORD]).await;
    let eurl = format!("redis://:{PASSWORD}@127.0.0.1:{}/", engine.port);
    fill(&eurl).await;
    let rdir = temp_dir("out-r");
    let redis = RedisServer::start(&rdir, &[]).await;
    let rurl = redis.url();

    // The writer: unique keys, one at a time. Once the engine's writes are paused, a write that
    // gets no answer within a second is not acknowledged, and the writer waits for the switch,
    // then continues against redis-server. (Before the pause a slow answer is only waited for
    // again: SET of the same key and value is idempotent.)
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<u64>::new()));
    let paused = Arc::new(AtomicBool::new(false));
    let switched = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let writer = {
        let (acked, paused, switched, stop, count) = (
            acked.clone(),
            paused.clone(),
            switched.clone(),
            stop.clone(),
            count.clone(),
        );
        let (eurl, rurl) = (eurl.clone(), rurl.clone());
        tokio::spawn(async move {
            let mut on_redis = false;
            let mut c = redis_conn_to(&eurl).await.unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut set_cmd = redis::cmd("SET");
                set_cmd.arg(format!("out:{i}")).arg(i);
                let set = set_cmd.query_async::<()>(&mut c);
                match tokio::time::timeout(Duration::from_secs(1), set).await {
                    Ok(Ok(())) => {
                        acked.lock().push(i);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => panic!("write {i} failed: {e}"),
                    Err(_) if !paused.load(Ordering::Relaxed) => continue,
                    Err(_) if !on_redis => {
                        // Paused: this write is not acknowledged (it may or may not have been
                        // applied; nothing is claimed about it). Move to redis-server once it
                        // is a master.
                        switched.notified().await;
                        c = redis_conn_to(&rurl).await.unwrap();
                        on_redis = true;
                    }
                    Err(_) => panic!("write {i} to redis-server got no answer"),
                }
                i += 1;
            }
        })
    };
    wait_for_more(&count, 100, "writes before the migration").await;

    // 1. masterauth and REPLICAOF on the new Redis.
    cmd(&rurl, &["CONFIG", "SET", "masterauth", PASSWORD]).await;
    let port = engine.port.to_string();
    cmd(&rurl, &["REPLICAOF", "127.0.0.1", &port]).await;
    // 2. Its link up and its offset the engine's (under the writer: at least where the engine
    // was when looked at).
    wait_for(
        Duration::from_secs(60),
        "redis-server's link to the engine",
        || {
            let rurl = rurl.clone();
            async move { info_field(&rurl, "replication", "master_link_status").await == "up" }
        },
    )
    .await;
    wait_for_more(&count, 200, "writes while redis-server follows").await;
    wait_caught_up(&eurl, &rurl).await;
    // 3. Writes paused on the engine, the offsets equal again (at least the engine's at the
    // pause: a master's heartbeats may move its offset on), REPLICAOF NO ONE.
    paused.store(true, Ordering::Relaxed);
    cmd(&eurl, &["CLIENT", "PAUSE", "60000", "WRITE"]).await;
    let at_pause: u64 = info_field(&eurl, "replication", "master_repl_offset")
        .await
        .parse()
        .unwrap();
    wait_for(Duration::from_secs(60), "the offsets to be equal", || {
        let rurl = rurl.clone();
        async move {
            info_field(&rurl, "replication", "slave_repl_offset")
                .await
                .parse::<u64>()
                .is_ok_and(|o| o >= at_pause)
        }
    })
    .await;
    let engine_at_pause = dataset(&eurl).await;
    cmd(&rurl, &["REPLICAOF", "NO", "ONE"]).await;
    // A permit is stored if the writer is not waiting yet.
    switched.notify_one();
    let before_switch = count.load(Ordering::Relaxed);
    wait_for_more(&count, 100, "writes to redis-server after the cutover").await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(info_field(&rurl, "replication", "role").await, "master");

    // Every acknowledged write is on redis-server.
    let acked = acked.lock().clone();
    assert!(acked.len() as u64 > before_switch, "writes on both sides");
    let mut c = redis_conn_to(&rurl).await.unwrap();
    let mut missing = Vec::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("out:{i}")).collect();
        let got: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
        for (i, v) in chunk.iter().zip(got) {
            if v != Some(*i) {
                missing.push(*i);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes missing or wrong on redis-server: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    // And the rest of the dataset is the engine's at the pause (fill's types, TTLs), plus the
    // writer's keys written to redis-server after it.
    let mut on_redis = dataset(&rurl).await;
    on_redis.retain(|key, _| !key.1.starts_with("out:") || engine_at_pause.contains_key(key));
    assert_eq!(on_redis, engine_at_pause);
    drop(engine);
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
    std::fs::remove_dir_all(&edir).unwrap();
}
