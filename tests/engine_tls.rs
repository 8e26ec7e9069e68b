//! TLS on real engines on loopback, with certificates the test makes (openssl CLI): redis-cli
//! `--tls` and redis-py with ssl, plaintext off with `port 0`, `tls-auth-clients`
//! yes/optional/no, replication over TLS (full sync and stream), and a certificate rotation
//! through a Kubernetes-style mounted Secret under a writer, without a restart and without a
//! failed write.

mod rdb_support;
mod support;
mod tls_support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redispair::engine::server::ServerHandle;
use support::{free_port, start_engine, temp_dir, unless_loading, wait_for, wait_for_more};
use tls_support::{
    der_of, make_ca, make_leaf, presented_certificate, tls_conn, Ca, Leaf, MountedSecret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Start an engine serving TLS only (`port 0`) on a free port with these files and extra
/// settings; returns it and its TLS port.
async fn start_tls_engine(
    cert: &str,
    key: &str,
    ca: &str,
    extra: &[(&str, &str)],
) -> (ServerHandle, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut settings = vec![
        ("port", "0"),
        ("tls-port", port_s.as_str()),
        ("tls-cert-file", cert),
        ("tls-key-file", key),
        ("tls-ca-cert-file", ca),
    ];
    settings.extend_from_slice(extra);
    let h = start_engine(&settings).await;
    (h, port)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("redis-cli")
        .args(args)
        .output()
        .await
        .expect("redis-cli runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

/// A TLS connection that completes a PING: in TLS 1.3 a client's handshake ends before the
/// server has judged the client's certificate, so only a reply proves the server accepted it.
async fn tls_ping(port: u16, ca: &Path, client: Option<&Leaf>) -> Result<(), String> {
    let mut c = tls_conn(port, ca, client)
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(pong)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_redis_py_over_tls_with_plaintext_off() {
    let dir = temp_dir("tls-clients");
    let ca = make_ca(&dir, "ca");
    let server = make_leaf(&dir, &ca, "server");
    let client = make_leaf(&dir, &ca, "client");
    let (h, port) = start_tls_engine(s(&server.crt), s(&server.key), s(&ca.crt), &[]).await;
    assert!(h.addrs.is_empty(), "port 0 with a TLS port: no plaintext");
    assert_eq!(h.tls_addrs.len(), 1);
    let port_s = port.to_string();

    let cli = |cmd: &'static [&'static str]| {
        let mut args = vec![
            "-h".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port_s.clone(),
            "--tls".into(),
            "--cacert".into(),
            s(&ca.crt).into(),
            "--cert".into(),
            s(&client.crt).into(),
            "--key".into(),
            s(&client.key).into(),
        ];
        args.extend(cmd.iter().map(|a| a.to_string()));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            redis_cli(&args).await
        }
    };
    assert_eq!(cli(&["SET", "k", "v"]).await, (true, "OK".into()));
    assert_eq!(cli(&["GET", "k"]).await, (true, "v".into()));

    let py = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import redis, sys\n\
             r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True,\n\
                 ssl_ca_certs=sys.argv[2], ssl_certfile=sys.argv[3], ssl_keyfile=sys.argv[4])\n\
             r.set('py', 'x' * 100000)\n\
             print(len(r.get('py')), r.get('k').decode(), r.dbsize())\n",
            &port_s,
            s(&ca.crt),
            s(&client.crt),
            s(&client.key),
        ])
        .output()
        .await
        .expect("python3 runs");
    assert!(
        py.status.success(),
        "redis-py: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "100000 v 2");

    // Plaintext RESP on the TLS port gets no reply: the bytes are not a TLS handshake.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    raw.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf))
        .await
        .expect("the engine closes the connection")
        .unwrap_or(0);
    assert!(
        !String::from_utf8_lossy(&buf[..n]).contains("PONG"),
        "plaintext answered on the TLS port"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_auth_clients_yes_optional_and_no() {
    let dir = temp_dir("tls-auth");
    let ca = make_ca(&dir, "ca");
    let other_ca = make_ca(&dir, "other-ca");
    let server = make_leaf(&dir, &ca, "server");
    let client = make_leaf(&dir, &ca, "client");
    let stranger = make_leaf(&dir, &other_ca, "stranger");

    let (yes, yes_port) = start_tls_engine(s(&server.crt), s(&server.key), s(&ca.crt), &[]).await;
    assert!(tls_ping(yes_port, &ca.crt, Some(&client)).await.is_ok());
    let refused = tls_ping(yes_port, &ca.crt, None).await;
    assert!(
        refused.is_err(),
        "mutual TLS: a client without a certificate is refused"
    );
    assert!(
        tls_ping(yes_port, &ca.crt, Some(&stranger)).await.is_err(),
        "a certificate from another CA is refused"
    );
    // redis-cli without --cert is refused too.
    let (_, out) = redis_cli(&[
        "-h",
        "127.0.0.1",
        "-p",
        &yes_port.to_string(),
        "--tls",
        "--cacert",
        s(&ca.crt),
        "PING",
    ])
    .await;
    assert!(
        !out.contains("PONG"),
        "redis-cli without a certificate: {out}"
    );
    // The client must verify the server too: a client trusting another CA does not connect.
    assert!(tls_ping(yes_port, &other_ca.crt, Some(&client))
        .await
        .is_err());

    let (opt, opt_port) = start_tls_engine(
        s(&server.crt),
        s(&server.key),
        s(&ca.crt),
        &[("tls-auth-clients", "optional")],
    )
    .await;
    assert!(tls_ping(opt_port, &ca.crt, None).await.is_ok());
    assert!(tls_ping(opt_port, &ca.crt, Some(&client)).await.is_ok());
    assert!(
        tls_ping(opt_port, &ca.crt, Some(&stranger)).await.is_err(),
        "optional still verifies a certificate that is presented"
    );

    // `no` needs no CA at all. With a loopback port, plaintext is served on 127.0.0.1 only.
    let no_port = free_port();
    let no_port_s = no_port.to_string();
    let loopback = free_port();
    let loopback_s = loopback.to_string();
    let no = start_engine(&[
        ("tls-port", &no_port_s),
        ("tls-cert-file", s(&server.crt)),
        ("tls-key-file", s(&server.key)),
        ("tls-auth-clients", "no"),
        ("loopback-port", &loopback_s),
    ])
    .await;
    assert!(tls_ping(no_port, &ca.crt, None).await.is_ok());
    let mut plain = support::redis_conn_to(&format!("redis://127.0.0.1:{loopback}/"))
        .await
        .unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut plain).await.unwrap();
    assert_eq!(pong, "PONG");
    for h in [yes, opt, no] {
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_settings_stop_start_up_with_a_clear_error() {
    use redispair::engine::config::Config;
    use redispair::engine::server;
    let dir = temp_dir("tls-bad");
    let ca = make_ca(&dir, "ca");
    let leaf = make_leaf(&dir, &ca, "leaf");
    let port = free_port().to_string();
    let attempt = |settings: Vec<(&'static str, String)>| async move {
        let mut cfg = Config::default();
        cfg.set_startup("bind", "127.0.0.1").unwrap();
        cfg.set_startup("persistence", "off").unwrap();
        for (k, v) in settings {
            cfg.set_startup(k, &v).unwrap();
        }
        match server::start(cfg).await {
            Ok(h) => {
                h.stop().await;
                String::new()
            }
            Err(e) => e.to_string(),
        }
    };
    let e = attempt(vec![("tls-port", port.clone())]).await;
    assert!(e.contains("tls-cert-file"), "{e}");
    let e = attempt(vec![
        ("tls-port", port.clone()),
        ("tls-cert-file", s(&leaf.crt).into()),
        ("tls-key-file", s(&leaf.key).into()),
    ])
    .await;
    assert!(e.contains("tls-ca-cert-file"), "{e}");
    let e = attempt(vec![
        ("tls-port", port.clone()),
        ("tls-cert-file", s(&leaf.crt).into()),
        ("tls-key-file", s(&ca.key).into()),
        ("tls-auth-clients", "no".into()),
    ])
    .await;
    assert!(e.contains("TLS"), "a key that does not match: {e}");
    let e = attempt(vec![
        ("tls-port", port.clone()),
        ("tls-cert-file", "/nonexistent/tls.crt".into()),
        ("tls-key-file", s(&leaf.key).into()),
        ("tls-auth-clients", "no".into()),
    ])
    .await;
    assert!(e.contains("/nonexistent/tls.crt"), "{e}");
}

/// Writes `k<n>` = n over its own TLS connection until `stop`; any failed write fails the test.
fn spawn_writer(
    port: u16,
    ca: &Ca,
    client: &Leaf,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let ca = ca.crt.clone();
    let client = Leaf {
        crt: client.crt.clone(),
        key: client.key.clone(),
    };
    tokio::spawn(async move {
        let mut c = tls_conn(port, &ca, Some(&client)).await.unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let _: () = c
                .set(format!("k{n}"), n)
                .await
                .unwrap_or_else(|e| panic!("write k{n} failed: {e}"));
            n += 1;
            written.store(n, Ordering::Relaxed);
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_over_tls_full_sync_then_stream() {
    let dir = temp_dir("tls-repl");
    let ca = make_ca(&dir, "ca");
    let m_leaf = make_leaf(&dir, &ca, "master");
    let r_leaf = make_leaf(&dir, &ca, "replica");
    let client = make_leaf(&dir, &ca, "client");
    let (m, m_port) = start_tls_engine(s(&m_leaf.crt), s(&m_leaf.key), s(&ca.crt), &[]).await;
    let (r, r_port) = start_tls_engine(
        s(&r_leaf.crt),
        s(&r_leaf.key),
        s(&ca.crt),
        &[("tls-replication", "yes")],
    )
    .await;
    let mut mc = tls_conn(m_port, &ca.crt, Some(&client)).await.unwrap();
    let mut rc = tls_conn(r_port, &ca.crt, Some(&client)).await.unwrap();
    // Enough data for a full sync of many chunks through the TLS session.
    let big = "v".repeat(1000);
    for i in 0..3000 {
        let _: () = mc.set(format!("before{i}"), &big).await.unwrap();
    }
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(m_port)
        .query_async(&mut rc)
        .await
        .unwrap();
    for i in 0..1000 {
        let _: () = mc.set(format!("after{i}"), i).await.unwrap();
    }
    wait_for(Duration::from_secs(60), "the replica has every key", || {
        let mut rc = rc.clone();
        async move {
            unless_loading(redis::cmd("DBSIZE").query_async::<i64>(&mut rc).await) == Some(4000)
        }
    })
    .await;
    let v: String = rc.get("before2999").await.unwrap();
    assert_eq!(v, big);
    let v: i64 = rc.get("after999").await.unwrap();
    assert_eq!(v, 999);
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut mc)
        .await
        .unwrap();
    assert!(
        info.contains(&format!("port={r_port}")),
        "the replica announces its TLS port: {info}"
    );
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(info.contains("master_link_status:up"), "{info}");
    m.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_certificate_from_another_ca_cannot_follow() {
    let dir = temp_dir("tls-repl-stranger");
    let ca = make_ca(&dir, "ca");
    let other = make_ca(&dir, "other");
    let m_leaf = make_leaf(&dir, &ca, "master");
    let r_leaf = make_leaf(&dir, &other, "replica");
    let client = make_leaf(&dir, &ca, "client");
    let (m, m_port) = start_tls_engine(s(&m_leaf.crt), s(&m_leaf.key), s(&ca.crt), &[]).await;
    // The replica trusts the master's CA but presents a certificate the master does not.
    let r_port = free_port().to_string();
    let r = start_engine(&[
        ("tls-port", &r_port),
        ("tls-cert-file", s(&r_leaf.crt)),
        ("tls-key-file", s(&r_leaf.key)),
        ("tls-ca-cert-file", s(&ca.crt)),
        ("tls-replication", "yes"),
    ])
    .await;
    let mut mc = tls_conn(m_port, &ca.crt, Some(&client)).await.unwrap();
    let _: () = mc.set("secret", 1).await.unwrap();
    let mut rc = tls_conn(r_port.parse().unwrap(), &other.crt, Some(&client))
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(m_port)
        .query_async(&mut rc)
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the replica records why its link failed",
        || {
            let mut rc = rc.clone();
            async move {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut rc)
                    .await
                    .unwrap();
                info.lines()
                    .any(|l| l.starts_with("link_down_reason:") && l.len() > 17)
            }
        },
    )
    .await;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut rc).await.unwrap();
    assert_eq!(n, 0, "nothing crossed a refused link");
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut mc)
        .await
        .unwrap();
    assert!(info.contains("connected_slaves:0"), "{info}");
    m.stop().await;
    r.stop().await;
}

/// Both engines of a semi-sync pair read their certificates from mounted-Secret directories;
/// a writer goes on over TLS while both are rotated to new certificates. New connections (and
/// a replica link made after the rotation) get the new certificates; the writer's connection
/// and the running link keep going; every write is acknowledged and on the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_a_writer_loses_no_write() {
    let dir = temp_dir("tls-rotate");
    let ca = make_ca(&dir, "ca");
    let m1 = make_leaf(&dir, &ca, "master1");
    let r1 = make_leaf(&dir, &ca, "replica1");
    let m2 = make_leaf(&dir, &ca, "master2");
    let r2 = make_leaf(&dir, &ca, "replica2");
    let client = make_leaf(&dir, &ca, "client");
    let mut m_secret = MountedSecret::new(&dir.join("m-secret"), &ca, &m1);
    let mut r_secret = MountedSecret::new(&dir.join("r-secret"), &ca, &r1);
    let semi = [
        ("replication-mode", "semi-sync"),
        ("tls-replication", "yes"),
    ];
    let (m, m_port) =
        start_tls_engine(&m_secret.crt(), &m_secret.key(), &m_secret.ca(), &semi).await;
    let (r, r_port) =
        start_tls_engine(&r_secret.crt(), &r_secret.key(), &r_secret.ca(), &semi).await;
    let mut rc = tls_conn(r_port, &ca.crt, Some(&client)).await.unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(m_port)
        .query_async(&mut rc)
        .await
        .unwrap();
    let mut mc = tls_conn(m_port, &ca.crt, Some(&client)).await.unwrap();
    wait_for(Duration::from_secs(30), "the replica is online", || {
        let mut mc = mc.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut mc)
                .await
                .unwrap();
            info.contains("state=online")
        }
    })
    .await;
    assert_eq!(
        presented_certificate(m_port, &ca.crt, Some(&client))
            .await
            .unwrap(),
        der_of(&m1.crt)
    );

    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(m_port, &ca, &client, written.clone(), stop.clone());
    wait_for_more(&written, 200, "writes before the rotation").await;

    m_secret.update(&ca, &m2);
    r_secret.update(&ca, &r2);
    for (port, new) in [(m_port, &m2), (r_port, &r2)] {
        let want = der_of(&new.crt);
        wait_for(
            Duration::from_secs(30),
            "new connections get the new certificate",
            || {
                let (ca, client, want) = (ca.crt.clone(), &client, want.clone());
                async move {
                    presented_certificate(port, &ca, Some(client))
                        .await
                        .is_ok_and(|c| c == want)
                }
            },
        )
        .await;
    }
    wait_for_more(&written, 200, "writes after the rotation").await;

    // A new replica link is made with the new certificates on both sides.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut mc)
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), "the replica links again", || {
        let mut mc = mc.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut mc)
                .await
                .unwrap();
            info.contains("state=online")
        }
    })
    .await;
    wait_for_more(&written, 200, "writes over the new link").await;
    stop.store(true, Ordering::Relaxed);
    let n = writer.await.expect("the writer saw no failed write");

    // Semi-sync: every acknowledged write is on the replica once it has caught up.
    let _: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(10000)
        .query_async(&mut mc)
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the replica has every write",
        || {
            let mut rc = rc.clone();
            async move {
                unless_loading(redis::cmd("DBSIZE").query_async::<u64>(&mut rc).await) == Some(n)
            }
        },
    )
    .await;
    for i in [0, n / 2, n - 1] {
        let v: u64 = rc.get(format!("k{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    m.stop().await;
    r.stop().await;
}

/// The operator's admin connection (`EngineClient` with the pair's CA and certificate) to an
/// engine that requires client certificates: it verifies the engine against the CA (by
/// chain: it dials an address the certificate need not name) and presents the pair's
/// certificate; without the CA it does not connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_admin_connection_speaks_mutual_tls() {
    use redispair::operator::engine_client::{EngineAccess, EngineClient};
    let dir = temp_dir("tls-operator");
    let ca = make_ca(&dir, "ca");
    let other = make_ca(&dir, "other");
    // Names only a DNS name: the operator dials the pod IP (127.0.0.1 here).
    let leaf = tls_support::make_leaf_for(&dir, &ca, "pod", "DNS:cache-a.cache-headless.shop.svc");
    let (h, port) = start_tls_engine(
        s(&leaf.crt),
        s(&leaf.key),
        s(&ca.crt),
        &[
            ("admin-user", "redispair-admin"),
            ("admin-password", "adminpw"),
        ],
    )
    .await;
    let access = |ca: &Path, client: bool| EngineAccess {
        admin_password: "adminpw".into(),
        tls_ca: Some(std::fs::read(ca).unwrap()),
        tls_client: client.then(|| {
            (
                std::fs::read(&leaf.crt).unwrap(),
                std::fs::read(&leaf.key).unwrap(),
            )
        }),
    };
    let t = Duration::from_secs(10);
    let mut c = EngineClient::connect_port("127.0.0.1", port as i32, &access(&ca.crt, true), t)
        .await
        .expect("the operator connects over mutual TLS");
    let info = c.info().await.expect("INFO as the admin user");
    assert_eq!(info.role, redispair::failover::Role::Master);
    let untrusted =
        EngineClient::connect_port("127.0.0.1", port as i32, &access(&other.crt, true), t).await;
    let refused = match untrusted {
        Err(_) => true,
        Ok(mut c) => c.info().await.is_err(),
    };
    assert!(
        refused,
        "an engine whose certificate is not from the pair's CA is refused"
    );
    h.stop().await;
}

/// Redis's own TLS replication both ways with Debian's redis-server 7.0.15: the engine follows
/// a redis-server master on its TLS port, and a redis-server replica follows the engine's TLS
/// port (the stock full sync, an RDB payload, then the stream, through the TLS session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_replication_with_stock_redis_both_ways() {
    let dir = temp_dir("tls-stock");
    let ca = make_ca(&dir, "ca");
    let leaf = make_leaf(&dir, &ca, "node");
    let client = make_leaf(&dir, &ca, "client");
    let redis_tls = free_port();
    let redis_tls_s = redis_tls.to_string();
    let stock = rdb_support::RedisServer::start(
        &dir,
        &[
            "--tls-port",
            &redis_tls_s,
            "--tls-cert-file",
            s(&leaf.crt),
            "--tls-key-file",
            s(&leaf.key),
            "--tls-ca-cert-file",
            s(&ca.crt),
            "--tls-replication",
            "yes",
        ],
    )
    .await;
    let mut sc = support::redis_conn_to(&stock.url()).await.unwrap();
    for i in 0..500 {
        let _: () = sc.set(format!("from-redis{i}"), i).await.unwrap();
    }
    // 1. The engine replicates from redis-server over TLS.
    let (e, e_port) = start_tls_engine(
        s(&leaf.crt),
        s(&leaf.key),
        s(&ca.crt),
        &[("tls-replication", "yes")],
    )
    .await;
    let mut ec = tls_conn(e_port, &ca.crt, Some(&client)).await.unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(redis_tls)
        .query_async(&mut ec)
        .await
        .unwrap();
    for i in 500..1000 {
        let _: () = sc.set(format!("from-redis{i}"), i).await.unwrap();
    }
    wait_for(
        Duration::from_secs(60),
        "the engine has redis-server's keys",
        || {
            let mut ec = ec.clone();
            async move {
                unless_loading(redis::cmd("DBSIZE").query_async::<i64>(&mut ec).await) == Some(1000)
            }
        },
    )
    .await;
    // 2. The engine becomes a master again, and redis-server follows it over TLS.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut ec)
        .await
        .unwrap();
    for i in 0..500 {
        let _: () = ec.set(format!("from-engine{i}"), i).await.unwrap();
    }
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(e_port)
        .query_async(&mut sc)
        .await
        .unwrap();
    for i in 500..1000 {
        let _: () = ec.set(format!("from-engine{i}"), i).await.unwrap();
    }
    wait_for(
        Duration::from_secs(60),
        "redis-server has the engine's keys",
        || {
            let mut sc = sc.clone();
            async move {
                let n: i64 = redis::cmd("DBSIZE").query_async(&mut sc).await.unwrap_or(0);
                let link: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut sc)
                    .await
                    .unwrap_or_default();
                n == 2000 && link.contains("master_link_status:up")
            }
        },
    )
    .await;
    let v: i64 = sc.get("from-engine999").await.unwrap();
    assert_eq!(v, 999);
    e.stop().await;
}

