//! HyperLogLog commands: PFADD PFCOUNT PFMERGE. Pure (on the locked state).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
