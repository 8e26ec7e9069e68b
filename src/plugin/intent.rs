//! The intent each command writes: JSON merge patches of annotations on the RedisPair or a
//! pod (names in `api::constants`), their preconditions, and what to tell the user. Pure:
//! the operator reads these annotations and acts; nothing here touches an engine.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use crate::api::constants::{
    ANNOTATION_FENCED, ANNOTATION_FORCE_FAILOVER, ANNOTATION_MIGRATE_CUTOVER, ANNOTATION_ROLLBACK,
    ANNOTATION_SWITCHOVER, LABEL_PAIR,
};
use crate::api::RedisPair;

use super::error::PluginError;

/// A patch to send and the sentence to print once it is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// JSON merge patch (application/merge-patch+json).
    pub patch: Value,
    pub message: String,
}

/// Request ids are the RFC 3339 time of the request: unique enough for one person at a
/// terminal, and readable in `kubectl get rp -o yaml`.
pub fn request_id(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn annotate(key: &str, value: Value) -> Value {
    json!({ "metadata": { "annotations": { key: value } } })
}

fn pair_name(pair: &RedisPair) -> String {
    pair.metadata.name.clone().unwrap_or_default()
}

fn refuse_during_failover(pair: &RedisPair, action: &str) -> Result<(), PluginError> {
    if let Some(f) = pair.status.as_ref().and_then(|s| s.failover.as_ref()) {
        return Err(PluginError::NotNow {
            pair: pair_name(pair),
            action: action.to_string(),
            reason: format!(
                "a {} from {} to {} is in progress (step {:?}); wait for it to finish",
                if f.planned { "switchover" } else { "failover" },
                f.from,
                f.to,
                f.step
            ),
        });
    }
    Ok(())
}

/// `switchover NAME`: the operator waits for the replica to be in sync, pauses writes,
/// promotes it and demotes the old master. Refused while a failover runs or before the pair
/// has both a master and a replica.
pub fn switchover(pair: &RedisPair, now: Timestamp) -> Result<Intent, PluginError> {
    refuse_during_failover(pair, "switch over")?;
    let status = pair.status.clone().unwrap_or_default();
    let (Some(master), Some(replica)) = (status.current_master, status.replica) else {
        return Err(PluginError::NotNow {
            pair: pair_name(pair),
            action: "switch over".into(),
            reason:
                "it does not have both a master and a replica yet (see kubectl redispair status)"
                    .into(),
        });
    };
    let id = request_id(now);
    let mut message = format!(
        "switchover of {} requested (request {id}): {replica} becomes master, {master} becomes its replica.",
        pair_name(pair)
    );
    if !status.replication.as_ref().is_some_and(|r| r.in_sync) {
        message.push_str(" The replica is not in sync yet: the operator waits until it is.");
    }
    message.push_str(&format!(
        " Follow it with: kubectl redispair status {}",
        pair_name(pair)
    ));
    Ok(Intent {
        patch: annotate(ANNOTATION_SWITCHOVER, json!(id)),
        message,
    })
}

/// `failover NAME --force`: promote the replica now, accepting the loss of writes it lacks.
pub fn force_failover(
    pair: &RedisPair,
    force: bool,
    now: Timestamp,
) -> Result<Intent, PluginError> {
    if !force {
        return Err(PluginError::ForceRequired {
            pair: pair_name(pair),
        });
    }
    refuse_during_failover(pair, "fail over")?;
    let status = pair.status.clone().unwrap_or_default();
    let Some(replica) = status.replica else {
        return Err(PluginError::NotNow {
            pair: pair_name(pair),
            action: "fail over".into(),
            reason: "it has no replica to promote".into(),
        });
    };
    let id = request_id(now);
    let mut message = format!(
        "forced failover of {} requested (request {id}): the operator fences {} and promotes {replica}.",
        pair_name(pair),
        status.current_master.as_deref().unwrap_or("the old master"),
    );
    if let Some(r) = status.replication.as_ref().filter(|r| !r.in_sync) {
        message.push_str(&format!(
            " The replica was {} bytes behind: those writes are lost.",
            r.lag_bytes
        ));
    }
    Ok(Intent {
        patch: annotate(ANNOTATION_FORCE_FAILOVER, json!(id)),
        message,
    })
}

/// `rollback NAME --to-time T | --to-offset N [--backup B] --confirm NAME`: the
/// `redispair.io/rollback` request (docs/backup.md, "Rollback"), refused here already when the
/// confirmation is missing or wrong, the pair has no archive, or the time does not parse (the
/// operator checks the same).
pub fn rollback(
    pair: &RedisPair,
    target: RollbackTarget,
    confirm: Option<&str>,
    now: Timestamp,
) -> Result<Intent, PluginError> {
    let name = pair_name(pair);
    let not_now = |reason: String| PluginError::NotNow {
        pair: name.clone(),
        action: "roll back".into(),
        reason,
    };
    if confirm != Some(name.as_str()) {
        return Err(not_now(format!(
            "a rollback discards every write after its target: pass --confirm {name}"
        )));
    }
    if pair.spec.backup.is_none() {
        return Err(not_now(
            "it has no spec.backup, so no archive to roll back to".into(),
        ));
    }
    if let Some(t) = &target.time {
        t.parse::<Timestamp>()
            .map_err(|e| not_now(format!("--to-time {t:?} is not an RFC 3339 time: {e}")))?;
    }
    refuse_during_failover(pair, "roll back")?;
    let request = crate::api::RollbackRequest {
        id: format!("rb-{}", now.strftime("%Y%m%d-%H%M%S")),
        confirm: name.clone(),
        target_time: target.time.clone(),
        target_offset: target.offset,
        backup: target.backup.clone(),
    };
    let point = match (&target.time, target.offset) {
        (Some(t), _) => format!("time {t}"),
        (None, Some(o)) => format!("offset {o}"),
        (None, None) => "the archive's end".to_string(),
    };
    let value = serde_json::to_string(&request).map_err(|e| not_now(e.to_string()))?;
    Ok(Intent {
        patch: annotate(ANNOTATION_ROLLBACK, json!(value)),
        message: format!(
            "rollback of {name} to {point} requested (request {}): the operator cuts clients off, deletes both pods, restores {name}-a from the archive and syncs {name}-b from it; every write after the target is discarded. Follow it with: kubectl get rp {name} -o jsonpath='{{.status.rollback}}'",
            request.id
        ),
    })
}

/// Where `rollback` goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackTarget {
    pub time: Option<String>,
    pub offset: Option<u64>,
    pub backup: Option<String>,
}

