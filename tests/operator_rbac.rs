//! The chart's RBAC is enough: the operator runs in-process as a ServiceAccount bound to the
//! rules of `charts/redispair-operator/templates/_helpers.tpl` only (impersonated), on a real
//! kube-apiserver without kubelets, and still creates every object of a pair (server-side
//! apply creating with `patch` alone), writes status and Events, watches Secrets (a fixed
//! Secret reconciles its pair at once) and takes the leader Lease. Does I/O: the Kubernetes API.

mod operator_support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use operator_support::*;
use prometheus_client::registry::Registry;
use redispair::api::RedisPair;
use redispair::operator::controller::{run, RunConfig};
use redispair::operator::leader::LeaderElection;
use redispair::operator::metrics::Metrics;

const T: Duration = Duration::from_secs(30);
const TEST_IMAGE: &str = "localhost/redispair/redispair:test";

/// The rules of one `redispair-operator.NAME` define of the chart.
fn chart_rules(define: &str) -> Vec<PolicyRule> {
    let helpers = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/redispair-operator/templates/_helpers.tpl"
    ))
    .unwrap();
    let start = format!("{{{{- define \"redispair-operator.{define}\" -}}}}");
    let body = helpers.split_once(&start).unwrap().1;
    let body = body.split("{{- end }}").next().unwrap();
    serde_yaml::from_str(body).unwrap()
}

async fn get<K>(api: &Api<K>, name: &str) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.ok().flatten()
}

/// A client that acts as `system:serviceaccount:NS:NAME`.
async fn impersonating(ns: &str, name: &str) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{name}"));
    Client::try_from(config).unwrap()
}

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_string),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_operator_works_with_exactly_the_charts_rbac() {
    let admin = client().await;
    install_crd(&admin).await;
    let ns = temp_namespace(&admin, "rp-rbac").await;
    let sa = "operator";
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: sa.into(),
        namespace: Some(ns.clone()),
        ..Default::default()
    };
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create(
            &pp,
            &ServiceAccount {
                metadata: meta(sa, None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The namespaced variant of the chart: pair rules as a Role in the watched namespace, the
    // leader-election Role in the operator's (the same one here), nodes cluster-wide.
    let mut namespaced = chart_rules("pairRules");
    namespaced.extend(chart_rules("leaderRules"));
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(
            &pp,
            &Role {
                metadata: meta(sa, None),
                rules: Some(namespaced),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(
            &pp,
            &RoleBinding {
                metadata: meta(sa, None),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "Role".into(),
                    name: sa.into(),
                },
                subjects: Some(vec![subject.clone()]),
            },
        )
        .await
        .unwrap();
    let cluster_name = format!("{ns}-nodes");
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &pp,
            &ClusterRole {
                metadata: meta(&cluster_name, None),
                rules: Some(chart_rules("nodeRules")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &pp,
            &ClusterRoleBinding {
                metadata: meta(&cluster_name, None),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "ClusterRole".into(),
                    name: cluster_name.clone(),
                },
                subjects: Some(vec![subject]),
            },
        )
        .await
        .unwrap();
    let client = impersonating(&ns, sa).await;
    // RBAC objects reach the authorizer's cache shortly after they are written.
    wait_for("the Role to take effect", T, || async {
        Api::<RedisPair>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().limit(1))
            .await
            .ok()
    })
    .await;
    // Nothing more than granted: the operator may not read ConfigMaps, nor other namespaces.
    assert!(
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .is_err()
    );
    assert!(Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .is_err());

    // Leader election: get, create (first take), update (renew, release).
    let election = LeaderElection::new(client.clone(), &ns, "redispair-operator", "rbac-test");
    assert!(election.try_acquire().await.unwrap(), "taking the Lease");
    assert!(election.try_acquire().await.unwrap(), "renewing the Lease");
    election.release().await;

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let operator = tokio::spawn(run(
        client.clone(),
        RunConfig {
            namespace: Some(ns.clone()),
            default_image: Some(TEST_IMAGE.into()),
            instance: "rbac-test".into(),
            metrics,
            leading: tokio::sync::watch::channel(true).1,
        },
    ));

    // A pair whose password Secret is bad: InvalidSpec; fixed, it is reconciled at once
    // (the Secret watch, list + watch on secrets) and all its objects appear.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let secret = |key: &str| Secret {
        metadata: meta("cache-password", None),
        data: Some([(key.to_string(), ByteString(b"pw".to_vec()))].into()),
        ..Default::default()
    };
    secrets.create(&pp, &secret("wrong")).await.unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(admin.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(&contract_manifest("semi-sync")).unwrap();
    pairs.create(&pp, &pair).await.unwrap();
    wait_for("InvalidSpec (status patch)", T, || async {
        let s = get(&pairs, "cache").await?.status?;
        s.conditions
            .iter()
            .any(|c| c.reason == "InvalidSpec")
            .then_some(())
    })
    .await;
    secrets
        .replace("cache-password", &pp, &secret("password"))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let services: Api<Service> = Api::namespaced(admin.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), &ns);
    for p in ["cache-a", "cache-b"] {
        wait_for(&format!("pod {p} (create)"), T, || get(&pods, p)).await;
        let claim = format!("data-{p}");
        wait_for(&format!("claim {claim} (apply)"), T, || get(&pvcs, &claim)).await;
    }
    for s in ["cache", "cache-ro", "cache-headless"] {
        wait_for(&format!("Service {s} (apply)"), T, || get(&services, s)).await;
    }
    wait_for("the PDB (apply)", T, || get(&pdbs, "cache")).await;
    wait_for("Secret cache-admin (create)", T, || {
        get(&secrets, "cache-admin")
    })
    .await;
    wait_for("phase Creating", T, || async {
        let s = get(&pairs, "cache").await?.status?;
        (s.phase.as_deref() == Some("Creating")).then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    wait_for("an Event (create)", T, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("PhaseChanged"))
            .then_some(())
    })
    .await;
    assert!(!operator.is_finished());
    operator.abort();
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(&cluster_name, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(admin.clone())
        .delete(&cluster_name, &DeleteParams::default())
        .await;
    delete_namespace(&admin, &ns).await;
}
