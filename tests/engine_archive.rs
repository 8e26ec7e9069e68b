//! Continuous archiving and restore with real engine processes and the filesystem target
//! (`archive-url file://...`): restores to three points (by offset and by time) and to the end
//! give exactly the dataset the engine had there; a corrupt or missing object stops a restore
//! with an error naming it; the archive continues across a failover (a replica promoted in a
//! higher term) with no gap; a backup exported as an RDB file (`archive-export`) passes
//! `redis-check-rdb` and loads into Debian's redis-server with the dataset of its point. The
//! same against an S3 endpoint: tests/engine_archive_s3.rs.

mod archive_support;
mod rdb_support;
mod repl_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use archive_support::{
    admin_conn, archive_settings, archived, engine_cmd, mark, now_ms, promote_replica,
    read_restored, restore_cmd, rfc3339, start, take_backup, wait_archived,
};
use redis::aio::MultiplexedConnection;
use repl_support::{digest, info_field, master_offset, stop_and_remove_dirs, EngineProcess};
use support::{free_port, temp_dir, wait_for};

/// Writes of every kind (strings, counters, lists, hashes, sets, sorted sets, deadlines far
/// ahead, deletions, a transaction), `n` rounds tagged `tag`.
async fn write_batch(c: &mut MultiplexedConnection, tag: &str, n: usize) {
    for i in 0..n {
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(format!("s:{tag}:{i}"))
            .arg(format!("v{i}-{tag}"));
        p.cmd("INCRBY").arg("counter").arg(i);
        p.cmd("RPUSH")
            .arg(format!("l:{}", i % 7))
            .arg(format!("{tag}{i}"));
        p.cmd("HSET").arg("h").arg(format!("{tag}:{i}")).arg(i);
        p.cmd("SADD")
            .arg(format!("set:{}", i % 5))
            .arg(format!("{tag}{i}"));
        p.cmd("ZADD").arg("z").arg(i).arg(format!("{tag}{i}"));
        p.cmd("PEXPIRE").arg(format!("s:{tag}:{i}")).arg(3_600_000);
        if i % 4 == 0 {
            p.cmd("DEL").arg(format!("s:{tag}:{}", i / 2));
        }
        p.atomic();
        let _: () = p.query_async(c).await.unwrap();
        if i % 10 == 0 {
            let _: () = redis::cmd("LPOP")
                .arg(format!("l:{}", i % 7))
                .query_async(c)
                .await
                .unwrap();
        }
    }
}

async fn restore_and_read(url: &str, name: &str, target: &[&str]) -> (String, u64) {
    let dir = temp_dir(name);
    let d = dir.to_str().unwrap();
    let mut args = vec!["--from", url, "--dir", d];
    args.extend_from_slice(target);
    let report = restore_cmd(&args).unwrap_or_else(|e| panic!("restore {target:?}: {e}"));
    assert!(report.contains("\"reached\":true"), "{report}");
    read_restored(&dir).await
}

