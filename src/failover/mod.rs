//! The failover decision for one pair: a pure state machine. Inputs are what the operator
//! observed (pods, nodes, the engines' own reports), the record persisted in the RedisPair's
//! status, the policy, and the time; the output is the next record and the actions to take.
//! No kube, no tokio, no redis, no clock: time is a parameter (milliseconds of a monotonic
//! clock), so every scenario is replayable in tests.
//!
//! Safety does not come from time. In semi-sync mode the master acknowledges a write only after
//! the replica acknowledged it, and the master never stops waiting for the replica on its own
//! (`semi-sync-degrade operator`): only this machine authorises that, for one term, and records
//! it first. So as long as no degrade was authorised in the current term, the replica holds every
//! acknowledged write and promoting it loses nothing, whatever the clocks say. Once a degrade was
//! authorised, automatic failover stays off until the replica has caught up (unless the user
//! allowed data loss). Time only decides how fast a dead master is detected.
//!
//! Intent before action: every decision that changes roles is first written to status (the
//! [`Record`]), then carried out. Each step of a failover is idempotent and re-checked on the
//! next pass, so an operator restarted at any point resumes where it stopped.

#[cfg(test)]
mod tests;

/// The replication mode of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Async,
    SemiSync,
    Sync,
}

/// The user's failover settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    /// How long probes must fail (with the replica's link down too) before the master counts
    /// as failed.
    pub detection_ms: u64,
    pub allow_data_loss: bool,
    pub mode: Mode,
}

/// The state of a pod as Kubernetes reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodHealth {
    /// No such pod (deleted, or never created).
    Missing,
    /// Being deleted.
    Terminating,
    /// Phase Failed, or its container keeps crashing.
    Failed,
    /// Running but not Ready.
    NotReady,
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// What an engine said about itself when the operator probed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineReport {
    pub role: Role,
    pub term: i64,
    /// Replication offset (master: written; replica: applied).
    pub offset: i64,
    /// Replica: its link to the master is up.
    pub link_up: bool,
    /// Master: it is not waiting for its replica because a degrade was authorised (or `auto`
    /// degraded it); the replica may lack acknowledged writes.
    pub degraded: bool,
    /// Replica: the master it follows (pod name), when known.
    pub following: Option<String>,
}

/// Everything observed about one member of the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pod: String,
    pub pod_health: PodHealth,
    /// The pod's node is Ready (None: not scheduled or unknown node).
    pub node_ready: Option<bool>,
    /// The engine's answer to the last probe; None when the probe failed.
    pub report: Option<EngineReport>,
    /// Since when (monotonic ms) probes have been failing without interruption.
    pub probe_failing_since_ms: Option<u64>,
    /// A user fenced this pod (`kubectl redispair fence`): never master, out of Services.
    pub fenced: bool,
}

/// The whole pair as observed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub members: Vec<Member>,
    /// The pod the read-write Service selects now (None: selects nothing).
    pub service_selects: Option<String>,
    /// A planned switchover was requested and not yet carried out.
    pub switchover_requested: bool,
}

/// A step of a failover or switchover, recorded before it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Old master out of the read-write Service and fenced (best effort).
    Fencing,
    /// Planned switchover: writes on the old master paused until the replica caught up.
    Pausing,
    /// The new master is promoted with the new term.
    Promoting,
    /// The read-write Service is moved to the new master.
    Switching,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub step: Step,
    pub from: String,
    pub to: String,
    pub term: i64,
    pub reason: String,
    pub planned: bool,
    pub started_ms: u64,
}

/// What the machine persists in the RedisPair status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub term: i64,
    /// The master the operator decided on.
    pub target_master: Option<String>,
    /// A degrade to async was authorised for this term.
    pub degrade_authorized_term: Option<i64>,
    pub failover: Option<Progress>,
}

impl Record {
    fn degraded_in_current_term(&self) -> bool {
        self.degrade_authorized_term == Some(self.term)
    }
}

