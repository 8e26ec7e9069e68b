//! Archiving and restore against a real S3 endpoint: SeaweedFS on loopback, started and
//! stopped by `hack/seaweedfs.sh` (built and cached by `hack/seaweedfs.sh build`). An engine
//! archives to `s3://bucket/prefix` with credentials from the environment while writing,
//! takes a base backup, and a restore to a recorded offset and to the end gives exactly those
//! datasets. The secret keys reach the engine and the restore as files (`archive-credentials-dir`,
//! `--credentials-dir`, as a mounted Secret would), the endpoint through the environment.
//! Skipped, saying so, when `weed` has not been built, unless `REDISPAIR_REQUIRE_S3=1` (CI:
//! hack/test.sh builds it and sets that, so the test cannot silently not run).

mod archive_support;
mod repl_support;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use archive_support::{
    admin_conn, archive_settings, archived, mark, now_ms, promote_replica, read_restored,
    restore_cmd, rfc3339, start, take_backup, wait_archived, Point,
};
use redis::aio::MultiplexedConnection;
use redispair::engine::archive::Archive;
use repl_support::{digest, info_field, master_offset, stop_and_remove_dirs, EngineProcess};
use support::{free_port, temp_dir, wait_for};

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

/// `restore` with the store's credentials as files; its report (stdout), or the test fails.
fn restore(url: &str, creds: &std::path::Path, dir: &std::path::Path, target: &[&str]) -> String {
    let mut args = vec!["--from", url, "--dir", dir.to_str().unwrap()];
    args.extend(["--credentials-dir", creds.to_str().unwrap()]);
    args.extend_from_slice(target);
    restore_cmd(&args).unwrap_or_else(|e| panic!("restore {target:?}: {e}"))
}

/// Write what `hack/seaweedfs.sh start` printed (`NAME=value` lines) into `dir`, one file per
/// setting; returns the bucket.
fn settings_dir(printed: &[u8], dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut bucket = String::new();
    for line in String::from_utf8_lossy(printed).lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k == "REDISPAIR_S3_BUCKET" {
                bucket = v.to_string();
            } else {
                std::fs::write(dir.join(k), format!("{v}\n")).unwrap();
            }
        }
    }
    assert!(
        !bucket.is_empty(),
        "no bucket in {}",
        String::from_utf8_lossy(printed)
    );
    bucket
}

/// SeaweedFS is built (None: the caller's test is skipped, saying so, unless required).
fn weed_built(test: &str) -> bool {
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
            "SKIPPED {test}: SeaweedFS is not built; run `hack/seaweedfs.sh build` (CI does)"
        );
    }
    have
}

/// Endpoints start one at a time: `weed_port` checks that a port range is free, and weed binds
/// it only as it starts, so two tests starting at once could pick overlapping ranges (seen:
/// "weed did not start" in two of three tests of a parallel run). Once started, its ports are
/// taken and the next check sees them.
static WEED_START: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Start weed under `root/weed`: (its guard, what `start` printed). A port range found free
/// can still be taken before weed binds it (other tests, other processes on the machine: seen
/// as "address already in use"): then it is started again on another range, up to 5 times.
fn start_weed(root: &std::path::Path) -> (Weed, std::process::Output) {
    let _one_at_a_time = WEED_START.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 1.. {
        let weed = Weed {
            dir: root.join("weed"),
        };
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&weed.dir)
            .arg(weed_port().to_string())
            .output()
            .unwrap();
        if out.status.success() {
            return (weed, out);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            attempt < 5 && err.contains("address already in use"),
            "weed did not start: {err}"
        );
        drop(weed);
    }
    unreachable!()
}

/// A running endpoint: the guard (stops it), `s3://bucket/<prefix>`, the settings directory.
fn endpoint(root: &std::path::Path, prefix: &str) -> (Weed, String, PathBuf) {
    let (weed, out) = start_weed(root);
    let creds = root.join("creds");
    let bucket = settings_dir(&out.stdout, &creds);
    (weed, format!("s3://{bucket}/{prefix}"), creds)
}

