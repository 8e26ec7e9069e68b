//! The decide step's glue: translates what was observed and the status record into the pure
//! failover machine's inputs ([`crate::failover`]), and its decision back into Service routing
//! and status fields. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::build::pod::spec_hash_of;
use super::build::service::selected_pod;
use super::build::Routing;
use super::observe::Observed;
use super::validate::Names;
use crate::api::constants::{
    is_fenced, ANNOTATION_FORCE_FAILOVER, ANNOTATION_PASSWORD_APPLIED, ANNOTATION_SWITCHOVER,
    ENGINE_CONTAINER,
};
use crate::api::{
    FailoverProgress, FailoverStep, NodeLossPolicy, RedisPair, RedisPairSpec, RedisPairStatus,
    RepairAction, RepairProgress, ReplicationMode, RolloutProgress,
};
use crate::failover::{
    Action, Decision, EngineReport, Member, Mode, Observation, PodHealth, Policy, Progress, Record,
    Repair, RepairKind, Rollout, RolloutStep, Step,
};

pub fn policy_of(spec: &RedisPairSpec) -> Policy {
    Policy {
        enabled: spec.failover.enabled,
        detection_ms: spec.failover.detection_seconds.max(1) as u64 * 1000,
        allow_data_loss: spec.failover.allow_data_loss,
        write_lease_ms: super::build::pod::WRITE_LEASE_MS,
        delete_claim_on_node_loss: spec.storage.on_node_loss == NodeLossPolicy::DeleteClaim,
        mode: match spec.replication.mode {
            ReplicationMode::Async => Mode::Async,
            ReplicationMode::SemiSync => Mode::SemiSync,
            ReplicationMode::Sync => Mode::Sync,
        },
    }
}

/// RFC 3339 → ms since the epoch (0 when unparsable: the duration is then only wrong in the
/// report, never in a safety decision).
pub fn parse_time_ms(t: &str) -> u64 {
    t.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_millisecond().max(0) as u64)
        .unwrap_or(0)
}

