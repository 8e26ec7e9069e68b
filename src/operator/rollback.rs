//! Rollback of a running pair to a point of its own archive (docs/backup.md, "Rollback"): the
//! decisions. Pure: the controller carries them out (status first, then the pod deletions).
//!
//! The request is an annotation, `redispair.io/rollback`, holding a [`RollbackRequest`] with
//! the pair's name repeated as confirmation: it discards every write after the target, on
//! both copies. It is a one-off action, not a desired state (like a forced failover), hence an
//! annotation with an id rather than a spec field: re-applying a manifest must never roll a
//! pair back again. The phases, each recorded in `status.rollback` before it is acted on:
//!
//! 1. **Fencing.** Clients are cut off (the read-write Service selects nothing, the master's
//!    write lease is no longer renewed, so it refuses writes within the lease) and both pods
//!    are deleted (by uid: their replacements are never touched). Nothing is elected or failed
//!    over meanwhile: the failover machine is not consulted.
//! 2. **Restoring.** The failover record is reset to "no master decided" (the term is kept)
//!    and the pair re-bootstraps from its own archive exactly as `spec.bootstrap.recovery`
//!    does: the first pod restores its data directory (`restore --once --marker
//!    rollback-<id>.json`, which wipes what the volume held) before its engine starts, the
//!    other pod is left out of the election, and the first one is elected in a term above
//!    every term seen. Its archiver continues the archive in that term from the restored
//!    offset, superseding the old term's later chunks (the rule for an async failover's lost
//!    tail: docs/backup.md, "One timeline"). The other pod, whose history the new master
//!    lacks, is ordered to full-sync by the repair rules.
//! 3. **Completed** once the pair was Ready in the new term, or **Failed** when the request
//!    was refused (nothing done).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::decide::format_time_ms;
use crate::api::constants::ANNOTATION_ROLLBACK;
use crate::api::{RedisPair, RollbackPhase, RollbackRequest, RollbackStatus};
use crate::failover::Record;

/// The restore the first pod runs in a rollback's Restoring phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRestore {
    /// `restore --once --marker`: one per request, so a completed bootstrap restore (or an
    /// earlier rollback) does not make this one a no-op, and a pod restart does not repeat it.
    pub marker: String,
    pub backup: Option<String>,
    pub target_time: Option<String>,
    pub target_offset: Option<i64>,
}

/// What this pass does about rollbacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackPlan {
    /// `status.rollback` after this pass.
    pub status: Option<RollbackStatus>,
    /// Fencing: no election or failover, the read-write Service selects nothing, no lease.
    pub fence_all: bool,
    /// The failover record is reset before the machine decides (entering Restoring).
    pub reset_record: bool,
    /// Restoring: the first pod's restore step.
    pub restore: Option<RollbackRestore>,
    /// Pods to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    /// (reason, message, warning).
    pub event: Option<(&'static str, String, bool)>,
}

impl RollbackPlan {
    /// The status must be written before acting (a phase started or moved on).
    pub fn changed(&self, previous: Option<&RollbackStatus>) -> bool {
        self.status.as_ref() != previous
    }
}

/// A request id names the restore's marker file: a short plain name.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Check a request against the pair; Err: why it is refused.
fn check(pair: &RedisPair, r: &RollbackRequest) -> Result<(), String> {
    let name = pair.name_any();
    if !valid_id(&r.id) {
        return Err(format!(
            "id {:?}: 1 to 63 characters of [A-Za-z0-9._-]",
            r.id
        ));
    }
    if r.confirm != name {
        return Err(format!(
            "confirm is {:?}: it must repeat the pair's name ({name}), since a rollback discards every write after its target",
            r.confirm
        ));
    }
    if pair.spec.backup.is_none() {
        return Err("the pair has no spec.backup: it has no archive to roll back to".into());
    }
    if r.target_time.is_some() && r.target_offset.is_some() {
        return Err("give targetTime or targetOffset, not both".into());
    }
    if let Some(t) = &r.target_time {
        t.parse::<jiff::Timestamp>()
            .map_err(|e| format!("targetTime {t:?} is not an RFC 3339 time: {e}"))?;
    }
    if r.target_offset.is_some_and(|o| i64::try_from(o).is_err()) {
        return Err("targetOffset is too large".into());
    }
    Ok(())
}