/// `migrate cutover NAME`: refused unless the pair migrates and is following its source.
pub fn migrate_cutover(pair: &RedisPair, now: Timestamp) -> Result<Intent, PluginError> {
    let not_now = |reason: String| PluginError::NotNow {
        pair: pair_name(pair),
        action: "cut over".into(),
        reason,
    };
    let Some(spec) = pair
        .spec
        .bootstrap
        .as_ref()
        .and_then(|b| b.migrate_from.as_ref())
    else {
        return Err(not_now("it has no spec.bootstrap.migrateFrom".into()));
    };
    let status = pair.status.clone().unwrap_or_default();
    let Some(m) = status.migration else {
        return Err(not_now(
            "the operator has not started the migration yet (see kubectl redispair migrate status)"
                .into(),
        ));
    };
    match m.phase {
        crate::api::MigrationPhase::Completed => {
            return Err(not_now(format!(
                "the migration from {} completed at {}",
                m.source,
                m.completed_at.as_deref().unwrap_or("?")
            )))
        }
        crate::api::MigrationPhase::CuttingOver => {
            return Err(not_now("a cutover is already in progress".into()))
        }
        crate::api::MigrationPhase::Following => {}
    }
    let id = request_id(now);
    let mut message = format!(
        "cutover of {} from {} requested (request {id}): the operator pauses writes on the source for {} s (renewed until done), waits until {} has the source's offset, and promotes it. Move your clients to the pair now.",
        pair_name(pair),
        m.source,
        spec.pause_seconds,
        m.master.as_deref().unwrap_or("the pair's master"),
    );
    if !m.link_up {
        message.push_str(
            " The master's link to the source is down: the cutover waits for it (up to 60 s).",
        );
    }
    message.push_str(&format!(
        " Follow it with: kubectl redispair migrate status {}",
        pair_name(pair)
    ));
    Ok(Intent {
        patch: annotate(ANNOTATION_MIGRATE_CUTOVER, json!(id)),
        message,
    })
}

