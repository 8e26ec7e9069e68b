//! The Redis wire protocol: request parsing and reply encoding. Pure, no I/O.

pub mod arg;
pub mod parse;
pub mod reply;