/// Something to do, after the record was persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Point the read-write Service at this pod (None: at nothing).
    SelectMaster(Option<String>),
    /// Best-effort fencing of an old master: demote it, cut its clients (its lease lapses).
    Fence { pod: String },
    /// Promote with a new term.
    Promote { pod: String, term: i64 },
    /// Make `pod` a replica of `master` at `term` (partial resync when possible).
    Demote {
        pod: String,
        master: String,
        term: i64,
    },
    /// Planned switchover: stop accepting writes on the master.
    PauseWrites { pod: String },
    /// Let the master stop waiting for its replica in this term.
    AuthorizeDegrade { pod: String, term: i64 },
    /// The switchover request was handled (clear the annotation).
    ClearSwitchoverRequest,
    /// A Kubernetes Event.
    Event {
        reason: &'static str,
        message: String,
        warning: bool,
    },
}

/// The pair's phase as shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Creating,
    Ready,
    Degraded,
    FailingOver,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "Creating",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::FailingOver => "FailingOver",
            Phase::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Persist this before taking any action (when it differs from the input record).
    pub record: Record,
    pub actions: Vec<Action>,
    pub phase: Phase,
    /// Run again without waiting for an event (a failover advances pass by pass).
    pub again_now: bool,
    /// A failover completed in this pass: (from, to, reason, duration ms).
    pub completed: Option<(String, String, String, u64)>,
}

/// Why a member counts as failed, or None if it is healthy enough.
pub fn failure_reason(
    m: &Member,
    other: Option<&Member>,
    policy: &Policy,
    record: &Record,
    now_ms: u64,
) -> Option<String> {
    match m.pod_health {
        PodHealth::Missing => return Some(format!("pod {} is gone", m.pod)),
        PodHealth::Terminating => return Some(format!("pod {} is terminating", m.pod)),
        PodHealth::Failed => return Some(format!("pod {} failed", m.pod)),
        PodHealth::NotReady => return Some(format!("pod {} is not ready", m.pod)),
        PodHealth::Ready => {}
    }
    if m.node_ready == Some(false) {
        return Some(format!("node of pod {} is NotReady", m.pod));
    }
    if let Some(r) = &m.report {
        if r.role == Role::Master && r.term < record.term {
            // A master with an older term than ours restarted without its data (or is a stale
            // copy): it must not stay master.
            return Some(format!(
                "pod {} reports term {} below the pair's term {}",
                m.pod, r.term, record.term
            ));
        }
        return None;
    }
    // Probes fail. A hung or cut-off master only counts as failed when its replica agrees
    // (its link is down too) and the detection window has passed: the operator alone might be
    // the one cut off.
    let since = m.probe_failing_since_ms?;
    let window_passed = now_ms.saturating_sub(since) >= policy.detection_ms;
    let peer_agrees = match other.and_then(|o| o.report.as_ref()) {
        Some(r) => !r.link_up,
        // The peer cannot say either: only the window decides.
        None => true,
    };
    (window_passed && peer_agrees).then(|| format!("probes of pod {} failing", m.pod))
}

fn member<'a>(obs: &'a Observation, pod: &str) -> Option<&'a Member> {
    obs.members.iter().find(|m| m.pod == pod)
}

fn event(reason: &'static str, message: String, warning: bool) -> Action {
    Action::Event {
        reason,
        message,
        warning,
    }
}

