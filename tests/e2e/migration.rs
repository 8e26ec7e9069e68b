//! Issue 15 end to end: a live Redis migrated into a new pair. A stock redis-server (Debian's,
//! the reference) runs on this host at `E2E_SOURCE_HOST`, an address the cluster's pods reach,
//! with a password and a dataset of every basic type (some keys with a TTL) and a stream; a
//! writer of unique keys writes to it. A pair is created with `bootstrap.migrateFrom` naming
//! it; once both engines follow the source (phase `Migrating`), a write through the pair's
//! read-write Service must be refused (`READONLY`). Then the cutover is requested the way
//! `kubectl redispair migrate cutover` does; the writer, whose writes to the paused source
//! time out, moves to the pair's read-write Service. Checked at the end: the migration
//! `Completed`, the pair Ready (master and replica linked, on two nodes), every dataset key
//! equal on the pair to the source (values, types, TTL kept), every write acknowledged by the
//! source or by the pair present on the pair, and both engines holding the same number of keys.
//! Figures printed: the first sync, the cutover (request → first write acknowledged by the
//! pair).
//!
//! The TLS variant (`migrateFrom.tls`): the source also serves TLS on a second port with a
//! certificate from a CA of the test's own (openssl) that names only a DNS name (the pods dial
//! its IP: `serverName`), and requires client certificates (redis-server's default
//! `tls-auth-clients yes`: `clientCertSecret`); the pair follows and probes that port only, the
//! test's own writer and checks use the plaintext one. Does I/O: a redis-server process, the
//! Kubernetes API, Redis over TCP, openssl.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redispair::api::{BootstrapSpec, MigrationPhase, SecretKeyRef};

use crate::acked_writes;
use crate::cluster::{self, poll, PairUnderTest};
use crate::env::E2eEnv;
use crate::failover::READY;
use crate::writer::connect;

const SOURCE_PASSWORD: &str = "migrate-source-secret";
const STRINGS: usize = 3000;
const COLLECTIONS: usize = 300;

/// The stock redis-server, stopped (SIGKILL) and its directory removed when dropped.
struct SourceServer {
    child: Child,
    dir: std::path::PathBuf,
    host: String,
    port: u16,
    /// The TLS variant: the TLS port and the certificates' files.
    tls: Option<SourceTls>,
}

/// The TLS variant's certificates: the source's CA, and a client certificate it signed.
struct SourceTls {
    port: u16,
    ca: crate::tls_support::Ca,
    client: crate::tls_support::Leaf,
}

/// The only name on the source's certificate (the pods dial its IP).
const SOURCE_TLS_NAME: &str = "old-redis.migration.example";

