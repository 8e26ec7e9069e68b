//! Tests of the failover machine: a simulated pair (two engines, their pods and nodes, the
//! read-write Service, clients writing through it) driven with a simulated clock, plus a few
//! table cases. The central property: in semi-sync mode no acknowledged write is ever lost.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const A: &str = "cache-a";
const B: &str = "cache-b";
const LEASE: u64 = 3_000;

#[derive(Clone, Debug)]
struct SimEngine {
    /// Process alive and reachable by the operator.
    reachable: bool,
    /// Process alive (a partitioned or hung engine is alive but unreachable).
    alive: bool,
    role: Role,
    term: i64,
    /// The writes it holds, in order.
    log: Vec<u64>,
    following: Option<String>,
    degrade_term: Option<i64>,
    paused: bool,
    /// Restarted with an empty data directory.
    wiped: bool,
    /// Only the operator cannot reach it (its peer still can).
    cut_from_operator: bool,
    /// Its write lease ends at this (simulated) time.
    lease_until: u64,
    /// Detached: its master's history lacks its position (NOHISTORY).
    no_history: bool,
}

impl SimEngine {
    fn new(role: Role) -> SimEngine {
        SimEngine {
            reachable: true,
            alive: true,
            role,
            term: 0,
            log: Vec::new(),
            following: None,
            degrade_term: None,
            paused: false,
            wiped: false,
            cut_from_operator: false,
            lease_until: 0,
            no_history: false,
        }
    }
}

struct Sim {
    now: u64,
    policy: Policy,
    record: Record,
    engines: BTreeMap<String, SimEngine>,
    pods: BTreeMap<String, PodHealth>,
    nodes_ready: BTreeMap<String, bool>,
    /// The operator's own record of failing probes (in memory: lost on operator restart).
    probe_failing_since: BTreeMap<String, u64>,
    /// When the sim first observed each pod's node NotReady.
    node_down_since: BTreeMap<String, u64>,
    service: Option<String>,
    switchover: bool,
    force: Option<String>,
    /// The operator's last lease grant per engine (attempted, reachable or not).
    last_grant: BTreeMap<String, u64>,
    /// (write, engine, time) of every acknowledged write.
    acked_by: Vec<(u64, String, u64)>,
    next_write: u64,
    acknowledged: Vec<u64>,
    events: Vec<&'static str>,
    completed: Vec<(String, String, u64)>,
    /// Pods built from an outdated spec.
    outdated: BTreeSet<String>,
    /// Pods deleted by the rollout: when their replacement is Ready again.
    recreated_at: BTreeMap<String, u64>,
    /// Pods the rollout deleted, in order.
    replaced: Vec<String>,
    /// Pods the repairs force-deleted (pod, with its claim), in order.
    deleted_lost: Vec<(String, bool)>,
    /// Replicas ordered to full-sync, in order.
    full_syncs: Vec<String>,
}

impl Sim {
    fn new(mode: Mode) -> Sim {
        let mut s = Sim {
            now: 1_000,
            policy: Policy {
                enabled: true,
                detection_ms: 2_000,
                allow_data_loss: false,
                mode,
                write_lease_ms: LEASE,
                delete_claim_on_node_loss: true,
            },
            record: Record::default(),
            engines: BTreeMap::new(),
            pods: BTreeMap::new(),
            nodes_ready: BTreeMap::new(),
            probe_failing_since: BTreeMap::new(),
            node_down_since: BTreeMap::new(),
            service: None,
            switchover: false,
            force: None,
            last_grant: BTreeMap::new(),
            acked_by: Vec::new(),
            next_write: 1,
            acknowledged: Vec::new(),
            events: Vec::new(),
            completed: Vec::new(),
            outdated: BTreeSet::new(),
            recreated_at: BTreeMap::new(),
            replaced: Vec::new(),
            deleted_lost: Vec::new(),
            full_syncs: Vec::new(),
        };
        for pod in [A, B] {
            s.engines.insert(pod.into(), SimEngine::new(Role::Master));
            s.pods.insert(pod.into(), PodHealth::Ready);
            s.nodes_ready.insert(pod.into(), true);
        }
        // The operator elects A and makes B its replica.
        s.settle();
        assert_eq!(s.record.target_master.as_deref(), Some(A));
        assert_eq!(s.engines[B].role, Role::Replica);
        assert_eq!(s.service.as_deref(), Some(A));
        s
    }

    fn observe(&mut self) -> Observation {
        let mut members = Vec::new();
        for (pod, e) in &self.engines {
            let health = self.pods[pod];
            let report = (e.reachable && !e.cut_from_operator && health != PodHealth::Missing)
                .then(|| EngineReport {
                    role: e.role,
                    term: e.term,
                    offset: e.log.len() as i64,
                    link_up: e.role == Role::Replica && self.link_up(pod),
                    degraded: e.degrade_term == Some(e.term),
                    following: e.following.clone(),
                    detached_no_history: e.no_history,
                    cannot_persist: false,
                });
            if self.nodes_ready[pod] {
                self.node_down_since.remove(pod);
            } else {
                self.node_down_since.entry(pod.clone()).or_insert(self.now);
            }
            if report.is_none() {
                self.probe_failing_since
                    .entry(pod.clone())
                    .or_insert(self.now);
            } else {
                self.probe_failing_since.remove(pod);
            }
            members.push(Member {
                pod: pod.clone(),
                pod_health: health,
                node_ready: Some(self.nodes_ready[pod]),
                node_not_ready_ms: self.node_down_since.get(pod).map(|t| self.now - t),
                report,
                probe_failing_since_ms: self.probe_failing_since.get(pod).copied(),
                fenced: false,
                // The engine is paused by the operator: its offset now covers every write.
                paused_offset: (e.paused && e.reachable && !e.cut_from_operator)
                    .then_some(e.log.len() as i64),
                lease_granted_ms: self.last_grant.get(pod).copied(),
                outdated: self.outdated.contains(pod),
                uid: None,
                evicted: false,
                crash_looping: false,
                pod_age_ms: None,
            });
        }
        Observation {
            migration: None,
            members,
            service_selects: self.service.clone(),
            switchover_requested: self.switchover,
            force_failover_requested: self.force.clone(),
            operator_started_ms: 0,
        }
    }

