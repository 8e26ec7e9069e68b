//! redispair-engine: the Redis-compatible storage engine binary. Does I/O: parses the command
//! line, installs logging and the counting allocator, serves until SHUTDOWN or a signal.
//! `redispair-engine check-log DIR [--truncate]` checks (and repairs) a data directory instead;
//! `redispair-engine wait-handover` is the pod's preStop hook (see [`wait_handover`]);
//! `redispair-engine rdb-export DIR OUT` writes a stopped engine's dataset as a Redis RDB file;
//! `redispair-engine restore`, `backups` and `archive-export` read an archive (docs/backup.md).

use redispair::engine::{config, memory::CountingAllocator, server};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("check-log") {
        return check_log(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some("rdb-export") {
        return rdb_export(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some("wait-handover") {
        return wait_handover(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some("restore") {
        return restore(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some("archive-export") {
        return archive_export(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some("backups") {
        return backups(&argv[2..]);
    }
    let matches = config::command_line().get_matches();
    let cfg = config::from_matches(&matches).map_err(|e| anyhow::anyhow!(e))?;
    let level = match cfg.get("loglevel").unwrap_or("notice") {
        "debug" => "debug",
        "verbose" => "info",
        "notice" => "info",
        "warning" => "warn",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_target(false)
        .init();
    let threads: usize = cfg
        .get("worker-threads")
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| default_worker_threads(std::thread::available_parallelism().ok()));
    // The log writer is woken once per event-loop turn (when a network thread runs out of
    // ready connections), not once per write: see persistence::writer.
    redispair::engine::persistence::writer::defer_wakeups();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .on_thread_park(redispair::engine::persistence::writer::wake_pending_writers)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Installed before start-up, so a SIGTERM during recovery (which may replay a long log)
        // still ends in a clean shutdown rather than the default kill.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let handle = server::start(cfg).await?;
        let engine = handle.engine.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("received shutdown signal");
            engine.request_shutdown();
        });
        handle.task.await?;
        anyhow::Ok(())
    })
}

/// The options `restore` and `archive-export` share: where the archive is and what to take
/// from it.
struct ArchiveSource {
    from: String,
    credentials_dir: Option<std::path::PathBuf>,
    backup: Option<String>,
    target: redispair::engine::archive::layout::Target,
}

/// Parse `--from URL [--credentials-dir DIR] [--backup ID] [--target-time T | --target-offset N]`
/// and the options `extra` accepts (flag, value: None for a bare flag); anything else not
/// starting with `--` is a positional argument.
fn parse_archive_source(
    args: &[String],
    usage: &str,
    extra: &mut dyn FnMut(&str, Option<&str>) -> Option<bool>,
    positional: &mut Vec<String>,
) -> anyhow::Result<ArchiveSource> {
    use redispair::engine::archive::layout::Target;
    let (mut from, mut credentials_dir, mut backup, mut target) =
        (None, None, None, Target::Latest);
    let mut it = args.iter().peekable();
    while let Some(flag) = it.next() {
        if !flag.starts_with("--") {
            positional.push(flag.clone());
            continue;
        }
        // A bare flag of the caller's (`--once`)?
        if extra(flag, None) == Some(true) {
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{usage}"))?;
        match flag.as_str() {
            "--from" => from = Some(value.clone()),
            "--credentials-dir" => credentials_dir = Some(value.into()),
            "--backup" => backup = Some(value.clone()),
            "--target-offset" | "--target-time" if target != Target::Latest => {
                anyhow::bail!("give one target\n{usage}")
            }
            "--target-offset" => {
                target = Target::Offset(
                    value
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--target-offset {value}: not an offset"))?,
                );
            }
            "--target-time" => {
                let t: jiff::Timestamp = value.parse().map_err(|e| {
                    anyhow::anyhow!("--target-time {value}: not an RFC 3339 time ({e})")
                })?;
                target = Target::Time(t.as_millisecond());
            }
            other => {
                if extra(other, Some(value)) != Some(true) {
                    anyhow::bail!("unknown option {other}\n{usage}")
                }
            }
        }
    }
    let Some(from) = from else {
        anyhow::bail!("{usage}");
    };
    Ok(ArchiveSource {
        from,
        credentials_dir,
        backup,
        target,
    })
}

/// Restore `src` into `dir` (see `restore::restore`).
fn restore_into(
    src: &ArchiveSource,
    dir: &std::path::Path,
) -> anyhow::Result<redispair::engine::archive::restore::RestoreReport> {
    use redispair::engine::archive::{restore, Archive};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        let archive = Archive::open_with(&src.from, src.credentials_dir.as_deref())?;
        restore::restore(&archive, src.backup.as_deref(), src.target, dir).await
    })?)
}

/// `restore --from URL --dir DIR [--credentials-dir DIR] [--once [--marker NAME]] [--rollback]
/// [--backup ID] [--target-time RFC3339 | --target-offset N]`: build a data directory from an
/// archive (docs/backup.md), printing a JSON report. `--rollback`: the directory goes on
/// archiving to the same archive, superseding what followed the target
/// (`restore::continue_archive_from`); without it, a restored copy keeps off its source.
fn restore(args: &[String]) -> anyhow::Result<()> {
    let usage = "usage: redispair-engine restore --from URL --dir DIR [--credentials-dir DIR] [--once [--marker NAME]] [--rollback] [--backup ID] [--target-time RFC3339 | --target-offset N]";
    let (mut once, mut dir, mut marker_name) = (false, None::<String>, None::<String>);
    let mut rollback = false;
    let mut positional = Vec::new();
    let src = parse_archive_source(
        args,
        usage,
        &mut |flag, value| match (flag, value) {
            ("--once", None) => {
                once = true;
                Some(true)
            }
            ("--rollback", None) => {
                rollback = true;
                Some(true)
            }
            ("--dir", Some(v)) => {
                dir = Some(v.to_string());
                Some(true)
            }
            ("--marker", Some(v)) => {
                marker_name = Some(v.to_string());
                Some(true)
            }
            _ => None,
        },
        &mut positional,
    )?;
    let (Some(dir), true) = (dir, positional.is_empty()) else {
        anyhow::bail!("{usage}");
    };
    // `--once` (an init container's restore, run again whenever the pod restarts): a directory
    // this command completed is left alone; the leftovers of one it did not complete (the
    // marker is written last) are removed and the restore starts over. Nothing else writes
    // the directory before the engine starts, and the engine starts only after it succeeded.
    // `--marker` names the marker: a rollback (one marker per request) restores over a
    // directory that a bootstrap's restore, or an earlier rollback, completed.
    let marker_name = marker_name.unwrap_or_else(|| RESTORED_MARKER.to_string());
    if marker_name.is_empty()
        || !marker_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        || marker_name.starts_with('.')
    {
        anyhow::bail!(
            "--marker {marker_name:?}: a file name of [A-Za-z0-9._-], not starting with a dot"
        );
    }
    let marker = std::path::Path::new(&dir).join(&marker_name);
    if once {
        if let Ok(done) = std::fs::read_to_string(&marker) {
            eprintln!("{dir} was restored already ({RESTORED_MARKER}): nothing to do");
            println!("{}", done.trim_end());
            return Ok(());
        }
        let d = std::path::Path::new(&dir);
        for (_, path) in redispair::engine::persistence::list_segments(d)
            .into_iter()
            .chain(redispair::engine::persistence::list_snapshots(d))
        {
            std::fs::remove_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        // The replication identity of the data it replaces: the restored data is another
        // history (the engine starts it with a new replication id), and a rollback's restored
        // master is elected above every term anyway.
        match std::fs::remove_file(d.join("node.state")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("{}: {e}", d.join("node.state").display()),
        }
    }
    let report = restore_into(&src, std::path::Path::new(&dir))?;
    if rollback {
        // Before the marker (written last): an interrupted run starts over and writes it again.
        redispair::engine::archive::restore::continue_archive_from(
            std::path::Path::new(&dir),
            report.offset,
        )?;
    }
    let json = serde_json::to_string(&report)?;
    if once {
        redispair::engine::persistence::write_atomic(&marker, format!("{json}\n").as_bytes())?;
    }
    println!("{json}");
    Ok(())
}

/// `archive-export --from URL OUT.rdb [--credentials-dir DIR] [--backup ID]
/// [--target-time RFC3339 | --target-offset N] [--databases N]`: a backup (up to a point in
/// time or offset, like `restore`) as a Redis RDB file, to leave with the data or load it into
/// any Redis. It restores into a scratch directory beside OUT (removed afterwards, whatever
/// happens), then writes the dataset as `rdb-export` does. Prints the restore's JSON report,
/// then the RDB summary line.
fn archive_export(args: &[String]) -> anyhow::Result<()> {
    let usage = "usage: redispair-engine archive-export --from URL OUT.rdb [--credentials-dir DIR] [--backup ID] [--target-time RFC3339 | --target-offset N] [--databases N]";
    let mut databases: Option<String> = None;
    let mut positional = Vec::new();
    let src = parse_archive_source(
        args,
        usage,
        &mut |flag, value| match (flag, value) {
            ("--databases", Some(v)) => {
                databases = Some(v.to_string());
                Some(true)
            }
            _ => None,
        },
        &mut positional,
    )?;
    let [out] = positional.as_slice() else {
        anyhow::bail!("{usage}");
    };
    let out = std::path::Path::new(out);
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Beside OUT, not in /tmp: a restore is as large as the dataset's snapshot plus its log,
    // and whoever chose OUT's place chose a filesystem with room for it.
    let scratch = parent.join(format!(
        ".{}.restore-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("export"),
        std::process::id()
    ));
    if scratch.exists() {
        anyhow::bail!("{}: exists; remove it", scratch.display());
    }
    let result = (|| {
        let report = restore_into(&src, &scratch)?;
        println!("{}", serde_json::to_string(&report)?);
        let mut export_args = vec![scratch.display().to_string(), out.display().to_string()];
        if let Some(n) = &databases {
            export_args.extend(["--databases".to_string(), n.clone()]);
        }
        rdb_export(&export_args)
    })();
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        eprintln!("{}: could not remove: {e}", scratch.display());
    }
    result
}

/// Written into the data directory by `restore --once` when the restore completed.
const RESTORED_MARKER: &str = "redispair-restored.json";

/// `backups --from URL [--credentials-dir DIR]`: the complete base backups in an archive, one
/// JSON manifest a line.
fn backups(args: &[String]) -> anyhow::Result<()> {
    use redispair::engine::archive::{restore, Archive};
    let usage = "usage: redispair-engine backups --from URL [--credentials-dir DIR]";
    let (from, credentials_dir) = match args {
        [flag, url] if flag == "--from" => (url.clone(), None),
        [flag, url, cflag, dir] if flag == "--from" && cflag == "--credentials-dir" => {
            (url.clone(), Some(std::path::PathBuf::from(dir)))
        }
        _ => anyhow::bail!("{usage}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let list = rt.block_on(async {
        restore::list(&Archive::open_with(&from, credentials_dir.as_deref())?).await
    })?;
    for m in list {
        println!("{}", serde_json::to_string(&m)?);
    }
    Ok(())
}

/// `check-log DIR [--truncate]`: exit status 0 when the directory is usable (after repair).
fn check_log(args: &[String]) -> anyhow::Result<()> {
    let truncate = args.iter().any(|a| a == "--truncate");
    let Some(dir) = args.iter().find(|a| !a.starts_with("--")) else {
        anyhow::bail!("usage: redispair-engine check-log DIR [--truncate]");
    };
    let (report, ok) =
        redispair::engine::persistence::check::check_log(std::path::Path::new(dir), truncate);
    print!("{report}");
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// `rdb-export DIR OUT [--databases N]`: recover the dataset of the data directory DIR (as a
/// start would: newest snapshot, then the log) and write it to OUT as an RDB file (version 10,
/// which redis-server 7.0 and later load). The directory must not be in use: its lock is taken
/// first, so a running engine's directory is refused rather than read mid-write.
fn rdb_export(args: &[String]) -> anyhow::Result<()> {
    use redispair::engine::persistence;
    let usage = "usage: redispair-engine rdb-export DIR OUT [--databases N]";
    let mut positional = Vec::new();
    let mut databases: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--databases" {
            databases = Some(it.next().ok_or_else(|| anyhow::anyhow!(usage))?.clone());
        } else {
            positional.push(a.clone());
        }
    }
    let [dir, out] = positional.as_slice() else {
        anyhow::bail!(usage);
    };
    let dir = std::path::Path::new(dir);
    if !dir.is_dir() {
        anyhow::bail!("{}: not a directory", dir.display());
    }
    let Some(_lock) = persistence::try_lock_dir(dir)? else {
        anyhow::bail!(
            "{}: an engine is running on this directory; stop it, or ask it for SAVE with persistence off",
            dir.display()
        );
    };
    let mut cfg = config::Config::default();
    if let Some(n) = databases {
        cfg.set_startup("databases", &n)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let now = redispair::engine::clock::now_ms();
    let mut state = redispair::engine::state::EngineState::new(cfg, now);
    let rec = redispair::engine::state::replay::recover(&mut state, dir, now)?;
    let bytes = redispair::engine::state::dump::save_file(&state, std::path::Path::new(out), now)?;
    let keys: usize = state.dbs.iter().map(|d| d.len()).sum();
    println!(
        "{out}: {keys} keys, {} function libraries, {bytes} bytes (data directory at offset {})",
        state.scripting.libraries.len(),
        rec.offset
    );
    Ok(())
}

/// Environment variable holding the admin password, when no `--password-file` is given (pods
/// made by operators before passwords moved into files set it from the admin Secret).
const ENV_ADMIN_PASSWORD: &str = "REDISPAIR_ADMIN_PASSWORD";
/// A master with no replica connected for this long has nobody to hand over to (the operator
/// fails it over instead, or there is no pair left): stop waiting.
const NO_REPLICA_GRACE: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(200);

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What one look at the local engine says about the hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandoverView {
    /// Not (or no longer) master: nothing to wait for.
    NotMaster,
    /// Master, with this many replicas connected.
    Master { replicas: u32 },
}

/// Read `role` and `connected_slaves` from the text of INFO replication.
fn handover_view(info: &str) -> Option<HandoverView> {
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.trim_end().strip_prefix(k)?.strip_prefix(':'))
    };
    match field("role")? {
        "master" => Some(HandoverView::Master {
            replicas: field("connected_slaves")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }),
        _ => Some(HandoverView::NotMaster),
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// INFO replication from the engine on loopback, as the admin user; every step bounded by
/// `timeout`. `Ok(None)`: nothing listens (the engine is not running).
fn local_info(
    host: std::net::IpAddr,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> std::io::Result<Option<String>> {
    let addr = SocketAddr::from((host, port));
    let mut s = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(e),
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = Vec::new();
    if !password.is_empty() {
        req.extend(resp(&["AUTH", user, password]));
    }
    req.extend(resp(&["INFO", "replication"]));
    s.write_all(&req)?;
    // Read until the bulk reply is complete: `$<len>\r\n<body>\r\n` after the AUTH `+OK`.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.starts_with('-') || text.contains("\r\n-") {
            return Err(std::io::Error::other(text.trim().to_string()));
        }
        if let Some(start) = text.find('$') {
            let rest = &text[start + 1..];
            if let Some((len, body)) = rest.split_once("\r\n") {
                let len: usize = len.parse().map_err(std::io::Error::other)?;
                if body.len() >= len {
                    return Ok(Some(body[..len].to_string()));
                }
            }
        }
    }
}

/// `wait-handover [--host IP] [--port P] [--timeout SECONDS] [--user USER] [--password-file F]`:
/// the engine pod's preStop
/// hook. Kubernetes runs it when the pod is deleted, before SIGTERM; while it runs the engine
/// keeps serving, so the operator can hand the master role over (pause, let the replica catch
/// up, promote it, demote this engine). It returns as soon as the local engine is not master,
/// when no replica has been connected for a while (nobody to hand over to), when the engine
/// is not running, or at the deadline, whichever comes first: every network step is bounded
/// by the time left, so it never outlasts `--timeout` (which the pod's grace period exceeds).
/// Always exits 0: a preStop failure would only be logged, never change what happens next.
fn wait_handover(args: &[String]) -> anyhow::Result<()> {
    // The hook runs inside the pod: the engine is on loopback (tests point it elsewhere).
    let mut host = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut port: u16 = 6379;
    let mut timeout = Duration::from_secs(20);
    let mut user = "redispair-admin".to_string();
    let mut password_file: Option<String> = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => host = value.parse()?,
            "--port" => port = value.parse()?,
            "--timeout" => timeout = Duration::from_secs_f64(value.parse()?),
            "--user" => user = value.clone(),
            "--password-file" => password_file = Some(value.clone()),
            _ => anyhow::bail!(
                "usage: redispair-engine wait-handover [--host IP] [--port P] [--timeout SECONDS] [--user USER] [--password-file FILE]"
            ),
        }
    }
    // The admin password from its file (the mounted admin Secret), never from the command
    // line; the environment only for pods of older operators.
    let password = match &password_file {
        Some(f) => config::secret_from_file_text(&std::fs::read_to_string(f)?).to_string(),
        None => std::env::var(ENV_ADMIN_PASSWORD).unwrap_or_default(),
    };
    let start = Instant::now();
    let deadline = start + timeout;
    let mut no_replica_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            eprintln!("wait-handover: deadline passed, still master");
            return Ok(());
        };
        match local_info(
            host,
            port,
            &user,
            &password,
            left.min(Duration::from_secs(1)),
        ) {
            Ok(None) => {
                eprintln!("wait-handover: engine not running");
                return Ok(());
            }
            Ok(Some(info)) => match handover_view(&info) {
                Some(HandoverView::NotMaster) => {
                    eprintln!(
                        "wait-handover: not master (after {:.1} s)",
                        start.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Some(HandoverView::Master { replicas: 0 }) => {
                    let since = *no_replica_since.get_or_insert(now);
                    if now.duration_since(since) >= NO_REPLICA_GRACE {
                        eprintln!("wait-handover: no replica to hand over to");
                        return Ok(());
                    }
                }
                Some(HandoverView::Master { .. }) | None => no_replica_since = None,
            },
            // Busy or slow (paused writes do not block INFO, but a loaded engine may be slow):
            // try again until the deadline.
            Err(e) => eprintln!("wait-handover: {e}"),
        }
        std::thread::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Network threads when `worker-threads` is 0: one per core (as the cgroup quota allows),
/// less one core left to the threads that are not network threads (the log writer's fsyncs,
/// snapshot and full-sync serialisers). All commands run under one lock, so more network
/// threads than that only add hand-offs: on 2 cores, 1 thread measured 0.95-1.12 of
/// redis-server at -P 16 where 2 threads measured 0.84-0.96 (docs/benchmarks.md).
fn default_worker_threads(cores: Option<std::num::NonZeroUsize>) -> usize {
    cores.map_or(1, |n| n.get().saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_threads_leave_a_core_for_the_rest() {
        let n = |c: usize| default_worker_threads(std::num::NonZeroUsize::new(c));
        assert_eq!(n(1), 1);
        assert_eq!(n(2), 1);
        assert_eq!(n(8), 7);
        assert_eq!(default_worker_threads(None), 1);
    }

    #[test]
    fn reads_the_role_and_the_replicas() {
        assert_eq!(
            handover_view("# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"),
            Some(HandoverView::Master { replicas: 1 })
        );
        assert_eq!(
            handover_view("role:slave\r\nmaster_host:10.0.0.2\r\n"),
            Some(HandoverView::NotMaster)
        );
        assert_eq!(handover_view("nothing"), None);
    }

    #[test]
    fn returns_at_once_when_no_engine_listens() {
        // Port 1 on loopback: nothing listens there.
        let started = Instant::now();
        wait_handover(&["--port".into(), "1".into(), "--timeout".into(), "30".into()]).unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