/// One unlabelled sample from the engine's metrics endpoint (a bare HTTP/1.1 GET).
async fn metric(port: u16, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let body = String::from_utf8_lossy(&raw).into_owned();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn wal_objects(archive: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(archive.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpwal"))
        .collect();
    v.sort();
    v
}

/// Write; back up; write and record three points (offset, time, digest) with a second backup
/// in between; write more. Restores to the first point by offset, to the second and third by
/// time, and to the end each give exactly that point's dataset; a restore from the backup
/// named before a point also does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_to_three_points_in_time_and_offset_give_their_datasets() {
    let root = temp_dir("archive-pitr");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let e = start(&root.join("data"), &archive_settings(&url, None)).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 150).await;
    take_backup(&mut admin, "b1").await;
    write_batch(&mut c, "b", 100).await;
    let p1 = mark(&mut c).await;
    write_batch(&mut c, "c", 100).await;
    let p2 = mark(&mut c).await;
    take_backup(&mut admin, "b2").await;
    write_batch(&mut c, "d", 100).await;
    let p3 = mark(&mut c).await;
    write_batch(&mut c, "e", 50).await;
    let end = mark(&mut c).await;
    wait_archived(&mut c, end.offset).await;
    assert!(
        wal_objects(&arch).len() >= 10,
        "small chunks make many objects"
    );

    let (d, o) = restore_and_read(
        &url,
        "pitr-r1",
        &["--target-offset", &p1.offset.to_string()],
    )
    .await;
    assert_eq!(
        (d, o),
        (p1.digest.clone(), p1.offset),
        "restore to point 1 by offset"
    );
    let (d, _) = restore_and_read(&url, "pitr-r2", &["--target-time", &rfc3339(p2.time_ms)]).await;
    assert_eq!(d, p2.digest, "restore to point 2 by time");
    let (d, _) = restore_and_read(&url, "pitr-r3", &["--target-time", &rfc3339(p3.time_ms)]).await;
    assert_eq!(d, p3.digest, "restore to point 3 by time");
    let (d, o) = restore_and_read(&url, "pitr-latest", &[]).await;
    assert_eq!(
        (d, o),
        (end.digest.clone(), end.offset),
        "restore to the end"
    );
    // From the first backup, past the second one: the WAL carries it all the way.
    let (d, _) = restore_and_read(
        &url,
        "pitr-b1",
        &["--backup", "b1", "--target-time", &rfc3339(p3.time_ms)],
    )
    .await;
    assert_eq!(d, p3.digest, "restore from b1 to point 3");
    // Points of time differ: the restores above could not all pass by accident.
    assert_ne!(p1.digest, p2.digest);
    assert_ne!(p2.digest, p3.digest);

    // A target before every backup is refused, naming why.
    let err = restore_cmd(&[
        "--from",
        &url,
        "--dir",
        root.join("too-early").to_str().unwrap(),
        "--target-offset",
        "10",
    ])
    .unwrap_err();
    assert!(err.contains("no complete base backup"), "{err}");
    let _ = std::fs::remove_dir_all(root.join("too-early"));
    stop_and_remove_dirs([e]);
    let _ = std::fs::remove_dir_all(&root);
}

