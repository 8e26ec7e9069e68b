//! Admin commands for the operator (promote, demote, lease, degrade authorisation, state report),
//! allowed to the admin user only. Pure (on the locked state).

use crate::engine::cmd::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