pub fn format_time_ms(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

fn step_to_api(s: Step) -> FailoverStep {
    match s {
        Step::Fencing => FailoverStep::Fencing,
        Step::Pausing => FailoverStep::Pausing,
        Step::Promoting => FailoverStep::Promoting,
        Step::Switching => FailoverStep::Switching,
    }
}

fn step_from_api(s: FailoverStep) -> Step {
    match s {
        FailoverStep::Fencing => Step::Fencing,
        FailoverStep::Pausing => Step::Pausing,
        FailoverStep::Promoting => Step::Promoting,
        FailoverStep::Switching => Step::Switching,
    }
}

/// The record the machine persisted, read back from status.
pub fn record_of(status: Option<&RedisPairStatus>) -> Record {
    let Some(s) = status else {
        return Record::default();
    };
    Record {
        term: s.term,
        target_master: s.target_master.clone(),
        degrade_authorized_term: s.degrade_authorized_term,
        ready_term: s.ready_term,
        failover: s.failover.as_ref().map(|f| Progress {
            step: step_from_api(f.step),
            from: f.from.clone(),
            to: f.to.clone(),
            term: f.term,
            reason: f.reason.clone(),
            planned: f.planned,
            started_ms: parse_time_ms(&f.started_at),
            // Unparsable would be 0 (no wait): fall back to "not computed yet", which makes
            // the machine compute a fresh (later) time instead.
            writable_after_ms: f
                .writable_after
                .as_deref()
                .map(parse_time_ms)
                .filter(|ms| *ms > 0),
        }),
        force_failover_handled: s.force_failover_handled.clone(),
        migration: s.migration.as_ref().map(super::migrate::migration_from_api),
        repair: s.repair.as_ref().map(repair_from_api),
        rollout: s.rollout.as_ref().map(|r| Rollout {
            step: match r.step {
                crate::api::RolloutStep::ReplacingReplica => RolloutStep::ReplacingReplica,
                crate::api::RolloutStep::Switchover => RolloutStep::Switchover,
            },
            pod: r.pod.clone(),
            started_ms: parse_time_ms(&r.started_at),
        }),
    }
}

fn repair_from_api(r: &RepairProgress) -> Repair {
    Repair {
        pod: r.pod.clone(),
        uid: r.pod_uid.clone(),
        kind: match r.action {
            RepairAction::ReplacePod => RepairKind::ReplacePod {
                delete_claim: false,
            },
            RepairAction::ReplacePodAndClaim => RepairKind::ReplacePod { delete_claim: true },
            RepairAction::RestartPod => RepairKind::RestartPod,
            RepairAction::FullSync => RepairKind::FullSync {
                master: r.master.clone().unwrap_or_default(),
                term: r.term,
            },
        },
        reason: r.reason.clone(),
        started_ms: parse_time_ms(&r.started_at),
    }
}

fn repair_to_api(r: &Repair) -> RepairProgress {
    let (action, master, term) = match &r.kind {
        RepairKind::ReplacePod {
            delete_claim: false,
        } => (RepairAction::ReplacePod, None, 0),
        RepairKind::ReplacePod { delete_claim: true } => {
            (RepairAction::ReplacePodAndClaim, None, 0)
        }
        RepairKind::RestartPod => (RepairAction::RestartPod, None, 0),
        RepairKind::FullSync { master, term } => {
            (RepairAction::FullSync, Some(master.clone()), *term)
        }
    };
    RepairProgress {
        action,
        pod: r.pod.clone(),
        pod_uid: r.uid.clone(),
        master,
        term,
        reason: r.reason.clone(),
        started_at: format_time_ms(r.started_ms),
    }
}

/// Write the record into a status (the other fields are left as they are).
pub fn write_record(status: &mut RedisPairStatus, r: &Record) {
    status.term = r.term;
    status.target_master = r.target_master.clone();
    status.degrade_authorized_term = r.degrade_authorized_term;
    status.ready_term = r.ready_term;
    status.failover = r.failover.as_ref().map(|p| FailoverProgress {
        step: step_to_api(p.step),
        from: p.from.clone(),
        to: p.to.clone(),
        term: p.term,
        reason: p.reason.clone(),
        started_at: format_time_ms(p.started_ms),
        planned: p.planned,
        writable_after: p.writable_after_ms.map(format_time_ms),
    });
    status.force_failover_handled = r.force_failover_handled.clone();
    status.migration = super::migrate::write_migration_record(status.migration.as_ref(), r);
    status.repair = r.repair.as_ref().map(repair_to_api);
    status.rollout = r.rollout.as_ref().map(|r| RolloutProgress {
        step: match r.step {
            RolloutStep::ReplacingReplica => crate::api::RolloutStep::ReplacingReplica,
            RolloutStep::Switchover => crate::api::RolloutStep::Switchover,
        },
        pod: r.pod.clone(),
        started_at: format_time_ms(r.started_ms),
    });
}

/// How Kubernetes sees a pod.
/// A container of the pod waits in the kubelet's CrashLoopBackOff.
fn crash_looping(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
        .any(|r| r == "CrashLoopBackOff")
}

pub fn pod_health(pod: Option<&Pod>) -> PodHealth {
    let Some(pod) = pod else {
        return PodHealth::Missing;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return PodHealth::Terminating;
    }
    let Some(status) = pod.status.as_ref() else {
        return PodHealth::NotReady;
    };
    if status.phase.as_deref() == Some("Failed") {
        return PodHealth::Failed;
    }
    if crash_looping(pod) {
        return PodHealth::Failed;
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready {
        PodHealth::Ready
    } else {
        PodHealth::NotReady
    }
}

pub fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
}

/// Every pod's address, by pod name (pods without one yet are left out).
pub fn pod_ips(o: &Observed) -> BTreeMap<String, String> {
    o.pods
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), pod_ip(p)?)))
        .collect()
}

