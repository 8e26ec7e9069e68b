//! The TCP server: listeners, the accept loop, periodic tasks (active expiry), start-up
//! recovery and graceful shutdown; beside it the drivers that hold the `core::Engine`: `master`
//! and `replica` (replication links), `snapshot` (the background snapshot) and `archiver`. The
//! top layer: it may use every module below. Does I/O: sockets, timers and the data directory.

pub mod archiver;
pub mod connection;
pub mod master;
pub mod metrics_http;
pub mod replica;
pub mod snapshot;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::engine::clock::now_ms;
use crate::engine::config::Config;
use crate::engine::core::Engine;
use crate::engine::persistence::{self, writer::FsyncPolicy, writer::LogWriter, NodeState};
use crate::engine::replication::stream::Stream;
use crate::engine::state::EngineState;
use crate::engine::tls::{Socket, Tls};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid bind address '{0}'")]
    BadAddress(String),
    #[error("cannot start from the data directory: {0}")]
    Recovery(#[from] crate::engine::persistence::PersistError),
    #[error("cannot lock the data directory {0}: {1}")]
    DirLock(String, std::io::Error),
    #[error("archiving: {0}")]
    Archive(String),
    #[error("TLS: {0}")]
    Tls(#[from] crate::engine::tls::TlsError),
}

/// A started server: its addresses and a way to stop it. Used by the binary and by tests that
/// run the engine in-process on loopback.
pub struct ServerHandle {
    pub engine: Arc<Engine>,
    /// Plaintext listeners (empty when `port` is 0 and `tls-port` is set).
    pub addrs: Vec<SocketAddr>,
    /// TLS listeners (empty without `tls-port`).
    pub tls_addrs: Vec<SocketAddr>,
    /// Where the Prometheus endpoint listens (empty when `metrics-port` is 0).
    pub metrics_addrs: Vec<SocketAddr>,
    pub task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The first plaintext address, else the first TLS one.
    pub fn addr(&self) -> SocketAddr {
        self.addrs
            .first()
            .or(self.tls_addrs.first())
            .copied()
            .expect("a started server listens somewhere")
    }
    /// Stop and wait until the accept loop and periodic tasks have ended.
    pub async fn stop(self) {
        self.engine.request_shutdown();
        let _ = self.task.await;
        // The server has stopped writing: give the data directory up, so another engine in
        // this process (a test's restart) can take it. A process that exits releases it anyway.
        let lock = self.engine.state.lock().persist.dir_lock.take();
        if let Some(file) = lock {
            let _ = rustix::fs::flock(&*file, rustix::fs::FlockOperation::Unlock);
        }
    }
}

/// Bind the configured addresses and start serving in the background of the current runtime.
pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
    let port: u16 = config
        .get("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(6379);
    let binds: Vec<String> = config
        .get("bind")
        .unwrap_or("127.0.0.1")
        .split_whitespace()
        .map(|s| s.trim_start_matches('-').to_string())
        .collect();
    let tls = match crate::engine::tls::TlsSettings::from_config(&config)? {
        Some(settings) => Some(Tls::load(settings)?),
        None => None,
    };
    // The link to a master outside the pair: inconsistent settings stop start-up; files that
    // do not load are a warning now, and the link's down reason when `master-tls` is switched
    // on (they are read at every connect). Unlike tls-*, they are not needed to serve: a pod
    // whose migration completed keeps its flags while the source's Secrets may be gone.
    let master_tls = crate::engine::tls::MasterTlsSettings::from_config(&config)?;
    if master_tls.has_files() {
        if let Err(e) = master_tls.connector("localhost") {
            tracing::warn!(error = %e, "master-tls files do not load; a link with master-tls yes will fail until they do");
        }
    }
    let tls_port = tls.as_ref().map_or(0, |t| t.settings.port);
    // As Redis: `port 0` with a TLS port serves TLS only. Without TLS, 0 asks for an ephemeral
    // port (in-process tests; there is no Unix socket to fall back on).
    let plaintext = port != 0 || tls_port == 0;
    let mut ips = Vec::new();
    for b in &binds {
        let ip: std::net::IpAddr = b.parse().map_err(|_| ServerError::BadAddress(b.clone()))?;
        ips.push(ip);
    }
    let bind = |ip: std::net::IpAddr, port: u16| async move {
        let addr = SocketAddr::new(ip, port);
        let bind_error = |source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        };
        let l = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = l.local_addr().map_err(bind_error)?;
        Ok::<_, ServerError>((l, local))
    };
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    let mut tls_addrs = Vec::new();
    for ip in &ips {
        if plaintext {
            let (l, local) = bind(*ip, port).await?;
            addrs.push(local);
            listeners.push((l, None));
        }
        if let Some(tls) = tls.as_ref().filter(|_| tls_port != 0) {
            let (l, local) = bind(*ip, tls_port).await?;
            tls_addrs.push(local);
            listeners.push((l, Some(tls.clone())));
        }
    }
    // In-pod probes and hooks speak plaintext to 127.0.0.1 when the network gets TLS only.
    let loopback_port: u16 = config
        .get("loopback-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut loopback_addrs = Vec::new();
    if loopback_port != 0 {
        let (l, local) = bind(std::net::IpAddr::from([127, 0, 0, 1]), loopback_port).await?;
        loopback_addrs.push(local);
        listeners.push((l, None));
    }
    // The metrics endpoint binds now, with the client port, so a taken port fails start-up
    // instead of leaving a pod that cannot be scraped.
    let metrics_port: u16 = config
        .get("metrics-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut metrics_listeners = Vec::new();
    let mut metrics_addrs = Vec::new();
    if metrics_port != 0 {
        for ip in &ips {
            let (l, local) = bind(*ip, metrics_port).await?;
            metrics_addrs.push(local);
            metrics_listeners.push(l);
        }
    }
    let engine = Engine::with_tls(config, tls);
    engine.state.lock().port = addrs
        .first()
        .or(tls_addrs.first())
        .map_or(port, |a| a.port());
    lock_data_dir(&engine).await?;
    open_data(&engine)?;
    start_archiver(&engine)?;
    {
        let mut st = engine.state.lock();
        st.refresh_lease_setting();
        semisync_tick(&engine, &mut st, now_ms());
    }
    info!(addresses = ?addrs, tls = ?tls_addrs, loopback = ?loopback_addrs, metrics = ?metrics_addrs, "engine ready to accept connections");
    let task = tokio::spawn(serve(engine.clone(), listeners, metrics_listeners));
    Ok(ServerHandle {
        engine,
        addrs,
        tls_addrs,
        metrics_addrs,
        task,
    })
}

async fn serve(
    engine: Arc<Engine>,
    listeners: Vec<(TcpListener, Option<Arc<Tls>>)>,
    metrics_listeners: Vec<TcpListener>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for (l, tls) in listeners {
        tasks.spawn(accept_loop(engine.clone(), l, tls));
    }
    if let Some(tls) = engine.tls.clone() {
        tasks.spawn(tls_reload_task(tls));
    }
    for l in metrics_listeners {
        tasks.spawn(metrics_http::serve(engine.clone(), l));
    }
    tasks.spawn(periodic_tasks(engine.clone()));
    tasks.spawn(persistence_task(engine.clone()));
    tasks.spawn(replication_task(engine.clone()));
    let shutdown = engine.shutdown.notified();
    tokio::pin!(shutdown);
    // The flag may have been set before we started waiting.
    if !engine.state.lock().shutdown_requested {
        shutdown.await;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    // Give connections the chance to finish writing replies already computed: each connection
    // sees the flag after its current batch and closes.
    let kill: Vec<_> = engine
        .state
        .lock()
        .clients
        .values()
        .map(|c| c.handle.clone())
        .collect();
    for h in kill {
        h.kill();
    }
    close_data(&engine);
    info!("engine stopped");
}

/// In-memory backlog size: the whole `repl-backlog-size` without persistence; with it, older
/// positions are read back from the segments, so memory holds only the recent part.
fn backlog_cap(st: &EngineState, persistent: bool) -> usize {
    let size = st
        .config
        .get("repl-backlog-size")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1 << 20)
        .max(1);
    if persistent {
        size.min(16 << 20)
    } else {
        size
    }
}

/// Wait until this process holds the data directory's lock (see
/// `persistence::try_lock_dir`): another engine still running on the same directory (a
/// force-deleted pod's, until the kubelet stops it) must be gone before this one reads or
/// writes anything there. Nothing is served meanwhile; the wait is logged.
async fn lock_data_dir(engine: &Arc<Engine>) -> Result<(), ServerError> {
    let dir = {
        let st = engine.state.lock();
        if st.config.get("persistence") != Some("on") {
            return Ok(());
        }
        std::path::PathBuf::from(st.config.get("dir").unwrap_or("."))
    };
    let started = std::time::Instant::now();
    let mut logged = false;
    loop {
        match persistence::try_lock_dir(&dir) {
            Ok(Some(file)) => {
                if logged {
                    info!(dir = %dir.display(), waited_ms = started.elapsed().as_millis() as u64, "data directory lock taken");
                }
                engine.state.lock().persist.dir_lock = Some(Arc::new(file));
                return Ok(());
            }
            Ok(None) => {
                if !logged {
                    warn!(dir = %dir.display(), "another process holds the data directory; waiting for it to exit");
                    logged = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(ServerError::DirLock(dir.display().to_string(), e)),
        }
    }
}

/// Recover the dataset and the node's identity from `dir`, then start the log writer.
fn open_data(engine: &Arc<Engine>) -> Result<(), ServerError> {
    let mut st = engine.state.lock();
    let enabled = st.config.get("persistence") == Some("on");
    st.persist.enabled = enabled;
    if !enabled {
        let cap = backlog_cap(&st, false);
        st.stream = Stream::new(0, cap);
        // Without the log, `dir/dbfilename` is the dataset, as for redis-server.
        import_dump_rdb(&mut st)?;
        return Ok(());
    }
    let dir = std::path::PathBuf::from(st.config.get("dir").unwrap_or("."));
    st.persist.dir = dir.clone();
    st.persist.loading = true;
    let now = now_ms();
    let rec = crate::engine::state::replay::recover(&mut st, &dir, now)?;
    st.persist.loading = false;
    st.dirty_since_save = 0;
    if let Some((file, at)) = &rec.torn {
        warn!(file, at, "recovered after dropping a torn last record");
    }
    info!(
        offset = rec.offset,
        records = rec.records,
        commands = rec.commands,
        "data loaded from the log"
    );
    let cap = backlog_cap(&st, true);
    st.stream = Stream::new(rec.offset, cap);
    st.stream.cur_db = rec.cur_db;
    if let Some(node) = NodeState::load(&dir) {
        st.repl.term = node.term;
        if node.master.is_some() || node.clean_offset == Some(rec.offset) {
            // A replica's log is a prefix of its master's history whatever it lost; a master
            // that shut down cleanly has every byte it ever sent.
            st.repl.replid = node.replid;
            st.repl.replid2 = node.replid2;
            st.repl.second_offset = node.second_offset;
        } else {
            // A master that crashed may have lost a tail a replica received: it must not write
            // a different history under the same id. The old id stays valid up to here.
            st.repl.replid2 = node.replid;
            st.repl.second_offset = rec.offset as i64;
        }
        st.repl.master = node.master;
    }
    if let Some((host, port)) = st.repl.master.clone() {
        // A replica resumes following its master (by partial resync from its position).
        crate::engine::cmd::replication::become_replica(&mut st, host, port, false, false);
    }
    st.persist.recovered = Some(rec.clone());
    if let Some(s) = rec.snapshot {
        st.persist.last_snapshot_offset = Some(s);
    }
    let policy = FsyncPolicy::parse(st.config.get("appendfsync").unwrap_or("everysec"));
    let writer = LogWriter::start(dir.clone(), rec.offset, policy, engine.gate.clone())?;
    st.stream.log = Some(writer);
    engine.gate.set_need_durable(policy == FsyncPolicy::Always);
    st.repl.node_state().save(&dir)?;
    // A fresh data directory (nothing recovered) of a node that follows no master imports
    // `dir/dbfilename` when there is one, then snapshots it at once: from then on the log is
    // the dataset, and the RDB file is not read again. A node with a log never reads it: the
    // log is newer than any file put beside it.
    if rec.snapshot.is_none() && rec.records == 0 && st.repl.master.is_none() {
        let loaded = import_dump_rdb(&mut st)?;
        if loaded.is_some_and(|l| l.keys_loaded > 0 || l.functions > 0) {
            crate::engine::state::snapshot::save_inline(&mut st, now)?;
        }
    }
    Ok(())
}

/// Load `dir/dbfilename` if it exists (start-up: the databases are empty).
fn import_dump_rdb(
    st: &mut EngineState,
) -> Result<Option<crate::engine::state::dump::Loaded>, ServerError> {
    let path = crate::engine::state::dump::rdb_path(st);
    st.persist.loading = true;
    let r = crate::engine::state::dump::load_file(st, &path, now_ms());
    st.persist.loading = false;
    match r {
        Ok(Some(l)) => {
            info!(
                file = %path.display(),
                keys = l.keys_loaded,
                expired_skipped = l.expired_skipped,
                functions = l.functions,
                "RDB file loaded"
            );
            Ok(Some(l))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Start the archiver when `archive-url` is set (it needs the write log: persistence on).
fn start_archiver(engine: &Arc<Engine>) -> Result<(), ServerError> {
    let (url, persistent, retention, credentials_dir) = {
        let st = engine.state.lock();
        (
            st.config.get("archive-url").unwrap_or("").to_string(),
            st.persist.enabled,
            st.config.get("archive-retention").unwrap_or("").to_string(),
            st.config
                .get("archive-credentials-dir")
                .unwrap_or("")
                .to_string(),
        )
    };
    if url.is_empty() {
        return Ok(());
    }
    if !persistent {
        return Err(ServerError::Archive(
            "archive-url needs persistence on (the archive is made of the write log)".into(),
        ));
    }
    if crate::engine::archive::layout::parse_duration_ms(&retention).is_none() {
        return Err(ServerError::Archive(format!(
            "archive-retention '{retention}' is not a duration (7d, 12h, 30m, 45s)"
        )));
    }
    let credentials_dir =
        (!credentials_dir.is_empty()).then(|| std::path::PathBuf::from(credentials_dir));
    let status =
        crate::engine::server::archiver::start(engine.clone(), &url, credentials_dir.as_deref())
            .map_err(|e| ServerError::Archive(e.to_string()))?;
    let mut st = engine.state.lock();
    st.persist.archive_pin = Some(status.archived.clone());
    st.archive = Some(status);
    Ok(())
}

/// Flush the log and record a clean shutdown (the node keeps its replication id).
fn close_data(engine: &Arc<Engine>) {
    let mut st = engine.state.lock();
    if let Some(a) = &st.archive {
        a.stop.store(true, std::sync::atomic::Ordering::Release);
    }
    let Some(writer) = st.stream.log.take() else {
        return;
    };
    writer.flush_sync();
    writer.stop();
    let mut node = st.repl.node_state();
    node.clean_offset = Some(st.stream.offset);
    if let Err(e) = node.save(&st.persist.dir) {
        warn!(error = %e, "cannot record the clean shutdown");
    }
}

/// Starts the replica link when the role or master changes, and runs the master's periodic
/// replication duties: semi-sync degrade/recovery and the write lease.
async fn replication_task(engine: Arc<Engine>) {
    let wake = engine.state.lock().repl.wake.clone();
    let mut running: Option<u64> = None;
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let spawn = {
            let mut st = engine.lock_state().await;
            let r = &st.repl;
            let want = r.role == crate::engine::replication::Role::Replica
                && r.master.is_some()
                && !r.link.detached
                && running != Some(r.link_generation);
            let generation = r.link_generation;
            semisync_tick(&engine, &mut st, now_ms());
            st.lease_tick();
            crate::engine::server::master::expire_waits(&mut st, now_ms());
            want.then_some(generation)
        };
        if let Some(generation) = spawn {
            running = Some(generation);
            tokio::spawn(crate::engine::server::replica::run_link(
                engine.clone(),
                generation,
            ));
        }
    }
}

/// Starts snapshots: asked for by BGSAVE / BGREWRITEAOF, or automatically when the log has grown
/// by `auto-aof-rewrite-min-size` (Redis's name for the same trigger; default 64mb) since the
/// last one (compaction, after which older segments are dropped).
async fn persistence_task(engine: Arc<Engine>) {
    let wake = engine.state.lock().persist.wake.clone();
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let start = {
            let mut st = engine.lock_state().await;
            let p = &st.persist;
            let grown = st.stream.offset - p.last_snapshot_offset.unwrap_or(0);
            let want = compaction_due(
                p.snapshot_requested,
                grown,
                st.config.settings.auto_compaction_bytes,
            );
            if !p.enabled && p.snapshot_requested && !p.snapshot_in_progress {
                // RDB mode (persistence off): BGSAVE writes `dir/dbfilename`. The dataset is
                // encoded under the lock (no copy-before-write for RDB files: see
                // docs/compatibility.md) and written and fsynced outside it.
                st.persist.snapshot_requested = false;
                st.persist.snapshot_in_progress = true;
                let now = now_ms();
                st.persist.snapshot_started_ms = now;
                let dirty = st.dirty_since_save;
                let path = crate::engine::state::dump::rdb_path(&st);
                let data = crate::engine::state::dump::encode(&st, None, now);
                drop(st);
                let engine = engine.clone();
                tokio::task::spawn_blocking(move || {
                    let r = crate::engine::state::dump::write_file(&path, &data);
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "background RDB save failed");
                    } else {
                        info!(file = %path.display(), bytes = data.len(), "RDB file saved");
                    }
                    crate::engine::state::dump::saved(
                        &mut engine.state.lock(),
                        r.is_ok(),
                        dirty,
                        now_ms(),
                    );
                });
                false
            } else if p.enabled && want && !p.snapshot_in_progress {
                st.persist.snapshot_requested = false;
                st.persist.snapshot_in_progress = true;
                true
            } else {
                false
            }
        };
        if start {
            crate::engine::server::snapshot::spawn_background(engine.clone());
        }
    }
}

/// Semi-sync's tick on the locked state, its outcome published to the reply gate.
fn semisync_tick(engine: &Engine, st: &mut EngineState, now_ms: i64) {
    let policy = st.semisync_policy();
    let offset = st.stream.offset;
    if let Some(need_ack) =
        crate::engine::replication::semisync::tick(&mut st.repl, offset, policy, now_ms)
    {
        engine.gate.set_need_ack(need_ack);
    }
}

/// Whether a snapshot should start: asked for, or the log grew by the threshold (0: never by
/// itself).
fn compaction_due(requested: bool, grown: u64, threshold: u64) -> bool {
    requested || (threshold > 0 && grown >= threshold)
}

/// Keep the log writer and the reply gate in line with CONFIG SET appendfsync.
fn sync_persistence_settings(engine: &Engine, st: &EngineState) {
    if let Some(w) = &st.stream.log {
        let policy = FsyncPolicy::parse(st.config.get("appendfsync").unwrap_or("everysec"));
        w.set_policy(policy);
        engine.gate.set_need_durable(policy == FsyncPolicy::Always);
        w.set_write_delay_us(
            st.config
                .get("log-write-delay-us")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        );
    }
}

/// How long a TLS client has to complete its handshake before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the TLS files are read for a change (see `tls`: a mounted Secret is updated in
/// place, and a rotation should reach new connections within seconds).
const TLS_RELOAD_PERIOD: Duration = Duration::from_secs(1);

async fn tls_reload_task(tls: Arc<Tls>) {
    loop {
        tokio::time::sleep(TLS_RELOAD_PERIOD).await;
        tls.reload_if_changed();
    }
}

/// Accept clients on one listener; `tls`: the listener is the TLS port, and each connection
/// completes its handshake (with the certificates current at that moment) on its own task
/// before it is served.
async fn accept_loop(engine: Arc<Engine>, listener: TcpListener, tls: Option<Arc<Tls>>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let engine = engine.clone();
                let acceptor = tls.as_ref().map(|t| t.acceptor());
                tokio::spawn(async move {
                    let socket = match acceptor {
                        None => Socket::Plain(stream),
                        Some(acceptor) => {
                            match tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok(s)) => Socket::Server(Box::new(s)),
                                // Probes that connect and leave, clients without the CA or a
                                // certificate: not the engine's trouble, so not above debug.
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            }
                        }
                    };
                    connection::handle(engine, socket, peer).await;
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Background work Redis does in `serverCron`: active expiry, at `hz` times per second.
async fn periodic_tasks(engine: Arc<Engine>) {
    loop {
        let hz = engine.lock_state().await.config.settings.hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz as u64)).await;
        let mut st = engine.lock_state().await;
        let now = now_ms();
        // Bounded work per tick so a mass expiry cannot stall clients.
        let effort = st
            .config
            .get("active-expire-effort")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        // While clients are paused (a switchover fences writes with CLIENT PAUSE WRITE), no
        // background expiry either: its DELs would be writes the paused master propagates.
        let paused = st.pause.until_ms > now;
        st.hold_expiries(now);
        let cycle_started = std::time::Instant::now();
        if st.active_expire_enabled && !paused && !st.cron_paused {
            for db in st.dbs.iter_mut() {
                db.expire_cycle(now, 200 * effort);
            }
        }
        st.propagate_expired();
        let cycle_ms = cycle_started.elapsed().as_millis() as u64;
        let threshold = st.config.settings.latency_monitor_threshold_ms;
        st.latency_monitor
            .add_if_needed("expire-cycle", cycle_ms, threshold, now / 1000);
        // BCAST invalidations of keys that expired in the background; the table's limit
        // (a CONFIG SET may have lowered it).
        crate::engine::tracking::broadcast_pending(&mut st, now);
        if !st.cron_paused {
            crate::engine::tracking::limit_table(&mut st, now);
        }
        sync_persistence_settings(&engine, &st);
    }
}

#[cfg(test)]
mod tests {
    use super::compaction_due;

    #[test]
    fn compaction_starts_on_request_or_at_the_threshold_never_at_zero() {
        assert!(compaction_due(true, 0, 0));
        assert!(!compaction_due(false, u64::MAX, 0));
        assert!(!compaction_due(false, 99, 100));
        assert!(compaction_due(false, 100, 100));
    }
}
