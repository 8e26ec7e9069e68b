//! Issue 16's end-to-end cases beyond the first point-in-time restore (`backup.rs`), on the
//! cluster with SeaweedFS: restores to three recorded points (the third after a failover that
//! happened while the master archived under a writer) and a clone of the live pair, each
//! compared by `DEBUG DIGEST`; a scheduled backup firing, retention shrinking the store's
//! listing while keeping what its window needs, a corrupted object named by the restore's
//! `Restore` condition and Warning Event; the rollback of a running pair. Does I/O: the
//! Kubernetes API, Redis over TCP, the S3 API (objects read, corrupted and repaired from this
//! host), the fault hook.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use redis::aio::MultiplexedConnection;
use redispair::api::{
    BackupSpec, BootstrapSpec, LocalSecretRef, ObjectStoreSpec, RecoverySpec, RedisPairBackup,
    RedisPairBackupSpec, RedisPairBackupStatus, RollbackPhase,
};
use redispair::engine::archive::layout::{resolve_timeline, BackupManifest, WalObject};
use redispair::engine::archive::Archive;

use crate::backup::{now_ms, s3_from_env, S3};
use crate::cluster::{client, poll, PairUnderTest};
use crate::env::E2eEnv;
use crate::writer::{connect, Writer};

/// Generous deadlines: they only catch what did not happen; the figures are printed.
const READY: Duration = Duration::from_secs(180);
const ARCHIVED: Duration = Duration::from_secs(60);

/// One case's archive: the credentials Secret the pods mount, a prefix of its own in the
/// bucket, and a settings directory (one file per setting, as the engine reads a mounted
/// Secret) through which this host opens the same store.
struct Store {
    spec: ObjectStoreSpec,
    url: String,
    host_settings: PathBuf,
    secrets: Api<Secret>,
}