/// Decide the next step for the pair.
pub fn decide(policy: &Policy, record: &Record, obs: &Observation, now_ms: u64) -> Decision {
    let mut d = Decision {
        record: record.clone(),
        actions: Vec::new(),
        phase: Phase::Ready,
        again_now: false,
        completed: None,
    };
    if let Some(p) = record.failover.clone() {
        advance_failover(&mut d, policy, p, obs, now_ms);
        return d;
    }
    // First pass: choose the initial master (the first member that reports master with the
    // highest term, else the first member).
    let Some(master_pod) = record.target_master.clone() else {
        // Prefer a member already master, then the highest term and offset; on a tie the first
        // member (pods are listed by name), so the choice is stable across passes.
        let rank = |m: &Member| {
            m.report
                .as_ref()
                .map(|r| (r.role == Role::Master, r.term, r.offset))
        };
        let candidate = obs
            .members
            .iter()
            .filter(|m| !m.fenced && m.report.is_some())
            .fold(None::<&Member>, |best, m| match best {
                Some(b) if rank(m) <= rank(b) => Some(b),
                _ => Some(m),
            })
            .map(|m| m.pod.clone());
        if let Some(pod) = candidate {
            {
                // The first master is promoted like any other, into a term above every term
                // an engine reports: from then on, a master that restarts with an empty data
                // directory reports a lower term and counts as failed (the Dragonfly
                // wipe-the-replica case), which a term-0 master could not be told apart from.
                let reported = obs
                    .members
                    .iter()
                    .filter_map(|m| m.report.as_ref().map(|r| r.term))
                    .max()
                    .unwrap_or(0);
                let term = record.term.max(reported) + 1;
                d.record.failover = Some(Progress {
                    step: Step::Promoting,
                    from: String::new(),
                    to: pod.clone(),
                    term,
                    reason: "initial election".to_string(),
                    planned: true,
                    started_ms: now_ms,
                });
                d.actions.push(Action::Promote {
                    pod: pod.clone(),
                    term,
                });
                d.again_now = true;
            }
        }
        d.phase = Phase::Creating;
        return d;
    };
    let master = member(obs, &master_pod);
    let replica = obs.members.iter().find(|m| m.pod != master_pod);
    let master_failure = match master {
        Some(m) => failure_reason(m, replica, policy, record, now_ms),
        None => Some(format!("pod {master_pod} is gone")),
    };
    let master_failure = master_failure.or_else(|| {
        master
            .filter(|m| m.fenced)
            .map(|m| format!("pod {} was fenced by a user", m.pod))
    });
    let replica_failure = replica.and_then(|r| failure_reason(r, master, policy, record, now_ms));
    // Only a replica that finished syncing from the master of the current term can take over:
    // a fresh replacement still in its first sync reports an older term.
    let replica_usable = replica.is_some_and(|r| {
        replica_failure.is_none()
            && !r.fenced
            && r.report
                .as_ref()
                .is_some_and(|rep| rep.role == Role::Replica && rep.term >= record.term)
    });

    if let Some(reason) = master_failure {
        d.phase = Phase::Failed;
        if !policy.enabled {
            d.actions.push(event(
                "FailoverDisabled",
                format!("master failed ({reason}) and failover is disabled"),
                true,
            ));
            return d;
        }
        let Some(r) = replica.filter(|_| replica_usable) else {
            d.actions.push(event(
                "FailoverImpossible",
                format!("master failed ({reason}) and the replica is not usable"),
                true,
            ));
            return d;
        };
        let may_lack_writes = policy.mode != Mode::Async && record.degraded_in_current_term();
        if may_lack_writes && !policy.allow_data_loss {
            d.actions.push(event(
                "FailoverBlocked",
                format!(
                    "master failed ({reason}) but the replica may lack acknowledged writes (degraded in term {}); set failover.allowDataLoss to fail over anyway",
                    record.term
                ),
                true,
            ));
            return d;
        }
        let term = record.term + 1;
        d.record.failover = Some(Progress {
            step: Step::Fencing,
            from: master_pod.clone(),
            to: r.pod.clone(),
            term,
            reason: reason.clone(),
            planned: false,
            started_ms: now_ms,
        });
        d.phase = Phase::FailingOver;
        d.actions.push(event(
            "FailoverStarted",
            format!(
                "master {master_pod} failed ({reason}); promoting {} with term {term}",
                r.pod
            ),
            true,
        ));
        d.actions.push(Action::SelectMaster(None));
        d.actions.push(Action::Fence { pod: master_pod });
        d.again_now = true;
        return d;
    }

    // The master is healthy. Keep the Service on it.
    if obs.service_selects.as_deref() != Some(master_pod.as_str()) {
        d.actions
            .push(Action::SelectMaster(Some(master_pod.clone())));
    }
    // Another member that claims to be master is demoted (it has an older term, or it would
    // be the target): never two masters.
    for m in obs.members.iter().filter(|m| m.pod != master_pod) {
        let needs_demote = match &m.report {
            Some(rep) => {
                rep.role == Role::Master
                    || rep.term < record.term
                    || rep.following.as_deref().is_some_and(|f| f != master_pod)
            }
            None => false,
        };
        if needs_demote && !m.fenced {
            d.actions.push(Action::Demote {
                pod: m.pod.clone(),
                master: master_pod.clone(),
                term: record.term,
            });
        }
    }

    // Replica failed while the master waits for it: authorise the degrade for this term,
    // recorded first. Automatic failover is off from here until the replica caught up.
    if let Some(reason) = &replica_failure {
        d.phase = Phase::Degraded;
        if policy.mode == Mode::SemiSync && !record.degraded_in_current_term() {
            d.record.degrade_authorized_term = Some(record.term);
            d.actions.push(event(
                "DegradeAuthorized",
                format!("replica failed ({reason}): master {master_pod} may acknowledge writes without it in term {}", record.term),
                true,
            ));
            d.actions.push(Action::AuthorizeDegrade {
                pod: master_pod.clone(),
                term: record.term,
            });
        } else if policy.mode == Mode::SemiSync {
            // Re-send: the authorisation is idempotent and the master may have restarted.
            d.actions.push(Action::AuthorizeDegrade {
                pod: master_pod.clone(),
                term: record.term,
            });
        }
        return d;
    }
    if replica.is_none() {
        d.phase = Phase::Degraded;
        return d;
    }
    // Replica healthy. If a degrade was authorised, clear it once the master reports it is
    // back in semi-sync (the replica caught up).
    let master_degraded = master
        .and_then(|m| m.report.as_ref())
        .is_some_and(|r| r.degraded);
    if record.degraded_in_current_term() {
        if master_degraded {
            d.phase = Phase::Degraded;
        } else {
            d.record.degrade_authorized_term = None;
            d.actions.push(event(
                "InSync",
                "replica caught up; semi-sync restored".to_string(),
                false,
            ));
        }
    } else if master_degraded && policy.mode != Mode::Async {
        d.phase = Phase::Degraded;
    }
    let replicating = replica
        .and_then(|r| r.report.as_ref())
        .is_some_and(|r| r.role == Role::Replica && r.link_up);
    if !replicating && d.phase == Phase::Ready {
        d.phase = Phase::Degraded;
    }
    // Planned switchover: only with a replica that is replicating and in sync.
    if obs.switchover_requested {
        let r = replica.expect("checked above");
        if replicating && !record.degraded_in_current_term() && !master_degraded {
            let term = record.term + 1;
            d.record.failover = Some(Progress {
                step: Step::Pausing,
                from: master_pod.clone(),
                to: r.pod.clone(),
                term,
                reason: "switchover requested".to_string(),
                planned: true,
                started_ms: now_ms,
            });
            d.phase = Phase::FailingOver;
            d.actions.push(event(
                "SwitchoverStarted",
                format!("switching master from {master_pod} to {}", r.pod),
                false,
            ));
            d.actions.push(Action::PauseWrites {
                pod: master_pod.clone(),
            });
            d.actions.push(Action::ClearSwitchoverRequest);
            d.again_now = true;
        } else {
            d.actions.push(event(
                "SwitchoverWaiting",
                "switchover waits for the replica to be in sync".to_string(),
                false,
            ));
        }
    }
    d
}

