//! The torture run (issue 14, `hack/torture.sh`): one pair, four writers of unique keys through
//! the read-write Service's ClusterIP, and one fault per round on whichever pod is master, the
//! kinds in rotation. A round starts once the pair is Ready with its replica in sync and ends
//! when it is again and every writer has been acknowledged since; then every write
//! acknowledged so far is read back from the master. Prints a line per round, per fault kind
//! the gaps between acknowledged writes (p50 / p99 / max) and the acknowledged writes lost,
//! the pair's Events for any round whose longest gap exceeds 5 s, and a last line
//! `torture: rounds=N mode=M lost=L max_gap_ms=G`. Asserts that no acknowledged write is lost in
//! semi-sync and sync; timing is reported, never asserted (the deadlines only catch a pair that
//! does not recover). Does I/O: the Kubernetes API, Redis over TCP, the fault hook.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `E2E_TORTURE_ROUNDS` | rounds to run; unset: the test does nothing (the suite's `--ignored` run skips it) |
//! | `E2E_TORTURE_MODE` | `spec.replication.mode`: `semi-sync` (default), `sync` or `async` |
//! | `E2E_TORTURE_KINDS` | comma-separated fault kinds (labels as printed) to rotate through instead of all of them |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams};
use kube::Client;
use redispair::api::{FailoverStep, RedisPairStatus, ReplicationMode};

use crate::cluster::{self, condition_true, poll, Healthy, PairUnderTest};
use crate::env::{E2eEnv, FaultHook};
use crate::failover::{
    operator_leader_nodes, operator_leader_pod, read_back_from_master, UndoOnDrop, FAILOVER, READY,
    RECOVERY,
};
use crate::writer::Writer;

/// The fault of a round, always aimed at the pod that is master when the round starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// `DELETE` of the master pod with grace period 0 (`kubectl delete --force`): the object is
    /// gone at once, no preStop hand-over; the kubelet kills the container when it notices.
    PodForceDeleted,
    /// SIGKILL of the master's engine (`<hook> kill-container`); the kubelet restarts it.
    EngineKilled,
    /// SIGSTOP of the master's engine (`<hook> freeze-container`), SIGCONT once the pair
    /// failed over (or the failover deadline passed).
    EngineStopped,
    /// The master's node killed (`<hook> kill`), restored once the pair failed over.
    NodeKilled,
    /// The master's node partitioned (`<hook> partition`), healed once the pair failed over.
    NodePartitioned,
    /// SIGKILL of the master's engine, then SIGKILL of the active operator's container as soon
    /// as the failover record shows the round's target step (polled every 10 ms). The target
    /// cycles through the steps of an unplanned failover, one per occurrence of this kind:
    /// Fencing, Promoting, Switching (Pausing is a planned switchover's only).
    OperatorKilledMidFailover,
    /// SIGKILL of the master's engine, then, as soon as the failover record appears, the
    /// kube-apiserver SIGKILLed and started again (`<hook> restart-apiserver`, which returns
    /// once it is ready): the operator loses its lease and its watches mid-failover.
    ApiserverRestarted,
    /// The master's data volume filled (`<hook> fill-volume NODE`): its engine refuses writes
    /// (MISCONF) and reports `aof_last_write_status:err`, a master that cannot persist, which
    /// the operator fails over. Freed (`free-volume`) once the pair failed over.
    VolumeFull,
    /// SIGKILL of the master's engine, then, as soon as the failover completed (the old master
    /// still rejoining), SIGKILL of the new master's engine.
    BackToBack,
}

const ROTATION: [Kind; 9] = [
    Kind::PodForceDeleted,
    Kind::EngineKilled,
    Kind::EngineStopped,
    Kind::NodeKilled,
    Kind::NodePartitioned,
    Kind::OperatorKilledMidFailover,
    Kind::ApiserverRestarted,
    Kind::VolumeFull,
    Kind::BackToBack,
];

/// Order of the steps of one failover record (a later step means an earlier one passed).
fn step_rank(step: &FailoverStep) -> u8 {
    match step {
        FailoverStep::Fencing => 0,
        FailoverStep::Pausing => 1,
        FailoverStep::Promoting => 2,
        FailoverStep::Switching => 3,
    }
}

