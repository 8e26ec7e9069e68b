//! Pub/sub commands. Pure (on the locked state).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
