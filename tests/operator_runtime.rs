//! Integration tests of the operator's runtime pieces: leader election on a real
//! coordination Lease (kube-apiserver from `hack/cluster/up.sh --control-plane`), and the
//! /healthz /readyz /metrics endpoints on loopback; a deleted pair's series leave the
//! operator's metrics. Does I/O: the Kubernetes API, a socket.

mod metrics_support;
mod operator_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use operator_support::*;
use prometheus_client::registry::Registry;
use redispair::operator::http::{router, HttpState};
use redispair::operator::leader::{LeaderElection, LEASE_DURATION, POLL};
use redispair::operator::metrics::Metrics;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn only_one_candidate_holds_the_lease() {
    let client = client().await;
    let ns = temp_namespace(&client, "rp-leader").await;
    let a = LeaderElection::new(client.clone(), &ns, "redispair-operator", "a");
    let b = LeaderElection::new(client.clone(), &ns, "redispair-operator", "b");
    assert!(a.try_acquire().await.unwrap(), "a takes the free lease");
    assert!(
        !b.try_acquire().await.unwrap(),
        "b cannot take a held lease"
    );
    assert!(a.try_acquire().await.unwrap(), "a renews");
    let lease = Api::<Lease>::namespaced(client.clone(), &ns)
        .get("redispair-operator")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(1));
    delete_namespace(&client, &ns).await;
}

/// The Lease's holder, "" when released.
async fn holder(client: &kube::Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("redispair-operator")
        .await
        .ok()??;
    Some(lease.spec?.holder_identity.unwrap_or_default())
}

#[tokio::test]
async fn a_candidate_takes_over_only_once_the_holder_stopped_renewing() {
    let client = client().await;
    let ns = temp_namespace(&client, "rp-takeover").await;
    let a = LeaderElection::new(client.clone(), &ns, "redispair-operator", "a");
    let b = LeaderElection::new(client.clone(), &ns, "redispair-operator", "b");
    assert!(a.try_acquire().await.unwrap());
    // While a renews (every POLL, as `hold` does), b never gets in, however long it tries:
    // expiry is counted from b's own observations of a's renewals.
    for _ in 0..(2 * LEASE_DURATION.as_millis() / POLL.as_millis()) {
        assert!(a.try_acquire().await.unwrap(), "a renews");
        assert!(
            !b.try_acquire().await.unwrap(),
            "b must not take a renewed lease"
        );
        tokio::time::sleep(POLL).await;
    }
    // a stops renewing (its process died): b takes over once it has seen the same record for
    // the Lease's duration.
    let took = wait_for("b to take the expired lease", LEASE_DURATION * 5, || {
        let b = &b;
        async move { b.try_acquire().await.unwrap().then_some(()) }
    })
    .await;
    let () = took;
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("b"));
    assert!(
        !a.try_acquire().await.unwrap(),
        "a, back, is a candidate now"
    );
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let client = client().await;
    let ns = temp_namespace(&client, "rp-release").await;
    let a = LeaderElection::new(client.clone(), &ns, "redispair-operator", "a");
    let b = LeaderElection::new(client.clone(), &ns, "redispair-operator", "b");
    assert!(a.try_acquire().await.unwrap());
    assert!(!b.try_acquire().await.unwrap());
    a.release().await;
    assert_eq!(holder(&client, &ns).await.as_deref(), Some(""));
    // No waiting for the duration: the first look after the release takes it.
    assert!(
        b.try_acquire().await.unwrap(),
        "b takes a released lease at once"
    );
    delete_namespace(&client, &ns).await;
}

/// The operator binary as identity `op-1` with leader election on a Lease in `ns`, watching
/// `ns`, killed when dropped.
fn operator_command(ns: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_redispair-operator"));
    c.args([
        "--namespace",
        ns,
        "--lease-namespace",
        ns,
        "--identity",
        "op-1",
        "--metrics-addr",
        "127.0.0.1:0",
        "--leader-election",
        "true",
    ])
    .env("KUBECONFIG", kubeconfig())
    .kill_on_drop(true);
    c
}