/// The failover steps `OperatorKilledMidFailover` aims at, in turn.
const KILL_AT_STEPS: [FailoverStep; 3] = [
    FailoverStep::Fencing,
    FailoverStep::Promoting,
    FailoverStep::Switching,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::PodForceDeleted => "pod-force-deleted",
            Kind::EngineKilled => "engine-sigkill",
            Kind::EngineStopped => "engine-sigstop",
            Kind::NodeKilled => "node-killed",
            Kind::NodePartitioned => "node-partitioned",
            Kind::OperatorKilledMidFailover => "operator-killed-mid-failover",
            Kind::ApiserverRestarted => "apiserver-restarted",
            Kind::VolumeFull => "volume-full",
            Kind::BackToBack => "back-to-back",
        }
    }
}

/// Four writers, each pausing this long after an acknowledged write: a few hundred writes a
/// second in all, on a machine of two shared cores running the whole cluster.
const WRITERS: usize = 4;
const PACE: Duration = Duration::from_millis(5);
/// A round whose longest gap exceeds this prints the pair's Events.
const SLOW_GAP: Duration = Duration::from_secs(5);
/// In async mode "in sync" is a replication lag below this (the status never says in sync).
const ASYNC_LAG_IN_SYNC: i64 = 64 * 1024;

struct RoundResult {
    kind: Kind,
    /// Every interval between consecutive acknowledged writes of a writer, from the fault to
    /// the end of the round.
    gaps: Vec<Duration>,
    /// Acknowledged writes found missing for the first time at this round's check.
    lost: Vec<String>,
}