/// `restore` into a fresh directory; Ok((digest, offset)) of an engine started on it, or
/// Err(stderr).
async fn restore_read(
    url: &str,
    creds: &std::path::Path,
    dir: &std::path::Path,
    target: &[&str],
) -> Result<(String, u64), String> {
    let mut args = vec!["--from", url, "--dir", dir.to_str().unwrap()];
    args.extend(["--credentials-dir", creds.to_str().unwrap()]);
    args.extend_from_slice(target);
    restore_cmd(&args)?;
    Ok(read_restored(dir).await)
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
    let (weed, out) = start_weed(&root);
    // Every setting (keys, endpoint, region, plain HTTP) goes into a directory of files, one
    // per variable, as a Secret's volume holds them: nothing in this process's environment,
    // so the tests of this file run side by side, each with its own endpoint.
    let creds = root.join("creds");
    let bucket = settings_dir(&out.stdout, &creds);
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
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 100).await;
    take_backup(&mut admin, "s3-b1").await;
    write_batch(&mut c, "b", 100).await;
    let (mid_offset, mid_digest) = (master_offset(&mut c).await, digest(&mut c).await);
    write_batch(&mut c, "c", 100).await;
    let (end_offset, end_digest) = (master_offset(&mut c).await, digest(&mut c).await);
    wait_archived(&mut c, end_offset).await;
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

/// Against S3: three recorded points restored (by offset, by time, by time) give exactly
/// their digests; a byte flipped in a chunk through the S3 API stops a restore with an error
/// naming the object (put back, the restore works again); retention (`1s`) deletes the first
/// backup and the chunks only it needed once a newer backup covers the window, and what is
/// left restores to the engine's dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_corruption_and_retention_through_s3() {
    if !weed_built("point_in_time_corruption_and_retention_through_s3") {
        return;
    }
    let root = temp_dir("archive-s3-pitr");
    let (weed, url, creds) = endpoint(&root, "pitr");
    let mut settings = archive_settings(&url, Some(&creds));
    settings.push(("archive-retention", "1s".into()));
    let e = start(&root.join("data"), &settings).await;
    let mut c = e.conn().await;
    let mut adm = admin_conn(e.port).await;
    write_batch(&mut c, "a", 60).await;
    take_backup(&mut adm, "b1").await;
    write_batch(&mut c, "b", 60).await;
    let p1 = mark(&mut c).await;
    write_batch(&mut c, "c", 60).await;
    let p2 = mark(&mut c).await;
    write_batch(&mut c, "d", 60).await;
    let p3 = mark(&mut c).await;
    write_batch(&mut c, "e", 30).await;
    let end = master_offset(&mut c).await;
    wait_archived(&mut c, end).await;
    for (name, target, Point { offset, digest, .. }) in [
        (
            "p1",
            vec!["--target-offset".to_string(), p1.offset.to_string()],
            &p1,
        ),
        (
            "p2",
            vec!["--target-time".to_string(), rfc3339(p2.time_ms)],
            &p2,
        ),
        (
            "p3",
            vec!["--target-time".to_string(), rfc3339(p3.time_ms)],
            &p3,
        ),
    ] {
        let t: Vec<&str> = target.iter().map(String::as_str).collect();
        let got = restore_read(&url, &creds, &root.join(format!("r-{name}")), &t)
            .await
            .unwrap_or_else(|e| panic!("restore to {name}: {e}"));
        assert_eq!(got, (digest.clone(), *offset), "restore to {name}");
    }

    // A byte flipped in a chunk in the store, through the S3 API.
    let store = Archive::open_with(&url, Some(&creds)).unwrap();
    let chunks = store.list_wal().await.unwrap();
    let victim = chunks
        .iter()
        .find(|o| o.name.start > p1.offset && o.name.end <= p3.offset)
        .expect("a chunk between p1 and p3")
        .name
        .path();
    let good = store.get(&victim).await.unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    store.put(&victim, bad).await.unwrap();
    let err = restore_read(&url, &creds, &root.join("r-corrupt"), &[])
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!("archive object {victim} is corrupt")),
        "{err}"
    );
    store.put(&victim, good).await.unwrap();

    // Retention: a second backup, the window passes, a third backup's retention removes the
    // first backup and the chunks before the second (a restore to any moment of the last
    // second starts from the second).
    take_backup(&mut adm, "b2").await;
    let b2 = store
        .list_backups()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == "b2")
        .unwrap();
    let before = store.list_wal().await.unwrap().len();
    write_batch(&mut c, "f", 20).await;
    wait_for(Duration::from_secs(5), "the window to pass", || async {
        now_ms() > b2.start_time_ms + 1_000
    })
    .await;
    take_backup(&mut adm, "b3").await;
    wait_for(
        Duration::from_secs(60),
        "retention to delete b1 and the chunks only it needed",
        || {
            let store = store.clone();
            async move {
                let backups = store.list_backups().await.unwrap();
                let wal = store.list_wal().await.unwrap();
                !backups.iter().any(|m| m.id == "b1")
                    && !wal.iter().any(|o| o.name.end <= b2.start_offset)
            }
        },
    )
    .await;
    let backups: Vec<String> = store
        .list_backups()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        backups,
        ["b2", "b3"],
        "b2 is the base of the window's first moment"
    );
    let left = store.list_wal().await.unwrap();
    assert!(
        left.len() < before,
        "{before} chunks before, {} after",
        left.len()
    );
    write_batch(&mut c, "g", 10).await;
    let last = mark(&mut c).await;
    wait_archived(&mut c, last.offset).await;
    let got = restore_read(&url, &creds, &root.join("r-retained"), &[])
        .await
        .unwrap();
    assert_eq!(got, (last.digest, last.offset));
    stop_and_remove_dirs([e]);
    drop(weed);
    let _ = std::fs::remove_dir_all(&root);
}

