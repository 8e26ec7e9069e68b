//! Semi-sync: when replies wait for the replica's acknowledgement, and when a master degrades to
//! async. `auto` degrades after `semi-sync-timeout` of waiting and returns once the replica has
//! caught up; `operator` degrades only when the operator authorised it for the current term
//! (REDISPAIR AUTHORIZE-DEGRADE), so an isolated master can never acknowledge a write its
//! replica lacks; `sync` never degrades. Pure (on [`ReplState`]; the caller reads the settings
//! into a [`Policy`] and publishes the outcome to the reply gate).

use tracing::{info, warn};

use super::{ReplState, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Async,
    SemiSync,
    Sync,
}

/// The mode a `replication-mode` setting names (async when unset or unknown).
pub fn mode(setting: Option<&str>) -> Mode {
    match setting {
        Some("semi-sync") => Mode::SemiSync,
        Some("sync") => Mode::Sync,
        _ => Mode::Async,
    }
}

/// The settings semi-sync follows, read once per tick.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub mode: Mode,
    /// `semi-sync-degrade operator`: only the operator's authorisation degrades.
    pub operator_decides: bool,
    /// `semi-sync-timeout`, for `auto`.
    pub timeout_ms: i64,
}

pub fn degrade(r: &mut ReplState, now_ms: i64, why: &str) {
    if !r.semi.degraded {
        warn!(why, "semi-sync degraded to async");
        r.semi.degraded = true;
        r.semi.degraded_since_ms = now_ms;
    }
}

/// Evaluate degrade/recovery for a stream at `offset`. Returns whether replies must wait for
/// acknowledgements, for the caller to publish to the reply gate; None leaves the gate as it is.
pub fn tick(r: &mut ReplState, offset: u64, policy: Policy, now_ms: i64) -> Option<bool> {
    let m = policy.mode;
    if r.role != Role::Master {
        // A replica acknowledges nothing to clients (it takes no writes); replies still held
        // from its time as master stay held until their clients are disconnected.
        r.semi.degraded = false;
        r.semi.lagging_since_ms = 0;
        return None;
    }
    if m == Mode::Async {
        r.semi.degraded = false;
        r.semi.lagging_since_ms = 0;
        return Some(false);
    }
    let acked = r.best_ack();
    if r.semi.degraded {
        if r.replica_in_sync(offset) {
            info!("replica caught up: back to semi-sync");
            r.semi.degraded = false;
            r.semi.degraded_since_ms = 0;
            r.semi.authorized_term = None;
            r.semi.lagging_since_ms = 0;
        }
    } else if acked < offset {
        if r.semi.lagging_since_ms == 0 {
            r.semi.lagging_since_ms = now_ms;
        }
        let waited = now_ms - r.semi.lagging_since_ms;
        let timeout = policy.timeout_ms;
        if m == Mode::SemiSync {
            if policy.operator_decides {
                if r.semi.authorized_term == Some(r.term) {
                    degrade(r, now_ms, "authorised by the operator");
                }
            } else if waited >= timeout {
                degrade(
                    r,
                    now_ms,
                    "replica did not acknowledge within semi-sync-timeout",
                );
            }
        }
    } else {
        r.semi.lagging_since_ms = 0;
        // Connected and caught up without ever having degraded (the replica was gone while
        // nothing was written): an authorisation given meanwhile must not outlive that, or
        // it would be latent once the operator, seeing the master in semi-sync, allows
        // failover again (see `cmd::admin::authorize_degrade`).
        if r.replica_in_sync(offset) && r.semi.authorized_term.is_some() {
            info!("replica connected and in sync: degrade authorisation withdrawn");
            r.semi.authorized_term = None;
        }
    }
    Some(!r.semi.degraded)
}
