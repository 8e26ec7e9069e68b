//! Command table and execution: lookup, arity, authentication, MULTI queueing, OOM and
//! read-only checks, then the command itself, then propagation of its effects and the hand-off
//! to blocked clients. Pure (operates on the locked state; no sockets).
//!
//! Every write reaches the write log through [`execute`]: a command that changed the dataset
//! (it bumped `state.dirty`) is propagated as it was received, unless it recorded a
//! deterministic rewrite with [`Ctx::propagate_as`] (SPOP → SREM, EXPIRE → PEXPIREAT,
//! INCRBYFLOAT → SET ... KEEPTTL, BLPOP → LPOP ...), so replicas and recovery replay effects,
//! never decisions that depend on time or randomness.

pub mod acl;
pub mod admin;
pub mod args;
pub mod bitmaps;
pub mod client;
pub mod command;
pub mod config;
pub mod debug;
pub mod debug_protocol;
pub mod docs;
pub mod geo;
pub mod geohash;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod latency;
pub mod lists;
pub mod memory;
pub mod migrate;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod unsupported;
pub mod zsets;

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::engine::client::{ClientState, MultiState};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::state::{BlockedClient, EngineState};
use crate::engine::storage::{CompactBytes, Db};

/// Command flags (a subset of Redis's, with the same meaning).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    /// Allowed before authentication (AUTH, HELLO, QUIT...).
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
    pub const MAY_REPLICATE: u32 = 1 << 12;
    /// Allowed in the RESP2 subscribe context.
    pub const SUBSCRIBE_CONTEXT: u32 = 1 << 13;
    /// Executed immediately even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const NOT_QUEUED: u32 = 1 << 14;
    /// Only the admin user may run it (the operator's commands).
    pub const ADMIN_USER: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    /// Runs even while clients are paused (CLIENT UNPAUSE, INFO...).
    pub const SKIP_PAUSE: u32 = 1 << 17;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        // MAY_REPLICATE is not shown: Redis hides it from COMMAND INFO on purpose.
        (ALLOW_BUSY, "allow_busy"),
    ];
}

pub type CommandFn = fn(&mut Ctx<'_>, &[Arg]) -> Reply;
/// Returns the positions of key arguments for commands whose keys are not a simple range.
pub type KeysFn = fn(&[Arg]) -> Vec<usize>;

/// One entry of the command table.
pub struct CommandSpec {
    /// Lowercase name (for subcommands: the subcommand word alone).
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments including the name; -N = at least N.
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    /// Command group as COMMAND DOCS reports it (string, list, generic, server...).
    pub group: &'static str,
    pub run: CommandFn,
    pub keys: Option<KeysFn>,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// A command whose key arguments are first..=last stepping by step (0,0,0 = no keys).
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: (i32, i32, i32),
        group: &'static str,
        run: CommandFn,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: keys.0,
            last_key: keys.1,
            key_step: keys.2,
            group,
            run,
            keys: None,
            subcommands: &[],
        }
    }
    pub const fn with_subcommands(mut self, subs: &'static [CommandSpec]) -> CommandSpec {
        self.subcommands = subs;
        self
    }
    pub const fn with_keys(mut self, f: KeysFn) -> CommandSpec {
        self.keys = Some(f);
        self
    }
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
    /// Positions of the key arguments in `args`.
    pub fn key_positions(&self, args: &[Arg]) -> Vec<usize> {
        if let Some(f) = self.keys {
            return f(args);
        }
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 {
            args.len() as i32 + self.last_key
        } else {
            self.last_key
        };
        let mut out = Vec::new();
        let mut i = self.first_key;
        while i <= last && (i as usize) < args.len() {
            out.push(i as usize);
            i += self.key_step.max(1);
        }
        out
    }
}

/// All command families.
fn families() -> [&'static [CommandSpec]; 21] {
    [
        acl::COMMANDS,
        strings::COMMANDS,
        keys::COMMANDS,
        migrate::COMMANDS,
        unsupported::COMMANDS,
        bitmaps::COMMANDS,
        hyperloglog::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        streams::COMMANDS,
        geo::COMMANDS,
        transactions::COMMANDS,
        sort::COMMANDS,
        pubsub::COMMANDS,
        scripting::COMMANDS,
        server::COMMANDS,
        admin::COMMANDS,
        persistence::COMMANDS,
        replication::COMMANDS,
    ]
}

// Looked up for every request: a fast hasher (the keys are our own command names).
type CommandTable = HashMap<&'static str, &'static CommandSpec, ahash::RandomState>;

static TABLE: LazyLock<CommandTable> = LazyLock::new(|| {
    let mut m = CommandTable::default();
    for fam in families() {
        for c in fam {
            let prev = m.insert(c.name, c);
            assert!(prev.is_none(), "command {} defined twice", c.name);
        }
    }
    m
});

/// Every top-level command (COMMAND, COMMAND COUNT, COMMAND LIST).
pub fn all_commands() -> impl Iterator<Item = &'static CommandSpec> {
    TABLE.values().copied()
}

