//! Replication's state and rules: the stream (offsets, backlog), positions, terms, semi-sync and
//! the write lease, each on [`ReplState`] (not on the engine's whole state). The tasks that move
//! bytes (`server::master` serving replicas, `server::replica` following a master) and the
//! commands (`cmd::replication`) sit above. Pure.

pub mod lease;
pub mod semisync;
pub mod stream;

use std::collections::HashMap;
use std::time::Instant;

/// What this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// The replica side's view of its link to the master.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub up: bool,
    /// Connecting or receiving a full sync.
    pub sync_in_progress: bool,
    /// ms since epoch when the link went down (0: never up / up).
    pub down_since_ms: i64,
    /// ms since epoch of the last data from the master.
    pub last_io_ms: i64,
    /// Why the link is down (empty when up).
    pub reason: String,
    /// The link is detached on purpose (history mismatch, lower term) and will not retry until
    /// an admin command says so.
    pub detached: bool,
}

/// A connected replica, as the master sees it.
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    pub ip: String,
    pub port: u16,
    pub ack_offset: u64,
    pub last_ack_ms: i64,
    pub online: bool,
    /// A stock Redis replica (it did not send `REPLCONF term`): served Redis's protocol, and
    /// left out of what the pair's guarantees rest on (semi-sync acknowledgements, the write
    /// lease, hand-over), since it takes no part in fencing. WAIT counts it, as Redis does.
    pub stock: bool,
}

/// Semi-sync state on the master.
#[derive(Debug, Clone, Default)]
pub struct SemiSync {
    pub degraded: bool,
    pub degraded_since_ms: i64,
    /// Degrade authorised by the operator for this term.
    pub authorized_term: Option<u64>,
    /// Since when the replica has been behind with writes waiting (for `auto`).
    pub lagging_since_ms: i64,
}

pub struct ReplState {
    pub role: Role,
    pub replid: String,
    pub replid2: String,
    /// Last offset shared with history `replid2` (-1: none).
    pub second_offset: i64,
    pub term: u64,
    /// The master this node follows (replica role).
    pub master: Option<(String, u16)>,
    pub link: Link,
    /// Incremented whenever the replica link must restart (REPLICAOF, DEMOTE, PROMOTE).
    pub link_generation: u64,
    /// The next sync may replace the dataset (REPLICAOF, admin FORCE-FULL-SYNC).
    pub force_full_sync: bool,
    /// The next sync may discard a divergent tail (explicit REPLICAOF / DEMOTE).
    pub allow_truncate: bool,
    pub replicas: HashMap<u64, ReplicaInfo>,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    pub discarded_tail_bytes: u64,
    pub discarded_tail_commands: u64,
    pub semi: SemiSync,
    /// `write-lease-ms` (0: no lease needed).
    pub lease_ms: u64,
    /// The write lease ends at this instant (None: never granted).
    pub lease_until: Option<Instant>,
    /// Connections that asked for PSYNC and are handed to a replica sender.
    pub takeovers: HashMap<u64, Takeover>,
    /// REPLCONF listening-port per connection, until its PSYNC.
    pub pending_ports: HashMap<u64, u16>,
    /// A full sync being received: the master's (replid, snapshot offset).
    pub pending_full: Option<(String, u64)>,
    /// Connections that sent `REPLCONF term` (the engine's own replicas, see
    /// [`PeerProtocol`]).
    pub engine_peers: std::collections::HashSet<u64>,
    /// When a PING was last put in the stream for stock replicas (ms): they time the link
    /// out without traffic, and count only stream bytes, so their keep-alive is a command.
    pub last_stock_ping_ms: i64,
    /// Connections holding replies at the reply gate.
    pub gate_waiters: std::collections::HashSet<u64>,
    /// Clients blocked in WAIT.
    pub waits: Vec<WaitRequest>,
    /// Wakes the replication task (role changes, WAIT).
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    /// The master's clock when it sent each heartbeat still unanswered (for the lease).
    pub heartbeats: std::collections::VecDeque<(u64, Instant)>,
    pub next_heartbeat: u64,
    /// The operator granted a lease until this instant / a replica acknowledged one.
    pub lease_granted_ms: i64,
    /// Normal clients were disconnected because the lease lapsed (done once per lapse).
    pub lease_lapsed_handled: bool,
}

/// A client blocked in WAIT until `replicas` replicas acknowledged `offset`.
#[derive(Debug, Clone)]
pub struct WaitRequest {
    pub client: u64,
    pub offset: u64,
    pub replicas: i64,
    /// When WAIT answers with however many replicas acknowledged (ms since epoch; 0: never).
    pub deadline_ms: i64,
}

/// A PSYNC decision, carried out by the connection that asked for it (it becomes a replica
/// sender).
#[derive(Debug, Clone)]
pub struct Takeover {
    pub decision: PsyncDecision,
    /// The replica's listening port (REPLCONF listening-port).
    pub port: u16,
    /// How the replica speaks (see [`PeerProtocol`]).
    pub protocol: PeerProtocol,
}

