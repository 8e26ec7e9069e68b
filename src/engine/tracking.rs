//! Client-side caching (CLIENT TRACKING) as Redis 7.0 has it: the tracking table of keys each
//! client read, BCAST prefixes, OPTIN / OPTOUT with CLIENT CACHING, NOLOOP, REDIRECT to another
//! connection (RESP3 push, or a RESP2 `__redis__:invalidate` pub/sub message), the
//! `tracking-redir-broken` push, and invalidation on writes, expiry, eviction and flushes.
//! Pure (on the locked state; messages go to the clients' push channels).
//!
//! Invalidations meant for the client whose command caused them are held in `deferred` and
//! written by its connection after the command's reply, as Redis does (a reply is never split
//! by a push). BCAST keys are gathered per prefix and sent when the command ends (Redis sends
//! them before going back to its event loop), one message per prefix.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use crate::engine::protocol::reply::Reply;
use crate::engine::state::EngineState;

/// The channel RESP2 redirect targets receive invalidations on.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// One client's tracking options (CLIENT TRACKING ON ...).
#[derive(Debug, Clone, Default)]
pub struct TrackingClient {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// Client ID invalidations go to (0: the client itself).
    pub redirect: u64,
    pub prefixes: Vec<Bytes>,
    /// CLIENT CACHING yes (Some(true)) / no (Some(false)) for the next command.
    pub caching: Option<bool>,
    /// The redirect target went away.
    pub broken_redirect: bool,
}

#[derive(Debug, Default)]
struct Prefix {
    clients: HashSet<u64>,
    /// Keys changed since the last broadcast, with the client that changed each (0: none).
    pending: Vec<(Bytes, u64)>,
}

/// The tracking state of the engine.
#[derive(Debug, Default)]
pub struct Tracking {
    pub clients: HashMap<u64, TrackingClient>,
    /// Key → clients that read it (keys of every database together, as in Redis).
    table: HashMap<Bytes, HashSet<u64>>,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// The client whose command runs now (set by `cmd::call` while the command itself runs),
    /// and the invalidations held for after a reply, with the client each is for.
    pub executing: u64,
    pub deferred: Vec<(u64, Reply)>,
    /// A read-only command ran (set by `cmd::call`): the top-level command's keys are
    /// remembered when it ends (for a script, the keys it declared, as Redis does).
    pub read_happened: bool,
}

impl Tracking {
    /// Whether anything is tracked at all (the write path's fast check).
    #[inline]
    pub fn active(&self) -> bool {
        !self.clients.is_empty() || !self.table.is_empty()
    }

    /// INFO: tracked keys, (key, client) pairs, prefixes.
    pub fn totals(&self) -> (usize, usize, usize) {
        (
            self.table.len(),
            self.table.values().map(HashSet::len).sum(),
            self.prefixes.len(),
        )
    }

    /// Turn tracking off for a client (CLIENT TRACKING OFF, RESET, disconnect). Its keys stay
    /// in the table and are skipped when they change (Redis does the same).
    pub fn disable(&mut self, id: u64) {
        if let Some(c) = self.clients.remove(&id) {
            for p in c.prefixes {
                if let Some(pr) = self.prefixes.get_mut(&p) {
                    pr.clients.remove(&id);
                    if pr.clients.is_empty() {
                        self.prefixes.remove(&p);
                    }
                }
            }
        }
    }

    /// Turn tracking on (or add prefixes to BCAST mode) with Redis's checks.
    pub fn enable(&mut self, id: u64, opts: TrackingClient) -> Result<(), String> {
        if let Some(old) = self.clients.get(&id) {
            if old.bcast != opts.bcast {
                return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
            }
        }
        let mut new_prefixes = opts.prefixes.clone();
        let existing: Vec<Bytes> = self
            .clients
            .get(&id)
            .map(|c| c.prefixes.clone())
            .unwrap_or_default();
        if opts.bcast && new_prefixes.is_empty() && existing.is_empty() {
            new_prefixes.push(Bytes::new());
        }
        // Prefixes of one client must not overlap, equal ones included (a key would be sent
        // twice): Redis's `checkPrefixCollisionsOrReply`, with its texts.
        let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        for (i, p) in new_prefixes.iter().enumerate() {
            if let Some(q) = existing.iter().find(|q| overlap(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(q)
                ));
            }
            if let Some(q) = new_prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(q)
                ));
            }
        }
        let mut c = opts;
        let mut all = existing;
        for p in new_prefixes {
            if !all.contains(&p) {
                all.push(p.clone());
            }
            self.prefixes.entry(p).or_default().clients.insert(id);
        }
        c.prefixes = if c.bcast { all } else { Vec::new() };
        c.caching = None;
        self.clients.insert(id, c);
        Ok(())
    }
}