/// Against S3: an engine started with a wrong secret key archives nothing (`failing`, writes
/// answered); the key file fixed in place (as the kubelet updates a Secret's volume), the
/// archiver opens the store again on its next attempt and catches up with nothing lost. Then
/// a failover while both engines archive to the one prefix (the replica promoted in term 1,
/// the old master demoted) leaves no gap: the archive restores to the new master's dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_credentials_and_a_failover_while_archiving_to_s3() {
    if !weed_built("fixed_credentials_and_a_failover_while_archiving_to_s3") {
        return;
    }
    let root = temp_dir("archive-s3-failover");
    let (weed, url, creds) = endpoint(&root, "failover");
    let key = creds.join("AWS_SECRET_ACCESS_KEY");
    let right = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, "not-the-key\n").unwrap();
    let settings = archive_settings(&url, Some(&creds));
    let m = start(&root.join("m"), &settings).await;
    let mut mc = m.conn().await;
    write_batch(&mut mc, "a", 40).await;
    wait_for(Duration::from_secs(60), "the archiver to fail", || {
        let mut c = mc.clone();
        async move {
            info_field(&mut c, "persistence", "archive_status")
                .await
                .as_deref()
                == Some("failing")
        }
    })
    .await;
    assert_eq!(archived(&mut mc).await, 0);
    std::fs::write(&key, right).unwrap();
    let now = master_offset(&mut mc).await;
    wait_archived(&mut mc, now).await;

    let r = start(&root.join("r"), &settings).await;
    let (mut madmin, mut radmin) = (admin_conn(m.port).await, admin_conn(r.port).await);
    let _: () = redis::cmd("REDISPAIR")
        .arg("DEMOTE")
        .arg("127.0.0.1")
        .arg(m.port)
        .arg(0)
        .query_async(&mut radmin)
        .await
        .unwrap();
    let mut rc = r.conn().await;
    take_backup(&mut madmin, "b1").await;
    write_batch(&mut mc, "b", 100).await;
    let before = master_offset(&mut mc).await;
    wait_archived(&mut mc, before / 2).await;
    promote_replica(&mut rc, &mut radmin, &mut madmin, r.port, before).await;
    write_batch(&mut rc, "c", 100).await;
    let end = master_offset(&mut rc).await;
    wait_archived(&mut rc, end).await;
    let want = digest(&mut rc).await;
    let store = Archive::open_with(&url, Some(&creds)).unwrap();
    let terms: std::collections::BTreeSet<u64> = store
        .list_wal()
        .await
        .unwrap()
        .iter()
        .map(|o| o.name.term)
        .collect();
    assert!(terms.contains(&0) && terms.contains(&1), "{terms:?}");
    let got = restore_read(&url, &creds, &root.join("restored"), &[])
        .await
        .unwrap();
    assert_eq!(got, (want, end), "the archive is the new master's history");
    stop_and_remove_dirs([m, r]);
    drop(weed);
    let _ = std::fs::remove_dir_all(&root);
}
