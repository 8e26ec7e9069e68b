//! Script and function state kept across calls (the Lua interpreter, loaded scripts,
//! libraries). Pure state; executed by `cmd::scripting`.

#[derive(Default)]
pub struct Scripting {}
