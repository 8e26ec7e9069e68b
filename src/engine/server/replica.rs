//! The replica side: connect to the master, handshake (listening port, term), PSYNC from our
//! position, then apply the stream through the normal command path and append it unchanged to
//! our own log, acknowledging what we appended. Handles full sync (load a snapshot stream and
//! keep it as our snapshot), divergent tails (truncate our log to where the histories part and
//! reload) and fencing (never follow a master of a lower term; never wipe our data for a master
//! whose history lacks our position). Does I/O: the master's socket, our data directory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tracing::{info, warn};

use crate::engine::client::ClientState;
use crate::engine::clock::now_ms;
use crate::engine::cmd::replication::save_node_state;
use crate::engine::core::Engine;
use crate::engine::persistence::{
    self, snapshot::SnapshotFile, writer::FsyncPolicy, writer::LogWriter,
};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::commands::encode_command;
use crate::engine::protocol::commands::{split_commands, split_commands_with};
use crate::engine::protocol::parse::RequestParser;
use crate::engine::replication::Role;
use crate::engine::state::replay::{apply_one, stream_client};
use crate::engine::state::EngineState;
use crate::engine::tls::{MasterTlsSettings, Socket};

/// How a link attempt ended.
enum End {
    /// Try again shortly.
    Retry(String),
    /// Stay detached until an admin command says otherwise.
    Detach(String),
    /// The role or master changed: this link is obsolete.
    Obsolete,
}

/// Keep following the configured master until the link generation changes or we detach.
pub async fn run_link(engine: Arc<Engine>, generation: u64) {
    loop {
        let target = {
            let st = engine.lock_state().await;
            if st.repl.link_generation != generation || st.repl.role != Role::Replica {
                return;
            }
            st.repl.master.clone()
        };
        let Some((host, port)) = target else { return };
        let end = link_once(&engine, generation, &host, port).await;
        if !record_end(&engine, generation, end).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Record how a link attempt ended; false when the link task must stop.
async fn record_end(engine: &Engine, generation: u64, end: End) -> bool {
    let mut st = engine.lock_state().await;
    if st.repl.link_generation != generation {
        return false;
    }
    let was_up = st.repl.link.up;
    st.repl.link.up = false;
    st.repl.link.sync_in_progress = false;
    if was_up || st.repl.link.down_since_ms == 0 {
        st.repl.link.down_since_ms = now_ms();
    }
    match end {
        End::Obsolete => false,
        End::Detach(reason) => {
            warn!(%reason, "replication detached");
            st.repl.link.detached = true;
            st.repl.link.reason = reason;
            false
        }
        End::Retry(reason) => {
            if was_up {
                info!(%reason, "replication link down");
            }
            st.repl.link.reason = reason;
            true
        }
    }
}

async fn send(sock: &mut Socket, args: &[&str]) -> Result<(), End> {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
    let mut out = Vec::new();
    encode_command(&args, &mut out);
    sock.write_flush(&out)
        .await
        .map_err(|e| End::Retry(format!("write to master: {e}")))
}

async fn read_line(sock: &mut Socket, buf: &mut BytesMut) -> Result<String, End> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        let read = tokio::time::timeout(Duration::from_secs(10), sock.read_buf(buf)).await;
        match read {
            Ok(Ok(0)) => return Err(End::Retry("master closed the link".into())),
            // A TLS alert (a master requiring a client certificate sends one after the
            // handshake, in TLS 1.3) is the reason worth showing.
            Ok(Err(e)) => return Err(End::Retry(format!("master closed the link: {e}"))),
            Err(_) => return Err(End::Retry("master did not answer".into())),
            Ok(Ok(_)) => {}
        }
    }
}

async fn expect_ok(sock: &mut Socket, buf: &mut BytesMut) -> Result<(), End> {
    let l = read_line(sock, buf).await?;
    if l.starts_with('+') {
        Ok(())
    } else {
        Err(End::Retry(format!("master answered {l}")))
    }
}

fn obsolete(st: &EngineState, generation: u64) -> bool {
    st.repl.link_generation != generation || st.repl.role != Role::Replica
}

async fn link_once(engine: &Arc<Engine>, generation: u64, host: &str, port: u16) -> End {
    match link_inner(engine, generation, host, port).await {
        Ok(()) => End::Obsolete,
        Err(e) => e,
    }
}

