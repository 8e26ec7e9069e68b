//! Builder of one engine pod: the engine command line (admin user, `semi-sync-degrade
//! operator`, write lease, data dir), the password files (the pair's Secrets mounted
//! read-only; no secret on the command line or in the environment), required anti-affinity
//! against its peer, probes, and a non-root, read-only-root security context. Pure.
//!
//! Pods are managed directly (no StatefulSet, like CloudNativePG): the operator decides which
//! pod is master, and can recreate exactly the pod that is gone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction,
    KeyToPath, Lifecycle, LifecycleHandler, PersistentVolumeClaimVolumeSource, Pod,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, Probe, ProjectedVolumeSource,
    SeccompProfile, SecretProjection, SecretVolumeSource, SecurityContext, TCPSocketAction, Volume,
    VolumeMount, VolumeProjection, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::constants::*;
use crate::api::ReplicationMode;
use crate::operator::validate::{pair_labels, ValidatedPair};

/// The write lease the engines run with. A master that hears neither its replica nor the
/// operator for this long stops accepting writes (the operator renews it every probe).
pub const WRITE_LEASE_MS: u64 = 3_000;
/// Non-root user of the image.
pub const ENGINE_UID: i64 = 65532;
/// Where the pair's Secrets are mounted in the engine container (read-only, see
/// [`build_secrets_volume`]).
pub const SECRETS_DIR: &str = "/var/run/redispair/secrets";
/// The client password (the password Secret's key), read by `--requirepass-file`.
pub const PASSWORD_FILE: &str = "/var/run/redispair/secrets/password";
/// The admin password (the admin Secret), read by the engine, the readiness probe and the
/// preStop hook.
pub const ADMIN_PASSWORD_FILE: &str = "/var/run/redispair/secrets/admin-password";
/// Mode of the password files: owner and group read (the kubelet gives them the pod's
/// fsGroup, the engine's group), nobody else.
pub const SECRET_FILE_MODE: i32 = 0o440;
/// The environment variable pods of older operators carried the admin password in; the
/// readiness probe still reads it when it is given no `--password-file`.
pub const ENV_ADMIN_PASSWORD: &str = "REDISPAIR_ADMIN_PASSWORD";
/// How long the preStop hook keeps a deleted master serving while the operator hands its role
/// over. A hand-over takes a few operator passes (well under a second when the replica is in
/// sync); the switchover gives up on a replica that has not caught up after 10 s and fails over.
pub const HANDOVER_TIMEOUT_SECONDS: i64 = 20;
/// The pod's grace period: the hand-over wait, then SIGTERM and a clean shutdown (the engine
/// flushes its log) with 10 s to spare before SIGKILL.
pub const TERMINATION_GRACE_SECONDS: i64 = HANDOVER_TIMEOUT_SECONDS + 10;

/// The engine's command-line arguments. Secrets are passed as paths of files in the mounted
/// Secrets volume: not as values (the command line is readable in `/proc/PID/cmdline` by
/// anyone on the node, and in `crictl inspect`), nor as `$(VAR)` references to Secret-backed
/// environment variables (the environment shows in `crictl inspect` and `/proc/PID/environ`).
pub fn build_engine_args(v: &ValidatedPair) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    match &v.spec.tls {
        // TLS only: no plaintext on the pod's network; the readiness probe and the preStop
        // hook (inside the pod) keep plaintext on 127.0.0.1 at the usual port.
        Some(t) if !t.plaintext => {
            flag("port", "0".to_string());
            flag("loopback-port", ENGINE_PORT.to_string());
        }
        _ => flag("port", ENGINE_PORT.to_string()),
    }
    flag("bind", "0.0.0.0".to_string());
    if let Some(t) = &v.spec.tls {
        flag("tls-port", ENGINE_TLS_PORT.to_string());
        flag("tls-cert-file", format!("{TLS_DIR}/tls.crt"));
        flag("tls-key-file", format!("{TLS_DIR}/tls.key"));
        flag("tls-ca-cert-file", format!("{TLS_DIR}/ca.crt"));
        flag(
            "tls-auth-clients",
            t.client_auth.as_engine_setting().to_string(),
        );
        // The replica links to its master's TLS port (the operator names it in DEMOTE).
        flag("tls-replication", "yes".to_string());
    }
    // The link to a migration source: its own CA, client certificate and name, used while the
    // operator has switched `master-tls` on (docs/migration.md, "TLS to the source").
    if let Some(t) = crate::operator::migrate::migrate_from_tls(&v.spec) {
        if t.ca_secret.is_some() {
            flag("master-tls-ca-cert-file", format!("{SOURCE_CA_DIR}/ca.crt"));
        }
        if t.client_cert_secret.is_some() {
            flag(
                "master-tls-cert-file",
                format!("{SOURCE_CLIENT_DIR}/tls.crt"),
            );
            flag(
                "master-tls-key-file",
                format!("{SOURCE_CLIENT_DIR}/tls.key"),
            );
        }
        if let Some(name) = &t.server_name {
            flag("master-tls-server-name", name.clone());
        }
        if t.insecure_skip_verify {
            flag("master-tls-verify", "no".to_string());
        }
    }
    flag("metrics-port", ENGINE_METRICS_PORT.to_string());
    flag("dir", DATA_DIR.to_string());
    flag("requirepass-file", PASSWORD_FILE.to_string());
    flag("admin-user", ADMIN_USER.to_string());
    flag("admin-password-file", ADMIN_PASSWORD_FILE.to_string());
    flag(
        "replication-mode",
        v.spec.replication.mode.as_str().to_string(),
    );
    // The master never stops waiting for its replica on its own: only the operator, which
    // sees both sides, may authorise that (and records it first).
    flag("semi-sync-degrade", "operator".to_string());
    flag("write-lease-ms", WRITE_LEASE_MS.to_string());
    // A master cut off by a partition goes silent without closing the replica's link, and the
    // operator fails over on failed probes only when the replica reports its link down too.
    // With the engine's default (60 s) a partition would wait for the node controller's grace
    // period instead; the replica must give up on a silent master within the detection window.
    // (Heartbeats go every 100 ms, so this is many missed heartbeats, not one slow one.)
    flag(
        "repl-timeout",
        v.spec.failover.detection_seconds.to_string(),
    );
    if let Some(m) = &v.spec.engine.maxmemory {
        flag("maxmemory", m.0.clone());
    }
    if let Some(p) = v.spec.engine.maxmemory_policy {
        flag("maxmemory-policy", p.as_str().to_string());
    }
    if let Some(f) = v.spec.engine.appendfsync {
        let f = match f {
            crate::api::AppendFsync::Always => "always",
            crate::api::AppendFsync::Everysec => "everysec",
            crate::api::AppendFsync::No => "no",
        };
        flag("appendfsync", f.to_string());
    }
    if let Some(b) = &v.spec.backup {
        flag("archive-url", b.destination.url().to_string());
        if b.destination.credentials_secret.is_some() {
            flag(
                "archive-credentials-dir",
                ARCHIVE_CREDENTIALS_DIR.to_string(),
            );
        }
        if let Some(r) = &b.retention {
            flag("archive-retention", r.clone());
        }
    }
    for (name, value) in &v.extra_config {
        flag(name, value.clone());
    }
    args
}

