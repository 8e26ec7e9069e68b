//! Applying stream bytes: recovery replays the log and a replica applies its master's stream
//! through the normal command path, as a replication client (exempt from read-only and OOM),
//! with the node's own propagation suppressed. This is the layer above persistence that applies
//! the records persistence reads (`persistence::recovery` decodes, [`recover`] applies). Pure
//! (on the locked state), except [`recover`], which reads the data directory.

use std::path::Path;

use bytes::BytesMut;

use crate::engine::client::ClientState;
use crate::engine::cmd::{self, Outcome};
use crate::engine::persistence::recovery::{self, Recovered, Replayer};
use crate::engine::persistence::PersistError;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::commands::split_commands;
use crate::engine::state::EngineState;
use crate::engine::storage::Expiry;

/// The client that applies a stream: authenticated, flagged as replication.
pub fn stream_client(id: u64, db: usize) -> ClientState {
    let mut c = ClientState::internal(id, db, 2);
    c.is_replication = true;
    c
}

/// Execute one command of a stream. Errors replies are counted, not fatal: the master executed
/// the same command with the same result.
pub fn apply_one(state: &mut EngineState, client: &mut ClientState, args: Vec<Arg>, now_ms: i64) {
    let was_suppressed = state.stream.suppress;
    state.stream.suppress = true;
    // Nothing expires by this node's clock while a stream is applied (`Expiry::Suspend`): the
    // node that wrote it already decided every expiry and wrote it as a DEL, in order, and a
    // replayed or late stream meets deadlines its writer had not reached yet (Redis: no expiry
    // while loading or on the master's stream). The mode is the same in every database (the
    // node's role sets it for all), so one saved value restores it: no allocation per applied
    // command (recovery applies millions of them).
    let was = state.dbs.first().map_or(Expiry::Delete, |d| d.expiry);
    for d in state.dbs.iter_mut() {
        d.expiry = Expiry::Suspend;
    }
    match cmd::process(state, client, args, now_ms) {
        Outcome::Reply(_) => {}
        Outcome::Blocked { .. } => {
            // Never happens for effects (blocking commands are propagated as their result);
            // forget the registration rather than leave a phantom waiter.
            state.blocking.unblock(client.id);
        }
        Outcome::Paused { args, .. } => {
            // Clients are paused, but the stream must go on: run it directly.
            if let Ok((spec, parent)) = cmd::resolve(&args) {
                let mut ctx = cmd::Ctx::new(state, client, now_ms);
                let _ = cmd::call(&mut ctx, spec, parent, &args);
            }
        }
    }
    for d in state.dbs.iter_mut() {
        d.expiry = was;
    }
    state.stream.suppress = was_suppressed;
}

/// Apply every command in `payload` (whole commands only). Returns how many were applied.
pub fn apply_payload(
    state: &mut EngineState,
    client: &mut ClientState,
    payload: &[u8],
    now_ms: i64,
) -> Result<usize, String> {
    let mut buf = BytesMut::from(payload);
    let cmds = split_commands(&mut buf)?;
    if !buf.is_empty() {
        return Err(format!("{} bytes of an incomplete command", buf.len()));
    }
    let n = cmds.len();
    for (args, _) in cmds {
        apply_one(state, client, args, now_ms);
    }
    Ok(n)
}

/// Recovery's records applied to the state, by one stream client whose database follows the
/// stream's SELECTs.
struct StateReplayer<'a> {
    state: &'a mut EngineState,
    client: ClientState,
    now_ms: i64,
}

impl Replayer for StateReplayer<'_> {
    fn apply(&mut self, payload: &[u8]) -> Result<usize, String> {
        apply_payload(self.state, &mut self.client, payload, self.now_ms)
    }

    fn select(&mut self, db: usize) {
        self.client.db = db;
    }

    fn db(&self) -> usize {
        self.client.db
    }
}

/// Load the dataset from `dir` into `state` (whose databases must be empty): the newest
/// snapshot, then the log after it (see `persistence::recovery`).
pub fn recover(
    state: &mut EngineState,
    dir: &Path,
    now_ms: i64,
) -> Result<Recovered, PersistError> {
    let mut replayer = StateReplayer {
        state,
        client: stream_client(u64::MAX - 1, 0),
        now_ms,
    };
    recovery::recover(dir, &mut replayer)
}
