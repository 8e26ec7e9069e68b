//! Backup and recovery through the API (issue 16), on a real kube-apiserver with no kubelets
//! (pods stay Pending, so no engine runs: the e2e stage covers archiving and restoring for
//! real): the CRD's validation of `spec.backup`, `spec.bootstrap.recovery` and
//! `RedisPairBackup`; the engine pods the operator builds (archive flags, credentials as a
//! mounted Secret, the restore step in the first pod only); backups waiting for a master,
//! failing without `spec.backup`; and the schedule creating a backup. Does I/O: the
//! Kubernetes API.

mod operator_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use operator_support::*;
use redispair::api::{RedisPair, RedisPairBackup, RedisPairBackupSpec};

const T: Duration = Duration::from_secs(30);
const TEST_IMAGE: &str = "localhost/redispair/redispair:test";

async fn get<K>(api: &Api<K>, name: &str) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.ok().flatten()
}

fn pair_yaml(name: &str, extra: &str) -> RedisPair {
    serde_yaml::from_str(&format!(
        "apiVersion: redispair.io/v1alpha1\nkind: RedisPair\nmetadata:\n  name: {name}\nspec:\n  storage:\n    ephemeral: true\n{extra}"
    ))
    .unwrap()
}

const BACKUP: &str = "  backup:
    destination:
      destinationPath: s3://bucket/shop/cache
      endpointURL: http://127.0.0.1:9
      credentialsSecret:
        name: s3-creds
    schedule: '* * * * *'
    retention: 7d
";

const RECOVERY: &str = "  bootstrap:
    recovery:
      source:
        destinationPath: s3://bucket/shop/old
        endpointURL: http://127.0.0.1:9
        credentialsSecret:
          name: s3-creds
      targetTime: '2026-12-06T10:00:00Z'
";

fn backup(name: &str, pair: &str) -> RedisPairBackup {
    RedisPairBackup::new(
        name,
        RedisPairBackupSpec {
            pair: pair.to_string(),
        },
    )
}

#[tokio::test]
async fn the_crd_rejects_bad_backup_and_recovery_specs() {
    let client = client().await;
    install_crd(&client).await;
    let ns = temp_namespace(&client, "rp-backup-crd").await;
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    for (extra, message) in [
        (
            "  backup:\n    destination:\n      destinationPath: ftp://x\n",
            "destinationPath must be",
        ),
        (
            "  backup:\n    destination:\n      destinationPath: s3://b/p\n    retention: 7 days\n",
            "backup.retention must be",
        ),
        (
            "  bootstrap:\n    recovery:\n      source:\n        destinationPath: s3://b/p\n      targetTime: yesterday\n",
            "targetTime must be an RFC 3339 time",
        ),
        (
            "  bootstrap:\n    recovery:\n      source:\n        destinationPath: s3://b/p\n      targetTime: '2026-12-06T10:00:00Z'\n      targetOffset: 5\n",
            "give targetTime or targetOffset, not both",
        ),
    ] {
        let err = pairs
            .create(&PostParams::default(), &pair_yaml("bad", extra))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{extra}: {err}");
    }
    // spec.bootstrap is read once: it cannot change afterwards.
    pairs
        .create(&PostParams::default(), &pair_yaml("boot", RECOVERY))
        .await
        .unwrap();
    let change = serde_json::json!({"spec": {"bootstrap": {"recovery": {"targetOffset": 7, "targetTime": null}}}});
    let err = pairs
        .patch("boot", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.bootstrap is immutable"), "{err}");
    // A backup's pair cannot change either.
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &ns);
    backups
        .create(&PostParams::default(), &backup("b", "boot"))
        .await
        .unwrap();
    let err = backups
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"pair": "other"}})),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.pair is immutable"), "{err}");
    delete_namespace(&client, &ns).await;
}

