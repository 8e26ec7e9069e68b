//! The status step: computes the RedisPair status from the decision and what was observed
//! (pure: [`build_status`]), and writes it with server-side apply under the operator's one
//! field manager (I/O: [`patch_status`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};

use super::decide::{format_time_ms, write_record};
use super::observe::Observed;
use super::validate::Names;
use crate::api::constants::FIELD_MANAGER;
use crate::api::{
    LastFailover, RedisPair, RedisPairStatus, ReplicationMode, ReplicationStatus, ServiceNames,
};
use crate::failover::{Decision, Observation, Phase, Role, RolloutStep};

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_REPLICATING: &str = "Replicating";
pub const CONDITION_FAILING_OVER: &str = "FailingOver";
pub const CONDITION_DEGRADED: &str = "Degraded";
/// True while a rollout of a changed pod spec is in progress.
pub const CONDITION_PROGRESSING: &str = "Progressing";

/// Whether the credentials Secrets `spec.backup` and `spec.bootstrap.recovery` name are there
/// with the keys their store needs. Present only on pairs that name one. False never stops a
/// pass: a backup problem never blocks a failover.
pub const CONDITION_BACKUP_CREDENTIALS: &str = "BackupCredentials";
/// The reasons of [`CONDITION_BACKUP_CREDENTIALS`] (also the Events' reasons).
pub const REASON_BACKUP_CREDENTIALS_INVALID: &str = "BackupCredentialsInvalid";
pub const REASON_BACKUP_CREDENTIALS_VALID: &str = "BackupCredentialsValid";

/// The `BackupCredentials` condition after a check (see
/// `validate::check_backup_credentials`).
pub fn backup_credentials_condition(
    previous: &[Condition],
    check: &Result<(), super::validate::BackupCredentialsError>,
    generation: Option<i64>,
    now_ms: u64,
) -> Condition {
    match check {
        Ok(()) => condition(
            previous,
            CONDITION_BACKUP_CREDENTIALS,
            true,
            REASON_BACKUP_CREDENTIALS_VALID,
            "the credentials Secrets exist with the keys their stores need".to_string(),
            generation,
            now_ms,
        ),
        Err(e) => condition(
            previous,
            CONDITION_BACKUP_CREDENTIALS,
            false,
            REASON_BACKUP_CREDENTIALS_INVALID,
            e.to_string(),
            generation,
            now_ms,
        ),
    }
}

/// Whether a migration source's certificate is verified (`migrateFrom.tls`): present on pairs
/// migrating from a TLS source until the migration completes. False only with
/// `insecureSkipVerify`, and then a Warning Event: the pair takes its data from whoever answers.
pub const CONDITION_MIGRATION_SOURCE_VERIFIED: &str = "MigrationSourceVerified";
pub const REASON_SOURCE_CERTIFICATE_VERIFIED: &str = "SourceCertificateVerified";
pub const REASON_SOURCE_VERIFICATION_SKIPPED: &str = "SourceVerificationSkipped";

/// The `MigrationSourceVerified` condition for a source's TLS settings.
pub fn migration_source_verified_condition(
    previous: &[Condition],
    tls: &crate::api::MigrateFromTlsSpec,
    generation: Option<i64>,
    now_ms: u64,
) -> Condition {
    if tls.insecure_skip_verify {
        return condition(
            previous,
            CONDITION_MIGRATION_SOURCE_VERIFIED,
            false,
            REASON_SOURCE_VERIFICATION_SKIPPED,
            "migrateFrom.tls.insecureSkipVerify: the links to the source are encrypted but its certificate is not verified; whoever can intercept them can pose as the source and feed the pair its data".to_string(),
            generation,
            now_ms,
        );
    }
    let against = match &tls.ca_secret {
        Some(s) => format!("the CA in Secret {s} (ca.crt)"),
        None => "the system's CA certificates".to_string(),
    };
    let name = tls
        .server_name
        .as_ref()
        .map(|n| format!(", for the name {n}"))
        .unwrap_or_default();
    condition(
        previous,
        CONDITION_MIGRATION_SOURCE_VERIFIED,
        true,
        REASON_SOURCE_CERTIFICATE_VERIFIED,
        format!("the source's certificate is verified against {against}{name}"),
        generation,
        now_ms,
    )
}