/// Look up a command by name, case-insensitively, without allocating for ordinary names.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // Clients send the same command many times in a row (pipelines, benchmarks, replication
    // streams): remember the last hit on this thread, by the bytes the client sent, and
    // compare the name with them first. An exact comparison of a few bytes: the
    // case-insensitive one it replaces was ~60 instructions of a pipelined SET.
    #[derive(Clone, Copy)]
    struct Last {
        raw: [u8; LAST_MAX],
        len: u8,
        spec: &'static CommandSpec,
    }
    const LAST_MAX: usize = 16;
    thread_local! {
        static LAST: std::cell::Cell<Option<Last>> = const { std::cell::Cell::new(None) };
    }
    if let Some(last) = LAST.get() {
        if usize::from(last.len) == name.len() && last.raw[..name.len()] == *name {
            return Some(last.spec);
        }
    }
    let found = lookup_in_table(name);
    if let Some(spec) = found {
        if name.len() <= LAST_MAX {
            let mut raw = [0u8; LAST_MAX];
            raw[..name.len()].copy_from_slice(name);
            LAST.set(Some(Last {
                raw,
                len: name.len() as u8,
                spec,
            }));
        }
    }
    found
}

fn lookup_in_table(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    TABLE.get(lower).copied()
}

/// Look up a subcommand of a container command.
pub fn lookup_sub(parent: &CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    parent
        .subcommands
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// A request to block the client until one of `keys` is ready or `timeout_ms` passes.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub keys: Vec<CompactBytes>,
    /// Absolute deadline in ms since the epoch; 0 = wait forever.
    pub deadline_ms: i64,
    /// The reply to send on timeout.
    pub timeout_reply: Reply,
    /// The command to run again when a key is ready, if not the received one (XREAD parks
    /// with `$` replaced by the stream's last ID).
    pub args: Option<Vec<Arg>>,
}

/// Everything a command may touch while it runs.
pub struct Ctx<'a> {
    pub state: &'a mut EngineState,
    pub client: &'a mut ClientState,
    /// Cached "now" for the whole command (Redis caches mstime per call too).
    pub now_ms: i64,
    /// False inside MULTI/EXEC and scripts: blocking commands answer at once.
    pub may_block: bool,
    pub block: Option<BlockRequest>,
    /// Replacement effects to propagate instead of the received command.
    pub rewrites: Option<Vec<Vec<Arg>>>,
    /// Running inside a script (redis.call).
    pub in_script: bool,
    /// Running a parked blocking command again for a key that became ready.
    pub serving_blocked: bool,
    /// The error this command is about to answer was already counted in the error statistics
    /// (a script's error that a command it ran raised: Redis counts it once, when the command
    /// failed, and flags the script's reply to not count it again).
    pub error_counted: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(state: &'a mut EngineState, client: &'a mut ClientState, now_ms: i64) -> Ctx<'a> {
        Ctx {
            state,
            client,
            now_ms,
            may_block: true,
            block: None,
            rewrites: None,
            in_script: false,
            serving_blocked: false,
            error_counted: false,
        }
    }

    /// The client's current database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.state.dbs[self.client.db]
    }

    /// Record that `key` was changed: counts a change (which makes the command propagate) and
    /// fails the transactions of clients WATCHing it (Redis `signalModifiedKey` + `dirty++`).
    pub fn modified(&mut self, key: &[u8]) {
        self.state.dirty += 1;
        self.state.dirty_since_save += 1;
        let db = self.client.db;
        self.state.watches.touch(db, key);
        crate::engine::tracking::invalidate_key(self.state, key, self.client.id, self.now_ms);
    }

    /// Like [`Ctx::modified`] for a key in another database (MOVE, COPY ... DB).
    pub fn modified_in(&mut self, db: usize, key: &[u8]) {
        self.state.dirty += 1;
        self.state.dirty_since_save += 1;
        self.state.watches.touch(db, key);
        crate::engine::tracking::invalidate_key(self.state, key, self.client.id, self.now_ms);
    }

    /// A list or sorted set at `key` received elements: blocked clients may be served.
    pub fn signal_ready(&mut self, key: &[u8]) {
        let db = self.client.db;
        if self.state.blocking.has_waiters(db, key) {
            self.state.blocking.ready.push((db, CompactBytes::new(key)));
        }
    }

    /// Propagate `args` instead of the received command (may be called several times).
    pub fn propagate_as(&mut self, args: Vec<Arg>) {
        self.rewrites.get_or_insert_with(Vec::new).push(args);
    }

    /// Propagate nothing for this command even though it changed state.
    pub fn propagate_nothing(&mut self) {
        self.rewrites.get_or_insert_with(Vec::new);
    }

    /// Ask to block (only when `may_block`); returns the reply to send meanwhile (none).
    pub fn block_on(
        &mut self,
        keys: Vec<CompactBytes>,
        deadline_ms: i64,
        timeout_reply: Reply,
    ) -> Reply {
        self.block = Some(BlockRequest {
            keys,
            deadline_ms,
            timeout_reply,
            args: None,
        });
        Reply::NoReply
    }

    /// After [`Ctx::block_on`]: park `args` instead of the received command.
    pub fn block_args(&mut self, args: Vec<Arg>) {
        if let Some(b) = self.block.as_mut() {
            b.args = Some(args);
        }
    }
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    (arity > 0 && argc == arity as usize) || (arity < 0 && argc >= (-arity) as usize)
}

/// The name Redis uses in messages ("get", "client|setname").
fn full_name(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, spec.name),
        None => spec.name.to_string(),
    }
}

fn unknown_command(args: &[Arg]) -> Reply {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let s = String::from_utf8_lossy(a);
        let room = 128 - rest.len();
        rest.push_str(&format!("'{}' ", s.chars().take(room).collect::<String>()));
    }
    Reply::error(format!(
        "ERR unknown command '{name}', with args beginning with: {rest}"
    ))
}

