//! Engine configuration: the table of every setting, redis.conf parsing, CONFIG GET/SET
//! semantics and the command line built from the table. Pure except [`Config::load_file`].
//!
//! One table drives everything: `--help`, `--name value` flags, `name value` config-file lines,
//! CONFIG GET (glob patterns) and CONFIG SET (validation, immutability). Values are stored in their
//! canonical text form (what CONFIG GET prints) and the hot ones are mirrored into typed fields of
//! [`Settings`] whenever they change, so the request path never parses strings.

use std::collections::BTreeMap;
use thiserror::Error;

use crate::engine::glob::glob_match;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    Invalid { name: String, reason: String },
    #[error("CONFIG SET failed (possibly related to argument '{0}') - can't set immutable config")]
    Immutable(String),
    #[error("Bad directive or wrong number of arguments at line {line}: {text}")]
    BadDirective { line: usize, text: String },
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
}

/// What kind of value a setting holds; decides how input is validated and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte size accepting k/kb/m/mb/g/gb suffixes; printed as a plain number of bytes.
    Memory,
    /// A byte size, or a percentage (`N%`, at most 100) of `maxmemory` (Redis's
    /// `PERCENT_CONFIG` memory settings).
    MemoryOrPercent,
    Enum(&'static [&'static str]),
    Str,
    /// Free text with several words (save, bind, client-output-buffer-limit ...).
    Multi,
}