pub async fn run_torture() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let Some(rounds) = var("E2E_TORTURE_ROUNDS") else {
        println!("torture: E2E_TORTURE_ROUNDS not set: skipped (hack/torture.sh sets it)");
        return;
    };
    let rounds: usize = rounds.parse().expect("E2E_TORTURE_ROUNDS is a number");
    let mode = match var("E2E_TORTURE_MODE").as_deref().unwrap_or("semi-sync") {
        "semi-sync" => ReplicationMode::SemiSync,
        "sync" => ReplicationMode::Sync,
        "async" => ReplicationMode::Async,
        other => panic!("E2E_TORTURE_MODE is semi-sync, sync or async, not {other}"),
    };
    let rotation: Vec<Kind> = match var("E2E_TORTURE_KINDS") {
        None => ROTATION.to_vec(),
        Some(list) => list
            .split(',')
            .map(|l| {
                let l = l.trim();
                ROTATION
                    .iter()
                    .copied()
                    .find(|k| k.label() == l)
                    .unwrap_or_else(|| {
                        let all: Vec<_> = ROTATION.iter().map(|k| k.label()).collect();
                        panic!("E2E_TORTURE_KINDS: no fault kind {l:?} (kinds: {all:?})")
                    })
            })
            .collect(),
    };
    let env = E2eEnv::from_env();
    let client = cluster::client(&env).await;
    cluster::assert_operator_image(&client, &env).await;
    let name = format!("torture-{}", mode.as_str());
    let pair = PairUnderTest::create_with_mode(&client, &env, &name, Some(mode)).await;
    let t0 = Instant::now();
    let mut t = Torture {
        env: &env,
        client: &client,
        pair: &pair,
        mode,
        rw_ip: String::new(),
        writers: vec![],
        results: vec![],
        missing: HashSet::new(),
        started: t0,
    };
    let h = t
        .ready_in_sync("the pair Ready, replica in sync", READY)
        .await;
    println!(
        "torture: pair {name} ({}) Ready in {:.1} s: master {} on {}, replica {} on {}, term {}",
        mode.as_str(),
        t0.elapsed().as_secs_f64(),
        h.master,
        h.master_node,
        h.replica,
        h.replica_node,
        h.term
    );
    t.rw_ip = pair.cluster_ip(&pair.name).await;
    t.writers = (0..WRITERS)
        .map(|i| Writer::start_numbered(i, PACE, t.rw_ip.clone(), 6379, pair.password.clone()))
        .collect();
    t.expect("every writer acknowledged", FAILOVER, || async {
        t.writers.iter().all(|w| w.acked() >= 50).then_some(())
    })
    .await;
    t.started = Instant::now();

    for n in 0..rounds {
        let kind = rotation[n % rotation.len()];
        // The how-many-th round of this kind (0-based), for kinds that vary by occurrence.
        let occurrence = n / rotation.len();
        let r = t.round(n + 1, rounds, kind, occurrence).await;
        t.results.push(r);
    }

    // The last check, writers stopped: every acknowledged write on the master and the replica.
    let writers = std::mem::take(&mut t.writers);
    let mut acked = vec![];
    let mut errors = 0;
    for w in writers {
        let report = w.finish().await;
        errors += report.errors;
        acked.extend(report.acked_keys());
    }
    let status = pair.status().await.unwrap_or_default();
    let lost = read_back_from_master("torture", &pair, &t.rw_ip, status.term, &acked).await;
    let late: Vec<String> = lost
        .lost
        .into_iter()
        .filter(|k| t.missing.insert(k.clone()))
        .collect();
    if !late.is_empty() {
        println!(
            "torture: the final check found {} more acknowledged writes lost, the first: {:?}",
            late.len(),
            &late[..late.len().min(5)]
        );
    }
    let ro_ip = pair.cluster_ip(&format!("{}-ro", pair.name)).await;
    let on_replica = poll(FAILOVER, || async {
        let mut ro = crate::writer::connect(&ro_ip, 6379, &pair.password)
            .await
            .ok()?;
        let r = crate::acked_writes::find_lost(&mut ro, &acked).await.ok()?;
        // The replica must hold what the master holds: lost writes are counted once, above.
        r.lost
            .iter()
            .all(|k| t.missing.contains(k))
            .then_some(r.lost.len())
    })
    .await;
    println!(
        "torture: {} writes acknowledged in {:.0} s by {WRITERS} writers ({errors} client errors); the replica {}",
        acked.len(),
        t.started.elapsed().as_secs_f64(),
        if on_replica.is_some() {
            "holds every acknowledged write the master holds"
        } else {
            "LACKS acknowledged writes the master holds"
        }
    );
    let lost_total = t.print_summary(late.len());
    if lost_total == 0 || mode == ReplicationMode::Async {
        pair.delete().await;
    } else {
        println!(
            "torture: pair {}/{} kept for inspection (the next run replaces it)",
            pair.namespace, pair.name
        );
    }
    if mode != ReplicationMode::Async {
        assert_eq!(
            lost_total,
            0,
            "{} acknowledged writes lost in {} mode, the first: {:?}",
            lost_total,
            mode.as_str(),
            t.missing.iter().take(5).collect::<Vec<_>>()
        );
    }
    assert!(
        on_replica.is_some(),
        "the replica lacks acknowledged writes"
    );
}

struct Torture<'a> {
    env: &'a E2eEnv,
    client: &'a Client,
    pair: &'a PairUnderTest,
    mode: ReplicationMode,
    rw_ip: String,
    writers: Vec<Writer>,
    results: Vec<RoundResult>,
    /// Every acknowledged write found missing so far.
    missing: HashSet<String>,
    /// When the writers were all under way.
    started: Instant,
}