    /// The replica at `pod` is connected to the master it follows.
    fn link_up(&self, pod: &str) -> bool {
        let e = &self.engines[pod];
        match &e.following {
            Some(m) => {
                let master = &self.engines[m];
                e.alive
                    && !e.no_history
                    && master.alive
                    && master.role == Role::Master
                    && master.term == e.term
                    && e.reachable_to_peer()
                    && master.reachable_to_peer()
            }
            None => false,
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SelectMaster(p) => self.service = p,
                Action::Fence { pod } => {
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable && !e.cut_from_operator {
                        e.paused = true;
                    }
                }
                Action::GrantLease { pod } => self.grant(&pod),
                Action::ClearForceFailoverRequest => self.force = None,
                Action::Promote { pod, term } => {
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable && e.term <= term {
                        e.role = Role::Master;
                        e.term = term;
                        e.following = None;
                        e.paused = false;
                    }
                }
                Action::Demote { pod, master, term } => {
                    let m_log = self.engines[&master].log.clone();
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable && e.term <= term {
                        e.role = Role::Replica;
                        e.term = term;
                        e.following = Some(master);
                        e.paused = false;
                        e.wiped = false;
                        // Resync: the replica discards any tail the master lacks and catches
                        // up (partial or full sync).
                        e.log = m_log;
                    }
                }
                Action::PauseWrites { pod } => {
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable && !e.cut_from_operator {
                        e.paused = true;
                    }
                }
                Action::AuthorizeDegrade { pod, term } => {
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable && e.term == term {
                        e.degrade_term = Some(term);
                    }
                }
                Action::ClearSwitchoverRequest => self.switchover = false,
                Action::FollowSource { .. }
                | Action::ForgetSource { .. }
                | Action::ClearCutoverRequest => {}
                Action::Event { reason, .. } => self.events.push(reason),
                Action::DeleteLostPod {
                    pod, delete_claim, ..
                } => {
                    // Never the master.
                    assert_ne!(self.record.target_master.as_deref(), Some(pod.as_str()));
                    self.deleted_lost.push((pod.clone(), delete_claim));
                    if self.pods[&pod] != PodHealth::Missing {
                        self.pods.insert(pod.clone(), PodHealth::Missing);
                        // Rescheduled onto a healthy node.
                        self.nodes_ready.insert(pod.clone(), true);
                        let e = self.engines.get_mut(&pod).unwrap();
                        e.alive = false;
                        e.reachable = false;
                        if delete_claim {
                            // A new, empty volume: the engine starts from nothing.
                            e.log.clear();
                            e.term = 0;
                            e.role = Role::Master;
                            e.following = None;
                            e.wiped = true;
                        }
                        self.recreated_at.insert(pod, self.now + 500);
                    }
                }
                Action::OrderFullSync { pod, master, term } => {
                    assert_ne!(self.record.target_master.as_deref(), Some(pod.as_str()));
                    self.full_syncs.push(pod.clone());
                    let m_log = self.engines[&master].log.clone();
                    let e = self.engines.get_mut(&pod).unwrap();
                    if e.reachable {
                        e.role = Role::Replica;
                        e.term = term;
                        e.following = Some(master);
                        e.log = m_log;
                        e.no_history = false;
                    }
                }
                Action::ReplacePod { pod } => {
                    // Never the master, never with the other pod down.
                    assert_ne!(self.record.target_master.as_deref(), Some(pod.as_str()));
                    let other = if pod == A { B } else { A };
                    assert_eq!(self.pods[other], PodHealth::Ready);
                    assert_eq!(self.engines[other].role, Role::Master);
                    if self.pods[&pod] != PodHealth::Missing {
                        self.replaced.push(pod.clone());
                        self.pods.insert(pod.clone(), PodHealth::Missing);
                        let e = self.engines.get_mut(&pod).unwrap();
                        e.alive = false;
                        e.reachable = false;
                        self.recreated_at.insert(pod, self.now + 500);
                    }
                }
            }
        }
    }

    /// The operator grants a lease (recorded even when the engine is out of reach: the
    /// request may still arrive).
    fn grant(&mut self, pod: &str) {
        self.last_grant.insert(pod.to_string(), self.now);
        let now = self.now;
        let e = self.engines.get_mut(pod).unwrap();
        if e.reachable && !e.cut_from_operator && e.role == Role::Master {
            e.lease_until = e.lease_until.max(now + LEASE);
        }
    }

    /// One operator pass.
    fn pass(&mut self) -> bool {
        let obs = self.observe();
        let d = decide(&self.policy, &self.record, &obs, self.now);
        // Intent before action: the record is persisted first.
        self.record = d.record.clone();
        if let Some((from, to, _, ms)) = d.completed.clone() {
            self.completed.push((from, to, ms));
        }
        self.apply(d.actions);
        // The prober renews the decided master's lease while no failover is recorded.
        if self.record.failover.is_none() {
            if let Some(m) = self.record.target_master.clone() {
                let e = &self.engines[&m];
                if e.role == Role::Master && e.term == self.record.term {
                    self.grant(&m);
                }
            }
        }
        d.again_now
    }

    fn settle(&mut self) {
        for _ in 0..20 {
            let again = self.pass();
            self.now += if again { 20 } else { 200 };
            self.replicate();
        }
    }

    /// The apply step and the kubelet: a deleted pod is recreated from the current spec and its
    /// engine starts on its old data (a replica of the master it followed: partial resync).
    fn kubelet(&mut self) {
        let due: Vec<String> = self
            .recreated_at
            .iter()
            .filter(|(_, at)| **at <= self.now)
            .map(|(p, _)| p.clone())
            .collect();
        for pod in due {
            self.recreated_at.remove(&pod);
            self.pods.insert(pod.clone(), PodHealth::Ready);
            self.outdated.remove(&pod);
            let e = self.engines.get_mut(&pod).unwrap();
            e.alive = true;
            e.reachable = true;
        }
    }

    /// Replicas catch up with their master while the link is up; the master's degrade ends
    /// when its replica caught up.
    fn replicate(&mut self) {
        self.kubelet();
        let pods: Vec<String> = self.engines.keys().cloned().collect();
        for pod in pods {
            if self.link_up(&pod) {
                let m = self.engines[&pod].following.clone().unwrap();
                let log = self.engines[&m].log.clone();
                self.engines.get_mut(&pod).unwrap().log = log;
                let now = self.now;
                let master = self.engines.get_mut(&m).unwrap();
                // The replica's acknowledgement of a heartbeat extends the master's lease.
                master.lease_until = master.lease_until.max(now + LEASE);
                if master.degrade_term.is_some() {
                    master.degrade_term = None;
                }
            }
        }
    }

    /// A client writes through the read-write Service; the write is acknowledged only as the
    /// engine would: semi-sync needs the replica's acknowledgement unless degraded.
    fn client_write(&mut self) {
        let Some(target) = self.service.clone() else {
            return;
        };
        self.write_to(&target);
    }

    /// A client writes straight to `target` (a connection opened earlier, or a client on the
    /// engine's side of a partition).
    fn write_to(&mut self, target: &str) {
        let target = target.to_string();
        let e = &self.engines[&target];
        if !e.alive
            || !e.reachable_to_peer()
            || e.role != Role::Master
            || e.paused
            || self.now >= e.lease_until
        {
            return;
        }
        let w = self.next_write;
        self.next_write += 1;
        let degraded = e.degrade_term == Some(e.term);
        let replica = self
            .engines
            .iter()
            .find(|(p, r)| **p != target && r.following.as_deref() == Some(target.as_str()))
            .map(|(p, _)| p.clone());
        let replica_acks = replica.as_ref().is_some_and(|r| self.link_up(r));
        self.engines.get_mut(&target).unwrap().log.push(w);
        if replica_acks {
            self.engines
                .get_mut(replica.as_ref().unwrap())
                .unwrap()
                .log
                .push(w);
        }
        let acked = match self.policy.mode {
            Mode::Async => true,
            Mode::SemiSync => replica_acks || degraded,
            Mode::Sync => replica_acks,
        };
        if acked {
            self.acknowledged.push(w);
            self.acked_by.push((w, target.clone(), self.now));
        }
    }

    /// Run `ms` of simulated time: writes every 10 ms, operator passes every 100 ms (or at
    /// once when a failover is advancing).
    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        let mut next_pass = self.now;
        while self.now < end {
            self.client_write();
            self.replicate();
            if self.now >= next_pass {
                let again = self.pass();
                next_pass = self.now + if again { 10 } else { 100 };
            }
            self.now += 10;
        }
    }

    fn master(&self) -> &str {
        self.record.target_master.as_deref().unwrap()
    }

    fn assert_no_acknowledged_write_lost(&self) {
        let m = &self.engines[self.master()];
        for w in &self.acknowledged {
            assert!(m.log.contains(w), "acknowledged write {w} lost");
        }
    }

    fn kill(&mut self, pod: &str) {
        let e = self.engines.get_mut(pod).unwrap();
        e.alive = false;
        e.reachable = false;
    }
}

impl SimEngine {
    fn reachable_to_peer(&self) -> bool {
        self.reachable || !self.alive
    }
}

#[test]
fn master_process_killed_fails_over_without_losing_writes() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(2_000);
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::NotReady);
    s.run(1_000);
    assert_eq!(s.master(), B);
    assert_eq!(s.service.as_deref(), Some(B));
    assert_eq!(s.record.term, 2);
    assert!(s.events.contains(&"FailoverCompleted"));
    s.assert_no_acknowledged_write_lost();
    // The old master comes back and rejoins as a replica of the new one.
    let e = s.engines.get_mut(A).unwrap();
    e.alive = true;
    e.reachable = true;
    s.pods.insert(A.into(), PodHealth::Ready);
    s.run(1_000);
    assert_eq!(s.engines[A].role, Role::Replica);
    assert_eq!(s.engines[A].following.as_deref(), Some(B));
    assert_eq!(s.engines[A].log, s.engines[B].log);
}

#[test]
fn master_pod_deleted_fails_over_at_once() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::Missing);
    s.run(300);
    assert_eq!(s.master(), B);
    let (_, _, ms) = s.completed[0];
    assert!(ms < 1_000, "took {ms} ms of simulated time");
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn hung_master_needs_the_detection_window_and_the_replica_agreeing() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    // SIGSTOP: pod still Ready for a while, probes fail, the replica loses its link.
    let e = s.engines.get_mut(A).unwrap();
    e.reachable = false;
    e.alive = false;
    s.run(1_500);
    assert_eq!(s.master(), A, "no failover before the detection window");
    s.run(1_500);
    assert_eq!(s.master(), B);
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn operator_cut_off_from_a_healthy_master_does_not_fail_over() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    // Only the operator cannot reach A; the replica still replicates from it.
    s.engines.get_mut(A).unwrap().reachable = false;
    // In this sim an unreachable-but-alive engine is also cut from its peer, so model the
    // operator-only cut directly: the replica reports its link up.
    let obs = {
        let mut o = s.observe();
        for m in &mut o.members {
            if m.pod == B {
                m.report.as_mut().unwrap().link_up = true;
            }
        }
        o
    };
    let d = decide(&s.policy, &s.record, &obs, s.now + 10_000);
    assert!(d.record.failover.is_none());
    assert_eq!(d.record.target_master.as_deref(), Some(A));
}

