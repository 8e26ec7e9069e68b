//! Persistence over TCP: restart recovery, kill -9 under load with `appendfsync always` (every
//! acknowledged write survives), torn tails cut at every byte, corruption refused, check-log.

mod repl_support;
mod support;

use std::time::Duration;

use redis::AsyncCommands;
use repl_support::{free_port, EngineProcess};
use support::{start_engine, temp_dir};

fn persistent(dir: &std::path::Path, fsync: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("persistence", "on".to_string()),
        ("dir", dir.display().to_string()),
        ("appendfsync", fsync.to_string()),
    ]
}

async fn start_in(
    dir: &std::path::Path,
    fsync: &'static str,
) -> redispair::engine::server::ServerHandle {
    let s = persistent(dir, fsync);
    let refs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_engine(&refs).await
}

#[tokio::test]
async fn restart_recovers_writes_transactions_and_databases() {
    let dir = temp_dir("restart");
    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    for i in 0..100 {
        let _: () = c.set(format!("k{i}"), i).await.unwrap();
    }
    let _: () = c.del("k7").await.unwrap();
    let _: i64 = c.incr("counter", 5).await.unwrap();
    let _: () = redis::pipe()
        .atomic()
        .incr("counter", 1)
        .set("in-tx", "yes")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = c.set("db3", "three").await.unwrap();
    let offset_before = {
        let st = h.engine.state.lock();
        st.stream.offset
    };
    h.stop().await;

    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    assert_eq!(h.engine.state.lock().stream.offset, offset_before);
    let v: Option<i64> = c.get("k99").await.unwrap();
    assert_eq!(v, Some(99));
    let v: Option<i64> = c.get("k7").await.unwrap();
    assert_eq!(v, None);
    let v: i64 = c.get("counter").await.unwrap();
    assert_eq!(v, 6);
    let v: String = c.get("in-tx").await.unwrap();
    assert_eq!(v, "yes");
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 101);
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut c)
        .await
        .unwrap();
    let v: String = c.get("db3").await.unwrap();
    assert_eq!(v, "three");
    // The stream continues in the right database after a restart.
    let _: () = c.set("db3b", "x").await.unwrap();
    h.stop().await;
    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut c)
        .await
        .unwrap();
    let v: String = c.get("db3b").await.unwrap();
    assert_eq!(v, "x");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several writers append numbered elements as fast as they can while the engine is killed with