/// A flipped byte in a WAL chunk or in a backup's snapshot, and a chunk deleted from the
/// middle of the timeline, each stop a restore with an error naming the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_missing_object_stops_a_restore_naming_it() {
    let root = temp_dir("archive-damage");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let e = start(&root.join("data"), &archive_settings(&url, None)).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 50).await;
    take_backup(&mut admin, "b1").await;
    write_batch(&mut c, "b", 200).await;
    let end = master_offset(&mut c).await;
    wait_archived(&mut c, end).await;
    stop_and_remove_dirs([e]);
    let chunks = wal_objects(&arch);
    assert!(chunks.len() >= 6, "{chunks:?}");
    let victim = chunks[chunks.len() / 2].clone();
    let victim_name = format!("wal/{}", victim.file_name().unwrap().to_str().unwrap());
    let restore_into = |name: &str, from: &Path| {
        let d = root.join(name);
        restore_cmd(&["--from", &file_url(from), "--dir", d.to_str().unwrap()])
    };
    // Intact, it restores.
    restore_into("ok", &arch).unwrap();

    let corrupt = root.join("corrupt");
    copy_dir(&arch, &corrupt);
    let path = corrupt.join(&victim_name);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let err = restore_into("r-corrupt", &corrupt).unwrap_err();
    assert!(
        err.contains(&victim_name) && err.contains("corrupt"),
        "{err}"
    );

    let missing = root.join("missing");
    copy_dir(&arch, &missing);
    std::fs::remove_file(missing.join(&victim_name)).unwrap();
    let err = restore_into("r-missing", &missing).unwrap_err();
    let start_offset = victim_name
        .trim_start_matches("wal/")
        .split('-')
        .next()
        .unwrap()
        .trim_start_matches('0')
        .to_string();
    assert!(
        err.contains("missing") && err.contains(&format!("offset {start_offset}")),
        "{err}"
    );

    let bad_snap = root.join("bad-snapshot");
    copy_dir(&arch, &bad_snap);
    let snap = bad_snap.join("base/b1/snapshot.rdp");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&snap, bytes).unwrap();
    let err = restore_into("r-bad-snap", &bad_snap).unwrap_err();
    assert!(
        err.contains("base/b1/snapshot.rdp") && err.contains("corrupt"),
        "{err}"
    );

    let no_snap = root.join("no-snapshot");
    copy_dir(&arch, &no_snap);
    std::fs::remove_file(no_snap.join("base/b1/snapshot.rdp")).unwrap();
    let err = restore_into("r-no-snap", &no_snap).unwrap_err();
    assert!(
        err.contains("base/b1/snapshot.rdp") && err.contains("missing"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Master and replica archive to the same place; the replica is promoted in term 1 and the
/// old master demoted; writes go on on the new master. The archive is one timeline: chunks of
/// term 0 then of term 1, contiguous, and a restore of it gives the new master's dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_continues_across_a_failover_with_no_gap() {
    let root = temp_dir("archive-failover");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let settings = archive_settings(&url, None);
    let m = start(&root.join("m"), &settings).await;
    let r = start(&root.join("r"), &settings).await;
    let mut mc = m.conn().await;
    let (mut madmin, mut radmin) = (admin_conn(m.port).await, admin_conn(r.port).await);
    let _: () = redis::cmd("REDISPAIR")
        .arg("DEMOTE")
        .arg("127.0.0.1")
        .arg(m.port)
        .arg(0)
        .query_async(&mut radmin)
        .await
        .unwrap();
    // DEMOTE disconnects normal clients: connect after it.
    let mut rc = r.conn().await;
    write_batch(&mut mc, "a", 60).await;
    take_backup(&mut madmin, "b1").await;
    write_batch(&mut mc, "b", 100).await;
    // Archiving goes on under writes while the failover happens: part of the stream is
    // archived by the old master, the rest (from wherever it stopped) by the new one.
    let before = master_offset(&mut mc).await;
    let half = before / 2;
    wait_archived(&mut mc, half).await;
    assert!(
        !wal_objects(&arch).is_empty(),
        "the old master archived up to {}",
        archived(&mut mc).await
    );
    promote_replica(&mut rc, &mut radmin, &mut madmin, r.port, before).await;
    write_batch(&mut rc, "c", 100).await;
    let end = master_offset(&mut rc).await;
    wait_archived(&mut rc, end).await;
    let want = digest(&mut rc).await;

    let names: Vec<String> = wal_objects(&arch)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let term_of = |n: &str| n.split('-').nth(2).unwrap().parse::<u64>().unwrap();
    assert!(names.iter().any(|n| term_of(n) == 0), "{names:?}");
    assert!(names.iter().any(|n| term_of(n) == 1), "{names:?}");
    let (d, o) = restore_and_read(&url, "failover-restore", &[]).await;
    assert_eq!(
        (d, o),
        (want, end),
        "the restored archive is the new master's history"
    );
    stop_and_remove_dirs([m, r]);
    let _ = std::fs::remove_dir_all(&root);
}

/// With `archive-retention 1s`: once a second backup is more than a second old, the next
/// backup's retention deletes the first one and every chunk that ends before the second's
/// offset; a restore of what is left still gives the engine's dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_what_the_window_no_longer_needs() {
    let root = temp_dir("archive-retention");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let mut settings = archive_settings(&url, None);
    settings.push(("archive-retention", "1s".into()));
    let e = start(&root.join("data"), &settings).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 100).await;
    take_backup(&mut admin, "old").await;
    write_batch(&mut c, "b", 100).await;
    let now = master_offset(&mut c).await;
    wait_archived(&mut c, now).await;
    let before = wal_objects(&arch).len();
    take_backup(&mut admin, "new").await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(arch.join("base/new/manifest.json")).unwrap())
            .unwrap();
    let new_offset = manifest["start_offset"].as_u64().unwrap();
    let new_time = manifest["start_time_ms"].as_i64().unwrap();
    // Retention runs after each backup. Once `new` started more than a second ago it is the
    // base of a restore to the window's first moment, and `old` is needed by none: the next
    // backup's retention deletes it (not this one's: a restore to a second ago needs `old`).
    assert!(arch.join("base/old/manifest.json").exists());
    write_batch(&mut c, "c", 20).await;
    wait_for(Duration::from_secs(5), "the window to pass", || async {
        now_ms() > new_time + 1_000
    })
    .await;
    take_backup(&mut admin, "third").await;
    // Retention deletes the old backup and then the chunks only it needed, in one pass that
    // takes a moment: wait for both, the chunks checked exactly below.
    let chunk_end = |p: &std::path::PathBuf| -> u64 {
        let name = p.file_name().unwrap().to_str().unwrap();
        name.split('-').nth(1).unwrap().parse().unwrap()
    };
    wait_for(
        Duration::from_secs(30),
        "retention to delete the old backup and the chunks before the kept one",
        || {
            let old = arch.join("base/old");
            let gone = !old.join("manifest.json").exists() && !old.join("snapshot.rdp").exists();
            let chunks_left = wal_objects(&arch)
                .iter()
                .any(|p| chunk_end(p) <= new_offset);
            async move { gone && !chunks_left }
        },
    )
    .await;
    let left = wal_objects(&arch);
    assert!(
        left.len() < before,
        "{before} chunks before, {} after",
        left.len()
    );
    for p in &left {
        let name = p.file_name().unwrap().to_str().unwrap();
        let end: u64 = name.split('-').nth(1).unwrap().parse().unwrap();
        assert!(
            end > new_offset,
            "{name} ends before the kept backup at {new_offset}"
        );
    }
    write_batch(&mut c, "d", 20).await;
    let end = mark(&mut c).await;
    wait_archived(&mut c, end.offset).await;
    let (d, o) = restore_and_read(&url, "retention-restore", &[]).await;
    assert_eq!((d, o), (end.digest, end.offset));
    stop_and_remove_dirs([e]);
    let _ = std::fs::remove_dir_all(&root);
}