pub struct Def {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
    /// Redis's `HIDDEN_CONFIG`: CONFIG GET shows it only when asked for by its exact name.
    pub hidden: bool,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> Def {
    Def {
        name,
        alias: None,
        kind,
        default,
        mutable: true,
        hidden: false,
        help,
    }
}
/// A test hook of Redis's that CONFIG GET lists only by its exact name.
const fn hidden(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> Def {
    Def {
        name,
        alias: None,
        kind,
        default,
        mutable: true,
        hidden: true,
        help,
    }
}
const fn fixed(name: &'static str, kind: Kind, default: &'static str, help: &'static str) -> Def {
    Def {
        name,
        alias: None,
        kind,
        default,
        mutable: false,
        hidden: false,
        help,
    }
}
const fn aliased(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> Def {
    Def {
        name,
        alias: Some(alias),
        kind,
        default,
        mutable: true,
        hidden: false,
        help,
    }
}

const INT: Kind = Kind::Int {
    min: i64::MIN,
    max: i64::MAX,
};
const UINT: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

pub const EVICTION_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Settings Redis 7.0 flags `IMMUTABLE_CONFIG` (CONFIG SET refuses them whatever the value).
const REDIS_IMMUTABLE: &[&str] = &[
    "daemonize",
    "io-threads-do-reads",
    "always-show-logo",
    "syslog-enabled",
    "cluster-enabled",
    "disable-thp",
    "aclfile",
    "unixsocket",
    "pidfile",
    "syslog-ident",
    "appendfilename",
    "appenddirname",
    "supervised",
    "syslog-facility",
    "databases",
    "io-threads",
    "logfile",
    "unixsocketperm",
    "set-proc-title",
    "cluster-config-file",
    "cluster-port",
    "tcp-backlog",
    "rdbchecksum",
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
    "socket-mark-id",
];

/// Every setting the engine knows. Redis names and defaults where Redis has the setting.
pub static DEFS: &[Def] = &[
    fixed(
        "bind",
        Kind::Multi,
        "127.0.0.1",
        "Addresses to listen on (space separated).",
    ),
    fixed(
        "port",
        Kind::Int { min: 0, max: 65535 },
        "6379",
        "TCP port to listen on.",
    ),
    fixed(
        "metrics-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        "Port of the Prometheus endpoint (GET /metrics) on the bind addresses; 0 turns it off.",
    ),
    fixed(
        "tls-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        "TLS port for clients on the bind addresses; 0 turns TLS for clients off. With tls-port set, port 0 turns plaintext off.",
    ),
    fixed(
        "loopback-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        "A plaintext port on 127.0.0.1 only, whatever bind and port say (0: none): probes and hooks inside a pod whose network clients must use TLS.",
    ),
    fixed(
        "tls-cert-file",
        Kind::Str,
        "",
        "PEM certificate (chain) the engine presents; reloaded when the file changes.",
    ),
    fixed(
        "tls-key-file",
        Kind::Str,
        "",
        "PEM private key of tls-cert-file; reloaded with it.",
    ),
    fixed(
        "tls-ca-cert-file",
        Kind::Str,
        "",
        "PEM CA certificates that client certificates and, for a replica, the master's certificate must chain to.",
    ),
    fixed(
        "tls-auth-clients",
        Kind::Enum(&["yes", "no", "optional"]),
        "yes",
        "TLS clients must present a certificate signed by the CA (yes), need not (no), or are verified only when they do (optional).",
    ),
    fixed(
        "tls-replication",
        Kind::Bool,
        "no",
        "A replica connects to its master over TLS (the master's port is then its TLS port).",
    ),
    fixed(
        "tls-client-cert-file",
        Kind::Str,
        "",
        "PEM certificate a replica presents to its master; tls-cert-file when empty.",
    ),
    fixed(
        "tls-client-key-file",
        Kind::Str,
        "",
        "PEM private key of tls-client-cert-file.",
    ),
    // The link to a master outside the pair (a migration source, docs/migration.md): its own
    // CA, client certificate and name, apart from the pair's tls-* above. The files are
    // start-up settings (mounted Secrets, re-read at every connect); `master-tls` is switched
    // with CONFIG SET by whoever points the engine at such a master (the operator, with
    // masterauth), so the pair's own links keep their settings.
    def(
        "master-tls",
        Kind::Bool,
        "no",
        "The replica's link to its master uses TLS with the master-tls-* settings (a master outside the pair) instead of tls-replication's.",
    ),
    fixed(
        "master-tls-ca-cert-file",
        Kind::Str,
        "",
        "PEM CA certificates the master's certificate must chain to with master-tls; empty: the system's CA certificates.",
    ),
    fixed(
        "master-tls-cert-file",
        Kind::Str,
        "",
        "PEM certificate presented to the master with master-tls (its tls-auth-clients); empty: none.",
    ),
    fixed(
        "master-tls-key-file",
        Kind::Str,
        "",
        "PEM private key of master-tls-cert-file.",
    ),
    fixed(
        "master-tls-server-name",
        Kind::Str,
        "",
        "Name the master's certificate must carry, also sent as SNI, with master-tls; empty: the host REPLICAOF names.",
    ),
    fixed(
        "master-tls-verify",
        Kind::Bool,
        "yes",
        "With master-tls, verify the master's certificate (chain and name); no: encrypt without verifying whom to (insecure, logged as a warning at every link made).",
    ),
    fixed(
        "dir",
        Kind::Str,
        "./data",
        "Data directory (persistence log, snapshots, node state).",
    ),
    def(
        "dbfilename",
        Kind::Str,
        "dump.rdb",
        "RDB file in dir: loaded at start into a fresh data directory, written by SAVE/BGSAVE with persistence off (see docs/compatibility.md).",
    ),
    fixed(
        "databases",
        Kind::Int { min: 1, max: 1024 },
        "16",
        "Number of logical databases.",
    ),
    def(
        "requirepass",
        Kind::Str,
        "",
        "Password of the default user; empty disables AUTH.",
    ),
    def(
        "admin-user",
        Kind::Str,
        "",
        "Name of the admin user (used by the operator); empty disables it.",
    ),
    def(
        "admin-password",
        Kind::Str,
        "",
        "Password of the admin user.",
    ),
    fixed(
        "requirepass-file",
        Kind::Str,
        "",
        "File holding requirepass (read at start-up; one trailing newline is ignored).",
    ),
    fixed(
        "admin-password-file",
        Kind::Str,
        "",
        "File holding admin-password (read at start-up; one trailing newline is ignored).",
    ),
    fixed(
        "masterauth-file",
        Kind::Str,
        "",
        "File holding masterauth (read at start-up; one trailing newline is ignored).",
    ),
    def(
        "maxmemory",
        Kind::Memory,
        "0",
        "Memory limit in bytes (0 = none); see maxmemory-policy.",
    ),
    def(
        "maxmemory-clients",
        Kind::MemoryOrPercent,
        "0",
        "Accepted for compatibility (Redis's client eviction): bytes or a percentage of maxmemory; the engine does not evict clients.",
    ),
    hidden(
        "key-load-delay",
        INT,
        "0",
        "Accepted for compatibility (a Redis test hook: a delay per key loaded); ignored.",
    ),
    hidden(
        "rdb-key-save-delay",
        INT,
        "0",
        "Accepted for compatibility (a Redis test hook: a delay per key saved); ignored.",
    ),
    def(
        "maxmemory-policy",
        Kind::Enum(EVICTION_POLICIES),
        "noeviction",
        "What to evict when maxmemory is reached.",
    ),
    def(
        "maxmemory-samples",
        Kind::Int { min: 1, max: 64 },
        "5",
        "Keys sampled per eviction.",
    ),
    def(
        "maxclients",
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        "10000",
        "Maximum connected clients.",
    ),
    def(
        "timeout",
        UINT,
        "0",
        "Close idle clients after this many seconds (0 = never).",
    ),
    def(
        "tcp-keepalive",
        UINT,
        "300",
        "TCP keepalive interval in seconds.",
    ),
    def(
        "proto-max-bulk-len",
        Kind::Memory,
        "536870912",
        "Largest bulk string a client may send.",
    ),
    def(
        "client-query-buffer-limit",
        Kind::Memory,
        "1073741824",
        "Largest query buffer per client.",
    ),
    def(
        "hz",
        Kind::Int { min: 1, max: 500 },
        "10",
        "Background task frequency (active expiry).",
    ),
    def(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        "notice",
        "Log verbosity.",
    ),
    fixed(
        "logfile",
        Kind::Str,
        "",
        "Log file (empty = standard output).",
    ),
    def(
        "protected-mode",
        Kind::Bool,
        "no",
        "Accepted for compatibility; the engine binds where told.",
    ),
    fixed(
        "daemonize",
        Kind::Bool,
        "no",
        "Accepted for compatibility; must be no.",
    ),
    def(
        "save",
        Kind::Multi,
        "",
        "Accepted for compatibility; persistence is the log (see persistence).",
    ),
    def(
        "appendonly",
        Kind::Bool,
        "no",
        "Reported for clients; persistence is controlled by `persistence`.",
    ),
    def(
        "aof-use-rdb-preamble",
        Kind::Bool,
        "yes",
        "Accepted for compatibility; snapshots are the engine's own format.",
    ),
    def(
        "appendfsync",
        Kind::Enum(&["always", "everysec", "no"]),
        "everysec",
        "When the write log is fsynced.",
    ),
    def(
        "log-write-delay-us",
        Kind::Int {
            min: 0,
            max: 1_000_000,
        },
        "0",
        "Testing only (like Redis's rdb-key-save-delay): the log writer waits this long before each write.",
    ),
    def(
        "auto-aof-rewrite-min-size",
        Kind::Memory,
        "67108864",
        "Log growth since the last snapshot that starts an automatic compaction (0: never).",
    ),
    fixed(
        "archive-url",
        Kind::Str,
        "",
        "Archive the write log and base backups to this object store (file:///path, s3://bucket/prefix, gs://..., az://...; credentials from the environment). Empty: off.",
    ),
    fixed(
        "archive-credentials-dir",
        Kind::Str,
        "",
        "A directory of files named as the object store's variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY...), each holding its value: a Secret mounted as a volume. Overrides the environment.",
    ),
    def(
        "archive-timeout",
        Kind::Int {
            min: 10,
            max: 86_400_000,
        },
        "5000",
        "Milliseconds the oldest record not yet archived may wait before a chunk is uploaded anyway.",
    ),
    def(
        "archive-chunk-size",
        Kind::Memory,
        "16777216",
        "Bytes of write log per archived chunk.",
    ),
    def(
        "archive-retention",
        Kind::Str,
        "",
        "Keep what a restore to any moment of this window needs (7d, 12h, 30m...); older backups and chunks are deleted. Empty: keep everything.",
    ),
    fixed(
        "persistence",
        Kind::Enum(&["on", "off"]),
        "on",
        "Write log and snapshots under dir (off = pure cache).",
    ),
    def(
        "slowlog-log-slower-than",
        INT,
        "10000",
        "Log commands slower than this many microseconds.",
    ),
    def("slowlog-max-len", UINT, "128", "Slow log length."),
    def(
        "tracking-table-max-keys",
        UINT,
        "1000000",
        "Keys the CLIENT TRACKING table holds at most; past it, keys are dropped and their readers invalidated (0 = no limit).",
    ),
    def(
        "acllog-max-len",
        UINT,
        "128",
        "Entries ACL LOG keeps (refused commands and failed authentications).",
    ),
    fixed(
        "aclfile",
        Kind::Str,
        "",
        "File of ACL users (`user <name> <rules>` lines) read at start-up and by ACL LOAD, written by ACL SAVE; empty: users live only in memory.",
    ),
    def(
        "acl-pubsub-default",
        Kind::Enum(&["resetchannels", "allchannels"]),
        "resetchannels",
        "Channels a new ACL user may use: none (resetchannels) or all (allchannels).",
    ),
    def(
        "latency-monitor-threshold",
        UINT,
        "0",
        "Latency monitor threshold in milliseconds.",
    ),
    aliased(
        "busy-reply-threshold",
        "lua-time-limit",
        UINT,
        "5000",
        "Script time before BUSY replies (ms).",
    ),
    def(
        "notify-keyspace-events",
        Kind::Str,
        "",
        "Keyspace notification classes (K, E, g, $, l, s, h, z, x, e, t, m, d, n, A).",
    ),
    aliased(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        UINT,
        "512",
        "Hash size reported as listpack.",
    ),
    aliased(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        UINT,
        "64",
        "Hash value size reported as listpack.",
    ),
    aliased(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        INT,
        "-2",
        "List node size (compatibility).",
    ),
    def(
        "list-compress-depth",
        UINT,
        "0",
        "Accepted for compatibility.",
    ),
    def(
        "set-max-intset-entries",
        UINT,
        "512",
        "Set size reported as intset.",
    ),
    aliased(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        UINT,
        "128",
        "Sorted set size reported as listpack.",
    ),
    aliased(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        UINT,
        "64",
        "Sorted set value size reported as listpack.",
    ),
    def(
        "stream-node-max-entries",
        UINT,
        "100",
        "Entries per stream node (what approximate trimming removes at once).",
    ),
    def(
        "stream-node-max-bytes",
        Kind::Memory,
        "4096",
        "Bytes per stream node (what approximate trimming removes at once).",
    ),
    def(
        "hll-sparse-max-bytes",
        UINT,
        "3000",
        "HyperLogLog sparse representation limit.",
    ),
    def(
        "lazyfree-lazy-eviction",
        Kind::Bool,
        "no",
        "Accepted for compatibility.",
    ),
    def(
        "lazyfree-lazy-expire",
        Kind::Bool,
        "no",
        "Accepted for compatibility.",
    ),
    def(
        "lazyfree-lazy-server-del",
        Kind::Bool,
        "no",
        "Accepted for compatibility.",
    ),
    def(
        "lazyfree-lazy-user-del",
        Kind::Bool,
        "no",
        "DEL frees big values in the background, as UNLINK does.",
    ),
    def(
        "lazyfree-lazy-user-flush",
        Kind::Bool,
        "no",
        "FLUSHALL and FLUSHDB without SYNC or ASYNC free in the background, as with ASYNC.",
    ),
    def(
        "activerehashing",
        Kind::Bool,
        "yes",
        "Accepted for compatibility.",
    ),
    def(
        "active-expire-effort",
        Kind::Int { min: 1, max: 10 },
        "1",
        "Active expiry effort.",
    ),
    aliased(
        "replica-read-only",
        "slave-read-only",
        Kind::Bool,
        "yes",
        "Replicas reject writes from normal clients.",
    ),
    aliased(
        "replica-serve-stale-data",
        "slave-serve-stale-data",
        Kind::Bool,
        "yes",
        "Replicas serve reads while the link is down.",
    ),
    def(
        "repl-backlog-size",
        Kind::Memory,
        "268435456",
        "Bytes of write log kept for partial resync.",
    ),
    def(
        "repl-diskless-sync",
        Kind::Bool,
        "yes",
        "Accepted for compatibility: a full sync always streams the snapshot from memory.",
    ),
    def(
        "repl-diskless-sync-delay",
        UINT,
        "5",
        "Accepted for compatibility: a full sync starts at once (no waiting for more replicas).",
    ),
    def(
        "repl-diskless-sync-max-replicas",
        UINT,
        "0",
        "Accepted for compatibility (see repl-diskless-sync-delay).",
    ),
    def(
        "repl-backlog-ttl",
        UINT,
        "86400",
        "Seconds write log is kept for partial resync.",
    ),
    def(
        "masterauth",
        Kind::Str,
        "",
        "Password a replica gives its master (AUTH); empty: none.",
    ),
    def(
        "masteruser",
        Kind::Str,
        "",
        "User a replica authenticates as with masterauth (empty: the default user).",
    ),
    def(
        "repl-fullsync-max-rate",
        Kind::Memory,
        "33554432",
        "Most bytes per second a full sync sends its replica (0: no limit); read when a full sync starts.",
    ),
    aliased(
        "repl-ping-replica-period",
        "repl-ping-slave-period",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "10",
        "Seconds between the PINGs a master puts in its stream while stock Redis replicas follow it (engine replicas get heartbeats).",
    ),
    def(
        "repl-timeout",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "60",
        "Replication link timeout in seconds.",
    ),
    def(
        "replication-mode",
        Kind::Enum(&["async", "semi-sync", "sync"]),
        "async",
        "When a write is acknowledged.",
    ),
    def(
        "semi-sync-degrade",
        Kind::Enum(&["auto", "operator"]),
        "auto",
        "Who may degrade semi-sync to async.",
    ),
    def(
        "semi-sync-timeout",
        UINT,
        "10000",
        "ms before an `auto` master degrades to async.",
    ),
    def(
        "write-lease-ms",
        UINT,
        "0",
        "Accept writes only while a lease of this length is fresh (0 = off).",
    ),
    def(
        "min-replicas-to-write",
        UINT,
        "0",
        "A master refuses writes (NOREPLICAS) while fewer replicas acknowledged within min-replicas-max-lag (0 = off).",
    ),
    def(
        "min-replicas-max-lag",
        UINT,
        "10",
        "Seconds since a replica's last acknowledgement for it to count for min-replicas-to-write.",
    ),
    def(
        "client-output-buffer-limit",
        Kind::Multi,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        "Output buffer limits per client class: `<class> <hard> <soft> <soft seconds>`, class normal, replica (slave) or pubsub; a client whose waiting output reaches the hard limit, or stays at or over the soft limit for longer than the seconds, is disconnected (0 = no limit).",
    ),
    def(
        "io-threads",
        Kind::Int { min: 1, max: 128 },
        "1",
        "Accepted for compatibility.",
    ),
    def(
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
        "10",
        "Accepted for compatibility.",
    ),
    def(
        "lfu-log-factor",
        UINT,
        "10",
        "LFU counter logarithm factor.",
    ),
    def(
        "lfu-decay-time",
        UINT,
        "1",
        "LFU counter decay time in minutes.",
    ),
    fixed(
        "worker-threads",
        Kind::Int { min: 0, max: 64 },
        "0",
        "Network threads (0 = one per core, less one core for the log writer and snapshots).",
    ),
];

/// Start-up settings that name a file holding another setting's value, so that a secret never
/// has to appear on the command line (`/proc/PID/cmdline`) or in the environment: (file
/// setting, the setting it fills). The file wins over the setting given directly; CONFIG SET
/// can still change the setting later (that is how a password is rotated without a restart).
pub const SECRET_FILES: &[(&str, &str)] = &[
    ("requirepass-file", "requirepass"),
    ("admin-password-file", "admin-password"),
    ("masterauth-file", "masterauth"),
];

/// The secret in a file's text: one trailing newline (`\n` or `\r\n`) is not part of it, since
/// `echo pw > file` and most editors add one. Anything else is kept byte for byte.
pub fn secret_from_file_text(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// Typed copies of the settings read on the request path.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub requirepass: Option<Vec<u8>>,
    pub admin_user: Option<Vec<u8>>,
    pub admin_password: Vec<u8>,
    pub maxmemory: u64,
    /// Log bytes since the last snapshot that start a compaction (0 = only on request).
    pub auto_compaction_bytes: u64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: usize,
    pub maxclients: usize,
    pub proto_max_bulk_len: i64,
    pub query_buffer_limit: usize,
    pub databases: usize,
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    /// latency-monitor-threshold in ms (0: the latency monitor is off).
    pub latency_monitor_threshold_ms: u64,
    pub hz: u32,
    pub timeout_secs: u64,
    pub set_max_intset_entries: usize,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub stream_node_max_entries: u64,
    pub stream_node_max_bytes: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    pub busy_reply_threshold_ms: u64,
    pub output_limits: OutputLimits,
    /// `notify-keyspace-events` as classes (0: no notifications, nothing is built).
    pub notify_flags: u32,
    /// `min-replicas-to-write` (0: off) and `min-replicas-max-lag` in ms.
    pub min_replicas_to_write: usize,
    pub min_replicas_max_lag_ms: i64,
    /// `replica-serve-stale-data`.
    pub replica_serve_stale_data: bool,
    /// `lazyfree-lazy-user-del`: DEL frees like UNLINK.
    pub lazyfree_lazy_user_del: bool,
    /// `lazyfree-lazy-user-flush`: FLUSHALL / FLUSHDB without a mode free like ASYNC.
    pub lazyfree_lazy_user_flush: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    pub settings: Settings,
    /// The config file the server was started with (CONFIG REWRITE writes it back).
    pub file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: DEFS
                .iter()
                .map(|d| (d.name, d.default.to_string()))
                .collect(),
            settings: Settings::default(),
            file: None,
        };
        c.refresh();
        c
    }
}

fn find_def(name: &str) -> Option<&'static Def> {
    let lower = name.to_ascii_lowercase();
    DEFS.iter()
        .find(|d| d.name == lower || d.alias == Some(lower.as_str()))
}