/// Connect to the master: with `master-tls yes` over TLS with the `master-tls-*` settings (a
/// master outside the pair, verified by chain and name); else over TLS with
/// `tls-replication yes` (the master's certificate must chain to `tls-ca-cert-file`; see
/// `tls::ChainOnlyVerifier`); else plaintext.
async fn connect(engine: &Arc<Engine>, host: &str, port: u16) -> Result<Socket, End> {
    let deadline = Duration::from_secs(2);
    // Read before connecting: `master-tls` is switched by CONFIG SET together with REPLICAOF,
    // and a link uses what was set when it started.
    let master_tls = {
        let st = engine.lock_state().await;
        (st.config.get("master-tls") == Some("yes"))
            .then(|| MasterTlsSettings::from_config(&st.config))
    };
    // The configuration is built (its files read) before dialling, so a missing file or a
    // bad CA is the link's reason without a connection to the master.
    let master_tls = match master_tls {
        Some(Ok(settings)) => {
            let (connector, name) = settings
                .connector(host)
                .map_err(|e| End::Retry(format!("master-tls: {e}")))?;
            Some((connector, name, settings.verify))
        }
        Some(Err(e)) => return Err(End::Retry(format!("master-tls: {e}"))),
        None => None,
    };
    let tcp = tokio::time::timeout(deadline, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| End::Retry("connect timed out".into()))?
        .map_err(|e| End::Retry(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    if let Some((connector, name, verify)) = master_tls {
        let s = tokio::time::timeout(deadline, connector.connect(name, tcp))
            .await
            .map_err(|_| End::Retry("master-tls: TLS handshake timed out".into()))?
            .map_err(|e| End::Retry(format!("master-tls: TLS handshake: {e}")))?;
        // Once per session made (not per failed attempt, which retries every 100 ms).
        if !verify {
            warn!(%host, "master-tls-verify is no: linked to the master over TLS without verifying its certificate");
        }
        return Ok(Socket::Client(Box::new(s)));
    }
    let Some(tls) = engine.tls.as_ref().filter(|t| t.settings.replication) else {
        return Ok(Socket::Plain(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| End::Retry(format!("master host {host}: {e}")))?;
    let connector = tls
        .connector()
        .ok_or_else(|| End::Retry("tls-replication needs tls-ca-cert-file".into()))?;
    let s = tokio::time::timeout(deadline, connector.connect(name, tcp))
        .await
        .map_err(|_| End::Retry("TLS handshake timed out".into()))?
        .map_err(|e| End::Retry(format!("TLS handshake: {e}")))?;
    Ok(Socket::Client(Box::new(s)))
}

async fn link_inner(
    engine: &Arc<Engine>,
    generation: u64,
    host: &str,
    port: u16,
) -> Result<(), End> {
    let mut sock = connect(engine, host, port).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let (my_port, my_term, auth) = {
        let st = engine.lock_state().await;
        let mut pass = st.config.get("masterauth").unwrap_or("").to_string();
        let mut user = st.config.get("masteruser").unwrap_or("").to_string();
        if pass.is_empty() {
            // The two engines of a pair share the admin credentials: without masterauth, the
            // link authenticates as the admin user when there is one.
            let s = &st.config.settings;
            if let Some(admin) = &s.admin_user {
                if !s.admin_password.is_empty() {
                    user = String::from_utf8_lossy(admin).into_owned();
                    pass = String::from_utf8_lossy(&s.admin_password).into_owned();
                }
            }
        }
        // With tls-replication the master sees us on our TLS port (as Redis announces it).
        let port = match &engine.tls {
            Some(t) if t.settings.replication && t.settings.port != 0 => t.settings.port,
            _ => st.port,
        };
        (port, st.repl.term, (user, pass))
    };
    match auth {
        (_, pass) if pass.is_empty() => {}
        (user, pass) if user.is_empty() => {
            send(&mut sock, &["AUTH", &pass]).await?;
            expect_ok(&mut sock, &mut buf).await?;
        }
        (user, pass) => {
            send(&mut sock, &["AUTH", &user, &pass]).await?;
            expect_ok(&mut sock, &mut buf).await?;
        }
    }
    send(
        &mut sock,
        &["REPLCONF", "listening-port", &my_port.to_string()],
    )
    .await?;
    expect_ok(&mut sock, &mut buf).await?;
    send(&mut sock, &["REPLCONF", "capa", "psync2"]).await?;
    expect_ok(&mut sock, &mut buf).await?;
    send(&mut sock, &["REPLCONF", "term", &my_term.to_string()]).await?;
    let l = read_line(&mut sock, &mut buf).await?;
    if l.starts_with("-ERR Unrecognized REPLCONF option") {
        // A stock Redis master: it has no terms (and so takes no part in fencing) and speaks
        // Redis's own PSYNC, with an RDB file for a full sync.
        return link_stock_master(engine, generation, sock, buf).await;
    }
    let master_term: u64 = l
        .strip_prefix(':')
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| End::Retry(format!("master does not report a term: {l}")))?;
    let (replid, offset, prev, allow_full) = {
        let mut st = engine.lock_state().await;
        if obsolete(&st, generation) {
            return Ok(());
        }
        if master_term < st.repl.term {
            return Err(End::Detach(format!(
                "master term {master_term} is lower than ours ({})",
                st.repl.term
            )));
        }
        if master_term > st.repl.term {
            st.repl.term = master_term;
            save_node_state(&st);
        }
        st.repl.link.sync_in_progress = true;
        let allow = st.repl.force_full_sync || st.stream.offset == 0;
        // Our history before the current id, for a master that knows only that one (we
        // restarted after a crash, or were promoted, and it was not following us).
        let prev = (st.repl.second_offset >= 0)
            .then(|| (st.repl.replid2.clone(), st.repl.second_offset as u64));
        (
            st.repl.replid.clone(),
            st.stream.offset,
            prev,
            (allow, st.repl.allow_truncate),
        )
    };
    let (allow_full, allow_truncate) = allow_full;
    let mut psync = vec!["PSYNC".to_string(), replid.clone(), offset.to_string()];
    if let Some((id, end)) = prev {
        psync.extend(["PREV".to_string(), id, end.to_string()]);
    }
    if allow_full {
        psync.push("ALLOW-FULL".into());
    }
    if allow_truncate {
        psync.push("ALLOW-TRUNCATE".into());
    }
    let refs: Vec<&str> = psync.iter().map(String::as_str).collect();
    send(&mut sock, &refs).await?;
    let l = read_line(&mut sock, &mut buf).await?;
    let words: Vec<&str> = l.split(' ').collect();
    let mut client = {
        let mut st = engine.lock_state().await;
        let id = st.new_client_id();
        stream_client(id, st.stream.cur_db.unwrap_or(0))
    };
    let mut loading: Option<Option<SnapshotFile>> = None;
    match words.first().copied() {
        Some("+CONTINUE") => {
            let new_id = words.get(1).copied().unwrap_or("").to_string();
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            if !new_id.is_empty() && new_id != st.repl.replid {
                // The master was promoted (or restarted): its new id continues our history.
                st.repl.replid2 = std::mem::replace(&mut st.repl.replid, new_id);
                st.repl.second_offset = st.stream.offset as i64;
            }
            st.repl.force_full_sync = false;
            st.repl.allow_truncate = false;
            link_up(&mut st);
            save_node_state(&st);
            info!(offset, "partial resync with the master");
        }
        Some("+FULLRESYNC") => {
            let s: u64 = words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0);
            let db: i64 = words.get(3).and_then(|w| w.parse().ok()).unwrap_or(-1);
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            info!(offset = s, "full sync from the master");
            loading = Some(start_full_sync(&mut st, s, db));
            st.repl.pending_full = Some((words.get(1).copied().unwrap_or("").to_string(), s));
        }
        Some("+TRUNCATE") => {
            let p: u64 = words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0);
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            if !truncate_to(engine, &mut st, p) {
                // We cannot rebuild our data at the divergence point from our own files: a full
                // sync from the new master (whose history holds everything up to it) instead.
                st.repl.force_full_sync = true;
                st.repl.allow_truncate = false;
            }
            return Err(End::Retry("truncated a divergent tail".into()));
        }
        _ if l.starts_with("-NOHISTORY") => {
            return Err(End::Detach(l.trim_start_matches('-').to_string()));
        }
        _ => return Err(End::Retry(format!("PSYNC refused: {l}"))),
    }
    receive(
        engine,
        generation,
        &mut sock,
        buf,
        &mut client,
        loading,
        false,
    )
    .await
}

/// Follow a stock Redis master (7.x), as a Redis replica does: `PSYNC <replid> <offset+1>` (or
/// `PSYNC ? -1` with no history), then either `+CONTINUE` and the stream, or `+FULLRESYNC
/// <replid> <offset>` and an RDB payload (`$<len>` from a disk save, or `$EOF:<mark>` ... mark
/// from a diskless one), which replaces our dataset and our log (kept as our snapshot at the
/// master's offset, so our offsets are the master's and a restart resumes by partial resync).
///
/// A full sync from a stock master is accepted whenever it offers one, as a Redis replica
/// accepts it: such a master has no term, and `REPLICAOF` pointing at it is the operator's
/// decision to take its data. Engine masters keep the fenced protocol (`ALLOW-FULL`).
async fn link_stock_master(
    engine: &Arc<Engine>,
    generation: u64,
    mut sock: Socket,
    mut buf: BytesMut,
) -> Result<(), End> {
    // `eof`: we read diskless payloads; `psync2`: +CONTINUE carries the master's new id.
    send(&mut sock, &["REPLCONF", "capa", "eof", "capa", "psync2"]).await?;
    expect_ok(&mut sock, &mut buf).await?;
    let (replid, offset, timeout_secs) = {
        let mut st = engine.lock_state().await;
        if obsolete(&st, generation) {
            return Ok(());
        }
        st.repl.link.sync_in_progress = true;
        let timeout: u64 = st
            .config
            .get("repl-timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        (st.repl.replid.clone(), st.stream.offset, timeout)
    };
    // Redis's PSYNC names the first byte wanted: our offset + 1. With nothing yet, `? -1`
    // asks for a full sync without pretending to a history.
    let psync = if offset == 0 {
        vec!["PSYNC".to_string(), "?".into(), "-1".into()]
    } else {
        vec!["PSYNC".to_string(), replid, (offset + 1).to_string()]
    };
    let refs: Vec<&str> = psync.iter().map(String::as_str).collect();
    send(&mut sock, &refs).await?;
    let l = read_payload_line(&mut sock, &mut buf, timeout_secs).await?;
    let words: Vec<&str> = l.split(' ').collect();
    match words.first().copied() {
        Some("+CONTINUE") => {
            let new_id = words.get(1).copied().unwrap_or("").to_string();
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            if !new_id.is_empty() && new_id != st.repl.replid {
                st.repl.replid2 = std::mem::replace(&mut st.repl.replid, new_id);
                st.repl.second_offset = st.stream.offset as i64;
            }
            link_up(&mut st);
            save_node_state(&st);
            info!(offset, "partial resync with the (stock Redis) master");
        }
        Some("+FULLRESYNC") => {
            let master_id = words.get(1).copied().unwrap_or("").to_string();
            let s: u64 = words
                .get(2)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| End::Retry(format!("bad FULLRESYNC: {l}")))?;
            info!(offset = s, "full sync from the (stock Redis) master");
            let data = read_rdb_payload(&mut sock, &mut buf, timeout_secs).await?;
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            if let Some(f) = start_full_sync(&mut st, s, -1) {
                // The dataset comes as an RDB file, not as commands: our snapshot is written
                // from the loaded data below instead.
                f.abandon();
            }
            // The master's libraries replace ours, as its keys do.
            st.scripting.flush_functions();
            let now = now_ms();
            let loaded = crate::engine::state::dump::load(&mut st, &data, now, false);
            let loaded = match loaded {
                Ok(l) => l,
                Err(e) => {
                    // Nothing partial is served: LOADING stays until a full sync succeeds.
                    for d in st.dbs.iter_mut() {
                        d.clear();
                    }
                    return Err(End::Retry(format!("cannot load the master's RDB: {e}")));
                }
            };
            // The master selects a database before its next command (it forgets the
            // stream's database at a full sync), so none is assumed here.
            finish_full_sync(engine, &mut st, None, &master_id, s, -1)?;
            if st.persist.enabled {
                crate::engine::state::snapshot::save_inline(&mut st, now)
                    .map_err(|e| End::Retry(format!("cannot write the snapshot: {e}")))?;
            }
            info!(
                offset = s,
                keys = loaded.keys_loaded,
                bytes = data.len(),
                "RDB from the master loaded"
            );
        }
        _ => return Err(End::Retry(format!("PSYNC refused: {l}"))),
    }
    let mut client = {
        let mut st = engine.lock_state().await;
        let id = st.new_client_id();
        stream_client(id, st.stream.cur_db.unwrap_or(0))
    };
    receive(engine, generation, &mut sock, buf, &mut client, None, true).await
}

/// Read more from the master into `buf`, failing after `timeout_secs` of silence.
async fn read_more(sock: &mut Socket, buf: &mut BytesMut, timeout_secs: u64) -> Result<(), End> {
    match tokio::time::timeout(Duration::from_secs(timeout_secs.max(1)), sock.read_buf(buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Err(End::Retry("master closed the link".into())),
        Err(_) => Err(End::Retry("timeout: no data from the master".into())),
        Ok(Ok(_)) => Ok(()),
    }
}

/// A reply line, skipping the bare newlines a Redis master sends to keep the link alive while
/// it prepares a full sync.
async fn read_payload_line(
    sock: &mut Socket,
    buf: &mut BytesMut,
    timeout_secs: u64,
) -> Result<String, End> {
    loop {
        let skip = buf.iter().take_while(|b| **b == b'\n').count();
        let _ = buf.split_to(skip);
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        read_more(sock, buf, timeout_secs).await?;
    }
}

/// The RDB payload of a full sync: `$<len>\r\n` and that many bytes, or (diskless)
/// `$EOF:<40-byte mark>\r\n`, the file, and the mark again. What follows stays in `buf`.
async fn read_rdb_payload(
    sock: &mut Socket,
    buf: &mut BytesMut,
    timeout_secs: u64,
) -> Result<Vec<u8>, End> {
    let line = read_payload_line(sock, buf, timeout_secs).await?;
    let Some(spec) = line.strip_prefix('$') else {
        return Err(End::Retry(format!("expected the RDB payload, got {line}")));
    };
    if let Some(mark) = spec.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err(End::Retry(format!("bad EOF mark in {line}")));
        }
        let mut data: Vec<u8> = Vec::new();
        loop {
            // Search only where the mark can newly end: the tail of what we had plus the new.
            let from = data.len().saturating_sub(mark.len() - 1);
            data.extend_from_slice(buf);
            buf.clear();
            if let Some(i) = data[from..].windows(mark.len()).position(|w| w == mark) {
                let end = from + i;
                // Bytes after the mark (the stream) go back to `buf`.
                buf.extend_from_slice(&data[end + mark.len()..]);
                data.truncate(end);
                return Ok(data);
            }
            read_more(sock, buf, timeout_secs).await?;
        }
    }
    let len: usize = spec
        .parse()
        .map_err(|_| End::Retry(format!("bad RDB payload length in {line}")))?;
    let mut data = Vec::with_capacity(len.min(1 << 30));
    loop {
        let take = (len - data.len()).min(buf.len());
        data.extend_from_slice(&buf.split_to(take));
        if data.len() == len {
            return Ok(data);
        }
        read_more(sock, buf, timeout_secs).await?;
    }
}

