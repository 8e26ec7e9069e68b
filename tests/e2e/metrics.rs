//! The cluster scrape (issue 18): both engines' metrics endpoints (pod IP, port 9121) and the
//! installed operator's (its pods' IPs, the chart's `metrics` port) scraped from the host and
//! parsed as OpenMetrics (tests/metrics_support), every family checked by type and labels with
//! the values the pair's status pins (role, term, mode, members); then a failover (the master
//! pod deleted) must move the engines' role and term series and the operator's member roles,
//! term and failover counters; then the pair is deleted and the operator must show no series
//! of it. With an S3 endpoint (hack/e2e.sh starts one on the local provider) the pair archives
//! and the archive families are checked too. Does I/O: the Kubernetes API, HTTP and Redis over
//! TCP.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use redispair::api::{BackupSpec, LocalSecretRef, ObjectStoreSpec};

use crate::cluster::{self, PairUnderTest};
use crate::env::E2eEnv;
use crate::failover::{FAILOVER, READY};
use crate::metrics_support::{
    check_engine, check_operator_pair, check_pair_gone, scrape, Archive, EngineExpect, PairExpect,
    Scrape,
};
use crate::writer::connect;

/// The engine pods' metrics port (src/operator/build/pod.rs ENGINE_METRICS_PORT).
const ENGINE_METRICS_PORT: u16 = 9121;

/// Wait until `check` holds; on timeout print the pair's state and fail with the last reason.
async fn until_ok<F, Fut>(pair: &PairUnderTest, what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if std::time::Instant::now() >= deadline => {
                pair.dump().await;
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}: {last}",
                    pair.name
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The installed operator's metrics endpoints: `ip:port` of each running pod, from its
/// `metrics` container port.
async fn operator_endpoints(client: &kube::Client, env: &E2eEnv) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.operator_namespace);
    let lp = ListParams::default().labels("app.kubernetes.io/name=redispair-operator");
    let list = pods.list(&lp).await.expect("listing the operator's pods");
    list.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            let port = p
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|port| port.name.as_deref() == Some("metrics"))?
                .container_port;
            Some(format!("{ip}:{port}"))
        })
        .collect()
}

/// The scrape of the operator pod that shows the pair (the leader; a standby waiting for the
/// Lease reconciles nothing and shows no pair).
async fn operator_scrape_of(
    client: &kube::Client,
    env: &E2eEnv,
    pair: &PairUnderTest,
) -> Result<Scrape, String> {
    let endpoints = operator_endpoints(client, env).await;
    if endpoints.is_empty() {
        return Err("no running operator pod with a metrics port".into());
    }
    let mut seen = Vec::new();
    for ep in &endpoints {
        let s = scrape(ep).await?;
        if check_pair_gone(&s, &pair.namespace, &pair.name).is_err() {
            return Ok(s);
        }
        seen.push(ep.clone());
    }
    Err(format!("no operator endpoint shows the pair ({seen:?})"))
}

/// SET and GET through the read-write Service on a fresh connection: `n` keys under `prefix`,
/// every tenth with a time to live.
async fn write_keys(
    pair: &PairUnderTest,
    rw_ip: &str,
    prefix: &str,
    n: usize,
) -> Result<(), String> {
    let mut c = connect(rw_ip, 6379, &pair.password)
        .await
        .map_err(|e| format!("connecting to {rw_ip}: {e}"))?;
    for i in 0..n {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{prefix}:{i}")).arg(i);
        if i % 10 == 0 {
            cmd.arg("EX").arg(3600);
        }
        let () = cmd
            .query_async(&mut c)
            .await
            .map_err(|e| format!("SET {prefix}:{i}: {e}"))?;
    }
    let _: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:0"))
        .query_async(&mut c)
        .await
        .map_err(|e| format!("GET: {e}"))?;
    Ok(())
}

fn s3_store(name: &str) -> Option<(ObjectStoreSpec, Secret)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (endpoint, bucket) = (var("E2E_S3_ENDPOINT")?, var("E2E_S3_BUCKET")?);
    let (access, secret) = (var("E2E_S3_ACCESS_KEY")?, var("E2E_S3_SECRET_KEY")?);
    let creds = format!("{name}-s3");
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    Some((
        ObjectStoreSpec {
            // A prefix of this run's own: an engine refuses to continue another pair's history.
            destination_path: format!("s3://{bucket}/e2e/{name}-{ms}"),
            endpoint_url: Some(endpoint),
            region: None,
            credentials_secret: Some(LocalSecretRef {
                name: creds.clone(),
            }),
        },
        Secret {
            metadata: ObjectMeta {
                name: Some(creds),
                ..Default::default()
            },
            string_data: Some(
                [
                    ("AWS_ACCESS_KEY_ID".to_string(), access),
                    ("AWS_SECRET_ACCESS_KEY".to_string(), secret),
                ]
                .into(),
            ),
            ..Default::default()
        },
    ))
}

