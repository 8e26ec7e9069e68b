//! The master side of a replication link: answers PSYNC, sends a fork-less snapshot for a full
//! sync, then streams from the replica's offset (memory backlog, else log segments), sends
//! heartbeats, and reads the replica's acknowledgements (which release semi-sync replies, renew
//! the write lease and answer WAIT). Does I/O: the replica's socket, reads log segments.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::clock::now_ms;
use crate::engine::core::Engine;
use crate::engine::persistence::snapshot;
use crate::engine::persistence::writer::LogWriter;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::commands::encode_command;
use crate::engine::protocol::commands::split_commands;
use crate::engine::protocol::reply::Reply;
use crate::engine::replication::{PeerProtocol, PsyncDecision, ReplicaInfo, Takeover};
use crate::engine::state::EngineState;
use crate::engine::tls::Socket;

/// Largest chunk of stream sent at once.
const CHUNK: usize = 1 << 20;
/// Heartbeats (they renew the lease and carry liveness when there are no writes).
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// Serve one replica on `sock` until it disconnects or is killed.
pub async fn serve_replica(
    engine: Arc<Engine>,
    mut sock: Socket,
    id: u64,
    peer: SocketAddr,
    takeover: Takeover,
    mut inbuf: BytesMut,
    kill: Arc<crate::engine::client::ClientHandle>,
) {
    let replid = engine.lock_state().await.repl.replid.clone();
    let stock = takeover.protocol != PeerProtocol::Engine;
    let decision = match takeover.decision {
        // A stock replica asked for whatever we have: what we cannot continue is a full sync.
        PsyncDecision::NoHistory(_) | PsyncDecision::Truncate { .. } if stock => {
            PsyncDecision::Full
        }
        PsyncDecision::Continue { .. } if takeover.protocol == PeerProtocol::StockSync => {
            PsyncDecision::Full
        }
        d => d,
    };
    let full = matches!(decision, PsyncDecision::Full);
    let mut pos = match decision {
        PsyncDecision::Continue { offset } if stock => {
            engine.lock_state().await.repl.sync_partial_ok += 1;
            info!(%peer, offset, "partial resync (stock Redis replica)");
            if sock
                .write_flush(format!("+CONTINUE {replid}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            offset
        }
        PsyncDecision::Full if stock => {
            match stock_full_sync(&engine, &mut sock, &replid, &peer, takeover.protocol).await {
                Some(o) => o,
                None => return,
            }
        }
        PsyncDecision::NoHistory(reason) => {
            engine.lock_state().await.repl.sync_partial_err += 1;
            warn!(%peer, %reason, "refusing a replica: no common history");
            let _ = sock
                .write_flush(format!("-NOHISTORY {reason}\r\n").as_bytes())
                .await;
            return;
        }
        PsyncDecision::Truncate { offset } => {
            engine.lock_state().await.repl.sync_partial_err += 1;
            info!(%peer, offset, "replica has a divergent tail; asking it to truncate");
            let _ = sock
                .write_flush(format!("+TRUNCATE {replid} {offset}\r\n").as_bytes())
                .await;
            return;
        }
        PsyncDecision::Continue { offset } => {
            engine.lock_state().await.repl.sync_partial_ok += 1;
            info!(%peer, offset, "partial resync");
            if sock
                .write_flush(format!("+CONTINUE {replid} {offset}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            offset
        }
        PsyncDecision::Full => match full_sync(&engine, &mut sock, &replid, &peer).await {
            Some(o) => o,
            None => return,
        },
    };
    {
        let mut st = engine.lock_state().await;
        if stock && st.repl.last_stock_ping_ms == 0 {
            // The first keep-alive PING comes a period after the first stock replica, not at
            // once (Redis's suite reads the stream and expects only the commands it ran).
            st.repl.last_stock_ping_ms = now_ms();
        }
        st.repl.replicas.insert(
            id,
            ReplicaInfo {
                ip: peer.ip().to_string(),
                port: takeover.port,
                // A full-sync replica has nothing until it says so (after loading).
                ack_offset: if full { 0 } else { pos },
                last_ack_ms: now_ms(),
                online: true,
                stock,
            },
        );
        refresh_acks(&engine, &mut st);
    }
    let r = stream_loop(&engine, &mut sock, id, &mut pos, &mut inbuf, &kill, stock).await;
    let mut st = engine.lock_state().await;
    st.repl.replicas.remove(&id);
    refresh_acks(&engine, &mut st);
    info!(%peer, reason = r, "replica disconnected");
}

/// A stock Redis replica's full sync: `+FULLRESYNC <replid> <offset>` (not for SYNC), then the
/// dataset at that offset as an RDB payload (`$<len>` and the file, as a disk-based Redis
/// master sends it). Returns the offset.
///
/// The file is encoded in one go under the lock, so it is exactly the dataset at the offset
/// the stream continues from; clients wait meanwhile (about as long as SAVE takes). Engine
/// replicas get the paced, copy-before-write snapshot of [`full_sync`] instead.
async fn stock_full_sync(
    engine: &Arc<Engine>,
    sock: &mut Socket,
    replid: &str,
    peer: &SocketAddr,
    protocol: PeerProtocol,
) -> Option<u64> {
    let (offset, data) = {
        let mut st = engine.lock_state().await;
        st.repl.sync_full += 1;
        let offset = st.stream.offset;
        // As a Redis master after a full sync: the stream selects its database again before
        // its next command, so the new replica (which starts in db 0, `repl-stream-db` -1)
        // needs nothing from the file to follow it. One SELECT more for every other replica.
        st.stream.cur_db = None;
        let aux = crate::engine::state::dump::ReplAux {
            replid: replid.to_string(),
            offset,
            stream_db: None,
        };
        (
            offset,
            crate::engine::state::dump::encode(&st, Some(&aux), now_ms()),
        )
    };
    info!(%peer, offset, bytes = data.len(), "full sync (stock Redis replica, RDB payload)");
    let mut head = Vec::new();
    if protocol == PeerProtocol::StockPsync {
        head.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    sock.write_flush(&head).await.ok()?;
    sock.write_flush(&data).await.ok()?;
    Some(offset)
}

/// A snapshot of the dataset at offset S streamed as commands, then `REPLCONF SNAPEND <db>`.
/// Returns S.
async fn full_sync(
    engine: &Arc<Engine>,
    sock: &mut Socket,
    replid: &str,
    peer: &SocketAddr,
) -> Option<u64> {
    // One snapshot at a time (a BGSAVE may be running).
    let (offset, db) = loop {
        {
            let mut st = engine.lock_state().await;
            if !st.persist.snapshot_in_progress {
                st.repl.sync_full += 1;
                break crate::engine::state::snapshot::begin(&mut st, now_ms());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    info!(%peer, offset, "full sync");
    let dbn = db.map(|d| d as i64).unwrap_or(-1);
    if sock
        .write_flush(format!("+FULLRESYNC {replid} {offset} {dbn}\r\n").as_bytes())
        .await
        .is_err()
    {
        end_full_sync_capture(engine);
        return None;
    }
    // Serialising *and writing* happen on a thread of its own at low priority
    // (snapshot::lower_thread_priority), one step at a time under the lock, paced to
    // `repl-fullsync-max-rate`. The write is there and not on this task because copying the
    // dataset into a socket is CPU work (on loopback the receiving side's TCP work too,
    // charged to the sender): on the network thread it delays every client's reply. The thread writes through its own duplicate of the socket's descriptor,
    // so the descriptor stays valid even if this task is dropped mid-sync, and it alone ends
    // the capture (a guard, so also if it panics): never twice, never not at all.
    //
    // An encrypted link cannot be written around its TLS session: there the thread hands its
    // chunks to this task (a short queue, so the pacing and the back-pressure stay the
    // thread's) and this task writes them through the session.
    let fd = match sock.plain().map(|tcp| tcp.as_fd().try_clone_to_owned()) {
        None => None,
        Some(Ok(fd)) => Some(fd),
        Some(Err(e)) => {
            warn!(%peer, error = %e, "cannot duplicate the replica's socket for the full sync");
            end_full_sync_capture(engine);
            return None;
        }
    };
    let (timeout_ms, max_rate) = {
        let st = engine.lock_state().await;
        let setting = |name: &str, default: u64| {
            st.config
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        (
            setting("repl-timeout", 60).saturating_mul(1000),
            setting("repl-fullsync-max-rate", 0),
        )
    };
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<FullSyncEnd>();
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let serialiser = {
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("full-sync".into())
            .spawn(move || {
                let capture = CaptureGuard(&engine);
                snapshot::lower_thread_priority();
                let dropped = || done_tx.is_closed();
                let end = match &fd {
                    Some(fd) => {
                        send_snapshot(&engine, |b| send_all(fd, b, timeout_ms), max_rate, dropped)
                    }
                    None => send_snapshot(
                        &engine,
                        |b| {
                            chunk_tx.blocking_send(b.to_vec()).map_err(|_| {
                                std::io::Error::other("the replica's link task is gone")
                            })
                        },
                        max_rate,
                        dropped,
                    ),
                };
                // Every chunk is queued before the end is reported.
                drop(chunk_tx);
                drop(capture);
                let _ = done_tx.send(end);
            })
    };
    if let Err(e) = serialiser {
        tracing::error!(error = %e, "cannot start the full-sync thread");
        end_full_sync_capture(engine);
        return None;
    }
    let write_timeout = Duration::from_millis(timeout_ms.max(1));
    let done = loop {
        tokio::select! {
            biased;
            Some(chunk) = chunk_rx.recv() => {
                match tokio::time::timeout(write_timeout, sock.write_flush(&chunk)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        info!(%peer, error = %e, "full sync abandoned: the replica's socket failed");
                        return None;
                    }
                    Err(_) => {
                        info!(%peer, "full sync abandoned: the replica took nothing for repl-timeout");
                        return None;
                    }
                }
            }
            r = &mut done_rx => break r,
        }
    };
    // Chunks queued just before the end was reported.
    while let Ok(chunk) = chunk_rx.try_recv() {
        if tokio::time::timeout(write_timeout, sock.write_flush(&chunk))
            .await
            .map_or(true, |r| r.is_err())
        {
            info!(%peer, "full sync abandoned: the replica's socket failed");
            return None;
        }
    }
    match done {
        Ok(FullSyncEnd::Sent) => {}
        Ok(FullSyncEnd::Restart) => {
            // FLUSHALL/SWAPDB (or a replaced dataset) during the transfer: the replica starts
            // again.
            info!(%peer, "full sync abandoned: the dataset changed wholesale");
            return None;
        }
        Ok(FullSyncEnd::Socket(e)) => {
            info!(%peer, error = %e, "full sync abandoned: the replica's socket failed");
            return None;
        }
        Ok(FullSyncEnd::Dropped) | Err(_) => return None,
    }
    let mut end = Vec::new();
    encode_command(
        &[
            Bytes::from_static(b"REPLCONF"),
            Bytes::from_static(b"SNAPEND"),
            Bytes::from(dbn.to_string()),
        ],
        &mut end,
    );
    sock.write_flush(&end).await.ok()?;
    Some(offset)
}

/// How the full-sync thread's work ended.
enum FullSyncEnd {
    /// The whole snapshot is in the socket.
    Sent,
    /// FLUSHALL/SWAPDB or a replaced dataset made the capture obsolete.
    Restart,
    /// The replica's socket failed or took nothing for `repl-timeout`.
    Socket(std::io::Error),
    /// The task serving the replica is gone.
    Dropped,
}

/// Ends the capture a full sync holds when the thread that serialises it ends, however it
/// ends. Only that thread ends it: while `snapshot_in_progress` is set nobody else can begin a
/// capture, so ending it cannot touch a later BGSAVE's.
struct CaptureGuard<'a>(&'a Engine);

impl Drop for CaptureGuard<'_> {
    fn drop(&mut self) {
        end_full_sync_capture(self.0);
    }
}

fn end_full_sync_capture(engine: &Engine) {
    let mut st = engine.state.lock();
    for d in st.dbs.iter_mut() {
        d.end_snapshot();
    }
    st.persist.snapshot_in_progress = false;
}

/// Serialise the capture step by step and hand each chunk to `send` (the replica's socket, or
/// the queue to the task that owns its TLS session), at most `max_rate` bytes per second (0: no
/// limit).
///
/// Why a rate limit when the thread already runs at nice 10: measured on two cores
/// (docs/benchmarks.md), walking the dataset and pushing it through a socket as fast as it
/// goes (~60 MB/s there) raised the master's client p99 3–10×, at nice 10 and even in the
/// scheduler's idle class (the walk evicts the caches the network thread works from; on
/// loopback the kernel's receive work lands on the same cores), while the same sync paced to
/// 32 MB/s cost 1.0–2.1×. Priority decides who gets a busy core, not what the work does to the
/// caches; only doing less of it per second helps. The default, 32 MB/s, seeds a replica with
/// 1 GB in about 30 s and takes a quarter of a gigabit link; `pg_basebackup --max-rate` (what
/// CloudNativePG uses to seed a replica) is the same idea. Set it to 0 where the master has
/// cores to spare and a fast seed matters more.
fn send_snapshot(
    engine: &Engine,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
    max_rate: u64,
    dropped: impl Fn() -> bool,
) -> FullSyncEnd {
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut payload = Vec::new();
    loop {
        if dropped() {
            return FullSyncEnd::Dropped;
        }
        if max_rate > 0 {
            // The schedule: byte `sent` goes out no earlier than started + sent / rate. A sync
            // that fell behind it (a slow replica) sends without pausing until it is back on it.
            let due = Duration::from_secs_f64(sent as f64 / max_rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match crate::engine::state::snapshot::step_fair(
            &engine.state,
            snapshot::KEYS_PER_STEP,
            &mut payload,
        ) {
            crate::engine::state::snapshot::Step::Aborted
            | crate::engine::state::snapshot::Step::Cancelled => return FullSyncEnd::Restart,
            crate::engine::state::snapshot::Step::Chunk { done } => {
                if let Err(e) = send(&payload) {
                    return FullSyncEnd::Socket(e);
                }
                sent += payload.len() as u64;
                if done {
                    return FullSyncEnd::Sent;
                }
            }
        }
    }
}

/// Write all of `buf` to the socket `fd`, which is non-blocking (tokio owns the original
/// descriptor, and the flag belongs to the shared open file): wait for room with poll().
/// Fails when the replica takes nothing for `timeout_ms`.
fn send_all(fd: &OwnedFd, mut buf: &[u8], timeout_ms: u64) -> std::io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::io::Errno;
    use rustix::net::{send, SendFlags};
    let timeout = Timespec {
        tv_sec: (timeout_ms / 1000) as i64,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as i64,
    };
    while !buf.is_empty() {
        match send(fd, buf, SendFlags::NOSIGNAL) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::OUT)];
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the replica took nothing for repl-timeout",
                        ))
                    }
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

enum Next {
    Bytes(Vec<u8>),
    Disk {
        dir: std::path::PathBuf,
        written: u64,
    },
    CaughtUp,
}

async fn stream_loop(
    engine: &Arc<Engine>,
    sock: &mut Socket,
    id: u64,
    pos: &mut u64,
    inbuf: &mut BytesMut,
    kill: &crate::engine::client::ClientHandle,
    stock: bool,
) -> &'static str {
    let mut new_data = engine.lock_state().await.stream.new_data.subscribe();
    let mut written_rx: Option<(Arc<LogWriter>, watch::Receiver<u64>)> = None;
    let mut tick = tokio::time::interval(HEARTBEAT);
    // Every lock below is `lock_state`: while a busy script holds the state, a plain `lock`
    // would park this runtime worker, and with every worker parked nobody reads SCRIPT KILL.
    loop {
        // Send everything available; a chunk may end inside a command, so heartbeats go out only
        // once caught up (at a command boundary).
        loop {
            let next = {
                let st = engine.lock_state().await;
                // With persistence on, only bytes this node has already written to its own log
                // go to the replica. Otherwise the replica could acknowledge, and so make
                // acknowledged, a write that a crash of this process loses (still queued for
                // the log writer): a master restarted within the detection window would come
                // back without it while its replica holds it, and could no longer serve the
                // replica's position. Written bytes survive a killed process (the kernel has
                // them); a lost node is failed over. The log writer writes as soon as it is
                // woken, so this costs a thread hand-off, not an fsync.
                let log = st.stream.log.as_ref().filter(|_| st.persist.enabled);
                match log {
                    Some(l) if written_rx.as_ref().is_none_or(|(w, _)| !Arc::ptr_eq(w, l)) => {
                        written_rx = Some((l.clone(), l.written_tx.subscribe()));
                    }
                    Some(_) => {}
                    None => written_rx = None,
                }
                let limit = match log {
                    Some(l) => st
                        .stream
                        .offset
                        .min(l.written.load(std::sync::atomic::Ordering::Acquire)),
                    None => st.stream.offset,
                };
                if *pos >= limit {
                    Next::CaughtUp
                } else if let Some(b) = st
                    .stream
                    .backlog
                    .read(*pos, CHUNK.min((limit - *pos) as usize))
                {
                    Next::Bytes(b)
                } else if let Some(w) = st.stream.log.as_ref().filter(|_| st.persist.enabled) {
                    Next::Disk {
                        dir: st.persist.dir.clone(),
                        written: w.written.load(std::sync::atomic::Ordering::Acquire),
                    }
                } else {
                    return "fell behind the backlog";
                }
            };
            let bytes = match next {
                Next::CaughtUp => break,
                Next::Bytes(b) => b,
                Next::Disk { dir, written } => {
                    if *pos >= written {
                        // Not on disk yet and no longer in memory cannot happen (the backlog
                        // holds at least what the writer has not written); wait a little.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let from = *pos;
                    match tokio::task::spawn_blocking(move || {
                        crate::engine::persistence::read_stream(&dir, from, CHUNK)
                    })
                    .await
                    {
                        Ok(Some(b)) if !b.is_empty() => b,
                        _ => return "position no longer retained",
                    }
                }
            };
            if sock.write_flush(&bytes).await.is_err() {
                return "write failed";
            }
            *pos += bytes.len() as u64;
        }
        tokio::select! {
            _ = new_data.changed() => {}
            r = written_moved(&mut written_rx) => {
                if r.is_err() {
                    written_rx = None; // that log was replaced; the next pass subscribes anew
                }
            }
            _ = tick.tick() => {
                let hb = {
                    let mut st = engine.lock_state().await;
                    let timeout_ms = st
                        .config
                        .get("repl-timeout")
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(60)
                        * 1000;
                    if st.repl.replicas.get(&id).is_some_and(|r| now_ms() - r.last_ack_ms > timeout_ms) {
                        return "timeout: no acknowledgement from the replica";
                    }
                    if stock {
                        // A stock replica would apply a heartbeat as a command and count its
                        // bytes; its keep-alive is a PING in the stream, as Redis's
                        // (repl-ping-replica-period, 10 s), counted by every replica alike.
                        let now = now_ms();
                        let period_ms = st
                            .config
                            .get("repl-ping-replica-period")
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(10)
                            .saturating_mul(1000);
                        if st.repl.role == crate::engine::replication::Role::Master
                            && now - st.repl.last_stock_ping_ms >= period_ms
                        {
                            st.repl.last_stock_ping_ms = now;
                            let mut ping = Vec::new();
                            encode_command(&[Bytes::from_static(b"PING")], &mut ping);
                            st.stream.append_unit(&ping);
                        }
                        continue;
                    }
                    let seq = st.repl.next_heartbeat;
                    st.repl.next_heartbeat += 1;
                    st.repl.heartbeats.push_back((seq, Instant::now()));
                    while st.repl.heartbeats.len() > 256 {
                        st.repl.heartbeats.pop_front();
                    }
                    seq
                };
                let mut out = Vec::new();
                encode_command(
                    &[Bytes::from_static(b"REPLCONF"), Bytes::from_static(b"HB"), Bytes::from(hb.to_string())],
                    &mut out,
                );
                if sock.write_flush(&out).await.is_err() {
                    return "write failed";
                }
            }
            r = sock.read_buf(inbuf) => {
                match r {
                    Ok(0) | Err(_) => return "connection closed",
                    Ok(_) => {}
                }
                let Ok(cmds) = split_commands(inbuf) else {
                    return "protocol error";
                };
                let mut st = engine.lock_state().await;
                for (args, _) in cmds {
                    handle_ack(engine, &mut st, id, &args);
                }
            }
            _ = kill.kill.notified() => return "killed",
        }
    }
}

/// Resolves when the log writer has written more (never, without a log).
async fn written_moved(
    rx: &mut Option<(Arc<LogWriter>, watch::Receiver<u64>)>,
) -> Result<(), watch::error::RecvError> {
    match rx {
        Some((_, r)) => r.changed().await,
        None => std::future::pending().await,
    }
}

/// `REPLCONF ACK <offset> [<heartbeat>]` from a replica.
fn handle_ack(engine: &Engine, st: &mut EngineState, id: u64, args: &[Arg]) {
    if args.len() < 3
        || !args[0].eq_ignore_ascii_case(b"replconf")
        || !args[1].eq_ignore_ascii_case(b"ack")
    {
        return;
    }
    let Some(offset) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let now = now_ms();
    if let Some(r) = st.repl.replicas.get_mut(&id) {
        r.ack_offset = r.ack_offset.max(offset);
        r.last_ack_ms = now;
    }
    // The lease runs from when *we sent* the heartbeat the replica answered: it ends no later
    // than the replica believes.
    if let Some(seq) = args
        .get(3)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        while let Some(&(s, sent)) = st.repl.heartbeats.front() {
            if s > seq {
                break;
            }
            st.repl.heartbeats.pop_front();
            if s == seq {
                crate::engine::replication::lease::grant(&mut st.repl, sent);
            }
        }
    }
    refresh_acks(engine, st);
}

/// Publish the best acknowledged offset to the reply gate and answer satisfied WAITs.
pub fn refresh_acks(engine: &Engine, st: &mut EngineState) {
    engine.gate.set_acked(st.repl.best_ack());
    if st.repl.waits.is_empty() {
        return;
    }
    let waits = std::mem::take(&mut st.repl.waits);
    for w in waits {
        if !st.blocking.clients.contains_key(&w.client) {
            continue; // timed out or gone
        }
        let n = st.repl.acked_count(w.offset) as i64;
        if n >= w.replicas {
            if let Some(b) = st.blocking.unblock(w.client) {
                let _ = b.reply.send(Reply::Int(n));
            }
        } else {
            st.repl.waits.push(w);
        }
    }
}

/// Answer the WAITs whose timeout has passed with the number of replicas that acknowledged.
pub fn expire_waits(st: &mut EngineState, now_ms: i64) {
    if st.repl.waits.is_empty() {
        return;
    }
    let waits = std::mem::take(&mut st.repl.waits);
    for w in waits {
        if !st.blocking.clients.contains_key(&w.client) {
            continue;
        }
        if w.deadline_ms != 0 && now_ms >= w.deadline_ms {
            let n = st.repl.acked_count(w.offset) as i64;
            if let Some(b) = st.blocking.unblock(w.client) {
                let _ = b.reply.send(Reply::Int(n));
            }
        } else {
            st.repl.waits.push(w);
        }
    }
}