fn link_up(st: &mut EngineState) {
    let l = &mut st.repl.link;
    l.up = true;
    l.sync_in_progress = false;
    l.reason.clear();
    l.detached = false;
    l.down_since_ms = 0;
    l.last_io_ms = now_ms();
}

/// Replace our dataset and history with the master's snapshot at `s`: wipe the data and our
/// log now (our position becomes empty, so an interrupted full sync restarts from scratch).
fn start_full_sync(st: &mut EngineState, s: u64, db: i64) -> Option<SnapshotFile> {
    crate::engine::state::snapshot::cancel(st);
    // From the wipe until the snapshot is complete clients get -LOADING (INFO says loading:1).
    // An interrupted sync leaves it set: the partial dataset is never served; the next full
    // sync, or a promotion, ends it.
    st.persist.loading = true;
    for d in st.dbs.iter_mut() {
        d.clear();
        d.end_snapshot();
    }
    st.repl.replid = crate::engine::ids::random_hex(40);
    st.repl.replid2 = "0".repeat(40);
    st.repl.second_offset = -1;
    st.stream.reset(0);
    if !st.persist.enabled {
        return None;
    }
    if let Some(w) = st.stream.log.take() {
        w.stop();
    }
    let dir = st.persist.dir.clone();
    for (_, p) in persistence::list_segments(&dir)
        .into_iter()
        .chain(persistence::list_snapshots(&dir))
    {
        let _ = std::fs::remove_file(p);
    }
    save_node_state(st);
    match SnapshotFile::create(&dir, s, (db >= 0).then_some(db as usize)) {
        Ok(f) => Some(f),
        Err(e) => {
            warn!(error = %e, "cannot keep the full sync as a snapshot");
            None
        }
    }
}

