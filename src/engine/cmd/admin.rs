//! Admin commands for the operator (promote, demote, lease, degrade authorisation, state report),
//! allowed to the admin user only: `REDISPAIR PROMOTE <term>`, `REDISPAIR DEMOTE <host> <port>
//! <term> [FORCE-FULL-SYNC]`, `REDISPAIR LEASE <ms>`, `REDISPAIR AUTHORIZE-DEGRADE <term>`,
//! `REDISPAIR STATE`. Every one is idempotent, so an operator that restarts can repeat it.
//! Pure (on the locked state).

use std::time::Instant;

use crate::engine::cmd::flags::*;
use crate::engine::cmd::replication::{become_master, become_replica, save_node_state};
use crate::engine::cmd::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;
use crate::engine::replication::{lease, semisync, Role};

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "promote",
        3,
        ADMIN_USER | STALE | NOSCRIPT,
        (0, 0, 0),
        "server",
        promote,
    ),
    CommandSpec::new(
        "demote",
        -5,
        ADMIN_USER | STALE | NOSCRIPT,
        (0, 0, 0),
        "server",
        demote,
    ),
    CommandSpec::new(
        "lease",
        3,
        ADMIN_USER | STALE | NOSCRIPT | FAST,
        (0, 0, 0),
        "server",
        grant_lease,
    ),
    CommandSpec::new(
        "authorize-degrade",
        3,
        ADMIN_USER | STALE | NOSCRIPT,
        (0, 0, 0),
        "server",
        authorize_degrade,
    ),
    CommandSpec::new(
        "backup",
        3,
        ADMIN_USER | STALE | NOSCRIPT,
        (0, 0, 0),
        "server",
        backup,
    ),
    CommandSpec::new(
        "backup-status",
        3,
        ADMIN_USER | STALE | NOSCRIPT | FAST | LOADING,
        (0, 0, 0),
        "server",
        backup_status,
    ),
    CommandSpec::new(
        "state",
        2,
        ADMIN_USER | STALE | NOSCRIPT | FAST | LOADING,
        (0, 0, 0),
        "server",
        state,
    ),
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "redispair",
    -2,
    ADMIN_USER | STALE | NOSCRIPT | SKIP_PAUSE,
    (0, 0, 0),
    "server",
    state,
)
.with_subcommands(SUBCOMMANDS)];

fn parse_u64(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn bad_int() -> Reply {
    Reply::err_static("ERR value is not an integer or out of range")
}

/// PROMOTE <term>: become master in a new, higher term. The replica link stops at once, so no
/// acknowledgement (and no lease grant) is given to the old master from here on.
fn promote(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(term) = parse_u64(&a[2]) else {
        return bad_int();
    };
    let st = &mut *ctx.state;
    if st.repl.role == Role::Master && st.repl.term == term {
        return Reply::Ok; // repeated by a restarted operator
    }
    if term <= st.repl.term {
        return Reply::error(format!(
            "ERR term {term} is not greater than the current term {}",
            st.repl.term
        ));
    }
    st.repl.term = term;
    if st.repl.role == Role::Master {
        save_node_state(st);
    } else {
        become_master(st);
    }
    tracing::info!(term, "promoted to master");
    Reply::Ok
}

/// DEMOTE <host> <port> <term> [FORCE-FULL-SYNC]: follow the given master; every normal client
/// is disconnected so it reconnects through the Service to the master.
fn demote(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let host = String::from_utf8_lossy(&a[2]).into_owned();
    let Some(port) = std::str::from_utf8(&a[3])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return Reply::err_static("ERR Invalid master port");
    };
    let Some(term) = parse_u64(&a[4]) else {
        return bad_int();
    };
    let force = match a.get(5) {
        None => false,
        Some(x) if x.eq_ignore_ascii_case(b"force-full-sync") && a.len() == 6 => true,
        Some(_) => return Reply::err_static("ERR syntax error"),
    };
    let st = &mut *ctx.state;
    if term < st.repl.term {
        return Reply::error(format!(
            "ERR term {term} is lower than the current term {}",
            st.repl.term
        ));
    }
    st.repl.term = term;
    let same =
        st.repl.role == Role::Replica && st.repl.master.as_ref() == Some(&(host.clone(), port));
    if !same || force || st.repl.link.detached {
        become_replica(st, host, port, force, true);
        // Clients of a master that was just demoted (or of a replica re-pointed) reconnect
        // through the Service to the master.
        st.disconnect_normal_clients();
        tracing::info!(term, "demoted to replica");
    } else {
        // The operator repeats DEMOTE until it sees the replica follow: a repeat must not cut
        // the replica's own (read-only) clients again and again.
        save_node_state(st);
    }
    Reply::Ok
}

