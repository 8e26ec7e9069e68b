//! Per-connection client state (owned by the connection task) and the registry entry every
//! client keeps in the shared state for CLIENT LIST / KILL / INFO. Pure.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::engine::config::ClassLimit;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::CompactBytes;

/// How the client wants replies (CLIENT REPLY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// Set by CLIENT REPLY SKIP; becomes Skip after the CLIENT command itself.
    SkipNext,
}

/// The MULTI state of a client.
#[derive(Debug, Default)]
pub struct MultiState {
    pub active: bool,
    pub queued: Vec<Vec<Arg>>,
    /// A queued command failed to queue (unknown, wrong arity...): EXEC answers EXECABORT.
    pub aborted: bool,
}

/// Who the client is authenticated as (an ACL user, see `acl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// Not authenticated yet (the default user needs a password or is off).
    None,
    Default,
    /// Any other ACL user, the operator's admin user included.
    Named(Arc<str>),
}

impl User {
    /// The ACL user name (an unauthenticated client is the default user, as in Redis).
    pub fn name(&self) -> &str {
        match self {
            User::None | User::Default => "default",
            User::Named(n) => n,
        }
    }

    /// The user a name authenticates as.
    pub fn from_name(name: &str) -> User {
        if name == "default" {
            User::Default
        } else {
            User::Named(Arc::from(name))
        }
    }
}

/// The ACL user a connection resolved for its `User`, kept between commands (see
/// `cmd::acl::check`): valid while the ACL's generation is `generation` and the client is still
/// `who`.
#[derive(Debug, Clone)]
pub struct AclUserCache {
    pub generation: u64,
    pub who: User,
    /// None: no such user (deleted while the client ran).
    pub user: Option<Arc<crate::engine::acl::User>>,
    /// `user` may run anything (`User::is_unrestricted`), so `cmd::acl::check` allows a
    /// command without a call while the cache is valid.
    pub unrestricted: bool,
}

/// The handle other clients use to act on this one (CLIENT KILL, demotion, pub/sub delivery).
#[derive(Debug)]
pub struct ClientHandle {
    pub killed: AtomicBool,
    pub kill: Notify,
    /// Bytes pushed to the client (pub/sub messages, MONITOR lines) that its connection has
    /// not written to the socket yet: its output buffer, bounded by client-output-buffer-limit.
    output_pending: AtomicU64,
    /// When the output buffer went over the soft limit (ms; 0 = it is under it).
    soft_limit_since_ms: AtomicI64,
}

impl ClientHandle {
    pub fn new() -> Arc<ClientHandle> {
        Arc::new(ClientHandle {
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            output_pending: AtomicU64::new(0),
            soft_limit_since_ms: AtomicI64::new(0),
        })
    }

    /// Bytes waiting in the client's output buffer (CLIENT LIST `omem`).
    pub fn output_pending(&self) -> u64 {
        self.output_pending.load(Ordering::Relaxed)
    }

    /// The connection wrote `bytes` (as counted by [`push_size`]) of pushed messages.
    pub fn output_written(&self, bytes: u64) {
        self.output_pending.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether an output buffer of `used` bytes breaks `limit` at `now_ms` (Redis's
    /// `checkClientOutputBufferLimits`): at or over the hard limit, or at or over the soft
    /// limit continuously for longer than its seconds. Under the soft limit the clock resets.
    fn over_limit(&self, used: u64, limit: ClassLimit, now_ms: i64) -> bool {
        if limit.hard > 0 && used >= limit.hard {
            return true;
        }
        if limit.soft > 0 && used >= limit.soft {
            let since = self.soft_limit_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_limit_since_ms
                    .store(now_ms.max(1), Ordering::Relaxed);
                return false;
            }
            return now_ms - since > (limit.soft_secs as i64).saturating_mul(1000);
        }
        self.soft_limit_since_ms.store(0, Ordering::Relaxed);
        false
    }
    /// Ask the connection to close (after finishing the reply it is writing).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// Sends messages to a client outside request/response (pub/sub, MONITOR), counting them in
/// its output buffer. The channel itself is unbounded: the bound is the client's class limit,
/// checked at every push, which disconnects the client (as Redis does) rather than block the
/// publisher or drop messages silently.
#[derive(Debug, Clone)]
pub struct PushSender {
    tx: mpsc::UnboundedSender<Reply>,
    handle: Arc<ClientHandle>,
}

/// What became of a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The client's output buffer broke its limit: the client is being disconnected (count it
    /// in `client_output_buffer_limit_disconnections`) and the message was not queued.
    LimitReached,
    /// The client is gone or closing: nothing was queued.
    Gone,
}

impl PushSender {
    pub fn new(tx: mpsc::UnboundedSender<Reply>, handle: Arc<ClientHandle>) -> PushSender {
        PushSender { tx, handle }
    }