/// Resolve the spec for a request: the command, or its subcommand for container commands.
/// Returns (spec, parent) or the error reply Redis gives.
pub fn resolve(
    args: &[Arg],
) -> Result<(&'static CommandSpec, Option<&'static CommandSpec>), Reply> {
    let Some(spec) = lookup(&args[0]) else {
        return Err(unknown_command(args));
    };
    if spec.subcommands.is_empty() {
        if !arity_ok(spec.arity, args.len()) {
            return Err(Reply::error(format!(
                "ERR wrong number of arguments for '{}' command",
                spec.name
            )));
        }
        return Ok((spec, None));
    }
    if args.len() < 2 {
        // A container that also runs alone (COMMAND) has an arity that allows it.
        if arity_ok(spec.arity, 1) {
            return Ok((spec, None));
        }
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    let Some(sub) = lookup_sub(spec, &args[1]) else {
        let s = String::from_utf8_lossy(&args[1]);
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            s.chars().take(128).collect::<String>(),
            spec.name.to_ascii_uppercase()
        )));
    };
    if !arity_ok(sub.arity, args.len()) {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            full_name(sub, Some(spec))
        )));
    }
    Ok((sub, Some(spec)))
}

/// The outcome of running one request for a connection.
pub enum Outcome {
    Reply(Reply),
    /// Clients are paused (CLIENT PAUSE): try `args` again at `until_ms` or after UNPAUSE.
    Paused {
        args: Vec<Arg>,
        until_ms: i64,
    },
    /// The client must wait; the connection awaits `rx` or the deadline.
    Blocked {
        rx: tokio::sync::oneshot::Receiver<Reply>,
        deadline_ms: i64,
        timeout_reply: Reply,
    },
}

/// Run one client request against the locked state (the full `processCommand` path).
pub fn process(
    state: &mut EngineState,
    client: &mut ClientState,
    mut args: Vec<Arg>,
    now_ms: i64,
) -> Outcome {
    process_in(state, client, &mut args, now_ms)
}