/// A replica dials its master by IP, which a pod's certificate does not name: the master is
/// verified by its chain to the CA (as Redis does), not by name; a master whose certificate
/// is from another CA is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_verifies_its_master_by_chain_not_by_name() {
    let dir = temp_dir("tls-repl-chain");
    let ca = make_ca(&dir, "ca");
    let other = make_ca(&dir, "other");
    let pod_name = "DNS:cache-a.cache-headless.shop.svc";
    let master_leaf = tls_support::make_leaf_for(&dir, &ca, "master", pod_name);
    let forged_leaf = tls_support::make_leaf_for(&dir, &other, "forged", pod_name);
    let r_leaf = make_leaf(&dir, &ca, "replica");
    let client = make_leaf(&dir, &ca, "client");
    // The test writes to the masters in plaintext on their loopback ports (no client here
    // could verify a certificate that names only a cluster DNS name).
    let (m_lo, f_lo) = (free_port().to_string(), free_port().to_string());
    let (m, m_port) = start_tls_engine(
        s(&master_leaf.crt),
        s(&master_leaf.key),
        s(&ca.crt),
        &[("tls-auth-clients", "no"), ("loopback-port", &m_lo)],
    )
    .await;
    let (forged, forged_port) = start_tls_engine(
        s(&forged_leaf.crt),
        s(&forged_leaf.key),
        s(&other.crt),
        &[("tls-auth-clients", "no"), ("loopback-port", &f_lo)],
    )
    .await;
    let (r, r_port) = start_tls_engine(
        s(&r_leaf.crt),
        s(&r_leaf.key),
        s(&ca.crt),
        &[("tls-replication", "yes")],
    )
    .await;
    let mut rc = tls_conn(r_port, &ca.crt, Some(&client)).await.unwrap();
    let info = |mut c: redis::aio::MultiplexedConnection| async move {
        let i: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut c)
            .await
            .unwrap();
        i
    };

    // The forged master first: the link must fail on the certificate.
    let mut fc = support::redis_conn_to(&format!("redis://127.0.0.1:{f_lo}/"))
        .await
        .unwrap();
    let _: () = fc.set("forged", 1).await.unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(forged_port)
        .query_async(&mut rc)
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the link to a master from another CA fails",
        || {
            let rc = rc.clone();
            async move {
                info(rc)
                    .await
                    .lines()
                    .any(|l| l.starts_with("link_down_reason:") && l.contains("certificate"))
            }
        },
    )
    .await;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut rc).await.unwrap();
    assert_eq!(n, 0);

    // The real master: named only by a DNS name, dialled by IP, followed.
    let mut mc = support::redis_conn_to(&format!("redis://127.0.0.1:{m_lo}/"))
        .await
        .unwrap();
    let _: () = mc.set("real", 1).await.unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(m_port)
        .query_async(&mut rc)
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), "the replica follows", || {
        let rc = rc.clone();
        async move { info(rc).await.contains("master_link_status:up") }
    })
    .await;
    wait_for(Duration::from_secs(30), "the key arrives", || {
        let mut rc = rc.clone();
        async move {
            let v: Option<i64> = rc.get("real").await.unwrap();
            v == Some(1)
        }
    })
    .await;
    for h in [m, forged, r] {
        h.stop().await;
    }
}
