//! The engine's shared state: databases, configuration, statistics, clients, pub/sub, blocked
//! clients, WATCHed keys, and the write-log seam every effect goes through. Pure: it is held
//! under one lock by the server and mutated only by command execution and the periodic tasks.
//!
//! Why one lock for everything: Redis semantics are those of a single thread (MULTI/EXEC, Lua
//! scripts and blocking-list hand-offs are atomic with respect to every other client). A single
//! mutex gives exactly that, and the server amortises it by executing a whole pipeline batch per
//! acquisition, so the lock is taken once per read() rather than once per command.

pub mod dump;
pub mod lazyfree;
pub mod replay;
pub mod snapshot;

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::engine::client::{ClientInfo, PushSender};
use crate::engine::config::Config;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::{CompactBytes, Db};

// The write log's interface lives with the stream that implements it; commands see it here.
pub use crate::engine::replication::stream::{NoWriteLog, WriteLog};

/// Counters reported by INFO stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total_connections_received: u64,
    /// Clients disconnected for breaking client-output-buffer-limit (INFO, as Redis 7.2).
    pub client_output_buffer_limit_disconnections: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub total_net_input_bytes: u64,
    pub total_net_output_bytes: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    pub rejected_calls: u64,
    pub pubsub_messages: u64,
    /// Per command: (calls, microseconds, rejected, failed).
    pub commands: HashMap<CommandName, CommandStats, ahash::RandomState>,
    pub errors: HashMap<String, u64>,
}

