//! kubectl-redispair, the kubectl plugin: shows a pair's state (`status`) and writes intent to
//! the API (`switchover`, `fence`, `unfence`, `failover --force`, `backup`; `backups` lists); it never acts on engines,
//! the operator does. Split by I/O:
//! - `cli`: the command line (pure).
//! - `backup`: the RedisPairBackup `backup` creates, its outcome, the `backups` list (pure).
//! - `error`: errors in words a user understands, and how API errors map to them (pure).
//! - `operator`: whether the operator runs, judged from its Deployment and Lease (pure).
//! - `view`: the status of a pair built from API objects (pure).
//! - `render`: that status as text (colour on a terminal), JSON or YAML (pure).
//! - `intent`: the patches each command writes, and its preconditions (pure).
//! - `client`: reads and writes the API server (does I/O: Kubernetes API).

pub mod backup;
pub mod cli;
pub mod client;
pub mod error;
pub mod intent;
pub mod operator;
pub mod render;
pub mod view;