/// Parse a memory size like Redis's `memtoull`: `1gb`, `100mb`, `5k`, plain bytes.
///
/// Kubernetes binary quantities (`Ki`, `Mi`, `Gi`, `Ti`) are accepted too, because the operator
/// passes `spec.engine.maxmemory` (a Quantity such as `160Mi`) straight through.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (num, mul) = [
        ("ti", 1u64 << 40),
        ("gi", 1 << 30),
        ("mi", 1 << 20),
        ("ki", 1 << 10),
        ("gb", 1u64 << 30),
        ("g", 1_000_000_000),
        ("mb", 1 << 20),
        ("m", 1_000_000),
        ("kb", 1 << 10),
        ("k", 1_000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| lower.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((lower.clone(), 1));
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// The limits of one client class in `client-output-buffer-limit` (bytes, bytes, seconds; 0 =
/// no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassLimit {
    /// Disconnect as soon as this much waits for the client.
    pub hard: u64,
    /// Disconnect when at least this much has waited for longer than `soft_secs`.
    pub soft: u64,
    pub soft_secs: u64,
}

/// `client-output-buffer-limit`, per client class (Redis's `normal`, `replica`, `pubsub`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLimits {
    pub normal: ClassLimit,
    pub replica: ClassLimit,
    pub pubsub: ClassLimit,
}

