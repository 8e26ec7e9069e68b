//! List commands, including the blocking ones. Pure (on the locked state).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
