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

pub mod migration;
mod repair;
mod rollout;

/// A term above the recorded one and above every term an engine reports: what a master elected
/// outside a failover (the initial election, a migration's cutover) is promoted into.
pub(crate) fn term_above_all(record: &Record, obs: &Observation) -> i64 {
    let reported = obs
        .members
        .iter()
        .filter_map(|m| m.report.as_ref().map(|r| r.term))
        .max()
        .unwrap_or(0);
    record.term.max(reported) + 1
}

#[cfg(test)]
mod tests;

pub use migration::{Migration, MigrationObservation, MigrationPhase};
pub use repair::{Repair, RepairKind};
pub use rollout::{Rollout, RolloutStep};

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
    /// The write lease the engines run with (`--write-lease-ms`): how long a master may go on
    /// accepting writes after the last grant it received.
    pub write_lease_ms: u64,
    /// A member lost with its node is recreated elsewhere with a new claim (local volumes
    /// cannot follow it); false keeps the claim (network-attached storage).
    pub delete_claim_on_node_loss: bool,
}

/// How long the first election waits for a member whose engine has not answered yet (its
/// probes failing since at least this long), before electing among the members that answered.
pub const INITIAL_ELECTION_WAIT_MS: u64 = 15_000;

/// Added to the write lease before an async promotion becomes writable: covers the rate
/// difference between the operator's clock and the old master's monotonic clock (quartz
/// drifts by well under 0.1 %: under 3 ms of a 3 s lease) and the scheduling delay between the
/// master's lease check and its write, with two orders of magnitude to spare.
pub const LEASE_MARGIN_MS: u64 = 500;

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
    /// Replica: detached because its master's history lacks its position (`NOHISTORY`); it
    /// keeps its data until ordered to full-sync.
    pub detached_no_history: bool,
    /// Its log cannot be written (a full or failing disk): it refuses writes (MISCONF) until
    /// the disk takes them again.
    pub cannot_persist: bool,
}

/// Everything observed about one member of the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pod: String,
    pub pod_health: PodHealth,
    /// The pod's node is Ready (None: not scheduled or unknown node).
    pub node_ready: Option<bool>,
    /// How long the node has been NotReady (its Ready condition's last transition, on the
    /// operator's wall clock); None when Ready or unknown.
    pub node_not_ready_ms: Option<u64>,
    /// The engine's answer to the last probe; None when the probe failed.
    pub report: Option<EngineReport>,
    /// Since when (monotonic ms) probes have been failing without interruption.
    pub probe_failing_since_ms: Option<u64>,
    /// A user fenced this pod (`kubectl redispair fence`): never master, out of Services.
    pub fenced: bool,
    /// Master paused for a planned switchover: its offset read right after the pause took
    /// effect (so it covers every write it accepted), while that pause is still in force.
    /// None: not paused by this operator recently.
    pub paused_offset: Option<i64>,
    /// When (ms, the operator's clock) the operator last granted this engine a write lease,
    /// or is granting one right now; None when this operator process never did.
    pub lease_granted_ms: Option<u64>,
    /// The pod exists and was built from an older spec than the current one (its spec hash
    /// differs): the rollout replaces it.
    pub outdated: bool,
    /// The pod object's uid (None: no pod).
    pub uid: Option<String>,
    /// The pod was evicted or otherwise ended (phase Failed): it never comes back by itself.
    pub evicted: bool,
    /// Its engine container is waiting in the kubelet's CrashLoopBackOff: it was restarted
    /// recently and the kubelet holds the next restart back (10 s, doubling to 5 min).
    pub crash_looping: bool,
    /// How long ago the pod object was created (None: no pod, or unknown).
    pub pod_age_ms: Option<u64>,
}

impl EngineReport {
    /// It reports itself the master of `term`.
    pub fn is_master_of(&self, term: i64) -> bool {
        self.role == Role::Master && self.term == term
    }
}