#[test]
fn lost_node_fails_over() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    s.kill(A);
    s.nodes_ready.insert(A.into(), false);
    s.run(500);
    assert_eq!(s.master(), B);
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn partitioned_master_cannot_acknowledge_and_loses_nothing() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    // Partition: A is alive, its clients on the same side keep writing, but it reaches neither
    // the operator nor the replica, so it cannot get acknowledgements.
    s.engines.get_mut(A).unwrap().reachable = false;
    let writes_before = s.acknowledged.len();
    for _ in 0..50 {
        // Writes arriving at A on its side of the partition.
        let w = s.next_write;
        s.next_write += 1;
        s.engines.get_mut(A).unwrap().log.push(w);
        // Not acknowledged: no replica ack, no degrade authorisation.
    }
    assert_eq!(s.acknowledged.len(), writes_before);
    s.run(3_000);
    assert_eq!(s.master(), B);
    s.assert_no_acknowledged_write_lost();
    // Heal: A rejoins, discarding the unacknowledged tail.
    s.engines.get_mut(A).unwrap().reachable = true;
    s.run(1_000);
    assert_eq!(s.engines[A].role, Role::Replica);
    assert_eq!(s.engines[A].log, s.engines[B].log);
}

#[test]
fn replica_down_authorises_degrade_and_blocks_failover_until_caught_up() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    s.kill(B);
    s.pods.insert(B.into(), PodHealth::NotReady);
    s.run(500);
    assert_eq!(s.record.degrade_authorized_term, Some(1));
    assert!(s.events.contains(&"DegradeAuthorized"));
    let acked_while_degraded = s.acknowledged.len();
    s.run(500);
    assert!(
        s.acknowledged.len() > acked_while_degraded,
        "degraded master acknowledges writes"
    );
    // Now the master dies too: the replica lacks acknowledged writes, no automatic failover.
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::NotReady);
    let e = s.engines.get_mut(B).unwrap();
    e.alive = true;
    e.reachable = true;
    s.pods.insert(B.into(), PodHealth::Ready);
    s.run(3_000);
    assert_eq!(
        s.master(),
        A,
        "must not promote a replica that lacks acknowledged writes"
    );
    assert!(s.events.contains(&"FailoverBlocked"));
}

#[test]
fn allow_data_loss_fails_over_even_when_degraded() {
    let mut s = Sim::new(Mode::SemiSync);
    s.policy.allow_data_loss = true;
    s.run(300);
    s.kill(B);
    s.pods.insert(B.into(), PodHealth::NotReady);
    s.run(500);
    let e = s.engines.get_mut(B).unwrap();
    e.alive = true;
    e.reachable = true;
    s.pods.insert(B.into(), PodHealth::Ready);
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::NotReady);
    s.run(1_000);
    assert_eq!(s.master(), B);
}

#[test]
fn degrade_is_cleared_when_the_replica_catches_up() {
    let mut s = Sim::new(Mode::SemiSync);
    s.kill(B);
    s.pods.insert(B.into(), PodHealth::NotReady);
    s.run(500);
    assert_eq!(s.record.degrade_authorized_term, Some(1));
    let e = s.engines.get_mut(B).unwrap();
    e.alive = true;
    e.reachable = true;
    s.pods.insert(B.into(), PodHealth::Ready);
    s.run(1_000);
    assert_eq!(s.record.degrade_authorized_term, None);
    assert!(s.events.contains(&"InSync"));
    // And failover works again.
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::Missing);
    s.run(500);
    assert_eq!(s.master(), B);
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn both_down_then_master_back_first() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(300);
    s.kill(A);
    s.kill(B);
    s.pods.insert(A.into(), PodHealth::NotReady);
    s.pods.insert(B.into(), PodHealth::NotReady);
    s.run(3_000);
    assert_eq!(s.master(), A, "nothing usable to fail over to");
    assert!(s.events.contains(&"FailoverImpossible"));
    let e = s.engines.get_mut(A).unwrap();
    e.alive = true;
    e.reachable = true;
    s.pods.insert(A.into(), PodHealth::Ready);
    s.run(500);
    assert_eq!(s.master(), A);
    assert_eq!(s.service.as_deref(), Some(A));
    assert_eq!(s.record.term, 1);
}

#[test]
fn initial_master_restarted_empty_is_replaced_by_the_replica() {
    // The first master is promoted into term 1, so even before any failover an engine that
    // comes back with an empty directory (term 0) is told apart and the replica takes over.
    let mut s = Sim::new(Mode::SemiSync);
    assert_eq!(s.record.term, 1);
    s.run(500);
    let e = s.engines.get_mut(A).unwrap();
    *e = SimEngine::new(Role::Master);
    e.wiped = true;
    s.run(1_000);
    assert_eq!(s.master(), B);
    assert_eq!(s.record.term, 2);
    s.assert_no_acknowledged_write_lost();
    assert_eq!(s.engines[A].log, s.engines[B].log);
}

#[test]
fn master_restarted_empty_is_replaced_by_the_replica() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    // Promote once more (a restarted empty engine reports term 0, below any elected term).
    s.switchover = true;
    s.run(500);
    assert_eq!(s.master(), B);
    let term = s.record.term;
    assert_eq!(term, 2);
    s.run(300);
    // B restarts with an empty directory: master, term 0, no data.
    let e = s.engines.get_mut(B).unwrap();
    *e = SimEngine::new(Role::Master);
    e.wiped = true;
    s.run(1_000);
    assert_eq!(s.master(), A, "the replica that kept the data is promoted");
    assert_eq!(s.record.term, term + 1);
    s.assert_no_acknowledged_write_lost();
    assert_eq!(s.engines[B].role, Role::Replica);
    assert_eq!(s.engines[B].log, s.engines[A].log);
}

#[test]
fn planned_switchover_loses_nothing() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(500);
    s.switchover = true;
    s.run(500);
    assert_eq!(s.master(), B);
    assert_eq!(s.engines[A].role, Role::Replica);
    assert!(s.events.contains(&"SwitchoverCompleted"));
    assert!(!s.switchover);
    s.assert_no_acknowledged_write_lost();
    s.run(500);
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn flapping_master_is_not_promoted_back() {
    let mut s = Sim::new(Mode::SemiSync);
    for round in 0..4 {
        s.run(300);
        let m = s.master().to_string();
        s.kill(&m);
        s.pods.insert(m.clone(), PodHealth::NotReady);
        s.run(500);
        assert_ne!(s.master(), m, "round {round}");
        let e = s.engines.get_mut(&m).unwrap();
        e.alive = true;
        e.reachable = true;
        s.pods.insert(m.clone(), PodHealth::Ready);
        s.run(500);
        assert_eq!(s.engines[&m].role, Role::Replica);
        s.assert_no_acknowledged_write_lost();
    }
    assert_eq!(s.record.term, 5);
}

#[test]
fn operator_restart_in_every_step_resumes() {
    for stop_after_passes in 1..6 {
        let mut s = Sim::new(Mode::SemiSync);
        s.run(300);
        s.kill(A);
        s.pods.insert(A.into(), PodHealth::Missing);
        for _ in 0..stop_after_passes {
            s.pass();
            s.now += 10;
        }
        // Restart: in-memory probe history is lost, the record in status survives.
        s.probe_failing_since.clear();
        s.run(1_000);
        assert_eq!(s.master(), B, "restart after {stop_after_passes} passes");
        assert_eq!(s.service.as_deref(), Some(B));
        assert_eq!(s.record.term, 2, "the initial term and one promotion");
        assert!(s.record.failover.is_none());
        s.assert_no_acknowledged_write_lost();
    }
}

#[test]
fn failover_disabled_only_reports() {
    let mut s = Sim::new(Mode::SemiSync);
    s.policy.enabled = false;
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::Missing);
    s.run(2_000);
    assert_eq!(s.master(), A);
    assert!(s.events.contains(&"FailoverDisabled"));
}