#[tokio::test]
async fn pods_archive_with_mounted_credentials_backups_wait_and_the_schedule_fires() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-backup", Some(TEST_IMAGE), "operator-test").await;
    let secret_value = "s3-secret-never-in-a-pod-spec";
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "s3-creds",
                &[
                    ("AWS_ACCESS_KEY_ID", "key-id"),
                    ("AWS_SECRET_ACCESS_KEY", secret_value),
                ],
            ),
        )
        .await
        .unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    pairs
        .create(
            &PostParams::default(),
            &pair_yaml("cache", &format!("{BACKUP}{RECOVERY}")),
        )
        .await
        .unwrap();
    pairs
        .create(&PostParams::default(), &pair_yaml("plain", ""))
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let a = wait_for("pod cache-a", T, || get(&pods, "cache-a")).await;
    let b = wait_for("pod cache-b", T, || get(&pods, "cache-b")).await;
    for p in [&a, &b] {
        let text = serde_json::to_string(p).unwrap();
        assert!(!text.contains(secret_value), "a secret in the pod spec");
        let spec = p.spec.as_ref().unwrap();
        let args = spec.containers[0].args.clone().unwrap();
        let after = |flag: &str| args[args.iter().position(|x| x == flag).unwrap() + 1].clone();
        assert_eq!(after("--archive-url"), "s3://bucket/shop/cache");
        assert_eq!(after("--archive-retention"), "7d");
        let creds = after("--archive-credentials-dir");
        let mount = spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == creds)
            .expect("the credentials directory is a mount");
        let vol = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert_eq!(
            vol.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("s3-creds")
        );
    }
    // The restore step: in the first pod only (the one elected), before the engine.
    let init = a.spec.as_ref().unwrap().init_containers.clone().unwrap();
    let args = init[0].args.clone().unwrap();
    assert_eq!(&args[..3], ["restore", "--once", "--from"]);
    assert!(
        args.contains(&"2026-12-06T10:00:00Z".to_string()),
        "{args:?}"
    );
    assert!(b.spec.as_ref().unwrap().init_containers.is_none());

    // No master (pods never run here): an on-demand backup waits, Pending, with its id and
    // location; one of a pair without spec.backup fails, saying why.
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &ns);
    backups
        .create(&PostParams::default(), &backup("now", "cache"))
        .await
        .unwrap();
    backups
        .create(&PostParams::default(), &backup("nowhere", "plain"))
        .await
        .unwrap();
    let s = wait_for("backup now to be Pending", T, || async {
        let s = get(&backups, "now").await?.status?;
        (s.phase.as_deref() == Some("Pending")).then_some(s)
    })
    .await;
    let id = s.backup_id.unwrap();
    assert!(id.starts_with("now-"), "{id}");
    assert_eq!(
        s.location.as_deref(),
        Some(format!("s3://bucket/shop/cache/base/{id}/").as_str())
    );
    let s = wait_for("backup nowhere to fail", T, || async {
        let s = get(&backups, "nowhere").await?.status?;
        (s.phase.as_deref() == Some("Failed")).then_some(s)
    })
    .await;
    assert!(s.error.unwrap().contains("no spec.backup"));

    // `* * * * *`: within a minute and a bit the schedule creates a backup owned by the pair,
    // and the pair's status says when.
    let scheduled = wait_for("the scheduled backup", Duration::from_secs(90), || async {
        let l = backups
            .list(&ListParams::default().labels("redispair.io/scheduled=true"))
            .await
            .ok()?;
        l.items.into_iter().next()
    })
    .await;
    assert_eq!(scheduled.spec.pair, "cache");
    assert_eq!(
        scheduled.metadata.owner_references.unwrap()[0].name,
        "cache"
    );
    let status = wait_for("lastScheduleTime", T, || async {
        get(&pairs, "cache")
            .await?
            .status?
            .backup?
            .last_schedule_time
    })
    .await;
    assert!(status.parse::<jiff::Timestamp>().is_ok(), "{status}");
    operator.abort();
    delete_namespace(&client, &ns).await;
}

/// The `BackupCredentials` condition of a pair: (status, message).
async fn backup_credentials(pairs: &Api<RedisPair>, name: &str) -> Option<(String, String)> {
    get(pairs, name)
        .await?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "BackupCredentials")
        .map(|c| (c.status, c.message))
}

