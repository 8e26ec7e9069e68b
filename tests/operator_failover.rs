//! The operator driving two real engines through a failover, on a real kube-apiserver with no
//! kubelet: the test plays the kubelet's part (it runs the engines as processes on 127.0.0.2
//! and 127.0.0.3 and writes the pods' status), the operator runs in-process. Checks: the
//! initial election and Service routing, then `kill -9` of the master with a counting writer:
//! the read-write Service moves to the replica, no acknowledged write is lost (semi-sync), and
//! the old master rejoins as a replica in the new term. Prints the failover seconds (a figure;
//! the assertion is a generous deadline). Does I/O: processes, sockets, the Kubernetes API.
//!
//! The engine binary is `REDISPAIR_ENGINE_BIN` when set, else this crate's own.

mod operator_support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use operator_support::*;
use prometheus_client::registry::Registry;
use redispair::api::RedisPair;
use redispair::operator::build::pod::build_engine_args;
use redispair::operator::controller::{run, RunConfig};
use redispair::operator::metrics::Metrics;
use redispair::operator::validate::validate;

const PAIR: &str = r#"
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata:
  name: cache
spec:
  replication:
    mode: semi-sync
  storage:
    size: 1Gi
  auth:
    passwordSecret:
      name: cache-password
  failover:
    detectionSeconds: 2
  # Not part of the contract: keeps the pods Pending even when the shared local cluster has
  # nodes, so no kubelet plays a part in this test.
  pod:
    nodeSelector:
      redispair.io/test-no-such-node: "true"