/// [`process`] on a request the caller keeps: what the command does not keep (queued by
/// MULTI, parked by a block or a pause) is left in `args`, so a connection can hand the
/// emptied vector back to its parser (`RequestParser::recycle`) instead of freeing one vector
/// and allocating the next for every request.
pub fn process_in(
    state: &mut EngineState,
    client: &mut ClientState,
    args: &mut Vec<Arg>,
    now_ms: i64,
) -> Outcome {
    let (spec, parent) = match resolve(args) {
        Ok(x) => x,
        Err(e) => {
            if client.multi.active {
                client.multi.aborted = true;
            }
            state.stats.rejected_calls += 1;
            count_error(state, &e);
            if lookup(&args[0]).is_some_and(|c| c.name == "exec") {
                return Outcome::Reply(transactions::abort_exec(state, client, &e));
            }
            return Outcome::Reply(e);
        }
    };
    let top = parent.unwrap_or(spec);
    // A lowered tracking-table-max-keys applies from the next command on (and in the
    // periodic task), as in Redis.
    if state.tracking.active() {
        crate::engine::tracking::limit_table(state, now_ms);
    }
    if !client.is_authenticated() && !top.has(flags::NO_AUTH) {
        if client.multi.active {
            client.multi.aborted = true;
        }
        let e = Reply::err_static("NOAUTH Authentication required.");
        if spec.name == "exec" {
            return Outcome::Reply(transactions::abort_exec(state, client, &e));
        }
        return Outcome::Reply(e);
    }
    if client.in_subscribe_context() && !top.has(flags::SUBSCRIBE_CONTEXT) {
        let e = Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            full_name(spec, parent)
        ));
        if spec.name == "exec" {
            return Outcome::Reply(transactions::abort_exec(state, client, &e));
        }
        return Outcome::Reply(e);
    }
    // While a replica loads its master's snapshot (full sync) its dataset is partial: like
    // Redis, only commands flagged `loading` (INFO, PING, ROLE, the admin commands ...) are
    // served, so a read through the read-only Service never sees half a dataset. The stream
    // from the master itself is applied by a replication client and is not held back.
    if state.persist.loading && !client.is_replication && !top.has(flags::LOADING) {
        if client.multi.active {
            client.multi.aborted = true;
        }
        state.stats.rejected_calls += 1;
        return Outcome::Reply(Reply::err_static(
            "LOADING Redis is loading the dataset in memory",
        ));
    }
    if top.has(flags::ADMIN_USER) && !client.admin {
        return Outcome::Reply(Reply::error(format!(
            "NOPERM this user has no permissions to run the '{}' command",
            full_name(spec, parent)
        )));
    }
    if !client.is_replication {
        if let Err(d) = acl::check(
            state,
            client,
            spec,
            args,
            if client.multi.active {
                crate::engine::acl::LogContext::Multi
            } else {
                crate::engine::acl::LogContext::Toplevel
            },
            now_ms,
        ) {
            let e = acl::toplevel_reply(d, spec);
            state.stats.rejected_calls += 1;
            if client.multi.active {
                client.multi.aborted = true;
            }
            if spec.name == "exec" {
                return Outcome::Reply(transactions::abort_exec(state, client, &e));
            }
            return Outcome::Reply(e);
        }
    }
    // The write log cannot be written (a full disk): write commands are refused with MISCONF,
    // also when MULTI would queue them (EXEC then answers EXECABORT) and EXEC with queued
    // writes, as Redis refuses them (`writeCommandsDeniedByDiskError`). Reads and PING go on
    // (Redis refuses PING too; here PING is the readiness probe, see docs/compatibility.md).
    // The master's stream on a replica is not refused: it is the master's history, queued for
    // the log until the disk takes it.
    if !client.is_replication {
        if let Some(e) = disk_error_reply(state) {
            let exec_writes = spec.name == "exec"
                && client.multi.active
                && client
                    .multi
                    .queued
                    .iter()
                    .any(|args| resolve(args).is_ok_and(|(s, p)| is_write(s, p.unwrap_or(s))));
            if exec_writes {
                state.stats.rejected_calls += 1;
                return Outcome::Reply(transactions::abort_exec(state, client, &e));
            }
            if is_write(spec, top) && !top.has(flags::NOT_QUEUED) {
                if client.multi.active {
                    client.multi.aborted = true;
                }
                state.stats.rejected_calls += 1;
                return Outcome::Reply(e);
            }
        }
    }
    // min-replicas-to-write and replica-serve-stale-data, as Redis's processCommand applies them
    // (also to EXEC of a transaction holding such commands, which is then aborted).
    if !client.is_replication {
        if let Some(e) = replica_state_refusal(state, client, spec, top, now_ms) {
            state.stats.rejected_calls += 1;
            if spec.name == "exec" {
                return Outcome::Reply(transactions::abort_exec(state, client, &e));
            }
            if client.multi.active {
                client.multi.aborted = true;
            }
            return Outcome::Reply(e);
        }
    }
    // A script or function that declared flags is judged by them (Redis's getCommandFlags).
    // Only EVAL/EVALSHA/FCALL (and their _RO forms) can declare flags: the name test keeps
    // the six case-insensitive comparisons of `declared_flags` off every other command (they
    // were ~87 instructions of a pipelined SET).
    if !client.is_replication && !client.multi.active && runs_script(spec) {
        if let Some(e) = declared_script_refusal(state, client, args, now_ms) {
            state.stats.rejected_calls += 1;
            count_rejection(state, Some((spec, parent)), &e);
            return Outcome::Reply(e);
        }
    }
    // EXEC of a transaction holding a command that may grow memory is refused as a whole when
    // nothing more can be evicted, as Redis does (`is_denyoom_command` covers EXEC by what it
    // holds): EXECABORT, rather than an OOM error inside the reply array.
    if spec.name == "exec"
        && client.multi.active
        && state.config.settings.maxmemory > 0
        && !client.is_replication
        && client.multi.queued.iter().any(|args| {
            resolve(args).is_ok_and(|(s, p)| {
                s.has(flags::DENYOOM) || p.is_some_and(|p| p.has(flags::DENYOOM))
            })
        })
        && !crate::engine::eviction::free_memory_if_needed(state)
    {
        state.stats.rejected_calls += 1;
        let e = Reply::err_static("OOM command not allowed when used memory > 'maxmemory'.");
        return Outcome::Reply(transactions::abort_exec(state, client, &e));
    }
    if client.multi.active && !top.has(flags::NOT_QUEUED) {
        if top.has(flags::NO_MULTI) {
            client.multi.aborted = true;
            return Outcome::Reply(Reply::err_static(
                "ERR Command not allowed inside a transaction",
            ));
        }
        // Over maxmemory a command that may grow memory is refused when queued, as Redis does
        // (the transaction then ends in EXECABORT), not only when EXEC runs it.
        if (spec.has(flags::DENYOOM) || top.has(flags::DENYOOM))
            && state.config.settings.maxmemory > 0
            && !client.is_replication
            && !crate::engine::eviction::free_memory_if_needed(state)
        {
            client.multi.aborted = true;
            state.stats.rejected_calls += 1;
            return Outcome::Reply(Reply::err_static(
                "OOM command not allowed when used memory > 'maxmemory'.",
            ));
        }
        client.multi.queued.push(std::mem::take(args));
        return Outcome::Reply(Reply::status("QUEUED"));
    }
    if let Some(until_ms) = paused_until(state, client, spec, top, args, now_ms) {
        return Outcome::Paused {
            args: std::mem::take(args),
            until_ms,
        };
    }
    state.hold_expiries(now_ms);
    if let Some(err) = precheck(state, client, spec, top) {
        count_rejection(state, Some((spec, parent)), &err);
        return Outcome::Reply(err);
    }
    let dirty_before = state.dirty;
    state.tracking.read_happened = false;
    let mut ctx = Ctx::new(state, client, now_ms);
    let reply = call(&mut ctx, spec, parent, args);
    let block = ctx.block.take();
    if !state.tracking.clients.is_empty() {
        after_tracked_command(state, client, spec, top, args, now_ms);
    }
    if state.dirty != dirty_before {
        streams::signal_lost_streams(state);
    }
    if !state.blocking.ready.is_empty() {
        // Redis reads the clock again before serving blocked clients (updateCachedTime in
        // handleClientsBlockedOnKeys): a key whose time ran out while the command ran (a DEBUG
        // SLEEP inside EXEC) is expired for them, and its DEL is propagated after the command.
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(now_ms, |d| d.as_millis() as i64);
        serve_blocked(state, wall_ms.max(now_ms));
    }
    match block {
        None => Outcome::Reply(reply),
        Some(req) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            state.blocking.block(
                client.id,
                BlockedClient {
                    db: client.db,
                    keys: req.keys,
                    args: req.args.unwrap_or_else(|| std::mem::take(args)),
                    proto: client.proto,
                    reply: tx,
                    timeout_reply: req.timeout_reply.clone(),
                },
            );
            Outcome::Blocked {
                rx,
                deadline_ms: req.deadline_ms,
                timeout_reply: req.timeout_reply,
            }
        }
    }
}

