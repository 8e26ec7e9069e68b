//! Semi-sync: when replies wait for the replica's acknowledgement, and when a master degrades to
//! async. `auto` degrades after `semi-sync-timeout` of waiting and returns once the replica has
//! caught up; `operator` degrades only when the operator authorised it for the current term
//! (REDISPAIR AUTHORIZE-DEGRADE), so an isolated master can never acknowledge a write its
//! replica lacks; `sync` never degrades. Pure (on the locked state, plus the reply gate).

use tracing::{info, warn};

use super::Role;
use crate::engine::server::Engine;
use crate::engine::state::EngineState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Async,
    SemiSync,
    Sync,
}

pub fn mode(st: &EngineState) -> Mode {
    match st.config.get("replication-mode") {
        Some("semi-sync") => Mode::SemiSync,
        Some("sync") => Mode::Sync,
        _ => Mode::Async,
    }
}

fn operator_decides(st: &EngineState) -> bool {
    st.config.get("semi-sync-degrade") == Some("operator")
}

pub fn degrade(st: &mut EngineState, now_ms: i64, why: &str) {
    if !st.repl.semi.degraded {
        warn!(why, "semi-sync degraded to async");
        st.repl.semi.degraded = true;
        st.repl.semi.degraded_since_ms = now_ms;
    }
}

/// Evaluate degrade/recovery and publish whether replies wait for acknowledgements.
pub fn tick(engine: &Engine, st: &mut EngineState, now_ms: i64) {
    let m = mode(st);
    if st.repl.role != Role::Master {
        // A replica acknowledges nothing to clients (it takes no writes); replies still held
        // from its time as master stay held until their clients are disconnected.
        st.repl.semi.degraded = false;
        st.repl.semi.lagging_since_ms = 0;
        return;
    }
    if m == Mode::Async {
        engine.gate.set_need_ack(false);
        st.repl.semi.degraded = false;
        st.repl.semi.lagging_since_ms = 0;
        return;
    }
    let offset = st.stream.offset;
    let acked = st.repl.best_ack();
    if st.repl.semi.degraded {
        if st.repl.replica_in_sync(offset) {
            info!("replica caught up: back to semi-sync");
            st.repl.semi.degraded = false;
            st.repl.semi.degraded_since_ms = 0;
            st.repl.semi.authorized_term = None;
            st.repl.semi.lagging_since_ms = 0;
        }
    } else if acked < offset {
        if st.repl.semi.lagging_since_ms == 0 {
            st.repl.semi.lagging_since_ms = now_ms;
        }
        let waited = now_ms - st.repl.semi.lagging_since_ms;
        let timeout: i64 = st
            .config
            .get("semi-sync-timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        if m == Mode::SemiSync {
            if operator_decides(st) {
                if st.repl.semi.authorized_term == Some(st.repl.term) {
                    degrade(st, now_ms, "authorised by the operator");
                }
            } else if waited >= timeout {
                degrade(
                    st,
                    now_ms,
                    "replica did not acknowledge within semi-sync-timeout",
                );
            }
        }
    } else {
        st.repl.semi.lagging_since_ms = 0;
        // Connected and caught up without ever having degraded (the replica was gone while
        // nothing was written): an authorisation given meanwhile must not outlive that, or
        // it would be latent once the operator, seeing the master in semi-sync, allows
        // failover again (see `admin::authorize_degrade`).
        if st.repl.replica_in_sync(offset) && st.repl.semi.authorized_term.is_some() {
            info!("replica connected and in sync: degrade authorisation withdrawn");
            st.repl.semi.authorized_term = None;
        }
    }
    engine.gate.set_need_ack(!st.repl.semi.degraded);
}