/// Where `spec.backup.destination.credentialsSecret` is mounted in the engine container: one
/// file per key, read by `--archive-credentials-dir` (the same rule as the passwords: no
/// secret in the environment or on the command line).
pub const ARCHIVE_CREDENTIALS_DIR: &str = "/var/run/redispair/archive";
/// Where `spec.bootstrap.recovery.source.credentialsSecret` is mounted in the restore step.
pub const RECOVERY_CREDENTIALS_DIR: &str = "/var/run/redispair/recovery";
/// Where `migrateFrom.tls.caSecret` is mounted (`ca.crt`, read by `--master-tls-ca-cert-file`).
pub const SOURCE_CA_DIR: &str = "/var/run/redispair/source-tls/ca";
/// Where `migrateFrom.tls.clientCertSecret` is mounted (`tls.crt`, `tls.key`).
pub const SOURCE_CLIENT_DIR: &str = "/var/run/redispair/source-tls/client";
/// Name of the init container that restores the first master's data (`restore --once`).
pub const RESTORE_CONTAINER: &str = "restore";

/// A Secret as a read-only volume of files, mode 0440 (group: the pod's fsGroup).
fn secret_files_volume(name: &str, secret: &str, optional: bool) -> Volume {
    Volume {
        name: name.to_string(),
        secret: Some(k8s_openapi::api::core::v1::SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            default_mode: Some(SECRET_FILE_MODE),
            optional: Some(optional),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The environment of an object store's non-secret settings (endpoint, region).
fn store_env_vars(store: &crate::api::ObjectStoreSpec) -> Option<Vec<EnvVar>> {
    let env: Vec<EnvVar> = crate::operator::backup::store_env(store)
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect();
    (!env.is_empty()).then_some(env)
}

/// The restore step of a pair bootstrapped from `spec.bootstrap.recovery`: the engine binary's
/// `restore --once` into the data volume, before the engine starts (docs/backup.md, "Restore
/// on Kubernetes"). `--once` makes a pod restart after it completed a no-op.
/// Also a rollback's (`v.rollback_restore`): the same step on the pair's own archive, with a
/// marker of its own (docs/backup.md, "Rollback").
fn build_restore_container(v: &ValidatedPair, engine: &Container) -> Option<Container> {
    let r = restore_source(v)?;
    let mut args = vec![
        "restore".to_string(),
        "--once".to_string(),
        "--from".to_string(),
        r.source.url().to_string(),
        "--dir".to_string(),
        DATA_DIR.to_string(),
    ];
    if let Some(marker) = &r.marker {
        // A rollback's restore (the only one with a marker of its own) continues the pair's
        // own archive, superseding the discarded writes' chunks (docs/backup.md, "Rollback").
        args.extend([
            "--marker".to_string(),
            marker.clone(),
            "--rollback".to_string(),
        ]);
    }
    let mut mounts = vec![VolumeMount {
        name: "data".to_string(),
        mount_path: DATA_DIR.to_string(),
        ..Default::default()
    }];
    if r.source.credentials_secret.is_some() {
        args.extend([
            "--credentials-dir".to_string(),
            RECOVERY_CREDENTIALS_DIR.to_string(),
        ]);
        mounts.push(VolumeMount {
            name: "recovery-credentials".to_string(),
            mount_path: RECOVERY_CREDENTIALS_DIR.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if let Some(b) = &r.backup {
        args.extend(["--backup".to_string(), b.clone()]);
    }
    if let Some(t) = &r.target_time {
        args.extend(["--target-time".to_string(), t.clone()]);
    } else if let Some(o) = r.target_offset {
        args.extend(["--target-offset".to_string(), o.to_string()]);
    }
    let r = r.source;
    Some(Container {
        name: RESTORE_CONTAINER.to_string(),
        image: engine.image.clone(),
        image_pull_policy: engine.image_pull_policy.clone(),
        command: Some(vec![ENGINE_BINARY.to_string()]),
        args: Some(args),
        env: store_env_vars(r),
        resources: engine.resources.clone(),
        security_context: engine.security_context.clone(),
        volume_mounts: Some(mounts),
        // A failed restore's last log line (`Error: archive object wal/... is corrupt ...`)
        // becomes the container's termination message in the pod's status, where the
        // operator reads it into the `Restore` condition and a Warning Event: the object is
        // named in the API, not only in `kubectl logs`.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Default::default()
    })
}

/// Where the first pod's restore step reads from: a rollback's own archive, else
/// `spec.bootstrap.recovery`.
struct RestoreSource<'a> {
    source: &'a crate::api::ObjectStoreSpec,
    marker: Option<String>,
    backup: Option<String>,
    target_time: Option<String>,
    target_offset: Option<i64>,
}

fn restore_source(v: &ValidatedPair) -> Option<RestoreSource<'_>> {
    if let (Some(r), Some(b)) = (&v.rollback_restore, &v.spec.backup) {
        return Some(RestoreSource {
            source: &b.destination,
            marker: Some(r.marker.clone()),
            backup: r.backup.clone(),
            target_time: r.target_time.clone(),
            target_offset: r.target_offset,
        });
    }
    let r = v.spec.bootstrap.as_ref()?.recovery.as_ref()?;
    Some(RestoreSource {
        source: &r.source,
        marker: None,
        backup: r.backup.clone(),
        target_time: r.target_time.clone(),
        target_offset: r.target_offset,
    })
}

/// The pair's two Secrets as one read-only volume: the password Secret's key as `password`,
/// the admin Secret's `password` as `admin-password`, mode 0440 (group: the pod's fsGroup).
/// A projected volume, not `subPath` mounts: the kubelet refreshes its files when a Secret
/// changes, so an engine restarted after a rotation reads the new password (the running
/// engine gets it at once from the operator, by CONFIG SET).
pub fn build_secrets_volume(v: &ValidatedPair) -> Volume {
    let source = |secret: &str, key: &str, path: &str| VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.to_string(),
            items: Some(vec![KeyToPath {
                key: key.to_string(),
                path: path.to_string(),
                mode: None,
            }]),
            optional: Some(false),
        }),
        ..Default::default()
    };
    Volume {
        name: "secrets".to_string(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(SECRET_FILE_MODE),
            sources: Some(vec![
                source(&v.names.password_secret, &v.names.password_key, "password"),
                source(&v.names.admin_secret, "password", "admin-password"),
            ]),
        }),
        ..Default::default()
    }
}