impl OutputLimits {
    /// Parse the canonical text (`normal H S T slave H S T pubsub H S T`), or any subset of
    /// classes applied over `self`, with Redis's error texts.
    pub fn apply(mut self, text: &str) -> Result<OutputLimits, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || words.len() % 4 != 0 {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        for w in words.chunks(4) {
            let class = match w[0].to_ascii_lowercase().as_str() {
                "normal" => &mut self.normal,
                "replica" | "slave" => &mut self.replica,
                "pubsub" => &mut self.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            };
            let (Some(hard), Some(soft), Ok(soft_secs)) =
                (parse_memory(w[1]), parse_memory(w[2]), w[3].parse::<u64>())
            else {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                );
            };
            *class = ClassLimit {
                hard,
                soft,
                soft_secs,
            };
        }
        Ok(self)
    }

    /// The canonical text, as CONFIG GET shows it (Redis 7.0 still names the class `slave`).
    pub fn text(&self) -> String {
        let f = |c: &ClassLimit| format!("{} {} {}", c.hard, c.soft, c.soft_secs);
        format!(
            "normal {} slave {} pubsub {}",
            f(&self.normal),
            f(&self.replica),
            f(&self.pubsub)
        )
    }
}

/// The canonical text of `value` for setting `def`. `current` is the setting's value now:
/// `client-output-buffer-limit` changes only the classes it names, as in Redis.
fn normalise(def: &Def, value: &str, current: &str) -> Result<String, String> {
    if def.name == "client-output-buffer-limit" {
        let now = OutputLimits::default().apply(current)?;
        return now.apply(value).map(|l| l.text());
    }
    if def.name == "notify-keyspace-events" {
        return crate::engine::events::parse(value)
            .map(crate::engine::events::to_text)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string());
    }
    match def.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => Ok("yes".into()),
            "no" | "false" | "0" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            let v: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Memory => parse_memory(value)
            .map(|v| v.to_string())
            .ok_or_else(|| "argument must be a memory value".to_string()),
        Kind::MemoryOrPercent => match value.strip_suffix('%') {
            Some(n) if !n.is_empty() => match n.parse::<i64>() {
                Ok(p) if (0..=100).contains(&p) => Ok(format!("{p}%")),
                Ok(p) if p > 100 => {
                    Err("percentage argument must be less or equal to 100".to_string())
                }
                _ => Err("argument must be a memory or percent value".to_string()),
            },
            _ => parse_memory(value)
                .map(|v| v.to_string())
                .ok_or_else(|| "argument must be a memory or percent value".to_string()),
        },
        Kind::Enum(choices) => {
            let lower = value.to_ascii_lowercase();
            if choices.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err("argument(s) must be one of the following: ".to_string() + &choices.join(", "))
            }
        }
        Kind::Str | Kind::Multi => Ok(value.to_string()),
    }
}