/// `migrate status NAME` as text.
pub fn migration_text(pair: &RedisPair) -> String {
    let name = pair_name(pair);
    let Some(m) = pair.status.as_ref().and_then(|s| s.migration.as_ref()) else {
        return match pair
            .spec
            .bootstrap
            .as_ref()
            .and_then(|b| b.migrate_from.as_ref())
        {
            Some(s) => format!(
                "RedisPair {name}: migration from {}:{} not started yet\n",
                s.host, s.port
            ),
            None => format!("RedisPair {name} has no migration (spec.bootstrap.migrateFrom)\n"),
        };
    };
    let opt = |v: Option<i64>| v.map_or("unknown".to_string(), |v| v.to_string());
    let mut out = format!("RedisPair {name}: migration from {}\n", m.source);
    let rows = [
        ("Phase", format!("{:?}", m.phase)),
        ("Master", m.master.clone().unwrap_or_else(|| "-".into())),
        ("Link", if m.link_up { "up" } else { "down" }.to_string()),
        ("Source offset", opt(m.source_offset)),
        ("Master offset", m.master_offset.to_string()),
        ("Lag (bytes)", opt(m.lag_bytes)),
        ("Started", m.started_at.clone()),
        (
            "Cutover",
            match (&m.cutover_request, &m.cutover_started_at) {
                (Some(r), Some(t)) => format!("request {r}, started {t}"),
                (Some(r), None) => format!("request {r}"),
                _ => "not requested".into(),
            },
        ),
        (
            "Completed",
            m.completed_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (k, v) in rows {
        out.push_str(&format!("{k:<15}{v}\n"));
    }
    if let Some(e) = &m.source_error {
        out.push_str(&format!("{:<15}{e}\n", "Source error"));
    }
    out
}

/// `fence NAME POD` / `unfence NAME POD`: the pod must be one of the pair's.
pub fn fence(
    pair: &RedisPair,
    pod: &Pod,
    members: &[String],
    fenced: bool,
) -> Result<Intent, PluginError> {
    let name = pair_name(pair);
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let belongs = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PAIR))
        .is_some_and(|p| *p == name);
    if !belongs {
        return Err(PluginError::PodNotInPair {
            pod: pod_name,
            pair: name,
            members: if members.is_empty() {
                "none".into()
            } else {
                members.join(", ")
            },
        });
    }
    let is_fenced = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(crate::api::constants::is_fenced);
    let status = pair.status.clone().unwrap_or_default();
    let is_master = status.current_master.as_deref() == Some(pod_name.as_str());
    if fenced {
        if is_fenced {
            return Err(PluginError::NotNow {
                pair: name,
                action: "fence".into(),
                reason: format!("pod {pod_name} is already fenced"),
            });
        }
        let what = if is_master {
            " It is the master: the operator fails over to the replica if that loses no acknowledged write; until then writes stop."
        } else {
            " It leaves the read-only Service and is never promoted."
        };
        Ok(Intent {
            patch: annotate(ANNOTATION_FENCED, json!("true")),
            message: format!("pod {pod_name} of {name} fenced.{what} Undo with: kubectl redispair unfence {name} {pod_name}"),
        })
    } else {
        if !is_fenced {
            return Err(PluginError::NotNow {
                pair: name,
                action: "unfence".into(),
                reason: format!("pod {pod_name} is not fenced"),
            });
        }
        Ok(Intent {
            patch: annotate(ANNOTATION_FENCED, Value::Null),
            message: format!(
                "pod {pod_name} of {name} unfenced: the operator brings it back as replica."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FailoverProgress, FailoverStep};

    fn now() -> Timestamp {
        "2026-11-22T02:00:00.123Z".parse().unwrap()
    }

    fn pair() -> RedisPair {
        serde_yaml::from_str(include_str!("testdata/pair.yaml")).unwrap()
    }

    fn pods() -> Vec<Pod> {
        serde_yaml::from_str(include_str!("testdata/pods.yaml")).unwrap()
    }

    #[test]
    fn rollback_needs_the_name_as_confirmation_and_an_archive() {
        let mut p = pair();
        let name = pair_name(&p);
        let target = RollbackTarget {
            time: Some("2026-11-22T01:00:00Z".into()),
            ..Default::default()
        };
        let err = rollback(&p, target.clone(), None, now()).unwrap_err();
        assert!(
            err.to_string().contains(&format!("pass --confirm {name}")),
            "{err}"
        );
        let err = rollback(&p, target.clone(), Some("other"), now()).unwrap_err();
        assert!(err.to_string().contains("--confirm"), "{err}");
        let err = rollback(&p, target.clone(), Some(&name), now()).unwrap_err();
        assert!(err.to_string().contains("no spec.backup"), "{err}");
        p.spec.backup = Some(
            serde_json::from_value(json!({"destination": {"destinationPath": "s3://b/p"}}))
                .unwrap(),
        );
        let bad = RollbackTarget {
            time: Some("an hour ago".into()),
            ..Default::default()
        };
        let err = rollback(&p, bad, Some(&name), now()).unwrap_err();
        assert!(err.to_string().contains("not an RFC 3339 time"), "{err}");
        let i = rollback(&p, target, Some(&name), now()).unwrap();
        let value = i.patch["metadata"]["annotations"][ANNOTATION_ROLLBACK]
            .as_str()
            .unwrap();
        let request: crate::api::RollbackRequest = serde_json::from_str(value).unwrap();
        assert_eq!(
            request,
            crate::api::RollbackRequest {
                id: "rb-20261122-020000".into(),
                confirm: name.clone(),
                target_time: Some("2026-11-22T01:00:00Z".into()),
                target_offset: None,
                backup: None,
            }
        );
        assert!(i
            .message
            .contains("every write after the target is discarded"));
    }

    #[test]
    fn migrate_cutover_only_while_following() {
        let mut p = pair();
        let err = migrate_cutover(&p, now()).unwrap_err();
        assert!(
            err.to_string().contains("no spec.bootstrap.migrateFrom"),
            "{err}"
        );
        p.spec.bootstrap = Some(crate::api::BootstrapSpec {
            migrate_from: Some(
                serde_json::from_value(json!({"host": "old", "port": 6379})).unwrap(),
            ),
            ..Default::default()
        });
        let err = migrate_cutover(&p, now()).unwrap_err();
        assert!(
            err.to_string().contains("not started the migration"),
            "{err}"
        );
        let mut m = crate::api::MigrationStatus {
            phase: crate::api::MigrationPhase::Following,
            source: "old:6379".into(),
            started_at: "2026-11-22T01:00:00Z".into(),
            cutover_request: None,
            cutover_started_at: None,
            completed_at: None,
            master: Some("cache-a".into()),
            link_up: true,
            source_offset: Some(100),
            master_offset: 90,
            lag_bytes: Some(10),
            source_error: None,
        };
        p.status.as_mut().unwrap().migration = Some(m.clone());
        let intent = migrate_cutover(&p, now()).unwrap();
        assert_eq!(
            intent.patch,
            json!({"metadata": {"annotations": {"redispair.io/migrate-cutover": "2026-11-22T02:00:00Z"}}})
        );
        assert!(intent.message.contains("30 s"), "{}", intent.message);
        let text = migration_text(&p);
        assert!(text.contains("Lag (bytes)    10"), "{text}");
        m.phase = crate::api::MigrationPhase::Completed;
        p.status.as_mut().unwrap().migration = Some(m);
        assert!(migrate_cutover(&p, now()).is_err());
    }

    #[test]
    fn switchover_annotates_the_pair_with_a_request_id() {
        let intent = switchover(&pair(), now()).unwrap();
        assert_eq!(
            intent.patch,
            json!({"metadata": {"annotations": {"redispair.io/switchover": "2026-11-22T02:00:00Z"}}})
        );
        assert!(
            intent
                .message
                .contains("cache-a becomes master, cache-b becomes its replica"),
            "{}",
            intent.message
        );
    }

    #[test]
    fn switchover_refused_during_a_failover_and_without_a_replica() {
        let mut p = pair();
        p.status.as_mut().unwrap().failover = Some(FailoverProgress {
            step: FailoverStep::Promoting,
            from: "cache-b".into(),
            to: "cache-a".into(),
            term: 4,
            reason: "master gone".into(),
            started_at: "2026-11-22T01:59:59Z".into(),
            planned: false,
            writable_after: None,
        });
        let err = switchover(&p, now()).unwrap_err().to_string();
        assert!(
            err.contains("a failover from cache-b to cache-a is in progress"),
            "{err}"
        );
        let mut p = pair();
        p.status.as_mut().unwrap().replica = None;
        assert!(matches!(
            switchover(&p, now()),
            Err(PluginError::NotNow { .. })
        ));
    }

    #[test]
    fn forced_failover_needs_force_and_tells_the_loss() {
        assert_eq!(
            force_failover(&pair(), false, now()),
            Err(PluginError::ForceRequired {
                pair: "cache".into()
            })
        );
        let mut p = pair();
        p.status
            .as_mut()
            .unwrap()
            .replication
            .as_mut()
            .unwrap()
            .in_sync = false;
        let intent = force_failover(&p, true, now()).unwrap();
        assert_eq!(
            intent.patch["metadata"]["annotations"]["redispair.io/force-failover"],
            "2026-11-22T02:00:00Z"
        );
        assert!(
            intent.message.contains("576 bytes behind"),
            "{}",
            intent.message
        );
    }

    #[test]
    fn fence_and_unfence_a_member_pod() {
        let pods = pods();
        let members = vec!["cache-a".to_string(), "cache-b".to_string()];
        let intent = fence(&pair(), &pods[0], &members, true).unwrap();
        assert_eq!(
            intent.patch,
            json!({"metadata": {"annotations": {"redispair.io/fenced": "true"}}})
        );
        assert!(
            intent.message.contains("It is the master"),
            "{}",
            intent.message
        );
        // Unfencing a pod that is not fenced says so.
        assert!(matches!(
            fence(&pair(), &pods[0], &members, false),
            Err(PluginError::NotNow { .. })
        ));
        let mut fenced = pods[1].clone();
        fenced.metadata.annotations =
            Some([("redispair.io/fenced".to_string(), "true".to_string())].into());
        let intent = fence(&pair(), &fenced, &members, false).unwrap();
        assert_eq!(
            intent.patch,
            json!({"metadata": {"annotations": {"redispair.io/fenced": null}}})
        );
    }

    #[test]
    fn fence_refuses_a_pod_of_another_pair() {
        let mut other = pods()[0].clone();
        other.metadata.name = Some("web-0".into());
        other.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        let err = fence(&pair(), &other, &["cache-a".into(), "cache-b".into()], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pod \"web-0\" does not belong to pair \"cache\" (its pods: cache-a, cache-b)"
        );
    }
}
