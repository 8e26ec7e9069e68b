//! Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC/SYNC, WAIT. Pure (on the
//! locked state; the network side lives in `server::master` and `server::replica`, started by
//! the replication task when these commands change the role). The role changes themselves
//! (`become_master`, `become_replica`) are here too: they work on the whole state.

use crate::engine::cmd::flags::*;
use crate::engine::cmd::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::replication::{
    decide_psync, Allow, History, PeerProtocol, PrevPosition, PsyncDecision, Role, Takeover,
};
use crate::engine::state::EngineState;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        replicaof,
    ),
    CommandSpec::new(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        replicaof,
    ),
    CommandSpec::new(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        role,
    ),
    CommandSpec::new(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        replconf,
    ),
    CommandSpec::new(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        psync,
    ),
    CommandSpec::new(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        sync,
    ),
    CommandSpec::new("wait", 3, NOSCRIPT, (0, 0, 0), "generic", wait),
];

/// Become a replica of `host:port`. `allow_full`: the first sync may replace the dataset even if
/// the master's history does not contain ours. `explicit` (REPLICAOF, REDISPAIR DEMOTE, not a
/// restart): the first sync may discard a tail the master does not have.
pub fn become_replica(
    state: &mut EngineState,
    host: String,
    port: u16,
    allow_full: bool,
    explicit: bool,
) {
    let r = &mut state.repl;
    r.role = Role::Replica;
    r.master = Some((host, port));
    r.link = crate::engine::replication::Link {
        down_since_ms: crate::engine::clock::now_ms(),
        reason: "connecting".into(),
        ..Default::default()
    };
    r.force_full_sync = allow_full;
    r.allow_truncate = explicit;
    r.link_generation += 1;
    r.replicas.clear();
    r.semi = Default::default();
    // Kept to serve partial resyncs once promoted (for example the old master rejoining).
    state.stream.backlog.activate();
    state.read_only = state.config.get("replica-read-only") != Some("no");
    for db in state.dbs.iter_mut() {
        db.expiry = crate::engine::storage::Expiry::Hide;
    }
    // Clients waiting for their writes to be acknowledged never will be: those writes may be
    // discarded as a divergent tail. Disconnect them rather than answer.
    for id in &state.repl.gate_waiters {
        if let Some(c) = state.clients.get(id) {
            c.handle.kill();
        }
    }
    save_node_state(state);
    state.repl.wake.notify_one();
}

/// Become a master (REPLICAOF NO ONE, REDISPAIR PROMOTE): a new replication id, keeping the old
/// one as replid2 up to the current offset so the old master and other replicas can continue
/// by partial resync (PSYNC2).
pub fn become_master(state: &mut EngineState) {
    let r = &mut state.repl;
    if r.role == Role::Master {
        return;
    }
    r.role = Role::Master;
    r.master = None;
    // A master serves what it has (a promotion mid-full-sync is refused by the operator, but
    // REPLICAOF NO ONE by hand must not leave the node answering -LOADING forever).
    state.persist.loading = false;
    r.link = Default::default();
    r.link_generation += 1;
    r.replid2 = std::mem::replace(&mut r.replid, crate::engine::ids::random_hex(40));
    r.second_offset = state.stream.offset as i64;
    r.semi = Default::default();
    state.read_only = false;
    for db in state.dbs.iter_mut() {
        db.expiry = crate::engine::storage::Expiry::Delete;
    }
    save_node_state(state);
    state.repl.wake.notify_one();
}

pub fn save_node_state(state: &EngineState) {
    if state.persist.enabled {
        if let Err(e) = state.repl.node_state().save(&state.persist.dir) {
            tracing::error!(error = %e, "cannot persist the node state");
        }
    }
}

fn replicaof(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a[1].eq_ignore_ascii_case(b"no") && a[2].eq_ignore_ascii_case(b"one") {
        become_master(ctx.state);
        return Reply::Ok;
    }
    let Some(port) = std::str::from_utf8(&a[2])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return Reply::err_static("ERR Invalid master port");
    };
    let host = String::from_utf8_lossy(&a[1]).into_owned();
    if ctx.state.repl.role == Role::Replica
        && ctx.state.repl.master.as_ref() == Some(&(host.clone(), port))
    {
        return Reply::status("OK Already connected to specified master");
    }
    // An explicit REPLICAOF may replace the dataset on its first sync, as in Redis; later
    // reconnections never do unless the master's history contains our position.
    become_replica(ctx.state, host, port, true, true);
    Reply::Ok
}

