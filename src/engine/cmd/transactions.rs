//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH. Pure (on the locked state).
//!
//! Queueing happens in `cmd::process` (a command that fails to queue marks the transaction
//! aborted so EXEC answers EXECABORT); EXEC runs the queue through the same `call` path as normal
//! commands, with blocking disabled, and its effects reach the write log as one MULTI/EXEC batch.

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::client::{ClientState, MultiState};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::state::EngineState;
use crate::engine::storage::CompactBytes;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        (0, 0, 0),
        "transactions",
        multi,
    ),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_PAUSE | NOT_QUEUED,
        (0, 0, 0),
        "transactions",
        exec,
    ),
    CommandSpec::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        (0, 0, 0),
        "transactions",
        discard,
    ),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        (1, -1, 1),
        "transactions",
        watch,
    ),
    CommandSpec::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        "transactions",
        unwatch,
    ),
];

fn multi(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if ctx.client.multi.active {
        return Reply::err_static("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = MultiState {
        active: true,
        ..Default::default()
    };
    Reply::Ok
}

/// Drop all WATCHes of the current client.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    let keys = std::mem::take(&mut ctx.client.watched);
    ctx.state.watches.unwatch_all(ctx.client.id, &keys);
}

/// EXEC rejected before it runs (wrong arity, NOAUTH, subscribe context): like Redis, the
/// transaction is discarded and the error is reported as EXECABORT, in or out of MULTI.
pub fn abort_exec(state: &mut EngineState, client: &mut ClientState, err: &Reply) -> Reply {
    client.multi = MultiState::default();
    let keys = std::mem::take(&mut client.watched);
    state.watches.unwatch_all(client.id, &keys);
    let text = match err {
        Reply::Error(e) => e.strip_prefix(b"ERR ".as_slice()).unwrap_or(e),
        _ => b"".as_slice(),
    };
    Reply::error(format!(
        "EXECABORT Transaction discarded because of: {}",
        String::from_utf8_lossy(text)
    ))
}

fn exec(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if !ctx.client.multi.active {
        return Reply::err_static("ERR EXEC without MULTI");
    }
    let multi = std::mem::take(&mut ctx.client.multi);
    let aborted_by_watch =
        ctx.state.watches.dirty.contains(&ctx.client.id) || watched_key_expired(ctx);
    unwatch_all(ctx);
    if multi.aborted {
        return Reply::err_static("EXECABORT Transaction discarded because of previous errors.");
    }
    if aborted_by_watch {
        return Reply::NilArray;
    }
    super::exec_queued(ctx, multi)
}

/// A WATCHed key whose time ran out since WATCH fails the transaction even if nothing
/// deleted it yet (Redis 7.0). WATCH itself expires keys that were already gone, so any
/// expired entry found here expired after WATCH.
fn watched_key_expired(ctx: &Ctx<'_>) -> bool {
    let now = ctx.now_ms;
    let stale = &ctx.state.watches.stale;
    ctx.client.watched.iter().any(|(db, key)| {
        // A key SWAPDB brought in already expired was never live while watched.
        if !stale.is_empty() && stale.contains(&(ctx.client.id, *db, key.clone())) {
            return false;
        }
        ctx.state
            .dbs
            .get(*db)
            .and_then(|d| d.peek(key.as_slice()))
            .is_some_and(|e| e.expire_at != 0 && e.expire_at <= now)
    })
}

fn discard(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if !ctx.client.multi.active {
        return Reply::err_static("ERR DISCARD without MULTI");
    }
    discard_transaction(ctx);
    Reply::Ok
}

/// Forget the client's transaction and its WATCHes (DISCARD, RESET).
pub fn discard_transaction(ctx: &mut Ctx<'_>) {
    ctx.client.multi = MultiState::default();
    unwatch_all(ctx);
}

fn watch(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if ctx.client.multi.active {
        return Reply::err_static("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.client.db;
    // Expire (and propagate the DEL of) watched keys already past their time first, so the
    // DEL does not fail this very WATCH and EXEC can treat any expired entry as "expired since".
    let now = ctx.now_ms;
    for k in &a[1..] {
        ctx.db().get(k, now);
    }
    ctx.state.propagate_expired();
    for k in &a[1..] {
        let slot = (db, CompactBytes::new(k));
        if ctx.client.watched.contains(&slot) {
            continue;
        }
        ctx.state
            .watches
            .by_key
            .entry(slot.clone())
            .or_default()
            .push(ctx.client.id);
        ctx.client.watched.push(slot);
    }
    Reply::Ok
}

fn unwatch(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    unwatch_all(ctx);
    Reply::Ok
}
