//! The Redis-compatible storage engine that runs in every RedisPair pod. No Kubernetes code.
//!
//! A request flows: `server::connection` reads bytes → `protocol::parse` cuts requests →
//! `cmd::process` (lookup, checks, MULTI queueing) → a command function in `cmd::*` that reads
//! and writes `storage` through `state::EngineState` → `cmd::call` propagates its effects to the
//! write log → `protocol::reply` encodes the reply → the connection writes all replies of the
//! batch at once.
//!
//! The modules are layers that only look down: `protocol` → `storage` → `persistence` →
//! `replication` → the command layer (`cmd`, `state`, and the modules they work with) → `server`
//! (with `core::Engine` and the drivers: replication links, background snapshot, archiver).
//! Replay hands decoded records up; nothing below the command layer runs a command.
//! `hack/check-boundaries.sh` enforces it. See docs/architecture.md.

pub mod acl;
pub mod archive;
pub mod client;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod core;
pub mod events;
pub mod eviction;
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod ids;
pub mod info;
pub mod latency;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod persistence;
pub mod protocol;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod state;
pub mod storage;
pub mod tls;
pub mod tracking;

/// The Redis version the engine reports everywhere (INFO `redis_version`, HELLO `version`, Lua
/// `redis.REDIS_VERSION`): the reference server whose behaviour it matches, Debian's
/// redis-server 7.0.15. Clients choose features by it, so it must not claim a newer Redis.
pub const REDIS_VERSION: &str = "7.0.15";
/// [`REDIS_VERSION`] as Redis encodes it for Lua (`0x00MMmmpp`).
pub const REDIS_VERSION_NUM: i64 = 0x0007_000f;

#[cfg(test)]
mod tests {
    #[test]
    fn version_number_matches_the_version_string() {
        let parts: Vec<i64> = super::REDIS_VERSION
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            super::REDIS_VERSION_NUM,
            (parts[0] << 16) | (parts[1] << 8) | parts[2]
        );
    }
}
