//! The operator driving two real engines through a failover, on a real kube-apiserver with no
//! kubelet: the test plays the kubelet's part (it runs the engines as processes on 127.0.0.2
//! and 127.0.0.3 and writes the pods' status), the operator runs in-process. Checks: the
//! initial election and Service routing, then `kill -9` of the master under a writer of unique
//! keys: the read-write Service moves to the replica, every acknowledged key is read back from
//! the new master (semi-sync: none lost; `tests/acked_writes`), and the old master rejoins as a
//! replica in the new term. Prints the failover seconds (a figure;
//! the assertion is a generous deadline). Does I/O: processes, sockets, the Kubernetes API.
//!
//! The engine binary is `REDISPAIR_ENGINE_BIN` when set, else this crate's own.

mod acked_writes;
mod operator_support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use operator_support::*;
use redispair::api::{RedisPair, RedisPairStatus};
use redispair::operator::build::pod::{build_engine_args, ADMIN_PASSWORD_FILE};
use redispair::operator::validate::validate;

const T: Duration = Duration::from_secs(30);

fn engine_bin() -> String {
    std::env::var("REDISPAIR_ENGINE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_redispair-engine").to_string())
}

struct Engine {
    child: Child,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start an engine with the pod's own command line, except the address and data directory
/// (and `requirepass-file`, see below; the admin password file is the harness's copy).
fn start_engine(args: &[String], ip: &'static str, dir: &std::path::Path) -> Engine {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().expect("flags come in pairs").clone();
        let value = match flag.as_str() {
            "--bind" => ip.to_string(),
            "--dir" => dir.display().to_string(),
            // The test's writers connect without a password (the replica link authenticates
            // as the admin user either way).
            "--requirepass-file" => continue,
            _ => value,
        };
        out.push(flag.clone());
        out.push(value);
    }
    let child = Command::new(engine_bin())
        .args(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine starts");
    Engine { child }
}

async fn conn(ip: &str, user: Option<(&str, &str)>) -> Option<redis::aio::MultiplexedConnection> {
    let mut url = format!("redis://{ip}:6379");
    if let Some((u, p)) = user {
        url = format!("redis://{u}:{p}@{ip}:6379");
    }
    let client = redis::Client::open(url).ok()?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .ok()
}

/// Wait up to `timeout` until the read-write Service `cache` selects `pod`.
async fn wait_rw_service_on(services: &Api<Service>, pod: &str, timeout: Duration) {
    wait_for(
        &format!("the read-write Service on {pod}"),
        timeout,
        || async { (selected(services, "cache").await.as_deref() == Some(pod)).then_some(()) },
    )
    .await;
}

/// SET `k0`..`k{n-1}` to their index on the engine at `ip`.
async fn set_keys(ip: &str, n: usize) {
    let mut c = conn(ip, None).await.unwrap();
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

/// Play the kubelet: the pod runs at `ip` and is Ready (or not).
async fn set_pod_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let patch = serde_json::json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("pod status");
}

async fn selected(services: &Api<Service>, name: &str) -> Option<String> {
    let s = services.get_opt(name).await.ok()??;
    s.spec?.selector?.get("redispair.io/pod").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_fails_over_without_losing_acknowledged_writes() {
    let (ip_a, ip_b) = ("127.0.0.2", "127.0.0.3");
    let mut h = harness("rp-failover", "semi-sync", ip_a, ip_b, "127.0.0.4").await;
    let (pairs, services) = (h.pairs.clone(), h.services.clone());

    // Initial election: cache-a (tie broken by name), cache-b its replica, Services follow.
    let status = pairs.get("cache").await.unwrap().status.unwrap();
    assert_eq!(status.current_master.as_deref(), Some("cache-a"));
    assert_eq!(status.replica.as_deref(), Some("cache-b"));
    assert_eq!(
        selected(&services, "cache").await.as_deref(),
        Some("cache-a")
    );
    wait_for("cache-ro on the replica", T, || async {
        (selected(&services, "cache-ro").await.as_deref() == Some("cache-b")).then_some(())
    })
    .await;

    // A writer of unique keys through "the Service" (the pod it selects; no kube-proxy here).
    let (writer, acked) = writer_under_way(&services, ip_a, ip_b).await;

    // kill -9 the master; nothing tells Kubernetes (its pod stays Ready): the operator's own
    // probes and the replica's link must detect it.
    let killed_at = Instant::now();
    drop(h.engines.remove(0));
    let acked_at_kill = acked_count(&acked);
    wait_rw_service_on(&services, "cache-b", Duration::from_secs(20)).await;
    let failover = killed_at.elapsed();
    println!(
        "figure: master kill -9 → Service on the new master: {:.2} s",
        failover.as_secs_f64()
    );
    let status = wait_for("status after failover", T, || async {
        let s = pairs.get("cache").await.ok()?.status?;
        (s.current_master.as_deref() == Some("cache-b")
            && s.failover.is_none()
            && s.last_failover.is_some())
        .then_some(s)
    })
    .await;
    assert_eq!(
        status.term, 2,
        "the initial election is term 1, the failover term 2"
    );
    let lf = status.last_failover.unwrap();
    assert_eq!((lf.from.as_str(), lf.to.as_str()), ("cache-a", "cache-b"));
    println!(
        "figure: operator-measured failover duration: {:.2} s",
        lf.duration_seconds
    );

    // Writes continue on the new master; no acknowledged write was lost.
    stop_writer_and_assert_no_acknowledged_write_lost(
        writer,
        &acked,
        acked_at_kill,
        "writes on the new master",
        ip_b,
    )
    .await;

    // The old master comes back on its data: it is demoted into a replica of the new term.
    let _a2 = start_engine(&h.args, ip_a, &h.dirs[0]);
    wait_for(
        "the old master rejoins as a replica",
        Duration::from_secs(30),
        || async {
            let s = pairs.get("cache").await.ok()?.status?;
            let replicating = condition_true(&s, "Replicating");
            (replicating
                && s.replica.as_deref() == Some("cache-a")
                && s.phase.as_deref() == Some("Ready"))
            .then_some(())
        },
    )
    .await;
    let mut ca = conn(ip_a, Some(("redispair-admin", &h.admin_pw)))
        .await
        .unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut ca).await.unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    h.teardown().await;
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "redispair-failover-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether the engine binary has the admin commands (started on `ip`).
async fn engine_supported(ip: &'static str) -> bool {
    let dir = tempdir("probe");
    let mut probe = Command::new(engine_bin())
        .args(["--bind", ip, "--port", "6379", "--dir"])
        .arg(&dir)
        .args(["--admin-user", "a", "--admin-password", "b"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine starts");
    let deadline = Instant::now() + T;
    let supported = loop {
        if probe.try_wait().ok().flatten().is_some() {
            break false;
        }
        if let Some(mut c) = conn(ip, Some(("a", "b"))).await {
            let r: redis::RedisResult<redis::Value> = redis::cmd("REDISPAIR")
                .arg("STATE")
                .query_async(&mut c)
                .await;
            break r.is_ok();
        }
        assert!(Instant::now() < deadline, "the probe engine never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = probe.kill();
    let _ = probe.wait();
    supported
}

/// Deleting the master pod (what `kubectl delete pod` does; no kubelet here, so the pod goes
/// at once) fails over without waiting for any detection window; the recreated pod's engine,
/// still holding the old master's data, is demoted into a replica of the new term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_pod_deleted_fails_over_at_once_and_the_new_pod_rejoins() {
    let (ip_a, ip_b) = ("127.0.0.5", "127.0.0.6");
    let h = harness("rp-poddel", "semi-sync", ip_a, ip_b, "127.0.0.7").await;
    let (pairs, pods, services) = (h.pairs.clone(), h.pods.clone(), h.services.clone());
    // Some writes that must survive.
    set_keys(ip_a, 100).await;

    let uid_before = pods.get("cache-a").await.unwrap().metadata.uid;
    let deleted_at = Instant::now();
    pods.delete("cache-a", &Default::default()).await.unwrap();
    wait_rw_service_on(&services, "cache-b", Duration::from_secs(20)).await;
    println!(
        "figure: master pod deleted → Service on the new master: {:.2} s",
        deleted_at.elapsed().as_secs_f64()
    );
    let mut cb = conn(ip_b, None).await.unwrap();
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut cb).await.unwrap();
    assert_eq!(n, 100, "every acknowledged write is on the new master");

    // The operator recreates cache-a; "the kubelet" starts it on the same address, where the
    // old engine still runs with its data: it is demoted into a replica of term 2.
    let recreated = wait_for("cache-a recreated", T, || async {
        let p = pods.get_opt("cache-a").await.ok()??;
        (p.metadata.uid != uid_before).then_some(p)
    })
    .await;
    assert_eq!(
        recreated.metadata.labels.unwrap()["redispair.io/role"],
        "replica"
    );
    set_pod_status(&pods, "cache-a", ip_a, true).await;
    let status = wait_for("cache-a replicating in term 2", T, || async {
        let s = pairs.get("cache").await.ok()?.status?;
        let replicating = condition_true(&s, "Replicating");
        (replicating && s.phase.as_deref() == Some("Ready")).then_some(s)
    })
    .await;
    assert_eq!(status.term, 2);
    assert_eq!(status.current_master.as_deref(), Some("cache-b"));
    assert!(status.last_failover.unwrap().reason.contains("cache-a"));
    h.teardown().await;
}

/// A pair whose engines run on `ip_a` / `ip_b`, set up to phase Ready with cache-a master.
struct Harness {
    client: Client,
    ns: String,
    operator: tokio::task::JoinHandle<()>,
    pairs: Api<RedisPair>,
    pods: Api<Pod>,
    services: Api<Service>,
    admin_pw: String,
    /// The admin Secret's value in a file, where the pod has it mounted.
    admin_file: std::path::PathBuf,
    engines: Vec<Engine>,
    /// The engines' command line and data directories (cache-a, cache-b), to restart them.
    args: Vec<String>,
    dirs: [std::path::PathBuf; 2],
}

/// The contract pair (`contract_manifest`) in replication mode `mode`. `probe_ip`: a free
/// loopback address on which the engine binary is first checked to have the admin commands
/// the operator drives.
async fn harness(
    prefix: &str,
    mode: &str,
    ip_a: &'static str,
    ip_b: &'static str,
    probe_ip: &'static str,
) -> Harness {
    assert!(
        engine_supported(probe_ip).await,
        "{} did not answer REDISPAIR STATE",
        engine_bin()
    );
    let (client, ns, operator) =
        operator_in_fresh_namespace(prefix, None, "operator-failover-test").await;
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(&contract_manifest(mode)).unwrap();
    pairs.create(&PostParams::default(), &pair).await.unwrap();
    for p in ["cache-a", "cache-b"] {
        wait_for(p, T, || async { pods.get_opt(p).await.ok()? }).await;
    }
    let password = wait_for("cache-password", T, || async {
        secrets.get_opt("cache-password").await.ok()?
    })
    .await;
    let admin = wait_for("cache-admin", T, || async {
        secrets.get_opt("cache-admin").await.ok()?
    })
    .await;
    let admin_pw = String::from_utf8(admin.data.clone().unwrap()["password"].0.clone()).unwrap();
    let pair = pairs.get("cache").await.unwrap();
    let v = validate(&pair, Some(&password), Some(&admin), None).unwrap();
    // The mounted admin Secret: the same value in a file of the test's own.
    let admin_file = tempdir(&format!("{prefix}-secrets")).join("admin-password");
    std::fs::write(&admin_file, &admin_pw).unwrap();
    let args: Vec<String> = build_engine_args(&v)
        .into_iter()
        .map(|a| match a.as_str() {
            ADMIN_PASSWORD_FILE => admin_file.display().to_string(),
            _ => a,
        })
        .collect();
    let dirs = [
        tempdir(&format!("{prefix}-a")),
        tempdir(&format!("{prefix}-b")),
    ];
    let engines = vec![
        start_engine(&args, ip_a, &dirs[0]),
        start_engine(&args, ip_b, &dirs[1]),
    ];
    set_pod_status(&pods, "cache-a", ip_a, true).await;
    set_pod_status(&pods, "cache-b", ip_b, true).await;
    wait_for("phase Ready with cache-a master", T, || async {
        let s = pairs.get("cache").await.ok()?.status?;
        (s.phase.as_deref() == Some("Ready") && s.current_master.as_deref() == Some("cache-a"))
            .then_some(())
    })
    .await;
    Harness {
        client,
        ns,
        operator,
        pairs,
        pods,
        services,
        admin_pw,
        admin_file,
        engines,
        args,
        dirs,
    }
}

impl Harness {
    /// The (reason, type) of every Event in the test namespace.
    async fn event_reasons(&self) -> Vec<(String, String)> {
        use k8s_openapi::api::core::v1::Event;
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        events
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|e| Some((e.reason?, e.type_.unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stop the engines and the operator, delete the namespace.
    async fn teardown(self) {
        drop(self.engines);
        self.operator.abort();
        delete_namespace(&self.client, &self.ns).await;
    }
}

/// The writer's acknowledged writes: the sequence numbers of its keys (`acked_writes::key`
/// with prefix "" and writer 0).
type Acked = Arc<Mutex<Vec<u64>>>;

/// A writer of unique keys (`w0:<seq>` = seq, see `tests/acked_writes`) through whichever pod
/// the read-write Service selects, recording every acknowledged one.
fn unique_key_writer(
    services: Api<Service>,
    ips: [(&'static str, &'static str); 2],
    acked: Acked,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = None;
        let mut target = String::new();
        let mut seq = 0u64;
        loop {
            let pod = selected(&services, "cache").await.unwrap_or_default();
            let Some(ip) = ips.iter().find(|(p, _)| *p == pod).map(|(_, ip)| *ip) else {
                // Selects nothing: mid-failover. Pace the retries (not a sync point).
                c = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            if target != ip || c.is_none() {
                target = ip.to_string();
                c = conn(ip, None).await;
            }
            let Some(cn) = c.as_mut() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            // A new number for every attempt: a write whose outcome is unknown (timeout, cut
            // connection) may or may not land, and is never counted.
            seq += 1;
            match redis::cmd("SET")
                .arg(acked_writes::key("", 0, seq))
                .arg(seq)
                .query_async::<()>(cn)
                .await
            {
                Ok(()) => acked.lock().unwrap().push(seq),
                Err(_) => {
                    c = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
}

fn acked_count(acked: &Acked) -> usize {
    acked.lock().unwrap().len()
}

/// `unique_key_writer` on cache-a at `ip_a` and cache-b at `ip_b`, once it has had 200 writes
/// acknowledged: the writer and its record of acknowledged writes.
async fn writer_under_way(
    services: &Api<Service>,
    ip_a: &'static str,
    ip_b: &'static str,
) -> (tokio::task::JoinHandle<()>, Acked) {
    let acked = Acked::default();
    let writer = unique_key_writer(
        services.clone(),
        [("cache-a", ip_a), ("cache-b", ip_b)],
        acked.clone(),
    );
    wait_for("writes acknowledged", T, || async {
        (acked_count(&acked) >= 200).then_some(())
    })
    .await;
    (writer, acked)
}

/// Wait (`what`) until the writer has had more than 50 writes acknowledged past the first
/// `since`, stop it, and read every acknowledged key back from the new master on
/// `new_master_ip`: each must be there with its value (no acknowledged write lost).
async fn stop_writer_and_assert_no_acknowledged_write_lost(
    writer: tokio::task::JoinHandle<()>,
    acked: &Acked,
    since: usize,
    what: &str,
    new_master_ip: &str,
) {
    wait_for(what, T, || async {
        (acked_count(acked) > since + 50).then_some(())
    })
    .await;
    writer.abort();
    let _ = writer.await;
    let keys: Vec<(String, u64)> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|&seq| (acked_writes::key("", 0, seq), seq))
        .collect();
    let mut cb = conn(new_master_ip, None).await.unwrap();
    acked_writes::drop_one_if_asked(&mut cb, &keys)
        .await
        .unwrap();
    let lost = acked_writes::find_lost(&mut cb, &keys).await.unwrap();
    println!("{}", lost.summary());
    assert!(lost.lost.is_empty(), "{}", lost.summary());
}

/// Whether the status has condition `type_` with status True.
fn condition_true(s: &RedisPairStatus, type_: &str) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// What `kubectl redispair failover cache --force` does: annotate pair `cache` with request
/// `id`.
async fn request_forced_failover(pairs: &Api<RedisPair>, id: &str) {
    let force =
        serde_json::json!({"metadata": {"annotations": {"redispair.io/force-failover": id}}});
    pairs
        .patch("cache", &PatchParams::default(), &Patch::Merge(&force))
        .await
        .unwrap();
}

async fn role_of(ip: &str, admin_pw: &str) -> (String, String) {
    let mut c = conn(ip, Some(("redispair-admin", admin_pw))).await.unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut c).await.unwrap();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    };
    (text(&role[0]), role.get(1).map(text).unwrap_or_default())
}

const KUBELET_FINALIZER: &str = "redispair.io/test-kubelet";

/// `kubectl delete pod` of the master, played through: the pod turns Terminating (a finalizer
/// stands in for the kubelet, which would keep it until its containers stopped) while its
/// engine keeps running, and the test runs the pod's preStop hook as the kubelet would. In
/// async mode, where a failover may lose the last writes, the hand-over loses none: the
/// operator pauses the master, waits for the replica to apply the paused offset, promotes it,
/// switches the Service and demotes the old engine, which is what the hook waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_master_hands_over_without_losing_writes_in_async_mode() {
    let (ip_a, ip_b) = ("127.0.0.8", "127.0.0.9");
    let h = harness("rp-handover", "async", ip_a, ip_b, "127.0.0.10").await;
    let (writer, acked) = writer_under_way(&h.services, ip_a, ip_b).await;

    // The kubelet's part: hold the pod while its container runs, then delete it.
    let hold = serde_json::json!({"metadata": {"finalizers": [KUBELET_FINALIZER]}});
    h.pods
        .patch("cache-a", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    h.pods.delete("cache-a", &Default::default()).await.unwrap();
    let deleted_at = Instant::now();
    // The preStop hook, exactly as the pod runs it (but pointed at this engine's address).
    let hook = {
        let admin_file = h.admin_file.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(engine_bin())
                .args(["wait-handover", "--host", ip_a, "--port", "6379"])
                .args(["--timeout", "20", "--password-file"])
                .arg(admin_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("hook runs")
        })
    };
    let hook_status = tokio::time::timeout(Duration::from_secs(40), hook)
        .await
        .expect("the hook returns within its own bound")
        .unwrap();
    assert!(hook_status.success());
    // When the hook returns, SIGTERM would follow: the engine must already be a replica of
    // the new master.
    let (role, master) = role_of(ip_a, &h.admin_pw).await;
    assert_eq!((role.as_str(), master.as_str()), ("slave", ip_b));
    println!(
        "figure: master pod deleted → old engine demoted (hand-over): {:.2} s",
        deleted_at.elapsed().as_secs_f64()
    );
    assert_eq!(
        selected(&h.services, "cache").await.as_deref(),
        Some("cache-b")
    );
    let status = wait_for("status after the hand-over", T, || async {
        let s = h.pairs.get("cache").await.ok()?.status?;
        (s.current_master.as_deref() == Some("cache-b") && s.failover.is_none()).then_some(s)
    })
    .await;
    assert_eq!(status.term, 2);
    let lf = status.last_failover.unwrap();
    assert_eq!((lf.from.as_str(), lf.to.as_str()), ("cache-a", "cache-b"));
    assert!(lf.reason.contains("terminating"), "{}", lf.reason);

    // Writes go on at the new master, and none acknowledged by the old one was lost.
    let acked_at_switch = acked_count(&acked);
    stop_writer_and_assert_no_acknowledged_write_lost(
        writer,
        &acked,
        acked_at_switch,
        "writes on the new master",
        ip_b,
    )
    .await;

    // The kubelet finishes: the pod goes; the operator recreates it as the replica.
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    h.pods
        .patch("cache-a", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    let recreated = wait_for("cache-a recreated", T, || async {
        let p = h.pods.get_opt("cache-a").await.ok()??;
        p.metadata.deletion_timestamp.is_none().then_some(p)
    })
    .await;
    assert_eq!(
        recreated.metadata.labels.unwrap()["redispair.io/role"],
        "replica"
    );
    h.teardown().await;
}

/// `kubectl redispair failover cache --force` on a healthy pair: the operator fences the old
/// master, promotes the replica, records the request id (handled once), clears the
/// annotation and emits an Event; a second request while the replica is down is refused
/// with a Warning Event and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_failover_is_carried_out_once_and_refused_without_a_replica() {
    let (ip_a, ip_b) = ("127.0.0.11", "127.0.0.12");
    let mut h = harness("rp-force", "semi-sync", ip_a, ip_b, "127.0.0.13").await;
    set_keys(ip_a, 50).await;
    request_forced_failover(&h.pairs, "req-1").await;
    let status = wait_for("forced failover done", T, || async {
        let s = h.pairs.get("cache").await.ok()?.status?;
        (s.current_master.as_deref() == Some("cache-b")
            && s.failover.is_none()
            && s.force_failover_handled.as_deref() == Some("req-1"))
        .then_some(s)
    })
    .await;
    assert_eq!(status.term, 2);
    assert_eq!(
        selected(&h.services, "cache").await.as_deref(),
        Some("cache-b")
    );
    let mut cb = conn(ip_b, None).await.unwrap();
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut cb).await.unwrap();
    assert_eq!(
        n, 50,
        "semi-sync: every acknowledged write is on the new master"
    );
    wait_for("annotation cleared", T, || async {
        let p = h.pairs.get("cache").await.ok()?;
        (!p.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("redispair.io/force-failover"))
        .then_some(())
    })
    .await;
    // The old master rejoins as a replica of the new one (it was reachable).
    wait_for("cache-a demoted", T, || async {
        let (role, master) = role_of(ip_a, &h.admin_pw).await;
        (role == "slave" && master == ip_b).then_some(())
    })
    .await;
    wait_for("ForcedFailoverStarted event", T, || async {
        h.event_reasons()
            .await
            .iter()
            .any(|(r, _)| r == "ForcedFailoverStarted")
            .then_some(())
    })
    .await;

    // The replica (cache-a) goes down: a new forced request is refused and consumed.
    h.engines.remove(0);
    // Judged failed (probes failing for the detection window): the degrade is authorised.
    wait_for("replica judged failed", T, || async {
        let s = h.pairs.get("cache").await.ok()?.status?;
        (s.degrade_authorized_term == Some(2)).then_some(())
    })
    .await;
    request_forced_failover(&h.pairs, "req-2").await;
    let status = wait_for("request req-2 handled", T, || async {
        let s = h.pairs.get("cache").await.ok()?.status?;
        (s.force_failover_handled.as_deref() == Some("req-2")).then_some(s)
    })
    .await;
    assert_eq!(status.target_master.as_deref(), Some("cache-b"));
    assert_eq!(status.term, 2);
    wait_for("ForcedFailoverRefused warning", T, || async {
        h.event_reasons()
            .await
            .iter()
            .any(|(r, t)| r == "ForcedFailoverRefused" && t == "Warning")
            .then_some(())
    })
    .await;
    h.teardown().await;
}

/// Issue #5: editing `spec.image` rolls the pair, CloudNativePG's way. The replica pod is
/// replaced first (the test, as the kubelet, restarts its engine on its data directory), then
/// a planned switchover moves the master role to it, then the old master (now the replica) is
/// replaced the same way. One pod at a time, a writer of unique keys loses no acknowledged
/// write, and at the end both pods carry the new spec hash and the pair is Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_change_rolls_replica_first_then_switchover_then_old_master() {
    let (ip_a, ip_b) = ("127.0.0.14", "127.0.0.15");
    let mut h = harness("rp-rollout", "semi-sync", ip_a, ip_b, "127.0.0.16").await;
    let hash_of = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("redispair.io/spec-hash").cloned())
    };
    let old_hash = hash_of(&h.pods.get("cache-a").await.unwrap()).expect("pods are stamped");
    assert_eq!(
        hash_of(&h.pods.get("cache-b").await.unwrap()).as_deref(),
        Some(old_hash.as_str())
    );
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    let uid_a = uid(&h.pods.get("cache-a").await.unwrap());
    let uid_b = uid(&h.pods.get("cache-b").await.unwrap());

    let (writer, acked) = writer_under_way(&h.services, ip_a, ip_b).await;

    // The user edits the image.
    let edit = serde_json::json!({"spec": {"image": "localhost/redispair:rolled"}});
    h.pairs
        .patch("cache", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();

    // 1. The replica goes first; the master's pod is untouched meanwhile.
    let rolling = wait_for("rollout recorded on the replica", T, || async {
        let s = h.pairs.get("cache").await.ok()?.status?;
        s.rollout.filter(|r| r.pod == "cache-b")
    })
    .await;
    assert_eq!(rolling.step, redispair::api::RolloutStep::ReplacingReplica);
    let new_b = wait_for("cache-b recreated", T, || async {
        let p = h.pods.get_opt("cache-b").await.ok()??;
        (uid(&p) != uid_b).then_some(p)
    })
    .await;
    assert_eq!(uid(&h.pods.get("cache-a").await.unwrap()), uid_a);
    let new_hash = hash_of(&new_b).unwrap();
    assert_ne!(new_hash, old_hash);
    assert_eq!(
        new_b.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("localhost/redispair:rolled")
    );
    // The kubelet: the old container stops, the new one starts on the same data.
    drop(h.engines.remove(1));
    h.engines
        .push(start_engine(&h.args, ip_b, &h.dirs[1].clone()));
    set_pod_status(&h.pods, "cache-b", ip_b, true).await;

    // 2. Switchover to the replaced replica, then 3. the old master is replaced.
    wait_rw_service_on(&h.services, "cache-b", Duration::from_secs(60)).await;
    let new_a = wait_for("cache-a recreated", Duration::from_secs(60), || async {
        let p = h.pods.get_opt("cache-a").await.ok()??;
        (uid(&p) != uid_a).then_some(p)
    })
    .await;
    assert_eq!(hash_of(&new_a).as_deref(), Some(new_hash.as_str()));
    // Replaced only once the role moved away: the Service never pointed at a deleted pod.
    assert_eq!(
        selected(&h.services, "cache").await.as_deref(),
        Some("cache-b")
    );
    drop(h.engines.remove(0));
    h.engines
        .insert(0, start_engine(&h.args, ip_a, &h.dirs[0].clone()));
    set_pod_status(&h.pods, "cache-a", ip_a, true).await;

    let status = wait_for(
        "rollout finished, pair Ready",
        Duration::from_secs(60),
        || async {
            let s = h.pairs.get("cache").await.ok()?.status?;
            let replicating = condition_true(&s, "Replicating");
            (s.rollout.is_none()
                && s.phase.as_deref() == Some("Ready")
                && replicating
                && s.replica.as_deref() == Some("cache-a"))
            .then_some(s)
        },
    )
    .await;
    assert_eq!(status.current_master.as_deref(), Some("cache-b"));
    assert_eq!(status.term, 2, "one switchover");
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", "UpToDate")
    );
    for p in ["cache-a", "cache-b"] {
        assert_eq!(
            hash_of(&h.pods.get(p).await.unwrap()).as_deref(),
            Some(new_hash.as_str()),
            "{p}"
        );
    }

    // Writes go on at the new master, and none acknowledged was lost.
    let acked_now = acked_count(&acked);
    stop_writer_and_assert_no_acknowledged_write_lost(
        writer,
        &acked,
        acked_now,
        "writes after the rollout",
        ip_b,
    )
    .await;

    wait_for("rollout Events", T, || async {
        let reasons = h.event_reasons().await;
        [
            "RolloutStarted",
            "PodReplaced",
            "SwitchoverCompleted",
            "RolloutFinished",
        ]
        .iter()
        .all(|r| reasons.iter().any(|(x, _)| x == r))
        .then_some(())
    })
    .await;
    h.teardown().await;
}

/// A failover never waits on an unrelated object the API refuses. Here a ResourceQuota (one
/// pod) refuses the recreation of the deleted master's pod in every pass; the promotion of the
/// replica and the Service switch must go ahead all the same, and the refusal is reported as
/// an Event. Before, the pod create's error returned from the pass before the promotion, and
/// the pair stayed without a master for as long as the quota held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pod_create_does_not_hold_up_the_failover() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let (ip_a, ip_b) = ("127.0.0.20", "127.0.0.21");
    let h = harness("rp-quota", "semi-sync", ip_a, ip_b, "127.0.0.22").await;
    let (pods, services) = (h.pods.clone(), h.services.clone());
    set_keys(ip_a, 50).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(h.client.clone(), &h.ns);
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "one-pod"},
        "spec": {"hard": {"pods": "2"}},
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // Admission enforces a quota once the quota controller has counted what exists.
    wait_for("the quota counted", T, || async {
        let q = quotas.get("one-pod").await.ok()?;
        q.status?.used?.contains_key("pods").then_some(())
    })
    .await;
    // Two pods exist: lower the limit to one, so the deleted pod cannot be recreated.
    quotas
        .patch(
            "one-pod",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"hard": {"pods": "1"}}})),
        )
        .await
        .unwrap();
    wait_for("the quota lowered", T, || async {
        let q = quotas.get("one-pod").await.ok()?;
        let hard = q.status?.hard?;
        (hard.get("pods").map(|q| q.0.as_str()) == Some("1")).then_some(())
    })
    .await;
    pods.delete("cache-a", &Default::default()).await.unwrap();
    wait_rw_service_on(&services, "cache-b", Duration::from_secs(20)).await;
    let mut cb = conn(ip_b, None).await.unwrap();
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut cb).await.unwrap();
    assert_eq!(n, 50, "every acknowledged write is on the new master");
    // The refusal is reported (an Event of the apply category), and nothing recreated cache-a.
    wait_for("an Event about the refused pod", T, || async {
        h.event_reasons()
            .await
            .iter()
            .any(|(reason, kind)| reason.contains("Apply") && kind == "Warning")
            .then_some(())
    })
    .await;
    assert!(pods.get_opt("cache-a").await.unwrap().is_none());
    h.teardown().await;
}