#[test]
fn async_mode_fails_over_and_may_lose_the_tail() {
    let mut s = Sim::new(Mode::Async);
    s.run(300);
    s.kill(A);
    s.pods.insert(A.into(), PodHealth::Missing);
    s.run(500);
    // Promoted, but not writable before the old master's lease has certainly lapsed.
    assert_eq!(s.engines[B].role, Role::Master);
    assert_eq!(s.master(), A);
    assert_eq!(s.service, None);
    assert!(s.events.contains(&"LeaseWait"));
    s.run(LEASE + LEASE_MARGIN_MS);
    assert_eq!(s.master(), B);
    assert_eq!(s.service.as_deref(), Some(B));
}

/// The old master's engine is alive and its replica still acknowledges it (renewing its
/// lease), but the operator lost it (its node is NotReady, the operator cannot reach it). A
/// client on its side keeps writing straight to it. In async mode the promoted replica must
/// not accept a write before the old master has stopped accepting them: never two writable
/// masters.
#[test]
fn async_failover_waits_for_the_old_masters_lease() {
    let mut s = Sim::new(Mode::Async);
    s.run(500);
    s.engines.get_mut(A).unwrap().cut_from_operator = true;
    s.nodes_ready.insert(A.into(), false);
    let end = s.now + 10_000;
    while s.now < end {
        s.write_to(A);
        s.run(10);
    }
    assert_eq!(s.master(), B);
    let last_on_a = s
        .acked_by
        .iter()
        .filter(|(_, e, _)| e == A)
        .map(|(_, _, t)| *t)
        .max()
        .unwrap();
    let first_on_b = s
        .acked_by
        .iter()
        .filter(|(_, e, _)| e == B)
        .map(|(_, _, t)| *t)
        .min()
        .expect("the new master accepted writes");
    assert!(
        last_on_a < first_on_b,
        "old master acknowledged at {last_on_a}, new master already at {first_on_b}"
    );
}

#[test]
fn async_lease_wait_is_recorded_extended_by_late_grants_and_absent_in_semi_sync() {
    let policy = Policy {
        enabled: true,
        detection_ms: 2_000,
        allow_data_loss: false,
        mode: Mode::Async,
        write_lease_ms: LEASE,
        delete_claim_on_node_loss: true,
    };
    let progress = Progress {
        step: Step::Promoting,
        from: A.into(),
        to: B.into(),
        term: 2,
        reason: "pod cache-a is gone".into(),
        planned: false,
        started_ms: 10_000,
        writable_after_ms: None,
    };
    let record = Record {
        term: 1,
        target_master: Some(A.into()),
        failover: Some(progress),
        ..Default::default()
    };
    let mut obs = table_obs();
    obs.members[1].report.as_mut().unwrap().role = Role::Master;
    obs.members[1].report.as_mut().unwrap().term = 2;
    obs.members[0].report = None;
    let d = decide(&policy, &record, &obs, 10_100);
    let until = 10_100 + LEASE + LEASE_MARGIN_MS;
    assert_eq!(
        d.record.failover.as_ref().unwrap().writable_after_ms,
        Some(until)
    );
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Promoting);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::GrantLease { .. })));
    // Still waiting just before; a grant the operator made late moves the wait later.
    let d2 = decide(&policy, &d.record, &obs, until - 1);
    assert_eq!(d2.record.failover.as_ref().unwrap().step, Step::Promoting);
    obs.members[0].lease_granted_ms = Some(11_000);
    let d3 = decide(&policy, &d.record, &obs, until);
    assert_eq!(
        d3.record.failover.as_ref().unwrap().writable_after_ms,
        Some(11_000 + LEASE + LEASE_MARGIN_MS)
    );
    obs.members[0].lease_granted_ms = None;
    let d4 = decide(&policy, &d.record, &obs, until);
    assert_eq!(d4.record.failover.as_ref().unwrap().step, Step::Switching);
    assert!(d4.actions.contains(&Action::GrantLease { pod: B.into() }));
    // Semi-sync: the acknowledgement argument holds, no wait.
    let semi = Policy {
        mode: Mode::SemiSync,
        ..policy
    };
    let d5 = decide(&semi, &record, &obs, 10_100);
    assert_eq!(d5.record.failover.as_ref().unwrap().step, Step::Switching);
    assert_eq!(d5.record.failover.as_ref().unwrap().writable_after_ms, None);

    // A restarted operator: the wait its predecessor recorded is on another process's clock
    // and, read on this one's, already over. This process started at 50_000: every grant
    // its predecessor (or the replica, before the recorded promotion) made came before, so
    // the old lease has lapsed by 50_000 + lease + margin, and not necessarily before.
    let mut restarted = obs.clone();
    restarted.operator_started_ms = 50_000;
    let d6 = decide(&policy, &d.record, &restarted, 50_100);
    assert_eq!(d6.record.failover.as_ref().unwrap().step, Step::Promoting);
    assert_eq!(
        d6.record.failover.as_ref().unwrap().writable_after_ms,
        Some(50_000 + LEASE + LEASE_MARGIN_MS)
    );
    let d7 = decide(
        &policy,
        &d6.record,
        &restarted,
        50_000 + LEASE + LEASE_MARGIN_MS,
    );
    assert_eq!(d7.record.failover.as_ref().unwrap().step, Step::Switching);
}

/// A two-member observation: A master and B its replica, both in term 1, Ready and linked.
fn table_obs() -> Observation {
    let member = |pod: &str, role: Role| Member {
        pod: pod.into(),
        pod_health: PodHealth::Ready,
        node_ready: Some(true),
        node_not_ready_ms: None,
        report: Some(EngineReport {
            role,
            term: 1,
            offset: 100,
            link_up: role == Role::Replica,
            degraded: false,
            following: (role == Role::Replica).then(|| A.to_string()),
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
    };
    Observation {
        migration: None,
        members: vec![member(A, Role::Master), member(B, Role::Replica)],
        service_selects: Some(A.into()),
        switchover_requested: false,
        force_failover_requested: None,
        operator_started_ms: 0,
    }
}

fn table_record() -> Record {
    Record {
        term: 1,
        target_master: Some(A.into()),
        ready_term: Some(1),
        ..Default::default()
    }
}

fn has_event(d: &Decision, reason: &str) -> bool {
    d.actions
        .iter()
        .any(|a| matches!(a, Action::Event { reason: r, .. } if *r == reason))
}

#[test]
fn terminating_master_hands_over_without_losing_writes() {
    for mode in [Mode::SemiSync, Mode::Async, Mode::Sync] {
        let mut s = Sim::new(mode);
        s.run(500);
        // `kubectl delete pod`: the pod is Terminating, its engine keeps running (preStop).
        s.pods.insert(A.into(), PodHealth::Terminating);
        s.run(1_000);
        assert_eq!(s.master(), B, "{mode:?}");
        assert_eq!(s.service.as_deref(), Some(B));
        assert!(s.events.contains(&"HandoverStarted"));
        assert!(s.events.contains(&"SwitchoverCompleted"));
        assert!(!s.events.contains(&"FailoverStarted"));
        // What the preStop hook waits for: the old engine is a replica of the new master.
        assert_eq!(s.engines[A].role, Role::Replica);
        assert_eq!(s.engines[A].following.as_deref(), Some(B));
        s.assert_no_acknowledged_write_lost();
        // Even in async mode: every acknowledged write is on the new master.
        assert!(s.acknowledged.len() > 50);
    }
}

#[test]
fn terminating_master_that_cannot_hand_over_is_failed_over() {
    // Unreachable: failover at once.
    let mut s = Sim::new(Mode::SemiSync);
    s.run(300);
    s.pods.insert(A.into(), PodHealth::Terminating);
    s.kill(A);
    s.run(500);
    assert_eq!(s.master(), B);
    assert!(s.events.contains(&"FailoverStarted"));
    assert!(!s.events.contains(&"HandoverStarted"));
    s.assert_no_acknowledged_write_lost();
    // Replica not linked / degraded: no hand-over either (table).
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::Terminating;
    obs.members[1].report.as_mut().unwrap().link_up = false;
    let policy = s.policy;
    let d = decide(&policy, &table_record(), &obs, 0);
    assert!(has_event(&d, "FailoverStarted"));
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::Terminating;
    let degraded = Record {
        degrade_authorized_term: Some(1),
        ..table_record()
    };
    let d = decide(&policy, &degraded, &obs, 0);
    assert!(has_event(&d, "FailoverBlocked"));
    // Healthy pair, master Terminating: hand-over.
    let d = decide(&policy, &table_record(), &obs, 0);
    assert!(has_event(&d, "HandoverStarted"));
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Pausing);
    assert!(d.record.failover.as_ref().unwrap().planned);
}

#[test]
fn pausing_trusts_only_the_offset_read_after_the_pause() {
    let policy = Sim::new(Mode::Async).policy;
    let mut record = table_record();
    record.failover = Some(Progress {
        step: Step::Pausing,
        from: A.into(),
        to: B.into(),
        term: 2,
        reason: "switchover requested".into(),
        planned: true,
        started_ms: 0,
        writable_after_ms: None,
    });
    let mut obs = table_obs();
    // The probe (stale) says the replica caught up; no offset after the pause yet: wait.
    let d = decide(&policy, &record, &obs, 100);
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Pausing);
    assert!(d.actions.contains(&Action::PauseWrites { pod: A.into() }));
    // The master accepted more before the pause took effect: still wait.
    obs.members[0].paused_offset = Some(120);
    let d = decide(&policy, &record, &obs, 200);
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Pausing);
    // Caught up: promote in the same pass, keeping the master paused.
    obs.members[1].report.as_mut().unwrap().offset = 120;
    let d = decide(&policy, &record, &obs, 300);
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Promoting);
    assert!(d.actions.contains(&Action::PauseWrites { pod: A.into() }));
    assert!(d.actions.contains(&Action::Promote {
        pod: B.into(),
        term: 2
    }));
    // Never caught up: a switchover is given up, a hand-over becomes a failover.
    obs.members[1].report.as_mut().unwrap().offset = 110;
    let d = decide(&policy, &record, &obs, PAUSE_TIMEOUT_MS);
    assert!(d.record.failover.is_none());
    assert!(has_event(&d, "SwitchoverAborted"));
    obs.members[0].pod_health = PodHealth::Terminating;
    let d = decide(&policy, &record, &obs, PAUSE_TIMEOUT_MS);
    let f = d.record.failover.as_ref().unwrap();
    assert_eq!((f.step, f.planned), (Step::Fencing, false));
}

