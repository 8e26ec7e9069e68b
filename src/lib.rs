//! RedisPair: a Redis-compatible storage engine (`engine`) and, in later modules, the
//! Kubernetes operator that runs it as master/replica pairs. Module map:
//! - `api`: the RedisPair CRD types and shared names. No client.
//! - `engine`: the storage engine (protocol, commands, storage, server). No Kubernetes.
//! - `failover`: the failover decision, a pure state machine (no kube, tokio or redis).
//! - `operator`: the Kubernetes operator (reconcile pipeline, engine admin client, metrics).

pub mod api;
pub mod engine;
pub mod failover;
pub mod operator;