/// The TLS Secret as a volume (the whole directory, never `subPath`: the kubelet updates a
/// Secret volume in place by swapping a symlink, and the engine reloads the files it sees
/// change; `subPath` mounts are never updated). Mode 0440 like the passwords.
pub fn build_tls_volume(v: &ValidatedPair) -> Option<Volume> {
    v.spec.tls.as_ref()?;
    let secret = v.names.tls_secret.clone()?;
    Some(Volume {
        name: "tls".to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            default_mode: Some(SECRET_FILE_MODE),
            optional: Some(false),
            items: None,
        }),
        ..Default::default()
    })
}

/// The engine container's ports: `redis` (6379) unless plaintext is off, `redis-tls` (6380)
/// with TLS, `metrics`.
fn build_container_ports(v: &ValidatedPair) -> Vec<ContainerPort> {
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.to_string()),
        container_port: number,
        protocol: Some("TCP".to_string()),
        ..Default::default()
    };
    let mut ports = Vec::new();
    if v.spec.tls.as_ref().is_none_or(|t| t.plaintext) {
        ports.push(port("redis", ENGINE_PORT));
    }
    if v.spec.tls.is_some() {
        ports.push(port(ENGINE_TLS_PORT_NAME, ENGINE_TLS_PORT));
    }
    ports.push(port(ENGINE_METRICS_PORT_NAME, ENGINE_METRICS_PORT));
    ports
}

fn build_affinity(v: &ValidatedPair) -> Affinity {
    let peer_selector = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            LABEL_PAIR.to_string(),
            v.names.pair.clone(),
        )])),
        ..Default::default()
    };
    // Required, never preferred: two engines of a pair on one node would make the node a
    // single point of failure that no failover can cover.
    let required = PodAffinityTerm {
        label_selector: Some(peer_selector.clone()),
        topology_key: v.spec.topology.topology_key.clone(),
        ..Default::default()
    };
    let preferred = v.spec.topology.zone_spread.as_ref().map(|z| {
        vec![WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: PodAffinityTerm {
                label_selector: Some(peer_selector),
                topology_key: z.topology_key.clone(),
                ..Default::default()
            },
        }]
    });
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![required]),
            preferred_during_scheduling_ignored_during_execution: preferred,
        }),
        ..Default::default()
    }
}

/// Probes. Liveness = the process accepts connections (a slow full sync must not get it
/// killed). Readiness = it answers PING (not loading), through the operator binary that ships
/// in the same image. Readiness does not depend on the peer: a replica whose master died must
/// stay Ready, or it could never be promoted.
fn build_probes(v: &ValidatedPair) -> (Probe, Probe) {
    // The kubelet connects from outside the pod: to the TLS port when there is no plaintext
    // one (a TCP connect, no handshake: the engine drops it quietly).
    let live_port = match &v.spec.tls {
        Some(t) if !t.plaintext => ENGINE_TLS_PORT_NAME,
        _ => "redis",
    };
    let liveness = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(live_port.to_string()),
            ..Default::default()
        }),
        period_seconds: Some(5),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let readiness = Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                OPERATOR_BINARY.to_string(),
                "probe".to_string(),
                "--port".to_string(),
                ENGINE_PORT.to_string(),
                "--password-file".to_string(),
                ADMIN_PASSWORD_FILE.to_string(),
            ]),
        }),
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        failure_threshold: Some(2),
        ..Default::default()
    };
    (liveness, readiness)
}

/// The preStop hook: the engine binary waits (bounded) until the operator has handed the
/// master role over, so a deleted master is switched over, not failed over. A replica returns
/// at once.
fn build_lifecycle() -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![
                    ENGINE_BINARY.to_string(),
                    "wait-handover".to_string(),
                    "--port".to_string(),
                    ENGINE_PORT.to_string(),
                    "--timeout".to_string(),
                    HANDOVER_TIMEOUT_SECONDS.to_string(),
                    "--password-file".to_string(),
                    ADMIN_PASSWORD_FILE.to_string(),
                ]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One engine pod, stamped with the hash of its spec ([`pod_spec_hash`]). `role` is the label
/// for humans (`kubectl get -L redispair.io/role`); routing never reads it.
pub fn build_pod(v: &ValidatedPair, pod: &str, role: Option<&str>) -> Pod {
    let mut p = build_unstamped_pod(v, pod, role);
    p.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_SPEC_HASH.to_string(), pod_spec_hash(v));
    p
}

/// The pod name the spec hash is computed with: the hash must not depend on which of the two
/// pods it is (hostname, claim name), only on what the spec makes of a pod.
const HASH_POD_NAME: &str = "pod";

