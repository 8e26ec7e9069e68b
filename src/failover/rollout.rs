//! The rollout of a changed pod spec (image, resources, engine flags, pod overrides): which
//! pod to replace next, and when. Pure, like the rest of the machine: it reads the roles
//! decision of this pass, the observation and the record, and adds to them.
//!
//! The order is CloudNativePG's, and keeps one engine serving and every acknowledged write:
//! 1. replace the **replica** (delete its pod; the next pass recreates it from the current spec
//!    on its claim and it resyncs, partially when its data survived), and wait until it is
//!    back, linked to the master in the pair's term, and in sync (no degrade left);
//! 2. if the master is outdated too, a **planned switchover** through the ordinary path (pause,
//!    replica applies the paused offset, promote, Service, demote): lossless in every mode;
//! 3. replace the **old master**, now the replica, like step 1.
//!
//! One pod at a time, never both down: a step starts only when the roles decision left the
//! pair `Ready` (master serving in its term, replica replicating, no degrade, no failover, no
//! user switchover pending, nothing fenced). A pair that is degraded or failing over is not
//! touched; the rollout resumes when it is healthy again. Each step is recorded in status
//! before it is carried out (`Record::rollout`), so a restarted operator resumes it; deleting
//! a pod that still carries the old spec is repeated until it is gone (idempotent).
//!
//! While the replica is replaced, the master runs without it exactly as after a replica
//! failure: in semi-sync mode the machine authorises the degrade for the term (recorded
//! first) and clears it once the replica caught up, which is what step 1 waits for. In sync
//! mode writes wait for the replica to come back (sync never degrades).

use super::{event, member, Action, Decision, Member, Observation, Phase, Role};

/// A rollout step, recorded before it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStep {
    /// The replica pod `pod` was deleted to be recreated from the current spec; waiting until
    /// it is back, linked and in sync.
    ReplacingReplica,
    /// The master `pod` runs an outdated spec: a planned switchover moves the role away from
    /// it, after which it is replaced as the replica.
    Switchover,
}

/// A rollout in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub step: RolloutStep,
    /// The pod the step is about.
    pub pod: String,
    /// When the rollout started (kept across its steps).
    pub started_ms: u64,
}

/// The replica replicates from the decided master in the pair's term, its pod Ready: a
/// replica that may be replaced, or that is back after its replacement. With the roles phase
/// `Ready` (no degrade in the term, master not degraded) it also holds every acknowledged
/// write.
fn replica_in_sync(r: &Member, master: &str, term: i64) -> bool {
    r.pod_health == super::PodHealth::Ready
        && r.report.as_ref().is_some_and(|rep| {
            rep.role == Role::Replica
                && rep.link_up
                && rep.term == term
                && rep.following.as_deref().is_none_or(|f| f == master)
        })
}