/// A command's name as the key of its statistics: the `&'static str` of its table entry,
/// hashed and compared by address. Every command bumps its entry, and hashing the name's
/// bytes each time showed in profiles; each entry has its own string, so the address names it.
#[derive(Debug, Clone, Copy)]
pub struct CommandName(pub &'static str);

impl PartialEq for CommandName {
    fn eq(&self, other: &Self) -> bool {
        // By address only, to agree with `Hash` (names are unique in the command table).
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for CommandName {}

impl std::hash::Hash for CommandName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize);
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CommandStats {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Calls per latency bucket (`latency::bucket_of`), for the Prometheus histogram.
    pub hist: [u64; crate::engine::latency::BUCKETS],
}

/// A client waiting in BLPOP & co. for one of its keys to become ready.
#[derive(Debug)]
pub struct BlockedClient {
    pub db: usize,
    pub keys: Vec<CompactBytes>,
    /// The command to run again when a key is ready (it decides whether it can be served).
    pub args: Vec<Arg>,
    pub proto: u8,
    pub reply: oneshot::Sender<Reply>,
    /// What it gets on timeout, and from CLIENT UNBLOCK id TIMEOUT.
    pub timeout_reply: Reply,
}

/// Blocked clients by key, in the order they blocked (Redis serves the longest waiter first).
#[derive(Debug, Default)]
pub struct Blocking {
    pub by_key: HashMap<(usize, CompactBytes), VecDeque<u64>>,
    pub clients: HashMap<u64, BlockedClient>,
    /// Keys that received data since the last serve pass.
    pub ready: Vec<(usize, CompactBytes)>,
}

impl Blocking {
    pub fn block(&mut self, id: u64, client: BlockedClient) {
        for k in &client.keys {
            self.by_key
                .entry((client.db, k.clone()))
                .or_default()
                .push_back(id);
        }
        self.clients.insert(id, client);
    }

    /// Forget a blocked client (served, timed out or disconnected).
    pub fn unblock(&mut self, id: u64) -> Option<BlockedClient> {
        let c = self.clients.remove(&id)?;
        for k in &c.keys {
            let slot = (c.db, k.clone());
            if let Some(q) = self.by_key.get_mut(&slot) {
                q.retain(|x| *x != id);
                if q.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        Some(c)
    }

    pub fn has_waiters(&self, db: usize, key: &[u8]) -> bool {
        !self.by_key.is_empty() && self.by_key.contains_key(&(db, CompactBytes::new(key)))
    }
}

/// WATCHed keys and the clients whose transaction must fail.
#[derive(Debug, Default)]
pub struct Watches {
    pub by_key: HashMap<(usize, CompactBytes), Vec<u64>>,
    pub dirty: HashSet<u64>,
    /// (client, db, key): watches whose key SWAPDB replaced with an already expired one where
    /// there was none (Redis's `watchedKey.expired`). Logically nothing changed, so EXEC does not
    /// count these keys as "expired since WATCH".
    pub stale: HashSet<(u64, usize, CompactBytes)>,
}

impl Watches {
    /// A key changed: its watchers' transactions fail. Inline up to the test for watched
    /// keys, which every written key makes.
    #[inline]
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        self.touch_key(db, key);
    }
    #[inline(never)]
    fn touch_key(&mut self, db: usize, key: &[u8]) {
        if let Some(ids) = self.by_key.get(&(db, CompactBytes::new(key))) {
            self.dirty.extend(ids.iter().copied());
        }
    }
    /// FLUSHDB / FLUSHALL / SWAPDB: every watcher of the database fails.
    pub fn touch_db(&mut self, db: usize) {
        for ((d, _), ids) in &self.by_key {
            if *d == db {
                self.dirty.extend(ids.iter().copied());
            }
        }
    }
    /// FLUSHDB / FLUSHALL, called before `emptied` is cleared: like Redis 7.0, only watchers
    /// of keys that exist in it fail (watching a missing key survives a flush).
    pub fn touch_flushed(&mut self, db: usize, emptied: &Db) {
        for ((d, key), ids) in &self.by_key {
            if *d == db && emptied.peek(key.as_slice()).is_some() {
                self.dirty.extend(ids.iter().copied());
            }
        }
    }
    pub fn unwatch_all(&mut self, id: u64, keys: &[(usize, CompactBytes)]) {
        for k in keys {
            if let Some(ids) = self.by_key.get_mut(k) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
        self.dirty.remove(&id);
        if !self.stale.is_empty() {
            self.stale.retain(|(c, _, _)| *c != id);
        }
    }
}

/// Channel and pattern subscriptions.
#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Bytes, HashMap<u64, PushSender>>,
    pub patterns: HashMap<Bytes, HashMap<u64, PushSender>>,
    /// SSUBSCRIBE channels: a namespace of their own, reached only by SPUBLISH.
    pub shard_channels: HashMap<Bytes, HashMap<u64, PushSender>>,
}

#[derive(Debug, Clone)]
pub struct SlowLogEntry {
    pub id: u64,
    pub time_secs: i64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

/// CLIENT PAUSE state.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pause {
    /// Pause ends at this time (ms since epoch); 0 = not paused.
    pub until_ms: i64,
    /// Only write commands are paused (CLIENT PAUSE ... WRITE).
    pub writes_only: bool,
}

pub struct EngineState {
    pub dbs: Vec<Db>,
    pub config: Config,
    pub stats: Stats,
    /// By client id. Every connection updates its entry after each batch (`ClientInfo::refresh`):
    /// hashed with ahash, as SipHash made that lookup ~140 instructions a round trip.
    pub clients: HashMap<u64, ClientInfo, ahash::RandomState>,
    pub next_client_id: u64,
    pub pubsub: PubSub,
    pub blocking: Blocking,
    pub watches: Watches,
    /// Counters of the values freed in the background (UNLINK, FLUSHALL ASYNC...).
    pub lazyfree: std::sync::Arc<lazyfree::LazyFreeStats>,
    pub slowlog: VecDeque<SlowLogEntry>,
    pub slowlog_next_id: u64,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `noscript` commands (a test hook).
    pub script_disable_deny: bool,
    pub pause: Pause,
    /// The databases' `expiry_held` (set while a CLIENT PAUSE lasts; see [`Self::hold_expiries`]).
    pub expiries_held: bool,
    /// Number of changes since start (Redis `server.dirty`); drives propagation.
    pub dirty: u64,
    /// Changes since the last snapshot (INFO rdb_changes_since_last_save).
    pub dirty_since_save: u64,
    pub lastsave_secs: i64,
    /// The replication stream and persistence log every effect goes to.
    pub stream: crate::engine::replication::stream::Stream,
    /// A tap that also sees every effect the node produces itself (not those it applies from
    /// its master); tests record effects through it.
    pub write_log: Box<dyn WriteLog>,
    /// Role, positions, term, replicas, semi-sync and lease.
    pub repl: crate::engine::replication::ReplState,
    /// Persistence status (INFO persistence, snapshots).
    pub persist: crate::engine::persistence::PersistInfo,
    /// The archiver's status, when `archive-url` is set (see `server::archiver`).
    pub archive: Option<std::sync::Arc<crate::engine::archive::ArchiveStatus>>,
    /// Effects collected while a transaction or script runs, appended atomically at its end.
    pub pending_effects: Option<Vec<(usize, Vec<Arg>)>>,
    /// Replicas reject writes from normal clients (set by replication).
    pub read_only: bool,
    pub run_id: String,
    pub start_ms: i64,
    pub port: u16,
    pub scripting: crate::engine::scripting::Scripting,
    /// Set by SHUTDOWN: the server stops accepting, finishes replies and exits.
    pub shutdown_requested: bool,
    /// Set by CLIENT UNPAUSE; the connection that ran it wakes the paused clients and clears it.
    pub unpause_requested: bool,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the periodic task expires keys in the background.
    pub active_expire_enabled: bool,
    /// DEBUG PAUSE-CRON: the periodic task leaves keys and the tracking table alone.
    pub cron_paused: bool,
    /// Clients in MONITOR mode: every executed command is pushed to them.
    pub monitors: HashMap<u64, PushSender>,
    /// ACL users and the ACL log.
    pub acl: crate::engine::acl::Acl,
    /// CLIENT TRACKING: tracked keys, BCAST prefixes, pending invalidations.
    pub tracking: crate::engine::tracking::Tracking,
    /// LATENCY: events that took at least latency-monitor-threshold.
    pub latency_monitor: crate::engine::latency::Monitor,
}

impl EngineState {
    /// Pick up CONFIG SET write-lease-ms (at start and from the replication task).
    pub fn refresh_lease_setting(&mut self) {
        let setting = self.config.get("write-lease-ms");
        crate::engine::replication::lease::refresh_settings(&mut self.repl, setting);
    }

    /// Once per lapse: a master whose lease ran out disconnects its normal clients, so they
    /// reconnect through the Service to whichever node is master now.
    pub fn lease_tick(&mut self) {
        self.refresh_lease_setting();
        if crate::engine::replication::lease::lapsed_now(&mut self.repl) {
            tracing::warn!("write lease lapsed: refusing writes and disconnecting clients");
            self.disconnect_normal_clients();
        }
    }

    /// Close every connection except replication links and the admin user's.
    pub fn disconnect_normal_clients(&self) {
        for c in self.clients.values() {
            if !c.is_replication && !c.admin {
                c.handle.kill();
            }
        }
    }

    /// The semi-sync settings as configured now (replication-mode, semi-sync-degrade,
    /// semi-sync-timeout).
    pub fn semisync_policy(&self) -> crate::engine::replication::semisync::Policy {
        crate::engine::replication::semisync::Policy {
            mode: crate::engine::replication::semisync::mode(self.config.get("replication-mode")),
            operator_decides: self.config.get("semi-sync-degrade") == Some("operator"),
            timeout_ms: self
                .config
                .get("semi-sync-timeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000),
        }
    }

    pub fn new(config: Config, now_ms: i64) -> EngineState {
        let n = config.settings.databases;
        let port = config
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(6379);
        // A bad ACL file was refused when the settings were read (`Config::check_acl_file`).
        let acl = crate::engine::cmd::acl::initial_acl(&config).unwrap_or_else(|e| {
            tracing::error!(error = %e, "ACL file not loaded");
            let mut acl = crate::engine::acl::Acl::new();
            acl.set_default_password(config.settings.requirepass.as_deref());
            crate::engine::cmd::acl::sync_admin_user(&mut acl, &config);
            acl
        });
        EngineState {
            acl,
            tracking: Default::default(),
            latency_monitor: Default::default(),
            dbs: (0..n).map(|_| Db::new()).collect(),
            config,
            stats: Stats::default(),
            clients: HashMap::default(),
            next_client_id: 1,
            pubsub: PubSub::default(),
            blocking: Blocking::default(),
            watches: Watches::default(),
            lazyfree: Default::default(),
            slowlog: VecDeque::new(),
            slowlog_next_id: 0,
            script_disable_deny: false,
            pause: Pause::default(),
            expiries_held: false,
            dirty: 0,
            dirty_since_save: 0,
            lastsave_secs: now_ms / 1000,
            stream: crate::engine::replication::stream::Stream::new(0, 1 << 20),
            write_log: Box::new(NoWriteLog),
            repl: Default::default(),
            persist: Default::default(),
            archive: None,
            pending_effects: None,
            read_only: false,
            run_id: crate::engine::ids::random_hex(40),
            start_ms: now_ms,
            port,
            scripting: Default::default(),
            shutdown_requested: false,
            unpause_requested: false,
            active_expire_enabled: true,
            cron_paused: false,
            monitors: HashMap::new(),
        }
    }

    pub fn new_client_id(&mut self) -> u64 {
        let id = self.next_client_id;
        self.next_client_id += 1;
        id
    }

    /// Record an effect: straight to the write log, or into the open transaction/script batch.
    pub fn propagate(&mut self, db: usize, args: Vec<Arg>) {
        match &mut self.pending_effects {
            Some(batch) => batch.push((db, args)),
            None => self.append_effect(db, &args),
        }
    }

    /// `propagate` for an effect the caller still owns (a command's own arguments): copied only
    /// when a batch must keep it, not on every write.
    pub fn propagate_slice(&mut self, db: usize, args: &[Arg]) {
        match &mut self.pending_effects {
            Some(batch) => batch.push((db, args.to_vec())),
            None => self.append_effect(db, args),
        }
    }

    fn append_effect(&mut self, db: usize, args: &[Arg]) {
        if !self.stream.suppress {
            self.write_log.append(db, args);
        }
        self.stream.append(db, args);
    }

    /// Start collecting effects (MULTI/EXEC, scripts). Nested calls keep the outer batch.
    pub fn begin_effects_batch(&mut self) -> bool {
        if self.pending_effects.is_some() {
            return false;
        }
        self.pending_effects = Some(Vec::new());
        true
    }

    /// Emit a collected batch; more than one effect is wrapped in MULTI/EXEC so a replica or a
    /// recovering node applies all of it or none of it.
    pub fn end_effects_batch(&mut self) {
        let Some(batch) = self.pending_effects.take() else {
            return;
        };
        if batch.len() > 1 {
            // MULTI in the first effect's database and EXEC in the last one's: no SELECT
            // around either (Redis's stream has none; the suite reads it command by command).
            let (first, last) = (batch[0].0, batch[batch.len() - 1].0);
            self.append_effect(first, &[Arg::from_static(b"MULTI")]);
            for (db, args) in &batch {
                self.append_effect(*db, args);
            }
            self.append_effect(last, &[Arg::from_static(b"EXEC")]);
        } else {
            for (db, args) in &batch {
                self.append_effect(*db, args);
            }
        }
    }

    /// Hold expiries (keys read as missing, none deleted) while a CLIENT PAUSE lasts, and let
    /// them go when it ends; only touches the databases when that changes.
    pub fn hold_expiries(&mut self, now_ms: i64) {
        let held = self.pause.until_ms > now_ms;
        if held != self.expiries_held {
            self.expiries_held = held;
            for d in &mut self.dbs {
                d.expiry_held = held;
            }
        }
    }

    /// Propagate the DELs of keys removed by expiry in any database. Inline up to the test for
    /// such keys, which every command makes and which almost always finds none.
    #[inline]
    pub fn propagate_expired(&mut self) {
        if self.dbs.iter().all(|d| d.expired_pending.is_empty()) {
            return;
        }
        self.propagate_expired_keys();
    }

    #[inline(never)]
    fn propagate_expired_keys(&mut self) {
        for db in 0..self.dbs.len() {
            if self.dbs[db].expired_pending.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut self.dbs[db].expired_pending);
            self.stats.expired_keys += keys.len() as u64;
            let notify = self.config.settings.notify_flags & crate::engine::notify::EXPIRED != 0;
            for k in keys {
                if notify {
                    let now = crate::engine::clock::now_ms();
                    crate::engine::notify::notify(
                        self,
                        now,
                        crate::engine::notify::EXPIRED,
                        "expired",
                        &k,
                        db,
                    );
                }
                self.watches.touch(db, &k);
                let now = crate::engine::clock::now_ms();
                crate::engine::tracking::invalidate_key(self, &k, 0, now);
                self.dirty += 1;
                self.propagate(db, vec![Arg::from_static(b"DEL"), Arg::copy_from_slice(&k)]);
            }
        }
    }
}