/// The hash of what [`build_pod`] makes of the spec, minus the per-pod identity: it is built
/// for a placeholder pod name and without labels (the pod and role labels differ per pod and
/// change at every switchover; user labels are merged into running pods in place). Covers the
/// image, resources, engine flags, probes, volumes, scheduling overrides and pod annotations:
/// anything that only takes effect in a new pod. Stable across operator restarts and map
/// orderings (keys are sorted before hashing; SHA-1 is fixed, unlike std's hasher). An operator
/// version that builds pods differently changes it too, and rolls its pairs one pod at a time.
pub fn pod_spec_hash(v: &ValidatedPair) -> String {
    let p = build_unstamped_pod(v, HASH_POD_NAME, None);
    let subject = serde_json::json!({
        "annotations": p.metadata.annotations,
        "spec": p.spec,
    });
    let mut canonical = String::new();
    write_canonical_json(&subject, &mut canonical);
    let digest = sha1_smol::Sha1::from(canonical.as_bytes())
        .digest()
        .to_string();
    digest[..16].to_string()
}

/// JSON with object keys sorted at every level (serde_json keeps insertion order when its
/// `preserve_order` feature is on somewhere in the dependency tree).
fn write_canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The spec hash a pod carries (None: made by an operator that did not stamp pods).
pub fn spec_hash_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_SPEC_HASH)
        .map(String::as_str)
}