fn role(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let st = &*ctx.state;
    match st.repl.role {
        Role::Master => {
            let mut replicas: Vec<_> = st.repl.replicas.values().filter(|r| r.online).collect();
            replicas.sort_by_key(|r| r.port);
            Reply::Array(vec![
                Reply::bulk_str("master"),
                Reply::Int(st.stream.offset as i64),
                Reply::Array(
                    replicas
                        .iter()
                        .map(|r| {
                            Reply::Array(vec![
                                Reply::bulk_str(&r.ip),
                                Reply::bulk_str(&r.port.to_string()),
                                Reply::bulk_str(&r.ack_offset.to_string()),
                            ])
                        })
                        .collect(),
                ),
            ])
        }
        Role::Replica => {
            let (host, port) = st.repl.master.clone().unwrap_or_default();
            let state = if st.repl.link.up {
                "connected"
            } else if st.repl.link.sync_in_progress {
                "sync"
            } else if st.repl.link.detached {
                "connect"
            } else {
                "connecting"
            };
            Reply::Array(vec![
                Reply::bulk_str("slave"),
                Reply::bulk_str(&host),
                Reply::Int(port as i64),
                Reply::bulk_str(state),
                Reply::Int(if st.repl.link.up {
                    st.stream.offset as i64
                } else {
                    -1
                }),
            ])
        }
    }
}

fn replconf(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() % 2 == 0 {
        return Reply::err_static("ERR syntax error");
    }
    let mut i = 1;
    while i + 1 < a.len() {
        let opt = a[i].to_ascii_lowercase();
        let val = &a[i + 1];
        match opt.as_slice() {
            b"listening-port" => {
                let Some(p) = std::str::from_utf8(val)
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                else {
                    return Reply::err_static("ERR value is not an integer or out of range");
                };
                ctx.state.repl.pending_ports.insert(ctx.client.id, p);
            }
            b"term" => {
                let Some(t) = std::str::from_utf8(val)
                    .ok()
                    .and_then(|p| p.parse::<u64>().ok())
                else {
                    return Reply::err_static("ERR value is not an integer or out of range");
                };
                ctx.state.repl.engine_peers.insert(ctx.client.id);
                if t > ctx.state.repl.term {
                    tracing::warn!(
                        replica_term = t,
                        our_term = ctx.state.repl.term,
                        "a replica has a higher term: this master has been replaced"
                    );
                }
                return Reply::Int(ctx.state.repl.term as i64);
            }
            // Acknowledgements are read by the replica sender; on any other connection they
            // are ignored, without a reply (as Redis does).
            b"ack" | b"getack" => return Reply::NoReply,
            b"ip-address" | b"capa" | b"rdb-only" | b"rdb-filter-only" => {}
            _ => {
                return Reply::error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(&a[i])
                ))
            }
        }
        i += 2;
    }
    Reply::Ok
}

/// The master's retained history, for PSYNC decisions.
pub fn retained_from(state: &EngineState) -> u64 {
    let mem = state.stream.backlog.start();
    if state.persist.enabled {
        let disk = crate::engine::persistence::list_segments(&state.persist.dir)
            .first()
            .map(|(f, _)| *f)
            .unwrap_or(mem);
        disk.min(mem)
    } else {
        mem
    }
}

