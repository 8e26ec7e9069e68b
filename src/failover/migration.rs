//! Live migration of a running Redis into a new pair (`spec.bootstrap.migrateFrom`): the
//! decisions taken before the pair has a master of its own. Pure, like the rest of the machine.
//!
//! While it migrates, both engines are replicas of the source (Redis's own replication
//! protocol: an RDB full sync, then the command stream), so both are read-only and a write
//! through the pair's Services gets `READONLY`: nothing can be written to the pair that the
//! source would not have. The engine does not support chained replication (a replica of a
//! replica), so the pair's replica follows the source directly rather than the pair's master;
//! both apply the same stream under the same replication id, which is what makes the end cheap.
//!
//! Cutover, in passes, each recorded before it is acted on:
//! 1. the request (`redispair.io/migrate-cutover`) is recorded as `CuttingOver`;
//! 2. from then on, every pass pauses writes on the source (`CLIENT PAUSE WRITE`, renewed each
//!    pass) *before* reading its offset (the controller does both ahead of this decision), so
//!    the offset read covers every write the source ever acknowledged;
//! 3. once the designated master has applied that offset, the migration is recorded
//!    `Completed` together with a promotion in a new term (the same recorded step as the
//!    initial election), and the ordinary machine finishes it: promotion, write lease, the
//!    read-write Service, and the other engine demoted to the new master. That one continues by
//!    partial resync: the promoted master keeps the source's replication id as its previous id.
//!
//! A cutover that does not complete within [`CUTOVER_TIMEOUT_MS`] is given up (back to
//! `Following`); the source's pause then lapses by itself and it serves writes again.

use super::{Action, Decision, Observation, Phase, Progress, Record, Step};

/// How long a cutover may wait for the pair's master to reach the source's offset.
pub const CUTOVER_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPhase {
    Following,
    CuttingOver,
    Completed,
}

/// What the machine persists about a migration (status `migration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `host:port` of the source.
    pub source: String,
    pub phase: MigrationPhase,
    pub started_ms: u64,
    /// The last cutover request id handled.
    pub cutover_request: Option<String>,
    pub cutover_started_ms: Option<u64>,
    pub completed_ms: Option<u64>,
    /// The member that becomes master at cutover (the read-write Service selects it for
    /// reads meanwhile).
    pub master: Option<String>,
}

/// What was observed of a migration in this pass. None in [`Observation::migration`]: the
/// spec asks for no migration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationObservation {
    /// `host:port` of the source.
    pub source: String,
    /// Members whose engine reports itself a replica of the source: (pod, link up).
    pub following: Vec<(String, bool)>,
    /// The source's replication offset read in this pass (None: unreachable).
    pub source_offset: Option<i64>,
    /// The source's writes were paused in this pass before `source_offset` was read.
    pub source_paused: bool,
    /// `kubectl redispair migrate cutover`: the request id in the annotation, if any.
    pub cutover_requested: Option<String>,
}

impl MigrationObservation {
    fn link_of(&self, pod: &str) -> Option<bool> {
        self.following
            .iter()
            .find(|(p, _)| p == pod)
            .map(|(_, up)| *up)
    }
}

fn event(reason: &'static str, message: String, warning: bool) -> Action {
    Action::Event {
        reason,
        message,
        warning,
    }
}