/// Where to reach each engine for the actions of a pass: the pod's IP, or, for a pod whose
/// object is gone or has no IP (force-deleted: its engine may run on for seconds until the
/// kubelet stops it, preStop hook included), the address the prober last reached it at. Only
/// fencing can target such a member (promotions and demotions need its report, which needs the
/// pod); fencing a stale address is harmless: another pair's engine refuses our admin
/// password, and this pair's new incarnation of the pod is a replica.
pub fn action_ips(o: &Observed) -> BTreeMap<String, String> {
    let mut ips = pod_ips(o);
    for (pod, probe) in &o.probes {
        if !probe.ip.is_empty() && !ips.contains_key(pod) {
            ips.insert(pod.clone(), probe.ip.clone());
        }
    }
    ips
}

/// Split a decision's actions into the lease grants that must reach the engine before the
/// read-write Service names it (the grant to the pod `routing` selects) and everything else,
/// in order. A promoted engine accepts nothing until its first grant, so routing clients to it
/// first would have them refused for a pass.
pub fn split_lease_before_routing(
    actions: &[Action],
    routing: &Routing,
) -> (Vec<Action>, Vec<Action>) {
    actions.iter().cloned().partition(
        |a| matches!(a, Action::GrantLease { pod } if routing.read_write.as_ref() == Some(pod)),
    )
}

/// Build the machine's observation. `spec_hash` is the hash of the pod spec built now
/// ([`super::build::pod::pod_spec_hash`]): a pod carrying another one is outdated. A pod with
/// no hash is not: the apply step of this pass adopts it (see `apply::existing_pod_patch`).
pub fn observation_of(
    pair: &RedisPair,
    names: &Names,
    o: &Observed,
    spec_hash: &str,
) -> Observation {
    let members = names
        .pods
        .iter()
        .map(|name| {
            let pod = o.pods.get(name);
            let probe = o.probes.get(name);
            // A probe result is only trusted for the pod's current IP (a replaced pod is a
            // different engine).
            let probe = probe.filter(|p| pod.and_then(pod_ip).as_deref() == Some(p.ip.as_str()));
            let report = probe.and_then(|p| p.info.as_ref()).map(|i| EngineReport {
                role: i.role,
                term: i.term,
                offset: i.offset,
                link_up: i.link_up,
                degraded: i.degraded,
                detached_no_history: i.detached_no_history,
                cannot_persist: i.cannot_persist,
                following: i.master_host.as_ref().and_then(|host| {
                    o.pods
                        .iter()
                        .find(|(_, p)| pod_ip(p).as_deref() == Some(host.as_str()))
                        .map(|(n, _)| n.clone())
                        .or_else(|| Some(host.clone()))
                }),
            });
            Member {
                pod: name.clone(),
                pod_health: pod_health(pod),
                node_ready: pod
                    .and_then(|p| p.spec.as_ref()?.node_name.as_ref())
                    .and_then(|n| o.nodes_ready.get(n).copied()),
                node_not_ready_ms: pod
                    .and_then(|p| p.spec.as_ref()?.node_name.as_ref())
                    .and_then(|n| o.nodes_not_ready_since_ms.get(n))
                    .map(|since| o.wall_now_ms.saturating_sub(*since)),
                report,
                probe_failing_since_ms: probe.and_then(|p| p.failing_since_ms),
                fenced: pod.is_some_and(|p| is_fenced(p.annotations())),
                // Only for the engine at the pod's current IP, like the probe.
                paused_offset: o
                    .paused_offsets
                    .get(name)
                    .filter(|(ip, _)| pod.and_then(pod_ip).as_deref() == Some(ip.as_str()))
                    .map(|(_, offset)| *offset),
                lease_granted_ms: o.lease_grants.get(name).copied(),
                outdated: pod.and_then(spec_hash_of).is_some_and(|h| h != spec_hash),
                uid: pod.and_then(|p| p.metadata.uid.clone()),
                evicted: pod
                    .and_then(|p| p.status.as_ref()?.phase.as_deref())
                    .is_some_and(|phase| phase == "Failed"),
                crash_looping: pod.is_some_and(crash_looping),
                pod_age_ms: pod
                    .and_then(|p| p.metadata.creation_timestamp.as_ref())
                    .and_then(|t| u64::try_from(t.0.as_millisecond()).ok())
                    .map(|created| o.wall_now_ms.saturating_sub(created)),
            }
        })
        .collect::<Vec<Member>>();
    Observation {
        migration: super::migrate::migration_observation(pair, o, &members),
        service_selects: o.read_write_service.as_ref().and_then(selected_pod),
        switchover_requested: pair.annotations().contains_key(ANNOTATION_SWITCHOVER),
        force_failover_requested: pair
            .annotations()
            .get(ANNOTATION_FORCE_FAILOVER)
            .filter(|id| !id.is_empty())
            .cloned(),
        operator_started_ms: o.operator_started_ms,
        members,
    }
}