impl Record {
    /// The decided master, when the observation shows it reporting itself master of the
    /// pair's term: the one definition of "the master is serving" (status's `currentMaster`,
    /// lease renewal, hand-over, full-sync orders all use it).
    pub fn serving_master<'a>(&self, obs: &'a Observation) -> Option<&'a Member> {
        let target = self.target_master.as_deref()?;
        obs.members.iter().find(|m| {
            m.pod == target && m.report.as_ref().is_some_and(|r| r.is_master_of(self.term))
        })
    }
}

/// The whole pair as observed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub members: Vec<Member>,
    /// The pod the read-write Service selects now (None: selects nothing).
    pub service_selects: Option<String>,
    /// A planned switchover was requested and not yet carried out.
    pub switchover_requested: bool,
    /// `kubectl redispair failover --force`: the request id in the annotation, if any.
    pub force_failover_requested: Option<String>,
    /// When the operator process deciding now started (same clock as `now_ms`). A failover
    /// recorded by an earlier process carries times of that process's clock, which this one
    /// cannot compare with its own; but every grant that process made came before this one
    /// started, which bounds the old master's lease (see `lease_wait`).
    pub operator_started_ms: u64,
    /// The spec asks for a migration from a running Redis: what was observed of it.
    pub migration: Option<MigrationObservation>,
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
    /// Async failover: the promoted master becomes writable (lease granted, Service switched)
    /// only from this time, when the old master's lease has certainly lapsed. Recorded when
    /// the promotion is first observed.
    pub writable_after_ms: Option<u64>,
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
    /// The last forced-failover request id handled (carried out or refused): a request is
    /// acted on once, even if its annotation stays.
    pub force_failover_handled: Option<String>,
    /// A rollout of a changed pod spec in progress (see [`rollout`]).
    pub rollout: Option<Rollout>,
    /// A destructive repair in progress (see [`repair`]).
    pub repair: Option<Repair>,
    /// The last term in which the whole pair was seen Ready: the master's pod Ready and
    /// serving as master of the term, the replica Ready and linked to it. Until it equals
    /// `term`, a master pod that is merely not Ready (the kubelet has not run its readiness
    /// probe since the promotion, or the restarted engine is still loading) but answers the
    /// operator as the master of the term is starting, not failed: the startup flap (phase
    /// Failed and `FailoverImpossible` before the first master was ever Ready) came from
    /// treating it as failed. None: the pair was never Ready (its phase stays Creating).
    pub ready_term: Option<i64>,
    /// A migration from `spec.bootstrap.migrateFrom` (see [`migration`]).
    pub migration: Option<Migration>,
}

impl Record {
    fn degraded_in_current_term(&self) -> bool {
        self.degrade_authorized_term == Some(self.term)
    }

    /// The pair has been Ready at least once in the current term.
    pub fn ready_in_term(&self) -> bool {
        self.ready_term == Some(self.term)
    }
}