pub async fn run_metrics_scrape_case(name: &str) {
    let env = E2eEnv::from_env();
    let client = cluster::client(&env).await;
    cluster::assert_operator_image(&client, &env).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &env.namespace);
    let store = s3_store(name);
    if let Some((_, creds)) = &store {
        let creds_name = creds.metadata.name.clone().unwrap();
        let _ = secrets.delete(&creds_name, &Default::default()).await;
        secrets
            .create(&PostParams::default(), creds)
            .await
            .expect("creating the S3 credentials Secret");
    } else {
        println!("{name}: no S3 endpoint (E2E_S3_*): the archive families are not checked");
    }
    let archive_on = store.is_some();
    let pair = PairUnderTest::create_with(&client, &env, name, |p| {
        if let Some((destination, _)) = &store {
            p.spec.backup = Some(BackupSpec {
                destination: destination.clone(),
                schedule: None,
                retention: None,
            });
            // Uploads every 200 ms when writes are few: the archive catches up quickly.
            p.spec.engine.extra_config = vec!["archive-timeout 200".into()];
        }
    })
    .await;
    let h = pair
        .wait_healthy("the pair Ready, master and replica on two nodes", READY)
        .await;
    let rw_ip = pair.cluster_ip(name).await;
    until_ok(&pair, "writes through the Service", FAILOVER, || {
        write_keys(&pair, &rw_ip, "e2e:metrics:before", 100)
    })
    .await;

    // --- before: each engine as its role, the operator's view of the pair ------------------
    let engine_addr = |pod: String| {
        let pair = &pair;
        async move {
            let ip = pair
                .pod_ip(&pod)
                .await
                .ok_or_else(|| format!("{pod}: no pod IP"))?;
            Ok::<_, String>(format!("{ip}:{ENGINE_METRICS_PORT}"))
        }
    };
    let master = EngineExpect {
        role: "master",
        term: h.term,
        commands: vec!["set", "get"],
        min_keys: 100,
        min_volatile_keys: 10,
        mode: "semi-sync",
        reply_waits: true,
        log: true,
        archive: if archive_on {
            Archive::Uploading
        } else {
            Archive::Off
        },
    };
    let replica = EngineExpect {
        role: "replica",
        commands: vec![],
        reply_waits: false,
        archive: if archive_on {
            Archive::Following
        } else {
            Archive::Off
        },
        ..master.clone()
    };
    until_ok(&pair, "the master's metrics", FAILOVER, || async {
        check_engine(
            &scrape(&engine_addr(h.master.clone()).await?).await?,
            &master,
        )
    })
    .await;
    until_ok(&pair, "the replica's metrics", FAILOVER, || async {
        check_engine(
            &scrape(&engine_addr(h.replica.clone()).await?).await?,
            &replica,
        )
    })
    .await;
    let mut want = PairExpect {
        namespace: pair.namespace.clone(),
        pair: name.to_string(),
        phase: "Ready",
        term: h.term,
        master: h.master.clone(),
        replica: h.replica.clone(),
        // A pair of a fresh name: the operator counted no failover of it.
        failovers: 0,
    };
    until_ok(
        &pair,
        "the operator's series of the pair",
        FAILOVER,
        || async { check_operator_pair(&operator_scrape_of(&client, &env, &pair).await?, &want) },
    )
    .await;
    println!(
        "{name}: engines and operator scraped: master {} and replica {} at term {}",
        h.master, h.replica, h.term
    );

    // --- a failover: the master pod deleted ------------------------------------------------
    pair.pods
        .delete(&h.master, &DeleteParams::default())
        .await
        .expect("deleting the master pod");
    // Healthy again with the other pod as master (the deleted one is back as its replica).
    let after = pair
        .expect(
            "the pair Ready again under the other master",
            READY,
            || async {
                let a = pair.healthy().await?;
                (a.master == h.replica && a.term > h.term).then_some(a)
            },
        )
        .await;
    until_ok(
        &pair,
        "writes through the Service after the failover",
        FAILOVER,
        || write_keys(&pair, &rw_ip, "e2e:metrics:after", 100),
    )
    .await;
    let new_master = EngineExpect {
        term: after.term,
        ..master.clone()
    };
    let new_replica = EngineExpect {
        term: after.term,
        ..replica.clone()
    };
    until_ok(
        &pair,
        "the new master's role and term series",
        FAILOVER,
        || async {
            check_engine(
                &scrape(&engine_addr(after.master.clone()).await?).await?,
                &new_master,
            )
        },
    )
    .await;
    until_ok(
        &pair,
        "the old master's pod (back as replica): role and term series",
        FAILOVER,
        || async {
            check_engine(
                &scrape(&engine_addr(after.replica.clone()).await?).await?,
                &new_replica,
            )
        },
    )
    .await;
    want = PairExpect {
        term: after.term,
        master: after.master.clone(),
        replica: after.replica.clone(),
        failovers: 1,
        ..want
    };
    until_ok(
        &pair,
        "the operator's member roles, term and failover counters moved",
        FAILOVER,
        || async { check_operator_pair(&operator_scrape_of(&client, &env, &pair).await?, &want) },
    )
    .await;
    println!(
        "{name}: after the failover: master {} and replica {} at term {}",
        after.master, after.replica, after.term
    );

    // --- deleted: the operator shows nothing of the pair ---------------------------------------
    pair.delete().await;
    until_ok(
        &pair,
        "the operator's series of the deleted pair gone",
        FAILOVER,
        || async {
            let endpoints = operator_endpoints(&client, &env).await;
            if endpoints.is_empty() {
                return Err("no running operator pod with a metrics port".into());
            }
            for ep in endpoints {
                check_pair_gone(&scrape(&ep).await?, &pair.namespace, name)
                    .map_err(|e| format!("{ep}: {e}"))?;
            }
            Ok(())
        },
    )
    .await;
    if let Some((_, creds)) = &store {
        let _ = secrets
            .delete(creds.metadata.name.as_deref().unwrap(), &Default::default())
            .await;
    }
    println!("{name}: deleted: no series of the pair left on the operator");
}
