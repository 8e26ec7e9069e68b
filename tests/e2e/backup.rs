//! Point-in-time recovery on the cluster (issue 16): a pair archiving to S3 (SeaweedFS, which
//! `hack/e2e.sh` runs in a network namespace on the cluster's bridge), writes, an on-demand
//! base backup (`RedisPairBackup`), more writes with a target time taken between two
//! acknowledged writes, then a new pair bootstrapped with `spec.bootstrap.recovery` to that
//! time: every key acknowledged before the target is there with its value, none written after
//! it. Does I/O: the Kubernetes API, Redis over TCP.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use redispair::api::{
    BackupSpec, BootstrapSpec, LocalSecretRef, ObjectStoreSpec, RecoverySpec, RedisPairBackup,
    RedisPairBackupSpec,
};

use crate::cluster::{client, poll, PairUnderTest};
use crate::env::E2eEnv;
use crate::writer::connect;

/// The S3 endpoint `hack/e2e.sh` started (E2E_S3_*), reachable from pods and from this host.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn s3_from_env() -> Option<S3> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(S3 {
        endpoint: var("E2E_S3_ENDPOINT")?,
        bucket: var("E2E_S3_BUCKET")?,
        access_key: var("E2E_S3_ACCESS_KEY")?,
        secret_key: var("E2E_S3_SECRET_KEY")?,
    })
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

