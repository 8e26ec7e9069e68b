//! The operator: reconciles RedisPairs into running, self-healing pairs. The pipeline is
//! observe → validate → decide ([`crate::failover`]) → build → apply → status; only observe,
//! apply, status and the engine client do I/O. No engine imports (checked by
//! hack/check-boundaries.sh).

pub mod act;
pub mod apply;
pub mod backup;
pub mod backups;
pub mod build;
pub mod controller;
pub mod decide;
pub mod engine_client;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod migrate;
pub mod observe;
pub mod prober;
pub mod rollback;
pub mod schedule;
pub mod status;
pub mod validate;
pub mod watch;
