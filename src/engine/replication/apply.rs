//! Applying stream bytes: recovery replays the log and a replica applies its master's stream
//! through the normal command path, as a replication client (exempt from read-only and OOM),
//! with the node's own propagation suppressed. Pure (on the locked state).

use bytes::BytesMut;

use crate::engine::client::ClientState;
use crate::engine::cmd::{self, Outcome};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::parse::{parse_request, ParseLimits, Parsed};
use crate::engine::state::EngineState;

/// The client that applies a stream: authenticated, flagged as replication.
pub fn stream_client(id: u64, db: usize) -> ClientState {
    let mut c = ClientState::internal(id, db, 2);
    c.is_replication = true;
    c
}

/// Split `buf` into the commands it holds; the bytes of an incomplete last command stay in
/// `buf`. Returns each command with its encoded length.
pub fn split_commands(buf: &mut BytesMut) -> Result<Vec<(Vec<Arg>, usize)>, String> {
    let limits = ParseLimits {
        max_bulk_len: i64::MAX,
        authenticated: true,
    };
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match parse_request(buf, limits) {
            Ok(Parsed::Request(args)) => {
                let used = before - buf.len();
                if !args.is_empty() {
                    out.push((args, used));
                } else if let Some((_, n)) = out.last_mut() {
                    *n += used;
                }
            }
            Ok(Parsed::Incomplete) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Execute one command of a stream. Errors replies are counted, not fatal: the master executed
/// the same command with the same result.
pub fn apply_one(state: &mut EngineState, client: &mut ClientState, args: Vec<Arg>, now_ms: i64) {
    let was = state.stream.suppress;
    state.stream.suppress = true;
    // A replica does not expire keys on its own, but its master's commands act on the dataset
    // as the master saw it: a key the master already considers expired is deleted here too
    // (Redis lets the master client delete expired keys on a replica in the same way).
    // `expire_deletes` is the same in every database (the node's role sets it for all), so
    // one saved flag restores it: no allocation per applied command (recovery applies
    // millions of them).
    let was_expiring = state.dbs.first().is_none_or(|d| d.expire_deletes);
    for d in state.dbs.iter_mut() {
        d.expire_deletes = true;
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
        d.expire_deletes = was_expiring;
    }
    // Expiry during the command was the master's decision, already in the stream.
    for d in state.dbs.iter_mut() {
        d.expired_pending.clear();
    }
    state.stream.suppress = was;
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
