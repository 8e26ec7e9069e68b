//! Builder of one engine pod: the engine command line (admin user, `semi-sync-degrade
//! operator`, write lease, data dir), required anti-affinity against its peer, probes, and a
//! non-root, read-only-root security context. Pure.
//!
//! Pods are managed directly (no StatefulSet, like CloudNativePG): the operator decides which
//! pod is master, and can recreate exactly the pod that is gone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, PersistentVolumeClaimVolumeSource, Pod, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, Probe, SeccompProfile, SecretKeySelector, SecurityContext,
    TCPSocketAction, Volume, VolumeMount, WeightedPodAffinityTerm,
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
pub const ENV_PASSWORD: &str = "REDISPAIR_PASSWORD";
pub const ENV_ADMIN_PASSWORD: &str = "REDISPAIR_ADMIN_PASSWORD";

/// The engine's command-line arguments. Secrets are passed as `$(VAR)` references that the
/// kubelet expands from the container's environment, so they never appear in the pod spec.
pub fn build_engine_args(v: &ValidatedPair) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    flag("port", ENGINE_PORT.to_string());
    flag("bind", "0.0.0.0".to_string());
    flag("dir", DATA_DIR.to_string());
    flag("requirepass", format!("$({ENV_PASSWORD})"));
    flag("admin-user", ADMIN_USER.to_string());
    flag("admin-password", format!("$({ENV_ADMIN_PASSWORD})"));
    flag(
        "replication-mode",
        v.spec.replication.mode.as_str().to_string(),
    );
    // The master never stops waiting for its replica on its own: only the operator, which
    // sees both sides, may authorise that (and records it first).
    flag("semi-sync-degrade", "operator".to_string());
    flag("write-lease-ms", WRITE_LEASE_MS.to_string());
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
    for (name, value) in &v.extra_config {
        flag(name, value.clone());
    }
    args
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
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
fn build_probes() -> (Probe, Probe) {
    let liveness = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".to_string()),
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
            ]),
        }),
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        failure_threshold: Some(2),
        ..Default::default()
    };
    (liveness, readiness)
}

/// One engine pod. `role` is the label for humans (`kubectl get -L redispair.io/role`);
/// routing never reads it.
pub fn build_pod(v: &ValidatedPair, pod: &str, role: Option<&str>) -> Pod {
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
    let (liveness, readiness) = build_probes();
    let container = Container {
        name: ENGINE_CONTAINER.to_string(),
        image: Some(v.image.clone()),
        image_pull_policy: v.spec.image_pull_policy.clone(),
        command: Some(vec![ENGINE_BINARY.to_string()]),
        args: Some(build_engine_args(v)),
        env: Some(vec![
            secret_env(
                ENV_PASSWORD,
                &v.names.password_secret,
                &v.names.password_key,
            ),
            secret_env(ENV_ADMIN_PASSWORD, &v.names.admin_secret, "password"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("redis".to_string()),
            container_port: ENGINE_PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        resources: v.spec.resources.clone(),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
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
        volume_mounts: Some(vec![VolumeMount {
            name: "data".to_string(),
            mount_path: DATA_DIR.to_string(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(pod.to_string()),
            namespace: Some(v.namespace.clone()),
            labels: Some(labels),
            annotations: (!v.spec.pod.annotations.is_empty())
                .then(|| v.spec.pod.annotations.clone()),
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
            termination_grace_period_seconds: Some(10),
            enable_service_links: Some(false),
            automount_service_account_token: Some(false),
            containers: vec![container],
            volumes: Some(vec![data_volume]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// True for a semi-sync or sync pair (the replica holds every acknowledged write).
pub fn acknowledges_after_replica(mode: ReplicationMode) -> bool {
    mode != ReplicationMode::Async
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ZoneSpread;
    use crate::operator::validate::tests::contract_validated;

    fn container(p: &Pod) -> &Container {
        &p.spec.as_ref().unwrap().containers[0]
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
    fn engine_flags_carry_admin_user_degrade_policy_lease_and_secrets_by_reference() {
        let mut v = contract_validated();
        v.extra_config = vec![("hz".into(), "20".into())];
        v.spec.engine.maxmemory_policy = Some(crate::api::EvictionPolicy::AllkeysLru);
        let args = build_engine_args(&v).join(" ");
        for want in [
            "--dir /data",
            "--admin-user redispair-admin",
            "--admin-password $(REDISPAIR_ADMIN_PASSWORD)",
            "--requirepass $(REDISPAIR_PASSWORD)",
            "--replication-mode semi-sync",
            "--semi-sync-degrade operator",
            "--write-lease-ms 3000",
            "--maxmemory-policy allkeys-lru",
            "--hz 20",
        ] {
            assert!(args.contains(want), "{want} missing from {args}");
        }
        let p = build_pod(&v, "cache-a", None);
        let env = container(&p).env.as_ref().unwrap();
        let pw = env[0]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (pw.name.as_str(), pw.key.as_str()),
            ("cache-password", "password")
        );
        let admin = env[1]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(admin.name, "cache-admin");
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
}