/// LEASE <ms>: accept writes for `ms` from now (measured when the request is handled, which is
/// no later than when the reply is sent; the operator measures from when it receives the reply).
fn grant_lease(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(ms) = parse_u64(&a[2]) else {
        return bad_int();
    };
    if ctx.state.repl.role != Role::Master {
        return Reply::err_static("ERR a replica cannot hold a write lease");
    }
    lease::grant_for(&mut ctx.state.repl, Instant::now(), ms);
    ctx.state.repl.lease_granted_ms = ctx.now_ms;
    Reply::Ok
}

/// AUTHORIZE-DEGRADE <term>: the operator decided the replica failed; semi-sync may degrade to
/// async in this term (only).
fn authorize_degrade(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let Some(term) = parse_u64(&a[2]) else {
        return bad_int();
    };
    let st = &mut *ctx.state;
    if term != st.repl.term {
        return Reply::error(format!(
            "ERR term {term} is not the current term {}",
            st.repl.term
        ));
    }
    // Nothing to authorise while the replica is connected and has acknowledged everything:
    // the operator's decision was taken on an older observation (its passes re-send the
    // authorisation while they see the replica failed). Keeping it would leave a latent
    // authorisation the operator believes is gone once it sees the master back in semi-sync:
    // a later failover (the replica promoted, so no longer acknowledging) would then let this
    // master degrade by itself and acknowledge writes the new master never gets. A replica
    // that really failed is not connected, or falls behind with the next write, and the
    // operator's next pass authorises again.
    let in_sync = st.repl.replica_in_sync(st.stream.offset);
    if in_sync && !st.repl.semi.degraded {
        return Reply::Ok;
    }
    st.repl.semi.authorized_term = Some(term);
    if semisync::mode(st.config.get("replication-mode")) == semisync::Mode::SemiSync
        && st.repl.best_ack() < st.stream.offset
    {
        semisync::degrade(&mut st.repl, ctx.now_ms, "authorised by the operator");
    }
    st.repl.wake.notify_one();
    Reply::Ok
}

