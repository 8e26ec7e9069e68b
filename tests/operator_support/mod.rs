//! Support for the operator's integration tests on a real kube-apiserver: find or start the
//! project's local control plane (`hack/cluster/up.sh --control-plane`, or $KUBECONFIG),
//! install the CRD, make throwaway namespaces, run the operator in-process, give the contract
//! manifest, and wait on conditions with deadlines (no sleeps as synchronisation). Does I/O:
//! processes, the Kubernetes API.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use prometheus_client::registry::Registry;
use redispair::operator::controller::{run, RunConfig};
use redispair::operator::metrics::Metrics;

/// The issue's contract manifest (pair `cache`, its password in Secret `cache-password`, a
/// 2 s detection window) in replication mode `mode` (`semi-sync` in the contract), plus a
/// node selector no node matches: its pods stay Pending even when the shared local cluster has
/// nodes, so no kubelet plays a part in a test.
pub fn contract_manifest(mode: &str) -> String {
    format!(
        r#"
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata:
  name: cache
spec:
  replication:
    mode: {mode}
  storage:
    size: 1Gi
  auth:
    passwordSecret:
      name: cache-password   # key "password"; created by the operator when it does not exist
  failover:
    detectionSeconds: 2
  pod:
    nodeSelector:
      redispair.io/test-no-such-node: "true"
"#
    )
}

static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();

/// The kubeconfig of a running cluster: $KUBECONFIG when set, else the one printed on the last
/// line of `hack/cluster/up.sh --control-plane` (which starts the control plane if needed).
pub fn kubeconfig() -> PathBuf {
    KUBECONFIG
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
                return PathBuf::from(p);
            }
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let out = std::process::Command::new(root.join("hack/cluster/up.sh"))
                .arg("--control-plane")
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("running hack/cluster/up.sh --control-plane");
            assert!(
                out.status.success(),
                "hack/cluster/up.sh --control-plane failed"
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().last().unwrap_or_default();
            PathBuf::from(
                last.strip_prefix("KUBECONFIG=")
                    .unwrap_or_else(|| panic!("up.sh's last line is not KUBECONFIG=...: {last}")),
            )
        })
        .clone()
}

pub async fn client() -> Client {
    let kc = Kubeconfig::read_from(kubeconfig()).expect("reading the kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// Poll `check` until it returns Some, or panic with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Apply every CRD of crds/redispair.yaml (RedisPair, RedisPairBackup) and wait until the API
/// serves them.
pub async fn install_crd(client: &Client) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/redispair.yaml"))
        .expect("crds/redispair.yaml");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let crd: CustomResourceDefinition =
            serde::Deserialize::deserialize(doc).expect("CRD parses");
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        let mut body = serde_json::to_value(&crd).unwrap();
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        api.patch(
            &name,
            &PatchParams::apply("redispair-tests").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("CRD applies");
        wait_for("the CRD to be established", Duration::from_secs(30), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let c = api.get(&name).await.ok()?;
                c.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

/// A fresh namespace with a unique name.
pub async fn temp_namespace(client: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 100_000_000
    );
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("namespace");
    name
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Run the operator in this process, watching only `ns`, with its own metrics registry.
pub fn start_operator(
    client: &Client,
    ns: &str,
    default_image: Option<&str>,
    instance: &str,
) -> tokio::task::JoinHandle<()> {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    tokio::spawn(run(
        client.clone(),
        RunConfig {
            namespace: Some(ns.to_string()),
            default_image: default_image.map(str::to_string),
            instance: instance.to_string(),
            metrics,
            leading: tokio::sync::watch::channel(true).1,
        },
    ))
}

/// A client, the CRD installed, a fresh namespace `{prefix}-…` and the operator running on it
/// (`start_operator`): `(client, namespace, operator)`.
pub async fn operator_in_fresh_namespace(
    prefix: &str,
    default_image: Option<&str>,
    instance: &str,
) -> (Client, String, tokio::task::JoinHandle<()>) {
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, prefix).await;
    let operator = start_operator(&client, &ns, default_image, instance);
    (client, ns, operator)
}

/// A Secret `name` holding `data` (key, value) pairs.
pub fn secret(name: &str, data: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Secret {
    k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        k8s_openapi::ByteString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// The Events of namespace `ns` as (reason, type, message); empty when the list fails (the
/// callers poll it with a deadline).
pub async fn events(client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|e| Some((e.reason?, e.type_.unwrap_or_default(), e.message?)))
                .collect()
        })
        .unwrap_or_default()
}