/// A missing Secret, then one with a misspelt key, then the right one: each is reported by
/// name (condition and Warning Event) while the pods are built as usual and never replaced,
/// the pair never InvalidSpec; the fix clears the condition at once (the Secret watch).
#[tokio::test]
async fn a_missing_or_wrong_credentials_secret_is_named_and_blocks_nothing() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-backup-creds", Some(TEST_IMAGE), "operator-test").await;
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let only_archive = BACKUP.replace("    schedule: '* * * * *'\n", "");
    pairs
        .create(&PostParams::default(), &pair_yaml("cache", &only_archive))
        .await
        .unwrap();
    // The pods are built although the Secret is missing: a backup problem blocks nothing.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let a = wait_for("pod cache-a", T, || get(&pods, "cache-a")).await;
    let b = wait_for("pod cache-b", T, || get(&pods, "cache-b")).await;
    let (s, message) = wait_for("BackupCredentials=False", T, || async {
        backup_credentials(&pairs, "cache")
            .await
            .filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(s, "False");
    assert_eq!(
        message,
        "spec.backup.destination.credentialsSecret: Secret s3-creds does not exist"
    );
    let events = || events(&client, &ns);
    wait_for("a Warning Event naming the Secret", T, || async {
        events().await.into_iter().find(|(r, t, m)| {
            r == "BackupCredentialsInvalid" && t == "Warning" && m.contains("Secret s3-creds")
        })
    })
    .await;

    // A Secret whose secret key is misspelt: the message names the key it lacks and shows
    // the ones it has.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = |keys: &[(&str, &str)]| secret("s3-creds", keys);
    secrets
        .create(
            &PostParams::default(),
            &secret(&[("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_KEY", "s")]),
        )
        .await
        .unwrap();
    let wrong = "spec.backup.destination.credentialsSecret: Secret s3-creds has no key AWS_SECRET_ACCESS_KEY (s3:// needs it; the Secret has keys AWS_ACCESS_KEY_ID, AWS_SECRET_KEY)";
    wait_for("the missing key named", T, || async {
        backup_credentials(&pairs, "cache")
            .await
            .filter(|(s, m)| s == "False" && m == wrong)
    })
    .await;
    wait_for("a Warning Event naming the key", T, || async {
        events().await.into_iter().find(|(r, _, m)| {
            r == "BackupCredentialsInvalid" && m.contains("AWS_SECRET_ACCESS_KEY")
        })
    })
    .await;

    // Fixed: the Secret watch reconciles the pair, the condition turns True.
    secrets
        .replace(
            "s3-creds",
            &PostParams::default(),
            &secret(&[("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "s")]),
        )
        .await
        .unwrap();
    wait_for("BackupCredentials=True", T, || async {
        backup_credentials(&pairs, "cache")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;
    wait_for("a Normal Event saying so", T, || async {
        events()
            .await
            .into_iter()
            .find(|(r, t, _)| r == "BackupCredentialsValid" && t == "Normal")
    })
    .await;

    // Through all of it: the same two pods (no churn), the pair never InvalidSpec.
    for (before, name) in [(&a, "cache-a"), (&b, "cache-b")] {
        let now = get(&pods, name).await.expect("the pod is still there");
        assert_eq!(now.metadata.uid, before.metadata.uid, "{name} was replaced");
        assert_eq!(
            now.metadata.annotations.as_ref().unwrap()["redispair.io/spec-hash"],
            before.metadata.annotations.as_ref().unwrap()["redispair.io/spec-hash"]
        );
    }
    let status = get(&pairs, "cache").await.unwrap().status.unwrap();
    assert_ne!(status.phase.as_deref(), Some("Failed"));
    assert!(
        status.conditions.iter().all(|c| c.reason != "InvalidSpec"),
        "{:?}",
        status.conditions
    );
    assert!(events().await.iter().all(|(r, _, _)| r != "InvalidSpec"));
    operator.abort();
    delete_namespace(&client, &ns).await;
}

/// A rollback through the API (no kubelet: the pods never run, so the restore itself is the
/// engine tests' and e2e's): a request whose confirmation is not the pair's name is refused,
/// with a Warning Event, and nothing happens; a confirmed one records Fencing, cuts clients
/// off (the read-write Service selects nothing), deletes both pods, and rebuilds the first
/// with the restore step on the pair's own archive (its marker, the target) while the other
/// gets none; the failover record is reset for a new election.
#[tokio::test]
async fn a_rollback_is_refused_without_confirmation_and_otherwise_rebuilds_from_the_archive() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-rollback", Some(TEST_IMAGE), "operator-test").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "s3-creds",
                &[("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "s")],
            ),
        )
        .await
        .unwrap();
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    let only_archive = BACKUP.replace("    schedule: '* * * * *'\n", "");
    pairs
        .create(&PostParams::default(), &pair_yaml("cache", &only_archive))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let a = wait_for("pod cache-a", T, || get(&pods, "cache-a")).await;
    let b = wait_for("pod cache-b", T, || get(&pods, "cache-b")).await;
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap();
    let annotate = |value: &str| {
        let patch =
            serde_json::json!({"metadata": {"annotations": {"redispair.io/rollback": value}}});
        let pairs = pairs.clone();
        async move {
            pairs
                .patch("cache", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    let rollback = || async { get(&pairs, "cache").await?.status?.rollback };

    // Not confirmed: refused, said so, nothing touched.
    annotate(r#"{"id":"r0","confirm":"nope","targetTime":"2026-12-06T10:00:00Z"}"#).await;
    let refused = wait_for("the refusal", T, || async {
        rollback().await.filter(|r| r.id == "r0")
    })
    .await;
    assert_eq!(refused.phase, redispair::api::RollbackPhase::Failed);
    assert!(
        refused
            .message
            .contains("must repeat the pair's name (cache)"),
        "{}",
        refused.message
    );
    let events = || events(&client, &ns);
    wait_for("a Warning Event", T, || async {
        events()
            .await
            .into_iter()
            .find(|(r, t, _)| r == "RollbackRefused" && t == "Warning")
    })
    .await;
    assert_eq!(uid(&get(&pods, "cache-a").await.unwrap()), uid(&a));
    assert_eq!(uid(&get(&pods, "cache-b").await.unwrap()), uid(&b));

    // Confirmed: both pods replaced, the first restoring from the pair's own archive.
    annotate(r#"{"id":"r1","confirm":"cache","targetTime":"2026-12-06T10:00:00Z"}"#).await;
    let restoring = wait_for("the rollback to reach Restoring", T, || async {
        rollback()
            .await
            .filter(|r| r.id == "r1" && r.phase == redispair::api::RollbackPhase::Restoring)
    })
    .await;
    assert_eq!(restoring.old_pod_uids.len(), 2);
    let new_a = wait_for("a new cache-a", T, || async {
        get(&pods, "cache-a").await.filter(|p| uid(p) != uid(&a))
    })
    .await;
    let new_b = wait_for("a new cache-b", T, || async {
        get(&pods, "cache-b").await.filter(|p| uid(p) != uid(&b))
    })
    .await;
    let init = new_a
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap();
    let args = init[0].args.clone().unwrap();
    let after = |flag: &str| args[args.iter().position(|x| x == flag).unwrap() + 1].clone();
    assert_eq!(args[..2], ["restore", "--once"]);
    assert_eq!(after("--from"), "s3://bucket/shop/cache");
    assert_eq!(after("--marker"), "redispair-rollback-r1.json");
    assert!(args.contains(&"--rollback".to_string()), "{args:?}");
    assert_eq!(after("--target-time"), "2026-12-06T10:00:00Z");
    assert!(args.contains(&"--credentials-dir".to_string()), "{args:?}");
    assert!(new_b.spec.as_ref().unwrap().init_containers.is_none());
    // Clients were cut off, and the failover record starts over (no master decided).
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), &ns);
    let rw = get(&services, "cache").await.unwrap();
    assert_eq!(
        rw.spec.unwrap().selector.unwrap()["redispair.io/pod"],
        "none"
    );
    let status = get(&pairs, "cache").await.unwrap().status.unwrap();
    assert!(status.target_master.is_none(), "{status:?}");
    wait_for("the RollbackStarted Event", T, || async {
        events()
            .await
            .into_iter()
            .find(|(r, _, m)| r == "RollbackStarted" && m.contains("2026-12-06T10:00:00Z"))
    })
    .await;
    operator.abort();
    delete_namespace(&client, &ns).await;
}
