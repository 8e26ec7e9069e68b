//! Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC/SYNC, WAIT. Pure (on the
//! locked state; the network side lives in `master` and `replica`).

use crate::engine::cmd::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