/// The outcome of the first pod's restore step (`spec.bootstrap.recovery`, or a rollback's):
/// True once it completed, False while it fails, with the step's last log line (the engine
/// names the object: "archive object wal/... is corrupt"). Present only on pairs that restored.
pub const CONDITION_RESTORE: &str = "Restore";
/// The reasons of [`CONDITION_RESTORE`] (the failure's is also a Warning Event's reason).
pub const REASON_RESTORE_FAILED: &str = "RestoreFailed";
pub const REASON_RESTORE_RUNNING: &str = "Restoring";
pub const REASON_RESTORED: &str = "Restored";

/// The `Restore` condition from the restore step's container status in `pod` (the pair's first
/// pod), while the pair is being restored (`restoring`). None when there is nothing to say: no
/// step (and no earlier condition to keep), or no pod yet. Once the pair no longer restores,
/// the last condition is kept, so "Restored" (or the reason the last attempt failed) stays
/// readable.
pub fn restore_condition(
    previous: &[Condition],
    restoring: bool,
    pod: Option<&k8s_openapi::api::core::v1::Pod>,
    generation: Option<i64>,
    now_ms: u64,
) -> Option<Condition> {
    let kept = || {
        previous
            .iter()
            .find(|c| c.type_ == CONDITION_RESTORE)
            .cloned()
    };
    if !restoring {
        return kept();
    }
    let pod_name = pod?.metadata.name.clone().unwrap_or_default();
    let Some(st) = pod?
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.name == super::build::pod::RESTORE_CONTAINER)
        })
    else {
        // The pod was built before the step existed (or is not scheduled yet).
        return kept();
    };
    let state_terminated = st.state.as_ref().and_then(|s| s.terminated.as_ref());
    // A failed attempt: terminated now, or waiting (CrashLoopBackOff) after one. A step that
    // runs again after a failure keeps saying so until it completes.
    let failed = state_terminated.filter(|t| t.exit_code != 0).or_else(|| {
        st.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .filter(|t| t.exit_code != 0 && state_terminated.is_none())
    });
    // Running (or waiting to run) with no failure yet: Unknown, which makes no Event.
    let (ok, reason, message) = if state_terminated.is_some_and(|t| t.exit_code == 0) {
        (
            Some(true),
            REASON_RESTORED,
            format!("{pod_name} restored its data from the archive"),
        )
    } else if let Some(t) = failed {
        // FallbackToLogsOnError: the kubelet's message is the log's tail; its last line is
        // the command's error.
        let last_line = t
            .message
            .as_deref()
            .and_then(|m| m.lines().rev().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| format!("exit code {}", t.exit_code));
        (
            Some(false),
            REASON_RESTORE_FAILED,
            format!(
                "{pod_name}: the restore step failed (it is retried; kubectl logs {pod_name} -c {}): {last_line}",
                super::build::pod::RESTORE_CONTAINER
            ),
        )
    } else {
        (
            None,
            REASON_RESTORE_RUNNING,
            format!("{pod_name} is restoring its data from the archive"),
        )
    };
    let mut c = condition(
        previous,
        CONDITION_RESTORE,
        ok.unwrap_or(false),
        reason,
        message,
        generation,
        now_ms,
    );
    if ok.is_none() {
        c.status = "Unknown".to_string();
        c.last_transition_time = previous
            .iter()
            .find(|p| p.type_ == CONDITION_RESTORE && p.status == "Unknown")
            .map_or_else(
                || Time(jiff::Timestamp::from_millisecond(now_ms as i64).unwrap_or_default()),
                |p| p.last_transition_time.clone(),
            );
    }
    Some(c)
}