#[test]
fn forced_failover_overrides_the_rules_once() {
    // A healthy master, a degrade authorised, failover disabled: forced anyway.
    let mut s = Sim::new(Mode::SemiSync);
    s.policy.enabled = false;
    s.run(300);
    s.record.degrade_authorized_term = Some(s.record.term);
    s.force = Some("req-1".into());
    s.run(500);
    assert_eq!(s.master(), B);
    assert_eq!(s.record.term, 2);
    assert_eq!(s.record.force_failover_handled.as_deref(), Some("req-1"));
    assert!(s.events.contains(&"ForcedFailoverStarted"));
    assert!(s.force.is_none(), "annotation cleared");
    assert_eq!(s.engines[A].role, Role::Replica, "old master demoted");
    // The same request id again (annotation re-applied): not repeated.
    s.force = Some("req-1".into());
    s.run(500);
    assert_eq!(s.master(), B);
    assert_eq!(s.record.term, 2);
}

#[test]
fn forced_failover_fences_first_and_is_refused_without_a_usable_replica() {
    let policy = Sim::new(Mode::SemiSync).policy;
    let mut obs = table_obs();
    obs.force_failover_requested = Some("req-2".into());
    let d = decide(&policy, &table_record(), &obs, 0);
    let f = d.record.failover.as_ref().unwrap();
    assert_eq!(
        (f.step, f.planned, f.to.as_str()),
        (Step::Fencing, false, B)
    );
    assert_eq!(d.record.force_failover_handled.as_deref(), Some("req-2"));
    // Intent before action: the record carries the failover; the actions fence the old master
    // and select nothing before anything is promoted.
    assert!(d.actions.contains(&Action::Fence { pod: A.into() }));
    assert!(d.actions.contains(&Action::SelectMaster(None)));
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::Promote { .. })));
    // Already handled: nothing happens.
    let d2 = decide(&policy, &d.record.clone().tap_clear(), &obs, 10);
    assert!(d2.record.failover.is_none());
    // Unreachable replica: refused, consumed, the master stays.
    obs.members[1].report = None;
    let d = decide(&policy, &table_record(), &obs, 0);
    assert!(d.record.failover.is_none());
    assert!(has_event(&d, "ForcedFailoverRefused"));
    assert_eq!(d.record.force_failover_handled.as_deref(), Some("req-2"));
    assert!(d.actions.contains(&Action::ClearForceFailoverRequest));
    // Gone replica: refused too.
    obs.members.truncate(1);
    let d = decide(&policy, &table_record(), &obs, 0);
    assert!(has_event(&d, "ForcedFailoverRefused"));
}

trait ClearFailover {
    fn tap_clear(self) -> Self;
}

impl ClearFailover for Record {
    /// The record after the failover finished (its handled request id kept).
    fn tap_clear(mut self) -> Record {
        self.failover = None;
        self
    }
}

#[test]
fn replica_still_in_first_sync_is_not_promoted() {
    let mut s = Sim::new(Mode::SemiSync);
    s.switchover = true;
    s.run(500);
    assert_eq!(s.record.term, 2);
    // A is replaced by a fresh pod that has not finished its first sync (term 0).
    let obs = {
        let mut o = s.observe();
        for m in &mut o.members {
            if m.pod == A {
                let r = m.report.as_mut().unwrap();
                r.term = 0;
                r.link_up = false;
            }
            if m.pod == B {
                m.pod_health = PodHealth::Missing;
                m.report = None;
            }
        }
        o
    };
    let d = decide(&s.policy, &s.record, &obs, s.now);
    assert!(d.record.failover.is_none());
    assert!(d.actions.iter().any(|a| matches!(
        a,
        Action::Event {
            reason: "FailoverImpossible",
            ..
        }
    )));
}

// --- Rollout of a changed pod spec ------------------------------------------------------------