fn build_unstamped_pod(v: &ValidatedPair, pod: &str, role: Option<&str>) -> Pod {
    let mut labels = v.spec.pod.labels.clone();
    labels.extend(pair_labels(v));
    labels.insert(LABEL_POD.to_string(), pod.to_string());
    if let Some(role) = role {
        labels.insert(LABEL_ROLE.to_string(), role.to_string());
    }
    let data_volume = if v.spec.storage.ephemeral {
        Volume {
            name: "data".to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }
    } else {
        Volume {
            name: "data".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: v.names.pvc(pod),
                read_only: None,
            }),
            ..Default::default()
        }
    };
    let (liveness, readiness) = build_probes(v);
    let mut volume_mounts = vec![
        VolumeMount {
            name: "data".to_string(),
            mount_path: DATA_DIR.to_string(),
            ..Default::default()
        },
        VolumeMount {
            name: "secrets".to_string(),
            mount_path: SECRETS_DIR.to_string(),
            read_only: Some(true),
            ..Default::default()
        },
    ];
    let mut volumes = vec![data_volume, build_secrets_volume(v)];
    if let Some(tls) = build_tls_volume(v) {
        volume_mounts.push(VolumeMount {
            name: tls.name.clone(),
            mount_path: TLS_DIR.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(tls);
    }
    let container = Container {
        name: ENGINE_CONTAINER.to_string(),
        image: Some(v.image.clone()),
        image_pull_policy: v.spec.image_pull_policy.clone(),
        command: Some(vec![ENGINE_BINARY.to_string()]),
        args: Some(build_engine_args(v)),
        ports: Some(build_container_ports(v)),
        resources: v.spec.resources.clone(),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
        lifecycle: Some(build_lifecycle()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(ENGINE_UID),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            ..Default::default()
        }),
        volume_mounts: Some(volume_mounts),
        env: v
            .spec
            .backup
            .as_ref()
            .and_then(|b| store_env_vars(&b.destination)),
        ..Default::default()
    };
    let mut container = container;
    if let Some(secret) = v
        .spec
        .backup
        .as_ref()
        .and_then(|b| b.destination.credentials_secret.as_ref())
    {
        // Optional: a missing or wrong credentials Secret must not keep an engine from
        // starting (a pod replaced after a failover would wait in ContainerCreating and the
        // pair stay without its second copy). The engine starts with what is there, its
        // archiver reports the failure and picks the files up once the Secret is fixed; the
        // operator names the Secret and the missing key (`BackupCredentials`).
        volumes.push(secret_files_volume(
            "archive-credentials",
            &secret.name,
            true,
        ));
        if let Some(m) = container.volume_mounts.as_mut() {
            m.push(VolumeMount {
                name: "archive-credentials".to_string(),
                mount_path: ARCHIVE_CREDENTIALS_DIR.to_string(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    // A migration source's TLS Secrets: whole Secret volumes (a rotated Secret reaches the
    // files, which the engine reads at every connect). Optional: the operator builds no pod
    // while one is missing before the migration completes (validate_migration), and after it
    // the source is never dialled again, so a deleted Secret must not keep a pod from starting.
    if let Some(t) = crate::operator::migrate::migrate_from_tls(&v.spec) {
        for (volume, secret, dir) in [
            ("source-ca", &t.ca_secret, SOURCE_CA_DIR),
            ("source-client", &t.client_cert_secret, SOURCE_CLIENT_DIR),
        ] {
            let Some(secret) = secret else { continue };
            volumes.push(secret_files_volume(volume, secret, true));
            if let Some(m) = container.volume_mounts.as_mut() {
                m.push(VolumeMount {
                    name: volume.to_string(),
                    mount_path: dir.to_string(),
                    read_only: Some(true),
                    ..Default::default()
                });
            }
        }
    }
    // The restore step: only in the first pod, only until a master was elected (its data is
    // the pair's; the other pod syncs from it). The spec hash is computed for a placeholder
    // pod without it, so it never causes a rollout.
    let restore = (v.restore_first_master && pod == v.names.pods[0])
        .then(|| build_restore_container(v, &container))
        .flatten();
    if let Some(secret) = restore
        .as_ref()
        .and_then(|_| restore_source(v)?.source.credentials_secret.as_ref())
    {
        // Required: a restore without its credentials cannot succeed, so the first pod waits
        // for the Secret (the operator says which, in `BackupCredentials`).
        volumes.push(secret_files_volume(
            "recovery-credentials",
            &secret.name,
            false,
        ));
    }
    let init_containers = restore.map(|c| vec![c]);
    Pod {
        metadata: ObjectMeta {
            name: Some(pod.to_string()),
            namespace: Some(v.namespace.clone()),
            labels: Some(labels),
            annotations: Some(build_pod_annotations(v)),
            owner_references: Some(vec![v.owner.clone()]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            hostname: Some(pod.to_string()),
            subdomain: Some(v.names.headless.clone()),
            affinity: Some(build_affinity(v)),
            node_selector: (!v.spec.pod.node_selector.is_empty())
                .then(|| v.spec.pod.node_selector.clone()),
            tolerations: (!v.spec.pod.tolerations.is_empty())
                .then(|| v.spec.pod.tolerations.clone()),
            priority_class_name: v.spec.pod.priority_class_name.clone(),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(ENGINE_UID),
                run_as_group: Some(ENGINE_UID),
                fs_group: Some(ENGINE_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_string(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            // The operator replaces a failed pod itself (it must choose which one is master),
            // so the kubelet only restarts the container in place.
            restart_policy: Some("Always".to_string()),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
            enable_service_links: Some(false),
            automount_service_account_token: Some(false),
            init_containers,
            containers: vec![container],
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod's annotations: the `prometheus.io/*` scrape hints that annotation-based scrape
/// configs (Prometheus's Kubernetes examples, many agents) follow, then the user's
/// `spec.pod.annotations`, which win (set `prometheus.io/scrape: "false"` to opt out).
pub fn build_pod_annotations(v: &ValidatedPair) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        (
            "prometheus.io/port".to_string(),
            ENGINE_METRICS_PORT.to_string(),
        ),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
    ]);
    a.extend(v.spec.pod.annotations.clone());
    a
}

/// True for a semi-sync or sync pair (the replica holds every acknowledged write).
pub fn acknowledges_after_replica(mode: ReplicationMode) -> bool {
    mode != ReplicationMode::Async
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrating_pair(tls: serde_json::Value) -> ValidatedPair {
        let mut v = crate::operator::validate::tests::contract_validated();
        v.spec.bootstrap = Some(
            serde_json::from_value(serde_json::json!({"migrateFrom": {
                "host": "10.0.0.9", "port": 6380, "tls": tls}}))
            .unwrap(),
        );
        v
    }

    #[test]
    fn a_tls_source_gets_its_secrets_mounted_and_master_tls_flags() {
        let v = migrating_pair(serde_json::json!({
            "caSecret": "src-ca", "serverName": "old.example", "clientCertSecret": "src-client"}));
        let args = build_engine_args(&v);
        assert_eq!(
            flag(&args, "master-tls-ca-cert-file"),
            Some("/var/run/redispair/source-tls/ca/ca.crt")
        );
        assert_eq!(
            flag(&args, "master-tls-cert-file"),
            Some("/var/run/redispair/source-tls/client/tls.crt")
        );
        assert_eq!(
            flag(&args, "master-tls-key-file"),
            Some("/var/run/redispair/source-tls/client/tls.key")
        );
        assert_eq!(flag(&args, "master-tls-server-name"), Some("old.example"));
        assert_eq!(flag(&args, "master-tls-verify"), None);
        // The pair's own TLS is untouched (it has none here).
        assert!(args.iter().all(|a| !a.starts_with("--tls-")));
        let pod = build_pod(&v, "cache-a", None);
        let spec = pod.spec.unwrap();
        for (volume, secret, dir) in [
            ("source-ca", "src-ca", SOURCE_CA_DIR),
            ("source-client", "src-client", SOURCE_CLIENT_DIR),
        ] {
            let vol = spec
                .volumes
                .as_ref()
                .unwrap()
                .iter()
                .find(|x| x.name == volume)
                .unwrap_or_else(|| panic!("a {volume} volume"));
            let src = vol.secret.as_ref().unwrap();
            assert_eq!(src.secret_name.as_deref(), Some(secret));
            assert_eq!(src.default_mode, Some(SECRET_FILE_MODE));
            // Optional: once the migration completed, a deleted Secret must not keep a pod
            // from starting (before, no pod is built without it).
            assert_eq!(src.optional, Some(true));
            let mount = spec.containers[0]
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.name == volume)
                .unwrap();
            assert_eq!(mount.mount_path, dir);
            assert_eq!(mount.read_only, Some(true));
            assert!(mount.sub_path.is_none());
        }
        // The system roots, no client certificate, no verification: flags to match, no volume.
        let bare = migrating_pair(serde_json::json!({"insecureSkipVerify": true}));
        let args = build_engine_args(&bare);
        assert_eq!(flag(&args, "master-tls-verify"), Some("no"));
        assert!(args
            .iter()
            .all(|a| !a.contains("master-tls-ca") && !a.contains("master-tls-cert")));
        let spec = build_pod(&bare, "cache-a", None).spec.unwrap();
        assert!(spec
            .volumes
            .unwrap()
            .iter()
            .all(|x| !x.name.starts_with("source-")));
        // A plaintext source: nothing of the kind.
        let plain = crate::operator::validate::tests::contract_validated();
        assert!(build_engine_args(&plain)
            .iter()
            .all(|a| !a.contains("master-tls")));
    }

    fn tls_pair(plaintext: bool) -> ValidatedPair {
        let mut v = crate::operator::validate::tests::contract_validated();
        v.spec.tls = Some(crate::api::TlsSpec {
            secret_name: Some("cache-certs".into()),
            issuer_ref: None,
            plaintext,
            client_auth: crate::api::TlsClientAuth::Optional,
        });
        v.names.tls_secret = Some("cache-certs".into());
        v
    }

    fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == &format!("--{name}"))
            .map(|i| args[i + 1].as_str())
    }

    #[test]
    fn tls_mounts_the_secret_and_starts_the_engine_with_tls_replication() {
        let v = tls_pair(true);
        let args = build_engine_args(&v);
        assert_eq!(flag(&args, "port"), Some("6379"));
        assert_eq!(flag(&args, "tls-port"), Some("6380"));
        assert_eq!(
            flag(&args, "tls-ca-cert-file"),
            Some("/var/run/redispair/tls/ca.crt")
        );
        assert_eq!(flag(&args, "tls-auth-clients"), Some("optional"));
        assert_eq!(flag(&args, "tls-replication"), Some("yes"));
        assert_eq!(flag(&args, "loopback-port"), None);
        let pod = build_pod(&v, "cache-a", None);
        let spec = pod.spec.unwrap();
        let tls = spec
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "tls")
            .expect("a tls volume");
        // A whole Secret volume (never subPath): the kubelet updates it in place.
        assert_eq!(
            tls.secret.unwrap().secret_name.as_deref(),
            Some("cache-certs")
        );
        let c = &spec.containers[0];
        let mount = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "tls")
            .unwrap();
        assert_eq!(mount.mount_path, TLS_DIR);
        assert!(mount.sub_path.is_none());
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, vec![6379, 6380, 9121]);
    }

    #[test]
    fn tls_only_keeps_plaintext_on_loopback_for_the_probes() {
        let v = tls_pair(false);
        let args = build_engine_args(&v);
        assert_eq!(flag(&args, "port"), Some("0"));
        assert_eq!(flag(&args, "loopback-port"), Some("6379"));
        let c = &build_pod(&v, "cache-a", None).spec.unwrap().containers[0];
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, vec![6380, 9121]);
        let live = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .tcp_socket
            .as_ref()
            .unwrap();
        assert_eq!(live.port, IntOrString::String("redis-tls".into()));
        // The readiness probe still speaks plaintext to 127.0.0.1:6379 (the loopback port).
        let ready = c.readiness_probe.as_ref().unwrap().exec.as_ref().unwrap();
        assert!(ready
            .command
            .as_ref()
            .unwrap()
            .contains(&"6379".to_string()));
    }

    #[test]
    fn a_pair_without_tls_keeps_its_pod_hash() {
        let v = crate::operator::validate::tests::contract_validated();
        let args = build_engine_args(&v);
        assert!(args.iter().all(|a| !a.contains("tls")));
        assert_ne!(pod_spec_hash(&v), pod_spec_hash(&tls_pair(true)));
    }
    use crate::api::ZoneSpread;
    use crate::operator::validate::tests::contract_validated;

    fn container(p: &Pod) -> &Container {
        &p.spec.as_ref().unwrap().containers[0]
    }

    #[test]
    fn spec_hash_is_stamped_and_the_same_for_both_pods_and_roles() {
        let v = contract_validated();
        let a = build_pod(&v, "cache-a", Some("master"));
        let b = build_pod(&v, "cache-b", Some("replica"));
        let h = pod_spec_hash(&v);
        assert_eq!(h.len(), 16);
        assert_eq!(spec_hash_of(&a), Some(h.as_str()));
        assert_eq!(spec_hash_of(&b), Some(h.as_str()));
        // Stable: the same spec hashes the same, whatever the order user maps were filled in.
        let mut v1 = contract_validated();
        let mut v2 = contract_validated();
        for (k, val) in [("zone", "a"), ("disk", "ssd")] {
            v1.spec.pod.node_selector.insert(k.into(), val.into());
        }
        for (k, val) in [("disk", "ssd"), ("zone", "a")] {
            v2.spec.pod.node_selector.insert(k.into(), val.into());
        }
        assert_eq!(pod_spec_hash(&v1), pod_spec_hash(&v2));
        assert_ne!(pod_spec_hash(&v1), h);
        // User labels are merged in place: no roll.
        let mut v3 = contract_validated();
        v3.spec.pod.labels.insert("team".into(), "x".into());
        assert_eq!(pod_spec_hash(&v3), h);
    }

    #[test]
    fn spec_hash_changes_with_image_resources_and_engine_config() {
        use k8s_openapi::api::core::v1::ResourceRequirements;
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let base = pod_spec_hash(&contract_validated());
        let mut v = contract_validated();
        v.image = "localhost/rp:v2".into();
        assert_ne!(pod_spec_hash(&v), base, "image");
        let mut v = contract_validated();
        v.spec.resources = Some(ResourceRequirements {
            limits: Some(BTreeMap::from([("memory".into(), Quantity("2Gi".into()))])),
            ..Default::default()
        });
        assert_ne!(pod_spec_hash(&v), base, "resources");
        let mut v = contract_validated();
        v.extra_config.push(("hz".into(), "50".into()));
        assert_ne!(pod_spec_hash(&v), base, "engine config");
        let mut v = contract_validated();
        v.spec.pod.annotations.insert("a".into(), "b".into());
        assert_ne!(pod_spec_hash(&v), base, "pod annotations");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": {"y": 1, "x": [ {"q": 1, "p": 2} ]}, "a": null});
        let mut out = String::new();
        write_canonical_json(&a, &mut out);
        assert_eq!(out, r#"{"a":null,"b":{"x":[{"p":2,"q":1}],"y":1}}"#);
    }

    #[test]
    fn pod_has_required_anti_affinity_on_the_topology_key() {
        let v = contract_validated();
        let p = build_pod(&v, "cache-a", Some("master"));
        let aff = p.spec.as_ref().unwrap().affinity.as_ref().unwrap();
        let anti = aff.pod_anti_affinity.as_ref().unwrap();
        let req = anti
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap();
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].topology_key, "kubernetes.io/hostname");
        assert_eq!(
            req[0]
                .label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["redispair.io/pair"],
            "cache"
        );
        assert!(anti
            .preferred_during_scheduling_ignored_during_execution
            .is_none());
    }

    #[test]
    fn zone_spread_adds_a_preferred_term() {
        let mut v = contract_validated();
        v.spec.topology.zone_spread = Some(ZoneSpread {
            topology_key: "topology.kubernetes.io/zone".into(),
        });
        let p = build_pod(&v, "cache-a", None);
        let anti = p.spec.unwrap().affinity.unwrap().pod_anti_affinity.unwrap();
        let pref = anti
            .preferred_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(
            pref[0].pod_affinity_term.topology_key,
            "topology.kubernetes.io/zone"
        );
    }

    #[test]
    fn pod_labels_name_pair_pod_and_role() {
        let mut v = contract_validated();
        v.spec.pod.labels.insert("team".into(), "a".into());
        // The operator's labels win over the user's.
        v.spec
            .pod
            .labels
            .insert("redispair.io/pair".into(), "other".into());
        let p = build_pod(&v, "cache-b", Some("replica"));
        let l = p.metadata.labels.unwrap();
        assert_eq!(l["redispair.io/pair"], "cache");
        assert_eq!(l["redispair.io/pod"], "cache-b");
        assert_eq!(l["redispair.io/role"], "replica");
        assert_eq!(l["team"], "a");
        assert_eq!(p.metadata.owner_references.unwrap()[0].kind, "RedisPair");
    }

    #[test]
    fn engine_runs_non_root_with_a_read_only_root_and_the_data_claim() {
        let v = contract_validated();
        let p = build_pod(&v, "cache-a", None);
        let c = container(&p);
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(c.image.as_deref(), Some("localhost/rp:test"));
        assert_eq!(c.command.as_ref().unwrap()[0], ENGINE_BINARY);
        let vols = p.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert_eq!(
            vols[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-cache-a"
        );
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/data");
    }

    #[test]
    fn ephemeral_storage_uses_an_empty_dir() {
        let mut v = contract_validated();
        v.spec.storage.ephemeral = true;
        let p = build_pod(&v, "cache-a", None);
        assert!(p.spec.unwrap().volumes.unwrap()[0].empty_dir.is_some());
    }

    #[test]
    fn engine_flags_carry_admin_user_degrade_policy_lease_and_password_files() {
        let mut v = contract_validated();
        v.extra_config = vec![("hz".into(), "20".into())];
        v.spec.engine.maxmemory_policy = Some(crate::api::EvictionPolicy::AllkeysLru);
        v.spec.failover.detection_seconds = 5;
        let args = build_engine_args(&v).join(" ");
        for want in [
            "--dir /data",
            "--admin-user redispair-admin",
            "--admin-password-file /var/run/redispair/secrets/admin-password",
            "--requirepass-file /var/run/redispair/secrets/password",
            "--replication-mode semi-sync",
            "--semi-sync-degrade operator",
            "--write-lease-ms 3000",
            // The replica calls a silent master's link down within the detection window.
            "--repl-timeout 5",
            "--maxmemory-policy allkeys-lru",
            "--hz 20",
        ] {
            assert!(args.contains(want), "{want} missing from {args}");
        }
    }

    /// Nothing secret reaches the command line (`/proc/PID/cmdline`) or the environment
    /// (`crictl inspect`): not the values, not `$(VAR)` references to Secret-backed variables.
    #[test]
    fn pods_expose_the_metrics_endpoint_and_carry_scrape_annotations() {
        let mut v = contract_validated();
        let p = build_pod(&v, "cache-a", None);
        let c = &p.spec.as_ref().unwrap().containers[0];
        let args = c.args.as_ref().unwrap().join(" ");
        assert!(args.contains("--metrics-port 9121"), "{args}");
        let port = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .find(|p| p.name.as_deref() == Some("metrics"))
            .expect("a metrics container port");
        assert_eq!(port.container_port, 9121);
        let a = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(a["prometheus.io/scrape"], "true");
        assert_eq!(a["prometheus.io/port"], "9121");
        assert_eq!(a["prometheus.io/path"], "/metrics");
        // The user's annotations win: scraping can be turned off per pair.
        v.spec
            .pod
            .annotations
            .insert("prometheus.io/scrape".into(), "false".into());
        let p = build_pod(&v, "cache-a", None);
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()["prometheus.io/scrape"],
            "false"
        );
    }

    #[test]
    fn no_secret_in_args_or_env_of_any_command() {
        let mut v = contract_validated();
        v.password = Some("client-pw".into());
        v.admin_password = Some("admin-pw".into());
        let p = build_pod(&v, "cache-a", None);
        let c = container(&p);
        assert!(c.env.as_ref().is_none_or(|e| e.is_empty()), "{:?}", c.env);
        assert!(c.env_from.is_none());
        let mut words: Vec<String> = c.command.clone().unwrap();
        words.extend(c.args.clone().unwrap());
        words.extend(
            c.readiness_probe
                .as_ref()
                .unwrap()
                .exec
                .as_ref()
                .unwrap()
                .command
                .clone()
                .unwrap(),
        );
        let pre_stop = c.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
        words.extend(pre_stop.exec.as_ref().unwrap().command.clone().unwrap());
        for w in &words {
            assert!(!w.contains("$("), "variable reference {w}");
            assert!(!w.contains("client-pw") && !w.contains("admin-pw"), "{w}");
        }
        for flag in ["--requirepass", "--admin-password", "--masterauth"] {
            assert!(!words.contains(&flag.to_string()), "{flag} given directly");
        }
        // The probe and the hook read the admin password from its file.
        let after = |cmd: &[String], flag: &str| {
            cmd[cmd.iter().position(|a| a == flag).unwrap() + 1].clone()
        };
        let probe = c.readiness_probe.as_ref().unwrap().exec.as_ref().unwrap();
        assert_eq!(
            after(probe.command.as_ref().unwrap(), "--password-file"),
            ADMIN_PASSWORD_FILE
        );
        let hook = pre_stop.exec.as_ref().unwrap().command.as_ref().unwrap();
        assert_eq!(after(hook, "--password-file"), ADMIN_PASSWORD_FILE);
    }

    #[test]
    fn secrets_are_mounted_read_only_with_mode_0440_for_the_fs_group() {
        let p = build_pod(&contract_validated(), "cache-a", None);
        let spec = p.spec.as_ref().unwrap();
        let c = container(&p);
        let mount = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "secrets")
            .unwrap();
        assert_eq!(mount.mount_path, SECRETS_DIR);
        assert_eq!(mount.read_only, Some(true));
        assert!(
            mount.sub_path.is_none(),
            "subPath mounts are never refreshed"
        );
        assert!(
            PASSWORD_FILE.starts_with(SECRETS_DIR) && ADMIN_PASSWORD_FILE.starts_with(SECRETS_DIR)
        );
        let vol = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "secrets")
            .unwrap();
        let projected = vol.projected.as_ref().unwrap();
        assert_eq!(projected.default_mode, Some(0o440));
        let items: Vec<(String, String, String)> = projected
            .sources
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| {
                let s = s.secret.as_ref().unwrap();
                let i = &s.items.as_ref().unwrap()[0];
                (s.name.clone(), i.key.clone(), i.path.clone())
            })
            .collect();
        assert_eq!(
            items,
            [
                (
                    "cache-password".into(),
                    "password".into(),
                    "password".into()
                ),
                (
                    "cache-admin".into(),
                    "password".into(),
                    "admin-password".into()
                ),
            ]
        );
        // Group-readable needs the engine's group on the files.
        let sc = spec.security_context.as_ref().unwrap();
        assert_eq!(sc.fs_group, Some(ENGINE_UID));
        assert_eq!(sc.run_as_group, Some(ENGINE_UID));
    }

    #[test]
    fn probes_check_the_process_and_the_engine() {
        let p = build_pod(&contract_validated(), "cache-a", None);
        let c = container(&p);
        assert!(c.liveness_probe.as_ref().unwrap().tcp_socket.is_some());
        let r = c.readiness_probe.as_ref().unwrap();
        let cmd = r.exec.as_ref().unwrap().command.as_ref().unwrap();
        assert_eq!(cmd[..2], [OPERATOR_BINARY.to_string(), "probe".to_string()]);
        assert_eq!(r.period_seconds, Some(1));
    }

    #[test]
    fn pre_stop_waits_for_the_hand_over_within_the_grace_period() {
        let p = build_pod(&contract_validated(), "cache-a", None);
        let c = container(&p);
        let cmd = c
            .lifecycle
            .as_ref()
            .unwrap()
            .pre_stop
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap()
            .command
            .clone()
            .unwrap();
        assert_eq!(
            cmd[..2],
            [ENGINE_BINARY.to_string(), "wait-handover".into()]
        );
        let timeout: i64 = cmd[cmd.iter().position(|a| a == "--timeout").unwrap() + 1]
            .parse()
            .unwrap();
        let grace = p
            .spec
            .as_ref()
            .unwrap()
            .termination_grace_period_seconds
            .unwrap();
        assert!(
            grace >= timeout + 5,
            "grace {grace} s, hand-over {timeout} s"
        );
    }

    fn with_archive_and_recovery() -> ValidatedPair {
        use crate::api::{
            BackupSpec, BootstrapSpec, LocalSecretRef, ObjectStoreSpec, RecoverySpec,
        };
        let mut v = contract_validated();
        v.spec.backup = Some(BackupSpec {
            destination: ObjectStoreSpec {
                destination_path: "s3://bucket/shop/cache".into(),
                endpoint_url: Some("http://10.0.0.9:8333".into()),
                region: Some("eu-west-1".into()),
                credentials_secret: Some(LocalSecretRef {
                    name: "s3-creds".into(),
                }),
            },
            schedule: Some("0 3 * * *".into()),
            retention: Some("7d".into()),
        });
        v.spec.bootstrap = Some(BootstrapSpec {
            recovery: Some(RecoverySpec {
                source: ObjectStoreSpec {
                    destination_path: "s3://bucket/shop/old".into(),
                    endpoint_url: Some("https://s3.example".into()),
                    region: None,
                    credentials_secret: Some(LocalSecretRef {
                        name: "old-creds".into(),
                    }),
                },
                backup: None,
                target_time: Some("2026-12-06T10:00:00Z".into()),
                target_offset: None,
            }),
            ..Default::default()
        });
        v.restore_first_master = true;
        v
    }

    #[test]
    fn archiving_settings_reach_the_engine_with_credentials_as_files() {
        let v = with_archive_and_recovery();
        let p = build_pod(&v, "cache-b", None);
        let c = container(&p);
        let args = c.args.clone().unwrap();
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("--archive-url"), "s3://bucket/shop/cache");
        assert_eq!(after("--archive-credentials-dir"), ARCHIVE_CREDENTIALS_DIR);
        assert_eq!(after("--archive-retention"), "7d");
        // Endpoint and region in the environment (not secret), credentials never.
        let env: BTreeMap<String, String> = c
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap()))
            .collect();
        assert_eq!(env["AWS_ENDPOINT"], "http://10.0.0.9:8333");
        assert_eq!(env["AWS_ALLOW_HTTP"], "true");
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert!(c.env.iter().flatten().all(|e| e.value_from.is_none()));
        let spec = p.spec.as_ref().unwrap();
        let vol = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "archive-credentials")
            .unwrap();
        let secret = vol.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("s3-creds"));
        assert_eq!(secret.default_mode, Some(SECRET_FILE_MODE));
        // Optional: a missing Secret must not keep the engine from starting (a backup
        // problem never costs the pair a copy); the operator reports it instead.
        assert_eq!(secret.optional, Some(true));
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "archive-credentials")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            (ARCHIVE_CREDENTIALS_DIR, Some(true))
        );
        // The second pod has no restore step.
        assert!(spec.init_containers.is_none());
    }

    #[test]
    fn the_first_pod_restores_before_the_engine_starts_only_while_bootstrapping() {
        let v = with_archive_and_recovery();
        let p = build_pod(&v, "cache-a", None);
        let spec = p.spec.as_ref().unwrap();
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.name, RESTORE_CONTAINER);
        assert_eq!(init.image, container(&p).image);
        assert_eq!(
            init.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        let args = init.args.clone().unwrap();
        assert_eq!(
            args,
            [
                "restore",
                "--once",
                "--from",
                "s3://bucket/shop/old",
                "--dir",
                DATA_DIR,
                "--credentials-dir",
                RECOVERY_CREDENTIALS_DIR,
                "--target-time",
                "2026-12-06T10:00:00Z"
            ]
        );
        let env = init.env.clone().unwrap();
        assert_eq!(env.len(), 1, "https: no AWS_ALLOW_HTTP; {env:?}");
        assert_eq!(env[0].name, "AWS_ENDPOINT");
        assert!(spec
            .volumes
            .iter()
            .flatten()
            .any(|v| v.name == "recovery-credentials"
                && v.secret.as_ref().unwrap().secret_name.as_deref() == Some("old-creds")
                && v.secret.as_ref().unwrap().optional == Some(false)));
        // Not part of the spec hash: the step disappearing once a master exists rolls nothing.
        let mut elected = v.clone();
        elected.restore_first_master = false;
        assert_eq!(pod_spec_hash(&v), pod_spec_hash(&elected));
        assert!(build_pod(&elected, "cache-a", None)
            .spec
            .unwrap()
            .init_containers
            .is_none());
    }
}