/// A standard condition; its transition time is kept while its status does not change.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now_ms: u64,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| {
            Time(jiff::Timestamp::from_millisecond(now_ms as i64).unwrap_or_default())
        });
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The status after a pass.
#[allow(clippy::too_many_arguments)]
pub fn build_status(
    previous: Option<&RedisPairStatus>,
    names: &Names,
    mode: ReplicationMode,
    generation: Option<i64>,
    d: &Decision,
    obs: &Observation,
    observed: &Observed,
    now_ms: u64,
) -> RedisPairStatus {
    let prev_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let mut s = RedisPairStatus {
        phase: Some(d.phase.as_str().to_string()),
        observed_generation: generation,
        last_failover: previous.and_then(|p| p.last_failover.clone()),
        services: Some(ServiceNames {
            read_write: names.read_write.clone(),
            read_only: names.read_only.clone(),
            headless: names.headless.clone(),
        }),
        // Its observed fields are kept from the last pass until this one fills them in.
        migration: previous.and_then(|p| p.migration.clone()),
        // Kept as recorded; the rollback step (`rollback::plan`) moves it on.
        rollback: previous.and_then(|p| p.rollback.clone()),
        ..Default::default()
    };
    write_record(&mut s, &d.record);
    if let Some(m) = s.migration.as_mut() {
        super::migrate::observe_into_status(m, obs);
        m.source_error = observed.source.as_ref().and_then(|p| p.error.clone());
    }
    let report = |pod: &str| {
        obs.members
            .iter()
            .find(|m| m.pod == pod)
            .and_then(|m| m.report.as_ref())
    };
    // Observation: the target master counts as current only once it reports itself master
    // in the pair's term (CNPG's target/current split).
    s.current_master = d.record.serving_master(obs).map(|m| m.pod.clone());
    let replica = d
        .record
        .target_master
        .as_ref()
        .and_then(|t| names.pods.iter().find(|p| *p != t))
        .cloned();
    let replica_report = replica.as_deref().and_then(report);
    let replicating = replica_report.is_some_and(|r| r.role == Role::Replica && r.link_up);
    s.replica = replica.clone();
    let master_report = s.current_master.as_deref().and_then(report);
    let master_probe = s
        .current_master
        .as_ref()
        .and_then(|m| observed.probes.get(m))
        .and_then(|p| p.info.as_ref());
    let degraded_now = d.record.degrade_authorized_term == Some(d.record.term)
        || master_report.is_some_and(|r| r.degraded);
    if let Some(m) = master_report {
        let replica_offset = master_probe
            .and_then(|i| i.replica_ack_offset)
            .or(replica_report.map(|r| r.offset))
            .unwrap_or(0);
        s.replication = Some(ReplicationStatus {
            mode: mode.as_str().to_string(),
            lag_bytes: (m.offset - replica_offset).max(0),
            lag_seconds: master_probe
                .and_then(|i| i.replica_lag_seconds)
                .unwrap_or(0),
            in_sync: replicating && !degraded_now && mode != ReplicationMode::Async,
            master_offset: m.offset,
            replica_offset,
        });
    } else {
        s.replication = Some(ReplicationStatus {
            mode: mode.as_str().to_string(),
            ..Default::default()
        });
    }
    if let Some((from, to, reason, ms)) = &d.completed {
        s.last_failover = Some(LastFailover {
            time: format_time_ms(now_ms),
            from: from.clone(),
            to: to.clone(),
            reason: reason.clone(),
            duration_seconds: *ms as f64 / 1000.0,
        });
    }
    let phase = d.phase;
    // The initial election runs the promotion steps too; it is not a failover.
    let failing_over = d.record.failover.as_ref().filter(|f| !f.from.is_empty());
    s.conditions = vec![
        condition(
            prev_conditions,
            CONDITION_READY,
            phase == Phase::Ready,
            phase.as_str(),
            match &s.current_master {
                Some(m) => format!("{m} is master in term {}", d.record.term),
                None => "no master serving yet".to_string(),
            },
            generation,
            now_ms,
        ),
        condition(
            prev_conditions,
            CONDITION_REPLICATING,
            replicating,
            if replicating { "LinkUp" } else { "LinkDown" },
            match &replica {
                Some(r) if replicating => format!("{r} replicates from the master"),
                Some(r) => format!("{r} is not replicating"),
                None => "no replica".to_string(),
            },
            generation,
            now_ms,
        ),
        condition(
            prev_conditions,
            CONDITION_FAILING_OVER,
            failing_over.is_some(),
            if failing_over.is_some() {
                "FailoverInProgress"
            } else {
                "Stable"
            },
            failing_over
                .map(|f| {
                    format!(
                        "{:?}: {} → {} (term {}): {}",
                        f.step, f.from, f.to, f.term, f.reason
                    )
                })
                .unwrap_or_default(),
            generation,
            now_ms,
        ),
        condition(
            prev_conditions,
            CONDITION_DEGRADED,
            degraded_now || phase == Phase::Degraded,
            if d.record.degrade_authorized_term == Some(d.record.term) {
                "DegradeAuthorized"
            } else if degraded_now || phase == Phase::Degraded {
                "ReplicaUnavailable"
            } else {
                "InSync"
            },
            if degraded_now {
                "the replica may lack acknowledged writes; automatic failover waits until it caught up".to_string()
            } else {
                String::new()
            },
            generation,
            now_ms,
        ),
        rollout_condition(prev_conditions, d, obs, generation, now_ms),
    ];
    s
}