/// The pass's rollback decisions, before the failover machine runs. `previous`: the newest
/// status known; `record`: the failover record; `pods`: the pods observed (by name);
/// `now_ms`: the wall clock.
pub fn plan(
    pair: &RedisPair,
    previous: Option<&RollbackStatus>,
    record: &Record,
    pods: &BTreeMap<String, Pod>,
    now_ms: u64,
) -> RollbackPlan {
    let mut out = RollbackPlan {
        status: previous.cloned(),
        ..RollbackPlan::default()
    };
    let uid_of = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    match previous.map(|p| p.phase) {
        Some(RollbackPhase::Fencing) => {
            let Some(s) = out.status.as_mut() else {
                return out;
            };
            out.delete = pods
                .iter()
                .filter(|(_, p)| s.old_pod_uids.contains(&uid_of(p)))
                .map(|(n, p)| (n.clone(), uid_of(p)))
                .collect();
            if out.delete.is_empty() {
                // Both old pods are gone: nothing can accept a write of the old history any
                // more. Re-bootstrap from the archive.
                s.phase = RollbackPhase::Restoring;
                s.message = "the first pod restores from the archive and is elected in a new term; the other full-syncs from it".into();
                out.reset_record = true;
                out.restore = Some(restore_of(s));
            } else {
                out.fence_all = true;
            }
            return out;
        }
        Some(RollbackPhase::Restoring) => {
            if let Some(s) = &out.status {
                out.restore = Some(restore_of(s));
            }
            return out;
        }
        _ => {}
    }
    let Some(raw) = pair.annotations().get(ANNOTATION_ROLLBACK) else {
        return out;
    };
    let request: RollbackRequest = match serde_json::from_str(raw) {
        Ok(r) => r,
        Err(e) => {
            let message = format!(
                "the {ANNOTATION_ROLLBACK} annotation is not a rollback request ({e}); expected {{\"id\":\"...\",\"confirm\":\"{}\",\"targetTime\":\"...\"}}",
                pair.name_any()
            );
            // Reported once per distinct problem (the annotation carries no usable id).
            if previous.is_none_or(|p| p.phase != RollbackPhase::Failed || p.message != message) {
                out.event = Some(("RollbackRefused", message.clone(), true));
                out.status = Some(RollbackStatus {
                    id: String::new(),
                    phase: RollbackPhase::Failed,
                    target_time: None,
                    target_offset: None,
                    backup: None,
                    message,
                    from_term: record.term,
                    old_pod_uids: Vec::new(),
                    started_at: Some(format_time_ms(now_ms)),
                    finished_at: Some(format_time_ms(now_ms)),
                });
            }
            return out;
        }
    };
    if previous.is_some_and(|p| p.id == request.id) {
        // Handled already (carried out or refused): a request acts once.
        return out;
    }
    let mut status = RollbackStatus {
        id: request.id.clone(),
        phase: RollbackPhase::Fencing,
        target_time: request.target_time.clone(),
        target_offset: request.target_offset.and_then(|o| i64::try_from(o).ok()),
        backup: request.backup.clone(),
        message: String::new(),
        from_term: record.term,
        old_pod_uids: pods.values().map(uid_of).collect(),
        started_at: Some(format_time_ms(now_ms)),
        finished_at: None,
    };
    if let Err(why) = check(pair, &request) {
        status.phase = RollbackPhase::Failed;
        status.message = format!("rollback {} refused: {why}", request.id);
        status.old_pod_uids.clear();
        status.finished_at = status.started_at.clone();
        out.event = Some(("RollbackRefused", status.message.clone(), true));
        out.status = Some(status);
        return out;
    }
    if record.failover.is_some() || record.migration.is_some() || record.repair.is_some() {
        // Not in the middle of another transition: the request waits (status unchanged) and
        // starts once it is over.
        return out;
    }
    status.message = format!(
        "discarding every write after {}: clients cut off, both pods deleted",
        describe(&status)
    );
    out.event = Some(("RollbackStarted", status.message.clone(), true));
    out.delete = pods
        .iter()
        .map(|(n, p)| (n.clone(), uid_of(p)))
        .filter(|(_, uid)| !uid.is_empty())
        .collect();
    out.fence_all = true;
    out.status = Some(status);
    out
}