fn actions_replace(d: &Decision) -> Vec<&str> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::ReplacePod { pod } => Some(pod.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn rollout_replaces_the_replica_then_switches_over_then_replaces_the_old_master() {
    for mode in [Mode::SemiSync, Mode::Async, Mode::Sync] {
        let mut s = Sim::new(mode);
        s.run(1_000);
        // The user edits spec.image: both pods are outdated.
        s.outdated = BTreeSet::from([A.to_string(), B.to_string()]);
        s.run(20_000);
        assert_eq!(
            s.replaced,
            [B, A],
            "{mode:?}: replica first, then the old master"
        );
        assert!(s.outdated.is_empty(), "{mode:?}");
        assert_eq!(s.master(), B, "{mode:?}: switched over once");
        assert_eq!(s.record.term, 2, "{mode:?}");
        assert_eq!(s.record.rollout, None, "{mode:?}");
        let order: Vec<&str> = s
            .events
            .iter()
            .copied()
            .filter(|e| {
                [
                    "RolloutStarted",
                    "RolloutReplacingPod",
                    "PodReplaced",
                    "SwitchoverStarted",
                    "SwitchoverCompleted",
                    "RolloutFinished",
                ]
                .contains(e)
            })
            .collect();
        assert_eq!(
            order,
            [
                "RolloutStarted",
                "RolloutReplacingPod",
                "PodReplaced",
                "SwitchoverStarted",
                "SwitchoverCompleted",
                "RolloutReplacingPod",
                "PodReplaced",
                "RolloutFinished",
            ],
            "{mode:?}"
        );
        s.assert_no_acknowledged_write_lost();
        // The pair is Ready again and writes go on.
        let before = s.acknowledged.len();
        s.run(1_000);
        assert!(s.acknowledged.len() > before, "{mode:?}");
        let obs = s.observe();
        let d = decide(&s.policy, &s.record, &obs, s.now);
        assert_eq!(d.phase, Phase::Ready, "{mode:?}");
    }
}

#[test]
fn rollout_of_an_outdated_master_alone_starts_with_the_switchover() {
    let mut obs = table_obs();
    obs.members[0].outdated = true;
    let d = decide(&Policy::table(), &table_record(), &obs, 5_000);
    assert!(has_event(&d, "RolloutStarted"));
    assert_eq!(
        d.record.rollout,
        Some(Rollout {
            step: RolloutStep::Switchover,
            pod: A.into(),
            started_ms: 5_000
        })
    );
    let f = d.record.failover.as_ref().unwrap();
    assert_eq!(
        (f.step, f.from.as_str(), f.to.as_str()),
        (Step::Pausing, A, B)
    );
    assert!(d.actions.contains(&Action::PauseWrites { pod: A.into() }));
    assert!(actions_replace(&d).is_empty());
    // An up-to-date pair does nothing.
    let d = decide(&Policy::table(), &table_record(), &table_obs(), 5_000);
    assert_eq!((d.record.rollout, d.phase), (None, Phase::Ready));
}

#[test]
fn rollout_does_not_start_on_a_pair_that_is_not_healthy() {
    let outdated = || {
        let mut obs = table_obs();
        obs.members[0].outdated = true;
        obs.members[1].outdated = true;
        obs
    };
    // Healthy: the replica goes first.
    let d = decide(&Policy::table(), &table_record(), &outdated(), 5_000);
    assert_eq!(actions_replace(&d), [B]);
    assert_eq!(d.phase, Phase::Upgrading);
    assert_eq!(
        d.record.rollout.as_ref().map(|r| (r.step, r.pod.as_str())),
        Some((RolloutStep::ReplacingReplica, B))
    );
    let blocked: Vec<(&str, Observation, Record)> = vec![
        (
            "master degraded",
            {
                let mut o = outdated();
                o.members[0].report.as_mut().unwrap().degraded = true;
                o
            },
            Record {
                degrade_authorized_term: Some(1),
                ..table_record()
            },
        ),
        (
            "replica link down",
            {
                let mut o = outdated();
                o.members[1].report.as_mut().unwrap().link_up = false;
                o
            },
            table_record(),
        ),
        (
            "replica in an older term",
            {
                let mut o = outdated();
                o.members[1].report.as_mut().unwrap().term = 0;
                o
            },
            table_record(),
        ),
        (
            "replica not ready",
            {
                let mut o = outdated();
                o.members[1].pod_health = PodHealth::NotReady;
                o
            },
            table_record(),
        ),
        (
            "master gone",
            {
                let mut o = outdated();
                o.members[0].pod_health = PodHealth::Missing;
                o.members[0].report = None;
                o
            },
            table_record(),
        ),
        (
            "failover in progress",
            outdated(),
            Record {
                failover: Some(Progress {
                    step: Step::Promoting,
                    from: A.into(),
                    to: B.into(),
                    term: 2,
                    reason: "x".into(),
                    planned: false,
                    started_ms: 4_000,
                    writable_after_ms: None,
                }),
                ..table_record()
            },
        ),
        (
            "a pod fenced",
            {
                let mut o = outdated();
                o.members[1].fenced = true;
                o
            },
            table_record(),
        ),
    ];
    for (case, obs, record) in blocked {
        let d = decide(&Policy::table(), &record, &obs, 5_000);
        assert!(actions_replace(&d).is_empty(), "{case}");
        assert!(!has_event(&d, "RolloutStarted"), "{case}");
        assert_eq!(d.record.rollout, None, "{case}");
    }
    // A switchover the user requested goes first; the rollout waits for it.
    let mut o = outdated();
    o.switchover_requested = true;
    let d = decide(&Policy::table(), &table_record(), &o, 5_000);
    assert!(has_event(&d, "SwitchoverStarted"));
    assert_eq!(d.record.rollout, None);
}

#[test]
fn rollout_resumes_every_step_after_an_operator_restart() {
    let policy = Policy::table();
    let rollout = |step, pod: &str| Rollout {
        step,
        pod: pod.into(),
        started_ms: 1_000,
    };
    let mut obs = table_obs();
    obs.members[0].outdated = true;
    obs.members[1].outdated = true;
    // Recorded, then the operator stopped before deleting the replica: delete it now.
    let record = Record {
        rollout: Some(rollout(RolloutStep::ReplacingReplica, B)),
        ..table_record()
    };
    let d = decide(&policy, &record, &obs, 5_000);
    assert_eq!(actions_replace(&d), [B]);
    assert_eq!(d.record.rollout, record.rollout);
    assert_eq!(d.phase, Phase::Upgrading);

    // The replica is gone: the machine authorises the degrade (semi-sync) and the rollout
    // waits, deleting nothing else.
    let mut gone = obs.clone();
    gone.members[1].pod_health = PodHealth::Missing;
    gone.members[1].report = None;
    gone.members[1].outdated = false;
    let d = decide(&policy, &record, &gone, 5_000);
    assert!(actions_replace(&d).is_empty());
    assert!(d.actions.contains(&Action::AuthorizeDegrade {
        pod: A.into(),
        term: 1
    }));
    assert_eq!(d.phase, Phase::Upgrading);
    assert_eq!(d.record.rollout, record.rollout);

    // Back but not caught up yet (the master still degraded): wait.
    let mut back = obs.clone();
    back.members[1].outdated = false;
    back.members[0].report.as_mut().unwrap().degraded = true;
    let degraded = Record {
        degrade_authorized_term: Some(1),
        ..record.clone()
    };
    let d = decide(&policy, &degraded, &back, 5_000);
    assert!(actions_replace(&d).is_empty());
    assert!(!has_event(&d, "PodReplaced"));
    assert_eq!(d.record.rollout, record.rollout);

    // In sync again: the old master is switched away from.
    back.members[0].report.as_mut().unwrap().degraded = false;
    let d = decide(&policy, &record, &back, 5_000);
    assert!(has_event(&d, "PodReplaced"));
    assert_eq!(
        d.record.rollout,
        Some(rollout(RolloutStep::Switchover, A)),
        "started time is kept"
    );
    assert_eq!(d.record.failover.as_ref().unwrap().step, Step::Pausing);

    // Restarted after the switchover completed: B is master, A (outdated) its replica.
    let mut after = table_obs();
    after.members[0].report = Some(EngineReport {
        role: Role::Replica,
        term: 2,
        offset: 100,
        link_up: true,
        degraded: false,
        following: Some(B.into()),
        detached_no_history: false,
        cannot_persist: false,
    });
    after.members[1].report = Some(EngineReport {
        role: Role::Master,
        term: 2,
        offset: 100,
        link_up: false,
        degraded: false,
        following: None,
        detached_no_history: false,
        cannot_persist: false,
    });
    after.members[0].outdated = true;
    after.service_selects = Some(B.into());
    let switched = Record {
        term: 2,
        target_master: Some(B.into()),
        rollout: Some(rollout(RolloutStep::Switchover, A)),
        ..Default::default()
    };
    let d = decide(&policy, &switched, &after, 5_000);
    assert_eq!(actions_replace(&d), [A]);
    assert_eq!(
        d.record.rollout,
        Some(rollout(RolloutStep::ReplacingReplica, A))
    );

    // A replaced and in sync: finished.
    after.members[0].outdated = false;
    let d = decide(&policy, &d.record, &after, 5_000);
    assert!(has_event(&d, "PodReplaced"));
    assert!(has_event(&d, "RolloutFinished"));
    assert_eq!((d.record.rollout.clone(), d.phase), (None, Phase::Ready));

    // A failover made the pod being replaced master: switch away from it first.
    let odd = Record {
        rollout: Some(rollout(RolloutStep::ReplacingReplica, A)),
        ..table_record()
    };
    let d = decide(&policy, &odd, &obs, 5_000);
    assert!(actions_replace(&d).is_empty());
    assert_eq!(d.record.rollout, Some(rollout(RolloutStep::Switchover, A)));
}

impl Policy {
    fn table() -> Policy {
        Policy {
            enabled: true,
            detection_ms: 2_000,
            allow_data_loss: false,
            mode: Mode::SemiSync,
            write_lease_ms: LEASE,
            delete_claim_on_node_loss: true,
        }
    }
}

/// The first election waits for both engines' reports: electing the first that answers could
/// make an empty engine master over one holding data (a pair re-created over retained volumes).
#[test]
fn initial_election_waits_for_every_member_then_ranks_by_data() {
    let mut obs = table_obs();
    obs.service_selects = None;
    for m in &mut obs.members {
        let r = m.report.as_mut().unwrap();
        r.role = Role::Master;
        r.link_up = false;
        r.following = None;
    }
    // B (empty) answered; A (term 3, with data) has not been probed yet, or only just failed.
    obs.members[1].report.as_mut().unwrap().term = 0;
    obs.members[1].report.as_mut().unwrap().offset = 0;
    let with_data = obs.members[0].report.take().map(|mut r| {
        r.term = 3;
        r
    });
    let policy = Policy {
        enabled: true,
        detection_ms: 2_000,
        allow_data_loss: false,
        mode: Mode::SemiSync,
        write_lease_ms: LEASE,
        delete_claim_on_node_loss: true,
    };
    let record = Record::default();
    let d = decide(&policy, &record, &obs, 10_000);
    assert!(d.record.failover.is_none(), "elected before A answered");
    assert_eq!(d.phase, Phase::Creating);
    obs.members[0].probe_failing_since_ms = Some(9_000);
    let d = decide(&policy, &record, &obs, 10_000);
    assert!(
        d.record.failover.is_none(),
        "elected while A only just failed"
    );

    // A answers: it holds the higher term and is elected, into a term above it.
    obs.members[0].report = with_data;
    obs.members[0].probe_failing_since_ms = None;
    let d = decide(&policy, &record, &obs, 10_000);
    let p = d.record.failover.expect("elected");
    assert_eq!((p.to.as_str(), p.term), (A, 4));

    // A never comes up: after the wait, B is elected alone.
    obs.members[0].report = None;
    obs.members[0].probe_failing_since_ms = Some(9_000);
    let d = decide(&policy, &record, &obs, 9_000 + INITIAL_ELECTION_WAIT_MS);
    assert_eq!(d.record.failover.expect("elected").to, B);
}

#[test]
fn a_new_pair_is_creating_not_failed_until_its_master_was_ready() {
    let policy = Policy::table();
    // Right after the initial election: A is master of term 1, its pod not Ready yet (the
    // kubelet has not run the readiness probe), B still in its first sync (term 0).
    let record = Record {
        ready_term: None,
        ..table_record()
    };
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::NotReady;
    obs.members[1].pod_health = PodHealth::NotReady;
    obs.members[1].report.as_mut().unwrap().term = 0;
    obs.members[1].report.as_mut().unwrap().link_up = false;
    let d = decide(&policy, &record, &obs, 5_000);
    assert!(!has_event(&d, "FailoverImpossible"), "{:?}", d.actions);
    assert!(!has_event(&d, "FailoverStarted"));
    assert_eq!(d.phase, Phase::Creating);
    assert_eq!(d.record.ready_term, None);
    assert_eq!(d.record.failover, None);

    // Both engines answer as a linked pair but the kubelet has not marked the pods Ready
    // yet: still Creating (Ready is what hack/demo.sh and users wait for).
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::NotReady;
    obs.members[1].pod_health = PodHealth::NotReady;
    let d = decide(&policy, &record, &obs, 5_500);
    assert_eq!(d.phase, Phase::Creating);
    assert_eq!(d.record.ready_term, None);
    // Both pods Ready and the replica linked, but it has not taken the master's term yet
    // (its first sync is under way): still Creating. It said Ready here, and went back to
    // Creating when the first sync's link drop made it Degraded: the first demo of issue 19
    // showed the events "phase Creating → Ready", "phase Ready → Creating", then Ready.
    let mut obs = table_obs();
    obs.members[1].report.as_mut().unwrap().term = 0;
    let d = decide(&policy, &record, &obs, 5_600);
    assert_eq!(d.phase, Phase::Creating);
    assert_eq!(d.record.ready_term, None);

    // Both pods Ready, the replica linked in term 1: Ready, and the record remembers it.
    let d = decide(&policy, &record, &table_obs(), 6_000);
    assert_eq!(d.phase, Phase::Ready);
    assert_eq!(d.record.ready_term, Some(1));

    // From then on, a master pod that turns not Ready is a failed master (killed and
    // restarting, hung): failover at once, as before.
    let ready = d.record.clone();
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::NotReady;
    let d = decide(&policy, &ready, &obs, 7_000);
    assert!(has_event(&d, "FailoverStarted"), "{:?}", d.actions);

    // Before it was ever Ready, a master that does not answer is failed too: the relief is
    // only for one that answers as the master of the term.
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::NotReady;
    obs.members[0].report = None;
    obs.members[0].probe_failing_since_ms = Some(1_000);
    let d = decide(&policy, &record, &obs, 7_000);
    assert!(has_event(&d, "FailoverStarted"), "{:?}", d.actions);
}

#[test]
fn a_replica_not_probed_yet_is_waited_for_not_declared_unusable() {
    // An operator that just took over (its predecessor died with the master's node) sees the
    // master's pod not Ready (the node controller marked it) before its own prober has
    // answered for the replica. The replica holds every acknowledged write: wait for its
    // report instead of going Failed with FailoverImpossible.
    let policy = Policy::table();
    let mut obs = table_obs();
    obs.members[0].pod_health = PodHealth::NotReady;
    obs.members[0].node_ready = Some(false);
    obs.members[0].report = None;
    obs.members[1].report = None;
    let d = decide(&policy, &table_record(), &obs, 5_000);
    assert!(!has_event(&d, "FailoverImpossible"), "{:?}", d.actions);
    assert_eq!(d.phase, Phase::FailingOver);
    assert_eq!(d.record.failover, None);
    assert!(d.actions.is_empty(), "{:?}", d.actions);

    // Its report arrives (link down, as in any node loss): it is promoted.
    let mut reported = obs.clone();
    reported.members[1] = table_obs().members[1].clone();
    reported.members[1].report.as_mut().unwrap().link_up = false;
    let d = decide(&policy, &table_record(), &reported, 5_300);
    assert!(has_event(&d, "FailoverStarted"), "{:?}", d.actions);
    assert_eq!(d.record.failover.as_ref().unwrap().to, B);

    // A replica whose probes keep failing past the window is unusable, as before.
    let mut silent = obs.clone();
    silent.members[1].probe_failing_since_ms = Some(1_000);
    let d = decide(&policy, &table_record(), &silent, 5_000);
    assert!(has_event(&d, "FailoverImpossible"), "{:?}", d.actions);
    assert_eq!(d.phase, Phase::Failed);
}

#[test]
fn a_fenced_master_takes_no_writes_even_when_no_failover_can_follow() {
    let policy = Policy::table();
    let mut obs = table_obs();
    obs.members[0].fenced = true;
    // A usable replica: the ordinary failover (the fenced master is never master again).
    let d = decide(&policy, &table_record(), &obs, 5_000);
    assert!(has_event(&d, "FailoverStarted"), "{:?}", d.actions);
    // The replica is down: no failover possible, but the fenced master still leaves the
    // Service and is paused, on every pass.
    obs.members[1].pod_health = PodHealth::Missing;
    obs.members[1].report = None;
    for now in [5_000, 6_000] {
        let d = decide(&policy, &table_record(), &obs, now);
        assert!(has_event(&d, "FailoverImpossible"), "{:?}", d.actions);
        assert!(d.actions.contains(&Action::SelectMaster(None)));
        assert!(d.actions.contains(&Action::Fence { pod: A.into() }));
        assert!(!d.actions.contains(&Action::SelectMaster(Some(A.into()))));
    }
    // Failover disabled: the same.
    let disabled = Policy {
        enabled: false,
        ..policy
    };
    let d = decide(&disabled, &table_record(), &obs, 7_000);
    assert!(d.actions.contains(&Action::SelectMaster(None)));
    assert!(d.actions.contains(&Action::Fence { pod: A.into() }));
}

#[test]
fn a_replica_lost_with_its_node_is_replaced_recorded_first_never_the_master() {
    for delete_claim in [true, false] {
        let mut s = Sim::new(Mode::SemiSync);
        s.policy.delete_claim_on_node_loss = delete_claim;
        s.run(300);
        // The replica's node dies.
        s.nodes_ready.insert(B.into(), false);
        s.kill(B);
        s.run(200);
        // NotReady is not yet lost: nothing is replaced within the grace.
        s.run(repair::NODE_LOSS_GRACE_MS - 500);
        assert!(s.deleted_lost.is_empty(), "{:?}", s.deleted_lost);
        assert!(!s.events.contains(&"ReplacingPod"));
        s.run(1_000);
        // Recorded before the action, then carried out.
        assert_eq!(s.deleted_lost.first(), Some(&(B.to_string(), delete_claim)));
        assert!(s.events.contains(&"ReplacingPod"));
        s.run(3_000);
        // Recreated, back as the replica of the term, and the record cleared.
        assert_eq!(s.master(), A);
        assert_eq!(s.engines[B].role, Role::Replica);
        assert!(s.link_up(B), "{:?}", s.engines[B]);
        assert!(s.events.contains(&"LostPodReplaced"));
        assert_eq!(s.record.repair, None);
        s.assert_no_acknowledged_write_lost();
    }
}

/// An apiserver outage longer than the node controller's grace: every node NotReady for a
/// few seconds once it is back, and the replica's engine (killed by the same round) not
/// answering either. Nothing is replaced: no claim deleted, no full sync.
#[test]
fn nodes_briefly_notready_after_an_apiserver_outage_replace_nothing() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(300);
    s.kill(B);
    s.nodes_ready.insert(A.into(), false);
    s.nodes_ready.insert(B.into(), false);
    s.run(10_000);
    s.nodes_ready.insert(A.into(), true);
    s.nodes_ready.insert(B.into(), true);
    let e = s.engines.get_mut(B).unwrap();
    e.alive = true;
    e.reachable = true;
    s.run(5_000);
    assert!(s.deleted_lost.is_empty(), "{:?}", s.deleted_lost);
    assert!(!s.events.contains(&"ReplacingPod"));
    assert!(s.link_up(B) || s.engines[B].role == Role::Master);
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn the_masters_lost_node_is_a_failover_first_then_a_replacement() {
    let mut s = Sim::new(Mode::SemiSync);
    s.run(300);
    s.nodes_ready.insert(A.into(), false);
    s.kill(A);
    s.run(3_000 + repair::NODE_LOSS_GRACE_MS);
    assert_eq!(s.master(), B);
    // Only after the failover moved the role away is the old master's pod replaced.
    assert_eq!(s.deleted_lost.first().map(|(p, _)| p.as_str()), Some(A));
    assert_eq!(s.engines[A].role, Role::Replica);
    assert!(s.link_up(A));
    s.assert_no_acknowledged_write_lost();
}

#[test]
fn a_repair_is_resumed_after_an_operator_restart_and_voided_when_its_reason_is() {
    let policy = Policy::table();
    let repair = Repair {
        pod: B.into(),
        uid: Some("uid-b".into()),
        kind: RepairKind::ReplacePod { delete_claim: true },
        reason: "node lost".into(),
        started_ms: 1_000,
    };
    let record = Record {
        repair: Some(repair.clone()),
        ..table_record()
    };
    // The operator restarted after recording it: the deletion is repeated, for that pod object.
    let mut obs = table_obs();
    obs.members[1].uid = Some("uid-b".into());
    obs.members[1].node_ready = Some(false);
    let d = decide(&policy, &record, &obs, 5_000);
    assert!(d.actions.contains(&Action::DeleteLostPod {
        pod: B.into(),
        uid: Some("uid-b".into()),
        delete_claim: true
    }));
    assert_eq!(d.record.repair, Some(repair.clone()));
    // A new pod object under the name: done.
    obs.members[1].uid = Some("uid-b2".into());
    obs.members[1].node_ready = Some(true);
    let d = decide(&policy, &record, &obs, 6_000);
    assert_eq!(d.record.repair, None);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteLostPod { .. })));

    // A full sync ordered from cache-a in term 1 is void once a failover started.
    let full = Record {
        repair: Some(Repair {
            kind: RepairKind::FullSync {
                master: A.into(),
                term: 1,
            },
            ..repair
        }),
        failover: Some(Progress {
            step: Step::Fencing,
            from: A.into(),
            to: B.into(),
            term: 2,
            reason: String::new(),
            planned: false,
            started_ms: 0,
            writable_after_ms: None,
        }),
        ..table_record()
    };
    let d = decide(&policy, &full, &table_obs(), 7_000);
    assert_eq!(d.record.repair, None);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::OrderFullSync { .. })));
}