/// STATE: everything the operator decides on, in one reply.
fn state(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let st = &*ctx.state;
    let r = &st.repl;
    let s = |v: &str| Reply::bulk_str(v);
    let i = Reply::Int;
    let (host, port) = r.master.clone().unwrap_or_default();
    let link_status = match r.role {
        Role::Master => "none",
        Role::Replica if r.link.up => "up",
        Role::Replica if r.link.detached => "detached",
        Role::Replica => "down",
    };
    let mode = match semisync::mode(st.config.get("replication-mode")) {
        semisync::Mode::Async => "async",
        semisync::Mode::SemiSync => "semi-sync",
        semisync::Mode::Sync => "sync",
    };
    let pairs: Vec<(&str, Reply)> = vec![
        (
            "role",
            s(if r.role == Role::Master {
                "master"
            } else {
                "replica"
            }),
        ),
        ("term", i(r.term as i64)),
        ("replid", s(&r.replid)),
        ("replid2", s(&r.replid2)),
        ("second_offset", i(r.second_offset)),
        ("offset", i(st.stream.offset as i64)),
        ("acked_offset", i(r.best_ack() as i64)),
        (
            "durable_offset",
            i(st.stream
                .log
                .as_ref()
                .map(|w| w.durable.load(std::sync::atomic::Ordering::Relaxed) as i64)
                .unwrap_or(-1)),
        ),
        (
            "connected_replicas",
            i(r.replicas.values().filter(|x| x.online).count() as i64),
        ),
        ("master_host", s(&host)),
        ("master_port", i(port as i64)),
        ("link_status", s(link_status)),
        ("link_down_reason", s(&r.link.reason)),
        (
            "link_down_since_ms",
            i(if r.link.up { 0 } else { r.link.down_since_ms }),
        ),
        ("replication_mode", s(mode)),
        ("semi_sync_degraded", i(r.semi.degraded as i64)),
        ("semi_sync_degraded_since_ms", i(r.semi.degraded_since_ms)),
        (
            "degrade_authorized_term",
            i(r.semi.authorized_term.map(|t| t as i64).unwrap_or(-1)),
        ),
        ("lease_remaining_ms", i(lease::remaining_ms(&st.repl))),
        ("discarded_tail_bytes", i(r.discarded_tail_bytes as i64)),
        (
            "discarded_tail_commands",
            i(r.discarded_tail_commands as i64),
        ),
        ("sync_full", i(r.sync_full as i64)),
        ("sync_partial_ok", i(r.sync_partial_ok as i64)),
        (
            "archived_offset",
            i(st.archive
                .as_ref()
                .map(|a| a.archived.load(std::sync::atomic::Ordering::Relaxed) as i64)
                .unwrap_or(-1)),
        ),
    ];
    Reply::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// BACKUP <id>: take a base backup into the archive (a snapshot, uploaded with its manifest).
/// Idempotent: asking again for a backup in progress or done changes nothing; a failed one is
/// tried again. Progress: BACKUP-STATUS <id>.
fn backup(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let id = String::from_utf8_lossy(&a[2]).into_owned();
    if !crate::engine::archive::layout::valid_backup_id(&id) {
        return Reply::err_static(
            "ERR a backup id is 1-128 letters, digits, '.', '_' or '-' (not starting with '.')",
        );
    }
    if !request_backup(ctx.state, &id) {
        return Reply::err_static("ERR archiving is off (archive-url is not set)");
    }
    Reply::Ok
}

/// BACKUP-STATUS <id>: phase, offsets, times, size and error of a backup this engine was asked
/// for (a map; nil if it was not).
fn backup_status(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let id = String::from_utf8_lossy(&a[2]).into_owned();
    let Some(status) = ctx.state.archive.as_ref() else {
        return Reply::err_static("ERR archiving is off (archive-url is not set)");
    };
    let backups = status.backups.lock();
    let Some(b) = backups.get(&id) else {
        return Reply::Nil;
    };
    let s = |v: &str| Reply::bulk_str(v);
    let m = b.manifest.clone();
    let num = |f: fn(&crate::engine::archive::layout::BackupManifest) -> i64| {
        Reply::Int(m.as_ref().map(f).unwrap_or(-1))
    };
    let pairs: Vec<(&str, Reply)> = vec![
        ("phase", s(b.phase.as_str())),
        ("requested_ms", Reply::Int(b.requested_ms)),
        ("start_offset", num(|m| m.start_offset as i64)),
        ("end_offset", num(|m| m.end_offset as i64)),
        ("start_time_ms", num(|m| m.start_time_ms)),
        ("end_time_ms", num(|m| m.end_time_ms)),
        ("size", num(|m| m.size as i64)),
        ("error", s(b.error.as_deref().unwrap_or(""))),
    ];
    Reply::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// `REDISPAIR BACKUP <id>`: ask for a base backup (idempotent: a backup of that id already
/// asked for is left as it is, unless it failed). Returns false if archiving is off.
fn request_backup(state: &mut crate::engine::state::EngineState, id: &str) -> bool {
    let Some(status) = state.archive.clone() else {
        return false;
    };
    let mut backups = status.backups.lock();
    if backups
        .get(id)
        .is_some_and(|b| b.phase != crate::engine::archive::BackupPhase::Failed)
    {
        return true;
    }
    backups.insert(
        id.to_string(),
        crate::engine::archive::BackupStatus {
            phase: crate::engine::archive::BackupPhase::Snapshotting,
            requested_ms: crate::engine::clock::now_ms(),
            after_snapshot: state.persist.snapshots_done,
            manifest: None,
            error: None,
        },
    );
    // A snapshot already running completes first and serves: it is the dataset at its offset,
    // as good a base as a new one.
    state.persist.snapshot_requested = true;
    state.persist.wake.notify_one();
    true
}