/// Something to do, after the record was persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Point the read-write Service at this pod (None: at nothing).
    SelectMaster(Option<String>),
    /// Best-effort fencing of an old master: demote it, cut its clients (its lease lapses).
    Fence { pod: String },
    /// Promote with a new term. The engine stops acknowledging its old master at once (so it
    /// renews that master's lease no more) but accepts no write before [`Action::GrantLease`].
    Promote { pod: String, term: i64 },
    /// Grant the (new) master its write lease: from here on it accepts writes.
    GrantLease { pod: String },
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
    /// The forced-failover request was handled (clear the annotation).
    ClearForceFailoverRequest,
    /// Rollout: delete this (replica) pod, built from an outdated spec; the next pass recreates
    /// it from the current spec on its claim. Never the decided master.
    ReplacePod { pod: String },
    /// Repair: force-delete a pod lost with its node or evicted (only the object `uid` when
    /// known), and its claim when `delete_claim`; never the decided master then. Also a
    /// crash-looping pod (any member; never its claim), to restart it without the kubelet's
    /// back-off (`repair::RepairKind::RestartPod`).
    DeleteLostPod {
        pod: String,
        uid: Option<String>,
        delete_claim: bool,
    },
    /// Repair: order the replica `pod` to discard its data and full-sync from `master`.
    OrderFullSync {
        pod: String,
        master: String,
        term: i64,
    },
    /// Migration: make `pod` a replica of the source (its password, then `REPLICAOF`).
    FollowSource { pod: String },
    /// Migration completed: `pod` forgets the source's credentials, so that its next link
    /// (to the pair's master) authenticates as the admin user.
    ForgetSource { pod: String },
    /// The migration cutover request was handled (clear the annotation).
    ClearCutoverRequest,
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
    /// A rollout of a changed pod spec is in progress (and nothing worse is going on).
    Upgrading,
    /// Following the source of a migration (read-only), or cutting over from it.
    Migrating,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "Creating",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::FailingOver => "FailingOver",
            Phase::Failed => "Failed",
            Phase::Upgrading => "Upgrading",
            Phase::Migrating => "Migrating",
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
    let is_target = record.target_master.as_deref() == Some(m.pod.as_str());
    match m.pod_health {
        PodHealth::Missing => return Some(format!("pod {} is gone", m.pod)),
        PodHealth::Terminating => return Some(format!("pod {} is terminating", m.pod)),
        PodHealth::Failed => return Some(format!("pod {} failed", m.pod)),
        // A master that has not been Ready yet in this term but answers as its master is
        // starting: its pod turns Ready at the kubelet's next readiness probe. Once it has been
        // Ready, not Ready means what it says (killed and restarting, hung, loading): fail
        // over, as before. The replica's not Ready always counts (a syncing replica cannot
        // acknowledge, which is what the degrade decision is about).
        PodHealth::NotReady
            if is_target
                && !record.ready_in_term()
                && m.report.as_ref().is_some_and(|r| {
                    r.role == Role::Master && r.term >= record.term && record.term >= 1
                }) => {}
        PodHealth::NotReady => return Some(format!("pod {} is not ready", m.pod)),
        PodHealth::Ready => {}
    }
    if m.node_ready == Some(false) {
        return Some(format!("node of pod {} is NotReady", m.pod));
    }
    if let Some(r) = &m.report {
        // A master that cannot persist refuses every write (MISCONF): it is a failed master,
        // and failing it over loses nothing (what it refused was never acknowledged; semi-sync:
        // the replica holds what it did acknowledge). A replica that cannot persist cannot
        // acknowledge: the degrade decision treats it as failed.
        if r.cannot_persist {
            return Some(format!(
                "pod {} cannot write its log (aof_last_write_status:err; disk full?)",
                m.pod
            ));
        }
        if is_target && r.role == Role::Master && r.term < record.term {
            // The decided master reports an older term than ours: it restarted without its
            // data (or is a stale copy) and must not stay master. (The other member reporting
            // an old term is only waiting to be demoted: that is no failure, and must not
            // authorise a degrade.)
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

/// Decide the next step for the pair: roles first (election, failover, switchover, degrade),
/// then the destructive repairs (a lost replica, a detached one), then, only when that leaves
/// the pair healthy, the rollout of a changed pod spec.
pub fn decide(policy: &Policy, record: &Record, obs: &Observation, now_ms: u64) -> Decision {
    // A migration in progress decides alone: the pair has no master of its own yet.
    if let Some(d) = migration::decide(record, obs, now_ms) {
        return d;
    }
    let mut d = decide_roles(policy, record, obs, now_ms);
    repair::advance(&mut d, policy, obs, now_ms);
    rollout::advance(&mut d, obs, now_ms);
    d
}

/// The roles part of [`decide`], and what the pair's readiness says of the phase.
fn decide_roles(policy: &Policy, record: &Record, obs: &Observation, now_ms: u64) -> Decision {
    let mut d = decide_roles_now(policy, record, obs, now_ms);
    let pair_ready = d.phase == Phase::Ready
        && d.record.failover.is_none()
        && d.record.target_master.as_deref().is_some_and(|m| {
            obs.members.iter().all(|x| {
                x.pod_health == PodHealth::Ready
                    && x.report.as_ref().is_some_and(|r| {
                        r.term == d.record.term
                            && if x.pod == m {
                                r.role == Role::Master
                            } else {
                                r.role == Role::Replica && r.link_up
                            }
                    })
            })
        });
    if pair_ready {
        d.record.ready_term = Some(d.record.term);
    } else if d.record.ready_term.is_none() && matches!(d.phase, Phase::Degraded | Phase::Ready) {
        // A new pair is being created until it was ready once: a replica still in its first
        // sync is not a degraded pair, and a replica linked but not yet in the master's term
        // is not a ready one (saying Ready there made the phase go Ready → Creating → Ready
        // when the first sync's link drop followed).
        d.phase = Phase::Creating;
    }
    d
}

fn decide_roles_now(policy: &Policy, record: &Record, obs: &Observation, now_ms: u64) -> Decision {
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
    // A forced-failover request not handled yet (`kubectl redispair failover --force`). It is
    // handled exactly once: its id goes into the record, whatever the outcome.
    let force_request = obs
        .force_failover_requested
        .clone()
        .filter(|id| record.force_failover_handled.as_deref() != Some(id.as_str()));
    if let Some(id) = &force_request {
        d.record.force_failover_handled = Some(id.clone());
        d.actions.push(Action::ClearForceFailoverRequest);
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
        // Wait until every member has answered, or has failed its probes for the election
        // wait: electing from partial reports would pick whichever engine answered first, and
        // on a pair re-created over retained volumes that could be an empty engine, which the
        // one holding the data would then follow (and be wiped by). A member that never comes
        // up (a replica Pending on a one-node cluster) delays the first election by the wait.
        let awaited = obs.members.iter().any(|m| {
            !m.fenced
                && m.report.is_none()
                && m.probe_failing_since_ms
                    .is_none_or(|since| now_ms.saturating_sub(since) < INITIAL_ELECTION_WAIT_MS)
        });
        let candidate = obs
            .members
            .iter()
            .filter(|m| !awaited && !m.fenced && m.report.is_some())
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
                let term = term_above_all(record, obs);
                d.record.failover = Some(Progress {
                    step: Step::Promoting,
                    from: String::new(),
                    to: pod.clone(),
                    term,
                    reason: "initial election".to_string(),
                    planned: true,
                    started_ms: now_ms,
                    writable_after_ms: None,
                });
                d.actions.push(Action::Promote {
                    pod: pod.clone(),
                    term,
                });
                d.again_now = true;
            }
        }
        if let Some(id) = &force_request {
            d.actions.push(event(
                "ForcedFailoverRefused",
                format!("forced failover {id} refused: no master has been elected yet"),
                true,
            ));
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

    // Forced failover: the user accepts losing what the replica lacks, so neither a healthy
    // master, a disabled failover nor an authorised degrade stops it. What still holds: the
    // replica must be there to promote (reachable, pod not going away), and the old master is
    // fenced first, as in any failover, with the intent recorded before.
    if let Some(id) = &force_request {
        let usable = replica.filter(|r| {
            !r.fenced
                && r.report.is_some()
                && matches!(r.pod_health, PodHealth::Ready | PodHealth::NotReady)
                && r.node_ready != Some(false)
        });
        match usable {
            Some(r) => {
                let reason = format!("forced failover requested ({id})");
                start_failover(&mut d, record, &master_pod, &r.pod, reason, now_ms);
                d.actions.insert(
                    0,
                    event(
                        "ForcedFailoverStarted",
                        format!(
                            "forced failover {id}: fencing {master_pod} and promoting {} with term {}; writes the replica lacks are lost",
                            r.pod,
                            record.term + 1
                        ),
                        true,
                    ),
                );
                return d;
            }
            None => d.actions.push(event(
                "ForcedFailoverRefused",
                format!(
                    "forced failover {id} refused: the replica is {}",
                    match replica {
                        None => "gone".to_string(),
                        Some(r) if r.fenced => "fenced".to_string(),
                        Some(r) if r.report.is_none() => "not reachable".to_string(),
                        Some(r) => format!("not usable ({:?})", r.pod_health),
                    }
                ),
                true,
            )),
        }
    }

    // Graceful hand-over: the master's pod is being deleted but its engine still answers, and
    // the replica is replicating in the current term with no degrade authorised. Hand over like
    // a planned switchover (pause, wait for the replica to apply the paused offset, promote,
    // switch, demote the old master), which loses no acknowledged write even in async mode; the
    // pod's preStop hook holds the engine up until it is a replica. Otherwise (unreachable
    // master, unusable replica) the Terminating master is failed over as before.
    if let (Some(m), Some(r)) = (master, replica) {
        let master_serving = record.serving_master(obs).is_some()
            && m.report.as_ref().is_some_and(|rep| !rep.degraded);
        let replica_linked = r.report.as_ref().is_some_and(|rep| rep.link_up);
        if m.pod_health == PodHealth::Terminating
            && !m.fenced
            && m.node_ready != Some(false)
            && master_serving
            && replica_usable
            && replica_linked
            && !record.degraded_in_current_term()
        {
            let term = record.term + 1;
            d.record.failover = Some(Progress {
                step: Step::Pausing,
                from: master_pod.clone(),
                to: r.pod.clone(),
                term,
                reason: format!("pod {master_pod} is terminating: hand-over"),
                planned: true,
                started_ms: now_ms,
                writable_after_ms: None,
            });
            d.phase = Phase::FailingOver;
            d.actions.push(event(
                "HandoverStarted",
                format!(
                    "pod {master_pod} is terminating: handing the master role over to {} (term {term})",
                    r.pod
                ),
                false,
            ));
            d.actions.push(Action::PauseWrites {
                pod: master_pod.clone(),
            });
            d.again_now = true;
            return d;
        }
    }

    if let Some(reason) = master_failure {
        d.phase = Phase::Failed;
        // A master a user fenced is out of the read-write Service and takes no writes even
        // when no failover can follow (`kubectl redispair fence` says: "until then writes
        // stop"): nothing selected, writes paused and clients cut on every pass, and its
        // write lease no longer renewed (the operator renews no lease for a fenced pod).
        if let Some(m) = master.filter(|m| m.fenced) {
            d.actions.push(Action::SelectMaster(None));
            d.actions.push(Action::Fence { pod: m.pod.clone() });
        }
        if !policy.enabled {
            d.actions.push(event(
                "FailoverDisabled",
                format!("master failed ({reason}) and failover is disabled"),
                true,
            ));
            return d;
        }
        // A replica the operator has not heard from yet (an operator that just started or took
        // over leadership, or one failed probe) is not known to be unusable: wait for its
        // report, which the prober delivers within one interval (or, if its probes keep
        // failing, the detection window decides). Declaring the pair Failed here made a new
        // leader's first pass flap to Failed with `FailoverImpossible`.
        let replica_unknown =
            replica.is_some_and(|r| r.report.is_none() && replica_failure.is_none() && !r.fenced);
        if replica_unknown {
            d.phase = Phase::FailingOver;
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
        d.actions.push(event(
            "FailoverStarted",
            format!(
                "master {master_pod} failed ({reason}); promoting {} with term {}",
                r.pod,
                record.term + 1
            ),
            true,
        ));
        start_failover(&mut d, record, &master_pod, &r.pod, reason, now_ms);
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
            start_switchover(
                &mut d,
                &master_pod,
                &r.pod,
                "switchover requested".to_string(),
                now_ms,
            );
            d.actions.push(Action::ClearSwitchoverRequest);
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

/// Record a planned switchover from the master `from` to its replica `to` (term + 1) and take
/// its first step: pause writes on the master (see `advance_failover`, Pausing). The caller has
/// checked that the replica replicates in the current term with no degrade.
fn start_switchover(d: &mut Decision, from: &str, to: &str, reason: String, now_ms: u64) {
    let term = d.record.term + 1;
    d.record.failover = Some(Progress {
        step: Step::Pausing,
        from: from.to_string(),
        to: to.to_string(),
        term,
        reason,
        planned: true,
        started_ms: now_ms,
        writable_after_ms: None,
    });
    d.phase = Phase::FailingOver;
    d.actions.push(event(
        "SwitchoverStarted",
        format!("switching master from {from} to {to}"),
        false,
    ));
    d.actions.push(Action::PauseWrites {
        pod: from.to_string(),
    });
    d.again_now = true;
}

/// Record an unplanned failover from `from` to `to` (term + 1) and take its first step: the
/// read-write Service selects nothing and the old master is fenced.
fn start_failover(
    d: &mut Decision,
    record: &Record,
    from: &str,
    to: &str,
    reason: String,
    now_ms: u64,
) {
    d.record.failover = Some(Progress {
        step: Step::Fencing,
        from: from.to_string(),
        to: to.to_string(),
        term: record.term + 1,
        reason,
        planned: false,
        started_ms: now_ms,
        writable_after_ms: None,
    });
    d.phase = Phase::FailingOver;
    d.actions.push(Action::SelectMaster(None));
    d.actions.push(Action::Fence {
        pod: from.to_string(),
    });
    d.again_now = true;
}

/// How long a planned switchover may keep writes paused waiting for the replica before it is
/// given up (a hand-over then continues as a failover: the pod is going away regardless).
pub const PAUSE_TIMEOUT_MS: u64 = 10_000;

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
            // Wait until the replica applied everything the paused master accepted. The
            // master's offset must be one read *after* the pause took effect (a probe from
            // before it may miss the last writes, which async mode acknowledged already).
            let from = member(obs, &p.from);
            let from_gone = from.is_none_or(|m| m.report.is_none());
            let paused_offset = from.and_then(|m| m.paused_offset);
            let caught_up = match (paused_offset, to_report) {
                (Some(f), Some(t)) => t.offset >= f,
                _ => false,
            };
            let timed_out = now_ms.saturating_sub(p.started_ms) >= PAUSE_TIMEOUT_MS;
            let terminating = from.is_some_and(|m| m.pod_health == PodHealth::Terminating);
            if caught_up {
                // Straight to the promotion, in this pass, while the pause observed above is
                // still in force (the operator keeps renewing it until the promotion).
                let mut next = p.clone();
                next.step = Step::Promoting;
                d.record.failover = Some(next);
                d.actions.push(Action::SelectMaster(None));
                d.actions.push(Action::PauseWrites {
                    pod: p.from.clone(),
                });
                d.actions.push(Action::Promote {
                    pod: p.to.clone(),
                    term: p.term,
                });
            } else if (from_gone && to_report.is_some()) || (timed_out && terminating) {
                // The old master vanished mid-switchover, or its pod is going away and the
                // replica did not catch up in time: continue as a failover (semi-sync: the
                // replica still holds every acknowledged write; async: the lease wait applies).
                let mut next = p.clone();
                next.step = Step::Fencing;
                next.planned = false;
                next.reason = format!("{} (continued as a failover)", p.reason);
                d.record.failover = Some(next);
                d.actions.push(event(
                    "SwitchoverBecameFailover",
                    format!(
                        "{} {}; failing over to {}",
                        p.from,
                        if from_gone {
                            "is no longer reachable"
                        } else {
                            "is terminating and the replica did not catch up"
                        },
                        p.to
                    ),
                    true,
                ));
                d.actions.push(Action::SelectMaster(None));
            } else if timed_out {
                // A planned switchover never waits forever with writes paused: give up; the
                // pause lapses by itself and the master serves again.
                d.record.failover = None;
                d.phase = Phase::Ready;
                d.again_now = false;
                d.actions.push(event(
                    "SwitchoverAborted",
                    format!(
                        "{} did not catch up with {} within {} ms; switchover given up",
                        p.to, p.from, PAUSE_TIMEOUT_MS
                    ),
                    true,
                ));
                d.actions.push(Action::SelectMaster(Some(p.from.clone())));
            } else {
                d.actions.push(Action::PauseWrites {
                    pod: p.from.clone(),
                });
            }
        }
        Step::Fencing => {
            let mut next = p.clone();
            next.step = Step::Promoting;
            d.record.failover = Some(next);
            d.actions.push(Action::SelectMaster(None));
            if p.planned {
                d.actions.push(Action::PauseWrites {
                    pod: p.from.clone(),
                });
            } else {
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
                if policy.mode == Mode::Async && !p.planned && !initial {
                    if let Some(until) = lease_wait(d, policy, &p, obs, now_ms) {
                        d.actions.push(Action::SelectMaster(None));
                        if p.writable_after_ms.is_none() {
                            d.actions.push(event(
                                "LeaseWait",
                                format!(
                                    "{} is promoted; it accepts writes in {} ms, once {}'s write lease has certainly lapsed",
                                    p.to,
                                    until.saturating_sub(now_ms),
                                    p.from
                                ),
                                false,
                            ));
                        }
                        return;
                    }
                }
                let mut next = d.record.failover.clone().unwrap_or(p.clone());
                next.step = Step::Switching;
                d.record.failover = Some(next);
                d.record.term = p.term;
                d.record.target_master = Some(p.to.clone());
                // A new term: any earlier degrade authorisation is void.
                d.record.degrade_authorized_term = None;
                d.actions.push(Action::GrantLease { pod: p.to.clone() });
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
                // step): repeat the idempotent actions.
                d.actions.push(Action::SelectMaster(None));
                if p.planned && !initial {
                    d.actions.push(Action::PauseWrites {
                        pod: p.from.clone(),
                    });
                }
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
                if p.planned {
                    // Paused writes wait, they are not refused: keep the old master paused
                    // until the demotion below turns them into READONLY errors.
                    d.actions.push(Action::PauseWrites {
                        pod: p.from.clone(),
                    });
                }
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
                // The new master's lease is granted again on every pass until the Service
                // selects it (the prober renews it only once no failover is recorded).
                d.actions.push(Action::GrantLease { pod: p.to.clone() });
                if p.planned && !initial {
                    d.actions.push(Action::PauseWrites {
                        pod: p.from.clone(),
                    });
                }
                d.actions.push(Action::SelectMaster(Some(p.to.clone())));
            }
        }
    }
}

/// Async failover: the promoted engine may accept writes only once the old master's write
/// lease has certainly lapsed. Returns the time to wait for (None: it has lapsed).
///
/// The old master's lease was last extended by one of two grantors. The replica extends it by
/// acknowledging heartbeats, and stops at PROMOTE (its replication link is cut there), so its
/// last grant came before the promotion was observed: `now` at the first pass that sees the
/// promotion bounds it. The operator extends it with `REDISPAIR LEASE`; it stops once a
/// failover is recorded, and the observation carries its last grant (or one in flight) per
/// engine. The master measures each lease from a moment no later than the grantor's (the
/// heartbeat it sent; its handling of LEASE), so on the operator's clock the lease ends by
/// `last grant + lease`, up to the two clocks' rate difference, which the margin covers.
fn lease_wait(
    d: &mut Decision,
    policy: &Policy,
    p: &Progress,
    obs: &Observation,
    now_ms: u64,
) -> Option<u64> {
    let lease = policy.write_lease_ms + LEASE_MARGIN_MS;
    let operator_grant = member(obs, &p.from)
        .and_then(|m| m.lease_granted_ms)
        .unwrap_or(0);
    // A grant seen later than the recorded wait was computed moves the wait later, never
    // earlier.
    let recorded = p
        .writable_after_ms
        .unwrap_or(now_ms.max(operator_grant) + lease);
    // An operator that restarted cannot trust a wait recorded on its predecessor's clock (a
    // different process, perhaps another node), but all of its predecessor's grants, and the
    // replica's, which ended at a promotion that was recorded before this process started,
    // came before `operator_started_ms`: waiting a lease from there is always enough.
    let restarted_floor = obs.operator_started_ms.saturating_add(lease);
    let until = recorded
        .max(operator_grant.saturating_add(lease))
        .max(restarted_floor);
    if p.writable_after_ms != Some(until) {
        let mut next = p.clone();
        next.writable_after_ms = Some(until);
        d.record.failover = Some(next);
    }
    (now_ms < until).then_some(until)
}