impl Config {
    /// The canonical text of a setting (None for unknown names).
    pub fn get(&self, name: &str) -> Option<&str> {
        find_def(name).and_then(|d| self.values.get(d.name).map(|s| s.as_str()))
    }

    /// CONFIG GET: every (name, value) whose name or alias matches one of the glob patterns.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        // Like Redis 7: results follow the order of the patterns, each name once.
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |name: &str, value: &String| {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), value.clone()));
            }
        };
        for p in patterns {
            let lower = p.to_ascii_lowercase();
            for d in DEFS {
                if d.hidden {
                    if lower == d.name.as_bytes() {
                        push(d.name, &self.values[d.name]);
                    }
                    continue;
                }
                if glob_match(&lower, d.name.as_bytes(), false) {
                    push(d.name, &self.values[d.name]);
                }
                if let Some(a) = d.alias {
                    if glob_match(&lower, a.as_bytes(), false) {
                        push(a, &self.values[d.name]);
                    }
                }
            }
        }
        out
    }

    /// CONFIG SET of one or more pairs, all-or-nothing like Redis 7: every name is checked
    /// first (unknown, immutable, given twice), then every value, in order; the first error
    /// is the answer and nothing changes.
    ///
    /// A setting the engine fixes at start-up is refused, except when set to the value it has:
    /// Redis can change those (bind, port ...) at run time, and setting one to its own value
    /// changes nothing there either (what its CONFIG sanity test does for every setting).
    /// Settings Redis itself cannot change at run time are refused whatever the value.
    pub fn set_many(&mut self, pairs: &[(String, String)]) -> Result<(), ConfigError> {
        let mut seen: Vec<&'static str> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let def = find_def(name).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
            if !def.mutable {
                let unchanged = normalise(def, value, &self.values[def.name])
                    .is_ok_and(|v| v == self.values[def.name]);
                if !unchanged || REDIS_IMMUTABLE.contains(&def.name) {
                    return Err(ConfigError::Immutable(name.clone()));
                }
            }
            if seen.contains(&def.name) {
                return Err(ConfigError::Invalid {
                    name: name.clone(),
                    reason: "duplicate parameter".to_string(),
                });
            }
            seen.push(def.name);
        }
        let mut staged = self.values.clone();
        for (name, value) in pairs {
            let Some(def) = find_def(name) else {
                return Err(ConfigError::Unknown(name.clone()));
            };
            let current = staged.get(def.name).cloned().unwrap_or_default();
            let v = normalise(def, value, &current).map_err(|reason| ConfigError::Invalid {
                name: name.clone(),
                reason,
            })?;
            staged.insert(def.name, v);
        }
        self.values = staged;
        self.refresh();
        Ok(())
    }

    /// Set at start-up (from the command line or the file): immutable settings allowed.
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = find_def(name).ok_or_else(|| format!("unknown option '{name}'"))?;
        let current = self.values.get(def.name).cloned().unwrap_or_default();
        let v = normalise(def, value, &current)?;
        self.values.insert(def.name, v);
        self.refresh();
        Ok(())
    }

    /// Apply redis.conf-style text: one `name value...` per line, `#` comments.
    pub fn apply_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words =
                crate::engine::protocol::parse::split_args(line.as_bytes()).ok_or_else(|| {
                    ConfigError::BadDirective {
                        line: i + 1,
                        text: line.to_string(),
                    }
                })?;
            let words: Vec<String> = words
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            if words.len() < 2 && !(words.len() == 1 && words[0] == "save") {
                return Err(ConfigError::BadDirective {
                    line: i + 1,
                    text: line.to_string(),
                });
            }
            self.set_startup(&words[0], &words[1..].join(" "))
                .map_err(|_| ConfigError::BadDirective {
                    line: i + 1,
                    text: line.to_string(),
                })?;
        }
        Ok(())
    }

    /// Read a config file (does I/O).
    pub fn load_file(&mut self, path: &str) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        self.apply_text(&text)
    }

    /// Fill the settings of [`SECRET_FILES`] from their files (does I/O). Called once at
    /// start-up, after the config file and the flags.
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        for (file_setting, target) in SECRET_FILES {
            let path = self.values[file_setting].clone();
            if path.is_empty() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
                path: format!("{path} ({file_setting})"),
                reason: e.to_string(),
            })?;
            self.values
                .insert(target, secret_from_file_text(&text).to_string());
        }
        self.refresh();
        Ok(())
    }

    /// The setting is filled from a file (see [`SECRET_FILES`]): CONFIG REWRITE leaves it out,
    /// so the secret is not copied into the config file.
    fn is_read_from_secret_file(&self, name: &str) -> bool {
        SECRET_FILES
            .iter()
            .any(|(file, target)| *target == name && !self.values[file].is_empty())
    }

    /// CONFIG REWRITE: the config file text with every setting at its current value. Lines of
    /// known settings are rewritten in place (the first occurrence; later duplicates dropped),
    /// comments and unknown lines are kept, and settings that differ from their default and
    /// are not in the file yet are appended.
    pub fn rewrite_text(&self, original: &str) -> String {
        let quote = |v: &str| {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                v.to_string()
            }
        };
        let mut written = std::collections::HashSet::new();
        let mut out = String::new();
        for line in original.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            match find_def(name) {
                Some(d) if self.is_read_from_secret_file(d.name) => {
                    written.insert(d.name);
                }
                Some(d) if !line.trim_start().starts_with('#') => {
                    if written.insert(d.name) {
                        out.push_str(&format!("{} {}\n", d.name, quote(&self.values[d.name])));
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        for d in DEFS {
            if !written.contains(d.name)
                && self.values[d.name] != d.default
                && !self.is_read_from_secret_file(d.name)
            {
                out.push_str(&format!("{} {}\n", d.name, quote(&self.values[d.name])));
            }
        }
        out
    }

    fn int(&self, name: &str) -> i64 {
        self.values[name].parse().unwrap_or(0)
    }

    fn refresh(&mut self) {
        let nonempty = |s: &String| (!s.is_empty()).then(|| s.clone().into_bytes());
        self.settings = Settings {
            requirepass: nonempty(&self.values["requirepass"]),
            admin_user: nonempty(&self.values["admin-user"]),
            admin_password: self.values["admin-password"].clone().into_bytes(),
            maxmemory: self.int("maxmemory") as u64,
            auto_compaction_bytes: self.int("auto-aof-rewrite-min-size") as u64,
            maxmemory_policy: self.values["maxmemory-policy"].clone(),
            maxmemory_samples: self.int("maxmemory-samples") as usize,
            maxclients: self.int("maxclients") as usize,
            proto_max_bulk_len: self.int("proto-max-bulk-len"),
            query_buffer_limit: self.int("client-query-buffer-limit") as usize,
            databases: self.int("databases") as usize,
            slowlog_slower_than: self.int("slowlog-log-slower-than"),
            slowlog_max_len: self.int("slowlog-max-len") as usize,
            latency_monitor_threshold_ms: self.int("latency-monitor-threshold").max(0) as u64,
            hz: self.int("hz") as u32,
            timeout_secs: self.int("timeout") as u64,
            set_max_intset_entries: self.int("set-max-intset-entries") as usize,
            hash_max_listpack_entries: self.int("hash-max-listpack-entries") as usize,
            hash_max_listpack_value: self.int("hash-max-listpack-value") as usize,
            zset_max_listpack_entries: self.int("zset-max-listpack-entries") as usize,
            zset_max_listpack_value: self.int("zset-max-listpack-value") as usize,
            stream_node_max_entries: self.int("stream-node-max-entries") as u64,
            stream_node_max_bytes: self.int("stream-node-max-bytes") as usize,
            lfu_log_factor: self.int("lfu-log-factor") as u32,
            lfu_decay_time: self.int("lfu-decay-time") as u32,
            busy_reply_threshold_ms: self.int("busy-reply-threshold") as u64,
            output_limits: OutputLimits::default()
                .apply(&self.values["client-output-buffer-limit"])
                .unwrap_or_default(),
            notify_flags: crate::engine::events::parse(&self.values["notify-keyspace-events"])
                .unwrap_or(0),
            min_replicas_to_write: self.int("min-replicas-to-write") as usize,
            min_replicas_max_lag_ms: self.int("min-replicas-max-lag").saturating_mul(1000),
            replica_serve_stale_data: self.values["replica-serve-stale-data"] != "no",
            lazyfree_lazy_user_del: self.values["lazyfree-lazy-user-del"] == "yes",
            lazyfree_lazy_user_flush: self.values["lazyfree-lazy-user-flush"] == "yes",
        };
    }
}

/// Build the command line from the table: every setting is a `--name value` flag documented
/// by `--help`, plus `--config FILE` (or a leading config-file path, as redis-server takes it).
pub fn command_line() -> clap::Command {
    let mut cmd = clap::Command::new("redispair-engine")
        .about("RedisPair's Redis-compatible storage engine")
        .long_about(
            "RedisPair's Redis-compatible storage engine.\n\n\
             Every setting can be given as --name value (as redis-server takes them), in a \
             redis.conf-style file passed with --config FILE (or as the first argument), and \
             changed at run time with CONFIG SET where it is mutable.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            clap::Arg::new("config-file")
                .help("A redis.conf-style file of `name value` lines")
                .value_name("FILE"),
        )
        .arg(
            clap::Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("A redis.conf-style file of `name value` lines (read before other flags)"),
        );
    for d in DEFS {
        let mut help = d.help.to_string();
        if !d.default.is_empty() {
            help.push_str(&format!(" [default: {}]", d.default));
        }
        if let Kind::Enum(choices) = d.kind {
            help.push_str(&format!(" [one of: {}]", choices.join(", ")));
        }
        if !d.mutable {
            help.push_str(" (start-up only)");
        }
        let mut arg = clap::Arg::new(d.name)
            .long(d.name)
            .value_name("VALUE")
            .num_args(1..)
            .allow_negative_numbers(true)
            .help(help);
        if let Some(a) = d.alias {
            arg = arg.alias(a);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Turn parsed command-line matches into a Config (does I/O: reads the config file).
pub fn from_matches(m: &clap::ArgMatches) -> Result<Config, String> {
    let mut cfg = Config::default();
    // redis-server's defaults for a standalone run; `dir` relative to the working directory.
    for file in [
        m.get_one::<String>("config-file"),
        m.get_one::<String>("config"),
    ]
    .into_iter()
    .flatten()
    {
        cfg.load_file(file).map_err(|e| e.to_string())?;
        cfg.file = Some(file.clone());
    }
    for d in DEFS {
        if let Some(vals) = m.get_many::<String>(d.name) {
            let v: Vec<&str> = vals.map(|s| s.as_str()).collect();
            cfg.set_startup(d.name, &v.join(" "))
                .map_err(|e| format!("--{}: {}", d.name, e))?;
        }
    }
    cfg.read_secret_files().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_buffer_limits_change_only_the_classes_named_with_redis_errors() {
        let mut c = Config::default();
        let limits = c.settings.output_limits;
        assert_eq!(
            limits.pubsub,
            ClassLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_secs: 60
            }
        );
        assert_eq!(limits.replica.hard, 256 << 20);
        assert_eq!(limits.normal, ClassLimit::default());
        c.set_many(&[(
            "client-output-buffer-limit".into(),
            "pubsub 1mb 2 3 replica 0 0 0".into(),
        )])
        .unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 0 0 0 slave 0 0 0 pubsub 1048576 2 3")
        );
        assert_eq!(c.settings.output_limits.pubsub.hard, 1 << 20);
        for (bad, reason) in [
            (
                "foo 1 2 3",
                "Invalid client class specified in buffer limit configuration.",
            ),
            (
                "pubsub 1mb 2",
                "Wrong number of arguments in buffer limit configuration.",
            ),
            (
                "pubsub x 2 3",
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ),
        ] {
            assert_eq!(
                c.set_many(&[("client-output-buffer-limit".into(), bad.into())]),
                Err(ConfigError::Invalid {
                    name: "client-output-buffer-limit".into(),
                    reason: reason.into()
                })
            );
        }
    }

    #[test]
    fn defaults_and_get_glob() {
        let c = Config::default();
        assert_eq!(c.get("port"), Some("6379"));
        let got = c.get_matching(&[b"maxmemory*"]);
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"maxmemory") && names.contains(&"maxmemory-policy"));
        assert_eq!(c.get_matching(&[b"slave-read-only"])[0].1, "yes");
    }

    #[test]
    fn set_validates_and_is_atomic() {
        let mut c = Config::default();
        assert!(c.set_many(&[("maxmemory".into(), "1mb".into())]).is_ok());
        assert_eq!(c.settings.maxmemory, 1 << 20);
        let err = c
            .set_many(&[
                ("maxmemory".into(), "5".into()),
                ("maxmemory-policy".into(), "bogus".into()),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("maxmemory-policy"));
        assert_eq!(c.settings.maxmemory, 1 << 20);
        assert!(matches!(
            c.set_many(&[("port".into(), "1".into())]),
            Err(ConfigError::Immutable(_))
        ));
        assert!(matches!(
            c.set_many(&[("nope".into(), "1".into())]),
            Err(ConfigError::Unknown(_))
        ));
    }

    #[test]
    fn memory_values_with_redis_and_kubernetes_suffixes() {
        assert_eq!(parse_memory("160Mi"), Some(160 << 20));
        assert_eq!(parse_memory("2Gi"), Some(2 << 30));
        assert_eq!(parse_memory("512ki"), Some(512 << 10));
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("5k"), Some(5000));
        assert_eq!(parse_memory("1.5Gi"), None);
        assert_eq!(parse_memory("Mi"), None);
    }

    #[test]
    fn config_file_text() {
        let mut c = Config::default();
        c.apply_text("# comment\nport 7000\nsave \"\"\nmaxmemory 2gb\n")
            .unwrap();
        assert_eq!(c.get("port"), Some("7000"));
        assert_eq!(c.settings.maxmemory, 2 << 30);
        assert!(c.apply_text("bogus 1\n").is_err());
    }

    #[test]
    fn secrets_come_from_files_and_stay_out_of_rewrites() {
        let dir = std::env::temp_dir().join(format!("rp-secret-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        let admin = dir.join("admin");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::write(&admin, "adm in\r\n").unwrap();
        let m = command_line()
            .try_get_matches_from([
                "e",
                "--requirepass",
                "ignored",
                "--requirepass-file",
                pw.to_str().unwrap(),
                "--admin-user",
                "op",
                "--admin-password-file",
                admin.to_str().unwrap(),
            ])
            .unwrap();
        let c = from_matches(&m).unwrap();
        assert_eq!(c.settings.requirepass.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(c.settings.admin_password, b"adm in");
        let text = c.rewrite_text("requirepass old\nport 6379\n");
        assert!(
            !text.contains("s3cret") && !text.contains("adm in"),
            "{text}"
        );
        assert!(!text.contains("requirepass old"), "{text}");
        assert!(text.contains("requirepass-file"), "{text}");
        // Rotation at run time is CONFIG SET of the setting; the file setting is start-up only.
        let mut c = c;
        c.set_many(&[("requirepass".into(), "new".into())]).unwrap();
        assert_eq!(c.settings.requirepass.as_deref(), Some(&b"new"[..]));
        assert!(matches!(
            c.set_many(&[("requirepass-file".into(), "/x".into())]),
            Err(ConfigError::Immutable(_))
        ));
        // A missing file stops the start with its path.
        let m = command_line()
            .try_get_matches_from(["e", "--masterauth-file", "/nonexistent/rp"])
            .unwrap();
        let err = from_matches(&m).unwrap_err();
        assert!(err.contains("/nonexistent/rp (masterauth-file)"), "{err}");
        assert_eq!(secret_from_file_text("a\n\n"), "a\n");
        assert_eq!(secret_from_file_text("a"), "a");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn command_line_accepts_every_setting() {
        let m = command_line()
            .try_get_matches_from(["e", "--port", "7001", "--save", "", "--maxmemory", "10mb"])
            .unwrap();
        let c = from_matches(&m).unwrap();
        assert_eq!(c.get("port"), Some("7001"));
        assert_eq!(c.settings.maxmemory, 10 << 20);
    }
}
