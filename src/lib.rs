//! RedisPair: a Redis-compatible storage engine (`engine`) and, in later modules, the
//! Kubernetes operator that runs it as master/replica pairs. Module map:
//! - `api`: the RedisPair CRD types and shared names. No client.
//! - `engine`: the storage engine (protocol, commands, storage, server). No Kubernetes.

pub mod api;
pub mod engine;