/// `Progressing`: True while a rollout is recorded; False and why otherwise (up to date, or
/// an outdated pod waiting for the pair to be healthy).
fn rollout_condition(
    previous: &[Condition],
    d: &Decision,
    obs: &Observation,
    generation: Option<i64>,
    now_ms: u64,
) -> Condition {
    let outdated: Vec<&str> = obs
        .members
        .iter()
        .filter(|m| m.outdated)
        .map(|m| m.pod.as_str())
        .collect();
    let (status, reason, message) = match &d.record.rollout {
        Some(r) => (
            true,
            "RollingOut",
            match r.step {
                RolloutStep::ReplacingReplica => {
                    format!("replacing replica {} with the current pod spec", r.pod)
                }
                RolloutStep::Switchover => {
                    format!(
                        "switching the master role away from {} before replacing it",
                        r.pod
                    )
                }
            },
        ),
        None if !outdated.is_empty() => (
            false,
            "RolloutWaiting",
            format!(
                "{} run(s) an outdated pod spec; the rollout starts once the pair is Ready",
                outdated.join(" and ")
            ),
        ),
        None => (
            false,
            "UpToDate",
            "both pods run the current pod spec".to_string(),
        ),
    };
    condition(
        previous,
        CONDITION_PROGRESSING,
        status,
        reason,
        message,
        generation,
        now_ms,
    )
}

/// A status for a spec that failed validation: the record is kept, Ready is False with the
/// validation message.
pub fn build_invalid_status(
    previous: Option<&RedisPairStatus>,
    generation: Option<i64>,
    message: String,
    now_ms: u64,
) -> RedisPairStatus {
    let mut s = previous.cloned().unwrap_or_default();
    let prev = s.conditions.clone();
    s.phase = Some(Phase::Failed.as_str().to_string());
    s.observed_generation = generation;
    s.conditions.retain(|c| c.type_ != CONDITION_READY);
    s.conditions.insert(
        0,
        condition(
            &prev,
            CONDITION_READY,
            false,
            "InvalidSpec",
            message,
            generation,
            now_ms,
        ),
    );
    s
}

/// Write the whole status (server-side apply, forced: the operator owns every status field).
pub async fn patch_status(
    api: &Api<RedisPair>,
    name: &str,
    status: &RedisPairStatus,
) -> Result<RedisPair, kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": "redispair.io/v1alpha1",
        "kind": "RedisPair",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// The status a pass must start from: the watch cache's copy, unless the operator itself wrote a
/// newer one that the cache has not delivered yet. Passes follow each other within
/// milliseconds during a failover, faster than watch events arrive; starting from a stale copy
/// would decide again from an older failover record and drop fields written since (the last
/// failover). Resource versions are compared as the integers etcd makes them.
pub fn newest_status(
    cached: Option<&RedisPairStatus>,
    cached_version: Option<&str>,
    written: Option<&(u64, RedisPairStatus)>,
) -> Option<RedisPairStatus> {
    let cached_rv = cached_version.and_then(|v| v.parse::<u64>().ok());
    match (written, cached_rv) {
        (Some((rv, s)), Some(c)) if *rv > c => Some(s.clone()),
        (Some((_, s)), None) => Some(s.clone()),
        _ => cached.cloned(),
    }
}

#[cfg(test)]
mod newest_status_tests {
    use super::*;

