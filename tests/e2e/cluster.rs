//! The cluster side of the suite: a kube client from the e2e kubeconfig, a RedisPair under
//! test made from `examples/semi-sync.yaml` (renamed per case), and what the cases read from
//! Kubernetes: status, the read-write Service's selector and its EndpointSlices, pods and
//! their nodes. Waits are conditions with deadlines; a wait that times out prints the pair's
//! state before failing. Does I/O: the Kubernetes API.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use redispair::api::{RedisPair, RedisPairStatus, ReplicationMode};
use serde::Deserialize;

use crate::env::E2eEnv;

pub async fn client(env: &E2eEnv) -> Client {
    let kc = Kubeconfig::read_from(&env.kubeconfig).expect("reading KUBECONFIG");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("kube client")
}

/// Poll `check` (every 200 ms) until it returns Some, or None once `timeout` has passed.
pub async fn poll<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn condition_true(s: &RedisPairStatus, type_: &str) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The node the operator's (leading, or only) pod runs on, if it is running.
pub async fn operator_nodes(client: &Client, env: &E2eEnv) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.operator_namespace);
    let lp = ListParams::default().labels("app.kubernetes.io/name=redispair-operator");
    let list = pods.list(&lp).await.expect("listing the operator's pods");
    list.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect()
}

/// The installed operator runs the image the suite was told about (E2E_IMAGE): the chart
/// really was installed with the image this run built.
pub async fn assert_operator_image(client: &Client, env: &E2eEnv) {
    let Some(image) = &env.image else { return };
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &env.operator_namespace);
    let lp = ListParams::default().labels("app.kubernetes.io/name=redispair-operator");
    let list = deps
        .list(&lp)
        .await
        .expect("listing the operator Deployment");
    let images: Vec<String> = list
        .items
        .iter()
        .flat_map(|d| d.spec.as_ref().and_then(|s| s.template.spec.as_ref()))
        .flat_map(|s| s.containers.iter().filter_map(|c| c.image.clone()))
        .collect();
    assert!(
        images.iter().any(|i| i == image),
        "no operator Deployment in {} runs {image} (found {images:?}); install it with hack/e2e.sh",
        env.operator_namespace
    );
}

pub struct PairUnderTest {
    pub name: String,
    pub namespace: String,
    pub pairs: Api<RedisPair>,
    pub pods: Api<Pod>,
    pub services: Api<Service>,
    slices: Api<EndpointSlice>,
    pub password: String,
}

impl PairUnderTest {
    /// Apply `examples/semi-sync.yaml` (the contract manifest: semi-sync, password Secret,
    /// detection 2 s) renamed to `name`, in the operator's watched namespace.
    pub async fn create(client: &Client, env: &E2eEnv, name: &str) -> PairUnderTest {
        PairUnderTest::create_with_mode(client, env, name, None).await
    }

    /// `create`, with `spec.replication.mode` set to `mode` when given.
    pub async fn create_with_mode(
        client: &Client,
        env: &E2eEnv,
        name: &str,
        mode: Option<ReplicationMode>,
    ) -> PairUnderTest {
        PairUnderTest::create_custom(client, env, name, |pair| {
            if let Some(mode) = mode {
                pair.spec.replication.mode = mode;
            }
        })
        .await
    }