/// Who the Services select after this decision: the read-write Service follows the last
/// `SelectMaster` action, or stays as it is; the read-only Service selects the other pod only
/// while it reports itself a replica (a fenced old master must not serve reads).
pub fn routing_of(d: &Decision, obs: &Observation) -> Routing {
    let read_write = d
        .actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::SelectMaster(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap_or_else(|| obs.service_selects.clone());
    let target = d.record.target_master.clone();
    let read_only = obs
        .members
        .iter()
        // A fenced pod serves no reads either.
        .filter(|m| Some(&m.pod) != target.as_ref() && target.is_some() && !m.fenced)
        .find(|m| {
            m.report
                .as_ref()
                .is_some_and(|r| r.role == crate::failover::Role::Replica)
        })
        .map(|m| m.pod.clone());
    Routing {
        read_write,
        read_only,
        target_master: target,
    }
}

/// One engine that must be told the current password (`CONFIG SET requirepass`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordUpdate {
    pub pod: String,
    pub ip: String,
    /// The annotation to record once the engine took it (see
    /// [`crate::api::constants::ANNOTATION_PASSWORD_APPLIED`]).
    pub applied: String,
}

/// The engine container's restart count (0 before it first ran).
fn engine_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == ENGINE_CONTAINER))
        .map_or(0, |c| c.restart_count)
}

