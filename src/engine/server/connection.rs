//! One client connection: read, parse a whole pipeline, execute it under one lock acquisition,
//! write all replies with one syscall; pub/sub pushes; blocked commands; CLIENT KILL.
//! Does I/O: the client's socket.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::sync::futures::Notified;
use tokio::sync::mpsc;
use tracing::debug;

use crate::engine::client::{push_size, ClientHandle, ClientInfo, ClientState, ReplyMode};
use crate::engine::clock::now_ms;
use crate::engine::cmd::{self, Outcome};
use crate::engine::core::Engine;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::parse::{ParseLimits, Parsed, ProtocolError, RequestParser};
use crate::engine::protocol::reply::Reply;
use crate::engine::tls::Socket;

/// Why the connection ends.
enum Close {
    Peer,
    /// Idle for longer than the `timeout` setting.
    Idle,
    Killed,
    Protocol(ProtocolError),
    QueryBufferLimit,
    /// PSYNC: the connection becomes a replica sender.
    Replica(crate::engine::replication::Takeover),
}

pub async fn handle(engine: Arc<Engine>, mut stream: Socket, peer: SocketAddr) {
    let laddr = stream
        .tcp()
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<Reply>();
    let admitted = {
        let mut st = engine.lock_state().await;
        let id = st.new_client_id();
        st.stats.total_connections_received += 1;
        let needs_auth = !st.acl.new_connections_authenticated();
        if st.clients.len() >= st.config.settings.maxclients {
            st.stats.rejected_connections += 1;
            None
        } else {
            let mut c = ClientState::new(id, peer.to_string(), laddr, now_ms(), needs_auth);
            c.push = Some(crate::engine::client::PushSender::new(
                push_tx,
                c.handle.clone(),
            ));
            st.clients
                .insert(id, ClientInfo::from_state(&c, now_ms(), ""));
            Some(c)
        }
    };
    let Some(mut client) = admitted else {
        let _ = stream
            .write_flush(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    };
    debug!(id = client.id, peer = %peer, "client connected");
    let handle = client.handle.clone();
    let mut inbuf = BytesMut::with_capacity(CONN_BUF);
    // Keeps its place in an incomplete request between reads (`inbuf` only grows at its end
    // and loses whole requests at its front), so a large request is scanned once, not once per
    // read.
    let mut parser = RequestParser::default();
    let mut out = BytesMut::with_capacity(CONN_BUF);
    let mut pending: VecDeque<Vec<Arg>> = VecDeque::new();
    // The most of each buffer the last batch used (see `shrink_idle`).
    let (mut in_used, mut out_used) = (0usize, 0usize);
    let mut settings = ConnSettings::from_state(&*engine.lock_state().await, &client);
    // The kill signal: one waiter for the whole life of the connection (see `KillSignal`).
    // It is dropped with the loop's block, before a replica sender takes over the handle and
    // waits on it by itself.
    let close = {
        let mut kill = KillSignal::new(&handle);
        'conn: loop {
            // 1. Run what is already parsed (requests left over after a block or pause).
            if !pending.is_empty() {
                match run_batch(
                    &engine,
                    &mut client,
                    &mut pending,
                    &mut out,
                    &mut stream,
                    &mut inbuf,
                    &mut push_rx,
                    &mut settings,
                    &mut parser,
                    &mut kill,
                )
                .await
                {
                    Ok(()) => {}
                    Err(c) => break 'conn c,
                }
                if !out.is_empty() && stream.write_flush(&out).await.is_err() {
                    break 'conn Close::Peer;
                }
                out.clear();
                if client.close_after_reply || handle.is_killed() {
                    break 'conn Close::Killed;
                }
                if !pending.is_empty() {
                    continue;
                }
            }
            // 2. Parse everything received so far.
            let mut protocol_error = None;
            in_used = in_used.max(inbuf.len());
            loop {
                match parser.parse(&mut inbuf, settings.parse) {
                    Ok(Parsed::Request(args)) => {
                        if !args.is_empty() {
                            pending.push_back(args);
                        }
                    }
                    Ok(Parsed::Incomplete) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                if let Err(c) = run_batch(
                    &engine,
                    &mut client,
                    &mut pending,
                    &mut out,
                    &mut stream,
                    &mut inbuf,
                    &mut push_rx,
                    &mut settings,
                    &mut parser,
                    &mut kill,
                )
                .await
                {
                    break 'conn c;
                }
            }
            if let Some(e) = protocol_error {
                // Replies to the requests before the bad one go out first, then the error, then
                // the connection closes (as Redis does).
                Reply::error(format!("ERR {e}")).encode(client.proto, &mut out);
                let _ = stream.write_flush(&out).await;
                break 'conn Close::Protocol(e);
            }
            if !out.is_empty() {
                // Replies wait until every other connection with input ready has run its
                // requests (tokio runs a yielded task after its other ready tasks and a poll
                // of the sockets), then go out one after another: Redis's order too (it
                // writes in `beforeSleep`, after the event loop's reads). Replies sent one by
                // one as computed wake redis-benchmark (any client multiplexing connections)
                // once per reply instead of once per burst: with 50 connections at -P 16 the
                // engine made 3× redis-server's context switches per request and lost 6 % on
                // MSET; deferred, fewer than redis-server's (2026-12-06, docs/benchmarks.md).
                tokio::task::yield_now().await;
                out_used = out.len();
                if stream.write_flush(&out).await.is_err() {
                    break 'conn Close::Peer;
                }
                out.clear();
            }
            if client.close_after_reply || handle.is_killed() {
                break 'conn Close::Killed;
            }
            if !pending.is_empty() {
                continue;
            }
            if inbuf.len() > settings.query_buffer_limit {
                break 'conn Close::QueryBufferLimit;
            }
            // A connection gives back what one large request or reply made its buffers grow to
            // (Redis resizes query buffers in clientsCron for the same reason): one 1 MB SET
            // left ~2 MB allocated to the connection for its whole life, so a pool of
            // connections that each once sent a big value held that many times over. A buffer
            // the last batch needed most of is kept (a client streaming big values would
            // otherwise regrow it every batch); if the connection then stays quiet, the
            // `reclaim` wait below gives it back after RECLAIM_AFTER.
            shrink_idle(&mut inbuf, std::mem::take(&mut in_used));
            shrink_idle(&mut out, std::mem::take(&mut out_used));
            let holding = inbuf.capacity() > SHRINK_ABOVE || out.capacity() > SHRINK_ABOVE;
            let reclaim = async {
                if holding {
                    tokio::time::sleep(RECLAIM_AFTER).await
                } else {
                    std::future::pending::<()>().await
                }
            };
            let idle_timeout_secs = settings.idle_timeout_secs;
            // 3. Wait for input, a pub/sub message, a kill, or the idle timeout. Like Redis, only
            // normal clients time out: subscribers and replication links wait indefinitely.
            let idle_limit =
                (idle_timeout_secs > 0 && client.subscriptions() == 0 && !client.is_replication)
                    .then(|| Duration::from_secs(idle_timeout_secs));
            let idle = async {
                match idle_limit {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                biased;
                _ = kill.wait() => break 'conn Close::Killed,
                _ = idle => break 'conn Close::Idle,
                _ = reclaim => {
                    shrink_idle(&mut inbuf, 0);
                    shrink_idle(&mut out, 0);
                }
                Some(msg) = push_rx.recv(), if client.push_handed_out => {
                    // What is taken off the channel stays counted in the output buffer until it is
                    // written: a subscriber that does not read holds it here, in `out`.
                    let mut taken = push_size(&msg);
                    msg.encode(client.proto, &mut out);
                    while let Ok(m) = push_rx.try_recv() {
                        taken += push_size(&m);
                        m.encode(client.proto, &mut out);
                    }
                    out_used = out_used.max(out.len());
                    // A client disconnected for its output buffer limit never reads: the kill
                    // must not wait for the write.
                    let written = tokio::select! {
                        r = stream.write_flush(&out) => r.is_ok(),
                        _ = kill.wait() => break 'conn Close::Killed,
                    };
                    handle.output_written(taken);
                    if !written {
                        break 'conn Close::Peer;
                    }
                    out.clear();
                }
                r = stream.read_buf(&mut inbuf) => {
                    match r {
                        Ok(0) | Err(_) => break 'conn Close::Peer,
                        Ok(_) => {}
                    }
                }
            }
        }
    };
    match &close {
        Close::Protocol(e) => debug!(id = client.id, error = %e, "closing client: protocol error"),
        Close::QueryBufferLimit => {
            tracing::warn!(
                id = client.id,
                "closing client that reached max query buffer length"
            )
        }
        Close::Idle => debug!(id = client.id, "closing idle client"),
        Close::Killed | Close::Peer => debug!(id = client.id, "client disconnected"),
        Close::Replica(_) => {}
    }
    if let Close::Replica(takeover) = close {
        // Replies computed before PSYNC go out first; then the socket streams replication.
        if out.is_empty() || stream.write_flush(&out).await.is_ok() {
            client.is_replication = true;
            {
                let mut st = engine.state.lock();
                let info = ClientInfo::from_state(&client, now_ms(), "psync");
                st.clients.insert(client.id, info);
            }
            crate::engine::server::master::serve_replica(
                engine.clone(),
                stream,
                client.id,
                peer,
                takeover,
                inbuf,
                handle.clone(),
            )
            .await;
        }
    }
    // A client leaving while a busy script runs waits for it without holding a thread.
    let mut st = engine.lock_state().await;
    cleanup(&mut st, &mut client);
}

/// What a connection's input and output buffers start with and shrink back to.
const CONN_BUF: usize = 16 * 1024;

/// A buffer larger than this is given back when idle (see `shrink_idle`).
const SHRINK_ABOVE: usize = 4 * CONN_BUF;
/// How long a quiet connection keeps a large buffer its last batch needed.
const RECLAIM_AFTER: Duration = Duration::from_secs(2);

/// Replace an empty buffer that grew past [`SHRINK_ABOVE`] with a new one, unless the last
/// batch used (`used` bytes) more than half of it: a pipelining client whose batches fit keeps
/// its buffer, with no allocation per batch.
fn shrink_idle(buf: &mut BytesMut, used: usize) {
    if buf.is_empty() && buf.capacity() > SHRINK_ABOVE && used <= buf.capacity() / 2 {
        *buf = BytesMut::with_capacity(CONN_BUF);
    }
}

/// Waits for the client's kill (`ClientHandle::kill`: the flag, then `notify_one`).
///
/// One `Notified` serves the whole connection: creating, registering and unlinking one at every
/// wait was ~270 instructions per round trip, and even polling a registered one takes the
/// Notify's lock (~80 per poll, two polls per round trip). So it is polled once, which
/// registers the connection task's waker with the Notify, and after that only the `killed`
/// flag is read: `kill()` sets the flag before it notifies, so when the notification wakes the
/// task the flag is already visible. It is polled again only when the task's waker changed
/// (it does not for a spawned task, but nothing here depends on that). Every wait of the
/// connection (input, a blocked command, the reply gate, a pause, a busy script) goes through
/// this one, so it is the only waiter `notify_one` can wake; a second `Notified` on the same
/// handle would miss the kill.
struct KillSignal<'a> {
    handle: &'a ClientHandle,
    notified: Pin<Box<Notified<'a>>>,
    /// The waker the `Notified` was last polled with (None: not polled yet).
    waker: Option<Waker>,
}

impl<'a> KillSignal<'a> {
    fn new(handle: &'a ClientHandle) -> KillSignal<'a> {
        KillSignal {
            handle,
            notified: Box::pin(handle.kill.notified()),
            waker: None,
        }
    }

    /// Resolves once the client is killed.
    fn wait(&mut self) -> impl Future<Output = ()> + use<'_, 'a> {
        std::future::poll_fn(move |cx| {
            if self.handle.is_killed() {
                return Poll::Ready(());
            }
            if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            if self.notified.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

/// The settings a connection needs outside the lock, copied after every batch (so a CONFIG
/// SET applies from the next read on) instead of taking the lock again to read them.
struct ConnSettings {
    parse: ParseLimits,
    query_buffer_limit: usize,
    idle_timeout_secs: u64,
}

impl ConnSettings {
    fn from_state(st: &crate::engine::state::EngineState, client: &ClientState) -> ConnSettings {
        ConnSettings {
            parse: ParseLimits {
                max_bulk_len: st.config.settings.proto_max_bulk_len,
                authenticated: client.is_authenticated(),
            },
            query_buffer_limit: st.config.settings.query_buffer_limit,
            idle_timeout_secs: st.config.settings.timeout_secs,
        }
    }
}

/// Execute pending requests until they are all done or one blocks or is paused. Replies are
/// appended to `out`. While blocked, replies computed so far are flushed first.
// The connection's parts are passed separately (not as one struct) so the borrow checker sees
// the socket, the buffers and the client as disjoint while the batch holds the state lock.
#[allow(clippy::too_many_arguments)]
async fn run_batch(
    engine: &Arc<Engine>,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Arg>>,
    out: &mut BytesMut,
    stream: &mut Socket,
    inbuf: &mut BytesMut,
    push_rx: &mut mpsc::UnboundedReceiver<Reply>,
    settings: &mut ConnSettings,
    parser: &mut RequestParser,
    kill: &mut KillSignal<'_>,
) -> Result<(), Close> {
    // A batch that runs a script may hold the state lock for long (until SCRIPT KILL, when it
    // runs past busy-reply-threshold): it runs off the runtime's worker (`block_in_place`
    // hands this worker's other connections to another thread), so those connections can
    // answer BUSY and SCRIPT KILL meanwhile. Only on the multi-threaded runtime (the engine's);
    // an in-process test on a current-thread runtime runs it inline.
    // MIGRATE too: it holds the lock while it talks to its target (see cmd::migrate).
    let off_worker = pending
        .iter()
        .any(|a| runs_script(&a[0]) || a[0].eq_ignore_ascii_case(b"migrate"))
        && tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
    let locked = if off_worker {
        tokio::task::block_in_place(|| {
            run_locked(engine, client, pending, out, push_rx, settings, parser)
        })
    } else {
        run_locked(engine, client, pending, out, push_rx, settings, parser)
    }?;
    let Locked {
        blocked,
        paused_until,
        wrote_up_to,
        write_replies,
        busy_wait,
    } = locked;
    if busy_wait {
        // A busy script holds the state: the replies given without it (BUSY, SCRIPT KILL...)
        // go out now, and what must wait for the script (MULTI, AUTH, SHUTDOWN NOSAVE...) runs
        // when it ends.
        if !out.is_empty() {
            stream.write_flush(out).await.map_err(|_| Close::Peer)?;
            out.clear();
        }
        if !pending.is_empty() {
            let done = engine.script.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if engine.script.busy() {
                tokio::select! {
                    _ = done => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = kill.wait() => return Err(Close::Killed),
                }
            }
        }
        return Ok(());
    }
    if let Some(offset) = wrote_up_to {
        if wait_released(engine, client, offset, kill).await? == Released::Never {
            refuse_write_replies(engine, client, out, &write_replies);
        }
    }
    if let Some(until) = paused_until {
        if !out.is_empty() {
            stream.write_flush(out).await.map_err(|_| Close::Peer)?;
            out.clear();
        }
        let wait = Duration::from_millis((until - now_ms()).clamp(1, 100) as u64);
        tokio::select! {
            _ = engine.unpaused.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = kill.wait() => return Err(Close::Killed),
        }
        return Ok(());
    }
    if let Some((mut rx, deadline_ms, timeout_reply)) = blocked {
        if !out.is_empty() {
            stream.write_flush(out).await.map_err(|_| Close::Peer)?;
            out.clear();
        }
        let sleep = async {
            if deadline_ms == 0 {
                std::future::pending::<()>().await
            } else {
                let ms = (deadline_ms - now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(ms)).await
            }
        };
        tokio::pin!(sleep);
        let reply = loop {
            tokio::select! {
                r = &mut rx => break r.ok(),
                _ = &mut sleep => break None,
                // A RESP3 client may be subscribed while it waits: pushes still flow.
                Some(m) = push_rx.recv() => {
                    client.handle.output_written(push_size(&m));
                    let mut pushed = BytesMut::new();
                    m.encode(client.proto, &mut pushed);
                    stream.write_flush(&pushed).await.map_err(|_| {
                        unblock(engine, client.id);
                        Close::Peer
                    })?;
                }
                _ = kill.wait() => {
                    unblock(engine, client.id);
                    return Err(Close::Killed);
                }
                // Keep reading so a disconnect is noticed (Redis unblocks clients that leave);
                // what arrives waits in the buffer until the blocked command is answered.
                r = stream.read_buf(inbuf) => {
                    if matches!(r, Ok(0) | Err(_)) {
                        unblock(engine, client.id);
                        return Err(Close::Peer);
                    }
                    // What waits must stay within the query buffer limit too.
                    let limit = settings.query_buffer_limit;
                    if inbuf.len() > limit {
                        unblock(engine, client.id);
                        return Err(Close::QueryBufferLimit);
                    }
                }
            }
        };
        // Forget the wait (a no-op when a writer already served us) and, on a timeout, take
        // a reply a writer may have sent between the deadline and the lock.
        unblock(engine, client.id);
        let reply = match reply {
            Some(r) => r,
            None => rx.try_recv().unwrap_or(timeout_reply),
        };
        write_reply(client, &reply, out);
    }
    Ok(())
}

/// What a batch's run under the lock left to do outside it.
#[derive(Default)]
struct Locked {
    blocked: Option<(tokio::sync::oneshot::Receiver<Reply>, i64, Reply)>,
    paused_until: Option<i64>,
    /// The stream offset this batch wrote up to: its replies wait for the reply gate.
    wrote_up_to: Option<u64>,
    /// Where in `out` the replies of the commands that wrote are: if the gate can never release
    /// them (the log cannot be written), they become MISCONF errors.
    write_replies: Vec<std::ops::Range<usize>>,
    /// A busy script held the state: the batch was answered without it (see
    /// `serve_while_busy`); what is left in `pending` waits for the script to end.
    busy_wait: bool,
}

/// Whether a command name is one that runs Lua (EVAL, EVALSHA, FCALL and their _RO forms).
fn runs_script(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'e' | b'E' | b'f' | b'F'))
        && [
            &b"eval"[..],
            b"evalsha",
            b"eval_ro",
            b"evalsha_ro",
            b"fcall",
            b"fcall_ro",
        ]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The state lock, or None when a script that runs past busy-reply-threshold holds it. The
/// uncontended case is one `try_lock`; otherwise the wait is in slices of `LOCK_POLL`, looking
/// at the script between them.
fn lock_or_busy(
    engine: &Engine,
) -> Option<parking_lot::MutexGuard<'_, crate::engine::state::EngineState>> {
    if let Some(g) = engine.state.try_lock() {
        return Some(g);
    }
    loop {
        if engine.script.busy() {
            return None;
        }
        if let Some(g) = engine.state.try_lock_for(Duration::from_millis(5)) {
            return Some(g);
        }
    }
}

/// Answer a batch while a busy script holds the state lock, as Redis answers from inside the
/// script's hook: unknown commands and arity errors as usual, SCRIPT KILL / FUNCTION KILL and
/// FUNCTION STATS through the script's watch, `-BUSY` for every command not flagged
/// `allow_busy`. The first allowed command that needs the state (MULTI, AUTH, SHUTDOWN
/// NOSAVE ...) and everything after it stay in `pending` until the script ends; SHUTDOWN
/// NOSAVE first asks the script to stop, whatever it did.
fn serve_while_busy(
    engine: &Engine,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Arg>>,
    out: &mut BytesMut,
) {
    use crate::engine::cmd::flags;
    let watch = &engine.script;
    while let Some(args) = pending.pop_front() {
        let reply = match cmd::resolve(&args) {
            Err(e) => e,
            Ok((spec, parent)) => {
                let top = parent.unwrap_or(spec);
                let name = (top.name, parent.map(|_| spec.name));
                if !client.is_authenticated() && !top.has(flags::NO_AUTH) {
                    Reply::err_static("NOAUTH Authentication required.")
                } else if name == ("multi", None) {
                    // MULTI only changes the client: it runs at once, as in Redis (the commands
                    // that follow get BUSY, which dooms the transaction to EXECABORT).
                    if client.multi.active {
                        Reply::err_static("ERR MULTI calls can not be nested")
                    } else {
                        client.multi.active = true;
                        Reply::Ok
                    }
                } else if name == ("exec", None) && client.multi.active && client.watched.is_empty()
                {
                    // EXEC is refused and ends the transaction (Redis's `execCommandAbort`).
                    // With WATCHed keys it waits instead: forgetting them needs the state.
                    client.multi = Default::default();
                    Reply::error(format!(
                        "EXECABORT Transaction discarded because of: {}",
                        watch.busy_text()
                    ))
                } else if name == ("exec", None) && client.multi.active {
                    pending.push_front(args);
                    return;
                } else if !top.has(flags::ALLOW_BUSY) && !spec.has(flags::ALLOW_BUSY) {
                    if client.multi.active {
                        client.multi.aborted = true;
                    }
                    watch.busy_error()
                } else {
                    match name {
                        ("script", Some("kill")) => watch.request_kill(true),
                        ("function", Some("kill")) => watch.request_kill(false),
                        ("function", Some("stats")) => watch.stats_reply(now_ms()),
                        ("shutdown", _)
                            if !args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave")) =>
                        {
                            watch.busy_error()
                        }
                        ("shutdown", _) => {
                            watch.request_shutdown_kill();
                            pending.push_front(args);
                            return;
                        }
                        _ => {
                            pending.push_front(args);
                            return;
                        }
                    }
                }
            }
        };
        write_reply(client, &reply, out);
    }
}

/// Run `pending` under the state lock (one acquisition for the whole batch) until it is done
/// or a command blocks or is paused.
fn run_locked(
    engine: &Arc<Engine>,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Arg>>,
    out: &mut BytesMut,
    push_rx: &mut mpsc::UnboundedReceiver<Reply>,
    settings: &mut ConnSettings,
    parser: &mut RequestParser,
) -> Result<Locked, Close> {
    let mut blocked = None;
    let mut paused_until = None;
    let mut wrote_up_to = None;
    let mut write_replies: Vec<std::ops::Range<usize>> = Vec::new();
    {
        let Some(mut st) = lock_or_busy(engine) else {
            serve_while_busy(engine, client, pending, out);
            return Ok(Locked {
                busy_wait: true,
                ..Locked::default()
            });
        };
        let offset_before = st.stream.offset;
        let now = now_ms();
        // The name of the last command (for CLIENT LIST), copied into a stack buffer (a
        // reference-counted clone costs two atomic operations per command) and lower-cased
        // once per batch in ClientInfo::refresh rather than once per command. CLIENT LIST shows
        // at most 64 bytes of it.
        let mut last_cmd = [0u8; 64];
        let mut last_cmd_len = 0;
        while let Some(mut args) = pending.pop_front() {
            last_cmd_len = args[0].len().min(last_cmd.len());
            last_cmd[..last_cmd_len].copy_from_slice(&args[0][..last_cmd_len]);
            let offset_at_command = st.stream.offset;
            let outcome = cmd::process_in(&mut st, client, &mut args, now);
            parser.recycle(args);
            // Messages the command itself published to this client (PUBLISH to a channel it
            // is subscribed to in RESP3) go out before its reply, as in Redis.
            if client.push_handed_out {
                while let Ok(m) = push_rx.try_recv() {
                    client.handle.output_written(push_size(&m));
                    m.encode(client.proto, out);
                }
            }
            match outcome {
                Outcome::Reply(r) => {
                    let at = out.len();
                    write_reply(client, &r, out);
                    if st.stream.offset != offset_at_command && out.len() > at {
                        write_replies.push(at..out.len());
                    }
                    // Invalidations the command caused for this very client follow its reply.
                    // (Looked at here first: the call was ~25 instructions a request.)
                    if !st.tracking.deferred.is_empty() {
                        for m in crate::engine::tracking::take_deferred(&mut st, client.id, now) {
                            m.encode(client.proto, out);
                        }
                    }
                }
                Outcome::Blocked {
                    rx,
                    deadline_ms,
                    timeout_reply,
                } => {
                    blocked = Some((rx, deadline_ms, timeout_reply));
                    break;
                }
                Outcome::Paused { args, until_ms } => {
                    pending.push_front(args);
                    paused_until = Some(until_ms);
                    break;
                }
            }
            if client.close_after_reply {
                break;
            }
        }
        if st.stream.offset != offset_before && !client.is_replication {
            wrote_up_to = Some(st.stream.offset);
        }
        // CLIENT LIST shows blocked clients with the `b` flag, as Redis does.
        // A client held by CLIENT PAUSE is blocked too (Redis's BLOCKED_POSTPONE).
        let is_paused = paused_until.is_some();
        let is_blocked = blocked.is_some() || is_paused;
        match st.clients.get_mut(&client.id) {
            Some(info) => {
                info.refresh(client, now, &last_cmd[..last_cmd_len], is_blocked);
                info.paused = is_paused;
            }
            None => {
                let mut info = ClientInfo::from_state(client, now, "");
                info.refresh(client, now, &last_cmd[..last_cmd_len], is_blocked);
                info.paused = is_paused;
                st.clients.insert(client.id, info);
            }
        }
        *settings = ConnSettings::from_state(&st, client);
        if st.unpause_requested {
            st.unpause_requested = false;
            engine.unpaused.notify_waiters();
        }
        // PSYNC: this connection becomes a replica sender (replies so far go out first).
        if !st.repl.takeovers.is_empty() {
            if let Some(t) = st.repl.takeovers.remove(&client.id) {
                return Err(Close::Replica(t));
            }
        }
        if st.shutdown_requested {
            engine.shutdown.notify_waiters();
            client.close_after_reply = true;
        }
    }
    Ok(Locked {
        blocked,
        paused_until,
        wrote_up_to,
        write_replies,
        busy_wait: false,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Released {
    Yes,
    /// The write log cannot be written past an earlier offset (a full disk).
    Never,
}

/// Hold the replies of a batch that wrote up to `offset` until the reply gate releases it
/// (fsync under `appendfsync always`, the replica's acknowledgement under semi-sync).
async fn wait_released(
    engine: &Arc<Engine>,
    client: &ClientState,
    offset: u64,
    kill: &mut KillSignal<'_>,
) -> Result<Released, Close> {
    if engine.gate.released() >= offset {
        return Ok(Released::Yes);
    }
    engine.state.lock().repl.gate_waiters.insert(client.id);
    let started = std::time::Instant::now();
    let r = tokio::select! {
        r = engine.gate.wait(offset) => Ok(match r {
            Ok(()) => Released::Yes,
            Err(_) => Released::Never,
        }),
        _ = kill.wait() => Err(Close::Killed),
    };
    engine.state.lock().repl.gate_waiters.remove(&client.id);
    engine
        .gate
        .waits
        .record_us(started.elapsed().as_micros() as u64);
    // A client disconnected while waiting (demotion, lapsed lease) never gets its reply, even if
    // the gate opened at the same moment: its write may be about to be discarded.
    if client.handle.is_killed() {
        return Err(Close::Killed);
    }
    r
}

/// The log could not be written, so the writes of this batch are not acknowledged: each reply
/// of a command that wrote becomes the MISCONF error (the change is in memory and stays queued
/// for the log, but the client must not take it as durable). Replies to reads stand.
fn refuse_write_replies(
    engine: &Arc<Engine>,
    client: &ClientState,
    out: &mut BytesMut,
    write_replies: &[std::ops::Range<usize>],
) {
    let err = {
        let st = engine.state.lock();
        cmd::disk_error_reply(&st)
    }
    // The writer may have recovered meanwhile; the write was still not acknowledged in time.
    .unwrap_or_else(|| {
        Reply::err_static("MISCONF Errors writing to the AOF file: the write log failed")
    });
    let mut rebuilt = BytesMut::with_capacity(out.len());
    let mut from = 0;
    for r in write_replies {
        rebuilt.extend_from_slice(&out[from..r.start]);
        err.encode(client.proto, &mut rebuilt);
        from = r.end;
    }
    rebuilt.extend_from_slice(&out[from..]);
    *out = rebuilt;
}

fn unblock(engine: &Arc<Engine>, id: u64) {
    let mut st = engine.state.lock();
    st.blocking.unblock(id);
    if let Some(info) = st.clients.get_mut(&id) {
        info.blocked = false;
        if let Some(rest) = info.flags.strip_suffix('b') {
            info.flags = if rest.is_empty() {
                "N".to_string()
            } else {
                rest.to_string()
            };
        }
    }
}

fn write_reply(client: &mut ClientState, reply: &Reply, out: &mut BytesMut) {
    if std::mem::take(&mut client.reply_is_push) {
        // Pub/sub confirmations go out in every mode; SKIP is still used up by the command.
        reply.encode(client.proto, out);
        match client.reply_mode {
            ReplyMode::Skip => client.reply_mode = ReplyMode::On,
            ReplyMode::SkipNext => client.reply_mode = ReplyMode::Skip,
            ReplyMode::On | ReplyMode::Off => {}
        }
        return;
    }
    match client.reply_mode {
        ReplyMode::On => reply.encode(client.proto, out),
        ReplyMode::Off => {}
        ReplyMode::Skip => client.reply_mode = ReplyMode::On,
        ReplyMode::SkipNext => client.reply_mode = ReplyMode::Skip,
    }
}

/// Forget everything the shared state knows about a client that left.
fn cleanup(st: &mut crate::engine::state::EngineState, client: &mut ClientState) {
    st.clients.remove(&client.id);
    st.tracking.disable(client.id);
    st.repl.pending_ports.remove(&client.id);
    st.monitors.remove(&client.id);
    st.blocking.unblock(client.id);
    let watched = std::mem::take(&mut client.watched);
    st.watches.unwatch_all(client.id, &watched);
    for ch in client.channels.drain() {
        if let Some(subs) = st.pubsub.channels.get_mut(&ch) {
            subs.remove(&client.id);
            if subs.is_empty() {
                st.pubsub.channels.remove(&ch);
            }
        }
    }
    for p in client.patterns.drain() {
        if let Some(subs) = st.pubsub.patterns.get_mut(&p) {
            subs.remove(&client.id);
            if subs.is_empty() {
                st.pubsub.patterns.remove(&p);
            }
        }
    }
    for ch in client.shard_channels.drain() {
        if let Some(subs) = st.pubsub.shard_channels.get_mut(&ch) {
            subs.remove(&client.id);
            if subs.is_empty() {
                st.pubsub.shard_channels.remove(&ch);
            }
        }
    }
}
