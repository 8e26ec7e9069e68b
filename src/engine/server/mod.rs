//! The TCP server: listeners, the accept loop, periodic tasks (active expiry) and graceful
//! shutdown. Does I/O: sockets and timers.

pub mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::engine::config::Config;
use crate::engine::state::EngineState;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid bind address '{0}'")]
    BadAddress(String),
}

/// Milliseconds since the Unix epoch (the engine's only clock for data: expiry is absolute).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The running engine, shared by every connection.
pub struct Engine {
    pub state: Mutex<EngineState>,
    /// Notified when SHUTDOWN was requested.
    pub shutdown: Notify,
    /// Notified by CLIENT UNPAUSE so paused clients resume at once.
    pub unpaused: Notify,
}

impl Engine {
    pub fn new(config: Config) -> Arc<Engine> {
        Arc::new(Engine {
            state: Mutex::new(EngineState::new(config, now_ms())),
            shutdown: Notify::new(),
            unpaused: Notify::new(),
        })
    }

    /// Ask the server to stop (as SHUTDOWN does).
    pub fn request_shutdown(&self) {
        self.state.lock().shutdown_requested = true;
        self.shutdown.notify_waiters();
    }
}

/// A started server: its addresses and a way to stop it. Used by the binary and by tests that
/// run the engine in-process on loopback.
pub struct ServerHandle {
    pub engine: Arc<Engine>,
    pub addrs: Vec<SocketAddr>,
    pub task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
    /// Stop and wait until the accept loop and periodic tasks have ended.
    pub async fn stop(self) {
        self.engine.request_shutdown();
        let _ = self.task.await;
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
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for b in &binds {
        let ip: std::net::IpAddr = b.parse().map_err(|_| ServerError::BadAddress(b.clone()))?;
        let addr = SocketAddr::new(ip, port);
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = l.local_addr().map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        addrs.push(local);
        listeners.push(l);
    }
    let engine = Engine::new(config);
    engine.state.lock().port = addrs.first().map(|a| a.port()).unwrap_or(port);
    info!(addresses = ?addrs, "engine ready to accept connections");
    let task = tokio::spawn(serve(engine.clone(), listeners));
    Ok(ServerHandle {
        engine,
        addrs,
        task,
    })
}

async fn serve(engine: Arc<Engine>, listeners: Vec<TcpListener>) {
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        tasks.spawn(accept_loop(engine.clone(), l));
    }
    tasks.spawn(periodic_tasks(engine.clone()));
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
    info!("engine stopped");
}

async fn accept_loop(engine: Arc<Engine>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let engine = engine.clone();
                tokio::spawn(async move {
                    connection::handle(engine, stream, peer).await;
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
        let hz = engine.state.lock().config.settings.hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz as u64)).await;
        let mut st = engine.state.lock();
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
        if st.active_expire_enabled && !paused {
            for db in st.dbs.iter_mut() {
                db.expire_cycle(now, 200 * effort);
            }
        }
        st.propagate_expired();
    }
}