/// Which replication protocol a replica speaks, told by its handshake: the engine's own
/// replicas send `REPLCONF term` before PSYNC; stock Redis replicas never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerProtocol {
    /// The engine's fenced protocol: terms, `ALLOW-FULL`, a snapshot as commands, heartbeats.
    Engine,
    /// Redis's PSYNC: `+FULLRESYNC <id> <offset>` and an RDB payload, `+CONTINUE <id>`.
    StockPsync,
    /// Redis's old SYNC: the RDB payload alone, then the stream.
    StockSync,
}

impl ReplState {
    pub fn new() -> ReplState {
        ReplState {
            role: Role::Master,
            replid: crate::engine::ids::random_hex(40),
            replid2: "0".repeat(40),
            second_offset: -1,
            term: 0,
            master: None,
            link: Link::default(),
            link_generation: 0,
            force_full_sync: false,
            allow_truncate: false,
            replicas: HashMap::new(),
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            discarded_tail_bytes: 0,
            discarded_tail_commands: 0,
            semi: SemiSync::default(),
            lease_ms: 0,
            lease_until: None,
            takeovers: HashMap::new(),
            pending_ports: HashMap::new(),
            waits: Vec::new(),
            pending_full: None,
            engine_peers: Default::default(),
            last_stock_ping_ms: 0,
            gate_waiters: Default::default(),
            wake: Default::default(),
            heartbeats: Default::default(),
            next_heartbeat: 1,
            lease_granted_ms: 0,
            lease_lapsed_handled: false,
        }
    }

    /// Connected replicas that acknowledged at least `offset`.
    pub fn acked_count(&self, offset: u64) -> usize {
        self.replicas
            .values()
            .filter(|r| r.online && r.ack_offset >= offset)
            .count()
    }

    /// The best acknowledged offset among connected replicas.
    pub fn best_ack(&self) -> u64 {
        self.replicas
            .values()
            .filter(|r| r.online && !r.stock)
            .map(|r| r.ack_offset)
            .max()
            .unwrap_or(0)
    }

    /// A replica of ours (not a stock Redis one: those never acknowledge in semi-sync terms) is
    /// connected and has acknowledged everything up to `offset`: the one definition of "the
    /// replica is in sync" that semi-sync's tick and the operator's degrade authorisation share.
    pub fn replica_in_sync(&self, offset: u64) -> bool {
        self.replicas.values().any(|r| r.online && !r.stock) && self.best_ack() >= offset
    }

    /// The persisted identity.
    pub fn node_state(&self) -> crate::engine::persistence::NodeState {
        crate::engine::persistence::NodeState {
            replid: self.replid.clone(),
            replid2: self.replid2.clone(),
            second_offset: self.second_offset,
            term: self.term,
            master: self.master.clone(),
            clean_offset: None,
        }
    }
}

impl Default for ReplState {
    fn default() -> Self {
        ReplState::new()
    }
}

/// The master's answer to `PSYNC replid offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsyncDecision {
    /// Send the stream from `offset`.
    Continue { offset: u64 },
    /// The replica holds a tail the master never had: it must discard everything after
    /// `offset` (where the histories part) and ask again.
    Truncate { offset: u64 },
    /// A snapshot and the stream from its offset.
    Full,
    /// The master's history does not contain the replica's position and the replica did not
    /// allow a full sync: it must keep its data and stay detached.
    NoHistory(String),
}

/// What the master knows about its own history.
#[derive(Debug, Clone)]
pub struct History<'a> {
    pub replid: &'a str,
    pub replid2: &'a str,
    pub second_offset: i64,
    pub offset: u64,
    /// Oldest stream offset still retained (memory backlog or log segments).
    pub retained_from: u64,
}

/// What the replica allows the master to make it do, besides continuing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// Replace its dataset by a full sync.
    pub full: bool,
    /// Discard a tail of its history the master does not have. Only after an explicit
    /// REPLICAOF / DEMOTE: a replica that merely reconnects to a master that lost writes (a
    /// crash with `appendfsync everysec`) must keep them and stay detached, so the operator can
    /// promote it instead.
    pub truncate: bool,
}

/// Where a replica's history came from before its current id: its data up to `end` is the
/// history named `replid` (its `replid2` / `second_offset`). A master that crashed and
/// restarted takes a fresh id (it may have lost a tail a replica received), so after a
/// failover the new master knows only this older id of it; without it, the rejoining old
/// master could only be re-synced in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevPosition<'a> {
    pub replid: &'a str,
    pub end: u64,
}