impl Torture<'_> {
    fn hook(&self) -> &FaultHook {
        self.env.fault_hook()
    }

    /// Wait until `check` holds; on timeout print the pair's state, its Events and the rounds
    /// so far, and fail with `what`.
    async fn expect<T, F, Fut>(&self, what: &str, timeout: Duration, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match poll(timeout, check).await {
            Some(v) => v,
            None => {
                self.pair.dump().await;
                print_events(&self.new_events(&HashMap::new()).await);
                self.print_summary(0);
                panic!("torture: timed out after {timeout:?} waiting for {what}");
            }
        }
    }

    /// The pair Ready, both pods Ready on two nodes, the replica in sync (async: its lag below
    /// 64 KiB), not Degraded.
    async fn ready_in_sync(&self, what: &str, timeout: Duration) -> Healthy {
        let mode = self.mode;
        let pair = self.pair;
        self.expect(what, timeout, || async move {
            let h = pair.healthy().await?;
            let r = h.status.replication.as_ref()?;
            let synced = match mode {
                ReplicationMode::Async => r.lag_bytes < ASYNC_LAG_IN_SYNC,
                _ => r.in_sync,
            };
            (synced && !condition_true(&h.status, "Degraded")).then_some(h)
        })
        .await
    }

    /// The failover away from `old` done: another pod master in status, no failover in
    /// progress. Polled every 10 ms (`fast`) or 200 ms; None when `timeout` passed first.
    async fn failover_done(&self, old: &str, fast: bool, timeout: Duration) -> Option<Instant> {
        let done = |s: &RedisPairStatus| {
            s.failover.is_none() && s.current_master.as_deref().is_some_and(|m| m != old)
        };
        if fast {
            poll_every(Duration::from_millis(10), timeout, || async {
                done(&self.pair.status().await?).then(Instant::now)
            })
            .await
        } else {
            poll(timeout, || async {
                done(&self.pair.status().await?).then(Instant::now)
            })
            .await
        }
    }

    /// The engine container (containerd ID) and node of pod `pod`.
    async fn engine_of(&self, pod: &str) -> (String, String) {
        let (id, _) = self
            .pair
            .engine_container(pod)
            .await
            .unwrap_or_else(|| panic!("the engine container of {pod}"));
        let node = self
            .pair
            .pod(pod)
            .await
            .and_then(|p| p.spec?.node_name)
            .unwrap_or_else(|| panic!("the node of {pod}"));
        (id, node)
    }

    /// Every Event in the pair's namespace, by name, with its count.
    async fn event_counts(&self) -> HashMap<String, i32> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.pair.namespace);
        events
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|e| Some((e.metadata.name?, e.count.unwrap_or(1))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Events of the pair's namespace that are not in `before` or happened again since.
    async fn new_events(&self, before: &HashMap<String, i32>) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.pair.namespace);
        let mut out: Vec<Event> = events
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                let name = e.metadata.name.clone().unwrap_or_default();
                before.get(&name) != Some(&e.count.unwrap_or(1))
            })
            .collect();
        out.sort_by_key(event_time);
        out
    }

    async fn round(
        &mut self,
        n: usize,
        rounds: usize,
        kind: Kind,
        occurrence: usize,
    ) -> RoundResult {
        let before = self
            .ready_in_sync(
                &format!("round {n}: the pair Ready, replica in sync"),
                RECOVERY,
            )
            .await;
        let events_before = self.event_counts().await;
        let lag_at_fault = before
            .status
            .replication
            .as_ref()
            .map(|r| r.lag_bytes)
            .unwrap_or(0);
        let old = before.master.clone();
        let victim_node = before.master_node.clone();
        let op_nodes = operator_leader_nodes(self.client, self.env).await;
        let mut notes: Vec<String> = vec![];
        if op_nodes.contains(&victim_node) {
            notes.push(format!("the active operator runs on {victim_node} too"));
        }
        let mut undo = UndoOnDrop { hook_cmd: None };
        let injected;
        let failed_over: Option<Instant>;
        match kind {
            Kind::PodForceDeleted => {
                injected = Instant::now();
                let force = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                };
                self.pair
                    .pods
                    .delete(&old, &force)
                    .await
                    .expect("force-deleting the master pod");
                failed_over = self.failover_done(&old, false, FAILOVER).await;
            }
            Kind::EngineKilled => {
                let (id, node) = self.engine_of(&old).await;
                injected = Instant::now();
                self.hook().run(&["kill-container", &node, &id]).await;
                failed_over = self.failover_done(&old, false, FAILOVER).await;
            }
            Kind::EngineStopped => {
                let (id, node) = self.engine_of(&old).await;
                undo.hook_cmd = Some(self.hook().command(&["thaw-container", &node, &id]));
                injected = Instant::now();
                self.hook().run(&["freeze-container", &node, &id]).await;
                failed_over = self.failover_done(&old, false, FAILOVER).await;
                self.hook().run(&["thaw-container", &node, &id]).await;
                undo.disarm();
                notes.push(format!(
                    "resumed {:.1} s after the fault",
                    injected.elapsed().as_secs_f64()
                ));
            }
            Kind::NodeKilled | Kind::NodePartitioned => {
                let (fault, undo_verb) = if kind == Kind::NodeKilled {
                    ("kill", "restore")
                } else {
                    ("partition", "heal")
                };
                undo.hook_cmd = Some(self.hook().command(&[undo_verb, &victim_node]));
                injected = Instant::now();
                self.hook().run(&[fault, &victim_node]).await;
                failed_over = self.failover_done(&old, false, FAILOVER).await;
                self.hook().run(&[undo_verb, &victim_node]).await;
                undo.disarm();
                notes.push(format!(
                    "{} {:.1} s after the fault",
                    if kind == Kind::NodeKilled {
                        "restored"
                    } else {
                        "healed"
                    },
                    injected.elapsed().as_secs_f64()
                ));
            }
            Kind::OperatorKilledMidFailover => {
                let operator = operator_leader_pod(self.client, self.env)
                    .await
                    .expect("the active operator's pod");
                let op_node = operator.spec.as_ref().and_then(|s| s.node_name.clone());
                let op_container = operator
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.first())
                    .and_then(|c| c.container_id.clone());
                let (Some(op_node), Some(op_container)) = (op_node, op_container) else {
                    panic!("the operator pod has no node or container yet");
                };
                let target = KILL_AT_STEPS[occurrence % KILL_AT_STEPS.len()];
                let (id, node) = self.engine_of(&old).await;
                injected = Instant::now();
                self.hook().run(&["kill-container", &node, &id]).await;
                // The failover record (intent) is written before any action and its step
                // before each step acts: kill the operator once it shows the target step, so
                // the restarted (or standby) one must resume from there. A step passed between
                // two polls is reported, and the operator killed at the step then seen.
                let step = poll_every(Duration::from_millis(10), FAILOVER, || async {
                    let s = self.pair.status().await?;
                    match s.failover {
                        Some(f) if step_rank(&f.step) >= step_rank(&target) => Some(Some(f.step)),
                        Some(_) => None,
                        // Finished before the target step was seen.
                        None if s.current_master.as_deref().is_some_and(|m| m != old) => Some(None),
                        None => None,
                    }
                })
                .await;
                match step {
                    Some(Some(step)) => {
                        let seen = injected.elapsed();
                        self.hook()
                            .run(&["kill-container", &op_node, &op_container])
                            .await;
                        let still = self.pair.status().await.and_then(|s| s.failover);
                        notes.push(format!(
                            "target step {target:?}; failover record at {step:?} seen {:.2} s after the fault; operator killed, the record then {}",
                            seen.as_secs_f64(),
                            match still {
                                Some(f) => format!("at step {:?}: killed mid-failover", f.step),
                                None => "gone: the failover had finished first".into(),
                            }
                        ));
                    }
                    Some(None) => notes.push(format!(
                        "target step {target:?}: the failover finished before it was seen; operator not killed"
                    )),
                    None => notes.push("no failover record within the deadline".into()),
                }
                failed_over = self.failover_done(&old, false, RECOVERY).await;
                // The killed operator's pod is replaced by a fresh one once the round's
                // failover is done, as the node rounds restore their node. Left to the kubelet,
                // every kill is a container restart, and over a run (an operator killed every
                // ~100 s, alternating between the two pods) the restart back-off (10 s doubling
                // to 5 min, reset after 10 min of running) grew until both pods waited in it at
                // once: no operator at all during a later round (100-round run, round 66). A
                // crash every few minutes is this test's pace, not an operator's life; what is
                // under test here is resuming from the record.
                if matches!(step, Some(Some(_))) {
                    let ns = operator.metadata.namespace.clone().unwrap_or_default();
                    let name = operator.metadata.name.clone().unwrap_or_default();
                    let pods: Api<k8s_openapi::api::core::v1::Pod> =
                        Api::namespaced(self.client.clone(), &ns);
                    match pods.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => notes.push(format!("killed operator pod {name} replaced")),
                        Err(e) => notes.push(format!("replacing operator pod {name}: {e}")),
                    }
                }
            }
            Kind::ApiserverRestarted => {
                let (id, node) = self.engine_of(&old).await;
                injected = Instant::now();
                self.hook().run(&["kill-container", &node, &id]).await;
                let step = poll_every(Duration::from_millis(10), FAILOVER, || async {
                    let s = self.pair.status().await?;
                    s.failover.map(|f| f.step)
                })
                .await;
                let seen = injected.elapsed();
                // Returns once the new apiserver answers /readyz.
                self.hook().run(&["restart-apiserver"]).await;
                notes.push(format!(
                    "apiserver killed {:.2} s after the fault (failover record {}), ready again {:.2} s after the fault",
                    seen.as_secs_f64(),
                    step.map(|s| format!("at {s:?}"))
                        .unwrap_or_else(|| "not seen".into()),
                    injected.elapsed().as_secs_f64()
                ));
                failed_over = self.failover_done(&old, false, RECOVERY).await;
            }
            Kind::VolumeFull => {
                undo.hook_cmd = Some(self.hook().command(&["free-volume", &victim_node]));
                self.hook().run(&["fill-volume", &victim_node]).await;
                // The fault is a full volume: from when the hook says it is full (filling it
                // takes a moment, and writes succeed meanwhile).
                injected = Instant::now();
                failed_over = self.failover_done(&old, false, FAILOVER).await;
                self.hook().run(&["free-volume", &victim_node]).await;
                undo.disarm();
                notes.push(format!(
                    "volume freed {:.1} s after the fault",
                    injected.elapsed().as_secs_f64()
                ));
            }
            Kind::BackToBack => {
                let (id, node) = self.engine_of(&old).await;
                injected = Instant::now();
                self.hook().run(&["kill-container", &node, &id]).await;
                failed_over = self.failover_done(&old, true, FAILOVER).await;
                if failed_over.is_some() {
                    let s = self.pair.status().await.unwrap_or_default();
                    let new = s.current_master.clone().unwrap_or_default();
                    let (id2, node2) = self.engine_of(&new).await;
                    let in_sync = s.replication.as_ref().is_some_and(|r| r.in_sync);
                    self.hook().run(&["kill-container", &node2, &id2]).await;
                    notes.push(format!(
                        "the new master {new} killed {:.2} s after the first fault (replica then {})",
                        injected.elapsed().as_secs_f64(),
                        if in_sync { "in sync" } else { "still rejoining" }
                    ));
                }
            }
        }
        if let Some(at) = failed_over {
            let s = self.pair.status().await.unwrap_or_default();
            notes.push(format!(
                "failover done {:.2} s after the fault (lastFailover: {} → {}, {:.2} s, {})",
                at.duration_since(injected).as_secs_f64(),
                s.last_failover
                    .as_ref()
                    .map(|l| l.from.as_str())
                    .unwrap_or("?"),
                s.last_failover
                    .as_ref()
                    .map(|l| l.to.as_str())
                    .unwrap_or("?"),
                s.last_failover
                    .as_ref()
                    .map(|l| l.duration_seconds)
                    .unwrap_or(0.0),
                s.last_failover
                    .as_ref()
                    .map(|l| l.reason.as_str())
                    .unwrap_or("?"),
            ));
        } else if !matches!(
            kind,
            Kind::OperatorKilledMidFailover | Kind::ApiserverRestarted
        ) {
            notes.push(format!("no failover within {FAILOVER:?}"));
        }

        // The round ends when the pair is whole again and every writer has been acknowledged
        // since: the gap the fault opened is closed for all of them.
        let after = self
            .ready_in_sync(
                &format!(
                    "round {n} ({}): the pair Ready, replica in sync",
                    kind.label()
                ),
                RECOVERY,
            )
            .await;
        let ready_at = Instant::now();
        self.expect(
            &format!("round {n}: every writer acknowledged again"),
            FAILOVER,
            || async {
                self.writers
                    .iter()
                    .all(|w| w.last_ack().is_some_and(|a| a.at > ready_at))
                    .then_some(())
            },
        )
        .await;
        let ended = Instant::now();
        let mut gaps: Vec<Duration> = self
            .writers
            .iter()
            .flat_map(|w| w.gaps_between(injected, ended))
            .collect();
        gaps.sort();
        let max_gap = gaps.last().copied().unwrap_or_default();

        // Every write acknowledged so far, read back from the master.
        let acked: Vec<(String, u64)> = self.writers.iter().flat_map(|w| w.acked_keys()).collect();
        let label = format!("torture round {n}");
        let lost = read_back_from_master(&label, self.pair, &self.rw_ip, after.term, &acked).await;
        let new_lost: Vec<String> = lost
            .lost
            .into_iter()
            .filter(|k| self.missing.insert(k.clone()))
            .collect();
        let lost_text = if new_lost.is_empty() {
            "0".to_string()
        } else {
            let bytes: usize = new_lost.iter().map(|k| set_command_bytes(k)).sum();
            format!(
                "{} (~{bytes} bytes of SET commands; lagBytes at the fault {lag_at_fault}), the first: {:?}",
                new_lost.len(),
                &new_lost[..new_lost.len().min(5)]
            )
        };
        println!(
            "torture: round {n}/{rounds} {}: master {old} on {victim_node} → {} (term {} → {}); in sync again {:.1} s after the fault; longest gap {} ms; acknowledged {} so far; lost {lost_text}; {}",
            kind.label(),
            after.master,
            before.term,
            after.term,
            ready_at.duration_since(injected).as_secs_f64(),
            max_gap.as_millis(),
            acked.len(),
            notes.join("; ")
        );
        if max_gap > SLOW_GAP {
            println!(
                "torture: round {n}: longest gap {:.1} s > {SLOW_GAP:?}: the Events of the round (kubectl get events -n {}):",
                max_gap.as_secs_f64(),
                self.pair.namespace
            );
            print_events(&self.new_events(&events_before).await);
            // What the operator did meanwhile (a failover that completed long after the
            // fault, as once after an apiserver restart, is only explained by its log).
            self.print_operator_log(300).await;
        }
        if !new_lost.is_empty() {
            println!(
                "torture: round {n}: acknowledged writes lost: the Events of the round, where the lost keys are, the operator's log"
            );
            print_events(&self.new_events(&events_before).await);
            self.print_where_keys_are(&new_lost[..new_lost.len().min(3)])
                .await;
            self.print_operator_log(300).await;
        }
        RoundResult {
            kind,
            gaps,
            lost: new_lost,
        }
    }

    /// For each pod of the pair, reached at its own address: its role and term, and which of
    /// `keys` it holds (evidence for a round that lost writes).
    async fn print_where_keys_are(&self, keys: &[String]) {
        for pod in self.pair.pod_names() {
            let Some(ip) = self.pair.pod_ip(&pod).await else {
                println!("torture:   {pod}: no pod IP");
                continue;
            };
            let report = async {
                let mut c = crate::writer::connect(&ip, 6379, &self.pair.password).await?;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await?;
                let field = |k: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(k))
                        .unwrap_or("?")
                        .trim()
                        .to_string()
                };
                let mut held = vec![];
                for k in keys {
                    let n: i64 = redis::cmd("EXISTS").arg(k).query_async(&mut c).await?;
                    held.push(format!("{k}={n}"));
                }
                let size: i64 = redis::cmd("DBSIZE").query_async(&mut c).await?;
                redis::RedisResult::Ok(format!(
                    "role {} term {} offset {} dbsize {size}; {}",
                    field("role:"),
                    field("term:"),
                    field("master_repl_offset:"),
                    held.join(" ")
                ))
            };
            match report.await {
                Ok(r) => println!("torture:   {pod} ({ip}): {r}"),
                Err(e) => println!("torture:   {pod} ({ip}): {e}"),
            }
        }
    }

    /// The last `lines` lines of the active operator's log.
    async fn print_operator_log(&self, lines: i64) {
        let Some(op) = operator_leader_pod(self.client, self.env).await else {
            return;
        };
        let name = op.metadata.name.clone().unwrap_or_default();
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.env.operator_namespace);
        let lp = kube::api::LogParams {
            tail_lines: Some(lines),
            ..Default::default()
        };
        match pods.logs(&name, &lp).await {
            Ok(log) => {
                // The pair's lines only, without the terminal colours.
                for l in log
                    .lines()
                    .map(strip_ansi)
                    .filter(|l| l.contains(&self.pair.name))
                {
                    println!("torture:   operator: {l}");
                }
            }
            Err(e) => println!("torture:   operator {name}: no log: {e}"),
        }
    }

    /// The table per fault kind and the last line; returns the acknowledged writes lost.
    fn print_summary(&self, lost_at_end: usize) -> usize {
        let mut by_kind: BTreeMap<Kind, (usize, Vec<Duration>, usize)> = BTreeMap::new();
        for r in &self.results {
            let e = by_kind.entry(r.kind).or_default();
            e.0 += 1;
            e.1.extend(r.gaps.iter().copied());
            e.2 += r.lost.len();
        }
        println!(
            "torture: per fault kind (mode {}; gaps: every interval between two consecutive acknowledged writes of a writer, from the fault until the pair is in sync again and every writer acknowledged)",
            self.mode.as_str()
        );
        println!(
            "torture: {:<30} {:>6} {:>10} {:>10} {:>10} {:>6}",
            "kind", "rounds", "p50_ms", "p99_ms", "max_ms", "lost"
        );
        let mut max_gap = Duration::ZERO;
        for (kind, (rounds, mut gaps, lost)) in by_kind {
            gaps.sort();
            let max = gaps.last().copied().unwrap_or_default();
            max_gap = max_gap.max(max);
            println!(
                "torture: {:<30} {:>6} {:>10} {:>10} {:>10} {:>6}",
                kind.label(),
                rounds,
                percentile(&gaps, 50).as_millis(),
                percentile(&gaps, 99).as_millis(),
                max.as_millis(),
                lost
            );
        }
        let lost: usize = self.results.iter().map(|r| r.lost.len()).sum::<usize>() + lost_at_end;
        println!(
            "torture: rounds={} mode={} lost={lost} max_gap_ms={}",
            self.results.len(),
            self.mode.as_str(),
            max_gap.as_millis()
        );
        lost
    }
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// The bytes `SET key value` takes on the replication stream (RESP), to set lost writes
/// against the lag the status showed.
fn set_command_bytes(key: &str) -> usize {
    let value = key.rsplit(':').next().unwrap_or("");
    let arg = |s: &str| format!("${}\r\n{s}\r\n", s.len()).len();
    "*3\r\n".len() + arg("SET") + arg(key) + arg(value)
}

