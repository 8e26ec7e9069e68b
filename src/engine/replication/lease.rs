//! The write lease: a master accepts writes only while its lease is fresh. The lease is granted
//! by the operator (REDISPAIR LEASE) and by replica acknowledgements of heartbeats, and always
//! measured from the master's own clock at a moment no later than the grantor's (the moment the
//! master sent the heartbeat, or handled the operator's request), so it ends no later than the
//! grantor believes. Only durations cross machines. Pure (on [`ReplState`]; the setting is read and
//! the lapse acted on by `EngineState::lease_tick`).

use std::time::{Duration, Instant};

use super::{ReplState, Role};

/// The configured lease length (0: leases are off), as last refreshed from the configuration
/// (the write path must not parse settings).
pub fn lease_ms(r: &ReplState) -> u64 {
    r.lease_ms
}

/// Pick up CONFIG SET write-lease-ms (`setting`: its current value; called at start and by the
/// replication task).
pub fn refresh_settings(r: &mut ReplState, setting: Option<&str>) {
    r.lease_ms = setting.and_then(|v| v.parse().ok()).unwrap_or(0);
}

/// Extend the lease to `from + write-lease-ms` (never shortens it).
pub fn grant(r: &mut ReplState, from: Instant) {
    let ms = lease_ms(r);
    if ms == 0 {
        return;
    }
    let until = from + Duration::from_millis(ms);
    if r.lease_until.is_none_or(|u| u < until) {
        r.lease_until = Some(until);
        r.lease_lapsed_handled = false;
    }
}

/// Extend the lease by `ms` from `from` (REDISPAIR LEASE <ms>).
pub fn grant_for(r: &mut ReplState, from: Instant, ms: u64) {
    let until = from + Duration::from_millis(ms);
    if r.lease_until.is_none_or(|u| u < until) {
        r.lease_until = Some(until);
        r.lease_lapsed_handled = false;
    }
}

/// May this master accept writes now? (Always, when leases are off.)
pub fn fresh(r: &ReplState) -> bool {
    lease_ms(r) == 0 || r.lease_until.is_some_and(|u| Instant::now() < u)
}

/// Milliseconds of lease left (0 when lapsed; -1 when leases are off).
pub fn remaining_ms(r: &ReplState) -> i64 {
    if lease_ms(r) == 0 {
        return -1;
    }
    r.lease_until
        .map(|u| u.saturating_duration_since(Instant::now()).as_millis() as i64)
        .unwrap_or(0)
}

/// Once per lapse: true when a master's lease has just run out (the caller disconnects its
/// normal clients, so they reconnect through the Service to whichever node is master now).
pub fn lapsed_now(r: &mut ReplState) -> bool {
    if r.role != Role::Master || fresh(r) || r.lease_lapsed_handled {
        return false;
    }
    r.lease_lapsed_handled = true;
    true
}