/// The snapshot is loaded: our history is now the master's from `s`.
fn finish_full_sync(
    engine: &Engine,
    st: &mut EngineState,
    file: Option<SnapshotFile>,
    replid: &str,
    s: u64,
    db: i64,
) -> Result<(), End> {
    st.stream.reset(s);
    st.stream.cur_db = (db >= 0).then_some(db as usize);
    st.repl.replid = replid.to_string();
    st.persist.loading = false;
    st.repl.force_full_sync = false;
    st.repl.allow_truncate = false;
    if st.persist.enabled {
        if let Some(f) = file {
            f.finish()
                .map_err(|e| End::Retry(format!("cannot write the snapshot: {e}")))?;
        }
        start_writer(engine, st, s).map_err(End::Retry)?;
        st.persist.last_snapshot_offset = Some(s);
    }
    link_up(st);
    save_node_state(st);
    info!(offset = s, "full sync done");
    Ok(())
}

fn start_writer(engine: &Engine, st: &mut EngineState, offset: u64) -> Result<(), String> {
    let policy = FsyncPolicy::parse(st.config.get("appendfsync").unwrap_or("everysec"));
    let w = LogWriter::start(st.persist.dir.clone(), offset, policy, engine.gate.clone())
        .map_err(|e| e.to_string())?;
    st.stream.log = Some(w);
    Ok(())
}