/// Carry the rollout one step further (see the module comment). Runs after the roles decision
/// of the same pass, on its result.
pub(super) fn advance(d: &mut Decision, obs: &Observation, now_ms: u64) {
    let Some(master) = d.record.target_master.clone() else {
        return;
    };
    // A failover or switchover in progress (recorded, or started in this pass) owns the pair;
    // the rollout's own switchover is one of them.
    if d.record.failover.is_some() {
        return;
    }
    let replica = obs.members.iter().find(|m| m.pod != master);
    let healthy = d.phase == Phase::Ready
        && !obs.switchover_requested
        && obs.members.iter().all(|m| !m.fenced)
        && replica.is_some_and(|r| replica_in_sync(r, &master, d.record.term));
    let outdated = |pod: &str| member(obs, pod).is_some_and(|m| m.outdated);
    // What to do next, replica first: (step, pod).
    let next = || {
        if let Some(r) = replica.filter(|r| r.outdated) {
            Some((RolloutStep::ReplacingReplica, r.pod.clone()))
        } else if outdated(&master) {
            Some((RolloutStep::Switchover, master.clone()))
        } else {
            None
        }
    };
    let Some(current) = d.record.rollout.clone() else {
        if !healthy {
            return;
        }
        let Some((step, pod)) = next() else {
            return;
        };
        let pods: Vec<&str> = obs
            .members
            .iter()
            .filter(|m| m.outdated)
            .map(|m| m.pod.as_str())
            .collect();
        d.actions.push(event(
            "RolloutStarted",
            format!(
                "the pod spec changed: replacing {} one pod at a time (replica first, then a switchover)",
                pods.join(" and ")
            ),
            false,
        ));
        begin(
            d,
            step,
            pod,
            now_ms,
            now_ms,
            replica.map(|r| r.pod.as_str()),
        );
        mark_upgrading(d);
        return;
    };
    match current.step {
        RolloutStep::ReplacingReplica if current.pod == master => {
            // A failover made the pod being replaced master again: move the role away first.
            d.record.rollout = Some(Rollout {
                step: RolloutStep::Switchover,
                ..current
            });
        }
        RolloutStep::ReplacingReplica => {
            let m = member(obs, &current.pod);
            let still_old = m.is_some_and(|m| m.outdated);
            if still_old {
                // Recorded but not carried out yet (the operator restarted in between), or
                // the pod spec changed again meanwhile: delete it (again) once the pair is
                // healthy, never otherwise.
                if healthy {
                    d.actions.push(Action::ReplacePod {
                        pod: current.pod.clone(),
                    });
                }
            } else if healthy {
                d.actions.push(event(
                    "PodReplaced",
                    format!(
                        "{} runs the current spec and is in sync with {master}",
                        current.pod
                    ),
                    false,
                ));
                continue_or_finish(d, next(), current.started_ms, now_ms, replica);
            }
            // Otherwise: gone, recreated, starting or resyncing; wait.
        }
        RolloutStep::Switchover if current.pod != master => {
            // The role moved away (this rollout's switchover, or any failover): the old
            // master is the replica now, replaced when the pair is healthy again.
            if healthy {
                continue_or_finish(d, next(), current.started_ms, now_ms, replica);
            }
        }
        RolloutStep::Switchover => {
            if healthy && outdated(&master) {
                let to = replica.map(|r| r.pod.clone()).unwrap_or_default();
                super::start_switchover(
                    d,
                    &master,
                    &to,
                    format!("rollout: {master} runs an outdated pod spec"),
                    now_ms,
                );
            } else if healthy {
                // The master was replaced some other way meanwhile (it is current now).
                continue_or_finish(d, next(), current.started_ms, now_ms, replica);
            }
        }
    }
    mark_upgrading(d);
}

/// Start the next step, or end the rollout when no pod is outdated any more.
fn continue_or_finish(
    d: &mut Decision,
    next: Option<(RolloutStep, String)>,
    started_ms: u64,
    now_ms: u64,
    replica: Option<&Member>,
) {
    match next {
        Some((step, pod)) => begin(
            d,
            step,
            pod,
            started_ms,
            now_ms,
            replica.map(|r| r.pod.as_str()),
        ),
        None => {
            d.record.rollout = None;
            d.actions.push(event(
                "RolloutFinished",
                "both pods run the current pod spec".to_string(),
                false,
            ));
        }
    }
}

/// Record `step` and take its first action.
fn begin(
    d: &mut Decision,
    step: RolloutStep,
    pod: String,
    started_ms: u64,
    now_ms: u64,
    replica: Option<&str>,
) {
    d.record.rollout = Some(Rollout {
        step,
        pod: pod.clone(),
        started_ms,
    });
    match step {
        RolloutStep::ReplacingReplica => {
            d.actions.push(event(
                "RolloutReplacingPod",
                format!("replacing replica {pod} with the current pod spec"),
                false,
            ));
            d.actions.push(Action::ReplacePod { pod });
        }
        RolloutStep::Switchover => {
            let to = replica.unwrap_or_default().to_string();
            super::start_switchover(
                d,
                &pod,
                &to,
                format!("rollout: {pod} runs an outdated pod spec"),
                now_ms,
            );
        }
    }
}

/// While a rollout is recorded, a pair that is otherwise fine (or degraded only because its
/// replica is being replaced) shows phase `Upgrading`.
fn mark_upgrading(d: &mut Decision) {
    if d.record.rollout.is_some() && matches!(d.phase, Phase::Ready | Phase::Degraded) {
        d.phase = Phase::Upgrading;
    }
}
