//! redispair-operator: runs the RedisPair controller (leader election, /healthz /readyz
//! /metrics), and `redispair-operator probe`, the engine pods' readiness probe (the binary
//! ships in the same image as the engine). Does I/O: everything, through the library.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, Parser, Subcommand};
use prometheus_client::registry::Registry;
use redispair::api::constants::ADMIN_USER;
use redispair::operator::build::pod::ENV_ADMIN_PASSWORD;
use redispair::operator::controller::{run, RunConfig};
use redispair::operator::http::{serve, HttpState};
use redispair::operator::leader::LeaderElection;
use redispair::operator::metrics::Metrics;

#[derive(Parser, Debug)]
#[command(version, about = "The RedisPair operator")]
struct Cli {
    /// Namespace to watch; all namespaces when unset.
    #[arg(long, env = "REDISPAIR_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Engine image for pairs that name none (normally the operator's own image).
    #[arg(long, env = "REDISPAIR_ENGINE_IMAGE")]
    engine_image: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "REDISPAIR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
    /// Take a coordination Lease before acting, so several replicas can run.
    #[arg(long, env = "REDISPAIR_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This instance's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Readiness probe of an engine pod: the local engine answers PING as the admin user.
    Probe {
        #[arg(long, default_value_t = 6379)]
        port: u16,
        /// File holding the admin password (the mounted admin Secret). Without it, the
        /// REDISPAIR_ADMIN_PASSWORD environment variable (pods of older operators).
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// PING the engine on loopback (after AUTH as the admin user when a password is set); exit 0
/// when it answers PONG. A loading engine answers -LOADING and is not ready.
fn probe(port: u16, password_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(900);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let password = match password_file {
        // One trailing newline is not part of the password (as the engine reads its files).
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            text.strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(&text)
                .to_string()
        }
        None => std::env::var(ENV_ADMIN_PASSWORD).unwrap_or_default(),
    };
    let mut req = Vec::new();
    let expect = if password.is_empty() {
        "+PONG\r\n"
    } else {
        req.extend(resp(&["AUTH", ADMIN_USER, &password]));
        "+OK\r\n+PONG\r\n"
    };
    req.extend(resp(&["PING"]));
    s.write_all(&req)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < expect.len() {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.starts_with(b"-") {
            break;
        }
    }
    let got = String::from_utf8_lossy(&got);
    anyhow::ensure!(got == expect, "engine answered {got:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Probe {
        port,
        password_file,
    }) = cli.command
    {
        return probe(port, password_file.as_deref());
    }
    // Registered first: a SIGTERM from here on starts the shutdown deadline (`stop_deadline`).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .init();
    let identity = cli.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .unwrap_or_else(|_| format!("redispair-operator-{}", std::process::id()))
    });
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let http = Arc::new(HttpState {
        registry,
        ready: false.into(),
    });
    let server = tokio::spawn(serve(cli.metrics_addr, http.clone()));

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    // Fail early with a hint when the CRD is missing (controller-rs does the same).
    // In the watched namespace only: a namespaced install has no cluster-wide list permission.
    let pairs: kube::Api<redispair::api::RedisPair> = match &cli.namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    pairs
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .context(
            "listing RedisPairs; is the CRD installed? (kubectl apply -f crds/redispair.yaml)",
        )?;
    http.ready.store(true, Ordering::Relaxed);

    // Without election this instance leads from the start. With it, the controller runs at
    // once as a standby (watches and probers warm, nothing written) and leads once the Lease
    // is held: a standby's takeover is on the failover path when the leader's node dies with
    // a master (see operator::leader).
    let (lead_tx, leading) = tokio::sync::watch::channel(!cli.leader_election);
    let config = RunConfig {
        namespace: cli.namespace.clone(),
        default_image: cli.engine_image.clone(),
        instance: identity.clone(),
        metrics,
        leading,
    };
    let controller = run(client.clone(), config);
    tokio::pin!(controller);
    let mut server = server;
    if !cli.leader_election {
        tokio::select! {
            _ = &mut controller => {}
            r = &mut server => { r??; }
        }
        std::process::exit(0);
    }
    let election = LeaderElection::new(
        client.clone(),
        &cli.lease_namespace,
        "redispair-operator",
        &identity,
    );
    tracing::info!(%identity, "standby: waiting for the leader Lease");
    let held_since = tokio::select! {
        t = election.acquire() => t,
        // Shut down (SIGTERM) while a standby: nothing to release.
        _ = &mut controller => std::process::exit(0),
        r = &mut server => { r??; return Ok(()); }
    };
    lead_tx.send_replace(true);
    tracing::info!(%identity, "leading");
    tokio::select! {
        _ = &mut controller => {
            // Shut down: the controller has stopped acting; hand the Lease over now rather
            // than make the standby wait for it to expire.
            election.release().await;
        }
        lost = election.hold(held_since) => {
            // Stop at once: a follower must never act. Start again in place, as a standby.
            tracing::error!(error = %lost, "leadership lost: restarting in place as a standby");
            let e = restart_in_place();
            anyhow::bail!("{lost}; restarting in place failed: {e}");
        }
        r = &mut server => { r??; }
        _ = stop_deadline(&mut term) => {
            // The controller did not finish its graceful stop in time (a reconcile stuck on
            // an unreachable API): exit without releasing. The Lease then expires as if the
            // process had died, so no successor can act while a pass of ours might.
            tracing::warn!(
                "the controller did not stop within {SHUTDOWN_GRACE:?} of SIGTERM; exiting without releasing the Lease"
            );
        }
    }
    tracing::info!("stopped");
    // Exit now: nothing of ours is left to finish, and dropping the runtime would wait for
    // any blocking task still in its pool.
    std::process::exit(0)
}

/// Replace this process with a fresh run of the same program, arguments and environment
/// (`execve` of `/proc/self/exe`); returns only if that failed.
///
/// Why not exit and let the kubelet restart the container: every exit counts as a container
/// restart, and the kubelet holds a container that restarts often back (10 s doubling to
/// 5 min, reset only after 10 min of running). Lease losses are not crashes: an apiserver
/// outage or a partition makes the leader give up, and a run of them (the torture's 100
/// rounds) left both operator pods in CrashLoopBackOff at once, with no operator for 80 s
/// while a master was down. `execve` stops every task as surely as an exit (the old image is
/// gone, our sockets and files are close-on-exec), keeps PID 1, and costs no restart.
fn restart_in_place() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "redispair-operator".into());
    std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .exec()
}

/// How long a leader waits for its controller to stop after SIGTERM before it exits anyway
/// (well within the pod's termination grace period).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Resolves [`SHUTDOWN_GRACE`] after SIGTERM (the controller starts its graceful stop on the
/// same signal). `term` was registered when the process started, so a signal that arrived
/// before this is waited on still counts.
async fn stop_deadline(term: &mut Option<tokio::signal::unix::Signal>) {
    match term {
        Some(t) => {
            t.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}