    /// `create`, with `customize` applied to the RedisPair before it is created.
    pub async fn create_custom(
        client: &Client,
        env: &E2eEnv,
        name: &str,
        customize: impl FnOnce(&mut RedisPair),
    ) -> PairUnderTest {
        let ns = env.namespace.as_str();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/semi-sync.yaml"
        ))
        .expect("examples/semi-sync.yaml");
        let mut secret: Option<Secret> = None;
        let mut pair: Option<RedisPair> = None;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc).expect("example parses");
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("Secret") => secret = Some(serde_yaml::from_value(v).unwrap()),
                Some("RedisPair") => pair = Some(serde_yaml::from_value(v).unwrap()),
                other => panic!("unexpected kind {other:?} in examples/semi-sync.yaml"),
            }
        }
        let (mut secret, mut pair) = (secret.unwrap(), pair.unwrap());
        let secret_name = format!("{name}-password");
        secret.metadata.name = Some(secret_name.clone());
        pair.metadata.name = Some(name.to_string());
        pair.spec.auth.password_secret.as_mut().unwrap().name = secret_name;
        customize(&mut pair);
        if let Some(image) = &env.image {
            pair.spec.image = Some(image.clone());
            // Clusters without a registry: the image was imported into the nodes.
            pair.spec.image_pull_policy = Some("IfNotPresent".into());
        }
        let password = secret.string_data.as_ref().unwrap()["password"].clone();

        let pairs: Api<RedisPair> = Api::namespaced(client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        // Leftovers of an interrupted earlier run would be taken for this run's pair.
        let put = PairUnderTest {
            name: name.to_string(),
            namespace: ns.to_string(),
            pairs: pairs.clone(),
            pods: Api::namespaced(client.clone(), ns),
            services: Api::namespaced(client.clone(), ns),
            slices: Api::namespaced(client.clone(), ns),
            password,
        };
        put.delete().await;
        let _ = secrets
            .delete(
                secret.metadata.name.as_deref().unwrap(),
                &Default::default(),
            )
            .await;
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("creating the password Secret");
        pairs
            .create(&PostParams::default(), &pair)
            .await
            .expect("creating the RedisPair");
        put
    }

    pub fn pod_names(&self) -> [String; 2] {
        [format!("{}-a", self.name), format!("{}-b", self.name)]
    }

    pub async fn status(&self) -> Option<RedisPairStatus> {
        self.pairs.get_opt(&self.name).await.ok()??.status
    }

    /// The pod the read-write Service selects (`redispair.io/pod`), if any.
    pub async fn rw_selector(&self) -> Option<String> {
        let s = self.services.get_opt(&self.name).await.ok()??;
        s.spec?.selector?.get("redispair.io/pod").cloned()
    }

    pub async fn cluster_ip(&self, service: &str) -> String {
        let s = self.services.get(service).await.expect("the Service");
        s.spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None")
            .unwrap_or_else(|| panic!("Service {service} has no ClusterIP"))
    }

    /// Addresses of the ready endpoints of a Service, from its EndpointSlices (what
    /// kube-proxy routes to).
    pub async fn ready_endpoints(&self, service: &str) -> Vec<String> {
        let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
        let Ok(list) = self.slices.list(&lp).await else {
            return vec![];
        };
        let mut ips: Vec<String> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        ips.sort();
        ips
    }

    pub async fn pod(&self, name: &str) -> Option<Pod> {
        self.pods.get_opt(name).await.ok()?
    }

    pub async fn pod_ip(&self, name: &str) -> Option<String> {
        self.pod(name).await?.status?.pod_ip
    }

    /// The engine container's containerd ID and restart count.
    pub async fn engine_container(&self, pod: &str) -> Option<(String, i32)> {
        let st = self.pod(pod).await?.status?;
        let c = st
            .container_statuses?
            .into_iter()
            .find(|c| c.name == "engine")?;
        Some((c.container_id?, c.restart_count))
    }

    /// Ready, as the tests mean it: phase Ready and conditions Ready and Replicating, no
    /// failover in progress, the master and the replica running (pods Ready) on two different
    /// nodes, the read-write Service selecting the master.
    pub async fn healthy(&self) -> Option<Healthy> {
        let s = self.status().await?;
        if s.phase.as_deref() != Some("Ready")
            || !condition_true(&s, "Ready")
            || !condition_true(&s, "Replicating")
            || s.failover.is_some()
        {
            return None;
        }
        let master = s.current_master.clone()?;
        let replica = s.replica.clone()?;
        let pod_ready = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        let (m, r) = (self.pod(&master).await?, self.pod(&replica).await?);
        if !pod_ready(&m) || !pod_ready(&r) || m.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let master_node = m.spec?.node_name?;
        let replica_node = r.spec?.node_name?;
        if master_node == replica_node || self.rw_selector().await.as_deref() != Some(&master) {
            return None;
        }
        Some(Healthy {
            master,
            replica,
            master_node,
            replica_node,
            term: s.term,
            status: s,
        })
    }

    /// Wait until `check` holds; on timeout print the pair's state and fail with `what`.
    pub async fn expect<T, F, Fut>(&self, what: &str, timeout: Duration, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match poll(timeout, check).await {
            Some(v) => v,
            None => {
                self.dump().await;
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}",
                    self.name
                );
            }
        }
    }

    pub async fn wait_healthy(&self, what: &str, timeout: Duration) -> Healthy {
        self.expect(what, timeout, || self.healthy()).await
    }

    /// Ask the operator for a planned switchover (what `kubectl redispair switchover` writes).
    pub async fn request_switchover(&self) {
        let patch = serde_json::json!({"metadata": {"annotations": {
            "redispair.io/switchover": format!("e2e-{}", std::process::id())
        }}});
        self.pairs
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotating the pair for a switchover");
    }

    /// Print what a human would look at first when a case fails.
    pub async fn dump(&self) {
        eprintln!("--- state of pair {}/{}", self.namespace, self.name);
        match self.pairs.get_opt(&self.name).await {
            Ok(Some(p)) => eprintln!(
                "status: {}",
                serde_json::to_string_pretty(&p.status).unwrap_or_default()
            ),
            other => eprintln!("pair: {other:?}"),
        }
        eprintln!("rw selector: {:?}", self.rw_selector().await);
        eprintln!("rw endpoints: {:?}", self.ready_endpoints(&self.name).await);
        for p in self.pod_names() {
            match self.pod(&p).await {
                Some(pod) => {
                    let st = pod.status.clone().unwrap_or_default();
                    eprintln!(
                        "pod {p}: uid {:?} node {:?} ip {:?} phase {:?} deleting {} labels {:?} conditions {:?} containers {:?}",
                        pod.metadata.uid,
                        pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                        st.pod_ip,
                        st.phase,
                        pod.metadata.deletion_timestamp.is_some(),
                        pod.labels(),
                        st.conditions.unwrap_or_default().iter().map(|c| format!("{}={}", c.type_, c.status)).collect::<Vec<_>>(),
                        st.container_statuses.unwrap_or_default().iter().map(|c| format!("{} restarts={} state={:?}", c.name, c.restart_count, c.state)).collect::<Vec<_>>(),
                    );
                }
                None => eprintln!("pod {p}: none"),
            }
        }
    }

    /// Delete the pair and wait until its pods are gone (children go by owner reference), so
    /// the next case starts with free nodes.
    pub async fn delete(&self) {
        let _ = self
            .pairs
            .delete(&self.name, &DeleteParams::default())
            .await;
        for p in self.pod_names() {
            let pods = self.pods.clone();
            let gone = poll(Duration::from_secs(120), || {
                let pods = pods.clone();
                let p = p.clone();
                async move {
                    match pods.get_opt(&p).await {
                        Ok(None) => Some(()),
                        _ => None,
                    }
                }
            })
            .await;
            assert!(
                gone.is_some(),
                "pod {p} still there 120 s after its pair was deleted"
            );
        }
    }
}

pub struct Healthy {
    pub master: String,
    pub replica: String,
    pub master_node: String,
    pub replica_node: String,
    pub term: i64,
    pub status: RedisPairStatus,
}
