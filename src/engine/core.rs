//! The running engine as every task shares it: the state under its lock, the wake-ups, the reply
//! gate, the running script's watch and TLS. The tasks that hold it (server, replication links,
//! background snapshot, archiver) sit above the layers they drive; nothing below `cmd` uses it.
//! No I/O of its own.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use crate::engine::clock::now_ms;
use crate::engine::config::Config;
use crate::engine::persistence::gate::ReplyGate;
use crate::engine::scripting::ScriptWatch;
use crate::engine::state::EngineState;
use crate::engine::tls::Tls;

/// The running engine, shared by every connection.
pub struct Engine {
    pub state: Mutex<EngineState>,
    /// Notified when SHUTDOWN was requested.
    pub shutdown: Notify,
    /// Notified by CLIENT UNPAUSE so paused clients resume at once.
    pub unpaused: Notify,
    /// Releases replies once their writes are durable / acknowledged by the replica.
    pub gate: Arc<ReplyGate>,
    /// The running Lua script as seen without the state lock (`EngineState::scripting.watch`):
    /// while one runs past busy-reply-threshold, connections answer BUSY instead of waiting.
    pub script: Arc<ScriptWatch>,
    /// TLS for clients on `tls-port` and for the replica's link (`tls-replication`), when
    /// configured.
    pub tls: Option<Arc<Tls>>,
}

/// How long a task waits for the state lock before it looks again whether a busy script
/// holds it.
const LOCK_POLL: Duration = Duration::from_millis(5);

impl Engine {
    pub fn new(config: Config) -> Arc<Engine> {
        Engine::with_tls(config, None)
    }

    pub fn with_tls(config: Config, tls: Option<Arc<Tls>>) -> Arc<Engine> {
        let state = EngineState::new(config, now_ms());
        let script = state.scripting.watch.clone();
        Arc::new(Engine {
            state: Mutex::new(state),
            shutdown: Notify::new(),
            unpaused: Notify::new(),
            gate: Arc::new(ReplyGate::default()),
            script,
            tls,
        })
    }

    /// The state lock for a task that can wait without holding a runtime thread: while a
    /// script runs past busy-reply-threshold (it holds the lock until it ends or is killed) the
    /// task sleeps between attempts instead of parking its worker thread, so the connections
    /// that answer BUSY and SCRIPT KILL keep a thread to run on. The guard must not be held
    /// across an `.await`.
    pub async fn lock_state(&self) -> MutexGuard<'_, EngineState> {
        loop {
            if let Some(g) = self.state.try_lock_for(LOCK_POLL) {
                return g;
            }
            if self.script.busy() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Ask the server to stop (as SHUTDOWN does).
    pub fn request_shutdown(&self) {
        self.state.lock().shutdown_requested = true;
        self.shutdown.notify_waiters();
    }
}
