//! The engine following a stock Redis master over TLS with the `master-tls-*` settings (a
//! migration source, docs/migration.md), apart from the pair's own `tls-*`: Debian's
//! redis-server 7.0.15 serving TLS with its own CA and requiring client certificates (its
//! `tls-auth-clients yes`), a certificate that names only a DNS name while the engine dials
//! 127.0.0.1. Full sync, stream, a dropped link's partial resync, every acknowledged write on
//! the engine; sources that do not verify (another CA, the wrong name, no client certificate,
//! the system roots) give nothing and say why in INFO. Does I/O: processes, loopback sockets,
//! temporary directories.

mod rdb_support;
mod support;
mod tls_support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdb_support::{dataset, fill, RedisServer};
use redis::aio::MultiplexedConnection;
use redispair::engine::config::Config;
use redispair::engine::server::{self, ServerHandle};
use support::{free_port, redis_conn_to, start_engine, temp_dir, unless_loading, wait_for};
use tls_support::{make_ca, make_leaf, make_leaf_for};

/// The name on the source's certificate; the engine dials 127.0.0.1.
const SOURCE_NAME: &str = "old-redis.example";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One field of INFO replication.
async fn repl_field(url: &str, name: &str) -> String {
    let mut c = redis_conn_to(url).await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or("")
        .to_string()
}