fn free_port_on(host: &str) -> u16 {
    // A free port on that address (the listener is closed before redis-server binds it).
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("cannot bind {host}: is E2E_SOURCE_HOST this host's? {e}"))
        .port()
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl SourceServer {
    async fn start(host: &str, tls: bool) -> SourceServer {
        let port = free_port_on(host);
        let dir = std::env::temp_dir().join(format!("redispair-e2e-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut tls_args = Vec::new();
        let tls = tls.then(|| {
            let ca = crate::tls_support::make_ca(&dir, "source-ca");
            let leaf = crate::tls_support::make_leaf_for(
                &dir,
                &ca,
                "source",
                &format!("DNS:{SOURCE_TLS_NAME}"),
            );
            let client = crate::tls_support::make_leaf(&dir, &ca, "migrator");
            let port = free_port_on(host);
            tls_args = vec![
                "--tls-port".to_string(),
                port.to_string(),
                "--tls-cert-file".to_string(),
                leaf.crt.display().to_string(),
                "--tls-key-file".to_string(),
                leaf.key.display().to_string(),
                "--tls-ca-cert-file".to_string(),
                ca.crt.display().to_string(),
                // Redis's default, said aloud: the pair must present a certificate.
                "--tls-auth-clients".to_string(),
                "yes".to_string(),
            ];
            SourceTls { port, ca, client }
        });
        let child = Command::new("redis-server")
            .args(["--bind", host, "--port", &port.to_string()])
            .args(&tls_args)
            .args(["--requirepass", SOURCE_PASSWORD])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package) must be installed");
        let s = SourceServer {
            child,
            dir,
            host: host.to_string(),
            port,
            tls,
        };
        let up = poll(Duration::from_secs(20), || async {
            let mut c = s.connect().await.ok()?;
            redis::cmd("PING").query_async::<String>(&mut c).await.ok()
        })
        .await;
        assert!(up.is_some(), "redis-server on {host}:{port} did not answer");
        s
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        connect(&self.host, self.port, SOURCE_PASSWORD).await
    }
}

/// Every basic type, some keys with a TTL, and a stream.
async fn load_dataset(c: &mut MultiplexedConnection) {
    let mut p = redis::pipe();
    for i in 0..STRINGS {
        p.set(format!("ds:s:{i}"), format!("value-{i}")).ignore();
        if i % 10 == 0 {
            p.expire(format!("ds:s:{i}"), 3600).ignore();
        }
    }
    for i in 0..COLLECTIONS {
        for j in 0..20 {
            p.hset(format!("ds:h:{i}"), format!("f{j}"), j).ignore();
            p.rpush(format!("ds:l:{i}"), format!("e{j}")).ignore();
            p.sadd(format!("ds:set:{i}"), format!("m{j}")).ignore();
            p.zadd(format!("ds:z:{i}"), format!("m{j}"), j as f64 * 1.5)
                .ignore();
        }
    }
    for j in 0..100 {
        p.cmd("XADD")
            .arg("ds:stream")
            .arg("*")
            .arg("n")
            .arg(j)
            .ignore();
    }
    let () = p.query_async(c).await.expect("loading the dataset");
}

/// A key's value in a form that compares equal on two servers (set and hash order is not
/// part of the value), and whether it has a TTL.
async fn value_of(c: &mut MultiplexedConnection, key: &str) -> (String, String, bool) {
    let t: String = redis::cmd("TYPE").arg(key).query_async(c).await.unwrap();
    let v = match t.as_str() {
        "string" => format!("{:?}", c.get::<_, Option<String>>(key).await.unwrap()),
        "list" => format!(
            "{:?}",
            c.lrange::<_, Vec<String>>(key, 0, -1).await.unwrap()
        ),
        "hash" => format!(
            "{:?}",
            c.hgetall::<_, BTreeMap<String, String>>(key).await.unwrap()
        ),
        "set" => {
            let mut m: Vec<String> = c.smembers(key).await.unwrap();
            m.sort();
            format!("{m:?}")
        }
        "zset" => format!(
            "{:?}",
            c.zrange_withscores::<_, Vec<(String, String)>>(key, 0, -1)
                .await
                .unwrap()
        ),
        "stream" => format!(
            "{:?}",
            redis::cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .query_async::<redis::Value>(c)
                .await
                .unwrap()
        ),
        other => format!("unexpected type {other}"),
    };
    let ttl: i64 = c.pttl(key).await.unwrap();
    (t, v, ttl > 0)
}

async fn all_keys(c: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(c)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

/// Where the migration writer's writes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Source,
    Pair,
}

#[derive(Default)]
struct MoveLog {
    /// (key's seq, target, when acknowledged)
    acks: Vec<(u64, Target, Instant)>,
    source_errors: u64,
    pair_errors: u64,
    last_error: String,
}

/// The application under migration: `SET mig:<run>:<seq> <seq>` to the source until the
/// cutover was requested and a write to the source fails (the pause makes it wait past the
/// 2 s response timeout; its connection is dropped, so Redis never runs it), then to the
/// pair's read-write Service, reconnecting on any error (`READONLY` until the promotion).
struct MovingWriter {
    log: Arc<Mutex<MoveLog>>,
    stop: Arc<AtomicBool>,
    cutover: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn move_key(seq: u64) -> String {
    format!("{}mig:{seq}", crate::writer::key_prefix())
}

impl MovingWriter {
    fn start(source: (String, u16), pair: (String, u16, String)) -> MovingWriter {
        let log = Arc::new(Mutex::new(MoveLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let cutover = Arc::new(AtomicBool::new(false));
        let (l, s, cut) = (log.clone(), stop.clone(), cutover.clone());
        let task = tokio::spawn(async move {
            let mut target = Target::Source;
            let mut conn: Option<MultiplexedConnection> = None;
            let mut seq = 0u64;
            while !s.load(Ordering::SeqCst) {
                seq += 1;
                if conn.is_none() {
                    let c = match target {
                        Target::Source => connect(&source.0, source.1, SOURCE_PASSWORD).await,
                        Target::Pair => connect(&pair.0, pair.1, &pair.2).await,
                    };
                    match c {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            note_error(&l, target, e);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let r: redis::RedisResult<()> = c.set(move_key(seq), seq).await;
                match r {
                    Ok(()) => {
                        l.lock().unwrap().acks.push((seq, target, Instant::now()));
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    Err(e) => {
                        note_error(&l, target, e);
                        conn = None;
                        if target == Target::Source && cut.load(Ordering::SeqCst) {
                            target = Target::Pair;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        MovingWriter {
            log,
            stop,
            cutover,
            task,
        }
    }

    fn acked(&self, target: Target) -> usize {
        self.log
            .lock()
            .unwrap()
            .acks
            .iter()
            .filter(|a| a.1 == target)
            .count()
    }

    async fn finish(self) -> MoveLog {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer task");
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn note_error(l: &Mutex<MoveLog>, target: Target, e: redis::RedisError) {
    let mut l = l.lock().unwrap();
    match target {
        Target::Source => l.source_errors += 1,
        Target::Pair => l.pair_errors += 1,
    }
    l.last_error = e.to_string();
}

/// `tls`: the pair migrates from the source's TLS port (`migrateFrom.tls`), see the module's
/// doc.
pub async fn run_migration_case(name: &str, tls: bool) {
    let env = E2eEnv::from_env();
    let Some(host) = env.source_host.clone() else {
        eprintln!("{name}: skipped: E2E_SOURCE_HOST is not set (an address of this host that pods reach; hack/e2e.sh sets it for the local cluster)");
        return;
    };
    let client = cluster::client(&env).await;
    cluster::assert_operator_image(&client, &env).await;

    // --- the source: a stock redis-server with a dataset and a writer ---------------------
    let source = SourceServer::start(&host, tls).await;
    let mut src = source.connect().await.expect("connecting to the source");
    load_dataset(&mut src).await;
    let src_version: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut src)
        .await
        .unwrap();
    eprintln!(
        "{name}: source {}:{} ({}) holds {} keys",
        source.host,
        source.port,
        src_version
            .lines()
            .find(|l| l.starts_with("redis_version"))
            .unwrap_or("?"),
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut src)
            .await
            .unwrap()
    );

    // --- the pair, bootstrapped from it --------------------------------------------------
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &env.namespace);
    let secret_name = format!("{name}-source");
    let _ = secrets.delete(&secret_name, &Default::default()).await;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name},
        "stringData": {"password": SOURCE_PASSWORD}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the source's password Secret");
    // The TLS variant: the source's CA and the client certificate as Secrets.
    let mut tls_secrets = Vec::new();
    if let Some(t) = &source.tls {
        let read = |p: &std::path::Path| {
            k8s_openapi::ByteString(std::fs::read(p).expect("reading a certificate file"))
        };
        for (secret_name, data) in [
            (
                format!("{name}-source-ca"),
                vec![("ca.crt", read(&t.ca.crt))],
            ),
            (
                format!("{name}-source-client"),
                vec![
                    ("tls.crt", read(&t.client.crt)),
                    ("tls.key", read(&t.client.key)),
                ],
            ),
        ] {
            let _ = secrets.delete(&secret_name, &Default::default()).await;
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(secret_name.clone()),
                    ..Default::default()
                },
                data: Some(data.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .expect("creating a source TLS Secret");
            tls_secrets.push(secret_name);
        }
    }
    let spec_host = host.clone();
    let spec_port = source.tls.as_ref().map_or(source.port, |t| t.port);
    let spec_tls = source.tls.as_ref().map(|_| {
        serde_json::json!({
            "caSecret": format!("{name}-source-ca"),
            "clientCertSecret": format!("{name}-source-client"),
            "serverName": SOURCE_TLS_NAME,
        })
    });
    let pw_name = secret_name.clone();
    let pair = PairUnderTest::create_with(&client, &env, name, move |p| {
        p.spec.bootstrap = Some(BootstrapSpec {
            migrate_from: Some(
                serde_json::from_value(serde_json::json!({
                    "host": spec_host,
                    "port": spec_port,
                    "pauseSeconds": 20,
                    "tls": spec_tls,
                }))
                .unwrap(),
            ),
            ..Default::default()
        });
        if let Some(m) = p
            .spec
            .bootstrap
            .as_mut()
            .and_then(|b| b.migrate_from.as_mut())
        {
            m.password_secret = Some(SecretKeyRef {
                name: pw_name,
                key: "password".into(),
            });
        }
    })
    .await;
    let created = Instant::now();
    let stored = pair.pairs.get(&pair.name).await.unwrap();
    assert!(
        stored.spec.bootstrap.is_some(),
        "the API server dropped spec.bootstrap: the installed CRD is older than crds/redispair.yaml"
    );

    // The read-write Service is created by the operator's first pass.
    let rw_ip = pair
        .expect(
            "the read-write Service",
            Duration::from_secs(60),
            || async {
                let s = pair.services.get_opt(&pair.name).await.ok()??;
                s.spec?
                    .cluster_ip
                    .filter(|ip| !ip.is_empty() && ip != "None")
            },
        )
        .await;
    let writer = MovingWriter::start(
        (source.host.clone(), source.port),
        (rw_ip.clone(), 6379, pair.password.clone()),
    );
    pair.expect(
        "writes acknowledged by the source",
        Duration::from_secs(30),
        || async { (writer.acked(Target::Source) >= 200).then_some(()) },
    )
    .await;

    // Both engines follow the source, the master's link is up and it is close behind.
    let pods = pair.pod_names();
    let following = pair
        .expect(
            "phase Migrating with both engines following the source",
            READY,
            || async {
                let s = pair.status().await?;
                let m = s.migration.clone()?;
                let both = s.phase.as_deref() == Some("Migrating")
                    && m.phase == MigrationPhase::Following
                    && m.link_up
                    && m.lag_bytes.is_some_and(|l| l < 1_000_000);
                if !both {
                    return None;
                }
                // The other engine follows the source too (INFO from its pod IP).
                for p in &pods {
                    let ip = pair.pod_ip(p).await?;
                    let mut c = connect(&ip, 6379, &pair.password).await.ok()?;
                    let info: String = redis::cmd("INFO")
                        .arg("replication")
                        .query_async(&mut c)
                        .await
                        .ok()?;
                    let ok = info.contains("role:slave")
                        && info.contains(&format!("master_host:{host}"))
                        && info.contains(&format!("master_port:{spec_port}"))
                        && info.contains("master_link_status:up");
                    if !ok {
                        return None;
                    }
                }
                Some(m)
            },
        )
        .await;
    eprintln!(
        "{name}: both engines follow the source{} {:.1} s after the pair was created (master {:?}, lag {:?} bytes)",
        if tls { " over TLS" } else { "" },
        created.elapsed().as_secs_f64(),
        following.master,
        following.lag_bytes
    );
    if tls {
        // The operator reads the source over TLS too (its offset is in status), and says the
        // source is verified.
        assert!(following.source_offset.is_some(), "{following:?}");
        assert!(following.source_error.is_none(), "{following:?}");
        let s = pair.status().await.expect("status");
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == "MigrationSourceVerified")
            .expect("the MigrationSourceVerified condition");
        assert_eq!(c.status, "True", "{c:?}");
        // The source saw two replicas, both on its TLS port (its plaintext port has only
        // this test's clients).
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut src)
            .await
            .unwrap();
        assert!(info.contains("connected_slaves:2"), "{info}");
    }

    // Writes through the pair's Services are refused while it follows the source.
    // The engines answer on their pod IPs before their pods are Ready (the readiness probe's
    // period) and the Service's endpoints follow readiness: until then a connect to the
    // ClusterIP finds no endpoint (a dropped SYN, a timeout). Wait for it, with a deadline.
    let mut rw = poll(Duration::from_secs(60), || async {
        connect(&rw_ip, 6379, &pair.password).await.ok()
    })
    .await
    .expect("the read-write Service did not accept a connection within 60 s of both engines following the source");
    let refused: redis::RedisResult<()> = rw.set(format!("{name}:diverge"), 1).await;
    let err = refused.expect_err("a write through the read-write Service while migrating");
    assert!(
        err.to_string().to_uppercase().contains("READONLY"),
        "write while migrating refused with READONLY, got: {err}"
    );
    // Reads are served (the dataset is there already).
    let v: Option<String> = rw.get("ds:s:7").await.unwrap();
    assert_eq!(v.as_deref(), Some("value-7"));

    // --- cutover, as `kubectl redispair migrate cutover` writes it ------------------------
    let rp = pair.pairs.get(&pair.name).await.unwrap();
    let intent =
        redispair::plugin::intent::migrate_cutover(&rp, k8s_openapi::jiff::Timestamp::now())
            .expect("the plugin accepts a cutover while following");
    writer.cutover.store(true, Ordering::SeqCst);
    let requested = Instant::now();
    pair.pairs
        .patch(
            &pair.name,
            &PatchParams::default(),
            &Patch::Merge(&intent.patch),
        )
        .await
        .expect("annotating the pair for the cutover");
    pair.expect(
        "writes acknowledged by the pair after the cutover",
        Duration::from_secs(90),
        || async { (writer.acked(Target::Pair) >= 200).then_some(()) },
    )
    .await;
    let healthy = pair
        .wait_healthy("the pair Ready after the cutover", READY)
        .await;
    let status = healthy.status.clone();
    let m = status.migration.clone().expect("status.migration");
    assert_eq!(m.phase, MigrationPhase::Completed, "{m:?}");
    assert!(status.term >= 1);
    let log = writer.finish().await;
    let last_source = log
        .acks
        .iter()
        .filter(|a| a.1 == Target::Source)
        .map(|a| a.2)
        .max()
        .unwrap();
    let first_pair = log
        .acks
        .iter()
        .filter(|a| a.1 == Target::Pair)
        .map(|a| a.2)
        .min()
        .unwrap();
    eprintln!(
        "{name}: cutover: last write acknowledged by the source {:.2} s after the request, first by the pair {:.2} s after it (writes blocked {:.2} s); master {} term {}",
        last_source.saturating_duration_since(requested).as_secs_f64(),
        first_pair.saturating_duration_since(requested).as_secs_f64(),
        first_pair.saturating_duration_since(last_source).as_secs_f64(),
        healthy.master,
        status.term
    );
    // --- checks ------------------------------------------------------------------------
    let mut master = connect(&rw_ip, 6379, &pair.password).await.unwrap();
    // Every write either side acknowledged is in the pair.
    let acked: Vec<(String, u64)> = log.acks.iter().map(|a| (move_key(a.0), a.0)).collect();
    let lost = acked_writes::find_lost(&mut master, &acked).await.unwrap();
    eprintln!(
        "{name}: {} ({} by the source, {} by the pair)",
        lost.summary(),
        log.acks.iter().filter(|a| a.1 == Target::Source).count(),
        log.acks.iter().filter(|a| a.1 == Target::Pair).count()
    );
    assert!(lost.lost.is_empty(), "{}", lost.summary());
    // The dataset, key by key.
    let keys = all_keys(&mut src, "ds:*").await;
    assert_eq!(keys.len(), STRINGS + 4 * COLLECTIONS + 1);
    let mut differ = Vec::new();
    for k in &keys {
        let (a, b) = (value_of(&mut src, k).await, value_of(&mut master, k).await);
        if a != b {
            differ.push(format!("{k}: source {a:?}, pair {b:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} dataset keys differ, the first: {:?}",
        differ.len(),
        keys.len(),
        &differ[..differ.len().min(3)]
    );
    // The replica holds the same keys as the master once it caught up.
    let replica_ip = pair.pod_ip(&healthy.replica).await.unwrap();
    let replica = connect(&replica_ip, 6379, &pair.password).await.unwrap();
    let master_keys: i64 = redis::cmd("DBSIZE").query_async(&mut master).await.unwrap();
    pair.expect(
        "the replica holds as many keys as the master",
        Duration::from_secs(30),
        || async {
            let n: i64 = redis::cmd("DBSIZE")
                .query_async(&mut replica.clone())
                .await
                .ok()?;
            (n == master_keys).then_some(())
        },
    )
    .await;
    eprintln!(
        "{name}: {} dataset keys equal on the pair, {master_keys} keys on master and replica",
        keys.len()
    );
    // The plugin refuses a second cutover.
    let rp = pair.pairs.get(&pair.name).await.unwrap();
    assert!(
        redispair::plugin::intent::migrate_cutover(&rp, k8s_openapi::jiff::Timestamp::now())
            .is_err()
    );

    pair.delete().await;
    let _ = secrets.delete(&secret_name, &Default::default()).await;
    for s in &tls_secrets {
        let _ = secrets.delete(s, &Default::default()).await;
    }
    let _ = secrets
        .delete(&format!("{name}-password"), &Default::default())
        .await;
    drop(source);
}