    #[test]
    fn own_newer_write_wins_over_a_stale_cache() {
        let cached = RedisPairStatus {
            term: 1,
            ..Default::default()
        };
        let written = RedisPairStatus {
            term: 2,
            ..Default::default()
        };
        let w = (20, written.clone());
        assert_eq!(
            newest_status(Some(&cached), Some("10"), Some(&w)),
            Some(written)
        );
        assert_eq!(
            newest_status(Some(&cached), Some("30"), Some(&w)),
            Some(cached.clone())
        );
        assert_eq!(newest_status(Some(&cached), Some("10"), None), Some(cached));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_source_verified_says_what_verifies_the_source() {
        let tls = |v: serde_json::Value| -> crate::api::MigrateFromTlsSpec {
            serde_json::from_value(v).unwrap()
        };
        let c = migration_source_verified_condition(
            &[],
            &tls(serde_json::json!({"caSecret": "old-ca", "serverName": "old.example"})),
            Some(1),
            1_000,
        );
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", REASON_SOURCE_CERTIFICATE_VERIFIED)
        );
        assert!(
            c.message.contains("old-ca") && c.message.contains("old.example"),
            "{}",
            c.message
        );
        let c = migration_source_verified_condition(&[], &tls(serde_json::json!({})), None, 1_000);
        assert!(c.message.contains("system's CA"), "{}", c.message);
        let c = migration_source_verified_condition(
            &[],
            &tls(serde_json::json!({"insecureSkipVerify": true})),
            None,
            1_000,
        );
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", REASON_SOURCE_VERIFICATION_SKIPPED)
        );
        assert!(c.message.contains("not verified"), "{}", c.message);
    }
    use crate::failover::{EngineReport, Member, PodHealth, Record};
    use crate::operator::validate::tests::contract_pair;

    fn member(pod: &str, role: Role, link_up: bool) -> Member {
        Member {
            pod: pod.into(),
            pod_health: PodHealth::Ready,
            node_ready: Some(true),
            node_not_ready_ms: None,
            report: Some(EngineReport {
                role,
                term: 1,
                offset: if role == Role::Master { 100 } else { 90 },
                link_up,
                degraded: false,
                following: None,
                detached_no_history: false,
                cannot_persist: false,
            }),
            probe_failing_since_ms: None,
            fenced: false,
            paused_offset: None,
            lease_granted_ms: None,
            outdated: false,
            uid: None,
            evicted: false,
            crash_looping: false,
            pod_age_ms: None,
        }
    }

    fn decision(phase: Phase) -> Decision {
        Decision {
            record: Record {
                migration: None,
                term: 1,
                target_master: Some("cache-a".into()),
                degrade_authorized_term: None,
                ready_term: Some(1),
                repair: None,
                failover: None,
                force_failover_handled: None,
                rollout: None,
            },
            actions: vec![],
            phase,
            again_now: false,
            completed: Some((
                "cache-b".into(),
                "cache-a".into(),
                "pod cache-b is gone".into(),
                1500,
            )),
        }
    }

    #[test]
    fn progressing_condition_follows_the_rollout() {
        let mut obs = Observation {
            migration: None,
            members: vec![
                member("cache-a", Role::Master, false),
                member("cache-b", Role::Replica, true),
            ],
            service_selects: Some("cache-a".into()),
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
        };
        let mut d = decision(Phase::Ready);
        let c = rollout_condition(&[], &d, &obs, Some(1), 0);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "UpToDate")
        );
        obs.members[1].outdated = true;
        let c = rollout_condition(&[], &d, &obs, Some(1), 0);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "RolloutWaiting")
        );
        assert!(c.message.contains("cache-b"), "{}", c.message);
        d.record.rollout = Some(crate::failover::Rollout {
            step: RolloutStep::ReplacingReplica,
            pod: "cache-b".into(),
            started_ms: 0,
        });
        let c = rollout_condition(&[], &d, &obs, Some(1), 0);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "RollingOut")
        );
        assert_eq!(
            c.message,
            "replacing replica cache-b with the current pod spec"
        );
    }

    #[test]
    fn ready_pair_status() {
        let names = Names::new(&contract_pair());
        let obs = Observation {
            migration: None,
            members: vec![
                member("cache-a", Role::Master, false),
                member("cache-b", Role::Replica, true),
            ],
            service_selects: Some("cache-a".into()),
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
        };
        let s = build_status(
            None,
            &names,
            ReplicationMode::SemiSync,
            Some(3),
            &decision(Phase::Ready),
            &obs,
            &Observed::default(),
            1_700_000_000_000,
        );
        assert_eq!(s.phase.as_deref(), Some("Ready"));
        assert_eq!(s.current_master.as_deref(), Some("cache-a"));
        assert_eq!(s.replica.as_deref(), Some("cache-b"));
        assert_eq!(s.observed_generation, Some(3));
        let r = s.replication.as_ref().unwrap();
        assert_eq!((r.lag_bytes, r.in_sync), (10, true));
        let c = |t: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .status
                .clone()
        };
        assert_eq!(c("Ready"), "True");
        assert_eq!(c("Replicating"), "True");
        assert_eq!(c("FailingOver"), "False");
        assert_eq!(c("Degraded"), "False");
        let lf = s.last_failover.as_ref().unwrap();
        assert_eq!(
            (lf.from.as_str(), lf.to.as_str(), lf.duration_seconds),
            ("cache-b", "cache-a", 1.5)
        );
        assert_eq!(s.services.as_ref().unwrap().read_only, "cache-ro");
        // The transition time is kept while a condition does not change.
        let later = build_status(
            Some(&s),
            &names,
            ReplicationMode::SemiSync,
            Some(3),
            &decision(Phase::Ready),
            &obs,
            &Observed::default(),
            1_700_000_900_000,
        );
        assert_eq!(
            later.conditions[0].last_transition_time,
            s.conditions[0].last_transition_time
        );
    }

    #[test]
    fn master_not_yet_promoted_is_not_current() {
        let names = Names::new(&contract_pair());
        let mut d = decision(Phase::FailingOver);
        d.record.term = 2;
        let obs = Observation {
            migration: None,
            members: vec![member("cache-a", Role::Master, false)],
            service_selects: None,
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
        };
        let s = build_status(
            None,
            &names,
            ReplicationMode::Async,
            None,
            &d,
            &obs,
            &Observed::default(),
            0,
        );
        assert_eq!(s.current_master, None);
        assert_eq!(s.target_master.as_deref(), Some("cache-a"));
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "FailingOver")
        );
    }

    #[test]
    fn invalid_spec_keeps_the_record() {
        let prev = RedisPairStatus {
            term: 5,
            ..Default::default()
        };
        let s = build_invalid_status(Some(&prev), Some(2), "bad".into(), 0);
        assert_eq!(s.term, 5);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.conditions[0].reason, "InvalidSpec");
        assert_eq!(s.conditions[0].message, "bad");
    }

    /// A pod whose restore step has the given state and last state (JSON of
    /// `ContainerState`).
    fn restoring_pod(
        state: serde_json::Value,
        last: serde_json::Value,
    ) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cache-a"},
            "status": {"initContainerStatuses": [{
                "name": "restore", "image": "i", "imageID": "", "ready": false,
                "restartCount": 1, "state": state, "lastState": last,
            }]},
        }))
        .unwrap()
    }

    #[test]
    fn the_restore_condition_names_the_object_of_a_failed_restore() {
        let failed = serde_json::json!({"terminated": {"exitCode": 1, "message":
            "INFO restoring\nError: archive object wal/x.rpwal is corrupt: checksum mismatch\n"}});
        let running = serde_json::json!({"running": {}});
        // Failed, and while the step runs again after the failure: False with the last line.
        for (state, last) in [
            (failed.clone(), serde_json::json!({})),
            (
                serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}}),
                failed.clone(),
            ),
            (running.clone(), failed.clone()),
        ] {
            let c =
                restore_condition(&[], true, Some(&restoring_pod(state, last)), None, 0).unwrap();
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", REASON_RESTORE_FAILED)
            );
            assert!(
                c.message
                    .ends_with("Error: archive object wal/x.rpwal is corrupt: checksum mismatch"),
                "{}",
                c.message
            );
        }
        // Running with no failure yet: Unknown (no Event); completed: True.
        let c = restore_condition(
            &[],
            true,
            Some(&restoring_pod(running, serde_json::json!({}))),
            None,
            0,
        )
        .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", REASON_RESTORE_RUNNING)
        );
        let done = serde_json::json!({"terminated": {"exitCode": 0}});
        let c = restore_condition(&[], true, Some(&restoring_pod(done, failed)), None, 0).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", REASON_RESTORED)
        );
        // Once the pair no longer restores, the last condition stays; none on other pairs.
        let kept = restore_condition(std::slice::from_ref(&c), false, None, None, 5).unwrap();
        assert_eq!(kept, c);
        assert!(restore_condition(&[], false, None, None, 0).is_none());
    }
}
