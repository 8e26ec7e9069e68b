//! The destructive repairs: replacing a member whose node is lost (or that was evicted), with
//! or without its claim, and ordering a detached replica to discard its data and full-sync.
//! Pure, like the rest of the machine: it reads the roles decision of this pass, the
//! observation and the record, and adds to them.
//!
//! These used to be decided in the operator outside the machine and carried out in the same
//! pass without a record. They destroy data (a claim, a replica's dataset), so they follow the
//! machine's rules:
//! - **Never the master, never during a failover.** Only a member that is not the decided
//!   master, and only while no failover or switchover is recorded: a lost master is failed over
//!   first, after which it is an ordinary lost replica.
//! - **Intent before action.** The repair is written to the record (`Record::repair`) in the
//!   pass that decides it, before the operator acts; a restarted operator finds it and repeats
//!   the (idempotent) action until the repair is done, then clears it. One repair at a time.
//! - **A full sync only from a master known good**: the decided master, reporting itself
//!   master in the pair's term ≥ 1 (an engine that came back empty reports term 0 and is failed
//!   over instead). Such a master was promoted only when it held every acknowledged write, so
//!   whatever the replica holds beyond it was never acknowledged.
//! - **A crash-looping member is restarted at once, at most once a minute** (`RestartPod`):
//!   the kubelet holds a container that keeps dying back 10 s, doubling to 5 min, and resets
//!   that only after 10 min of running. When the engine that holds the only complete copy is
//!   killed twice in a row (the new master killed while the old one still rejoins), the pair
//!   would wait out that back-off with no master. Deleting the pod object (the claim is kept,
//!   so the new pod comes back on the same data) starts it again at once. Not destructive, so
//!   it may be the master; still never during a failover. The rate limit is the pod's age: a
//!   pod created less than [`CRASH_LOOP_RESTART_MIN_AGE_MS`] ago is left to the kubelet, so an
//!   engine that cannot start at all is not restarted in a tight loop.
//! - **The claim is deleted only when the storage cannot follow the pod** (local volumes, the
//!   default): `Policy::delete_claim_on_node_loss`, from `spec.storage.onNodeLoss`. On
//!   network-attached storage the user keeps the claim, and the recreated pod resumes from its
//!   data by partial resync.

use super::{event, member, Action, Decision, Observation, PodHealth, Policy, Role};

/// A crash-looping member is restarted by deleting its pod only once the pod is this old.
pub const CRASH_LOOP_RESTART_MIN_AGE_MS: u64 = 60_000;

/// A replica's node must have been NotReady this long before the replica is judged lost and
/// replaced (with local storage: its claim deleted and its data full-synced again).
///
/// NotReady alone is not loss. The node controller marks every node NotReady at once when
/// their kubelets could not renew their Leases for its grace period, which is what an
/// apiserver outage longer than that grace looks like (found by the torture's
/// `apiserver-restarted` round: the local cluster's 10 s grace, a 10 s restart, and the
/// replica, whose engine the round had just killed, was replaced with a new claim and a full
/// sync right after the apiserver came back). Kubelets report again within their 10 s
/// status period once the apiserver answers. A lost node stays NotReady. Nothing waits on
/// this: the master is failed over by the probes, not by this rule, and the pair runs
/// degraded meanwhile. Kubernetes' own default is far longer (pods are evicted from a
/// NotReady node after 300 s).
pub const NODE_LOSS_GRACE_MS: u64 = 30_000;

/// What a repair does to its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairKind {
    /// Force-delete the pod (its node will never confirm a graceful deletion) so the apply
    /// step recreates it elsewhere; with `delete_claim`, its claim too (a local volume cannot
    /// follow it; the new pod full-syncs from the master).
    ReplacePod { delete_claim: bool },
    /// Delete the crash-looping pod (not its claim) so the apply step recreates it at once,
    /// without the kubelet's back-off.
    RestartPod,
    /// The replica refused the master's history (`NOHISTORY`): order it to discard its data
    /// and full-sync from `master` in `term`.
    FullSync { master: String, term: i64 },
}

/// A destructive repair, recorded before it is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub pod: String,
    /// The pod object the decision was about: a deletion carries it as a precondition, so a
    /// repeated action can never delete the replacement.
    pub uid: Option<String>,
    pub kind: RepairKind,
    pub reason: String,
    pub started_ms: u64,
}

/// The decided master `master` serves as master of `term` (≥ 1).
fn master_known_good(obs: &Observation, master: &str, term: i64) -> bool {
    term >= 1
        && member(obs, master)
            .and_then(|m| m.report.as_ref())
            .is_some_and(|r| r.is_master_of(term))
}

/// The action that carries out `r` (repeated on every pass until the repair is done).
fn action_of(r: &Repair) -> Action {
    match &r.kind {
        RepairKind::ReplacePod { delete_claim } => Action::DeleteLostPod {
            pod: r.pod.clone(),
            uid: r.uid.clone(),
            delete_claim: *delete_claim,
        },
        RepairKind::RestartPod => Action::DeleteLostPod {
            pod: r.pod.clone(),
            uid: r.uid.clone(),
            delete_claim: false,
        },
        RepairKind::FullSync { master, term } => Action::OrderFullSync {
            pod: r.pod.clone(),
            master: master.clone(),
            term: *term,
        },
    }
}