async fn set_keys(
    rw: &mut redis::aio::MultiplexedConnection,
    from: usize,
    to: usize,
) -> Vec<String> {
    let mut keys = Vec::new();
    for i in from..to {
        let key = format!("pitr:{i}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(format!("v{i}"))
            .query_async(rw)
            .await
            .unwrap_or_else(|e| panic!("SET {key}: {e}"));
        keys.push(key);
    }
    keys
}

pub async fn run_point_in_time_recovery_case(name: &str) {
    let Some(s3) = s3_from_env() else {
        eprintln!("SKIPPED {name}: no S3 endpoint (E2E_S3_ENDPOINT...; hack/e2e.sh --provider local starts one)");
        return;
    };
    let env = E2eEnv::from_env();
    let client: Client = client(&env).await;
    let ns = env.namespace.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let creds = format!("{name}-s3");
    let _ = secrets.delete(&creds, &Default::default()).await;
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(creds.clone()),
                    ..Default::default()
                },
                string_data: Some(
                    [
                        ("AWS_ACCESS_KEY_ID".to_string(), s3.access_key.clone()),
                        ("AWS_SECRET_ACCESS_KEY".to_string(), s3.secret_key.clone()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
        )
        .await
        .expect("creating the S3 credentials Secret");
    // A prefix of this run's own: an engine refuses to continue another pair's history.
    let store = ObjectStoreSpec {
        destination_path: format!("s3://{}/e2e/{name}-{}", s3.bucket, now_ms()),
        endpoint_url: Some(s3.endpoint.clone()),
        region: None,
        credentials_secret: Some(LocalSecretRef {
            name: creds.clone(),
        }),
    };
    let started = std::time::Instant::now();
    let source = PairUnderTest::create_with(&client, &env, name, |p| {
        p.spec.backup = Some(BackupSpec {
            destination: store.clone(),
            schedule: None,
            retention: None,
        });
        // Uploads every 200 ms when writes are few: the archive catches up quickly.
        p.spec.engine.extra_config = vec!["archive-timeout 200".into()];
    })
    .await;
    let h = source
        .wait_healthy("the archiving pair to be Ready", Duration::from_secs(120))
        .await;
    let rw_ip = source.cluster_ip(name).await;
    let mut rw = connect(&rw_ip, 6379, &source.password)
        .await
        .expect("connecting to the read-write Service");

    // Writes, then an on-demand base backup, as `kubectl redispair backup` makes it.
    let mut before = set_keys(&mut rw, 0, 200).await;
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &ns);
    let backup_name = format!("{name}-b1");
    let _ = backups.delete(&backup_name, &Default::default()).await;
    backups
        .create(
            &PostParams::default(),
            &RedisPairBackup::new(
                &backup_name,
                RedisPairBackupSpec {
                    pair: name.to_string(),
                },
            ),
        )
        .await
        .expect("creating the RedisPairBackup");
    let t_backup = std::time::Instant::now();
    let done = source
        .expect(
            "the backup to complete",
            Duration::from_secs(90),
            || async {
                let s = backups.get_opt(&backup_name).await.ok()??.status?;
                assert_ne!(s.phase.as_deref(), Some("Failed"), "{s:?}");
                (s.phase.as_deref() == Some("Completed")).then_some(s)
            },
        )
        .await;
    let backup_secs = t_backup.elapsed().as_secs_f64();
    assert_eq!(done.pod.as_deref(), Some(h.master.as_str()));
    assert!(done.size.unwrap_or(0) > 0, "{done:?}");

    // More writes; the target time falls between two acknowledged writes: key 299 was
    // acknowledged before it, key 300 is sent only once the clock has moved past its
    // millisecond (the archive's time index has millisecond labels).
    before.extend(set_keys(&mut rw, 200, 300).await);
    let target_ms = now_ms();
    while now_ms() <= target_ms {
        tokio::task::yield_now().await;
    }
    let after = set_keys(&mut rw, 300, 400).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut rw)
        .await
        .unwrap();
    let end_offset: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("master_repl_offset");
    // The archive holds every write (the pair's status reports it from the master's INFO).
    let status = source
        .expect(
            "the archive to catch up",
            Duration::from_secs(60),
            || async {
                let b = source.status().await?.backup?;
                (b.archived_offset? >= end_offset).then_some(b)
            },
        )
        .await;
    assert_eq!(status.archive_status.as_deref(), Some("ok"), "{status:?}");
    assert_eq!(status.last_backup.as_deref(), Some(backup_name.as_str()));

    // A new pair restored to the target time.
    let target = jiff::Timestamp::from_millisecond(target_ms)
        .unwrap()
        .to_string();
    let restored_name = format!("{name}-pitr");
    let t_restore = std::time::Instant::now();
    let restored = PairUnderTest::create_with(&client, &env, &restored_name, |p| {
        p.spec.bootstrap = Some(BootstrapSpec {
            recovery: Some(RecoverySpec {
                source: store.clone(),
                backup: None,
                target_time: Some(target.clone()),
                target_offset: None,
            }),
            ..Default::default()
        });
    })
    .await;
    let rh = restored
        .wait_healthy("the restored pair to be Ready", Duration::from_secs(120))
        .await;
    let restore_secs = t_restore.elapsed().as_secs_f64();
    assert_eq!(
        rh.master,
        format!("{restored_name}-a"),
        "the restored pod is the first master"
    );
    let ip = restored.cluster_ip(&restored_name).await;
    let mut r = connect(&ip, 6379, &restored.password)
        .await
        .expect("connecting to the restored pair");
    for (i, key) in before.iter().enumerate() {
        let v: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut r)
            .await
            .unwrap();
        assert_eq!(
            v,
            Some(format!("v{i}")),
            "{key}, acknowledged before the target"
        );
    }
    for key in &after {
        let v: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut r)
            .await
            .unwrap();
        assert_eq!(v, None, "{key} was written after the target");
    }
    let size: i64 = redis::cmd("DBSIZE").query_async(&mut r).await.unwrap();
    assert_eq!(size, before.len() as i64);
    // The replica synced the restored data too.
    let ro_ip = restored.cluster_ip(&format!("{restored_name}-ro")).await;
    let synced = poll(Duration::from_secs(30), || async {
        let mut ro = connect(&ro_ip, 6379, &restored.password).await.ok()?;
        let n: i64 = redis::cmd("DBSIZE").query_async(&mut ro).await.ok()?;
        (n == before.len() as i64).then_some(())
    })
    .await;
    assert!(synced.is_some(), "the restored pair's replica has the data");
    eprintln!(
        "{name}: backup {backup_secs:.1} s, restore to Ready {restore_secs:.1} s, case {:.0} s",
        started.elapsed().as_secs_f64()
    );
    restored.delete().await;
    source.delete().await;
    let _ = backups.delete(&backup_name, &Default::default()).await;
    let _ = secrets.delete(&creds, &Default::default()).await;
}