/// Engines whose recorded password version is not `mark` (the Secret changed since), or was
/// recorded before the engine's last restart (a restarted engine read the mounted file, which
/// the kubelet refreshes only some time after the Secret changed). Only engines the prober
/// reaches as the admin user, and only pods that are not being deleted: the others are
/// updated once they answer (the prober triggers a pass then).
pub fn passwords_to_apply(o: &Observed, mark: &str) -> Vec<PasswordUpdate> {
    o.pods
        .iter()
        .filter(|(_, pod)| pod.metadata.deletion_timestamp.is_none())
        .filter(|(name, _)| o.probes.get(*name).is_some_and(|p| p.info.is_some()))
        .filter_map(|(name, pod)| {
            let applied = super::build::secret::password_applied_value(mark, engine_restarts(pod));
            let recorded = pod.annotations().get(ANNOTATION_PASSWORD_APPLIED);
            if recorded == Some(&applied) {
                return None;
            }
            Some(PasswordUpdate {
                pod: name.clone(),
                ip: pod_ip(pod)?,
                applied,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::engine_client::EngineInfo;
    use crate::operator::observe::ProbeResult;
    use crate::operator::validate::tests::contract_pair;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(name: &str, ip: &str, ready: bool, node: &str) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn info(role: crate::failover::Role, host: Option<&str>) -> EngineInfo {
        EngineInfo {
            role,
            term: 1,
            offset: 10,
            link_up: host.is_some(),
            master_host: host.map(str::to_string),
            degraded: false,
            replica_ack_offset: None,
            replica_lag_seconds: None,
            detached_no_history: false,
            cannot_persist: false,
            archive: None,
        }
    }

    #[test]
    fn a_changed_password_or_a_restarted_engine_is_updated_once_reachable() {
        use k8s_openapi::api::core::v1::ContainerStatus;
        let mut o = Observed::default();
        for (name, ip) in [("cache-a", "10.0.0.1"), ("cache-b", "10.0.0.2")] {
            let mut p = pod(name, ip, true, "n1");
            p.metadata.annotations = Some(BTreeMap::from([(
                ANNOTATION_PASSWORD_APPLIED.to_string(),
                "m1/0".to_string(),
            )]));
            o.pods.insert(name.into(), p);
            o.probes.insert(
                name.into(),
                ProbeResult {
                    ip: ip.into(),
                    info: Some(info(crate::failover::Role::Master, None)),
                    failing_since_ms: None,
                },
            );
        }
        // In force everywhere: nothing to send.
        assert!(passwords_to_apply(&o, "m1").is_empty());
        // The Secret changed: both engines, with the new version to record.
        let all = passwords_to_apply(&o, "m2");
        assert_eq!(
            all,
            vec![
                PasswordUpdate {
                    pod: "cache-a".into(),
                    ip: "10.0.0.1".into(),
                    applied: "m2/0".into()
                },
                PasswordUpdate {
                    pod: "cache-b".into(),
                    ip: "10.0.0.2".into(),
                    applied: "m2/0".into()
                },
            ]
        );
        // An engine that restarted since is told again (its file may have been stale).
        o.pods
            .get_mut("cache-b")
            .unwrap()
            .status
            .as_mut()
            .unwrap()
            .container_statuses = Some(vec![ContainerStatus {
            name: "engine".into(),
            restart_count: 1,
            ..Default::default()
        }]);
        let again = passwords_to_apply(&o, "m1");
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].pod.as_str(), again[0].applied.as_str()),
            ("cache-b", "m1/1")
        );
        // Unreachable or terminating engines wait.
        o.probes.get_mut("cache-a").unwrap().info = None;
        o.pods
            .get_mut("cache-b")
            .unwrap()
            .metadata
            .deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        ));
        assert!(passwords_to_apply(&o, "m3").is_empty());
    }

    #[test]
    fn the_lease_grant_to_the_pod_being_routed_to_goes_first_and_nothing_else_does() {
        let routing = Routing {
            read_write: Some("cache-b".into()),
            read_only: None,
            target_master: Some("cache-b".into()),
        };
        let actions = vec![
            Action::GrantLease {
                pod: "cache-a".into(),
            },
            Action::GrantLease {
                pod: "cache-b".into(),
            },
            Action::SelectMaster(Some("cache-b".into())),
            Action::Demote {
                pod: "cache-a".into(),
                master: "cache-b".into(),
                term: 2,
            },
        ];
        let (first, later) = split_lease_before_routing(&actions, &routing);
        assert_eq!(
            first,
            vec![Action::GrantLease {
                pod: "cache-b".into()
            }]
        );
        assert_eq!(later.len(), 3);
        assert_eq!(
            later[0],
            Action::GrantLease {
                pod: "cache-a".into()
            }
        );
        // Routing to nothing (fencing): nothing goes before the Service write.
        let fencing = Routing {
            read_write: None,
            ..routing
        };
        let (first, later) = split_lease_before_routing(&actions, &fencing);
        assert!(first.is_empty());
        assert_eq!(later, actions);
    }

    #[test]
    fn observation_maps_pods_nodes_probes_and_the_followed_master() {
        use crate::failover::Role;
        let pair = contract_pair();
        let names = Names::new(&pair);
        let mut o = Observed::default();
        o.pods
            .insert("cache-a".into(), pod("cache-a", "10.0.0.1", true, "n1"));
        o.pods
            .insert("cache-b".into(), pod("cache-b", "10.0.0.2", false, "n2"));
        o.nodes_ready.insert("n1".into(), true);
        o.nodes_ready.insert("n2".into(), false);
        o.probes.insert(
            "cache-b".into(),
            ProbeResult {
                ip: "10.0.0.2".into(),
                info: Some(info(Role::Replica, Some("10.0.0.1"))),
                failing_since_ms: None,
            },
        );
        // A stale probe of an old IP is ignored.
        o.probes.insert(
            "cache-a".into(),
            ProbeResult {
                ip: "10.0.0.9".into(),
                info: Some(info(Role::Master, None)),
                failing_since_ms: None,
            },
        );
        let obs = observation_of(&pair, &names, &o, "h1");
        let a = &obs.members[0];
        assert_eq!(
            (a.pod_health, a.node_ready, a.report.is_none()),
            (PodHealth::Ready, Some(true), true)
        );
        let b = &obs.members[1];
        assert_eq!(b.pod_health, PodHealth::NotReady);
        assert_eq!(b.node_ready, Some(false));
        assert_eq!(
            b.report.as_ref().unwrap().following.as_deref(),
            Some("cache-a")
        );
        assert_eq!(obs.service_selects, None);
        assert!(!obs.switchover_requested);
        assert!(!a.crash_looping && !b.crash_looping);

        // A pod whose engine waits in CrashLoopBackOff, created 90 s before the observation.
        let mut looping = pod("cache-a", "10.0.0.1", false, "n1");
        looping.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_millisecond(1_700_000_000_000).unwrap(),
            ));
        let status = looping.status.get_or_insert_with(Default::default);
        status.container_statuses = Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
            name: "engine".into(),
            state: Some(k8s_openapi::api::core::v1::ContainerState {
                waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        o.pods.insert("cache-a".into(), looping);
        o.wall_now_ms = 1_700_000_090_000;
        let obs = observation_of(&pair, &names, &o, "h1");
        let a = &obs.members[0];
        assert_eq!(a.pod_health, PodHealth::Failed);
        assert!(a.crash_looping);
        assert_eq!(a.pod_age_ms, Some(90_000));
    }

    #[test]
    fn record_round_trips_through_status() {
        let r = Record {
            migration: None,
            term: 3,
            target_master: Some("cache-b".into()),
            degrade_authorized_term: Some(2),
            ready_term: Some(3),
            failover: Some(Progress {
                step: Step::Promoting,
                from: "cache-a".into(),
                to: "cache-b".into(),
                term: 4,
                reason: "pod cache-a is gone".into(),
                planned: false,
                started_ms: 1_700_000_000_123,
                writable_after_ms: Some(1_700_000_003_623),
            }),
            force_failover_handled: Some("2026-01-01T00:00:00Z".into()),
            rollout: Some(Rollout {
                step: RolloutStep::Switchover,
                pod: "cache-b".into(),
                started_ms: 1_700_000_000_000,
            }),
            repair: Some(Repair {
                pod: "cache-a".into(),
                uid: Some("u-1".into()),
                kind: RepairKind::FullSync {
                    master: "cache-b".into(),
                    term: 3,
                },
                reason: "cache-a refused cache-b's history".into(),
                started_ms: 1_700_000_000_000,
            }),
        };
        let mut s = RedisPairStatus::default();
        write_record(&mut s, &r);
        assert_eq!(
            s.failover.as_ref().unwrap().started_at,
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(record_of(Some(&s)), r);
        assert_eq!(record_of(None), Record::default());
    }

    #[test]
    fn terminating_and_missing_pods() {
        let mut p = pod("cache-a", "1", true, "n");
        assert_eq!(pod_health(Some(&p)), PodHealth::Ready);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(pod_health(Some(&p)), PodHealth::Terminating);
        assert_eq!(pod_health(None), PodHealth::Missing);
    }

    #[test]
    fn routing_follows_the_last_select_action() {
        let d = Decision {
            record: Record {
                target_master: Some("cache-a".into()),
                ..Default::default()
            },
            actions: vec![
                Action::SelectMaster(Some("cache-a".into())),
                Action::SelectMaster(None),
            ],
            phase: crate::failover::Phase::FailingOver,
            again_now: true,
            completed: None,
        };
        let obs = Observation {
            migration: None,
            members: vec![],
            service_selects: Some("cache-a".into()),
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
        };
        assert_eq!(routing_of(&d, &obs).read_write, None);
        let d2 = Decision {
            actions: vec![],
            ..d
        };
        assert_eq!(routing_of(&d2, &obs).read_write.as_deref(), Some("cache-a"));
    }

    #[test]
    fn a_fenced_replica_serves_no_reads() {
        use crate::failover::{EngineReport, Member, PodHealth, Role};
        let d = Decision {
            record: Record {
                target_master: Some("cache-a".into()),
                ..Default::default()
            },
            actions: vec![],
            phase: crate::failover::Phase::Ready,
            again_now: false,
            completed: None,
        };
        let member = |pod: &str, role, fenced| Member {
            pod: pod.into(),
            pod_health: PodHealth::Ready,
            node_ready: Some(true),
            node_not_ready_ms: None,
            report: Some(EngineReport {
                role,
                term: 1,
                offset: 0,
                link_up: true,
                degraded: false,
                following: None,
                detached_no_history: false,
                cannot_persist: false,
            }),
            probe_failing_since_ms: None,
            fenced,
            paused_offset: None,
            lease_granted_ms: None,
            outdated: false,
            uid: None,
            evicted: false,
            crash_looping: false,
            pod_age_ms: None,
        };
        let mut obs = Observation {
            migration: None,
            members: vec![
                member("cache-a", Role::Master, false),
                member("cache-b", Role::Replica, false),
            ],
            service_selects: Some("cache-a".into()),
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
        };
        assert_eq!(routing_of(&d, &obs).read_only.as_deref(), Some("cache-b"));
        obs.members[1].fenced = true;
        assert_eq!(routing_of(&d, &obs).read_only, None);
    }

    #[test]
    fn a_force_deleted_pod_is_fenced_at_its_last_known_address() {
        let mut o = Observed::default();
        o.pods
            .insert("cache-b".into(), pod("cache-b", "10.0.0.2", true, "n2"));
        // cache-a's pod object is gone; the prober last reached its engine at 10.0.0.1.
        o.probes.insert(
            "cache-a".into(),
            ProbeResult {
                ip: "10.0.0.1".into(),
                info: None,
                failing_since_ms: None,
            },
        );
        // A stale probe address never overrides a pod's current one.
        o.probes.insert(
            "cache-b".into(),
            ProbeResult {
                ip: "10.0.0.9".into(),
                info: None,
                failing_since_ms: None,
            },
        );
        let ips = action_ips(&o);
        assert_eq!(ips.get("cache-a").map(String::as_str), Some("10.0.0.1"));
        assert_eq!(ips.get("cache-b").map(String::as_str), Some("10.0.0.2"));
        assert!(!pod_ips(&o).contains_key("cache-a"));
    }

    #[test]
    fn the_fenced_annotation_means_the_same_to_everyone() {
        use crate::api::constants::{is_fenced, ANNOTATION_FENCED};
        let with = |v: &str| [(ANNOTATION_FENCED.to_string(), v.to_string())].into();
        assert!(is_fenced(&with("true")));
        assert!(is_fenced(&with("yes, by alice")));
        assert!(!is_fenced(&with("false")));
        assert!(!is_fenced(&with("False")));
        assert!(!is_fenced(&with("")));
        assert!(!is_fenced(&Default::default()));
    }

    #[test]
    fn policy_from_the_contract_spec() {
        let p = policy_of(&contract_pair().spec);
        assert_eq!(
            p,
            Policy {
                enabled: true,
                detection_ms: 2000,
                allow_data_loss: false,
                mode: Mode::SemiSync,
                write_lease_ms: 3000,
                delete_claim_on_node_loss: true,
            }
        );
    }
}
