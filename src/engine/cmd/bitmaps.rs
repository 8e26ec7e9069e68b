//! Bitmap commands: SETBIT GETBIT BITCOUNT BITPOS BITOP. Pure (on the locked state).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
