//! The write lease: a master accepts writes only while its lease is fresh. The lease is granted
//! by the operator (REDISPAIR LEASE) and by replica acknowledgements of heartbeats, and always
//! measured from the master's own clock at a moment no later than the grantor's (the moment the
//! master sent the heartbeat, or handled the operator's request), so it ends no later than the
//! grantor believes. Only durations cross machines. Pure (on the locked state).

use std::time::{Duration, Instant};

use crate::engine::state::EngineState;

/// The configured lease length (0: leases are off), as last refreshed from the configuration
/// (the write path must not parse settings).
pub fn lease_ms(st: &EngineState) -> u64 {
    st.repl.lease_ms
}

/// Pick up CONFIG SET write-lease-ms (called at start and by the replication task).
pub fn refresh_settings(st: &mut EngineState) {
    st.repl.lease_ms = st
        .config
        .get("write-lease-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
}

/// Extend the lease to `from + write-lease-ms` (never shortens it).
pub fn grant(st: &mut EngineState, from: Instant) {
    let ms = lease_ms(st);
    if ms == 0 {
        return;
    }
    let until = from + Duration::from_millis(ms);
    if st.repl.lease_until.is_none_or(|u| u < until) {
        st.repl.lease_until = Some(until);
        st.repl.lease_lapsed_handled = false;
    }
}

/// Extend the lease by `ms` from `from` (REDISPAIR LEASE <ms>).
pub fn grant_for(st: &mut EngineState, from: Instant, ms: u64) {
    let until = from + Duration::from_millis(ms);
    if st.repl.lease_until.is_none_or(|u| u < until) {
        st.repl.lease_until = Some(until);
        st.repl.lease_lapsed_handled = false;
    }
}

/// May this master accept writes now? (Always, when leases are off.)
pub fn fresh(st: &EngineState) -> bool {
    lease_ms(st) == 0 || st.repl.lease_until.is_some_and(|u| Instant::now() < u)
}

/// Milliseconds of lease left (0 when lapsed; -1 when leases are off).
pub fn remaining_ms(st: &EngineState) -> i64 {
    if lease_ms(st) == 0 {
        return -1;
    }
    st.repl
        .lease_until
        .map(|u| u.saturating_duration_since(Instant::now()).as_millis() as i64)
        .unwrap_or(0)
}

/// Once per lapse: a master whose lease ran out disconnects its normal clients, so they
/// reconnect through the Service to whichever node is master now.
pub fn tick(st: &mut EngineState) {
    refresh_settings(st);
    if st.repl.role != super::Role::Master || fresh(st) || st.repl.lease_lapsed_handled {
        return;
    }
    st.repl.lease_lapsed_handled = true;
    tracing::warn!("write lease lapsed: refusing writes and disconnecting clients");
    disconnect_normal_clients(st);
}

/// Close every connection except replication links and the admin user's.
pub fn disconnect_normal_clients(st: &EngineState) {
    for c in st.clients.values() {
        if !c.is_replication && !c.admin {
            c.handle.kill();
        }
    }
}