/// `poll` with another interval.
async fn poll_every<T, F, Fut>(every: Duration, timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// When an Event last happened, as the API gives it (RFC 3339), for sorting and printing.
fn event_time(e: &Event) -> String {
    let text = |v: serde_json::Result<serde_json::Value>| {
        v.ok().and_then(|v| v.as_str().map(str::to_string))
    };
    text(serde_json::to_value(&e.last_timestamp))
        .or_else(|| text(serde_json::to_value(&e.event_time)))
        .or_else(|| text(serde_json::to_value(&e.metadata.creation_timestamp)))
        .unwrap_or_default()
}

fn print_events(events: &[Event]) {
    for e in events {
        println!(
            "torture:   {} {:<7} {:<24} {}/{} (x{}): {}",
            event_time(e),
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.involved_object.kind.as_deref().unwrap_or(""),
            e.involved_object.name.as_deref().unwrap_or(""),
            e.count.unwrap_or(1),
            e.message.as_deref().unwrap_or("").trim()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        let gaps = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
        assert_eq!(percentile(&gaps, 50), Duration::from_millis(5));
        assert_eq!(percentile(&gaps, 99), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99), Duration::ZERO);
    }

    #[test]
    fn strip_ansi_keeps_the_text() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m x"),
            "2026  INFO x"
        );
    }

    #[test]
    fn set_command_bytes_counts_the_resp_encoding() {
        // *3\r\n $3\r\nSET\r\n $8\r\ne2e:w0:7\r\n $1\r\n7\r\n
        assert_eq!(set_command_bytes("e2e:w0:7"), 4 + 9 + 14 + 7);
    }
}
