//! Archiving and restore against a real S3 endpoint: SeaweedFS on loopback, started and
//! stopped by `hack/seaweedfs.sh` (built and cached by `hack/seaweedfs.sh build`). An engine
//! archives to `s3://bucket/prefix` with credentials from the environment while writing,
//! takes a base backup, and a restore to a recorded offset and to the end gives exactly those
//! datasets. The secret keys reach the engine and the restore as files (`archive-credentials-dir`,
//! `--credentials-dir`, as a mounted Secret would), the endpoint through the environment.
//! Skipped, saying so, when `weed` has not been built, unless `REDISPAIR_REQUIRE_S3=1` (CI:
//! hack/test.sh builds it and sets that, so the test cannot silently not run).

mod repl_support;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use repl_support::{digest, info_field, master_offset, stop_and_remove_dirs, EngineProcess};
use support::{free_port, redis_conn_to, temp_dir, wait_for};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/seaweedfs.sh")
}

/// The S3 endpoint; stopped when dropped.
struct Weed {
    dir: PathBuf,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port whose neighbours weed also uses (+1..+3, +10001..+10003) are free too.
fn weed_port() -> u16 {
    loop {
        let p = free_port();
        if p > 50000 {
            continue;
        }
        let all_free = [1u16, 2, 3, 10001, 10002, 10003]
            .iter()
            .all(|d| std::net::TcpListener::bind(("127.0.0.1", p + d)).is_ok());
        if all_free {
            return p;
        }
    }
}

async fn write_batch(c: &mut MultiplexedConnection, tag: &str, n: usize) {
    for i in 0..n {
        let mut p = redis::pipe();
        p.cmd("SET").arg(format!("s:{tag}:{i}")).arg(i);
        p.cmd("RPUSH").arg("l").arg(format!("{tag}{i}"));
        p.cmd("HINCRBY").arg("h").arg(tag).arg(i);
        p.cmd("ZADD").arg("z").arg(i).arg(format!("{tag}{i}"));
        p.atomic();
        let _: () = p.query_async(c).await.unwrap();
    }
}

fn restore(url: &str, creds: &std::path::Path, dir: &std::path::Path, target: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg("restore")
        .args(["--from", url, "--dir", dir.to_str().unwrap()])
        .args(["--credentials-dir", creds.to_str().unwrap()])
        .args(target)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restore {target:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_and_restore_through_an_s3_endpoint() {
    let have = Command::new("bash")
        .arg(script())
        .arg("path")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("REDISPAIR_REQUIRE_S3").as_deref() != Ok("1"),
            "REDISPAIR_REQUIRE_S3=1 but SeaweedFS is not built: run `hack/seaweedfs.sh build`"
        );
        eprintln!(
            "SKIPPED archive_and_restore_through_an_s3_endpoint: SeaweedFS is not built; run `hack/seaweedfs.sh build` (CI does)"
        );
        return;
    }
    let root = temp_dir("archive-s3");
    let port = weed_port();
    let weed = Weed {
        dir: root.join("weed"),
    };
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(&weed.dir)
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weed did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The endpoint's credentials reach the engines and the restore through the environment,
    // as a Secret's would in a pod. (This test binary runs this one test, before any thread
    // reads the environment.)
    // The keys go into a directory of files, one per variable (a Secret's volume); the rest
    // (endpoint, region, plain HTTP) into the environment.
    let creds = root.join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    let mut bucket = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k == "REDISPAIR_S3_BUCKET" {
                bucket = v.to_string();
            } else if k.ends_with("_KEY_ID") || k.ends_with("_SECRET_ACCESS_KEY") {
                std::fs::write(creds.join(k), format!("{v}\n")).unwrap();
            } else {
                std::env::set_var(k, v);
            }
        }
    }
    assert!(
        std::env::var("AWS_SECRET_ACCESS_KEY").is_err(),
        "the secret key must come from the files only"
    );
    // Files in a Secret's volume sit beside the kubelet's hidden bookkeeping: ignored.
    std::fs::create_dir_all(creds.join("..data")).unwrap();
    let url = format!("s3://{bucket}/pairs/{}", std::process::id());
    let e = EngineProcess::start(
        free_port(),
        &root.join("data"),
        &[
            ("admin-user", "op"),
            ("admin-password", "secret"),
            ("archive-url", &url),
            ("archive-credentials-dir", creds.to_str().unwrap()),
            ("archive-timeout", "50"),
            ("archive-chunk-size", "4096"),
        ],
    )
    .await;
    let mut c = e.conn().await;
    let mut admin = redis_conn_to(&format!("redis://op:secret@127.0.0.1:{}/", e.port))
        .await
        .unwrap();
    write_batch(&mut c, "a", 100).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("BACKUP")
        .arg("s3-b1")
        .query_async(&mut admin)
        .await
        .unwrap();
    wait_for(Duration::from_secs(60), "the base backup", || {
        let mut c = admin.clone();
        async move {
            let m: Vec<(String, redis::Value)> = redis::cmd("REDISPAIR")
                .arg("BACKUP-STATUS")
                .arg("s3-b1")
                .query_async(&mut c)
                .await
                .unwrap();
            let phase = m.iter().find(|(k, _)| k == "phase").map(|(_, v)| v.clone());
            assert_ne!(
                phase,
                Some(redis::Value::BulkString(b"failed".to_vec())),
                "{m:?}"
            );
            phase == Some(redis::Value::BulkString(b"completed".to_vec()))
        }
    })
    .await;
    write_batch(&mut c, "b", 100).await;
    let (mid_offset, mid_digest) = (master_offset(&mut c).await, digest(&mut c).await);
    write_batch(&mut c, "c", 100).await;
    let (end_offset, end_digest) = (master_offset(&mut c).await, digest(&mut c).await);
    wait_for(Duration::from_secs(60), "the archive to catch up", || {
        let mut c = c.clone();
        async move {
            info_field(&mut c, "persistence", "archived_offset")
                .await
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|a| a >= end_offset)
        }
    })
    .await;
    let chunks: u64 = info_field(&mut c, "persistence", "archive_chunks")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(chunks >= 5, "{chunks} chunks");
    stop_and_remove_dirs([e]);

    for (name, target, want) in [
        (
            "mid",
            vec!["--target-offset".to_string(), mid_offset.to_string()],
            (mid_digest, mid_offset),
        ),
        ("end", vec![], (end_digest, end_offset)),
    ] {
        let dir = root.join(format!("restore-{name}"));
        let t: Vec<&str> = target.iter().map(String::as_str).collect();
        let report = restore(&url, &creds, &dir, &t);
        assert!(report.contains("\"reached\":true"), "{report}");
        let r = EngineProcess::start(free_port(), &dir, &[]).await;
        let mut rc = r.conn().await;
        assert_eq!(
            (digest(&mut rc).await, master_offset(&mut rc).await),
            want,
            "restore to {name}"
        );
        stop_and_remove_dirs([r]);
    }
    drop(weed);
    let _ = std::fs::remove_dir_all(&root);
}