/// Carry a recorded failover one step further.
fn advance_failover(
    d: &mut Decision,
    policy: &Policy,
    p: Progress,
    obs: &Observation,
    now_ms: u64,
) {
    // An initial election (no previous master) goes through the same steps.
    let initial = p.from.is_empty();
    d.phase = if initial {
        Phase::Creating
    } else {
        Phase::FailingOver
    };
    d.again_now = true;
    let to = member(obs, &p.to);
    let to_report = to.and_then(|m| m.report.as_ref());
    match p.step {
        Step::Pausing => {
            // Wait until the replica applied everything the paused master wrote.
            let from_offset = member(obs, &p.from)
                .and_then(|m| m.report.as_ref())
                .map(|r| r.offset);
            let caught_up = match (from_offset, to_report) {
                (Some(f), Some(t)) => t.offset >= f,
                // The old master vanished mid-switchover: semi-sync still guarantees the
                // replica has every acknowledged write; fall through to a failover.
                (None, Some(_)) => true,
                _ => false,
            };
            if caught_up {
                let mut next = p.clone();
                next.step = Step::Fencing;
                d.record.failover = Some(next);
                d.actions.push(Action::SelectMaster(None));
            } else {
                d.actions.push(Action::PauseWrites {
                    pod: p.from.clone(),
                });
                d.again_now = false;
            }
        }
        Step::Fencing => {
            let mut next = p.clone();
            next.step = Step::Promoting;
            d.record.failover = Some(next);
            d.actions.push(Action::SelectMaster(None));
            if !p.planned {
                d.actions.push(Action::Fence {
                    pod: p.from.clone(),
                });
            }
            d.actions.push(Action::Promote {
                pod: p.to.clone(),
                term: p.term,
            });
        }
        Step::Promoting => {
            let promoted = to_report.is_some_and(|r| r.role == Role::Master && r.term >= p.term);
            if promoted {
                let mut next = p.clone();
                next.step = Step::Switching;
                d.record.failover = Some(next);
                d.record.term = p.term;
                d.record.target_master = Some(p.to.clone());
                // A new term: any earlier degrade authorisation is void.
                d.record.degrade_authorized_term = None;
                d.actions.push(Action::SelectMaster(Some(p.to.clone())));
            } else if to.is_some_and(|m| {
                failure_reason(m, None, policy, &d.record, now_ms).is_some() && m.report.is_none()
            }) {
                // The chosen replica died before it could be promoted: give up this attempt
                // and let the next pass decide again from scratch (term not consumed).
                d.record.failover = None;
                d.actions.push(event(
                    "FailoverAborted",
                    format!("{} became unreachable before promotion", p.to),
                    true,
                ));
            } else {
                // Not promoted yet (or the operator restarted right after recording this
                // step): repeat both idempotent actions.
                d.actions.push(Action::SelectMaster(None));
                d.actions.push(Action::Promote {
                    pod: p.to.clone(),
                    term: p.term,
                });
            }
        }
        Step::Switching => {
            if obs.service_selects.as_deref() == Some(p.to.as_str()) && initial {
                d.record.failover = None;
                d.phase = Phase::Ready;
                d.again_now = false;
                d.actions.push(event(
                    "MasterElected",
                    format!("{} is the initial master with term {}", p.to, p.term),
                    false,
                ));
            } else if obs.service_selects.as_deref() == Some(p.to.as_str()) {
                d.record.failover = None;
                d.phase = Phase::Ready;
                d.again_now = false;
                let duration = now_ms.saturating_sub(p.started_ms);
                d.completed = Some((p.from.clone(), p.to.clone(), p.reason.clone(), duration));
                d.actions.push(event(
                    if p.planned {
                        "SwitchoverCompleted"
                    } else {
                        "FailoverCompleted"
                    },
                    format!("{} is master with term {} ({} ms)", p.to, p.term, duration),
                    false,
                ));
                // The old master rejoins as a replica when it is reachable.
                if member(obs, &p.from).is_some_and(|m| m.report.is_some()) {
                    d.actions.push(Action::Demote {
                        pod: p.from.clone(),
                        master: p.to.clone(),
                        term: p.term,
                    });
                }
            } else {
                d.actions.push(Action::SelectMaster(Some(p.to.clone())));
            }
        }
    }
}