/// Discard our stream after `p` (a tail the new master never got): cut the log there, reload
/// the data from our own snapshot and log, and count what was discarded. Returns false when our
/// files cannot rebuild the state at `p` (no persistence, or only newer snapshots).
pub fn truncate_to(engine: &Engine, st: &mut EngineState, p: u64) -> bool {
    let offset = st.stream.offset;
    if p >= offset {
        return true;
    }
    if !st.persist.enabled {
        return false;
    }
    let dir = st.persist.dir.clone();
    let snaps = persistence::list_snapshots(&dir);
    let usable_snapshot = snaps.iter().any(|(o, _)| *o <= p);
    let log_from_zero = persistence::list_segments(&dir)
        .first()
        .is_some_and(|(f, _)| *f == 0);
    if !usable_snapshot && !log_from_zero {
        return false;
    }
    crate::engine::state::snapshot::cancel(st);
    if let Some(w) = st.stream.log.take() {
        w.flush_sync();
        w.stop();
    }
    let tail = persistence::read_stream(&dir, p, usize::MAX).unwrap_or_default();
    let commands = {
        let mut b = BytesMut::from(&tail[..]);
        // Writes, not the SELECTs that only give them their database.
        split_commands(&mut b)
            .map(|c| {
                c.iter()
                    .filter(|(a, _)| !a[0].eq_ignore_ascii_case(b"select"))
                    .count()
            })
            .unwrap_or(0)
    };
    for (o, path) in snaps {
        if o > p {
            let _ = std::fs::remove_file(path);
        }
    }
    if let Err(e) = cut_log(&dir, p) {
        warn!(error = %e, "cannot cut the log");
        return false;
    }
    for d in st.dbs.iter_mut() {
        d.clear();
        d.end_snapshot();
    }
    let now = now_ms();
    match crate::engine::state::replay::recover(st, &dir, now) {
        Ok(rec) if rec.offset == p => {
            st.stream.reset(p);
            st.stream.cur_db = rec.cur_db;
        }
        Ok(rec) => {
            warn!(
                expected = p,
                got = rec.offset,
                "reload after truncation ended elsewhere"
            );
            return false;
        }
        Err(e) => {
            warn!(error = %e, "reload after truncation failed");
            return false;
        }
    }
    if let Err(e) = start_writer(engine, st, p) {
        warn!(error = %e, "cannot restart the log");
        return false;
    }
    let bytes = offset - p;
    st.repl.discarded_tail_bytes += bytes;
    st.repl.discarded_tail_commands += commands as u64;
    warn!(
        bytes,
        commands, "discarded a tail of writes the new master never received"
    );
    save_node_state(st);
    true
}