"#;

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
/// (and `requirepass`, see below).
fn start_engine(args: &[String], ip: &'static str, dir: &std::path::Path) -> Engine {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().expect("flags come in pairs").clone();
        let value = match flag.as_str() {
            "--bind" => ip.to_string(),
            "--dir" => dir.display().to_string(),
            // The replica's handshake does not authenticate yet (reported to the engine
            // work): with a client password set, replication answers NOAUTH.
            "--requirepass" => continue,
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

fn start_operator(client: &Client, ns: &str) -> tokio::task::JoinHandle<()> {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    tokio::spawn(run(
        client.clone(),
        RunConfig {
            namespace: Some(ns.to_string()),
            default_image: None,
            instance: "operator-failover-test".into(),
            metrics,
        },
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_fails_over_without_losing_acknowledged_writes() {
    // The engine must have the admin commands the operator drives (and the address free).
    assert!(
        engine_supported("127.0.0.4").await,
        "{} did not answer REDISPAIR STATE",
        engine_bin()
    );

    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-failover").await;
    let operator = start_operator(&client, &ns);
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(PAIR).unwrap();
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
    let args: Vec<String> = build_engine_args(&v)
        .into_iter()
        .map(|a| {
            a.replace("$(REDISPAIR_ADMIN_PASSWORD)", &admin_pw)
                .replace("$(REDISPAIR_PASSWORD)", "unused")
        })
        .collect();

    let dir_a = tempdir("a");
    let dir_b = tempdir("b");
    let mut a = Some(start_engine(&args, "127.0.0.2", &dir_a));
    let _b = start_engine(&args, "127.0.0.3", &dir_b);
    set_pod_status(&pods, "cache-a", "127.0.0.2", true).await;
    set_pod_status(&pods, "cache-b", "127.0.0.3", true).await;

    // Initial election: cache-a (tie broken by name), cache-b its replica, Services follow.
    let status = wait_for("phase Ready", T, || async {
        let s = pairs.get("cache").await.ok()?.status?;
        (s.phase.as_deref() == Some("Ready")).then_some(s)
    })
    .await;
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

    // A counting writer through "the Service" (the pod it selects; no kube-proxy here).
    let acked = Arc::new(AtomicI64::new(0));
    let writer = {
        let acked = acked.clone();
        let services = services.clone();
        tokio::spawn(async move {
            let mut c = None;
            let mut target = String::new();
            loop {
                let pod = selected(&services, "cache").await.unwrap_or_default();
                let ip = match pod.as_str() {
                    "cache-a" => "127.0.0.2",
                    "cache-b" => "127.0.0.3",
                    _ => {
                        // Selects nothing: mid-failover. Pace the retries (not a sync point).
                        c = None;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if target != ip || c.is_none() {
                    target = ip.to_string();
                    c = conn(ip, None).await;
                }
                let Some(cn) = c.as_mut() else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                match redis::cmd("INCR")
                    .arg("counter")
                    .query_async::<i64>(cn)
                    .await
                {
                    Ok(n) => {
                        acked.fetch_max(n, Ordering::SeqCst);
                    }
                    Err(_) => {
                        c = None;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    wait_for("writes acknowledged", T, || async {
        (acked.load(Ordering::SeqCst) >= 200).then_some(())
    })
    .await;

    // kill -9 the master; nothing tells Kubernetes (its pod stays Ready): the operator's own
    // probes and the replica's link must detect it.
    let killed_at = Instant::now();
    drop(a.take());
    let acked_at_kill = acked.load(Ordering::SeqCst);
    wait_for(
        "the read-write Service on cache-b",
        Duration::from_secs(20),
        || async {
            (selected(&services, "cache").await.as_deref() == Some("cache-b")).then_some(())
        },
    )
    .await;
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
    wait_for("writes on the new master", T, || async {
        (acked.load(Ordering::SeqCst) > acked_at_kill + 50).then_some(())
    })
    .await;
    writer.abort();
    let mut cb = conn("127.0.0.3", None).await.unwrap();
    let n: i64 = redis::cmd("GET")
        .arg("counter")
        .query_async(&mut cb)
        .await
        .unwrap();
    let max_acked = acked.load(Ordering::SeqCst);
    assert!(
        n >= max_acked,
        "acknowledged {max_acked}, new master holds {n}"
    );

    // The old master comes back on its data: it is demoted into a replica of the new term.
    let _a2 = start_engine(&args, "127.0.0.2", &dir_a);
    wait_for(
        "the old master rejoins as a replica",
        Duration::from_secs(30),
        || async {
            let s = pairs.get("cache").await.ok()?.status?;
            let replicating = s
                .conditions
                .iter()
                .any(|c| c.type_ == "Replicating" && c.status == "True");
            (replicating
                && s.replica.as_deref() == Some("cache-a")
                && s.phase.as_deref() == Some("Ready"))
            .then_some(())
        },
    )
    .await;
    let mut ca = conn("127.0.0.2", Some(("redispair-admin", &admin_pw)))
        .await
        .unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut ca).await.unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    operator.abort();
    delete_namespace(&client, &ns).await;
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
    assert!(
        engine_supported("127.0.0.7").await,
        "{} did not answer REDISPAIR STATE",
        engine_bin()
    );
    let (ip_a, ip_b) = ("127.0.0.5", "127.0.0.6");
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-poddel").await;
    let operator = start_operator(&client, &ns);
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(PAIR).unwrap();
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
    let args: Vec<String> = build_engine_args(&v)
        .into_iter()
        .map(|a| a.replace("$(REDISPAIR_ADMIN_PASSWORD)", &admin_pw))
        .collect();
    let _a = start_engine(&args, ip_a, &tempdir("pa"));
    let _b = start_engine(&args, ip_b, &tempdir("pb"));
    set_pod_status(&pods, "cache-a", ip_a, true).await;
    set_pod_status(&pods, "cache-b", ip_b, true).await;
    wait_for("phase Ready", T, || async {
        let s = pairs.get("cache").await.ok()?.status?;
        (s.phase.as_deref() == Some("Ready") && s.current_master.as_deref() == Some("cache-a"))
            .then_some(())
    })
    .await;
    // Some writes that must survive.
    let mut ca = conn(ip_a, None).await.unwrap();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query_async(&mut ca)
            .await
            .unwrap();
    }

    let uid_before = pods.get("cache-a").await.unwrap().metadata.uid;
    let deleted_at = Instant::now();
    pods.delete("cache-a", &Default::default()).await.unwrap();
    wait_for(
        "the read-write Service on cache-b",
        Duration::from_secs(20),
        || async {
            (selected(&services, "cache").await.as_deref() == Some("cache-b")).then_some(())
        },
    )
    .await;
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
        let replicating = s
            .conditions
            .iter()
            .any(|c| c.type_ == "Replicating" && c.status == "True");
        (replicating && s.phase.as_deref() == Some("Ready")).then_some(s)
    })
    .await;
    assert_eq!(status.term, 2);
    assert_eq!(status.current_master.as_deref(), Some("cache-b"));
    assert!(status.last_failover.unwrap().reason.contains("cache-a"));
    operator.abort();
    delete_namespace(&client, &ns).await;
}
