//! Support for persistence and replication tests: engines as real processes (so they can be
//! killed with SIGKILL), a master and a replica started together (in process or as
//! processes), REPLICAOF, a TCP proxy the test can cut, and dataset comparison. Does I/O:
//! processes, sockets, files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redispair::engine::server::ServerHandle;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

pub use crate::support::free_port;
use crate::support::{redis_conn, redis_conn_to, start_engine, temp_dir};

/// `--name value` settings of an engine.
pub type Settings<'a> = &'a [(&'a str, &'a str)];

/// Two engines, one to become the master and one its replica, and a connection to each:
/// `(master, replica, master's connection, replica's connection)`.
pub type Pair<E> = (E, E, MultiplexedConnection, MultiplexedConnection);

/// An engine running as a child process.
pub struct EngineProcess {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl EngineProcess {
    /// Start `redispair-engine` on `port` with `dir` and extra `--name value` settings, and wait
    /// until it answers PING.
    pub async fn start(port: u16, dir: &Path, extra: &[(&str, &str)]) -> EngineProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_redispair-engine"));
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir)
            .arg("--persistence")
            .arg("on")
            .arg("--loglevel")
            .arg("warning")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            cmd.arg(format!("--{k}")).arg(v);
        }
        let child = cmd.spawn().expect("spawn engine");
        let mut p = EngineProcess {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        p.wait_ready().await;
        p
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A child that exited did not bind: whatever answers on the port is not ours.
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("engine on {} exited at start: {status}", self.port);
            }
            // Ready when *this* process answers: a server that took the port meanwhile
            // would answer PING too.
            if let Ok(mut c) = self.try_conn().await {
                let r: redis::RedisResult<String> =
                    redis::cmd("INFO").arg("server").query_async(&mut c).await;
                let own_pid = format!("process_id:{}", self.child.id());
                if r.is_ok_and(|info| info.lines().any(|l| l.trim_end() == own_pid)) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "engine on {} did not start",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn try_conn(&self) -> redis::RedisResult<MultiplexedConnection> {
        redis_conn_to(&format!("redis://127.0.0.1:{}/", self.port)).await
    }

    pub async fn conn(&self) -> MultiplexedConnection {
        self.try_conn().await.expect("connect")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start two engines in this process with their own settings (on top of
/// `support::start_engine`'s: a pure cache unless they say `persistence on`), one to become the
/// master and one its replica (not replicating yet), and connect to each: `(m, r, mc, rc)`.
pub async fn start_pair(master: Settings<'_>, replica: Settings<'_>) -> Pair<ServerHandle> {
    let m = start_engine(master).await;
    let r = start_engine(replica).await;
    let mc = redis_conn(&m).await;
    let rc = redis_conn(&r).await;
    (m, r, mc, rc)
}

/// Start two engines as processes (they can be killed with SIGKILL and restarted on their
/// port and directory), each on a free port in a fresh directory `{tag}-master` /
/// `{tag}-replica` (`tag` unique among the tests of one binary) with its own extra settings,
/// one to become the master and one its replica (not replicating yet), and connect to each:
/// `(mp, rp, mc, rc)`.
pub async fn start_process_pair(
    tag: &str,
    master: Settings<'_>,
    replica: Settings<'_>,
) -> Pair<EngineProcess> {
    let mdir = temp_dir(&format!("{tag}-master"));
    let rdir = temp_dir(&format!("{tag}-replica"));
    let mp = EngineProcess::start(free_port(), &mdir, master).await;
    let rp = EngineProcess::start(free_port(), &rdir, replica).await;
    let mc = mp.conn().await;
    let rc = rp.conn().await;
    (mp, rp, mc, rc)
}

/// Stop the engines (SIGKILL), in the order given, then remove their directories: the end of
/// a test that passed (one that failed leaves the directories to look at).
pub fn stop_and_remove_dirs<const N: usize>(engines: [EngineProcess; N]) {
    let dirs: Vec<PathBuf> = engines.iter().map(|e| e.dir.clone()).collect();
    drop(engines);
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The port an in-process engine listens on.
pub fn port_of(h: &ServerHandle) -> u16 {
    h.addr().port()
}

/// REPLICAOF 127.0.0.1 `port`.
pub async fn replicaof(c: &mut MultiplexedConnection, port: u16) {
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query_async(c)
        .await
        .unwrap();
}

/// REPLICAOF NO ONE: the replica becomes a master.
pub async fn replicaof_no_one(c: &mut MultiplexedConnection) {
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(c)
        .await
        .unwrap();
}

/// A TCP proxy on loopback forwarding to `target`; `cut()` drops every connection and refuses
/// new ones until `restore()`.
pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    cut_gen: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let cut_gen = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (o, g) = (open.clone(), cut_gen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                if !o.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let mut rx = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            open,
            cut_gen,
        }
    }
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut_gen.send_modify(|g| *g += 1);
    }
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Every key of every database with its type, TTL presence and content, in a canonical order:
/// two engines with equal dumps hold the same dataset.
pub async fn dump_dataset(c: &mut MultiplexedConnection) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..16 {
        let _: () = redis::cmd("SELECT").arg(db).query_async(c).await.unwrap();
        let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query_async(c).await.unwrap();
        keys.sort();
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query_async(c).await.unwrap();
            let content = match t.as_str() {
                "string" => {
                    let v: Option<Vec<u8>> =
                        redis::cmd("GET").arg(&k).query_async(c).await.unwrap();
                    format!("{v:?}")
                }
                "list" => {
                    let v: Vec<Vec<u8>> = redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query_async(c)
                        .await
                        .unwrap();
                    format!("{v:?}")
                }
                "hash" => {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query_async(c).await.unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<Vec<u8>> =
                        redis::cmd("SMEMBERS").arg(&k).query_async(c).await.unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "zset" => {
                    let v: Vec<(Vec<u8>, String)> = redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(c)
                        .await
                        .unwrap();
                    format!("{v:?}")
                }
                "stream" => {
                    let v: redis::Value = redis::cmd("XRANGE")
                        .arg(&k)
                        .arg("-")
                        .arg("+")
                        .query_async(c)
                        .await
                        .unwrap();
                    let g: redis::Value = redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&k)
                        .query_async(c)
                        .await
                        .unwrap();
                    format!("{v:?} {g:?}")
                }
                "none" => continue,
                other => other.to_string(),
            };
            let ttl: i64 = redis::cmd("PEXPIRETIME")
                .arg(&k)
                .query_async(c)
                .await
                .unwrap_or(-3);
            out.push(format!(
                "{db} {} {t} {ttl} {content}",
                String::from_utf8_lossy(&k)
            ));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query_async(c).await.unwrap();
    out
}

/// One field of INFO.
pub async fn info_field(
    c: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query_async(c).await.ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// DEBUG DIGEST: one hash of the whole dataset.
pub async fn digest(c: &mut MultiplexedConnection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query_async(c)
        .await
        .unwrap()
}

/// INFO replication's `master_repl_offset`.
pub async fn master_offset(c: &mut MultiplexedConnection) -> u64 {
    info_field(c, "replication", "master_repl_offset")
        .await
        .unwrap()
        .parse()
        .unwrap()
}
