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
        tokio::time::sleep(Duration::from_millis(300 + 200 * round)).await;
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