/// Decide how to serve a replica at (`replid`, `offset`), which came from `prev` before (PSYNC2
/// rules plus divergence, the replica's own previous id, and fencing). Pure.
pub fn decide_psync(
    h: &History<'_>,
    replid: &str,
    offset: u64,
    prev: Option<PrevPosition<'_>>,
    allow: Allow,
) -> PsyncDecision {
    if let Some(d) = in_history(h, replid, offset, allow) {
        return d;
    }
    if let Some(p) = prev {
        // The replica's data up to `at` is `p.replid`'s history; past it (when `offset` is
        // beyond `p.end`) it is the replica's own, which no one else has: continuing from
        // `at` then means discarding that part, which needs the replica's consent.
        let at = offset.min(p.end);
        let own_tail = at < offset;
        match in_history(h, p.replid, at, allow) {
            Some(PsyncDecision::Continue { offset: o }) if !own_tail => {
                return PsyncDecision::Continue { offset: o }
            }
            Some(PsyncDecision::Continue { offset: o }) if allow.truncate => {
                return PsyncDecision::Truncate { offset: o }
            }
            Some(d @ PsyncDecision::Truncate { .. }) => return d,
            Some(PsyncDecision::Full) if !own_tail || allow.truncate => return PsyncDecision::Full,
            _ => {}
        }
    }
    if allow.full {
        return PsyncDecision::Full;
    }
    PsyncDecision::NoHistory(format!(
        "master history ({} up to {}, {} up to {}) does not contain the replica's position ({replid} {offset})",
        h.replid, h.offset, h.replid2, h.second_offset
    ))
}

/// The decision for a replica at (`replid`, `offset`) when that position is in this master's
/// history (or diverges from it at a known point and may be cut there); None when it is not.
fn in_history(h: &History<'_>, replid: &str, offset: u64, allow: Allow) -> Option<PsyncDecision> {
    let serve = |offset: u64| {
        if offset >= h.retained_from {
            PsyncDecision::Continue { offset }
        } else {
            // In our history but no longer retained: a full sync loses nothing the replica has.
            PsyncDecision::Full
        }
    };
    if replid == h.replid {
        if offset <= h.offset {
            return Some(serve(offset));
        }
    } else if h.second_offset >= 0 && replid == h.replid2 {
        let shared = h.second_offset as u64;
        if offset <= shared {
            return Some(serve(offset));
        }
        if allow.truncate && shared >= h.retained_from {
            return Some(PsyncDecision::Truncate { offset: shared });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> History<'static> {
        History {
            replid: "new",
            replid2: "old",
            second_offset: 100,
            offset: 150,
            retained_from: 50,
        }
    }

    #[test]
    fn psync_decisions() {
        let none = Allow::default();
        let demoted = Allow {
            full: false,
            truncate: true,
        };
        let full = Allow {
            full: true,
            truncate: false,
        };
        let d = |replid: &str, offset: u64, allow: Allow| {
            decide_psync(&h(), replid, offset, None, allow)
        };
        assert_eq!(d("new", 120, none), PsyncDecision::Continue { offset: 120 });
        assert_eq!(d("old", 80, none), PsyncDecision::Continue { offset: 80 });
        // The old master, demoted, wrote 30 bytes the new master never got.
        assert_eq!(
            d("old", 130, demoted),
            PsyncDecision::Truncate { offset: 100 }
        );
        // The same position on a mere reconnection: the master lost data; keep it, detach.
        assert!(matches!(d("old", 130, none), PsyncDecision::NoHistory(_)));
        assert_eq!(d("new", 20, none), PsyncDecision::Full);
        assert!(matches!(d("other", 10, none), PsyncDecision::NoHistory(_)));
        assert_eq!(d("other", 10, full), PsyncDecision::Full);
        // A replica ahead of the master under the same id.
        assert!(matches!(
            d("new", 151, demoted),
            PsyncDecision::NoHistory(_)
        ));
    }

    /// A crashed-and-restarted old master rejoins under its fresh id "own", which the new
    /// master never saw; its data up to `end` is the shared history "old".
    #[test]
    fn psync_from_the_replicas_previous_id() {
        let none = Allow::default();
        let demoted = Allow {
            full: false,
            truncate: true,
        };
        let d = |offset: u64, end: u64, allow: Allow| {
            let prev = PrevPosition { replid: "old", end };
            decide_psync(&h(), "own", offset, Some(prev), allow)
        };
        // Restarted, wrote nothing of its own, behind the fork point: continue.
        assert_eq!(d(90, 90, none), PsyncDecision::Continue { offset: 90 });
        // Restarted at 120, 20 bytes past the new master's fork point (100): cut back to it,
        // only when demoted explicitly.
        assert_eq!(
            d(120, 120, demoted),
            PsyncDecision::Truncate { offset: 100 }
        );
        assert!(matches!(d(120, 120, none), PsyncDecision::NoHistory(_)));
        // Wrote under its own id after the restart (90 shared, then its own up to 95): that
        // tail is cut, with consent only.
        assert_eq!(d(95, 90, demoted), PsyncDecision::Truncate { offset: 90 });
        assert!(matches!(d(95, 90, none), PsyncDecision::NoHistory(_)));
        // After the cut it asks again at the shared point and continues.
        assert_eq!(d(90, 120, demoted), PsyncDecision::Continue { offset: 90 });
        // Shared, but no longer retained: a full sync, when nothing of its own is lost.
        assert_eq!(d(20, 20, none), PsyncDecision::Full);
        assert!(matches!(d(25, 20, none), PsyncDecision::NoHistory(_)));
        // A previous id the master does not know either.
        let other = PrevPosition {
            replid: "other",
            end: 10,
        };
        assert!(matches!(
            decide_psync(&h(), "own", 10, Some(other), demoted),
            PsyncDecision::NoHistory(_)
        ));
    }
}