/// After the failover machine decided: a Restoring rollback is Completed once the pair was
/// Ready in a term above the one it started in, with the restored (first) pod as master.
pub fn complete(plan: &mut RollbackPlan, record: &Record, first_pod: &str, now_ms: u64) {
    let Some(s) = plan.status.as_mut() else {
        return;
    };
    if s.phase != RollbackPhase::Restoring {
        return;
    }
    let done = record.term > s.from_term
        && record.target_master.as_deref() == Some(first_pod)
        && record.ready_in_term();
    if done {
        s.phase = RollbackPhase::Completed;
        s.finished_at = Some(format_time_ms(now_ms));
        s.message = format!(
            "{first_pod} restored to {} is master in term {}; the other pod synced from it",
            describe(s),
            record.term
        );
        plan.event = Some(("RollbackCompleted", s.message.clone(), false));
        plan.restore = None;
    }
}

/// The target in words.
fn describe(s: &RollbackStatus) -> String {
    let point = match (&s.target_time, s.target_offset) {
        (Some(t), _) => format!("time {t}"),
        (None, Some(o)) => format!("offset {o}"),
        (None, None) => "the archive's end".to_string(),
    };
    match &s.backup {
        Some(b) => format!("{point} (from backup {b})"),
        None => point,
    }
}

fn restore_of(s: &RollbackStatus) -> RollbackRestore {
    RollbackRestore {
        marker: format!("redispair-rollback-{}.json", s.id),
        backup: s.backup.clone(),
        target_time: s.target_time.clone(),
        target_offset: s.target_offset,
    }
}