    /// Queue `msg` for the client under `limit` (its class's client-output-buffer-limit).
    pub fn push(&self, msg: Reply, limit: ClassLimit, now_ms: i64) -> Pushed {
        if self.handle.is_killed() {
            return Pushed::Gone;
        }
        let size = push_size(&msg);
        let used = self
            .handle
            .output_pending
            .fetch_add(size, Ordering::Relaxed)
            + size;
        if self.handle.over_limit(used, limit, now_ms) {
            self.handle.output_written(size);
            tracing::warn!(
                pending = used,
                "client scheduled to be closed for overcoming of output buffer limits"
            );
            self.handle.kill();
            return Pushed::LimitReached;
        }
        if self.tx.send(msg).is_err() {
            self.handle.output_written(size);
            return Pushed::Gone;
        }
        Pushed::Queued
    }
}

/// The size a pushed message counts for in the output buffer: its payload plus a little per
/// element (close to its RESP encoding; the same function counts it in and out).
pub fn push_size(r: &Reply) -> u64 {
    match r {
        Reply::Bulk(b) | Reply::Status(b) | Reply::Error(b) | Reply::Verbatim(b) => {
            b.len() as u64 + 16
        }
        Reply::Raw(b) => b.len() as u64,
        Reply::Push(items) | Reply::Array(items) | Reply::Set(items) => {
            16 + items.iter().map(push_size).sum::<u64>()
        }
        Reply::Map(pairs) => {
            16 + pairs
                .iter()
                .map(|(k, v)| push_size(k) + push_size(v))
                .sum::<u64>()
        }
        _ => 16,
    }
}

/// State owned by one connection.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub proto: u8,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub user: User,
    /// The ACL rules of `user`, resolved at its first command (see `AclUserCache`).
    pub acl_user: Option<AclUserCache>,
    /// Authenticated as the operator's admin user (`admin-user`): may run the REDISPAIR
    /// commands and is exempt from the write-lease refusal.
    pub admin: bool,
    pub multi: MultiState,
    pub watched: Vec<(usize, CompactBytes)>,
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard_channels: HashSet<Bytes>,
    pub reply_mode: ReplyMode,
    /// The reply being written is a pub/sub confirmation: sent whatever CLIENT REPLY says, as
    /// Redis sends pushes (`CLIENT_PUSHING`). Set by (P|S)(UN)SUBSCRIBE, cleared when written.
    pub reply_is_push: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Set by QUIT: close after the reply.
    pub close_after_reply: bool,
    pub push: Option<PushSender>,
    /// Whether a sender of `push` was ever handed out (SUBSCRIBE family, MONITOR). Until then
    /// nothing can arrive on the push channel, so the connection does not poll it: that poll
    /// was a tenth of the per-request cost of a plain pipelined client.
    pub push_handed_out: bool,
    pub handle: Arc<ClientHandle>,
    pub addr: String,
    pub laddr: String,
    pub created_ms: i64,
    /// A replica's connection or the master link on a replica: exempt from some limits.
    pub is_replication: bool,
}

impl ClientState {
    pub fn new(id: u64, addr: String, laddr: String, now_ms: i64, needs_auth: bool) -> ClientState {
        ClientState {
            id,
            db: 0,
            proto: 2,
            name: None,
            lib_name: None,
            lib_ver: None,
            user: if needs_auth {
                User::None
            } else {
                User::Default
            },
            acl_user: None,
            admin: false,
            multi: MultiState::default(),
            watched: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            reply_mode: ReplyMode::On,
            reply_is_push: false,
            no_evict: false,
            no_touch: false,
            close_after_reply: false,
            push: None,
            push_handed_out: false,
            handle: ClientHandle::new(),
            addr,
            laddr,
            created_ms: now_ms,
            is_replication: false,
        }
    }

    /// A client for internal use (script calls, served blocked commands, replication apply).
    pub fn internal(id: u64, db: usize, proto: u8) -> ClientState {
        let mut c = ClientState::new(id, String::new(), String::new(), 0, false);
        c.db = db;
        c.proto = proto;
        c
    }

    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// RESP2 clients with subscriptions may only run the subscribe family.
    pub fn in_subscribe_context(&self) -> bool {
        self.proto < 3 && self.subscriptions() > 0
    }

    pub fn is_authenticated(&self) -> bool {
        self.user != User::None
    }
}