/// The operator binary with leader election: it leads, and on SIGTERM it releases the Lease
/// (its successor does not wait for expiry).
#[tokio::test]
async fn the_operator_releases_its_lease_on_sigterm() {
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-sigterm").await;
    let mut child = operator_command(&ns)
        .spawn()
        .expect("starting redispair-operator");
    wait_for("the operator to lead", Duration::from_secs(30), || {
        let client = client.clone();
        let ns = ns.clone();
        async move { (holder(&client, &ns).await.as_deref() == Some("op-1")).then_some(()) }
    })
    .await;
    let pid = child.id().expect("running") as i32;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the operator exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        holder(&client, &ns).await.as_deref(),
        Some(""),
        "the Lease is released on shutdown"
    );
    delete_namespace(&client, &ns).await;
}

/// A leader whose Lease is taken from it stops acting and starts again *in place* (the same
/// process, re-executed), as a standby: no exit, so the kubelet counts no restart and never
/// backs the operator off. It leads again once the Lease is free.
#[tokio::test]
async fn a_leader_that_loses_its_lease_restarts_in_place_as_a_standby() {
    use tokio::io::AsyncBufReadExt;
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-lost").await;
    let mut child = operator_command(&ns)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting redispair-operator");
    // Both streams, whichever the log goes to, into one list of lines.
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(l)) = r.next_line().await {
                lines.lock().unwrap().push(l);
            }
        });
    }
    let count = |needle: &'static str| {
        let lines = lines.clone();
        move || {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count()
        }
    };
    let standbys = count("standby: waiting for the leader Lease");
    wait_for("the operator to lead", Duration::from_secs(30), || {
        let client = client.clone();
        let ns = ns.clone();
        async move { (holder(&client, &ns).await.as_deref() == Some("op-1")).then_some(()) }
    })
    .await;
    assert_eq!(standbys(), 1);
    // Another instance takes the Lease (as one would after a partition).
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let mut lease = leases.get("redispair-operator").await.unwrap();
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some("thief".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    leases
        .replace("redispair-operator", &Default::default(), &lease)
        .await
        .unwrap();
    wait_for(
        "the operator to start again as a standby",
        Duration::from_secs(30),
        || {
            let standbys = standbys.clone();
            async move { (standbys() >= 2).then_some(()) }
        },
    )
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the same process runs on: it did not exit"
    );
    assert!(count("leadership lost: restarting in place")() >= 1);
    // The thief never renews: the Lease expires and the restarted operator leads again.
    wait_for(
        "the operator to lead again",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let ns = ns.clone();
            async move { (holder(&client, &ns).await.as_deref() == Some("op-1")).then_some(()) }
        },
    )
    .await;
    assert!(child.try_wait().unwrap().is_none());
    delete_namespace(&client, &ns).await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    metrics.set_phase("ns/cache", "uid-1", Some("Ready"));
    let state = Arc::new(HttpState {
        registry,
        ready: false.into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert!(http_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
    state.ready.store(true, Ordering::Relaxed);
    assert!(http_get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    let m = http_get(addr, "/metrics").await;
    assert!(m.contains("redispair_pairs{phase=\"Ready\"} 1"), "{m}");
    assert!(
        m.contains("redispair_reconcile_errors_total") || m.contains("redispair_reconciles_total")
    );
}

/// The operator's per-pair series go when the pair is deleted, also when it was the only pair
/// the operator watched (its prober, which removes them, once took an empty store for one not
/// filled yet and waited forever: found by the cluster scrape case, tests/e2e/metrics.rs).
#[tokio::test]
async fn a_deleted_pairs_series_go_also_when_it_was_the_only_pair() {
    use kube::api::{DeleteParams, PostParams};
    use metrics_support::{check_pair_gone, Scrape};
    use redispair::api::RedisPair;
    use redispair::operator::controller::{run, RunConfig};

    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-metrics-gone").await;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let operator = tokio::spawn(run(
        client.clone(),
        RunConfig {
            namespace: Some(ns.clone()),
            default_image: Some("localhost/redispair/redispair:test".into()),
            instance: "operator-test".into(),
            metrics,
            leading: tokio::sync::watch::channel(true).1,
        },
    ));
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(&contract_manifest("semi-sync")).unwrap();
    pairs.create(&PostParams::default(), &pair).await.unwrap();
    let scrape = || Scrape::parse(&redispair::operator::metrics::encode(&registry)).unwrap();
    wait_for("the pair's series", Duration::from_secs(30), || async {
        check_pair_gone(&scrape(), &ns, "cache")
            .is_err()
            .then_some(())
    })
    .await;
    pairs
        .delete("cache", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match check_pair_gone(&scrape(), &ns, "cache") {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("30 s after the pair was deleted: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    operator.abort();
    delete_namespace(&client, &ns).await;
}