/// Cut the log so it ends at stream offset `p` (a command boundary, possibly inside a record).
fn cut_log(dir: &std::path::Path, p: u64) -> Result<(), String> {
    use persistence::record;
    for (first, path) in persistence::list_segments(dir) {
        if first >= p {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            continue;
        }
        let data = std::fs::read(&path).map_err(|e| e.to_string())?;
        let (recs, _) = record::scan(&data, true, Some(first));
        let Some(r) = recs.iter().find(|r| r.offset + r.len as u64 > p) else {
            continue;
        };
        let mut keep = data[..r.file_pos].to_vec();
        if r.offset < p {
            let part = &r.payload(&data)[..(p - r.offset) as usize];
            record::encode(r.offset, part, &mut keep);
        }
        persistence::write_atomic(&path, &keep).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How long an acknowledgement waits for this replica's log writer before it acknowledges
/// only what is written (the next one covers the rest).
const ACK_WRITE_WAIT: Duration = Duration::from_millis(500);

/// The offset this replica may acknowledge: what it applied, but with persistence on only as
/// far as its log writer has *written* it (None: the link is obsolete, promoted or
/// re-pointed).
///
/// The mirror of the master's rule (it sends a replica only bytes written to its own log): an
/// acknowledgement is what makes a semi-sync write acknowledged to its client, and it promises
/// that this replica keeps the write if the master is lost. A record still queued for the log
/// writer is lost if this process is killed; a promoted replica killed at once (the torture's
/// back-to-back round: the new master killed 1.5 s after the old one) would then come back
/// without writes the old master acknowledged, and the full sync that follows makes the loss
/// final (100-round torture, session 11: 3 writes). Written bytes survive a killed process;
/// a lost node is what the pair's two nodes are for. The wait is a thread hand-off (the
/// writer writes as soon as it is woken), not an fsync.
async fn durable_offset(engine: &Engine, generation: u64) -> Option<u64> {
    let (offset, log) = {
        let st = engine.lock_state().await;
        if obsolete(&st, generation) {
            return None;
        }
        let log = st.stream.log.clone().filter(|_| st.persist.enabled);
        (st.stream.offset, log)
    };
    let Some(log) = log else {
        return Some(offset);
    };
    let written = || log.written.load(std::sync::atomic::Ordering::Acquire);
    if written() < offset {
        // Subscribed first, then woken: a writer asleep on its timer writes at once.
        let mut rx = log.written_tx.subscribe();
        log.wake();
        let _ = tokio::time::timeout(ACK_WRITE_WAIT, async {
            while written() < offset {
                if rx.changed().await.is_err() {
                    break; // that log was stopped (full sync, promotion): acknowledge what it wrote
                }
            }
        })
        .await;
    }
    Some(offset.min(written()))
}

/// `REPLCONF ACK <offset> [<heartbeat>]`: the heartbeat only to an engine master (a stock
/// Redis master answers a fourth word with an error, and drops the link).
async fn send_ack(sock: &mut Socket, offset: u64, hb: Option<u64>) -> Result<(), End> {
    let offset = offset.to_string();
    match hb {
        Some(hb) => send(sock, &["REPLCONF", "ACK", &offset, &hb.to_string()]).await,
        None => send(sock, &["REPLCONF", "ACK", &offset]).await,
    }
}

fn is_replconf(args: &[Arg], sub: &[u8]) -> bool {
    args.len() >= 2
        && args[0].eq_ignore_ascii_case(b"replconf")
        && args[1].eq_ignore_ascii_case(sub)
}

/// Apply the stream (and, first, a full sync's snapshot) until the link ends.
async fn receive(
    engine: &Arc<Engine>,
    generation: u64,
    sock: &mut Socket,
    mut buf: BytesMut,
    client: &mut ClientState,
    mut loading: Option<Option<SnapshotFile>>,
    stock_master: bool,
) -> Result<(), End> {
    let mut unit: Vec<u8> = Vec::new();
    // `buf` only grows at its end and loses whole commands at its front: the parser may keep
    // its place in an incomplete command (a large one arrives in many reads).
    let mut parser = RequestParser::default();
    let mut last_hb = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let timeout_secs: u64 = engine
        .state
        .lock()
        .config
        .get("repl-timeout")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut last_data = std::time::Instant::now();
    loop {
        let mut need_ack = false;
        if !buf.is_empty() {
            let raw = buf.clone().freeze();
            let cmds = split_commands_with(&mut parser, &mut buf)
                .map_err(|e| End::Retry(format!("protocol: {e}")))?;
            let mut st = engine.lock_state().await;
            if obsolete(&st, generation) {
                return Ok(());
            }
            let now = now_ms();
            let mut pos = 0usize;
            let mut snap_bytes: Vec<u8> = Vec::new();
            for (args, len) in cmds {
                let bytes = &raw[pos..pos + len];
                pos += len;
                if is_replconf(&args, b"hb") {
                    last_hb = args
                        .get(2)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(last_hb);
                    need_ack = true;
                    continue;
                }
                if is_replconf(&args, b"getack") && !stock_master {
                    need_ack = true;
                    continue;
                }
                // A stock Redis master counts its GETACKs (and PINGs) in its offset: they are
                // applied (doing nothing) and kept in our stream like any command, so our
                // offsets stay the master's.
                need_ack |= stock_master && is_replconf(&args, b"getack");
                if let Some(file) = &mut loading {
                    if is_replconf(&args, b"snapend") {
                        let db: i64 = args
                            .get(2)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(-1);
                        if let Some(f) = file {
                            f.commands(&snap_bytes)
                                .map_err(|e| End::Retry(format!("snapshot write: {e}")))?;
                        }
                        snap_bytes.clear();
                        let f = loading.take().flatten();
                        let (replid, s) = st.repl.pending_full.take().unwrap_or_default();
                        finish_full_sync(engine, &mut st, f, &replid, s, db)?;
                        client.db = db.max(0) as usize;
                        need_ack = true;
                        continue;
                    }
                    apply_one(&mut st, client, args, now);
                    snap_bytes.extend_from_slice(bytes);
                    continue;
                }
                apply_one(&mut st, client, args, now);
                unit.extend_from_slice(bytes);
                if !client.multi.active {
                    st.stream.append_unit(&unit);
                    st.stream.cur_db = Some(client.db);
                    unit.clear();
                    need_ack = true;
                }
            }
            if let Some(Some(f)) = &mut loading {
                f.commands(&snap_bytes)
                    .map_err(|e| End::Retry(format!("snapshot write: {e}")))?;
            }
            st.repl.link.last_io_ms = now;
        }
        if need_ack {
            let Some(offset) = durable_offset(engine, generation).await else {
                // Promoted or re-pointed: no acknowledgement (and so no lease) any more.
                return Ok(());
            };
            send_ack(sock, offset, (!stock_master).then_some(last_hb)).await?;
        }
        tokio::select! {
            r = sock.read_buf(&mut buf) => {
                match r {
                    Ok(0) | Err(_) => return Err(End::Retry("master closed the link".into())),
                    Ok(_) => last_data = std::time::Instant::now(),
                }
            }
            // The link is declared down exactly `repl-timeout` after the last byte (the master
            // sends a heartbeat every 100 ms): the operator sets it to the pair's detection
            // window and waits for this report before failing over a silent master, so a
            // once-a-second check here would add up to a second to every such failover.
            _ = tokio::time::sleep_until((last_data + Duration::from_secs(timeout_secs)).into()) => {
                return Err(End::Retry("timeout: no data from the master".into()));
            }
            _ = tick.tick() => {
                let Some(offset) = durable_offset(engine, generation).await else {
                    return Ok(());
                };
                send_ack(sock, offset, (!stock_master).then_some(last_hb)).await?;
            }
        }
    }
}