/// What CLIENT LIST and INFO need to know about a client, kept in the shared state and refreshed
/// by the connection after each batch of commands.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub created_ms: i64,
    pub last_interaction_ms: i64,
    pub db: usize,
    pub proto: u8,
    pub sub: usize,
    pub psub: usize,
    pub multi: i64,
    pub last_cmd: String,
    pub flags: String,
    pub user: Arc<str>,
    /// Authenticated as the operator's admin user.
    pub admin: bool,
    /// Where messages for the client go (tracking invalidations for a REDIRECT target).
    pub push: Option<PushSender>,
    pub blocked: bool,
    /// Held by CLIENT PAUSE (counted in INFO `blocked_clients`, as Redis counts them).
    pub paused: bool,
    pub handle: Arc<ClientHandle>,
    pub is_replication: bool,
}

fn flags_of(c: &ClientState, blocked: bool, flags: &mut String) {
    flags.clear();
    if c.subscriptions() > 0 {
        flags.push('P');
    }
    if c.multi.active {
        flags.push('x');
    }
    if c.is_replication {
        flags.push('S');
    }
    if blocked {
        flags.push('b');
    }
    if flags.is_empty() {
        flags.push('N');
    }
}

impl ClientInfo {
    /// Update the entry after a batch of commands. Runs once per read on the hot path, so it
    /// reuses the entry's buffers instead of building a new one.
    pub fn refresh(&mut self, c: &ClientState, now_ms: i64, last_cmd: &[u8], blocked: bool) {
        if self.name != c.name {
            self.name = c.name.clone();
        }
        if self.lib_name != c.lib_name {
            self.lib_name = c.lib_name.clone();
        }
        if self.lib_ver != c.lib_ver {
            self.lib_ver = c.lib_ver.clone();
        }
        self.last_interaction_ms = now_ms;
        self.db = c.db;
        self.proto = c.proto;
        self.sub = c.channels.len();
        self.psub = c.patterns.len();
        self.multi = if c.multi.active {
            c.multi.queued.len() as i64
        } else {
            -1
        };
        // A client mostly repeats its command: compare before rewriting the lower-cased copy.
        // (Only an ASCII name compares equal byte for byte: a byte above 0x7f is two bytes in
        // the string.)
        let last_cmd = &last_cmd[..last_cmd.len().min(64)];
        let same = self.last_cmd.len() == last_cmd.len()
            && self
                .last_cmd
                .bytes()
                .zip(last_cmd)
                .all(|(have, &b)| b.is_ascii() && have == b.to_ascii_lowercase());
        if !last_cmd.is_empty() && !same {
            self.last_cmd.clear();
            for &b in last_cmd {
                self.last_cmd.push(b.to_ascii_lowercase() as char);
            }
        }
        flags_of(c, blocked, &mut self.flags);
        if &*self.user != c.user.name() {
            self.user = Arc::from(c.user.name());
        }
        self.admin = c.admin;
        self.blocked = blocked;
        self.is_replication = c.is_replication;
    }

    pub fn from_state(c: &ClientState, now_ms: i64, last_cmd: &str) -> ClientInfo {
        let mut flags = String::new();
        flags_of(c, false, &mut flags);
        ClientInfo {
            id: c.id,
            addr: c.addr.clone(),
            laddr: c.laddr.clone(),
            name: c.name.clone(),
            lib_name: c.lib_name.clone(),
            lib_ver: c.lib_ver.clone(),
            created_ms: c.created_ms,
            last_interaction_ms: now_ms,
            db: c.db,
            proto: c.proto,
            sub: c.channels.len(),
            psub: c.patterns.len(),
            multi: if c.multi.active {
                c.multi.queued.len() as i64
            } else {
                -1
            },
            last_cmd: last_cmd.to_string(),
            flags,
            user: Arc::from(c.user.name()),
            admin: c.admin,
            push: c.push.clone(),
            blocked: false,
            paused: false,
            handle: c.handle.clone(),
            is_replication: c.is_replication,
        }
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis's field names and order.
    pub fn format(&self, now_ms: i64) -> String {
        self.format_with_qbuf(now_ms, 0)
    }

    /// [`ClientInfo::format`] with the query buffer's length: Redis's line for the client that
    /// asks shows its own command, still in its query buffer while it runs (the engine has read
    /// it out already; the caller passes its size).
    pub fn format_with_qbuf(&self, now_ms: i64, qbuf: usize) -> String {
        let s = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem={} tot-mem=2048 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            s(&self.name),
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - self.last_interaction_ms).max(0) / 1000,
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.multi,
            qbuf,
            self.handle.output_pending(),
            if self.last_cmd.is_empty() { "NULL" } else { &self.last_cmd },
            self.user,
            self.proto,
            s(&self.lib_name),
            s(&self.lib_ver),
        )
    }
}