#[test]
fn a_detached_replica_is_resynced_only_from_a_master_of_the_current_term() {
    let policy = Policy::table();
    let mut obs = table_obs();
    {
        let r = obs.members[1].report.as_mut().unwrap();
        r.link_up = false;
        r.detached_no_history = true;
    }
    let d = decide(&policy, &table_record(), &obs, 5_000);
    assert!(d.actions.contains(&Action::OrderFullSync {
        pod: B.into(),
        master: A.into(),
        term: 1
    }));
    assert!(matches!(
        d.record.repair.as_ref().map(|r| &r.kind),
        Some(RepairKind::FullSync { .. })
    ));
    assert!(has_event(&d, "FullSyncOrdered"));
    // A master that came back empty reports a lower term: no full sync from it (it is failed
    // over instead).
    let mut empty = obs.clone();
    empty.members[0].report.as_mut().unwrap().term = 0;
    let d = decide(&policy, &table_record(), &empty, 5_000);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::OrderFullSync { .. })));
    // Never in term 0.
    let term0 = Record {
        term: 0,
        ..table_record()
    };
    let mut obs0 = obs.clone();
    obs0.members[0].report.as_mut().unwrap().term = 0;
    let d = decide(&policy, &term0, &obs0, 5_000);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::OrderFullSync { .. })));
    // Once the replica is linked again in the term, the record is cleared.
    let ordered = decide(&policy, &table_record(), &obs, 5_000).record;
    let done = decide(&policy, &ordered, &table_obs(), 6_000);
    assert_eq!(done.record.repair, None);
    assert!(has_event(&done, "FullSyncDone"));
}