/// Remember the keys a tracking client read (default mode), honouring OPTIN / OPTOUT and
/// CLIENT CACHING, then keep the table within `tracking-table-max-keys`.
pub fn remember_keys(state: &mut EngineState, id: u64, keys: Vec<Bytes>, now_ms: i64) {
    let Some(c) = state.tracking.clients.get(&id) else {
        return;
    };
    if c.bcast || keys.is_empty() {
        return;
    }
    if (c.optin && c.caching != Some(true)) || (c.optout && c.caching == Some(false)) {
        return;
    }
    for k in keys {
        state.tracking.table.entry(k).or_default().insert(id);
    }
    limit_table(state, now_ms);
}

/// Keep the table within `tracking-table-max-keys`: drop keys (any) and invalidate them for
/// their readers, as Redis's `trackingLimitUsedSlots` does.
pub fn limit_table(state: &mut EngineState, now_ms: i64) {
    let max = state
        .config
        .get("tracking-table-max-keys")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    if max > 0 {
        while state.tracking.table.len() > max {
            let Some(k) = state.tracking.table.keys().next().cloned() else {
                break;
            };
            invalidate_key(state, &k, 0, now_ms);
        }
    }
}

/// A key changed (written, deleted, expired, evicted) by client `by` (0: not a client).
///
/// Inline up to the test for tracking, which every written key makes (~21 instructions as a
/// call); the invalidation itself is out of line.
#[inline]
pub fn invalidate_key(state: &mut EngineState, key: &[u8], by: u64, now_ms: i64) {
    if !state.tracking.active() {
        return;
    }
    invalidate_tracked_key(state, key, by, now_ms);
}

#[inline(never)]
fn invalidate_tracked_key(state: &mut EngineState, key: &[u8], by: u64, now_ms: i64) {
    if let Some(ids) = state.tracking.table.remove(key) {
        let key = Bytes::copy_from_slice(key);
        for id in ids {
            let Some(c) = state.tracking.clients.get(&id) else {
                continue;
            };
            if c.bcast || (c.noloop && id == by) {
                continue;
            }
            send(
                state,
                id,
                Reply::Array(vec![Reply::Bulk(key.clone())]),
                now_ms,
            );
        }
    }
    if !state.tracking.prefixes.is_empty() {
        let key_b = Bytes::copy_from_slice(key);
        for (p, pr) in state.tracking.prefixes.iter_mut() {
            if key.starts_with(p) {
                pr.pending.push((key_b.clone(), by));
            }
        }
    }
}

/// Send the BCAST keys gathered since the last call: one message per prefix and client,
/// without the keys a NOLOOP client changed itself.
pub fn broadcast_pending(state: &mut EngineState, now_ms: i64) {
    if state.tracking.prefixes.is_empty() {
        return;
    }
    let mut out: Vec<(u64, Vec<Bytes>)> = Vec::new();
    for pr in state.tracking.prefixes.values_mut() {
        if pr.pending.is_empty() {
            continue;
        }
        let pending = std::mem::take(&mut pr.pending);
        for &id in &pr.clients {
            let noloop = state.tracking.clients.get(&id).is_some_and(|c| c.noloop);
            let keys: Vec<Bytes> = pending
                .iter()
                .filter(|(_, by)| !(noloop && *by == id))
                .map(|(k, _)| k.clone())
                .collect();
            if !keys.is_empty() {
                out.push((id, keys));
            }
        }
    }
    for (id, keys) in out {
        send(
            state,
            id,
            Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
            now_ms,
        );
    }
}