/// Carry a recorded repair further, or decide one (see the module comment). Runs after the
/// roles decision of the same pass, on its result.
pub(super) fn advance(d: &mut Decision, policy: &Policy, obs: &Observation, now_ms: u64) {
    let Some(master) = d.record.target_master.clone() else {
        return;
    };
    if let Some(r) = d.record.repair.clone() {
        let m = member(obs, &r.pod);
        let done = match &r.kind {
            // Gone, or a different pod object under the same name (recreated).
            RepairKind::ReplacePod { .. } | RepairKind::RestartPod => m.is_none_or(|m| {
                m.pod_health == PodHealth::Missing || (r.uid.is_some() && m.uid != r.uid)
            }),
            RepairKind::FullSync { term, .. } => m
                .and_then(|m| m.report.as_ref())
                .is_some_and(|rep| rep.role == Role::Replica && rep.link_up && rep.term >= *term),
        };
        // A full sync is ordered only from the master it was decided for, in its term, while
        // it is known good and nothing else is going on; anything else voids it (a new pass
        // decides again from what it sees then).
        let void = match &r.kind {
            RepairKind::ReplacePod { .. } => r.pod == master,
            // The kubelet restarted it meanwhile, or a failover began: decide again.
            RepairKind::RestartPod => {
                d.record.failover.is_some() || m.is_some_and(|m| m.uid == r.uid && !m.crash_looping)
            }
            RepairKind::FullSync { master: from, term } => {
                d.record.failover.is_some()
                    || *from != master
                    || *term != d.record.term
                    || !master_known_good(obs, &master, *term)
            }
        };
        if done || void {
            d.record.repair = None;
            if done {
                d.actions.push(event(
                    match r.kind {
                        RepairKind::ReplacePod { .. } => "LostPodReplaced",
                        RepairKind::RestartPod => "PodRestarted",
                        RepairKind::FullSync { .. } => "FullSyncDone",
                    },
                    match r.kind {
                        RepairKind::ReplacePod { .. } | RepairKind::RestartPod => {
                            format!("{} was recreated", r.pod)
                        }
                        RepairKind::FullSync { .. } => {
                            format!("{} replicates from {master} again", r.pod)
                        }
                    },
                    false,
                ));
            }
        } else {
            d.actions.push(action_of(&r));
        }
        return;
    }
    if d.record.failover.is_some() {
        return;
    }
    let others = || obs.members.iter().filter(|m| m.pod != master);
    // A member on a lost node (its pod stays Running, then Terminating forever: no kubelet
    // confirms anything) or evicted (phase Failed) never comes back by itself. A node is lost
    // once NotReady for NODE_LOSS_GRACE_MS (no transition time known: at once, as before).
    let node_lost = |m: &super::Member| {
        m.node_ready == Some(false)
            && m.node_not_ready_ms
                .is_none_or(|ms| ms >= NODE_LOSS_GRACE_MS)
    };
    let lost = others().find(|m| m.pod_health != PodHealth::Missing && (node_lost(m) || m.evicted));
    if let Some(m) = lost {
        let node_lost = node_lost(m);
        let delete_claim = node_lost && policy.delete_claim_on_node_loss;
        let reason = if node_lost {
            format!(
                "the node of {} is NotReady: the pod is replaced on another node{}",
                m.pod,
                if delete_claim {
                    " with a new claim, and full-syncs from the master"
                } else {
                    ", keeping its claim (storage.onNodeLoss: KeepClaim)"
                }
            )
        } else {
            format!("{} was evicted; it is recreated", m.pod)
        };
        let r = Repair {
            pod: m.pod.clone(),
            uid: m.uid.clone(),
            kind: RepairKind::ReplacePod { delete_claim },
            reason: reason.clone(),
            started_ms: now_ms,
        };
        d.actions.push(event("ReplacingPod", reason, true));
        d.actions.push(action_of(&r));
        d.record.repair = Some(r);
        return;
    }
    let looping = obs.members.iter().find(|m| {
        m.crash_looping
            && !m.fenced
            && m.node_ready == Some(true)
            && m.pod_health != PodHealth::Terminating
            && m.pod_age_ms
                .is_some_and(|age| age >= CRASH_LOOP_RESTART_MIN_AGE_MS)
    });
    if let Some(m) = looping {
        let reason = format!(
            "{} is in CrashLoopBackOff: it is restarted now (its pod recreated on the same claim) rather than after the kubelet's back-off",
            m.pod
        );
        let r = Repair {
            pod: m.pod.clone(),
            uid: m.uid.clone(),
            kind: RepairKind::RestartPod,
            reason: reason.clone(),
            started_ms: now_ms,
        };
        d.actions.push(event("RestartingPod", reason, true));
        d.actions.push(action_of(&r));
        d.record.repair = Some(r);
        return;
    }
    if !master_known_good(obs, &master, d.record.term) {
        return;
    }
    let detached = others().find(|m| {
        m.report
            .as_ref()
            .is_some_and(|rep| rep.role == Role::Replica && !rep.link_up && rep.detached_no_history)
    });
    if let Some(m) = detached {
        let term = d.record.term;
        let reason = format!(
            "{} refused {master}'s history; it discards its unacknowledged data and full-syncs in term {term}",
            m.pod
        );
        let r = Repair {
            pod: m.pod.clone(),
            uid: m.uid.clone(),
            kind: RepairKind::FullSync {
                master: master.clone(),
                term,
            },
            reason: reason.clone(),
            started_ms: now_ms,
        };
        d.actions.push(event("FullSyncOrdered", reason, true));
        d.actions.push(action_of(&r));
        d.record.repair = Some(r);
    }
}
