//! RDB files both ways between Debian's redis-server (7.0) and the engine: redis-server's
//! `dump.rdb` (every type, compact and plain encodings, expiries, several databases, a function
//! library) loads into the engine; the engine's `SAVE` and `rdb-export` files pass
//! `redis-check-rdb` and load into redis-server; both sides are compared key by key, TTLs
//! included. Damaged files stop a start with a clear error. Does I/O: processes, loopback
//! sockets, temporary directories.

mod rdb_support;
mod support;

use std::process::Command;
use std::time::Duration;

use rdb_support::{dataset, fcall_answer, fill, qs, RedisServer};
use redis::Value;
use support::{redis_conn_to, start_engine, temp_dir, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_servers_dump_rdb_loads_into_the_engine_key_by_key() {
    // Small packed thresholds make the small keys listpacks/intsets and several quicklist
    // nodes (some LZF-compressed); the large ones are hashtables, skiplists and plain nodes.
    let rdir = temp_dir("rdb-from-redis-r");
    let redis = RedisServer::start(
        &rdir,
        &[
            "--list-max-listpack-size",
            "4",
            "--list-compress-depth",
            "1",
        ],
    )
    .await;
    fill(&redis.url()).await;
    let mut c = redis_conn_to(&redis.url()).await.unwrap();
    qs(&mut c, &["SAVE"]).await.unwrap();
    let expected = dataset(&redis.url()).await;
    assert!(expected.len() > 20);

    for persistence in ["off", "on"] {
        let edir = temp_dir(&format!("rdb-from-redis-e-{persistence}"));
        std::fs::copy(rdir.join("dump.rdb"), edir.join("dump.rdb")).unwrap();
        let dir = edir.display().to_string();
        let h = start_engine(&[("dir", &dir), ("persistence", persistence)]).await;
        let url = format!("redis://{}/", h.addr());
        assert_eq!(dataset(&url).await, expected, "persistence {persistence}");
        assert_eq!(fcall_answer(&url).await, Ok(Value::Int(42)));
        h.stop().await;
        if persistence == "on" {
            // The import was snapshotted into the log: a restart has it without the file.
            std::fs::remove_file(edir.join("dump.rdb")).unwrap();
            let h = start_engine(&[("dir", &dir), ("persistence", "on")]).await;
            assert_eq!(dataset(&url_of(&h)).await, expected, "after a restart");
            h.stop().await;
        }
        std::fs::remove_dir_all(&edir).unwrap();
    }
    drop(redis);
    std::fs::remove_dir_all(&rdir).unwrap();
}

fn url_of(h: &redispair::engine::server::ServerHandle) -> String {
    format!("redis://{}/", h.addr())
}

fn check_rdb(path: &std::path::Path) {
    let out = Command::new("redis-check-rdb")
        .arg(path)
        .output()
        .expect("redis-check-rdb is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused {}:\n{text}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_save_passes_redis_check_rdb_and_loads_into_redis_server() {
    let edir = temp_dir("rdb-to-redis-e");
    let dir = edir.display().to_string();
    let h = start_engine(&[("dir", &dir), ("persistence", "off")]).await;
    let url = url_of(&h);
    fill(&url).await;
    let expected = dataset(&url).await;
    let mut c = redis_conn_to(&url).await.unwrap();
    assert_eq!(qs(&mut c, &["SAVE"]).await, Ok(Value::Okay));
    check_rdb(&edir.join("dump.rdb"));

    // BGSAVE writes the same dataset, in the background.
    std::fs::remove_file(edir.join("dump.rdb")).unwrap();
    let started = qs(&mut c, &["BGSAVE"]).await;
    assert_eq!(
        started,
        Ok(Value::SimpleString("Background saving started".into()))
    );
    wait_for(Duration::from_secs(30), "BGSAVE to finish", || {
        let url = url.clone();
        async move {
            let mut c = redis_conn_to(&url).await.unwrap();
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut c)
                .await
                .unwrap();
            info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_last_bgsave_status:ok")
        }
    })
    .await;
    check_rdb(&edir.join("dump.rdb"));
    // DEBUG RELOAD (save, empty, load) keeps everything.
    assert_eq!(qs(&mut c, &["DEBUG", "RELOAD"]).await, Ok(Value::Okay));
    assert_eq!(dataset(&url).await, expected, "after DEBUG RELOAD");
    h.stop().await;

    let redis = RedisServer::start(&edir, &[]).await;
    assert_eq!(dataset(&redis.url()).await, expected);
    assert_eq!(fcall_answer(&redis.url()).await, Ok(Value::Int(42)));
    drop(redis);
    std::fs::remove_dir_all(&edir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdb_export_writes_a_stopped_engines_data_directory_as_an_rdb_file() {
    let edir = temp_dir("rdb-export-e");
    let dir = edir.display().to_string();
    let h = start_engine(&[("dir", &dir), ("persistence", "on")]).await;
    let url = url_of(&h);
    fill(&url).await;
    let expected = dataset(&url).await;
    // A running engine's directory is refused.
    let out_dir = temp_dir("rdb-export-out");
    let refused = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg("rdb-export")
        .arg(&edir)
        .arg(out_dir.join("dump.rdb"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("an engine is running"));
    h.stop().await;

    let out = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg("rdb-export")
        .arg(&edir)
        .arg(out_dir.join("dump.rdb"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_rdb(&out_dir.join("dump.rdb"));
    let redis = RedisServer::start(&out_dir, &[]).await;
    assert_eq!(dataset(&redis.url()).await, expected);
    assert_eq!(fcall_answer(&redis.url()).await, Ok(Value::Int(42)));
    drop(redis);
    std::fs::remove_dir_all(&edir).unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_dump_rdb_stops_the_start_with_a_clear_error() {
    let rdir = temp_dir("rdb-damaged-r");
    let redis = RedisServer::start(&rdir, &[]).await;
    fill(&redis.url()).await;
    let mut c = redis_conn_to(&redis.url()).await.unwrap();
    qs(&mut c, &["SAVE"]).await.unwrap();
    drop(redis);
    let good = std::fs::read(rdir.join("dump.rdb")).unwrap();
    let edir = temp_dir("rdb-damaged-e");
    let start = |dir: std::path::PathBuf| async move {
        let mut cfg = redispair::engine::config::Config::default();
        cfg.set_startup("port", "0").unwrap();
        cfg.set_startup("bind", "127.0.0.1").unwrap();
        cfg.set_startup("persistence", "off").unwrap();
        cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
        match redispair::engine::server::start(cfg).await {
            Ok(h) => {
                h.stop().await;
                String::new()
            }
            Err(e) => e.to_string(),
        }
    };
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("checksum mismatch", {
            let mut d = good.clone();
            let mid = d.len() / 2;
            d[mid] ^= 0x40;
            d
        }),
        ("not an RDB file", b"hello".to_vec()),
    ];
    for (want, data) in cases {
        std::fs::write(edir.join("dump.rdb"), &data).unwrap();
        let e = start(edir.clone()).await;
        assert!(e.contains("dump.rdb") && e.contains(want), "{want}: {e}");
    }
    std::fs::remove_dir_all(&rdir).unwrap();
    std::fs::remove_dir_all(&edir).unwrap();
}