impl Store {
    async fn create(client: &Client, ns: &str, name: &str, s3: &S3) -> Store {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = format!("{name}-s3");
        let _ = secrets.delete(&secret, &Default::default()).await;
        secrets
            .create(
                &PostParams::default(),
                &Secret {
                    metadata: ObjectMeta {
                        name: Some(secret.clone()),
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
        let url = format!("s3://{}/e2e/{name}-{}", s3.bucket, now_ms());
        let host_settings =
            std::env::temp_dir().join(format!("redispair-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&host_settings).expect("the host's S3 settings directory");
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", s3.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", s3.secret_key.as_str()),
            ("AWS_ENDPOINT", s3.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
        ] {
            std::fs::write(host_settings.join(k), v).expect("writing an S3 setting");
        }
        Store {
            spec: ObjectStoreSpec {
                destination_path: url.clone(),
                endpoint_url: Some(s3.endpoint.clone()),
                region: None,
                credentials_secret: Some(LocalSecretRef { name: secret }),
            },
            url,
            host_settings,
            secrets,
        }
    }

    /// The archive as this host sees it through the S3 API.
    fn open(&self) -> Archive {
        Archive::open_with(&self.url, Some(&self.host_settings))
            .unwrap_or_else(|e| panic!("opening {} from the host: {e}", self.url))
    }

    async fn wal(&self) -> Vec<WalObject> {
        self.open()
            .list_wal()
            .await
            .unwrap_or_else(|e| panic!("listing {}/wal: {e}", self.url))
    }

    async fn backups(&self) -> Vec<BackupManifest> {
        self.open()
            .list_backups()
            .await
            .unwrap_or_else(|e| panic!("listing {}/base: {e}", self.url))
    }

    async fn remove(&self) {
        if let Some(s) = &self.spec.credentials_secret {
            let _ = self.secrets.delete(&s.name, &Default::default()).await;
        }
        let _ = std::fs::remove_dir_all(&self.host_settings);
    }
}

/// A pair archiving to `store` (uploads every 200 ms when writes are few, so the archive
/// catches up quickly), with the given schedule and retention.
async fn archiving_pair(
    client: &Client,
    env: &E2eEnv,
    name: &str,
    store: &Store,
    schedule: Option<&str>,
    retention: Option<&str>,
) -> PairUnderTest {
    PairUnderTest::create_with(client, env, name, |p| {
        p.spec.backup = Some(BackupSpec {
            destination: store.spec.clone(),
            schedule: schedule.map(str::to_string),
            retention: retention.map(str::to_string),
        });
        p.spec.engine.extra_config = vec!["archive-timeout 200".into()];
    })
    .await
}

/// Where a restore stops.
#[derive(Clone, Copy)]
enum Target {
    Offset(i64),
    Time(i64),
    /// The archive's end: a clone.
    End,
}

/// A new pair bootstrapped from `store` to `target` (`spec.bootstrap.recovery`).
async fn restored_pair(
    client: &Client,
    env: &E2eEnv,
    name: &str,
    store: &Store,
    target: Target,
) -> PairUnderTest {
    let (target_time, target_offset) = match target {
        Target::Offset(o) => (None, Some(o)),
        Target::Time(ms) => (Some(rfc3339(ms)), None),
        Target::End => (None, None),
    };
    PairUnderTest::create_with(client, env, name, |p| {
        p.spec.bootstrap = Some(BootstrapSpec {
            recovery: Some(RecoverySpec {
                source: store.spec.clone(),
                backup: None,
                target_time,
                target_offset,
            }),
            ..Default::default()
        });
    })
    .await
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("a time in range")
        .to_string()
}

/// One command; a reply that does not come within the connection's 2 s (seen once in a run,
/// a write stalled right after a base backup) is retried, saying so: the points' digests are
/// read from the live pair afterwards, so a write applied twice changes nothing the checks see.
async fn query(c: &mut MultiplexedConnection, cmd: &redis::Cmd, what: &str) -> redis::Value {
    for attempt in 1.. {
        match cmd.query_async(c).await {
            Ok(v) => return v,
            Err(e) if e.is_timeout() && attempt < 5 => {
                eprintln!("{what}: {e} (attempt {attempt}); retrying");
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    unreachable!()
}

/// `n` acknowledged writes of several kinds tagged `tag`, one at a time: strings, a hash, a
/// list, a counter, deletions, deadlines an hour away (far beyond the case: no key expires
/// between a point and its restore) and a transaction. The digest covers all of them.
async fn write_batch(c: &mut MultiplexedConnection, tag: &str, n: usize) {
    for i in 0..n {
        let key = format!("{tag}:{i}");
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(format!("v{i}"));
        query(c, &set, &format!("SET {key}")).await;
        let mut extra = match i % 6 {
            1 => redis::cmd("HSET"),
            2 => redis::cmd("RPUSH"),
            3 => redis::cmd("INCRBY"),
            4 => redis::cmd("DEL"),
            5 => redis::cmd("PEXPIRE"),
            _ => continue,
        };
        match i % 6 {
            1 => extra.arg(format!("h:{tag}")).arg(format!("f{i}")).arg(i),
            2 => extra.arg(format!("l:{tag}")).arg(i),
            3 => extra.arg("counter").arg(i),
            4 => extra.arg(format!("{tag}:{}", i - 1)),
            _ => extra.arg(&key).arg(3_600_000),
        };
        query(c, &extra, &format!("{tag}: write {i}")).await;
    }
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("counter")
        .cmd("SADD")
        .arg("batches")
        .arg(tag)
        .query_async(c)
        .await
        .unwrap_or_else(|e| panic!("{tag}: MULTI/EXEC: {e}"));
}

async fn digest(c: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("DEBUG").arg("DIGEST").query_async(c).await
}

async fn master_offset(c: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(c)
        .await
        .expect("INFO replication");
    info.lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("master_repl_offset in INFO replication")
}

/// A recorded point: the stream offset, the time and the dataset's digest, with no write in
/// between (the case is the only writer when it marks).
#[derive(Clone, Debug)]
struct Point {
    name: &'static str,
    offset: i64,
    time_ms: i64,
    digest: String,
}

async fn mark(c: &mut MultiplexedConnection, name: &'static str) -> Point {
    let offset = master_offset(c).await;
    let digest = digest(c).await.expect("DEBUG DIGEST");
    let time_ms = now_ms();
    // The next write lands in a later millisecond: the archive's time index has millisecond
    // labels, and a restore to `time_ms` keeps every record labelled at or before it.
    while now_ms() <= time_ms {
        tokio::task::yield_now().await;
    }
    Point {
        name,
        offset,
        time_ms,
        digest,
    }
}

/// Until the pair's status (read by the operator from the master's INFO) says the archive
/// holds the stream up to `offset`.
async fn wait_archived(pair: &PairUnderTest, offset: i64) {
    let b = pair
        .expect(
            &format!("the archive to reach offset {offset}"),
            ARCHIVED,
            || async {
                let b = pair.status().await?.backup?;
                (b.archived_offset? >= offset).then_some(b)
            },
        )
        .await;
    assert_eq!(b.archive_status.as_deref(), Some("ok"), "{b:?}");
}

/// A connection to the read-write Service that answers (after a failover or a rollback the
/// Service moves and the first connections may fail).
async fn reconnect(pair: &PairUnderTest, rw_ip: &str) -> MultiplexedConnection {
    pair.expect(
        "a connection through the read-write Service",
        Duration::from_secs(60),
        || async {
            let mut c = connect(rw_ip, 6379, &pair.password).await.ok()?;
            let _: () = redis::cmd("SET")
                .arg("reconnected")
                .arg(1)
                .query_async(&mut c)
                .await
                .ok()?;
            Some(c)
        },
    )
    .await
}

/// An on-demand RedisPairBackup of `pair`, waited on until Completed.
async fn take_backup(
    client: &Client,
    pair: &PairUnderTest,
    backup_name: &str,
) -> RedisPairBackupStatus {
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &pair.namespace);
    let _ = backups.delete(backup_name, &Default::default()).await;
    backups
        .create(
            &PostParams::default(),
            &RedisPairBackup::new(
                backup_name,
                RedisPairBackupSpec {
                    pair: pair.name.clone(),
                },
            ),
        )
        .await
        .expect("creating the RedisPairBackup");
    wait_backup_completed(pair, &backups, backup_name).await
}

async fn wait_backup_completed(
    pair: &PairUnderTest,
    backups: &Api<RedisPairBackup>,
    backup_name: &str,
) -> RedisPairBackupStatus {
    pair.expect(
        &format!("RedisPairBackup {backup_name} Completed"),
        Duration::from_secs(90),
        || async {
            let s = backups.get_opt(backup_name).await.ok()??.status?;
            assert_ne!(s.phase.as_deref(), Some("Failed"), "{backup_name}: {s:?}");
            (s.phase.as_deref() == Some("Completed")).then_some(s)
        },
    )
    .await
}

/// `pair` Ready with its first pod as master (the one that restored), its master's dataset
/// exactly `want`'s, and its replica synced to the same digest.
async fn expect_restored(pair: &PairUnderTest, want: &Point, what: &str) {
    let h = pair
        .wait_healthy(&format!("{what}: the restored pair Ready"), READY)
        .await;
    assert_eq!(
        h.master,
        format!("{}-a", pair.name),
        "{what}: the restored pod is master"
    );
    let ip = pair.cluster_ip(&pair.name).await;
    // Ready pods, but the first connect through the Service timed out in two of six restored
    // pairs of a run (250 ms, a loaded machine): retried within a deadline.
    let got = pair
        .expect(
            &format!("{what}: DEBUG DIGEST through {}", pair.name),
            Duration::from_secs(30),
            || async {
                let mut m = connect(&ip, 6379, &pair.password).await.ok()?;
                digest(&mut m).await.ok()
            },
        )
        .await;
    assert_eq!(
        got, want.digest,
        "{what}: {} holds another dataset than the one recorded at {} (offset {}, time {})",
        pair.name, want.name, want.offset, want.time_ms
    );
    let ro_ip = pair.cluster_ip(&format!("{}-ro", pair.name)).await;
    let synced = poll(Duration::from_secs(60), || async {
        let mut ro = connect(&ro_ip, 6379, &pair.password).await.ok()?;
        (digest(&mut ro).await.ok()? == want.digest).then_some(())
    })
    .await;
    if synced.is_none() {
        pair.dump().await;
        panic!(
            "{what}: {}'s replica never held the restored dataset",
            pair.name
        );
    }
}

async fn set_annotation(pair: &PairUnderTest, key: &str, value: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    pair.pairs
        .patch(&pair.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("annotating {} with {key}: {e}", pair.name));
}

fn skipped(name: &str) {
    eprintln!(
        "SKIPPED {name}: no S3 endpoint (E2E_S3_ENDPOINT...; hack/e2e.sh --provider local starts one)"
    );
}

/// Writes, a base backup, points p1 and p2, then the master's engine killed while a writer
/// runs through the Service (the archive lags the stream by up to `archive-timeout`: the
/// failover happens during archiving), p3 on the new master, and the clone point. Four new
/// pairs: p1 by offset, p2 and p3 by time, and a clone (the archive's end); each holds exactly
/// its point's digest, the p3 one every write the writer had acknowledged. The archive is one
/// chain from the backup to the end, across two terms: no gap.
pub async fn run_points_failover_and_clone_case(name: &str) {
    let Some(s3) = s3_from_env() else {
        return skipped(name);
    };
    let env = E2eEnv::from_env();
    let hook = env.fault_hook();
    let client = client(&env).await;
    let store = Store::create(&client, &env.namespace, name, &s3).await;
    let started = Instant::now();
    let source = archiving_pair(&client, &env, name, &store, None, None).await;
    let before = source.wait_healthy("the archiving pair Ready", READY).await;
    let rw_ip = source.cluster_ip(name).await;
    let mut rw = reconnect(&source, &rw_ip).await;

    write_batch(&mut rw, "a", 150).await;
    let backup = take_backup(&client, &source, &format!("{name}-b1")).await;
    write_batch(&mut rw, "b", 150).await;
    let p1 = mark(&mut rw, "p1").await;
    write_batch(&mut rw, "c", 150).await;
    let p2 = mark(&mut rw, "p2").await;

    // --- a failover during archiving ----------------------------------------------------
    let writer = Writer::start(rw_ip.clone(), 6379, source.password.clone());
    source
        .expect(
            "200 writes of the writer acknowledged",
            Duration::from_secs(60),
            || async { (writer.acked() >= 200).then_some(()) },
        )
        .await;
    let (engine_id, _) = source
        .engine_container(&before.master)
        .await
        .expect("the master's engine container");
    let lag = source.status().await.and_then(|s| s.backup);
    hook.run(&["kill-container", &before.master_node, &engine_id])
        .await;
    let killed = Instant::now();
    let promoted = source
        .expect("the replica promoted in a higher term", READY, || async {
            let s = source.status().await?;
            (s.current_master.as_deref() == Some(before.replica.as_str())
                && s.failover.is_none()
                && s.term > before.term)
                .then_some(s)
        })
        .await;
    let n = writer.acked();
    source
        .expect(
            "200 more writes acknowledged by the new master",
            Duration::from_secs(60),
            || async { (writer.acked() >= n + 200).then_some(()) },
        )
        .await;
    let report = writer.finish().await;
    eprintln!(
        "{name}: master {} engine killed (status.backup then: archivedOffset {:?}, lag {:?} bytes, {:?} ms); {} master in term {} after {:.1} s; the writer had {} writes acknowledged",
        before.master,
        lag.as_ref().and_then(|b| b.archived_offset),
        lag.as_ref().and_then(|b| b.archive_lag_bytes),
        lag.as_ref().and_then(|b| b.archive_lag_ms),
        before.replica,
        promoted.term,
        killed.elapsed().as_secs_f64(),
        report.acks.len()
    );

    let mut rw = reconnect(&source, &rw_ip).await;
    write_batch(&mut rw, "e", 150).await;
    let p3 = mark(&mut rw, "p3").await;
    write_batch(&mut rw, "f", 150).await;
    // The clone's point: the end of the stream, no write after it.
    let end = mark(&mut rw, "clone").await;
    wait_archived(&source, end.offset).await;

    // The archive is one chain from the backup's offset to the end, in both terms.
    let wal = store.wal().await;
    let chain = resolve_timeline(&wal, backup.start_offset.expect("startOffset") as u64);
    let reached = chain.last().map_or(0, |o| o.name.end);
    let mut terms: Vec<u64> = chain.iter().map(|o| o.name.term).collect();
    terms.dedup();
    assert!(
        reached >= end.offset as u64,
        "the archive's chain from the backup ends at {reached}, the stream at {}: {chain:?}",
        end.offset
    );
    assert!(
        terms.len() >= 2,
        "chunks of the old and the new master's terms in the chain: {terms:?}"
    );

    // --- three points and a clone, restored into four new pairs at once ------------------
    let t_restore = Instant::now();
    let cases = [
        (&p1, Target::Offset(p1.offset), "p1, by offset"),
        (
            &p2,
            Target::Time(p2.time_ms),
            "p2, by time, before the failover",
        ),
        (
            &p3,
            Target::Time(p3.time_ms),
            "p3, by time, after the failover",
        ),
        (&end, Target::End, "a clone of the live pair"),
    ];
    let mut restored = Vec::new();
    for (point, target, _) in &cases {
        let pair_name = format!("{name}-{}", point.name);
        restored.push(restored_pair(&client, &env, &pair_name, &store, *target).await);
    }
    for ((point, _, what), pair) in cases.iter().zip(&restored) {
        expect_restored(pair, point, what).await;
    }
    let restore_secs = t_restore.elapsed().as_secs_f64();
    // Every write the writer had acknowledged across the failover is in the p3 restore.
    let p3_ip = restored[2].cluster_ip(&restored[2].name).await;
    let mut p3c = connect(&p3_ip, 6379, &restored[2].password)
        .await
        .expect("connecting to the p3 restore");
    for (key, value) in report.acked_keys() {
        let v: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut p3c)
            .await
            .expect("GET");
        assert_eq!(
            v,
            Some(value.to_string()),
            "{key}, acknowledged around the failover, in the restore to p3"
        );
    }
    // The clone matched the live pair, which has not changed since.
    assert_eq!(digest(&mut rw).await.expect("DEBUG DIGEST"), end.digest);
    eprintln!(
        "figure: {name}: four restored pairs (p1 by offset, p2/p3 by time, a clone) Ready and checked {restore_secs:.1} s after their creation; chain of {} chunks in terms {terms:?}; case {:.0} s",
        chain.len(),
        started.elapsed().as_secs_f64()
    );
    for p in &restored {
        p.delete().await;
    }
    source.delete().await;
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &env.namespace);
    let _ = backups
        .delete(&format!("{name}-b1"), &Default::default())
        .await;
    store.remove().await;
}

/// A pair with `schedule: "* * * * *"` and `retention: 10s`. The schedule fires (its
/// RedisPairBackup s1 Completed); it is then removed, so that no later firing runs retention
/// under the rest of the case. An on-demand backup b1, a point p, the window passes b1's
/// start, and an on-demand b2's retention deletes s1 and the chunks before b1 (the listing
/// shrinks) and keeps b1, b2 and the chain from b1: what a restore to any moment of the window
/// needs. A byte flipped in a chunk a restore to p reads: the restored pair's `Restore`
/// condition and a Warning Event name the object; put back, the restore (retried by the
/// kubelet) gives exactly p's digest, from what retention kept.
pub async fn run_schedule_retention_and_corruption_case(name: &str) {
    let Some(s3) = s3_from_env() else {
        return skipped(name);
    };
    const WINDOW_MS: i64 = 10_000;
    let env = E2eEnv::from_env();
    let client = client(&env).await;
    let ns = env.namespace.clone();
    let store = Store::create(&client, &ns, name, &s3).await;
    let started = Instant::now();
    let source = archiving_pair(&client, &env, name, &store, Some("* * * * *"), Some("10s")).await;
    source.wait_healthy("the archiving pair Ready", READY).await;
    let rw_ip = source.cluster_ip(name).await;
    let mut rw = reconnect(&source, &rw_ip).await;
    write_batch(&mut rw, "a", 100).await;

    // --- the schedule fires ----------------------------------------------------------------
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &ns);
    let scheduled = source
        .expect(
            "a scheduled RedisPairBackup (the first minute boundary after the pair's creation)",
            Duration::from_secs(150),
            || async {
                let lp = ListParams::default().labels("redispair.io/scheduled=true");
                backups
                    .list(&lp)
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .find(|b| b.spec.pair == name)
            },
        )
        .await;
    let scheduled_name = scheduled.metadata.name.clone().expect("a name");
    let s1 = wait_backup_completed(&source, &backups, &scheduled_name).await;
    let fired_secs = started.elapsed().as_secs_f64();
    let master = source.status().await.and_then(|s| s.current_master);
    assert_eq!(s1.pod, master, "the master took the scheduled backup");
    let last_schedule = source
        .status()
        .await
        .and_then(|s| s.backup?.last_schedule_time);
    assert!(last_schedule.is_some(), "status.backup.lastScheduleTime");
    // Shown to fire; off now, so that no later firing runs retention under the checks below.
    let patch = serde_json::json!({"spec": {"backup": {"schedule": null}}});
    source
        .pairs
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("removing the schedule");
    let s1_id = s1.backup_id.clone().expect("backupId");

    // b1 once the archive has caught up with batch b: the chunks holding b end at or before
    // b1's offset, and are the ones retention deletes later.
    write_batch(&mut rw, "b", 100).await;
    let offset = master_offset(&mut rw).await;
    wait_archived(&source, offset).await;
    let b1_status = take_backup(&client, &source, &format!("{name}-b1")).await;
    let b1_id = b1_status.backup_id.clone().expect("backupId");
    let b1 = store
        .backups()
        .await
        .into_iter()
        .find(|m| m.id == b1_id)
        .unwrap_or_else(|| panic!("backup {b1_id} in the store"));
    write_batch(&mut rw, "c", 100).await;
    let p = mark(&mut rw, "p").await;
    write_batch(&mut rw, "d", 100).await;
    let end_offset = master_offset(&mut rw).await;
    wait_archived(&source, end_offset).await;

    // --- retention ---------------------------------------------------------------------------
    // Once the window has passed b1's start, a restore to any moment of it starts from b1 at
    // the earliest: s1 and the chunks before b1 are no longer needed.
    let window_passed = poll(Duration::from_secs(30), || async {
        (now_ms() > b1.start_time_ms + WINDOW_MS).then_some(())
    })
    .await;
    assert!(window_passed.is_some(), "the clock to pass the window");
    let wal_before = store.wal().await;
    let old_chunks = wal_before
        .iter()
        .filter(|o| o.name.end <= b1.start_offset)
        .count();
    let backups_before: Vec<String> = store.backups().await.into_iter().map(|m| m.id).collect();
    assert!(
        old_chunks > 0 && backups_before.contains(&s1_id),
        "before retention: {s1_id} and chunks before b1 ({old_chunks}) in the store: {backups_before:?}"
    );
    let b2 = take_backup(&client, &source, &format!("{name}-b2")).await;
    let b2_id = b2.backup_id.clone().expect("backupId");
    let (kept_backups, wal_after) = source
        .expect(
            "retention after b2 to delete the scheduled backup and the chunks before b1",
            Duration::from_secs(60),
            || async {
                let backups = store.backups().await;
                let wal = store.wal().await;
                (!backups.iter().any(|m| m.id == s1_id)
                    && !wal.iter().any(|o| o.name.end <= b1.start_offset))
                .then_some((backups, wal))
            },
        )
        .await;
    let mut kept: Vec<String> = kept_backups.into_iter().map(|m| m.id).collect();
    kept.sort();
    let mut want = vec![b1_id.clone(), b2_id.clone()];
    want.sort();
    assert_eq!(kept, want, "b1 is the base of the window's first moment");
    assert!(
        wal_after.len() < wal_before.len(),
        "the listing shrinks: {} chunks before, {} after",
        wal_before.len(),
        wal_after.len()
    );
    let chain = resolve_timeline(&wal_after, b1.start_offset);
    assert!(
        chain
            .last()
            .is_some_and(|o| o.name.end >= end_offset as u64),
        "the chain from b1 to the end stays: {chain:?}"
    );
    eprintln!(
        "{name}: retention: {} chunks and backups {backups_before:?} before, {} chunks and {kept:?} after",
        wal_before.len(),
        wal_after.len()
    );

    // --- a corrupted object, named --------------------------------------------------------
    // The last chunk a restore to p reads (it starts before p's offset).
    let victim = chain
        .iter()
        .rfind(|o| (o.name.start as i64) < p.offset)
        .expect("a chunk before p")
        .name
        .path();
    let archive = store.open();
    let good = archive.get(&victim).await.expect("reading the chunk");
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    archive
        .put(&victim, bad)
        .await
        .expect("corrupting the chunk");
    let restored = restored_pair(
        &client,
        &env,
        &format!("{name}-r"),
        &store,
        Target::Time(p.time_ms),
    )
    .await;
    let cond = restored
        .expect(
            &format!("the Restore condition False naming {victim}"),
            Duration::from_secs(120),
            || async {
                let s = restored.status().await?;
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == "Restore" && c.status == "False")
                    .filter(|c| c.message.contains(&victim))
            },
        )
        .await;
    assert_eq!(cond.reason, "RestoreFailed");
    assert!(cond.message.contains("is corrupt"), "{}", cond.message);
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    restored
        .expect(
            "a Warning Event RestoreFailed naming the object",
            Duration::from_secs(30),
            || async {
                events
                    .list(&Default::default())
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .find(|e| {
                        e.involved_object.name.as_deref() == Some(restored.name.as_str())
                            && e.reason.as_deref() == Some("RestoreFailed")
                            && e.type_.as_deref() == Some("Warning")
                            && e.message.as_deref().is_some_and(|m| m.contains(&victim))
                    })
            },
        )
        .await;
    eprintln!("{name}: the restore stopped: {}", cond.message);
    // Repaired: the kubelet runs the step again (its back-off: about 10 s after a first
    // failure) and the restore completes.
    archive
        .put(&victim, good)
        .await
        .expect("repairing the chunk");
    expect_restored(&restored, &p, "a restore to p after retention").await;
    let restored_cond = restored
        .expect(
            "the Restore condition True",
            Duration::from_secs(30),
            || async {
                let s = restored.status().await?;
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == "Restore" && c.status == "True")
            },
        )
        .await;
    assert_eq!(restored_cond.reason, "Restored");
    eprintln!(
        "figure: {name}: scheduled backup Completed {fired_secs:.0} s after the pair's creation; case {:.0} s",
        started.elapsed().as_secs_f64()
    );
    restored.delete().await;
    source.delete().await;
    for b in [format!("{name}-b1"), format!("{name}-b2")] {
        let _ = backups.delete(&b, &Default::default()).await;
    }
    store.remove().await;
}

/// A pair rolled back in place: writes, a backup, a point p, then the "bad deploy" (more
/// writes, keys deleted); a request with the wrong confirmation is refused and changes
/// nothing; the confirmed one replaces both pods, and the pair comes back Ready in a higher
/// term with exactly p's dataset on both; a base backup of the rolled-back history is taken;
/// writes go on and are archived.
pub async fn run_rollback_case(name: &str) {
    let Some(s3) = s3_from_env() else {
        return skipped(name);
    };
    let env = E2eEnv::from_env();
    let client = client(&env).await;
    let store = Store::create(&client, &env.namespace, name, &s3).await;
    let started = Instant::now();
    let pair = archiving_pair(&client, &env, name, &store, None, None).await;
    let h0 = pair.wait_healthy("the archiving pair Ready", READY).await;
    let rw_ip = pair.cluster_ip(name).await;
    let mut rw = reconnect(&pair, &rw_ip).await;
    write_batch(&mut rw, "a", 100).await;
    take_backup(&client, &pair, &format!("{name}-b1")).await;
    write_batch(&mut rw, "b", 100).await;
    let p = mark(&mut rw, "p").await;
    // The bad deploy: keys deleted and overwritten after p.
    for i in 0..50 {
        let mut del = redis::cmd("DEL");
        del.arg(format!("a:{i}"));
        query(&mut rw, &del, "DEL").await;
    }
    write_batch(&mut rw, "bad", 100).await;
    let end = master_offset(&mut rw).await;
    wait_archived(&pair, end).await;
    let damaged = digest(&mut rw).await.expect("DEBUG DIGEST");
    assert_ne!(damaged, p.digest);
    let uids = |pods: Vec<Option<k8s_openapi::api::core::v1::Pod>>| -> Vec<Option<String>> {
        pods.into_iter()
            .map(|p| p.and_then(|p| p.metadata.uid))
            .collect()
    };
    let [a, b] = pair.pod_names();
    let old_uids = uids(vec![pair.pod(&a).await, pair.pod(&b).await]);

    // Refused: the confirmation is not the pair's name. Nothing is done.
    let annotation = redispair::api::constants::ANNOTATION_ROLLBACK;
    let request = |id: &str, confirm: &str| {
        serde_json::json!({"id": id, "confirm": confirm, "targetTime": rfc3339(p.time_ms)})
            .to_string()
    };
    set_annotation(&pair, annotation, &request("r0", "not-the-name")).await;
    let refused = pair
        .expect(
            "the rollback r0 refused",
            Duration::from_secs(60),
            || async {
                let r = pair.status().await?.rollback?;
                (r.id == "r0" && r.phase == RollbackPhase::Failed).then_some(r)
            },
        )
        .await;
    assert!(!refused.message.is_empty(), "{refused:?}");
    assert_eq!(
        uids(vec![pair.pod(&a).await, pair.pod(&b).await]),
        old_uids,
        "a refused rollback touches no pod"
    );
    assert_eq!(digest(&mut rw).await.expect("DEBUG DIGEST"), damaged);

    // Confirmed.
    let t_rollback = Instant::now();
    set_annotation(&pair, annotation, &request("r1", name)).await;
    pair.expect("the rollback r1 Completed", READY, || async {
        // The status shows the refused r0 until the operator takes up r1.
        let r = pair.status().await?.rollback.filter(|r| r.id == "r1")?;
        assert_ne!(r.phase, RollbackPhase::Failed, "{r:?}");
        (r.phase == RollbackPhase::Completed).then_some(r)
    })
    .await;
    let rollback_secs = t_rollback.elapsed().as_secs_f64();
    let h = pair.wait_healthy("the rolled-back pair Ready", READY).await;
    assert!(
        h.term > h0.term,
        "term {} after, {} before",
        h.term,
        h0.term
    );
    let new_uids = uids(vec![pair.pod(&a).await, pair.pod(&b).await]);
    assert!(
        new_uids.iter().zip(&old_uids).all(|(n, o)| n != o),
        "both pods replaced: {old_uids:?} → {new_uids:?}"
    );
    expect_restored(&pair, &p, "the pair rolled back to p").await;
    // A base backup of the rolled-back history, made by the operator.
    let backups: Api<RedisPairBackup> = Api::namespaced(client.clone(), &env.namespace);
    wait_backup_completed(&pair, &backups, &format!("{name}-rollback-r1")).await;
    // Writes go on in the new term and are archived.
    let mut rw = reconnect(&pair, &rw_ip).await;
    write_batch(&mut rw, "after", 50).await;
    let end = master_offset(&mut rw).await;
    wait_archived(&pair, end).await;
    eprintln!(
        "figure: {name}: rollback from the request to Completed {rollback_secs:.1} s; case {:.0} s",
        started.elapsed().as_secs_f64()
    );
    pair.delete().await;
    let _ = backups
        .delete(&format!("{name}-b1"), &Default::default())
        .await;
    store.remove().await;
}