/// A changed password Secret is rotated into both running engines by the operator (CONFIG SET
/// requirepass as the admin user), without a restart and without breaking replication, and
/// its version is recorded on the pods. The Secret watch triggers the pass: the pair is Ready
/// and otherwise quiet (next periodic pass in 60 s, beyond this test's deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_secret_is_rotated_into_both_engines_in_place() {
    use k8s_openapi::ByteString;
    let (ip_a, ip_b) = ("127.0.0.23", "127.0.0.24");
    let h = harness("rp-rotate", "semi-sync", ip_a, ip_b, "127.0.0.25").await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &h.ns);
    let applied = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("redispair.io/password-applied").cloned())
            .unwrap_or_default()
    };
    let before = applied(&h.pods.get("cache-a").await.unwrap());
    assert!(before.ends_with("/0"), "{before}");
    let mut s = secrets.get("cache-password").await.unwrap();
    s.data = Some([("password".to_string(), ByteString(b"rotated-pw\n".to_vec()))].into());
    s.metadata.managed_fields = None;
    secrets
        .replace("cache-password", &PostParams::default(), &s)
        .await
        .unwrap();
    // Both engines take the new password (the trailing newline is not part of it)...
    for ip in [ip_a, ip_b] {
        wait_for(&format!("requirepass on {ip}"), T, || async {
            let mut c = conn(ip, Some(("redispair-admin", &h.admin_pw))).await?;
            let v: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("requirepass")
                .query_async(&mut c)
                .await
                .ok()?;
            (v.get(1).map(String::as_str) == Some("rotated-pw")).then_some(())
        })
        .await;
    }
    // ...a client authenticates with it, and the pods record the new version.
    assert!(conn(ip_a, Some(("default", "rotated-pw"))).await.is_some());
    for p in ["cache-a", "cache-b"] {
        let now = wait_for(&format!("{p}'s new password version"), T, || async {
            let a = applied(&h.pods.get(p).await.ok()?);
            (a != before && !a.is_empty()).then_some(a)
        })
        .await;
        assert!(now.ends_with("/0") && !now.contains("rotated-pw"), "{now}");
    }
    // Replication was not disturbed: the replica is still linked to the master.
    let (role, master) = role_of(ip_b, &h.admin_pw).await;
    assert_eq!((role.as_str(), master.as_str()), ("slave", ip_a));
    assert!(h
        .event_reasons()
        .await
        .iter()
        .any(|(r, _)| r == "PasswordApplied"));
    h.teardown().await;
}
