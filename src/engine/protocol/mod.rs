//! The Redis wire protocol: request parsing, reply encoding, and commands as RESP (the stream
//! format). Pure, no I/O.

pub mod arg;
pub mod commands;
pub mod parse;
pub mod reply;
