//! Integration tests of the reconcile pipeline on a real kube-apiserver + etcd with the
//! controller-manager (garbage collector) and no kubelets: pods stay Pending, so these tests
//! check objects, status, printer columns, Events and deletion, not failover (the pure
//! simulation and the e2e suite cover that). The operator runs in-process, watching only the
//! test's namespace. Does I/O: the Kubernetes API.

mod operator_support;
mod tls_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::Client;
use operator_support::*;
use redispair::api::RedisPair;

const T: Duration = Duration::from_secs(30);

/// The image the operator gives pods without one (they stay Pending: it never runs).
const TEST_IMAGE: &str = "localhost/redispair/redispair:test";

async fn get<K>(api: &Api<K>, name: &str) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.ok().flatten()
}

/// The printer columns as the API server renders them for `kubectl get rp`.
async fn table_row(client: &Client, ns: &str, name: &str) -> Option<Vec<(String, String)>> {
    let req = http::Request::get(format!(
        "/apis/redispair.io/v1alpha1/namespaces/{ns}/redispairs/{name}"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .unwrap();
    let table: serde_json::Value = client.request(req).await.ok()?;
    let cols: Vec<String> = table["columnDefinitions"]
        .as_array()?
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let cells = table["rows"][0]["cells"].as_array()?;
    Some(
        cols.into_iter()
            .zip(cells.iter().map(|c| match c {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }))
            .collect(),
    )
}

#[tokio::test]
async fn contract_manifest_yields_its_objects_status_events_and_is_cleaned_up() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-reconcile", Some(TEST_IMAGE), "operator-test").await;
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);

    let pair: RedisPair = serde_yaml::from_str(&contract_manifest("semi-sync")).unwrap();
    pairs.create(&PostParams::default(), &pair).await.unwrap();

    // Two pods with required anti-affinity, labelled for the pair, owned by it.
    for name in ["cache-a", "cache-b"] {
        let pod = wait_for(&format!("pod {name}"), T, || get(&pods, name)).await;
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels["redispair.io/pair"], "cache");
        assert_eq!(labels["redispair.io/pod"], name);
        assert_eq!(
            pod.metadata.owner_references.as_ref().unwrap()[0].kind,
            "RedisPair"
        );
        let spec = pod.spec.unwrap();
        let anti = spec.affinity.unwrap().pod_anti_affinity.unwrap();
        let req = anti
            .required_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(req[0].topology_key, "kubernetes.io/hostname");
        let c = &spec.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("localhost/redispair/redispair:test")
        );
        assert!(c
            .args
            .as_ref()
            .unwrap()
            .join(" ")
            .contains("--semi-sync-degrade operator"));
        assert_eq!(
            c.security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        let claim = format!("data-{name}");
        wait_for(&format!("claim {claim}"), T, || get(&pvcs, &claim)).await;
    }

    // Services: `cache` selects one pod by name (none until a master serves), `cache-ro` the
    // replica, plus the headless one.
    let rw = wait_for("Service cache", T, || get(&services, "cache")).await;
    let sel = rw.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(sel["redispair.io/pair"], "cache");
    assert!(sel.contains_key("redispair.io/pod"));
    assert_eq!(
        rw.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        6379
    );
    let ro = wait_for("Service cache-ro", T, || get(&services, "cache-ro")).await;
    assert!(ro
        .spec
        .unwrap()
        .selector
        .unwrap()
        .contains_key("redispair.io/pod"));
    let headless = wait_for("Service cache-headless", T, || {
        get(&services, "cache-headless")
    })
    .await;
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    wait_for("PDB cache", T, || get(&pdbs, "cache")).await;

    // The named password Secret did not exist: the operator created it, and its own admin one.
    let pw = wait_for("Secret cache-password", T, || {
        get(&secrets, "cache-password")
    })
    .await;
    assert_eq!(pw.data.unwrap()["password"].0.len(), 32);
    wait_for("Secret cache-admin", T, || get(&secrets, "cache-admin")).await;

    // Status and printer columns.
    let status = wait_for("status", T, || async {
        get(&pairs, "cache")
            .await?
            .status
            .filter(|s| s.phase.is_some())
    })
    .await;
    assert_eq!(status.phase.as_deref(), Some("Creating"));
    assert_eq!(status.observed_generation, Some(1));
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "Ready",
            "Replicating",
            "FailingOver",
            "Degraded",
            "Progressing"
        ]
    );
    assert_eq!(status.services.as_ref().unwrap().read_write, "cache");
    let row = wait_for("printer columns", T, || table_row(&client, &ns, "cache")).await;
    let names: Vec<_> = row.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        names,
        ["Name", "Master", "Replica", "Phase", "Mode", "Lag", "Age"]
    );
    let cell = |c: &str| row.iter().find(|(n, _)| n == c).unwrap().1.clone();
    assert_eq!(
        (cell("Phase").as_str(), cell("Mode").as_str()),
        ("Creating", "semi-sync")
    );

    // Events for the transition.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("a PhaseChanged Event", T, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("PhaseChanged")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("cache")
            })
            .then_some(())
    })
    .await;

    // Deleting the pair removes everything it owns (owner references + the garbage collector).
    pairs
        .delete("cache", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        "every owned object to be gone",
        Duration::from_secs(60),
        || async {
            let left = [
                get(&pods, "cache-a").await.is_some(),
                get(&pods, "cache-b").await.is_some(),
                get(&services, "cache").await.is_some(),
                get(&services, "cache-ro").await.is_some(),
                get(&services, "cache-headless").await.is_some(),
                get(&secrets, "cache-password").await.is_some(),
                get(&secrets, "cache-admin").await.is_some(),
                get(&pdbs, "cache").await.is_some(),
                get(&pvcs, "data-cache-a").await.is_some(),
                get(&pvcs, "data-cache-b").await.is_some(),
            ];
            (!left.contains(&true)).then_some(())
        },
    )
    .await;
    operator.abort();
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_user_secret_without_the_key_is_a_condition_and_an_event_not_a_crash() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-invalid", Some(TEST_IMAGE), "operator-test").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("user-secret".into()),
                    ..Default::default()
                },
                data: Some([("other".to_string(), ByteString(b"x".to_vec()))].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(
        "apiVersion: redispair.io/v1alpha1\nkind: RedisPair\nmetadata:\n  name: bad\nspec:\n  auth:\n    passwordSecret:\n      name: user-secret\n",
    )
    .unwrap();
    pairs.create(&PostParams::default(), &pair).await.unwrap();
    let status = wait_for("the InvalidSpec condition", T, || async {
        let s = get(&pairs, "bad").await?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")
            .then_some(s)
    })
    .await;
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let ready = &status.conditions[0];
    assert!(ready.message.contains("user-secret"), "{}", ready.message);
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("an InvalidSpec Event", T, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;
    // Nothing was created for an invalid pair, and the user's Secret is untouched.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    assert!(get(&pods, "bad-a").await.is_none());
    let s = get(&secrets, "user-secret").await.unwrap();
    assert!(s.data.unwrap().contains_key("other"));
    // The operator is still running.
    assert!(!operator.is_finished());
    operator.abort();
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn fixing_a_bad_secret_reconciles_at_once_and_pods_carry_no_password() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-secret-fix", Some(TEST_IMAGE), "operator-test").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = |key: &str, value: &str| Secret {
        metadata: ObjectMeta {
            name: Some("fixable".into()),
            ..Default::default()
        },
        data: Some([(key.to_string(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret("wrong-key", "x"))
        .await
        .unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let pair: RedisPair = serde_yaml::from_str(
        "apiVersion: redispair.io/v1alpha1\nkind: RedisPair\nmetadata:\n  name: fix\nspec:\n  storage:\n    ephemeral: true\n  auth:\n    passwordSecret:\n      name: fixable\n",
    )
    .unwrap();
    pairs.create(&PostParams::default(), &pair).await.unwrap();
    wait_for("the InvalidSpec condition", T, || async {
        let s = get(&pairs, "fix").await?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")
            .then_some(())
    })
    .await;
    // An invalid pair waits for a change (no periodic pass): only the Secret watch can bring
    // the fix in. Replacing the Secret with the right key is reconciled at once.
    let password = "fixed-password-value";
    secrets
        .replace(
            "fixable",
            &PostParams::default(),
            &secret("password", password),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = wait_for("pod fix-a after the fix", T, || get(&pods, "fix-a")).await;
    let status = wait_for("InvalidSpec to clear", T, || async {
        let s = get(&pairs, "fix").await?.status?;
        (!s.conditions.iter().any(|c| c.reason == "InvalidSpec")).then_some(s)
    })
    .await;
    assert_ne!(status.phase.as_deref(), Some("Failed"));

    // The pod spec holds no password (values or references), only the mounted files.
    let admin = get(&secrets, "fix-admin").await.unwrap().data.unwrap()["password"].clone();
    let admin = String::from_utf8(admin.0).unwrap();
    let spec_text = serde_json::to_string(pod.spec.as_ref().unwrap()).unwrap();
    assert!(!spec_text.contains(password), "{spec_text}");
    assert!(!spec_text.contains(&admin), "{spec_text}");
    let spec = pod.spec.unwrap();
    let c = &spec.containers[0];
    assert!(c.env.as_ref().is_none_or(|e| e.is_empty()), "{:?}", c.env);
    let args = c.args.as_ref().unwrap().join(" ");
    assert!(args.contains("--requirepass-file /var/run/redispair/secrets/password"));
    assert!(!args.contains("$("), "{args}");
    let vol = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "secrets")
        .unwrap();
    let sources = vol.projected.unwrap().sources.unwrap();
    assert_eq!(sources[0].secret.as_ref().unwrap().name, "fixable");
    assert_eq!(sources[1].secret.as_ref().unwrap().name, "fix-admin");
    // New pods record the version of the password they start with.
    let applied = pod.metadata.annotations.unwrap()["redispair.io/password-applied"].clone();
    assert!(applied.ends_with("/0"), "{applied}");
    assert!(!applied.contains(password));
    assert!(!operator.is_finished());
    operator.abort();
    delete_namespace(&client, &ns).await;
}

/// `migrateFrom.tls` on a real API server: a missing client-certificate Secret, then one
/// without `tls.key`, is `InvalidSpec` naming it, with a Warning Event and no pod (the
/// migration does not start, nothing waits for a volume); fixed, the pods get both Secrets
/// mounted whole and the `master-tls-*` flags, and `MigrationSourceVerified` is True. A second
/// pair with `insecureSkipVerify` gets it False and a Warning Event.
#[tokio::test]
async fn a_tls_migration_source_gets_its_secrets_mounted_and_a_missing_one_blocks_the_start() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-mig-tls", Some(TEST_IMAGE), "operator-test").await;
    let dir = std::env::temp_dir().join(format!("rp-mig-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = tls_support::make_ca(&dir, "source-ca");
    let leaf = tls_support::make_leaf(&dir, &ca, "migrator");
    let read = |p: &std::path::Path| ByteString(std::fs::read(p).unwrap());
    let secret = |name: &str, data: Vec<(&str, ByteString)>| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(data.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &secret("src-ca", vec![("ca.crt", read(&ca.crt))]),
        )
        .await
        .unwrap();
    // A source nobody listens on: the operator's probe fails fast, which is reported, not
    // fatal. Pods stay Pending (no node matches), so no engine is contacted.
    let pair: RedisPair = serde_yaml::from_str(&format!(
        "apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata: {{name: mig}}
spec:
  storage: {{ephemeral: true}}
  pod: {{nodeSelector: {{redispair.io/test-no-such-node: 'true'}}}}
  bootstrap:
    migrateFrom:
      host: 127.0.0.1
      port: {}
      tls: {{caSecret: src-ca, serverName: old-redis.example, clientCertSecret: src-client}}
",
        free_port()
    ))
    .unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    pairs.create(&PostParams::default(), &pair).await.unwrap();
    let invalid_naming = |needle: &'static str| {
        let pairs = pairs.clone();
        async move {
            wait_for(&format!("InvalidSpec naming {needle}"), T, || async {
                let s = get(&pairs, "mig").await?.status?;
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")
                    .filter(|c| c.message.contains(needle))
                    .map(|c| c.message.clone())
            })
            .await
        }
    };
    let message = invalid_naming("src-client").await;
    assert!(message.contains("does not exist"), "{message}");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("a Warning Event naming the Secret", T, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("InvalidSpec")
                    && e.note.as_deref().is_some_and(|n| n.contains("src-client"))
            })
            .then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    assert!(
        get(&pods, "mig-a").await.is_none(),
        "no pod without the Secret"
    );
    // The Secret appears without its key: the Secret watch brings it in, still refused.
    secrets
        .create(
            &PostParams::default(),
            &secret("src-client", vec![("tls.crt", read(&leaf.crt))]),
        )
        .await
        .unwrap();
    let message = invalid_naming("tls.key").await;
    assert!(message.contains("src-client"), "{message}");
    assert!(
        get(&pods, "mig-a").await.is_none(),
        "no pod without the key"
    );
    // Fixed: the pods are built with the source's Secrets and settings.
    secrets
        .replace(
            "src-client",
            &PostParams::default(),
            &secret(
                "src-client",
                vec![("tls.crt", read(&leaf.crt)), ("tls.key", read(&leaf.key))],
            ),
        )
        .await
        .unwrap();
    for name in ["mig-a", "mig-b"] {
        let pod = wait_for(&format!("pod {name}"), T, || get(&pods, name)).await;
        let spec = pod.spec.unwrap();
        let args = spec.containers[0].args.clone().unwrap().join(" ");
        for flag in [
            "--master-tls-ca-cert-file /var/run/redispair/source-tls/ca/ca.crt",
            "--master-tls-cert-file /var/run/redispair/source-tls/client/tls.crt",
            "--master-tls-key-file /var/run/redispair/source-tls/client/tls.key",
            "--master-tls-server-name old-redis.example",
        ] {
            assert!(args.contains(flag), "{name}: {flag} in {args}");
        }
        assert!(!args.contains("master-tls-verify"), "{args}");
        for (volume, secret_name, dir) in [
            ("source-ca", "src-ca", "/var/run/redispair/source-tls/ca"),
            (
                "source-client",
                "src-client",
                "/var/run/redispair/source-tls/client",
            ),
        ] {
            let vol = spec
                .volumes
                .as_ref()
                .unwrap()
                .iter()
                .find(|v| v.name == volume)
                .unwrap_or_else(|| panic!("{name}: volume {volume}"));
            let s = vol.secret.as_ref().unwrap();
            assert_eq!(s.secret_name.as_deref(), Some(secret_name));
            assert_eq!(s.default_mode, Some(0o440));
            let mount = spec.containers[0]
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.name == volume)
                .unwrap();
            assert_eq!(mount.mount_path, dir);
            assert_eq!(mount.read_only, Some(true));
        }
    }
    let status = wait_for("MigrationSourceVerified True", T, || async {
        let s = get(&pairs, "mig").await?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "MigrationSourceVerified" && c.status == "True")
            .then_some(s)
    })
    .await;
    assert!(!status.conditions.iter().any(|c| c.reason == "InvalidSpec"));
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "MigrationSourceVerified")
        .unwrap();
    assert!(
        c.message.contains("src-ca") && c.message.contains("old-redis.example"),
        "{}",
        c.message
    );

    // insecureSkipVerify: the schema refuses it with a CA (nothing would be verified against
    // it); alone it is accepted, and loud.
    let unverified = |extra: &str| -> RedisPair {
        serde_yaml::from_str(&format!(
            "apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata: {{name: unv}}
spec:
  storage: {{ephemeral: true}}
  pod: {{nodeSelector: {{redispair.io/test-no-such-node: 'true'}}}}
  bootstrap:
    migrateFrom:
      host: 127.0.0.1
      port: {}
      tls: {{insecureSkipVerify: true{extra}}}
",
            free_port()
        ))
        .unwrap()
    };
    let refused = pairs
        .create(&PostParams::default(), &unverified(", caSecret: src-ca"))
        .await
        .expect_err("insecureSkipVerify with a caSecret is refused by the schema");
    assert!(
        refused.to_string().contains("insecureSkipVerify"),
        "{refused}"
    );
    pairs
        .create(&PostParams::default(), &unverified(""))
        .await
        .unwrap();
    let c = wait_for("MigrationSourceVerified False", T, || async {
        let s = get(&pairs, "unv").await?.status?;
        s.conditions
            .into_iter()
            .find(|c| c.type_ == "MigrationSourceVerified" && c.status == "False")
    })
    .await;
    assert_eq!(c.reason, "SourceVerificationSkipped");
    wait_for("a SourceVerificationSkipped Warning Event", T, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("SourceVerificationSkipped")
            })
            .then_some(())
    })
    .await;
    let pod = wait_for("pod unv-a", T, || get(&pods, "unv-a")).await;
    let args = pod.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap()
        .join(" ");
    assert!(args.contains("--master-tls-verify no"), "{args}");
    assert!(!operator.is_finished());
    operator.abort();
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
