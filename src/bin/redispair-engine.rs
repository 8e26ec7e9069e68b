//! redispair-engine: the Redis-compatible storage engine binary. Does I/O: parses the command
//! line, installs logging and the counting allocator, serves until SHUTDOWN or a signal.
//! `redispair-engine check-log DIR [--truncate]` checks (and repairs) a data directory instead.

use redispair::engine::{config, memory::CountingAllocator, server};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("check-log") {
        return check_log(&argv[2..]);
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
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
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
