//! The Redis-compatible storage engine that runs in every RedisPair pod. No Kubernetes code.
//!
//! A request flows: `server::connection` reads bytes → `protocol::parse` cuts requests →
//! `cmd::process` (lookup, checks, MULTI queueing) → a command function in `cmd::*` that reads
//! and writes `storage` through `state::EngineState` → `cmd::call` propagates its effects to the
//! write log → `protocol::reply` encodes the reply → the connection writes all replies of the
//! batch at once. See docs/architecture.md.

pub mod admin;
pub mod client;
pub mod cmd;
pub mod config;
pub mod eviction;
pub mod glob;
pub mod info;
pub mod memory;
pub mod persistence;
pub mod protocol;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod state;
pub mod storage;