#[test]
fn a_master_that_cannot_persist_is_failed_over_and_a_replica_that_cannot_is_degraded_around() {
    let policy = Policy::table();
    let mut obs = table_obs();
    obs.members[0].report.as_mut().unwrap().cannot_persist = true;
    let d = decide(&policy, &table_record(), &obs, 5_000);
    assert!(has_event(&d, "FailoverStarted"), "{:?}", d.actions);
    assert_eq!(d.record.failover.as_ref().unwrap().to, B);
    let mut obs = table_obs();
    obs.members[1].report.as_mut().unwrap().cannot_persist = true;
    let d = decide(&policy, &table_record(), &obs, 5_000);
    assert!(has_event(&d, "DegradeAuthorized"), "{:?}", d.actions);
    assert_eq!(d.record.failover, None);
}

#[test]
fn a_crash_looping_member_is_restarted_at_once_but_at_most_once_a_minute() {
    let policy = Policy::table();
    let looping = |obs: &mut Observation, i: usize, age_ms: u64| {
        let m = &mut obs.members[i];
        m.pod_health = PodHealth::Failed;
        m.crash_looping = true;
        m.report = None;
        m.probe_failing_since_ms = Some(1_000);
        m.uid = Some(format!("uid-{}", m.pod));
        m.pod_age_ms = Some(age_ms);
    };

    // The replica keeps crashing, its pod two minutes old: restarted now, its claim kept.
    let mut obs = table_obs();
    looping(&mut obs, 1, 120_000);
    let d = decide(&policy, &table_record(), &obs, 5_000);
    let restart_b = Action::DeleteLostPod {
        pod: B.into(),
        uid: Some(format!("uid-{B}")),
        delete_claim: false,
    };
    assert!(d.actions.contains(&restart_b), "{:?}", d.actions);
    assert!(has_event(&d, "RestartingPod"));
    assert_eq!(
        d.record.repair.as_ref().map(|r| r.kind.clone()),
        Some(RepairKind::RestartPod)
    );
    // Repeated until a new pod object is there, then done.
    let d2 = decide(&policy, &d.record, &obs, 5_500);
    assert!(d2.actions.contains(&restart_b));
    let mut recreated = obs.clone();
    recreated.members[1].uid = Some("uid-b2".into());
    recreated.members[1].crash_looping = false;
    recreated.members[1].pod_age_ms = Some(0);
    let d3 = decide(&policy, &d2.record, &recreated, 6_000);
    assert_eq!(d3.record.repair, None);
    assert!(has_event(&d3, "PodRestarted"));
    // The kubelet restarted it by itself first: the repair is void, nothing deleted.
    let mut back = obs.clone();
    back.members[1].crash_looping = false;
    let d4 = decide(&policy, &d2.record, &back, 6_000);
    assert_eq!(d4.record.repair, None);
    assert!(!d4.actions.contains(&restart_b));

    // A pod created less than a minute ago is left to the kubelet's back-off: an engine that
    // cannot start at all is not restarted in a tight loop.
    let mut young = table_obs();
    looping(&mut young, 1, repair::CRASH_LOOP_RESTART_MIN_AGE_MS - 1);
    let d = decide(&policy, &table_record(), &young, 5_000);
    assert_eq!(d.record.repair, None);
    assert!(!d
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteLostPod { .. })));

    // Back to back: the master (the only complete copy) crash-loops while the replica, still
    // rejoining, cannot take over. No failover is possible; the master is restarted now.
    let mut both = table_obs();
    looping(&mut both, 0, 600_000);
    both.members[1].pod_health = PodHealth::NotReady;
    both.members[1].report = None;
    both.members[1].probe_failing_since_ms = Some(1_000);
    let d = decide(&policy, &table_record(), &both, 20_000);
    assert!(d.record.failover.is_none());
    assert!(
        d.actions.contains(&Action::DeleteLostPod {
            pod: A.into(),
            uid: Some(format!("uid-{A}")),
            delete_claim: false,
        }),
        "{:?}",
        d.actions
    );

    // Never while a failover is recorded: a crash-looping old master waits until it is over.
    let mut failing_over = table_record();
    failing_over.failover = Some(Progress {
        step: Step::Promoting,
        from: A.into(),
        to: B.into(),
        term: 2,
        reason: String::new(),
        planned: false,
        started_ms: 0,
        writable_after_ms: None,
    });
    let mut obs = table_obs();
    looping(&mut obs, 0, 600_000);
    let d = decide(&policy, &failing_over, &obs, 20_000);
    assert_eq!(d.record.repair, None);
}