/// SIGKILL; after a restart every element whose RPUSH/INCR was answered must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_keeps_every_acknowledged_write() {
    let dir = temp_dir("kill9");
    for round in 0..3u64 {
        let port = free_port();
        let mut p = EngineProcess::start(port, &dir, &[("appendfsync", "always")]).await;
        let acked = std::sync::Arc::new(parking_lot::Mutex::new(vec![0i64; 4]));
        let mut writers = Vec::new();
        for w in 0..4usize {
            let mut c = p.conn().await;
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                let key = format!("counter:{w}");
                loop {
                    match redis::cmd("INCR")
                        .arg(&key)
                        .query_async::<i64>(&mut c)
                        .await
                    {
                        Ok(n) => acked.lock()[w] = n,
                        Err(_) => return,
                    }
                }
            }));
        }
        // Kill at a different point each round: once every writer has had this many
        // writes acknowledged (a condition, so a slow machine still kills under load).
        let kill_after = 200 + 400 * round as i64;
        support::wait_for(Duration::from_secs(60), "acknowledged writes", || {
            let acked = acked.clone();
            async move { acked.lock().iter().all(|n| *n >= kill_after) }
        })
        .await;
        p.kill9();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().clone();
        assert!(
            acked.iter().all(|n| *n > 0),
            "writers made progress: {acked:?}"
        );
        let p = EngineProcess::start(port, &dir, &[("appendfsync", "always")]).await;
        let mut c = p.conn().await;
        for (w, n) in acked.iter().enumerate() {
            let got: i64 = c.get(format!("counter:{w}")).await.unwrap();
            assert!(
                got >= *n,
                "round {round}: writer {w} was acknowledged {n} but recovered {got}"
            );
            // At most the writes in flight at the kill are ahead of the acknowledgements.
            assert!(got <= *n + 1, "round {round}: writer {w}: {got} > {n} + 1");
        }
        drop(p);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("seg-"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    segs.pop().expect("a non-empty segment")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Cut the log inside its last record at every byte: the engine starts, keeps every earlier
/// write, drops the torn one, and accepts new writes that survive the next restart.
#[tokio::test]
async fn torn_last_record_at_every_byte_recovers() {
    let dir = temp_dir("torn-src");
    let h = start_in(&dir, "always").await;
    let mut c = support::redis_conn(&h).await;
    for i in 0..5 {
        let _: () = c.set(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    let _: () = c.set("last", "the-last-write").await.unwrap();
    h.stop().await;
    let seg = last_segment(&dir);
    let full = std::fs::read(&seg).unwrap();
    // The last record: header (16 bytes) + RESP of SET last the-last-write.
    let last_len = 16 + "*3\r\n$3\r\nSET\r\n$4\r\nlast\r\n$14\r\nthe-last-write\r\n".len();
    let start = full.len() - last_len;
    let work = temp_dir("torn-work");
    for cut in start..full.len() {
        copy_dir(&dir, &work);
        let seg_copy = work.join(seg.file_name().unwrap());
        std::fs::write(&seg_copy, &full[..cut]).unwrap();
        let h = start_in(&work, "always").await;
        let mut c = support::redis_conn(&h).await;
        let v: Option<String> = c.get("k4").await.unwrap();
        assert_eq!(v.as_deref(), Some("v4"), "cut at {cut}");
        let v: Option<String> = c.get("last").await.unwrap();
        assert_eq!(v, None, "cut at {cut}");
        let _: () = c.set("after", cut).await.unwrap();
        h.stop().await;
        let h = start_in(&work, "always").await;
        let mut c = support::redis_conn(&h).await;
        let v: Option<usize> = c.get("after").await.unwrap();
        assert_eq!(v, Some(cut), "write after recovery from cut {cut}");
        h.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&work);
}

/// Damage before the tail stops the start naming the file and position; check-log reports it
/// and `--truncate` repairs the directory.
#[tokio::test]
async fn corruption_refuses_to_start_and_check_log_repairs() {
    let dir = temp_dir("corrupt");
    let h = start_in(&dir, "always").await;
    let mut c = support::redis_conn(&h).await;
    for i in 0..10 {
        let _: () = c.set(format!("k{i}"), "value").await.unwrap();
    }
    h.stop().await;
    let seg = last_segment(&dir);
    let mut data = std::fs::read(&seg).unwrap();
    // Flip a byte inside the payload of the third record.
    let pos = data.len() / 2;
    data[pos] ^= 0x55;
    std::fs::write(&seg, &data).unwrap();

    let mut cfg = redispair::engine::config::Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("persistence", "on").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    let err = match redispair::engine::server::start(cfg).await {
        Ok(_) => panic!("an engine must not start on a corrupt log"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(seg.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("at byte"), "{err}");

    let bin = env!("CARGO_BIN_EXE_redispair-engine");
    let out = std::process::Command::new(bin)
        .args(["check-log", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("CORRUPT at byte"), "{report}");
    let out = std::process::Command::new(bin)
        .args(["check-log", dir.to_str().unwrap(), "--truncate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let h = start_in(&dir, "always").await;
    let mut c = support::redis_conn(&h).await;
    let v: Option<String> = c.get("k0").await.unwrap();
    assert_eq!(v.as_deref(), Some("value"));
    let v: Option<String> = c.get("k9").await.unwrap();
    assert_eq!(v, None, "what followed the damage is gone");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn string_dataset(c: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String)> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(c).await.unwrap();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let v: String = c.get(&k).await.unwrap();
        out.push((k, v));
    }
    out
}

fn files(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// A background snapshot taken while writers modify the keys it is walking is exactly the
/// dataset at its offset: loading the snapshot alone gives the same data as replaying the log up
/// to that offset; snapshot + tail gives the final data; older segments are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_snapshot_under_writes_is_the_dataset_at_its_offset() {
    let dir = temp_dir("snap");
    let settings = [
        ("persistence", "on"),
        ("dir", dir.to_str().unwrap()),
        ("appendfsync", "no"),
    ];
    let h = start_engine(&settings).await;
    let mut c = support::redis_conn(&h).await;
    for chunk in 0..20 {
        let mut p = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            p.set(format!("k{i}"), format!("initial{i}")).ignore();
        }
        let _: () = p.query_async(&mut c).await.unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writes answered so far, by all writers: the test waits on it instead of on the clock.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let mut c = support::redis_conn(&h).await;
        let stop = stop.clone();
        let written = written.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("k{}", (n * 7919 + w * 13) % 25_000);
                if n % 5 == 0 {
                    let _: () = c.del(&k).await.unwrap();
                } else {
                    let _: () = c.set(&k, format!("w{w}-{n}")).await.unwrap();
                }
                n += 1;
                written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    // Let the writers run a little, snapshot, and keep writing until it is done.
    support::wait_for_more(&written, 500, "writes before BGSAVE").await;
    let r: String = redis::cmd("BGSAVE").query_async(&mut c).await.unwrap();
    assert_eq!(r, "Background saving started");
    support::wait_for(Duration::from_secs(30), "snapshot", || {
        let engine = h.engine.clone();
        async move {
            let st = engine.state.lock();
            st.persist.snapshots_done == 1 && !st.persist.snapshot_in_progress
        }
    })
    .await;
    support::wait_for_more(&written, 500, "writes after the snapshot").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(info.contains("rdb_bgsave_in_progress:0"), "{info}");
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
    let lastsave: i64 = redis::cmd("LASTSAVE").query_async(&mut c).await.unwrap();
    assert!(lastsave > 0);
    let final_data = string_dataset(&mut c).await;
    h.stop().await;

    let snaps = files(&dir, "snap-");
    assert_eq!(snaps.len(), 1);
    let snap_name = snaps[0].file_name().unwrap().to_str().unwrap().to_string();
    let s_offset: u64 = snap_name[5..25].parse().unwrap();
    let seg_first = |p: &std::path::PathBuf| -> u64 {
        p.file_name().unwrap().to_str().unwrap()[4..24]
            .parse()
            .unwrap()
    };

    // The snapshot alone, and the log replayed up to its offset, hold the same dataset.
    let only_snap = temp_dir("snap-only");
    std::fs::copy(&snaps[0], only_snap.join(&snap_name)).unwrap();
    let log_prefix = temp_dir("snap-log");
    for s in files(&dir, "seg-") {
        if seg_first(&s) < s_offset {
            std::fs::copy(&s, log_prefix.join(s.file_name().unwrap())).unwrap();
        }
    }
    let mut at_s = Vec::new();
    for d in [&only_snap, &log_prefix] {
        let h = start_engine(&[("persistence", "on"), ("dir", d.to_str().unwrap())]).await;
        assert_eq!(h.engine.state.lock().stream.offset, s_offset);
        let mut c = support::redis_conn(&h).await;
        at_s.push(string_dataset(&mut c).await);
        h.stop().await;
    }
    assert_eq!(at_s[0].len(), at_s[1].len());
    assert!(
        at_s[0] == at_s[1],
        "snapshot differs from the log replayed to its offset"
    );
    assert_ne!(at_s[0], final_data, "writes continued during the snapshot");

    // Snapshot + tail = the final dataset; with no retention, a new snapshot drops the
    // segments before it.
    let h = start_engine(&settings).await;
    let mut c = support::redis_conn(&h).await;
    assert_eq!(string_dataset(&mut c).await, final_data);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-backlog-size")
        .arg("0")
        .arg("repl-backlog-ttl")
        .arg("0")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = c.set("after", "restart").await.unwrap();
    let r: String = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
    assert_eq!(r, "OK");
    let snaps = files(&dir, "snap-");
    assert_eq!(snaps.len(), 1, "older snapshots are deleted");
    let s_offset: u64 = snaps[0].file_name().unwrap().to_str().unwrap()[5..25]
        .parse()
        .unwrap();
    assert_eq!(s_offset, h.engine.state.lock().stream.offset);
    // Only the newest segment (where writes continue) may start before the snapshot.
    let segs = files(&dir, "seg-");
    for s in &segs[..segs.len() - 1] {
        assert!(
            seg_first(s) >= s_offset,
            "segment {s:?} should have been dropped"
        );
    }
    assert!(segs.len() <= 2, "{segs:?}");
    h.stop().await;
    let h = start_engine(&settings).await;
    let mut c = support::redis_conn(&h).await;
    let v: String = c.get("after").await.unwrap();
    assert_eq!(v, "restart");
    h.stop().await;
    for d in [&dir, &only_snap, &log_prefix] {
        let _ = std::fs::remove_dir_all(d);
    }
}

async fn digest(c: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query_async(c)
        .await
        .unwrap()
}

async fn q(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(c).await.unwrap();
}

/// Every type, with expiry, survives DEBUG RELOAD, a snapshot and restarts (DEBUG DIGEST).
#[tokio::test]
async fn every_type_survives_reload_snapshot_and_restart() {
    let dir = temp_dir("types");
    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    for i in 0..300 {
        let n = i.to_string();
        q(&mut c, &["RPUSH", "list", &n, "x"]).await;
        q(&mut c, &["HSET", "hash", &format!("f{}", i % 50), &n]).await;
        q(&mut c, &["SADD", "set", &format!("{}", i % 90)]).await;
        q(
            &mut c,
            &[
                "ZADD",
                "zset",
                &format!("{}.25", i),
                &format!("m{}", i % 60),
            ],
        )
        .await;
        q(&mut c, &["SET", &format!("s{i}"), &n, "EX", "10000"]).await;
    }
    q(
        &mut c,
        &[
            "ZADD", "zset", "inf", "top", "-inf", "bottom", "0.1", "tenth",
        ],
    )
    .await;
    q(&mut c, &["SELECT", "2"]).await;
    q(&mut c, &["SET", "other-db", "2"]).await;
    q(&mut c, &["SELECT", "0"]).await;
    let before = digest(&mut c).await;
    assert_eq!(
        redis::cmd("DEBUG")
            .arg("RELOAD")
            .query_async::<String>(&mut c)
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(digest(&mut c).await, before, "after DEBUG RELOAD");
    h.stop().await;
    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    assert_eq!(
        digest(&mut c).await,
        before,
        "after a restart from snapshot + log"
    );
    q(&mut c, &["LPOP", "list"]).await;
    q(&mut c, &["SREM", "set", "3"]).await;
    let after = digest(&mut c).await;
    let r: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, "Background append only file rewriting started");
    support::wait_for(Duration::from_secs(20), "compaction", || {
        let engine = h.engine.clone();
        async move {
            let st = engine.state.lock();
            st.persist.snapshots_done >= 1 && !st.persist.snapshot_in_progress
        }
    })
    .await;
    h.stop().await;
    let h = start_in(&dir, "everysec").await;
    let mut c = support::redis_conn(&h).await;
    assert_eq!(digest(&mut c).await, after, "after compaction and restart");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Compaction starts by itself once the log has grown by `auto-aof-rewrite-min-size` since the
/// last snapshot (CONFIG SET applies at once); the data survives a restart from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_growth_triggers_compaction_at_the_configured_size() {
    let dir = temp_dir("auto-compaction");
    let settings = [("persistence", "on"), ("dir", dir.to_str().unwrap())];
    let h = start_engine(&settings).await;
    let mut c = support::redis_conn(&h).await;
    let value = "v".repeat(1000);
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.set(format!("k{i}"), &value).ignore();
    }
    let () = pipe.query_async(&mut c).await.unwrap();
    assert!(
        files(&dir, "snap-").is_empty(),
        "200 KB is under the default 64mb"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("auto-aof-rewrite-min-size")
        .arg("100kb")
        .query_async(&mut c)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut c)
            .await
            .unwrap();
        if info.contains("rdb_saves:1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no automatic snapshot after 200 KB of log with a 100kb threshold: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files(&dir, "snap-").len(), 1);
    h.stop().await;
    let h = start_engine(&settings).await;
    let mut c = support::redis_conn(&h).await;
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 200);
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sleep until the wall clock is past `deadline_ms` (Unix ms) by a margin. This sleep *is* the
/// time under test: a TTL running out while the engine is down.
async fn sleep_past(deadline_ms: i64) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let wait = (deadline_ms - now_ms).max(0) as u64 + 200;
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// A key whose TTL runs out while the engine is down is gone after the restart (as with
/// redis-server), and a key whose TTL was removed before the kill keeps its whole history:
/// replaying the log never expires keys by the local clock halfway through (the PEXPIREAT,
/// already past at replay, used to delete the key and the next INCR recreated it without TTL).
/// After loading, the engine expires the key normally and logs the expiry as a DEL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_that_ran_out_while_down_expires_the_key_after_restart() {
    let dir = temp_dir("ttl-down");
    let port = free_port();
    let mut p = EngineProcess::start(port, &dir, &[("appendfsync", "always")]).await;
    let mut c = p.conn().await;
    for key in ["k", "p"] {
        let _: i64 = c.incr(key, 1).await.unwrap();
        let _: bool = c.pexpire(key, 400).await.unwrap();
        let n: i64 = c.incr(key, 1).await.unwrap();
        assert_eq!(n, 2);
    }
    // `p` loses its TTL: it must come back as 2, without TTL.
    let _: bool = c.persist("p").await.unwrap();
    let deadline: i64 = redis::cmd("PEXPIRETIME")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(deadline > 0);
    p.kill9();
    sleep_past(deadline).await;

    let mut p = EngineProcess::start(port, &dir, &[("appendfsync", "always")]).await;
    let mut c = p.conn().await;
    let k: Option<String> = c.get("k").await.unwrap();
    assert_eq!(k, None, "k expired while the engine was down");
    let ttl: i64 = c.ttl("k").await.unwrap();
    assert_eq!(ttl, -2);
    let v: Option<String> = c.get("p").await.unwrap();
    assert_eq!(v.as_deref(), Some("2"), "p's history replayed in full");
    let ttl: i64 = c.ttl("p").await.unwrap();
    assert_eq!(ttl, -1);
    let expired: u64 = repl_support::info_field(&mut c, "stats", "expired_keys")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expired, 1,
        "the expiry happened after loading, on this node"
    );

    // The expiry was logged as a DEL: a further restart still has no `k`, and the log
    // holds the DEL after the PEXPIREAT.
    support::wait_for(Duration::from_secs(10), "the log durable", || {
        let mut c = c.clone();
        async move {
            let off = repl_support::info_field(&mut c, "persistence", "log_offset").await;
            let durable =
                repl_support::info_field(&mut c, "persistence", "log_durable_offset").await;
            off.is_some() && off == durable
        }
    })
    .await;
    p.kill9();
    let log = std::fs::read(last_segment(&dir)).unwrap();
    let needle = b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n";
    assert!(
        log.windows(needle.len()).any(|w| w == needle),
        "the expiry of k was logged as DEL"
    );
    let p = EngineProcess::start(port, &dir, &[("appendfsync", "always")]).await;
    let mut c = p.conn().await;
    let k: Option<String> = c.get("k").await.unwrap();
    assert_eq!(k, None);
    let v: Option<String> = c.get("p").await.unwrap();
    assert_eq!(v.as_deref(), Some("2"));
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop. None (after saying why,
/// loudly) when mounting is not possible, e.g. not running as root.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(tag: &str, size: &str) -> Option<SmallDisk> {
        let dir = temp_dir(tag);
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs on {} (root needed): {}",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A full disk (a real 3 MB tmpfs) under each `appendfsync` policy: once the log writer fails,
/// write commands get `-MISCONF Errors writing to the AOF file: No space left on device` (the
/// first refused write never hangs, and no write is acknowledged after one was refused), reads
/// and PING still work, INFO says `aof_last_write_status:err`; when space is freed the engine
/// accepts writes again by itself, the replica receives everything, and a restart recovers
/// every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_with_misconf_and_recovers_by_itself() {
    for fsync in ["everysec", "always"] {
        let Some(disk) = SmallDisk::mount(&format!("full-disk-{fsync}"), "3m") else {
            return;
        };
        let dir = disk.dir.clone();
        // The filler leaves about 1 MB for the log; deleting it frees the disk.
        let filler = dir.join("filler");
        std::fs::write(&filler, vec![7u8; 2 << 20]).unwrap();
        let m = start_in(&dir, fsync).await;
        let mut mc = support::redis_conn(&m).await;
        let r = start_engine(&[]).await;
        let mut rc = support::redis_conn(&r).await;
        repl_support::replicaof(&mut rc, repl_support::port_of(&m)).await;

        let value = vec![b'v'; 100_000];
        let mut acked = Vec::new();
        let mut refused = None;
        for i in 0..200 {
            // A write that hangs fails the test (the deadline detects it, it does not pace).
            let r: redis::RedisResult<()> =
                tokio::time::timeout(Duration::from_secs(20), mc.set(format!("k{i}"), &value[..]))
                    .await
                    .unwrap_or_else(|_| panic!("{fsync}: SET k{i} hangs on a full disk"));
            match r {
                Ok(()) => {
                    assert!(
                        refused.is_none(),
                        "{fsync}: k{i} acknowledged after a refused write"
                    );
                    acked.push(i);
                }
                Err(e) => {
                    assert_eq!(e.code(), Some("MISCONF"), "{fsync}: {e}");
                    assert!(
                        e.to_string()
                            .contains("Errors writing to the AOF file: No space left on device"),
                        "{fsync}: {e}"
                    );
                    refused.get_or_insert(i);
                }
            }
            if refused.is_some_and(|f| i >= f + 3) {
                break;
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{fsync}: no write was refused"));
        assert!(!acked.is_empty(), "{fsync}: the disk held some writes");
        let status = repl_support::info_field(&mut mc, "persistence", "aof_last_write_status")
            .await
            .unwrap();
        assert_eq!(status, "err", "{fsync}");
        let pong: String = redis::cmd("PING").query_async(&mut mc).await.unwrap();
        assert_eq!(pong, "PONG");
        let got: Vec<u8> = mc.get("k0").await.unwrap();
        assert_eq!(got.len(), value.len(), "{fsync}: reads work");
        // A transaction with a write is refused when it is queued.
        let queued: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .set("tx", 1)
            .query_async(&mut mc)
            .await;
        assert!(queued.is_err(), "{fsync}: a write in MULTI is refused");

        // Free the disk: the engine writes again by itself.
        std::fs::remove_file(&filler).unwrap();
        // (Timed out once, under load 8, in a run of the whole file; never alone or since. The
        // message names the policy and what INFO said last, for the next time.)
        let last_seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let waiting = format!("{fsync}: writes accepted again (INFO persistence, last: see below)");
        let (seen, poll) = (last_seen.clone(), mc.clone());
        let waited = tokio::spawn(async move {
            support::wait_for(Duration::from_secs(20), &waiting, || {
                let (mut mc, seen) = (poll.clone(), seen.clone());
                async move {
                    let info: redis::RedisResult<String> = redis::cmd("INFO")
                        .arg("persistence")
                        .query_async(&mut mc)
                        .await;
                    let text = info.unwrap_or_else(|e| format!("INFO failed: {e}"));
                    let ok = text
                        .lines()
                        .any(|l| l.trim_end() == "aof_last_write_status:ok");
                    *seen.lock().unwrap() = text;
                    ok
                }
            })
            .await
        })
        .await;
        if waited.is_err() {
            panic!(
                "{fsync}: last INFO persistence:\n{}",
                last_seen.lock().unwrap()
            );
        }
        let _: () = mc.set("after", "yes").await.unwrap();
        // The replica gets everything, the held-up writes and the new one.
        support::wait_for(Duration::from_secs(20), "the replica in sync", || {
            let (mut mc, mut rc) = (mc.clone(), rc.clone());
            async move {
                let mo =
                    repl_support::info_field(&mut mc, "replication", "master_repl_offset").await;
                let ro =
                    repl_support::info_field(&mut rc, "replication", "master_repl_offset").await;
                mo.is_some() && mo == ro
            }
        })
        .await;
        let after: Option<String> = rc.get("after").await.unwrap();
        assert_eq!(after.as_deref(), Some("yes"), "{fsync}");
        for i in &acked {
            let got: Option<Vec<u8>> = rc.get(format!("k{i}")).await.unwrap();
            assert_eq!(
                got.map(|v| v.len()),
                Some(value.len()),
                "{fsync}: replica k{i}"
            );
        }
        r.stop().await;
        m.stop().await;

        // Every acknowledged write is in the log.
        let m = start_in(&dir, fsync).await;
        let mut mc = support::redis_conn(&m).await;
        for i in &acked {
            let got: Option<Vec<u8>> = mc.get(format!("k{i}")).await.unwrap();
            assert_eq!(
                got.map(|v| v.len()),
                Some(value.len()),
                "{fsync}: k{i} after restart"
            );
        }
        let after: Option<String> = mc.get("after").await.unwrap();
        assert_eq!(after.as_deref(), Some("yes"));
        eprintln!(
            "{fsync}: {} writes acknowledged, k{refused} refused first",
            acked.len()
        );
        m.stop().await;
        drop(disk);
    }
}

/// Two engines on one data directory (a force-deleted pod's engine still running while its
/// replacement starts on the same claim): the second waits for the first to exit before it
/// reads anything, so it recovers every write the first made, including those made after the
/// second was started. Without the directory lock it would load the directory at once and
/// miss them (and both would append to the same segments).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_engine_on_the_same_directory_waits_for_the_first() {
    let dir = temp_dir("dirlock");
    let mut first = EngineProcess::start(free_port(), &dir, &[("appendfsync", "always")]).await;
    let mut c = first.conn().await;
    for i in 0..100 {
        let _: () = c.set(format!("before{i}"), i).await.unwrap();
    }
    let port = free_port();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(&dir)
        .args(["--persistence", "on", "--appendfsync", "always"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The second engine is up (its port accepts) and so past the point where it would have
    // loaded the directory, had it not waited for the lock.
    support::wait_for(
        Duration::from_secs(30),
        "the second engine listening",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    for i in 0..100 {
        let _: () = c.set(format!("after{i}"), i).await.unwrap();
    }
    // The first engine exits (SIGTERM, as the kubelet does once the preStop hook returns).
    let pid = rustix::process::Pid::from_raw(first.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    first.child.wait().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    support::wait_for(Duration::from_secs(30), "the second engine serving", || {
        let url = url.clone();
        async move {
            match support::redis_conn_to(&url).await {
                Ok(mut conn) => redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    let mut s = support::redis_conn_to(&url).await.unwrap();
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut s).await.unwrap();
    assert_eq!(
        n, 200,
        "every write of the first engine, also those after the second started"
    );
    let v: i64 = s.get("after99").await.unwrap();
    assert_eq!(v, 99);
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// DEBUG POPULATE's keys are in the log: a restart finds every one (Redis's DEBUG POPULATE
/// logs nothing, so its keys vanish with a restart of an AOF server; here the log is the
/// dataset). Existing keys are left alone, as in Redis.
#[tokio::test]
async fn debug_populate_keys_survive_a_restart() {
    let dir = temp_dir("populate");
    let h = start_in(&dir, "always").await;
    let mut c = support::redis_conn(&h).await;
    let _: () = c.set("p:7", "mine").await.unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg(&["POPULATE", "1000", "p", "16"])
        .query_async(&mut c)
        .await
        .unwrap();
    let before = digest(&mut c).await;
    h.stop().await;
    let h = start_in(&dir, "always").await;
    let mut c = support::redis_conn(&h).await;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 1000);
    assert_eq!(digest(&mut c).await, before);
    let v: Vec<u8> = c.get("p:999").await.unwrap();
    assert_eq!(v, b"value:999\0\0\0\0\0\0\0");
    let v: String = c.get("p:7").await.unwrap();
    assert_eq!(v, "mine");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