/// The store refuses uploads (the archive's directory replaced by a file): writes go on,
/// INFO says `failing` with the error, and once the store works again the archive catches up
/// by itself with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_never_blocks_writes_and_archiving_catches_up() {
    let root = temp_dir("archive-failing");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let metrics_port = free_port();
    let mut settings = archive_settings(&url, None);
    settings.push(("metrics-port", metrics_port.to_string()));
    let e = start(&root.join("data"), &settings).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 30).await;
    take_backup(&mut admin, "b1").await;
    let now = master_offset(&mut c).await;
    wait_archived(&mut c, now).await;
    // Break the store: `wal` becomes a plain file, so no chunk can be created under it.
    let wal = arch.join("wal");
    let saved = root.join("wal-saved");
    std::fs::rename(&wal, &saved).unwrap();
    std::fs::write(&wal, b"not a directory").unwrap();
    write_batch(&mut c, "b", 100).await;
    wait_for(
        Duration::from_secs(30),
        "the archiver to report failing",
        || {
            let mut c = c.clone();
            async move {
                info_field(&mut c, "persistence", "archive_status")
                    .await
                    .as_deref()
                    == Some("failing")
            }
        },
    )
    .await;
    let err = info_field(&mut c, "persistence", "archive_last_error")
        .await
        .unwrap();
    assert!(!err.is_empty());
    // What the chart's archive-lag alert reads: failing, with bytes waiting.
    assert_eq!(
        metric(metrics_port, "redispair_engine_archive_ok").await,
        Some(0.0)
    );
    let lag = metric(metrics_port, "redispair_engine_archive_lag_bytes").await;
    assert!(lag.is_some_and(|l| l > 0.0), "{lag:?}");
    assert!(metric(metrics_port, "redispair_engine_archive_lag_seconds")
        .await
        .is_some());
    // Writes are still answered while it fails.
    write_batch(&mut c, "c", 20).await;
    // Repair the store: the archive resumes where it stopped and catches up.
    std::fs::remove_file(&wal).unwrap();
    std::fs::rename(&saved, &wal).unwrap();
    let end = mark(&mut c).await;
    wait_archived(&mut c, end.offset).await;
    wait_for(Duration::from_secs(10), "the status to clear", || {
        let mut c = c.clone();
        async move {
            info_field(&mut c, "persistence", "archive_status")
                .await
                .as_deref()
                == Some("ok")
        }
    })
    .await;
    assert_eq!(
        metric(metrics_port, "redispair_engine_archive_ok").await,
        Some(1.0)
    );
    let (d, o) = restore_and_read(&url, "failing-restore", &[]).await;
    assert_eq!((d, o), (end.digest, end.offset));
    stop_and_remove_dirs([e]);
    let _ = std::fs::remove_dir_all(&root);
}