/// CLIENT TRACKING after a top-level command: remember the keys it read, forget CLIENT
/// CACHING (it covers one command, or a whole transaction), send pending BCAST keys.
fn after_tracked_command(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    args: &[Arg],
    now_ms: i64,
) {
    if state.tracking.read_happened {
        state.tracking.read_happened = false;
        remember_tracked_keys(state, client, spec, args, now_ms);
    }
    if top.name != "client" && !client.multi.active {
        if let Some(t) = state.tracking.clients.get_mut(&client.id) {
            t.caching = None;
        }
    }
    crate::engine::tracking::broadcast_pending(state, now_ms);
}

fn remember_tracked_keys(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    args: &[Arg],
    now_ms: i64,
) {
    if !state.tracking.clients.contains_key(&client.id) {
        return;
    }
    let keys = spec
        .key_positions(args)
        .into_iter()
        .filter_map(|p| args.get(p).map(|a| a.to_bytes()))
        .collect();
    crate::engine::tracking::remember_keys(state, client.id, keys, now_ms);
}

fn paused_until(
    state: &EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    args: &[Arg],
    now_ms: i64,
) -> Option<i64> {
    let p = state.pause;
    if p.until_ms <= now_ms {
        return None;
    }
    // A script or function that declared `no-writes` is not a write (Redis drops its
    // `may-replicate`); any other may-replicate command (EVAL, PUBLISH, PFCOUNT) is.
    let writes = |s: &CommandSpec, t: &CommandSpec, args: &[Arg]| {
        s.has(flags::WRITE)
            || t.has(flags::WRITE)
            || (s.has(flags::MAY_REPLICATE) && !scripting::declares_no_writes(state, args))
    };
    // EXEC counts as a write when it would run one, even though EXEC itself skips pauses
    // (otherwise a transaction would slip writes past CLIENT PAUSE WRITE, which a switchover
    // relies on to fence the old master).
    let exec_writes = std::ptr::eq(spec, top)
        && spec.name == "exec"
        && client
            .multi
            .queued
            .iter()
            .any(|a| resolve(a).is_ok_and(|(s, parent)| writes(s, parent.unwrap_or(s), a)));
    if top.has(flags::SKIP_PAUSE) && !exec_writes {
        return None;
    }
    if p.writes_only && !(writes(spec, top, args) || exec_writes) {
        return None;
    }
    Some(p.until_ms)
}

fn is_write(spec: &CommandSpec, top: &CommandSpec) -> bool {
    spec.has(flags::WRITE) || top.has(flags::WRITE)
}

/// `-MISCONF Errors writing to the AOF file: <OS error>` while the write log cannot be written
/// (Redis's text, so clients and tools recognise it), else None.
///
/// Inline: every command asks (twice for a write), and the answer is almost always "no log"
/// or one atomic load; as an out-of-line call returning an `Option<Reply>` it was ~21
/// instructions each time.
#[inline]
pub fn disk_error_reply(state: &EngineState) -> Option<Reply> {
    let log = state.stream.log.as_ref()?;
    if !log.write_failed() {
        return None;
    }
    disk_error_text(state)
}

#[cold]
#[inline(never)]
fn disk_error_text(state: &EngineState) -> Option<Reply> {
    let text = state.stream.log.as_ref()?.write_error()?;
    Some(Reply::error(format!(
        "MISCONF Errors writing to the AOF file: {text}"
    )))
}