/// The migration's decision for this pass, or None when no migration is under way (none
/// asked for, or completed: the ordinary machine decides).
pub fn decide(record: &Record, obs: &Observation, now_ms: u64) -> Option<Decision> {
    let mo = obs.migration.as_ref()?;
    let mut m = match &record.migration {
        Some(m) if m.phase == MigrationPhase::Completed => return None,
        Some(m) => m.clone(),
        // A pair that already had a master of its own never starts migrating: following the
        // source would replace its data (validation refuses the spec; this is the backstop).
        None if record.target_master.is_some() || record.term > 0 => return None,
        None => Migration {
            source: mo.source.clone(),
            phase: MigrationPhase::Following,
            started_ms: now_ms,
            cutover_request: None,
            cutover_started_ms: None,
            completed_ms: None,
            master: None,
        },
    };
    let mut d = Decision {
        record: record.clone(),
        actions: Vec::new(),
        phase: Phase::Migrating,
        again_now: false,
        completed: None,
    };
    let offset_of = |pod: &str| {
        obs.members
            .iter()
            .find(|x| x.pod == pod)
            .and_then(|x| x.report.as_ref())
            .map(|r| r.offset)
    };
    // The designated master: kept once chosen while it still follows the source (the
    // read-write Service stays put); else the linked follower that applied the most, the
    // first member on a tie; else the first member that is not fenced.
    let usable = |pod: &str| {
        mo.link_of(pod) == Some(true) && obs.members.iter().any(|x| x.pod == pod && !x.fenced)
    };
    let master = m
        .master
        .clone()
        .filter(|p| usable(p))
        .or_else(|| {
            obs.members
                .iter()
                .filter(|x| usable(&x.pod))
                .fold(None::<&super::Member>, |best, x| match best {
                    Some(b) if offset_of(&x.pod) <= offset_of(&b.pod) => Some(b),
                    _ => Some(x),
                })
                .map(|x| x.pod.clone())
        })
        .or_else(|| m.master.clone())
        .or_else(|| {
            obs.members
                .iter()
                .find(|x| !x.fenced)
                .map(|x| x.pod.clone())
        });
    m.master = master.clone();
    // Every engine that answers and does not follow the source yet is told to. (Its first
    // sync replaces whatever it holds: a new pair holds nothing of its own.) So is one that
    // follows it with its link down: an engine process that restarted follows the source
    // again from its persisted node state, but without the link's runtime settings
    // (`masterauth`, `masteruser`, `master-tls`), which only the operator can give back.
    // Idempotent: the settings are set again, and REPLICAOF of the same master is a no-op.
    for x in &obs.members {
        if x.report.is_some() && !x.fenced && mo.link_of(&x.pod) != Some(true) {
            d.actions.push(Action::FollowSource { pod: x.pod.clone() });
        }
    }
    // Reads through the read-write Service go to the designated master; it is a replica, so
    // writes get READONLY until the cutover.
    if master.is_some() && obs.service_selects != master {
        d.actions.push(Action::SelectMaster(master.clone()));
    }
    let new_request = mo
        .cutover_requested
        .clone()
        .filter(|id| m.cutover_request.as_deref() != Some(id.as_str()));
    match m.phase {
        MigrationPhase::Following => {
            if let Some(id) = new_request {
                d.actions.push(Action::ClearCutoverRequest);
                m.cutover_request = Some(id.clone());
                m.phase = MigrationPhase::CuttingOver;
                m.cutover_started_ms = Some(now_ms);
                d.again_now = true;
                d.actions.push(event(
                    "MigrationCutoverStarted",
                    format!(
                        "cutover from {} requested ({id}): pausing writes on the source until {} has its offset",
                        m.source,
                        master.as_deref().unwrap_or("the pair's master")
                    ),
                    false,
                ));
            }
        }
        MigrationPhase::CuttingOver => {
            if new_request.is_some() {
                // A repeated request while one is in progress: nothing more to do.
                d.actions.push(Action::ClearCutoverRequest);
                m.cutover_request = new_request;
            }
            let started = m.cutover_started_ms.unwrap_or(now_ms);
            let caught_up = match (&master, mo.source_offset) {
                (Some(p), Some(src)) if mo.source_paused && mo.link_of(p).is_some() => {
                    offset_of(p).is_some_and(|o| o >= src)
                }
                _ => false,
            };
            if let (true, Some(pod)) = (caught_up, master.clone()) {
                // Every write the source acknowledged is below the offset read after the
                // pause, and the master has applied it: promote it in a term above every term
                // an engine reports, as the initial election does (the ordinary machine
                // finishes from the recorded step).
                let term = super::term_above_all(record, obs);
                d.record.failover = Some(Progress {
                    step: Step::Promoting,
                    from: String::new(),
                    to: pod.clone(),
                    term,
                    reason: format!("migration cutover from {}", m.source),
                    planned: true,
                    started_ms: now_ms,
                    writable_after_ms: None,
                });
                m.phase = MigrationPhase::Completed;
                m.completed_ms = Some(now_ms);
                // No engine is (re)pointed at the source in the pass that leaves it.
                d.actions
                    .retain(|a| !matches!(a, Action::FollowSource { .. }));
                for x in &obs.members {
                    if x.report.is_some() {
                        d.actions.push(Action::ForgetSource { pod: x.pod.clone() });
                    }
                }
                d.actions.push(Action::Promote {
                    pod: pod.clone(),
                    term,
                });
                d.actions.push(event(
                    "MigrationCompleted",
                    format!(
                        "{pod} holds the source's offset {} and is promoted with term {term} ({} ms after the cutover request); {} stays paused until its pause lapses",
                        mo.source_offset.unwrap_or(0),
                        now_ms.saturating_sub(started),
                        m.source
                    ),
                    false,
                ));
                d.again_now = true;
            } else if now_ms.saturating_sub(started) > CUTOVER_TIMEOUT_MS {
                m.phase = MigrationPhase::Following;
                m.cutover_started_ms = None;
                d.actions.push(event(
                    "MigrationCutoverAborted",
                    format!(
                        "{} did not reach the source's offset within {} ms (source offset {:?}, paused: {}); still following {}, whose pause lapses by itself",
                        master.as_deref().unwrap_or("no member"),
                        CUTOVER_TIMEOUT_MS,
                        mo.source_offset,
                        mo.source_paused,
                        m.source
                    ),
                    true,
                ));
            }
            // Otherwise wait: the master's progress triggers the next pass (the prober), and
            // the controller comes back within a second anyway.
        }
        MigrationPhase::Completed => {}
    }
    d.record.migration = Some(m);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::super::{decide as decide_all, EngineReport, Member, Mode, PodHealth, Policy, Role};
    use super::*;

    const A: &str = "p-a";
    const B: &str = "p-b";
    const SRC: &str = "old:6379";

    fn policy() -> Policy {
        Policy {
            enabled: true,
            detection_ms: 2_000,
            allow_data_loss: false,
            mode: Mode::SemiSync,
            write_lease_ms: 3_000,
            delete_claim_on_node_loss: true,
        }
    }

    fn member(pod: &str, report: Option<EngineReport>) -> Member {
        Member {
            pod: pod.into(),
            pod_health: PodHealth::Ready,
            node_ready: Some(true),
            node_not_ready_ms: None,
            report,
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

    fn report(role: Role, term: i64, offset: i64, following: Option<&str>) -> EngineReport {
        EngineReport {
            role,
            term,
            offset,
            link_up: following.is_some(),
            degraded: false,
            following: following.map(str::to_string),
            detached_no_history: false,
            cannot_persist: false,
        }
    }

    /// Both engines follow the source at the given offsets; the source is at `src`.
    fn obs(a: i64, b: i64, src: Option<i64>, paused: bool, request: Option<&str>) -> Observation {
        Observation {
            members: vec![
                member(A, Some(report(Role::Replica, 0, a, Some("old")))),
                member(B, Some(report(Role::Replica, 0, b, Some("old")))),
            ],
            service_selects: Some(A.into()),
            switchover_requested: false,
            force_failover_requested: None,
            operator_started_ms: 0,
            migration: Some(MigrationObservation {
                source: SRC.into(),
                following: vec![(A.into(), true), (B.into(), true)],
                source_offset: src,
                source_paused: paused,
                cutover_requested: request.map(str::to_string),
            }),
        }
    }

    fn phase(d: &Decision) -> MigrationPhase {
        d.record.migration.as_ref().unwrap().phase
    }

    #[test]
    fn new_pair_follows_the_source_read_only() {
        let mut o = obs(0, 0, Some(10), false, None);
        // Fresh engines report master of term 0, following nothing.
        for m in &mut o.members {
            m.report = Some(report(Role::Master, 0, 0, None));
        }
        o.migration.as_mut().unwrap().following.clear();
        o.service_selects = None;
        let d = decide_all(&policy(), &Record::default(), &o, 1_000);
        assert_eq!(d.phase, Phase::Migrating);
        assert_eq!(phase(&d), MigrationPhase::Following);
        assert!(d.record.target_master.is_none() && d.record.failover.is_none());
        for pod in [A, B] {
            assert!(d
                .actions
                .contains(&Action::FollowSource { pod: pod.into() }));
        }
        assert!(d.actions.contains(&Action::SelectMaster(Some(A.into()))));
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, Action::Promote { .. })));
    }

    #[test]
    fn cutover_is_recorded_before_the_source_is_paused_then_promotes_once_caught_up() {
        let policy = policy();
        // Following: no request, nothing to do.
        let d = decide_all(
            &policy,
            &Record::default(),
            &obs(90, 80, Some(100), false, None),
            1_000,
        );
        assert_eq!(phase(&d), MigrationPhase::Following);
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        let rec = d.record;
        // The request: recorded, annotation cleared, no promotion yet.
        let d = decide_all(
            &policy,
            &rec,
            &obs(90, 80, Some(100), false, Some("r1")),
            2_000,
        );
        assert_eq!(phase(&d), MigrationPhase::CuttingOver);
        assert!(d.actions.contains(&Action::ClearCutoverRequest));
        assert!(d.record.failover.is_none());
        let rec = d.record;
        // Paused, but the master is behind the offset read after the pause: wait.
        let d = decide_all(&policy, &rec, &obs(99, 80, Some(120), true, None), 3_000);
        assert_eq!(phase(&d), MigrationPhase::CuttingOver);
        assert!(d.record.failover.is_none());
        // An offset read without the pause proves nothing.
        let d = decide_all(&policy, &rec, &obs(120, 80, Some(120), false, None), 3_500);
        assert!(d.record.failover.is_none());
        // Caught up with the paused source: completed, promotion recorded in term 1.
        let d = decide_all(&policy, &rec, &obs(120, 100, Some(120), true, None), 4_000);
        assert_eq!(phase(&d), MigrationPhase::Completed);
        let f = d.record.failover.clone().unwrap();
        assert_eq!(
            (f.step, f.to.as_str(), f.term, f.from.as_str()),
            (Step::Promoting, A, 1, "")
        );
        assert!(d.actions.contains(&Action::Promote {
            pod: A.into(),
            term: 1
        }));
        for pod in [A, B] {
            assert!(d
                .actions
                .contains(&Action::ForgetSource { pod: pod.into() }));
        }
        // From here the ordinary machine: A promoted → lease and Service, then B demoted.
        let rec = d.record;
        let mut o = obs(120, 120, Some(120), true, None);
        o.members[0].report = Some(report(Role::Master, 1, 120, None));
        let d = decide_all(&policy, &rec, &o, 4_100);
        assert_ne!(d.phase, Phase::Migrating);
        assert_eq!(d.record.target_master.as_deref(), Some(A));
        assert!(d.actions.contains(&Action::GrantLease { pod: A.into() }));
        let mut rec = d.record;
        let demote = Action::Demote {
            pod: B.into(),
            master: A.into(),
            term: 1,
        };
        let mut demoted = false;
        for now in [4_200, 4_300, 4_400] {
            let d = decide_all(&policy, &rec, &o, now);
            demoted |= d.actions.contains(&demote);
            rec = d.record;
        }
        assert!(demoted, "B (still following the source) is demoted to A");
        assert!(rec.failover.is_none());
    }

    #[test]
    fn an_engine_following_the_source_with_its_link_down_is_told_again() {
        // B restarted: it follows the source again from its node state, but without the
        // link's runtime settings (masterauth, master-tls): its link stays down until the
        // operator sets them again.
        let mut o = obs(90, 0, Some(100), false, None);
        o.migration.as_mut().unwrap().following = vec![(A.into(), true), (B.into(), false)];
        let d = decide_all(&policy(), &Record::default(), &o, 1_000);
        assert_eq!(
            d.actions
                .iter()
                .filter(|a| matches!(a, Action::FollowSource { .. }))
                .collect::<Vec<_>>(),
            [&Action::FollowSource { pod: B.into() }]
        );
        // Both links up: nothing.
        let d = decide_all(
            &policy(),
            &Record::default(),
            &obs(90, 80, Some(100), false, None),
            1_000,
        );
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        // The pass that completes the cutover points nobody at the source.
        let rec = decide_all(
            &policy(),
            &Record::default(),
            &obs(90, 80, Some(100), false, Some("r1")),
            2_000,
        )
        .record;
        let mut o = obs(120, 100, Some(120), true, None);
        o.migration.as_mut().unwrap().following = vec![(A.into(), true), (B.into(), false)];
        let d = decide_all(&policy(), &rec, &o, 3_000);
        assert_eq!(phase(&d), MigrationPhase::Completed);
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, Action::FollowSource { .. })));
        assert!(d.actions.contains(&Action::ForgetSource { pod: B.into() }));
    }

    #[test]
    fn cutover_gives_up_after_its_timeout() {
        let policy = policy();
        let d = decide_all(
            &policy,
            &Record::default(),
            &obs(0, 0, None, false, Some("r1")),
            1_000,
        );
        let rec = d.record;
        let d = decide_all(
            &policy,
            &rec,
            &obs(5, 5, None, false, None),
            1_000 + CUTOVER_TIMEOUT_MS + 1,
        );
        assert_eq!(phase(&d), MigrationPhase::Following);
        assert!(d.actions.iter().any(|a| matches!(
            a,
            Action::Event {
                reason: "MigrationCutoverAborted",
                ..
            }
        )));
        // The same request id is not acted on again.
        let d = decide_all(
            &policy,
            &d.record,
            &obs(5, 5, Some(5), false, Some("r1")),
            70_000,
        );
        assert_eq!(phase(&d), MigrationPhase::Following);
    }

    #[test]
    fn a_pair_with_a_master_of_its_own_never_migrates() {
        let rec = Record {
            term: 2,
            target_master: Some(A.into()),
            ..Record::default()
        };
        assert!(decide(&rec, &obs(1, 1, Some(1), false, None), 1_000).is_none());
    }

    #[test]
    fn the_most_advanced_linked_follower_is_the_designated_master() {
        let mut o = obs(50, 70, Some(70), false, None);
        o.migration.as_mut().unwrap().following[0].1 = false;
        let d = decide(&Record::default(), &o, 1_000).unwrap();
        assert_eq!(d.record.migration.unwrap().master.as_deref(), Some(B));
    }
}