/// `restore --once`, as the operator's init container runs it (again at every pod restart): a
/// directory it completed is left alone (the engine may have written since), the leftovers of
/// one it did not complete are removed and the restore starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_once_restores_a_directory_exactly_once() {
    let root = temp_dir("archive-once");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let e = start(&root.join("data"), &archive_settings(&url, None)).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 50).await;
    take_backup(&mut admin, "b1").await;
    write_batch(&mut c, "b", 50).await;
    let (end, want) = (master_offset(&mut c).await, digest(&mut c).await);
    wait_archived(&mut c, end).await;
    stop_and_remove_dirs([e]);

    let dir = root.join("restored");
    let d = dir.to_str().unwrap();
    // An interrupted earlier attempt left a segment and no marker: cleaned, restored.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seg-00000000000000000000.log"), b"half-written").unwrap();
    let first = restore_cmd(&["--once", "--from", &url, "--dir", d]).unwrap();
    assert!(first.contains("\"reached\":true"), "{first}");
    assert!(dir.join("redispair-restored.json").exists());
    // The engine runs on it and writes.
    let r = EngineProcess::start(free_port(), &dir, &[]).await;
    let mut rc = r.conn().await;
    assert_eq!(
        (digest(&mut rc).await, master_offset(&mut rc).await),
        (want.clone(), end)
    );
    write_batch(&mut rc, "after", 20).await;
    drop(r);
    // The pod restarts: the init container runs again and touches nothing.
    let files = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&dir);
    let second = restore_cmd(&["--once", "--from", &url, "--dir", d]).unwrap();
    assert_eq!(second.trim(), first.trim());
    assert!(
        before == files(&dir),
        "restore --once changed a restored directory"
    );
    // Without --once, a directory with data is refused.
    let err = restore_cmd(&["--from", &url, "--dir", d]).unwrap_err();
    assert!(err.contains("already holds data"), "{err}");
    // A rollback (its own marker): restores over the engine's newer writes, once; the old
    // replication identity goes with the data it described.
    let rollback = [
        "--once",
        "--marker",
        "rollback-r1.json",
        "--from",
        &url,
        "--dir",
        d,
        "--target-offset",
        &end.to_string(),
    ];
    let third = restore_cmd(&rollback).unwrap();
    assert!(third.contains("\"reached\":true"), "{third}");
    assert!(!dir.join("node.state").exists());
    let r = EngineProcess::start(free_port(), &dir, &[]).await;
    let mut rc = r.conn().await;
    assert_eq!(
        (digest(&mut rc).await, master_offset(&mut rc).await),
        (want.clone(), end),
        "the rollback kept writes made after its target"
    );
    write_batch(&mut rc, "after-rollback", 5).await;
    drop(r);
    let before = files(&dir);
    assert_eq!(restore_cmd(&rollback).unwrap().trim(), third.trim());
    assert!(before == files(&dir), "a rollback's restore ran twice");
    let err = restore_cmd(&["--once", "--marker", "../x", "--from", &url, "--dir", d]).unwrap_err();
    assert!(err.contains("--marker"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A rollback onto the pair's own archive (`restore --once --marker ... --rollback`, as the
/// operator's init container runs it): the restored master, elected in a higher term, goes on
/// archiving, superseding the chunks of the discarded writes, and a restore of the archive's
/// end is its history: the writes before the target and after the rollback, none of the
/// discarded ones. Without `--rollback` the same directory is a copy that must keep off the
/// archive: its archiver refuses ("another pair's archive").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_master_supersedes_the_discarded_writes_in_its_archive() {
    let root = temp_dir("archive-rollback");
    let arch = root.join("archive");
    let url = file_url(&arch);
    let settings = archive_settings(&url, None);
    let data = root.join("data");
    let e = start(&data, &settings).await;
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    write_batch(&mut c, "a", 50).await;
    take_backup(&mut admin, "b1").await;
    write_batch(&mut c, "b", 50).await;
    let p = mark(&mut c).await;
    // The bad deploy: deletes and writes after the target, archived.
    for i in 0..20 {
        let _: () = redis::cmd("DEL")
            .arg(format!("a:{i}"))
            .query_async(&mut c)
            .await
            .unwrap();
    }
    write_batch(&mut c, "bad", 50).await;
    let bad_end = master_offset(&mut c).await;
    wait_archived(&mut c, bad_end).await;
    drop(c);
    drop(admin);
    let dir = data.clone();
    let d = dir.to_str().unwrap().to_string();
    drop(e);

    // Without --rollback: a copy of the archive's history up to p, pointed at the archive.
    let copy = root.join("copy");
    let target = p.offset.to_string();
    restore_cmd(&[
        "--from",
        &url,
        "--dir",
        copy.to_str().unwrap(),
        "--target-offset",
        &target,
    ])
    .unwrap();
    let cp = start(&copy, &settings).await;
    let mut cpadmin = admin_conn(cp.port).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("PROMOTE")
        .arg(1)
        .query_async(&mut cpadmin)
        .await
        .unwrap();
    let cpc = cp.conn().await;
    wait_for(
        Duration::from_secs(30),
        "the copy's archiver to refuse",
        || {
            let mut cpc = cpc.clone();
            async move {
                info_field(&mut cpc, "persistence", "archive_last_error")
                    .await
                    .is_some_and(|e| e.contains("another pair's archive"))
            }
        },
    )
    .await;
    drop(cpc);
    stop_and_remove_dirs([cp]);

    // The rollback: over the pair's own directory, once, then elected in term 1.
    let rollback = [
        "--once",
        "--marker",
        "rollback-r1.json",
        "--rollback",
        "--from",
        &url,
        "--dir",
        &d,
        "--target-offset",
        &target,
    ];
    let report = restore_cmd(&rollback).unwrap();
    assert!(report.contains("\"reached\":true"), "{report}");
    let r = start(&dir, &settings).await;
    let mut radmin = admin_conn(r.port).await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("PROMOTE")
        .arg(1)
        .query_async(&mut radmin)
        .await
        .unwrap();
    let mut rc = r.conn().await;
    assert_eq!(
        (digest(&mut rc).await, master_offset(&mut rc).await),
        (p.digest.clone(), p.offset),
        "the rolled-back master holds p"
    );
    write_batch(&mut rc, "after", 30).await;
    let end = master_offset(&mut rc).await;
    assert!(
        end < bad_end,
        "the test wants the new history to end before the old one"
    );
    wait_archived(&mut rc, end).await;
    let want = digest(&mut rc).await;
    assert_eq!(
        info_field(&mut rc, "persistence", "archive_status")
            .await
            .as_deref(),
        Some("ok")
    );
    let (d2, o2) = restore_and_read(&url, "rollback-restore", &[]).await;
    assert_eq!(
        (d2, o2),
        (want, end),
        "the archive's end is the rolled-back history"
    );
    drop(rc);
    drop(radmin);
    stop_and_remove_dirs([r]);
    let _ = std::fs::remove_dir_all(&root);
}

/// Run `redispair-engine archive-export` with `args`; Ok(stdout) or Err(stderr).
fn export_cmd(args: &[&str]) -> Result<String, String> {
    engine_cmd("archive-export", args)
}

/// Leaving with the data: every type (compact and plain encodings, expiries, three databases,
/// a function library), a base backup, more writes, a recorded point (each key's content and
/// deadline), more writes that change those keys. `archive-export` to that point's offset
/// writes an RDB file that passes `redis-check-rdb` and, loaded into Debian's redis-server,
/// holds exactly the point's keys, values and deadlines and the library; its scratch
/// directory is gone. A target beyond the archive fails, naming it, and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_exported_as_an_rdb_file_loads_into_redis_server_as_of_its_point() {
    let root = temp_dir("archive-export");
    let archive = root.join("archive");
    let url = file_url(&archive);
    let e = start(&root.join("data"), &archive_settings(&url, None)).await;
    let engine_url = format!("redis://127.0.0.1:{}/", e.port);
    let mut c = e.conn().await;
    let mut admin = admin_conn(e.port).await;
    rdb_support::fill(&engine_url).await;
    take_backup(&mut admin, "b1").await;
    write_batch(&mut c, "a", 50).await;
    let expected = rdb_support::dataset(&engine_url).await;
    let point = master_offset(&mut c).await;
    // Changes the point's keys (counter, lists, hash, sets, sorted set) and adds others.
    write_batch(&mut c, "b", 50).await;
    let end = master_offset(&mut c).await;
    wait_archived(&mut c, end).await;
    assert_ne!(rdb_support::dataset(&engine_url).await, expected);

    let out_dir = root.join("export");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("dump.rdb");
    let report = export_cmd(&[
        "--from",
        &url,
        "--target-offset",
        &point.to_string(),
        out.to_str().unwrap(),
    ])
    .unwrap_or_else(|e| panic!("archive-export: {e}"));
    assert!(report.contains("\"reached\":true"), "{report}");
    assert!(report.contains(&format!("\"offset\":{point}")), "{report}");
    // Only the RDB file is left beside it: the scratch restore is removed.
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["dump.rdb"]);
    let check = Command::new("redis-check-rdb")
        .arg(&out)
        .output()
        .expect("redis-check-rdb is installed");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused the export:\n{text}"
    );
    let redis = rdb_support::RedisServer::start(&out_dir, &[]).await;
    assert_eq!(rdb_support::dataset(&redis.url()).await, expected);
    assert_eq!(
        rdb_support::fcall_answer(&redis.url()).await,
        Ok(redis::Value::Int(42))
    );
    drop(redis);

    // A point the archive does not reach: a clear error, no file, no scratch directory.
    let beyond = (end + 1_000_000).to_string();
    let err = export_cmd(&[
        "--from",
        &url,
        "--target-offset",
        &beyond,
        out_dir.join("late.rdb").to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(err.contains(&beyond), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["dump.rdb"]);
    stop_and_remove_dirs([e]);
    let _ = std::fs::remove_dir_all(&root);
}
