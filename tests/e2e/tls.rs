//! TLS end to end (issue 18): a pair with `spec.tls` naming a `kubernetes.io/tls` Secret the
//! test makes (openssl: a CA, and a leaf for the read-write Service's ClusterIP and DNS names),
//! plaintext off. The pair must become Ready (the operator's probes and the replica's link go
//! over TLS: there is no plaintext port on the pod's network); a writer goes through the
//! Service's TLS port verifying the CA; the Secret is rotated to a new leaf under it: new
//! connections get the new certificate without a restart, no write fails, every acknowledged
//! write is read back. Does I/O: the Kubernetes API, TLS over TCP, openssl.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use redispair::api::{TlsClientAuth, TlsSpec};

use crate::cluster::{self, PairUnderTest};
use crate::env::E2eEnv;
use crate::tls_support::{der_of, make_ca, make_leaf_for, presented_certificate_at, tls_conn_at};

const TLS_PORT: u16 = 6380;

fn tls_secret(
    name: &str,
    ca: &std::path::Path,
    crt: &std::path::Path,
    key: &std::path::Path,
) -> Secret {
    let read = |p: &std::path::Path| ByteString(std::fs::read(p).expect("certificate file"));
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), read(crt)),
            ("tls.key".to_string(), read(key)),
            ("ca.crt".to_string(), read(ca)),
        ])),
        ..Default::default()
    }
}

pub async fn run_tls_rotation_case(name: &str) {
    let env = E2eEnv::from_env();
    let client = cluster::client(&env).await;
    let ns = env.namespace.clone();
    let secret_name = format!("{name}-certs");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let _ = secrets.delete(&secret_name, &Default::default()).await;
    let started = Instant::now();
    let put = PairUnderTest::create_with(&client, &env, name, |p| {
        p.spec.tls = Some(TlsSpec {
            secret_name: Some(secret_name.clone()),
            issuer_ref: None,
            plaintext: false,
            client_auth: TlsClientAuth::None,
        });
    })
    .await;

    // The Services exist before the pods can start (they wait for the Secret to mount it):
    // the read-write Service's ClusterIP goes into the certificate the writer verifies.
    let ip = put
        .expect(
            "the read-write Service",
            Duration::from_secs(60),
            || async {
                let s = put.services.get_opt(name).await.ok()??;
                s.spec?.cluster_ip.filter(|ip| !ip.is_empty())
            },
        )
        .await;
    let svc = put.services.get(name).await.expect("the Service");
    let ports: Vec<i32> = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(
        ports,
        vec![TLS_PORT as i32],
        "plaintext off: the TLS port only"
    );

    let dir = std::env::temp_dir().join(format!("redispair-e2e-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = make_ca(&dir, "ca");
    let sans = format!(
        "IP:{ip},DNS:{name},DNS:{name}.{ns}.svc,DNS:{name}-ro.{ns}.svc,DNS:*.{name}-headless.{ns}.svc"
    );
    let v1 = make_leaf_for(&dir, &ca, "v1", &sans);
    let v2 = make_leaf_for(&dir, &ca, "v2", &sans);
    secrets
        .create(
            &PostParams::default(),
            &tls_secret(&secret_name, &ca.crt, &v1.crt, &v1.key),
        )
        .await
        .expect("creating the TLS Secret");

    let h = put
        .wait_healthy("the pair Ready over TLS", Duration::from_secs(180))
        .await;
    println!(
        "figure: TLS pair Ready {:.1} s after it was created",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        presented_certificate_at(&ip, TLS_PORT, &ca.crt, None).await,
        Ok(der_of(&v1.crt))
    );

    // The writer: one TLS connection through the Service, one SET after another; any error
    // is a failed write.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ip, password, ca) = (ip.clone(), put.password.clone(), ca.crt.clone());
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut c = tls_conn_at(&ip, TLS_PORT, Some(&password), &ca, None)
                .await
                .expect("the writer connects over TLS");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("e2e:tls:{n}"))
                    .arg(n)
                    .query_async(&mut c)
                    .await;
                if let Err(e) = r {
                    return Err(format!("write {n} failed: {e}"));
                }
                n += 1;
                acked.store(n, Ordering::Relaxed);
            }
            Ok(n)
        })
    };
    let wait_acks = |more: u64, what: &'static str| {
        let acked = acked.clone();
        let put = &put;
        async move {
            let target = acked.load(Ordering::Relaxed) + more;
            put.expect(what, Duration::from_secs(60), || {
                let acked = acked.clone();
                async move { (acked.load(Ordering::Relaxed) >= target).then_some(()) }
            })
            .await
        }
    };
    wait_acks(200, "writes before the rotation").await;

    // Rotate: the Secret gets a new leaf (same CA), as cert-manager renewing it would.
    let rotated = Instant::now();
    let patch = serde_json::json!({"data": {
        "tls.crt": ByteString(std::fs::read(&v2.crt).unwrap()),
        "tls.key": ByteString(std::fs::read(&v2.key).unwrap()),
    }});
    secrets
        .patch(&secret_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("rotating the TLS Secret");
    // The kubelet refreshes a Secret volume when it syncs the pod: on its own within its sync
    // period (about a minute), at once when the pod changes. An annotation makes it now, to
    // keep the stage short; the engine's reload of the changed files is what is tested.
    for pod in put.pod_names() {
        let nudge = serde_json::json!({"metadata": {"annotations": {
            "redispair.io/e2e-tls-rotated": format!("{}", std::process::id())
        }}});
        let _ = put
            .pods
            .patch(&pod, &PatchParams::default(), &Patch::Merge(&nudge))
            .await;
    }
    let want = der_of(&v2.crt);
    put.expect(
        "new connections to get the new certificate",
        Duration::from_secs(120),
        || {
            let (ip, ca, want) = (ip.clone(), ca.crt.clone(), want.clone());
            async move {
                (presented_certificate_at(&ip, TLS_PORT, &ca, None)
                    .await
                    .ok()?
                    == want)
                    .then_some(())
            }
        },
    )
    .await;
    println!(
        "figure: the new certificate served {:.1} s after the Secret changed",
        rotated.elapsed().as_secs_f64()
    );
    wait_acks(200, "writes after the rotation").await;
    stop.store(true, Ordering::Relaxed);
    let n = writer
        .await
        .expect("the writer task")
        .unwrap_or_else(|e| panic!("a write failed during the rotation: {e}"));

    // Every acknowledged write, read back through the Service on a new TLS connection.
    let mut c = tls_conn_at(&ip, TLS_PORT, Some(&put.password), &ca.crt, None)
        .await
        .expect("a new TLS connection after the rotation");
    let mut missing = 0u64;
    for start in (0..n).step_by(1000) {
        let keys: Vec<String> = (start..(start + 1000).min(n))
            .map(|i| format!("e2e:tls:{i}"))
            .collect();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .expect("MGET over TLS");
        for (i, v) in values.into_iter().enumerate() {
            if v != Some(start + i as u64) {
                missing += 1;
            }
        }
    }
    assert_eq!(
        missing, 0,
        "{missing} of {n} acknowledged writes not read back"
    );
    println!(
        "figure: {n} writes acknowledged over TLS across the rotation, none failed, none lost"
    );
    // The pair is still healthy with the same master: nothing restarted.
    let after = put
        .wait_healthy(
            "the pair still Ready after the rotation",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(after.master, h.master);
    assert_eq!(after.term, h.term, "no failover");
    put.delete().await;
    let _ = secrets.delete(&secret_name, &Default::default()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