/// The record a Restoring rollback starts from: no master decided, nothing in progress, the
/// term kept (the restored pod is elected above it and every term an engine reports).
pub fn reset_record(record: &Record) -> Record {
    Record {
        term: record.term,
        force_failover_handled: record.force_failover_handled.clone(),
        migration: record.migration.clone(),
        ..Record::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_pair;

    fn pair_with(annotation: Option<&str>, backup: bool) -> RedisPair {
        let mut p = contract_pair();
        if backup {
            p.spec.backup = Some(
                serde_json::from_value(serde_json::json!({"destination": {
                    "destinationPath": "s3://b/shop/cache"}}))
                .unwrap(),
            );
        }
        if let Some(a) = annotation {
            p.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANNOTATION_ROLLBACK.into(), a.into());
        }
        p
    }

    fn pods(list: &[(&str, &str)]) -> BTreeMap<String, Pod> {
        list.iter()
            .map(|(n, uid)| {
                let mut p = Pod::default();
                p.metadata.name = Some(n.to_string());
                p.metadata.uid = Some(uid.to_string());
                (n.to_string(), p)
            })
            .collect()
    }

    fn record(term: i64) -> Record {
        Record {
            term,
            target_master: Some("cache-b".into()),
            ready_term: Some(term),
            ..Record::default()
        }
    }

    const GOOD: &str = r#"{"id":"r1","confirm":"cache","targetTime":"2026-12-06T10:00:00Z"}"#;

    #[test]
    fn a_confirmed_request_fences_deletes_both_pods_then_restores_and_completes() {
        let pair = pair_with(Some(GOOD), true);
        let both = pods(&[("cache-a", "u-a"), ("cache-b", "u-b")]);
        let p = plan(&pair, None, &record(3), &both, 1_000);
        let s = p.status.clone().unwrap();
        assert_eq!(s.phase, RollbackPhase::Fencing);
        assert_eq!(s.from_term, 3);
        assert_eq!(s.old_pod_uids, ["u-a", "u-b"]);
        assert!(p.fence_all && !p.reset_record && p.restore.is_none());
        assert_eq!(
            p.delete,
            [
                ("cache-a".into(), "u-a".into()),
                ("cache-b".into(), "u-b".into())
            ]
        );
        assert_eq!(p.event.as_ref().unwrap().0, "RollbackStarted");
        assert!(p.changed(None));

        // Next pass: one old pod still there (terminating), one replaced already.
        let mixed = pods(&[("cache-a", "u-a"), ("cache-b", "new-b")]);
        let p2 = plan(&pair, Some(&s), &record(3), &mixed, 2_000);
        assert!(p2.fence_all && !p2.changed(Some(&s)));
        assert_eq!(p2.delete, [("cache-a".into(), "u-a".into())]);

        // Both gone: Restoring, the record reset, the first pod's restore with its marker.
        let fresh = pods(&[("cache-a", "new-a"), ("cache-b", "new-b")]);
        let p3 = plan(&pair, Some(&s), &record(3), &fresh, 3_000);
        let s3 = p3.status.clone().unwrap();
        assert_eq!(s3.phase, RollbackPhase::Restoring);
        assert!(p3.reset_record && !p3.fence_all && p3.delete.is_empty());
        assert_eq!(
            p3.restore,
            Some(RollbackRestore {
                marker: "redispair-rollback-r1.json".into(),
                backup: None,
                target_time: Some("2026-12-06T10:00:00Z".into()),
                target_offset: None,
            })
        );
        let reset = reset_record(&record(3));
        assert_eq!((reset.term, reset.target_master.as_deref()), (3, None));

        // Completed only once the first pod is master of a newer term and the pair Ready.
        let mut p4 = plan(&pair, Some(&s3), &reset, &fresh, 4_000);
        let mut elected = Record {
            term: 4,
            target_master: Some("cache-a".into()),
            ..Record::default()
        };
        complete(&mut p4, &elected, "cache-a", 5_000);
        assert_eq!(p4.status.as_ref().unwrap().phase, RollbackPhase::Restoring);
        elected.ready_term = Some(4);
        complete(&mut p4, &elected, "cache-a", 5_000);
        let s4 = p4.status.clone().unwrap();
        assert_eq!(s4.phase, RollbackPhase::Completed);
        assert_eq!(p4.event.unwrap().0, "RollbackCompleted");
        assert!(p4.restore.is_none());
        // The annotation stays: the same id never acts again.
        let p5 = plan(&pair, Some(&s4), &elected, &fresh, 6_000);
        assert!(!p5.changed(Some(&s4)) && p5.delete.is_empty() && !p5.fence_all);
    }

    #[test]
    fn requests_are_refused_with_a_reason_and_nothing_done() {
        let both = pods(&[("cache-a", "u-a"), ("cache-b", "u-b")]);
        for (annotation, backup, why) in [
            (
                r#"{"id":"r1","confirm":"cach","targetTime":"2026-12-06T10:00:00Z"}"#,
                true,
                "it must repeat the pair's name (cache)",
            ),
            (GOOD, false, "no spec.backup"),
            (
                r#"{"id":"r1","confirm":"cache","targetTime":"yesterday"}"#,
                true,
                "not an RFC 3339 time",
            ),
            (
                r#"{"id":"r1","confirm":"cache","targetTime":"2026-12-06T10:00:00Z","targetOffset":5}"#,
                true,
                "not both",
            ),
            (r#"{"id":"../x","confirm":"cache"}"#, true, "id \"../x\""),
            ("rollback please", true, "is not a rollback request"),
            (
                r#"{"id":"r1","confirm":"cache","when":"now"}"#,
                true,
                "unknown field",
            ),
        ] {
            let pair = pair_with(Some(annotation), backup);
            let p = plan(&pair, None, &record(3), &both, 1_000);
            let s = p.status.clone().unwrap();
            assert_eq!(s.phase, RollbackPhase::Failed, "{annotation}");
            assert!(s.message.contains(why), "{annotation}: {}", s.message);
            assert!(p.delete.is_empty() && !p.fence_all && !p.reset_record);
            let (reason, _, warning) = p.event.clone().unwrap();
            assert_eq!((reason, warning), ("RollbackRefused", true));
            // Refused once: the next pass reports nothing new.
            let again = plan(&pair, Some(&s), &record(3), &both, 2_000);
            assert!(
                again.event.is_none() && !again.changed(Some(&s)),
                "{annotation}"
            );
        }
        // A failover in progress: the request waits, nothing recorded yet.
        let pair = pair_with(Some(GOOD), true);
        let mut busy = record(3);
        busy.failover = Some(crate::failover::Progress {
            step: crate::failover::Step::Promoting,
            from: "cache-b".into(),
            to: "cache-a".into(),
            term: 4,
            reason: "test".into(),
            planned: false,
            started_ms: 0,
            writable_after_ms: None,
        });
        let p = plan(&pair, None, &busy, &both, 1_000);
        assert!(p.status.is_none() && p.delete.is_empty() && !p.fence_all);
    }
}
