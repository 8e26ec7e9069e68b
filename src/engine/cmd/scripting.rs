//! Scripting commands: EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL. Pure (on the locked state).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