async fn stat(url: &str, name: &str) -> u64 {
    let mut c = redis_conn_to(url).await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An engine with its own TLS (the pair's CA, `tls-replication yes`, which must not be what
/// its link to the source uses) and the `master-tls-*` settings given, pointed at the source's
/// TLS port the way the operator does it (`CONFIG SET master-tls yes`, then `REPLICAOF`).
async fn engine_following(
    pair_dir: &Path,
    master_tls: &[(&str, &str)],
    source_tls_port: u16,
) -> (ServerHandle, String) {
    std::fs::create_dir_all(pair_dir).unwrap();
    let pair_ca = make_ca(pair_dir, "pair-ca");
    let pair_leaf = make_leaf(pair_dir, &pair_ca, "pair-node");
    let plain = free_port().to_string();
    let tls = free_port().to_string();
    let mut settings = vec![
        ("port", plain.as_str()),
        ("tls-port", tls.as_str()),
        ("tls-cert-file", s(&pair_leaf.crt)),
        ("tls-key-file", s(&pair_leaf.key)),
        ("tls-ca-cert-file", s(&pair_ca.crt)),
        ("tls-auth-clients", "no"),
        ("tls-replication", "yes"),
    ];
    settings.extend_from_slice(master_tls);
    let h = start_engine(&settings).await;
    let url = format!("redis://127.0.0.1:{plain}/");
    let mut c = redis_conn_to(&url).await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("master-tls")
        .arg("yes")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(source_tls_port)
        .query_async(&mut c)
        .await
        .unwrap();
    (h, url)
}

/// Writes unique keys to `url` until stopped; every key whose SET was answered OK is recorded.
fn start_acked_writer(
    url: String,
) -> (
    Arc<AtomicBool>,
    Arc<Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let (st, ack) = (stop.clone(), acked.clone());
    let task = tokio::spawn(async move {
        let mut c: MultiplexedConnection = redis_conn_to(&url).await.unwrap();
        let mut i = 0u64;
        while !st.load(Ordering::Relaxed) {
            let key = format!("acked:{i}");
            let r: redis::RedisResult<()> =
                redis::cmd("SET").arg(&key).arg(i).query_async(&mut c).await;
            r.unwrap();
            ack.lock().push(key);
            i += 1;
        }
    });
    (stop, acked, task)
}

async fn wait_for_acked(acked: &Arc<Mutex<Vec<String>>>, more: usize, what: &str) {
    let target = acked.lock().len() + more;
    wait_for(Duration::from_secs(30), what, || {
        let acked = acked.clone();
        async move { acked.lock().len() >= target }
    })
    .await;
}

/// Wait until the engine's link to the source is down for a reason containing `needle`, and
/// return the reason.
async fn wait_refused(url: &str, needle: &str) -> String {
    wait_for(
        Duration::from_secs(30),
        &format!("a link_down_reason with {needle:?}"),
        || {
            let url = url.to_string();
            async move { repl_field(&url, "link_down_reason").await.contains(needle) }
        },
    )
    .await;
    repl_field(url, "link_down_reason").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_follows_a_tls_source_with_its_own_ca_name_and_client_certificate() {
    let dir = temp_dir("master-tls");
    let source_ca = make_ca(&dir, "source-ca");
    let source_leaf = make_leaf_for(&dir, &source_ca, "source", &format!("DNS:{SOURCE_NAME}"));
    let migrator = make_leaf(&dir, &source_ca, "migrator");
    let tls_port = free_port();
    let tls_port_s = tls_port.to_string();
    // The test writes over plaintext on the source's other port; the engines only ever dial
    // the TLS port. tls-auth-clients is redis-server's default (yes): a client certificate
    // signed by the source's CA is required.
    let source = RedisServer::start(
        &dir,
        &[
            "--tls-port",
            &tls_port_s,
            "--tls-cert-file",
            s(&source_leaf.crt),
            "--tls-key-file",
            s(&source_leaf.key),
            "--tls-ca-cert-file",
            s(&source_ca.crt),
            "--repl-diskless-sync",
            "no",
        ],
    )
    .await;
    let surl = source.url();
    fill(&surl).await;
    let (stop, acked, writer) = start_acked_writer(surl.clone());
    wait_for_acked(&acked, 100, "writes before the sync").await;

    // The engine with the right settings: the source's CA, its name, a client certificate.
    let good = [
        ("master-tls-ca-cert-file", s(&source_ca.crt)),
        ("master-tls-cert-file", s(&migrator.crt)),
        ("master-tls-key-file", s(&migrator.key)),
        ("master-tls-server-name", SOURCE_NAME),
    ];
    let (e, eurl) = engine_following(&dir.join("good"), &good, tls_port).await;
    wait_for(
        Duration::from_secs(60),
        "the link over TLS to come up",
        || {
            let eurl = eurl.clone();
            async move { repl_field(&eurl, "master_link_status").await == "up" }
        },
    )
    .await;
    wait_for_acked(&acked, 300, "writes streamed after the sync").await;
    // Drop the link from the source's side: the engine comes back by partial resync, over TLS
    // again.
    let partial_before = stat(&surl, "sync_partial_ok").await;
    let mut sc = redis_conn_to(&surl).await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut sc)
        .await
        .unwrap();
    wait_for_acked(&acked, 300, "writes across the dropped link").await;
    wait_for(Duration::from_secs(60), "a partial resync", || {
        let surl = surl.clone();
        async move { stat(&surl, "sync_partial_ok").await > partial_before }
    })
    .await;
    wait_for_acked(&acked, 100, "writes after the resync").await;

    // Sources that must not verify, each against the same redis-server. None takes any data.
    let pair_ca_dir = dir.join("wrong-ca");
    std::fs::create_dir_all(&pair_ca_dir).unwrap();
    let other_ca = make_ca(&pair_ca_dir, "other-ca");
    let wrong_ca = [
        ("master-tls-ca-cert-file", s(&other_ca.crt)),
        ("master-tls-cert-file", s(&migrator.crt)),
        ("master-tls-key-file", s(&migrator.key)),
        ("master-tls-server-name", SOURCE_NAME),
    ];
    let wrong_name = [
        ("master-tls-ca-cert-file", s(&source_ca.crt)),
        ("master-tls-cert-file", s(&migrator.crt)),
        ("master-tls-key-file", s(&migrator.key)),
    ];
    let no_client_cert = [
        ("master-tls-ca-cert-file", s(&source_ca.crt)),
        ("master-tls-server-name", SOURCE_NAME),
    ];
    let system_roots = [
        ("master-tls-cert-file", s(&migrator.crt)),
        ("master-tls-key-file", s(&migrator.key)),
        ("master-tls-server-name", SOURCE_NAME),
    ];
    let mut refused = Vec::new();
    for (what, settings, needle) in [
        ("another CA", &wrong_ca[..], "UnknownIssuer"),
        (
            "a name the certificate lacks",
            &wrong_name[..],
            "not valid for name",
        ),
        // redis-server ends the handshake with an alert (TLS 1.3: after the client's side
        // finished, so the engine sees it on its first read, or its AUTH/REPLCONF write).
        (
            "no client certificate",
            &no_client_cert[..],
            "CertificateRequired",
        ),
        // The system's CAs do not include the test's.
        ("the system roots", &system_roots[..], "master-tls"),
    ] {
        let (h, url) =
            engine_following(&dir.join(what.replace(' ', "-")), settings, tls_port).await;
        let reason = wait_refused(&url, needle).await;
        assert_eq!(
            repl_field(&url, "master_link_status").await,
            "down",
            "{what}"
        );
        refused.push((what, h, url, reason));
    }
    // Let the refused engines retry while the writer runs on, then look at what they hold.
    wait_for_acked(&acked, 200, "writes while the refused engines retry").await;
    for (what, h, url, reason) in refused {
        let mut c = redis_conn_to(&url).await.unwrap();
        let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        assert_eq!(n, 0, "{what}: nothing taken from an unverified source");
        assert_eq!(
            repl_field(&url, "master_link_status").await,
            "down",
            "{what}"
        );
        eprintln!("refused ({what}): {reason}");
        h.stop().await;
    }
    // Only the good engine ever became the source's replica.
    assert_eq!(repl_field(&surl, "connected_slaves").await, "1");
    assert_eq!(stat(&surl, "sync_full").await, 1);

    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    // Caught up: the engine has applied at least the source's offset now that nothing writes
    // (the source's PINGs may move it on meanwhile).
    let target: u64 = repl_field(&surl, "master_repl_offset")
        .await
        .parse()
        .unwrap();
    wait_for(Duration::from_secs(60), "the engine to catch up", || {
        let eurl = eurl.clone();
        async move {
            repl_field(&eurl, "slave_repl_offset")
                .await
                .parse::<u64>()
                .is_ok_and(|o| o >= target)
        }
    })
    .await;
    // Every acknowledged write is on the engine, with its value.
    let acked = acked.lock().clone();
    let mut ec = redis_conn_to(&eurl).await.unwrap();
    for chunk in acked.chunks(500) {
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut ec)
            .await
            .unwrap();
        for (k, v) in chunk.iter().zip(values) {
            let want: u64 = k.trim_start_matches("acked:").parse().unwrap();
            assert_eq!(
                v,
                Some(want),
                "acknowledged write {k} missing on the engine"
            );
        }
    }
    // And the rest of the dataset, key by key with TTLs.
    let expected = dataset(&surl).await;
    assert_eq!(dataset(&eurl).await, expected);
    eprintln!(
        "followed over TLS: {} acknowledged writes, {} keys, sync_full 1, sync_partial_ok {}",
        acked.len(),
        expected.len(),
        stat(&surl, "sync_partial_ok").await
    );
    e.stop().await;
    drop(source);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `master-tls-verify no` (a self-signed source the operator chose not to verify): the link is
/// encrypted and follows a source no CA vouches for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_tls_verify_no_follows_an_unverifiable_source() {
    let dir = temp_dir("master-tls-noverify");
    let ca = make_ca(&dir, "self");
    let leaf = make_leaf_for(&dir, &ca, "source", "DNS:somewhere.else");
    let tls_port = free_port();
    let tls_port_s = tls_port.to_string();
    let source = RedisServer::start(
        &dir,
        &[
            "--tls-port",
            &tls_port_s,
            "--tls-cert-file",
            s(&leaf.crt),
            "--tls-key-file",
            s(&leaf.key),
            "--tls-ca-cert-file",
            s(&ca.crt),
            "--tls-auth-clients",
            "no",
        ],
    )
    .await;
    let surl = source.url();
    let mut sc = redis_conn_to(&surl).await.unwrap();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query_async(&mut sc)
            .await
            .unwrap();
    }
    let (e, eurl) = engine_following(
        &dir.join("engine"),
        &[("master-tls-verify", "no")],
        tls_port,
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "the unverified link to sync",
        || {
            let eurl = eurl.clone();
            async move {
                let mut c = redis_conn_to(&eurl).await.unwrap();
                unless_loading(redis::cmd("DBSIZE").query_async::<i64>(&mut c).await) == Some(100)
            }
        },
    )
    .await;
    e.stop().await;
    drop(source);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A master-tls file that does not load does not stop start-up (a pod whose migration
/// completed keeps its flags while the source's Secrets may be gone): the link says why, naming
/// the setting and the file, as soon as `master-tls` is switched on. A certificate without its
/// key is a configuration error and stops start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_master_tls_file_is_the_links_reason_naming_the_setting() {
    let missing = "/nonexistent/redispair/ca.crt";
    let h = start_engine(&[("master-tls-ca-cert-file", missing)]).await;
    let url = format!("redis://{}/", h.addr());
    let mut c = redis_conn_to(&url).await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("master-tls")
        .arg("yes")
        .query_async(&mut c)
        .await
        .unwrap();
    // Nothing listens there: the reason must come from the file, before any connection.
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(free_port())
        .query_async(&mut c)
        .await
        .unwrap();
    let reason = wait_refused(&url, "master-tls-ca-cert-file").await;
    assert!(reason.contains(missing), "{reason}");
    h.stop().await;

    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("bind", "127.0.0.1").unwrap();
    cfg.set_startup("persistence", "off").unwrap();
    cfg.set_startup("master-tls-cert-file", "/x.pem").unwrap();
    let err = server::start(cfg).await.err().expect("refused").to_string();
    assert!(err.contains("master-tls-key-file"), "{err}");
}

/// A self-signed source certificate (`openssl req -x509`), given as its own CA: followed when it
/// is not marked as a CA (rustls refuses a CA certificate used as a server's: CaUsedAsEndEntity,
/// which `master-tls-verify no` is for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_source_certificate_serves_as_its_own_ca_unless_marked_as_a_ca() {
    let dir = temp_dir("master-tls-self-signed");
    for (ca_flag, follows) in [("CA:FALSE", true), ("critical,CA:TRUE", false)] {
        let name = if follows { "leaf" } else { "ca" };
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "30", "-subj", "/CN=self"])
            .args(["-addext", &format!("basicConstraints={ca_flag}")])
            .args(["-addext", &format!("subjectAltName=DNS:{SOURCE_NAME}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tls_port = free_port();
        let tls_port_s = tls_port.to_string();
        let source = RedisServer::start(
            &dir,
            &[
                "--tls-port",
                &tls_port_s,
                "--tls-cert-file",
                s(&crt),
                "--tls-key-file",
                s(&key),
                "--tls-ca-cert-file",
                s(&crt),
                "--tls-auth-clients",
                "no",
            ],
        )
        .await;
        let mut sc = redis_conn_to(&source.url()).await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(1)
            .query_async(&mut sc)
            .await
            .unwrap();
        let (e, eurl) = engine_following(
            &dir.join(format!("engine-{name}")),
            &[
                ("master-tls-ca-cert-file", s(&crt)),
                ("master-tls-server-name", SOURCE_NAME),
            ],
            tls_port,
        )
        .await;
        if follows {
            wait_for(
                Duration::from_secs(60),
                "the self-signed source followed",
                || {
                    let eurl = eurl.clone();
                    async move { repl_field(&eurl, "master_link_status").await == "up" }
                },
            )
            .await;
        } else {
            let reason = wait_refused(&eurl, "CaUsedAsEndEntity").await;
            eprintln!("self-signed CA certificate as the server's: {reason}");
        }
        e.stop().await;
        drop(source);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The operator's side of a TLS source (`operator::migrate::probe_source`, which reads the
/// source's offset each pass and pauses it at cutover): over TLS with the source's CA, its
/// name and a client certificate; refused, with the reason, for another CA, and for no client
/// certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_probe_speaks_tls_to_the_source() {
    use redispair::operator::migrate::{probe_source, SourceTls};
    let dir = temp_dir("master-tls-probe");
    let ca = make_ca(&dir, "source-ca");
    let other = make_ca(&dir, "other-ca");
    let leaf = make_leaf_for(&dir, &ca, "source", &format!("DNS:{SOURCE_NAME}"));
    let client = make_leaf(&dir, &ca, "migrator");
    let tls_port = free_port();
    let tls_port_s = tls_port.to_string();
    let source = RedisServer::start(
        &dir,
        &[
            "--tls-port",
            &tls_port_s,
            "--tls-cert-file",
            s(&leaf.crt),
            "--tls-key-file",
            s(&leaf.key),
            "--tls-ca-cert-file",
            s(&ca.crt),
        ],
    )
    .await;
    let spec: redispair::api::MigrateFromSpec = serde_json::from_value(serde_json::json!({
        "host": "127.0.0.1", "port": tls_port, "tls": {}}))
    .unwrap();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let tls = |ca_pem: Vec<u8>, with_client: bool| SourceTls {
        ca: Some(ca_pem),
        client: with_client.then(|| (read(&client.crt), read(&client.key))),
        server_name: Some(SOURCE_NAME.to_string()),
        verify: true,
    };
    let t = Duration::from_secs(10);
    let good = probe_source(&spec, None, Some(&tls(read(&ca.crt), true)), Some(1000), t).await;
    assert!(good.error.is_none(), "{good:?}");
    assert!(good.offset.is_some() && good.paused, "{good:?}");
    let wrong_ca = probe_source(&spec, None, Some(&tls(read(&other.crt), true)), None, t).await;
    let e_ca = wrong_ca.error.clone().expect("another CA is refused");
    assert!(e_ca.contains("UnknownIssuer"), "{e_ca}");
    assert!(wrong_ca.offset.is_none());
    let no_client = probe_source(&spec, None, Some(&tls(read(&ca.crt), false)), None, t).await;
    let e = no_client.error.expect("no client certificate is refused");
    assert!(no_client.offset.is_none(), "{e}");
    eprintln!("probe refused: another CA: {e_ca}; no client certificate: {e}");
    drop(source);
    std::fs::remove_dir_all(&dir).unwrap();
}