/// Whether a command runs Lua (EVAL, EVALSHA, FCALL and their _RO forms): the only commands
/// whose script may declare flags (`#!lua flags=...`, `register_function{flags=...}`).
#[inline]
fn runs_script(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Redis's two refusals that depend on replication: a master with `min-replicas-to-write` set
/// refuses writes (`NOREPLICAS`) while fewer replicas acknowledged within
/// `min-replicas-max-lag`; a replica with `replica-serve-stale-data no` whose link to its master
/// is down refuses everything not flagged `stale` (`MASTERDOWN`). EXEC is judged by what it
/// holds. Two loads and compares when both are off (the defaults).
fn replica_state_refusal(
    state: &EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    now_ms: i64,
) -> Option<Reply> {
    let settings = &state.config.settings;
    if settings.min_replicas_to_write == 0 && settings.replica_serve_stale_data {
        return None;
    }
    let queued = || {
        client
            .multi
            .queued
            .iter()
            .filter_map(|args| resolve(args).ok())
    };
    let exec = spec.name == "exec" && client.multi.active;
    let role = state.repl.role;
    let writes = if exec {
        queued().any(|(s, p)| is_write(s, p.unwrap_or(s)))
    } else {
        is_write(spec, top) && !top.has(flags::NOT_QUEUED)
    };
    if writes {
        if let Some(e) = good_replicas_refusal(state, now_ms) {
            return Some(e);
        }
    }
    if !settings.replica_serve_stale_data
        && role == crate::engine::replication::Role::Replica
        && !state.repl.link.up
    {
        // PING is flagged `stale` here so that it answers as the readiness probe (as it does
        // with a full disk); Redis's PING is not, and a queued PING counts as Redis's.
        let denied = if exec {
            queued().any(|(s, p)| {
                let t = p.unwrap_or(s);
                !t.has(flags::STALE) || t.name == "ping"
            })
        } else {
            // A write to a read-only replica is answered READONLY (checked later, in
            // `precheck`), as Redis checks that before staleness.
            !(top.has(flags::STALE) || state.read_only && is_write(spec, top))
        };
        if denied {
            return Some(Reply::err_static(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    }
    None
}

/// `NOREPLICAS` when this is a master with `min-replicas-to-write` set and fewer replicas
/// acknowledged within `min-replicas-max-lag` (Redis's `checkGoodReplicasStatus`), for a write
/// about to run.
pub fn good_replicas_refusal(state: &EngineState, now_ms: i64) -> Option<Reply> {
    let settings = &state.config.settings;
    if settings.min_replicas_to_write == 0
        || state.repl.role != crate::engine::replication::Role::Master
    {
        return None;
    }
    let lag = settings.min_replicas_max_lag_ms;
    let good = state
        .repl
        .replicas
        .values()
        .filter(|r| r.online && now_ms - r.last_ack_ms <= lag)
        .count();
    (good < settings.min_replicas_to_write)
        .then(|| Reply::err_static("NOREPLICAS Not enough good replicas to write."))
}

/// What Redis's `processCommand` refuses of an EVAL/EVALSHA/FCALL whose script or function
/// declared flags, judged by those flags instead of the command's (`scriptFlagsToCmdFlags`):
/// a write (no `no-writes`) on a read-only replica, with a full disk, without enough good
/// replicas; over maxmemory unless `allow-oom` or `no-writes`; on a stale replica unless
/// `allow-stale`. None for anything else, and for scripts without a shebang (their commands
/// are checked one by one as they run).
fn declared_script_refusal(
    state: &mut EngineState,
    client: &ClientState,
    args: &[Arg],
    now_ms: i64,
) -> Option<Reply> {
    let declared = scripting::declared_flags(state, args)?;
    if !declared.no_writes {
        if state.read_only {
            return Some(Reply::err_static(
                "READONLY You can't write against a read only replica.",
            ));
        }
        if let Some(e) = disk_error_reply(state) {
            return Some(e);
        }
        if let Some(e) = good_replicas_refusal(state, now_ms) {
            return Some(e);
        }
    }
    if !declared.allow_stale
        && !state.config.settings.replica_serve_stale_data
        && state.repl.role == crate::engine::replication::Role::Replica
        && !state.repl.link.up
    {
        return Some(Reply::err_static(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        ));
    }
    if declared.deny_oom()
        && state.config.settings.maxmemory > 0
        && !crate::engine::eviction::free_memory_if_needed(state)
    {
        return Some(Reply::err_static(
            "OOM command not allowed when used memory > 'maxmemory'.",
        ));
    }
    let _ = client;
    None
}

/// [`precheck`] for a command a script runs: `skip_oom` when the script declared `allow-oom`
/// or already wrote (Redis does not stop a script halfway through its writes).
pub fn precheck_in_script(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    skip_oom: bool,
) -> Option<Reply> {
    let read_only = state.read_only;
    precheck_with(state, client, spec, top, read_only, skip_oom)
}

/// Checks that apply to commands about to run (also for each command inside EXEC): memory
/// limit, full disk, read-only replica, write lease.
pub fn precheck(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
) -> Option<Reply> {
    let read_only = state.read_only;
    precheck_as(state, client, spec, top, read_only)
}

/// [`precheck`] with the read-only state to check against given: EXEC passes the state it had
/// when the transaction started, as Redis checks READONLY once for the whole EXEC (a REPLICAOF
/// queued in the transaction does not refuse the writes queued after it).
fn precheck_as(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    read_only: bool,
) -> Option<Reply> {
    precheck_with(state, client, spec, top, read_only, false)
}

fn precheck_with(
    state: &mut EngineState,
    client: &ClientState,
    spec: &CommandSpec,
    top: &CommandSpec,
    read_only: bool,
    skip_oom: bool,
) -> Option<Reply> {
    let is_write = spec.has(flags::WRITE) || top.has(flags::WRITE);
    if is_write && read_only && !client.is_replication {
        return Some(Reply::err_static(
            "READONLY You can't write against a read only replica.",
        ));
    }
    // A master whose lease lapsed may already have been replaced: a replica promoted after a
    // partition holds writes this one never saw. So it refuses writes (READONLY: the error
    // clients already treat as "reconnect to the master") and reads of data too (MASTERDOWN),
    // since a read served here could be older than writes the new master acknowledged. A
    // client reaching it through stale routing (a healed node's kube-proxy) gets an error,
    // never old data. The operator's admin user is exempt: it inspects, it does not read data.
    let is_read = spec.has(flags::READONLY) || top.has(flags::READONLY);
    if (is_write || is_read)
        && !client.is_replication
        && !client.admin
        && state.repl.role == crate::engine::replication::Role::Master
        && !crate::engine::replication::lease::fresh(&state.repl)
    {
        return Some(Reply::err_static(if is_write {
            "READONLY The write lease of this master has lapsed (it may have been replaced)."
        } else {
            "MASTERDOWN The write lease of this master has lapsed (it may have been replaced): reads are refused too."
        }));
    }
    // Over maxmemory every command evicts first (reads too, as Redis's `performEvictions`);
    // only commands that may grow memory are refused when nothing more can be evicted.
    if state.config.settings.maxmemory > 0
        && !client.is_replication
        && !skip_oom
        && !crate::engine::eviction::free_memory_if_needed(state)
        && (spec.has(flags::DENYOOM) || top.has(flags::DENYOOM))
    {
        state.stats.rejected_calls += 1;
        return Some(Reply::err_static(
            "OOM command not allowed when used memory > 'maxmemory'.",
        ));
    }
    // Inside EXEC and scripts too (the top-level check is in `process`, before queueing).
    if is_write && !client.is_replication {
        if let Some(e) = disk_error_reply(state) {
            state.stats.rejected_calls += 1;
            return Some(e);
        }
    }
    None
}

/// A command was refused before running (Redis's `rejectCommand`, and `scriptCall`'s error
/// path for a command a script runs): the error counts in the error statistics now, and as a
/// rejected call of the command when it was found (`spec`).
pub fn count_rejection(
    state: &mut EngineState,
    spec: Option<(&'static CommandSpec, Option<&'static CommandSpec>)>,
    reply: &Reply,
) {
    if let Some((spec, parent)) = spec {
        state
            .stats
            .commands
            .entry(crate::engine::state::CommandName(if parent.is_some() {
                crate::engine::acl::full_name(spec)
            } else {
                spec.name
            }))
            .or_default()
            .rejected += 1;
    }
    count_error(state, reply);
}

fn count_error(state: &mut EngineState, reply: &Reply) {
    if let Reply::Error(e) = reply {
        state.stats.total_error_replies += 1;
        let code = e.split(|c| *c == b' ').next().unwrap_or(b"ERR");
        *state
            .stats
            .errors
            .entry(String::from_utf8_lossy(code).into_owned())
            .or_default() += 1;
    }
}

/// Run a resolved command and propagate its effects (Redis `call()`).
pub fn call(
    ctx: &mut Ctx<'_>,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    args: &[Arg],
) -> Reply {
    let dirty_before = ctx.state.dirty;
    // Every command is timed (INFO commandstats, SLOWLOG). `quanta` reads the CPU's TSC where
    // it is usable: two vDSO clock_gettime calls per command were ~5 % of a pipelined SET.
    let started = quanta::Instant::now();
    crate::engine::eviction::before_command(ctx.state, ctx.client.db, ctx.now_ms);
    // Keyspace notifications: one load and compare when they are off.
    let notify_keys = (ctx.state.config.settings.notify_flags != 0
        && (spec.has(flags::WRITE) || parent.is_some_and(|p| p.has(flags::WRITE))))
    .then(|| crate::engine::notify::keys_before(ctx.state, ctx.client.db, spec, args, ctx.now_ms));
    // Invalidations this command causes for its own client follow its reply (evictions just
    // above went out before it, as in Redis).
    let executing_before = std::mem::replace(&mut ctx.state.tracking.executing, ctx.client.id);
    // MONITOR shows a script's EVAL/FCALL before the commands it runs (Redis's order); every
    // other command after it ran (so that it can redact its secrets first).
    let monitor_first = matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    );
    if monitor_first && !ctx.state.monitors.is_empty() {
        server::feed_monitors(ctx, args);
    }
    let reply = (spec.run)(ctx, args);
    let elapsed_us = started.elapsed().as_micros() as u64;
    // CLIENT TRACKING: a read-only command ran; its keys (or, inside a script, the script's
    // declared keys) are remembered when the top-level command ends. The read-only script
    // commands themselves do not count: only what they call.
    if !ctx.state.tracking.clients.is_empty()
        && (spec.has(flags::READONLY) || parent.is_some_and(|p| p.has(flags::READONLY)))
        && !matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        ctx.state.tracking.read_happened = true;
    }
    // Whether the command itself changed the dataset (the DELs of keys it found expired are
    // counted next, and send `expired`, not the command's event).
    let wrote = ctx.state.dirty != dirty_before;
    // Keys removed by lazy expiry during the command are propagated before the command itself,
    // in the order they happened (a replica must not see the command act on a key it still has).
    ctx.state.propagate_expired();
    ctx.state.tracking.executing = executing_before;
    let changed = ctx.state.dirty != dirty_before;
    if let Some(keys) = notify_keys {
        if wrote && !reply.is_error() {
            let db = ctx.client.db;
            crate::engine::notify::after_write(
                ctx.state, db, spec, parent, args, &keys, ctx.now_ms,
            );
        }
    }
    if let Some(rewrites) = ctx.rewrites.take() {
        let db = ctx.client.db;
        for r in rewrites {
            ctx.state.propagate(db, r);
        }
    } else if changed && !spec.has(flags::READONLY) {
        let db = ctx.client.db;
        ctx.state.propagate_slice(db, args);
    }
    let stats = &mut ctx.state.stats;
    if !ctx.serving_blocked {
        stats.total_commands_processed += 1;
    }
    let top = parent.unwrap_or(spec);
    let entry = stats
        .commands
        // Subcommands have statistics of their own (cmdstat_client|id), as in Redis 7.
        .entry(crate::engine::state::CommandName(if parent.is_some() {
            crate::engine::acl::full_name(spec)
        } else {
            spec.name
        }))
        .or_default();
    // A parked command run again is the same call (Redis counts a blocked command once:
    // when it is served or times out); its failure still counts.
    if !ctx.serving_blocked {
        entry.calls += 1;
    }
    entry.usec += elapsed_us;
    entry.hist[crate::engine::latency::bucket_of(elapsed_us)] += 1;
    if reply.is_error() {
        entry.failed += 1;
        if !std::mem::take(&mut ctx.error_counted) {
            count_error(ctx.state, &reply);
        }
    }
    if !monitor_first
        && !ctx.state.monitors.is_empty()
        && !top.has(flags::ADMIN)
        && !spec.has(flags::ADMIN)
    {
        server::feed_monitors(ctx, args);
    }
    slowlog::record_if_slow(ctx, spec, args, elapsed_us);
    // The latency monitor (latency-monitor-threshold, ms): `command`, or `fast-command` for
    // commands flagged fast, as Redis names them.
    let latency_threshold = ctx.state.config.settings.latency_monitor_threshold_ms;
    if latency_threshold > 0 && elapsed_us / 1000 >= latency_threshold && !ctx.serving_blocked {
        let event = if spec.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        let now_secs = ctx.now_ms / 1000;
        ctx.state.latency_monitor.add_if_needed(
            event,
            elapsed_us / 1000,
            latency_threshold,
            now_secs,
        );
    }
    reply
}

/// Serve clients blocked on keys that became ready, longest waiter first, by running their
/// command again. Repeats until no served command makes further keys ready (BLMOVE can feed
/// another list).
pub fn serve_blocked(state: &mut EngineState, now_ms: i64) {
    while !state.blocking.ready.is_empty() {
        let ready = std::mem::take(&mut state.blocking.ready);
        for (db, key) in ready {
            // The waiters as they are now (serving one may add or remove others).
            let waiters: Vec<u64> = match state.blocking.by_key.get(&(db, key.clone())) {
                Some(q) => q.iter().copied().collect(),
                None => continue,
            };
            for id in waiters {
                let Some(b) = state.blocking.clients.get(&id) else {
                    continue;
                };
                let (args, proto) = (b.args.clone(), b.proto);
                let mut tmp = ClientState::internal(id, db, proto);
                let Ok((spec, parent)) = resolve(&args) else {
                    break;
                };
                // Like Redis (serveClientsBlockedOnListKey / ...ZsetKey), a list or sorted-set
                // pop is served only by a key of its type: a key that became something else
                // (LPUSH + DEL + SET in one EXEC) leaves it blocked, not failed with WRONGTYPE.
                if let (Some(wanted), Some(e)) =
                    (blocked_pop_type(spec), state.dbs[db].peek(key.as_slice()))
                {
                    if e.value.value_type() != wanted {
                        break;
                    }
                }
                let mut ctx = Ctx::new(state, &mut tmp, now_ms);
                ctx.serving_blocked = true;
                let reply = call(&mut ctx, spec, parent, &args);
                let still_blocked = ctx.block.is_some();
                if still_blocked {
                    // A list or sorted set that cannot serve its longest waiter cannot serve
                    // the others either. Stream readers wait for different IDs: each is
                    // tried.
                    if streams::is_stream_read(spec) {
                        continue;
                    }
                    break;
                }
                if let Some(b) = state.blocking.unblock(id) {
                    // Invalidations the served command caused for this client follow its
                    // reply on its connection: sent as one piece, already encoded.
                    let pushes = crate::engine::tracking::take_held_for(state, id);
                    let reply = if pushes.is_empty() {
                        reply
                    } else {
                        let mut out = bytes::BytesMut::new();
                        reply.encode(b.proto, &mut out);
                        for p in pushes {
                            p.encode(b.proto, &mut out);
                        }
                        Reply::Raw(out.freeze())
                    };
                    let _ = b.reply.send(reply);
                }
            }
        }
    }
}

/// The type of value a blocking pop waits for (None for stream reads, served separately).
fn blocked_pop_type(spec: &CommandSpec) -> Option<crate::engine::storage::value::ValueType> {
    use crate::engine::storage::value::ValueType;
    match spec.name {
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" => Some(ValueType::List),
        "bzpopmin" | "bzpopmax" | "bzmpop" => Some(ValueType::ZSet),
        _ => None,
    }
}

/// Run the commands queued by MULTI (EXEC).
pub fn exec_queued(ctx: &mut Ctx<'_>, multi: MultiState) -> Reply {
    let opened = ctx.state.begin_effects_batch();
    let read_only_at_start = ctx.state.read_only;
    let mut replies = Vec::with_capacity(multi.queued.len());
    for args in multi.queued {
        let reply = match resolve(&args) {
            Err(e) => e,
            Ok((spec, parent)) => {
                let top = parent.unwrap_or(spec);
                // ACL rules may have changed since the command was queued (Redis checks again).
                let denied = acl::check(
                    ctx.state,
                    ctx.client,
                    spec,
                    &args,
                    crate::engine::acl::LogContext::Multi,
                    ctx.now_ms,
                )
                .err()
                .map(acl::exec_reply);
                match denied
                    .or_else(|| precheck_as(ctx.state, ctx.client, spec, top, read_only_at_start))
                {
                    Some(e) => e,
                    None => {
                        ctx.may_block = false;
                        ctx.state.tracking.read_happened = false;
                        let r = call(ctx, spec, parent, &args);
                        ctx.block = None;
                        if ctx.state.tracking.read_happened {
                            ctx.state.tracking.read_happened = false;
                            remember_tracked_keys(ctx.state, ctx.client, spec, &args, ctx.now_ms);
                        }
                        r
                    }
                }
            }
        };
        replies.push(reply);
    }
    if opened {
        ctx.state.end_effects_batch();
    }
    // The queued commands propagated their own effects; EXEC itself adds none.
    ctx.propagate_nothing();
    Reply::Array(replies)
}
