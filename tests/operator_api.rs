//! Integration tests of the RedisPair API on a real kube-apiserver + etcd (the project's local
//! control plane): the CRD installs, and invalid specs are rejected with the CEL/OpenAPI
//! message. Does I/O: the Kubernetes API (and starts the control plane when needed).

mod operator_support;

use kube::api::{Api, Patch, PatchParams, PostParams};
use operator_support::*;
use redispair::api::RedisPair;

async fn create(api: &Api<RedisPair>, yaml: &str) -> Result<RedisPair, String> {
    let pair: RedisPair = serde_yaml::from_str(yaml).expect("test manifest parses");
    api.create(&PostParams::default(), &pair)
        .await
        .map_err(|e| e.to_string())
}

fn manifest(name: &str, spec: &str) -> String {
    format!("apiVersion: redispair.io/v1alpha1\nkind: RedisPair\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

#[tokio::test]
async fn crd_installs_and_invalid_specs_are_rejected_with_their_message() {
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-api").await;
    let api: Api<RedisPair> = Api::namespaced(client.clone(), &ns);

    // The contract manifest is accepted as written.
    create(
        &api,
        &manifest(
            "cache",
            "  replication:\n    mode: semi-sync\n  storage:\n    size: 1Gi\n  auth:\n    passwordSecret:\n      name: cache-password\n  failover:\n    detectionSeconds: 2\n",
        ),
    )
    .await
    .expect("the contract manifest is accepted");

    // Bad values, each with its message. serde_yaml would refuse an unknown mode before the
    // server sees it, so that one goes through a raw JSON body.
    let raw = serde_json::json!({
        "apiVersion": "redispair.io/v1alpha1", "kind": "RedisPair",
        "metadata": {"name": "badmode"}, "spec": {"replication": {"mode": "fast"}}
    });
    let err = api
        .patch(
            "badmode",
            &PatchParams::apply("redispair-tests"),
            &Patch::Apply(&raw),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unsupported value: \"fast\""), "{err}");

    for (spec, message) in [
        (
            "  failover:\n    detectionSeconds: 0\n",
            "failover.detectionSeconds must be between 1 and 60",
        ),
        (
            "  storage:\n    size: \"-1Gi\"\n",
            "storage.size must be positive",
        ),
        (
            "  services:\n    type: ExternalName\n",
            "services.type must be ClusterIP, NodePort or LoadBalancer",
        ),
        (
            "  auth:\n    passwordSecret:\n      name: \"\"\n",
            "passwordSecret.name must not be empty",
        ),
    ] {
        let err = create(&api, &manifest("bad", spec)).await.unwrap_err();
        assert!(err.contains(message), "{spec}: {err}");
    }

    // Immutable fields.
    create(&api, &manifest("eph", "  storage:\n    ephemeral: true\n"))
        .await
        .unwrap();
    let change = serde_json::json!({"spec": {"storage": {"ephemeral": false}}});
    let err = api
        .patch("eph", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("storage.ephemeral is immutable"), "{err}");

    // `kubectl explain` material: the schema carries descriptions.
    let crd = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/redispair.yaml"))
        .unwrap();
    assert!(crd.contains("description: How writes are replicated and acknowledged."));
    delete_namespace(&client, &ns).await;
}
