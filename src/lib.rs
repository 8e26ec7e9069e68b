//! RedisPair: a Redis-compatible storage engine (`engine`) and, in later modules, the
//! Kubernetes operator that runs it as master/replica pairs. Module map:
//! - `engine`: the storage engine (protocol, commands, storage, server). No Kubernetes.

pub mod engine;