/// FLUSHALL / FLUSHDB: every tracking client gets an invalidation of everything (a null key
/// list), and the table is emptied.
pub fn invalidate_all(state: &mut EngineState, now_ms: i64) {
    if !state.tracking.active() {
        return;
    }
    let ids: Vec<u64> = state.tracking.clients.keys().copied().collect();
    for id in ids {
        send(state, id, Reply::Nil, now_ms);
    }
    state.tracking.table.clear();
}

/// Deliver an invalidation (`keys`: an array of keys, or Nil for "everything") to a tracking
/// client, through its redirect target when it has one (Redis's `sendTrackingMessage`).
fn send(state: &mut EngineState, id: u64, keys: Reply, now_ms: i64) {
    let Some(c) = state.tracking.clients.get(&id) else {
        return;
    };
    let mut target = id;
    let redirected = c.redirect != 0;
    if redirected {
        let redirect = c.redirect;
        if !state.clients.contains_key(&redirect) {
            if let Some(c) = state.tracking.clients.get_mut(&id) {
                c.broken_redirect = true;
            }
            let resp3 = state.clients.get(&id).is_some_and(|i| i.proto >= 3);
            if resp3 {
                let msg = Reply::Push(vec![
                    Reply::bulk_str("tracking-redir-broken"),
                    Reply::Int(redirect as i64),
                ]);
                deliver(state, id, msg, now_ms);
            }
            return;
        }
        target = redirect;
    }
    let Some(info) = state.clients.get(&target) else {
        return;
    };
    let msg = if info.proto >= 3 {
        Reply::Push(vec![Reply::bulk_str("invalidate"), keys])
    } else if redirected && info.sub + info.psub > 0 {
        Reply::Push(vec![
            Reply::bulk_str("message"),
            Reply::bulk_str(INVALIDATE_CHANNEL),
            keys,
        ])
    } else {
        // RESP2 has no push messages on the client's own connection.
        return;
    };
    deliver(state, target, msg, now_ms);
}

fn deliver(state: &mut EngineState, target: u64, msg: Reply, now_ms: i64) {
    if target == state.tracking.executing {
        state.tracking.deferred.push((target, msg));
        return;
    }
    push_to(state, target, msg, now_ms);
}

/// The held invalidations of client `id` (its connection writes them after the reply); those
/// held for other clients (a blocked client served by this command) go to them now.
pub fn take_deferred(state: &mut EngineState, id: u64, now_ms: i64) -> Vec<Reply> {
    if state.tracking.deferred.is_empty() {
        return Vec::new();
    }
    let mut own = Vec::new();
    for (target, msg) in std::mem::take(&mut state.tracking.deferred) {
        if target == id {
            own.push(msg);
        } else {
            push_to(state, target, msg, now_ms);
        }
    }
    own
}

/// The held invalidations of client `id` only (a blocked client served by another's command),
/// leaving the others held.
pub fn take_held_for(state: &mut EngineState, id: u64) -> Vec<Reply> {
    if state.tracking.deferred.is_empty() {
        return Vec::new();
    }
    let (own, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut state.tracking.deferred)
        .into_iter()
        .partition(|(target, _)| *target == id);
    state.tracking.deferred = rest;
    own.into_iter().map(|(_, m)| m).collect()
}

fn push_to(state: &mut EngineState, target: u64, msg: Reply, now_ms: i64) {
    let limit = state.config.settings.output_limits.pubsub;
    if let Some(tx) = state.clients.get(&target).and_then(|i| i.push.clone()) {
        if tx.push(msg, limit, now_ms) == crate::engine::client::Pushed::LimitReached {
            state.stats.client_output_buffer_limit_disconnections += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_prefixes_are_refused_with_both_named() {
        let mut t = Tracking::default();
        let opts = |p: &[&str]| TrackingClient {
            bcast: true,
            prefixes: p
                .iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect(),
            ..Default::default()
        };
        let e = t.enable(1, opts(&["FOOBAR", "FOO"])).unwrap_err();
        assert!(
            e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"),
            "{e}"
        );
        t.enable(1, opts(&["FOO", "BAR"])).unwrap();
        let e = t.enable(1, opts(&["FO"])).unwrap_err();
        assert!(
            e.starts_with("ERR Prefix 'FO' overlaps with an existing prefix 'FOO'"),
            "{e}"
        );
        t.disable(1);
        assert_eq!(t.totals(), (0, 0, 0));
    }
}