fn psync_request(
    ctx: &mut Ctx<'_>,
    replid: &str,
    offset: Option<u64>,
    prev: Option<PrevPosition<'_>>,
    allow: Allow,
    protocol: PeerProtocol,
) -> Reply {
    ctx.state.repl.engine_peers.remove(&ctx.client.id);
    if ctx.state.repl.role != Role::Master {
        return Reply::err_static("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    let st = &*ctx.state;
    let h = History {
        replid: &st.repl.replid,
        replid2: &st.repl.replid2,
        second_offset: st.repl.second_offset,
        offset: st.stream.offset,
        retained_from: retained_from(st),
    };
    let decision = match offset {
        Some(o) => decide_psync(&h, replid, o, prev, allow),
        None if allow.full => PsyncDecision::Full,
        None => PsyncDecision::NoHistory("no position given".into()),
    };
    // From now on keep recent bytes in memory: the replica continues from them (after a full
    // sync, from the snapshot's offset).
    ctx.state.stream.backlog.activate();
    let port = ctx
        .state
        .repl
        .pending_ports
        .remove(&ctx.client.id)
        .unwrap_or(0);
    ctx.state.repl.takeovers.insert(
        ctx.client.id,
        Takeover {
            decision,
            port,
            protocol,
        },
    );
    Reply::NoReply
}

fn psync(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let replid = String::from_utf8_lossy(&a[1]).into_owned();
    let offset = std::str::from_utf8(&a[2])
        .ok()
        .and_then(|o| o.parse::<i64>().ok())
        .filter(|o| *o >= 0)
        .map(|o| o as u64);
    let allow = Allow {
        full: a[3..].iter().any(|x| x.eq_ignore_ascii_case(b"allow-full")),
        truncate: a[3..]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(b"allow-truncate")),
    };
    // `PREV <replid> <end>`: the replica's history before its current id (ours: see
    // `PrevPosition`); stock Redis replicas do not send it.
    let prev_args = a[3..]
        .iter()
        .position(|x| x.eq_ignore_ascii_case(b"prev"))
        .and_then(|i| {
            let id = std::str::from_utf8(a.get(3 + i + 1)?).ok()?;
            let end = std::str::from_utf8(a.get(3 + i + 2)?).ok()?.parse().ok()?;
            Some((id.to_string(), end))
        });
    let prev = prev_args
        .as_ref()
        .map(|(replid, end)| PrevPosition { replid, end: *end });
    // The engine's replicas say `REPLCONF term` first and may add words to PSYNC; a stock
    // Redis replica does neither. It gets Redis's protocol: a full sync whenever its position
    // cannot be continued (it has no term and no say in fencing; it asks for whatever we
    // have), and its offset is the first byte it wants where ours is the bytes it has.
    let engine_peer = ctx.state.repl.engine_peers.contains(&ctx.client.id) || a.len() > 3;
    if !engine_peer {
        let offset = offset.and_then(|o| o.checked_sub(1));
        let allow = Allow {
            full: true,
            truncate: false,
        };
        return psync_request(ctx, &replid, offset, None, allow, PeerProtocol::StockPsync);
    }
    psync_request(ctx, &replid, offset, prev, allow, PeerProtocol::Engine)
}

/// SYNC: only stock Redis clients use it (old replicas, redis-cli --rdb/--replica, Redis's
/// test suite reading the replication stream): the RDB payload alone, then the stream.
fn sync(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    psync_request(
        ctx,
        "?",
        None,
        None,
        Allow {
            full: true,
            truncate: false,
        },
        PeerProtocol::StockSync,
    )
}

fn wait(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if ctx.state.repl.role == Role::Replica {
        return Reply::err_static("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(num) = std::str::from_utf8(&a[1])
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return Reply::err_static("ERR value is not an integer or out of range");
    };
    let Some(timeout) = std::str::from_utf8(&a[2])
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return Reply::err_static("ERR timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return Reply::err_static("ERR timeout is negative");
    }
    let target = ctx.state.stream.offset;
    let count = ctx.state.repl.acked_count(target) as i64;
    if count >= num || !ctx.may_block {
        return Reply::Int(count);
    }
    let deadline = if timeout == 0 {
        0
    } else {
        ctx.now_ms + timeout
    };
    ctx.state
        .repl
        .waits
        .push(crate::engine::replication::WaitRequest {
            client: ctx.client.id,
            offset: target,
            replicas: num,
            deadline_ms: deadline,
        });
    ctx.state.repl.wake.notify_one();
    // The replication task answers at the deadline with the count at that moment; the
    // connection's own timeout (later) is only a fallback.
    let fallback = if deadline == 0 { 0 } else { deadline + 1000 };
    ctx.block_on(Vec::new(), fallback, Reply::Int(count))
}
