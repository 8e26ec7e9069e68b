//! Integration tests of the operator's runtime pieces: leader election on a real
//! coordination Lease (kube-apiserver from `hack/cluster/up.sh --control-plane`), and the
//! /healthz /readyz /metrics endpoints on loopback. Does I/O: the Kubernetes API, a socket.

mod operator_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use operator_support::*;
use prometheus_client::registry::Registry;
use redispair::operator::http::{router, HttpState};
use redispair::operator::leader::LeaderElection;
use redispair::operator::metrics::Metrics;
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
    metrics.set_phase("ns/cache", Some("Ready"));
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
