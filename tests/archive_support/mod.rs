//! Shared by the archive tests (tests/engine_archive.rs with the filesystem target,
//! tests/engine_archive_s3.rs against SeaweedFS): engines that archive, waits on the archived
//! offset and on base backups, recorded points (offset, time, digest), and the engine's
//! `restore` command. Starts processes and waits on them; no assertions of its own beyond a
//! backup that fails.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::repl_support::{digest, info_field, master_offset, stop_and_remove_dirs, EngineProcess};
use crate::support::{free_port, redis_conn_to, wait_for};

/// An engine archiving to `url` (admin user `op`/`secret`), with small chunks so a few hundred
/// writes make many objects; the store's credentials read from `credentials` when given (as a
/// mounted Secret), else from the environment.
pub fn archive_settings(url: &str, credentials: Option<&Path>) -> Vec<(&'static str, String)> {
    let mut s = vec![
        ("admin-user", "op".to_string()),
        ("admin-password", "secret".into()),
        ("archive-url", url.into()),
        ("archive-timeout", "50".into()),
        ("archive-chunk-size", "4096".into()),
    ];
    if let Some(dir) = credentials {
        s.push(("archive-credentials-dir", dir.to_str().unwrap().into()));
    }
    s
}

pub async fn start(dir: &Path, settings: &[(&'static str, String)]) -> EngineProcess {
    let s: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    EngineProcess::start(free_port(), dir, &s).await
}

/// A connection as the admin user of [`archive_settings`] (REDISPAIR BACKUP needs it).
pub async fn admin_conn(port: u16) -> MultiplexedConnection {
    redis_conn_to(&format!("redis://op:secret@127.0.0.1:{port}/"))
        .await
        .unwrap()
}

pub async fn archived(c: &mut MultiplexedConnection) -> u64 {
    info_field(c, "persistence", "archived_offset")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Wait until the engine's archive holds its stream up to `upto`.
pub async fn wait_archived(c: &mut MultiplexedConnection, upto: u64) {
    wait_for(Duration::from_secs(60), "the archive to catch up", || {
        let mut c = c.clone();
        async move { archived(&mut c).await >= upto }
    })
    .await;
}

/// Ask for base backup `id` and wait until it is uploaded (a failed one fails the test).
pub async fn take_backup(admin: &mut MultiplexedConnection, id: &str) {
    let _: () = redis::cmd("REDISPAIR")
        .arg("BACKUP")
        .arg(id)
        .query_async(admin)
        .await
        .unwrap();
    wait_for(Duration::from_secs(60), "the base backup", || {
        let mut c = admin.clone();
        async move {
            let m: Vec<(String, redis::Value)> = redis::cmd("REDISPAIR")
                .arg("BACKUP-STATUS")
                .arg(id)
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
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// A point in the history: where the stream was, when, and the dataset's digest there.
#[derive(Debug, Clone)]
pub struct Point {
    pub offset: u64,
    pub time_ms: i64,
    pub digest: String,
}

/// Record the current point, then wait until the wall clock has moved past it, so every
/// later write carries a later millisecond than `time_ms` (a wait on a condition).
pub async fn mark(c: &mut MultiplexedConnection) -> Point {
    let p = Point {
        offset: master_offset(c).await,
        digest: digest(c).await,
        time_ms: now_ms(),
    };
    wait_for(Duration::from_secs(5), "the clock to move", || async {
        now_ms() > p.time_ms
    })
    .await;
    p
}

/// Run `redispair-engine restore` with `args`; Ok(stdout) or Err(stderr).
pub fn restore_cmd(args: &[&str]) -> Result<String, String> {
    engine_cmd("restore", args)
}

/// Run `redispair-engine SUBCOMMAND` with `args`; Ok(stdout) or Err(stderr).
pub fn engine_cmd(subcommand: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .arg(subcommand)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Start an engine on a restored directory and return its (digest, offset).
pub async fn read_restored(dir: &Path) -> (String, u64) {
    let e = EngineProcess::start(free_port(), dir, &[]).await;
    let mut c = e.conn().await;
    let r = (digest(&mut c).await, master_offset(&mut c).await);
    stop_and_remove_dirs([e]);
    r
}

/// The failover the archive tests make by hand: wait until the replica (`rc`) has the master's
/// stream up to `upto`, promote it in term 1 and demote the old master to follow it.
pub async fn promote_replica(
    rc: &mut MultiplexedConnection,
    radmin: &mut MultiplexedConnection,
    madmin: &mut MultiplexedConnection,
    replica_port: u16,
    upto: u64,
) {
    wait_for(Duration::from_secs(60), "the replica to catch up", || {
        let mut rc = rc.clone();
        async move { master_offset(&mut rc).await >= upto }
    })
    .await;
    let _: () = redis::cmd("REDISPAIR")
        .arg("PROMOTE")
        .arg(1)
        .query_async(radmin)
        .await
        .unwrap();
    let _: () = redis::cmd("REDISPAIR")
        .arg("DEMOTE")
        .arg("127.0.0.1")
        .arg(replica_port)
        .arg(1)
        .query_async(madmin)
        .await
        .unwrap();
}
