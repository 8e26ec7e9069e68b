//! Replication: the stream (offsets, backlog), the reply gate, applying a stream, the master
//! side (serving replicas) and the replica side (following a master), positions, terms, semi-sync
//! and the write lease. The state here is pure; `master` and `replica` do network I/O.

pub mod apply;
pub mod commands;
pub mod gate;
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
    /// Force the next sync to be a full one (admin FORCE-FULL-SYNC).
    pub force_full_sync: bool,
    pub replicas: HashMap<u64, ReplicaInfo>,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    pub discarded_tail_bytes: u64,
    pub discarded_tail_commands: u64,
    pub semi: SemiSync,
    /// The write lease ends at this instant (None: never granted).
    pub lease_until: Option<Instant>,
    /// Connections that asked for PSYNC and are handed to a replica sender.
    pub takeovers: HashMap<u64, Takeover>,
}

/// A PSYNC decision, carried out by the connection that asked for it.
#[derive(Debug, Clone)]
pub enum Takeover {
    /// Continue from `offset`.
    Continue { offset: u64 },
    /// Full sync: a snapshot, then the stream from its offset.
    Full,
}

impl ReplState {
    pub fn new() -> ReplState {
        ReplState {
            role: Role::Master,
            replid: crate::engine::state::random_hex(40),
            replid2: "0".repeat(40),
            second_offset: -1,
            term: 0,
            master: None,
            link: Link::default(),
            link_generation: 0,
            force_full_sync: false,
            replicas: HashMap::new(),
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            discarded_tail_bytes: 0,
            discarded_tail_commands: 0,
            semi: SemiSync::default(),
            lease_until: None,
            takeovers: HashMap::new(),
        }
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
