//! One failover case, start to end, on a fresh pair: a semi-sync pair Ready on two nodes, a
//! writer of unique keys through the read-write ClusterIP, the fault, then the checks of issue
//! #5 (Service selector, EndpointSlices, status, writes through the ClusterIP, every
//! acknowledged key read back from the master and the replica, the pair Ready again with both
//! members replicating). Prints the failover seconds as figures; the assertions are generous
//! deadlines. Does I/O: the Kubernetes API, Redis over TCP, the fault hook.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams};
use kube::Client;

use crate::acked_writes::{self, LostWrites};
use crate::cluster::{self, condition_true, poll, PairUnderTest};
use crate::env::{E2eEnv, FaultHook};
use crate::writer::{connect, Writer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `kubectl delete pod` of the master (graceful: the pod goes Terminating).
    DeleteMasterPod,
    /// SIGKILL of the engine process in the master pod (through the node's container runtime);
    /// the pod stays and the kubelet restarts the container.
    KillMasterProcess,
    /// The engine process in the master pod hangs (`<hook> freeze-container`: SIGSTOP): alive,
    /// its sockets open, answering nothing; resumed (`<hook> thaw-container`) once the pair
    /// failed over. The resumed old master must not come back as a second master.
    FreezeMasterProcess,
    /// The master's node is lost: every process of it killed (`<hook> kill`), brought back
    /// (`<hook> restore`) only after the pair recovered without it.
    KillMasterNode,
    /// The master's node is cut off but keeps running (`<hook> partition`), healed later.
    PartitionMasterNode,
    /// Not a fault: a planned switchover (`kubectl redispair switchover`) under the same
    /// writer and checks. Also what the node cases use to move the master off the operator's
    /// node.
    PlannedSwitchover,
}

impl Fault {
    fn on_node(self) -> bool {
        matches!(self, Fault::KillMasterNode | Fault::PartitionMasterNode)
    }
}

/// Generous deadlines: the figures are printed, these only catch a failover that did not
/// happen. The detection target is seconds; a lost node's pods are rescheduled by Kubernetes
/// after its NotReady grace (about 20 s on the local cluster, minutes on default settings).
pub const READY: Duration = Duration::from_secs(180);
pub const FAILOVER: Duration = Duration::from_secs(60);
pub const RECOVERY: Duration = Duration::from_secs(240);

/// Undoes a node fault when dropped, so a failing case does not leave the shared cluster with
/// a dead or cut-off node for the next one. Blocking in drop: it runs once per case.
pub struct UndoOnDrop {
    pub hook_cmd: Option<(std::path::PathBuf, Vec<String>)>,
}

impl UndoOnDrop {
    pub fn disarm(&mut self) {
        self.hook_cmd = None;
    }
}

impl Drop for UndoOnDrop {
    fn drop(&mut self) {
        if let Some((program, args)) = self.hook_cmd.take() {
            eprintln!("undoing the fault: {} {args:?}", program.display());
            let _ = std::process::Command::new(program).args(args).status();
        }
    }
}

/// The active operator's pod: the Lease holder (leader election on), else the only one.
pub async fn operator_leader_pod(
    client: &Client,
    env: &E2eEnv,
) -> Option<k8s_openapi::api::core::v1::Pod> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &env.operator_namespace);
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), &env.operator_namespace);
    let holder = leases
        .get_opt("redispair-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity);
    match holder {
        Some(h) => pods.get_opt(&h).await.ok().flatten(),
        None => {
            let mut all = pods.list(&Default::default()).await.ok()?.items;
            (all.len() == 1).then(|| all.remove(0))
        }
    }
}

/// The node the active operator runs on: the Lease holder's (leader election on), else every
/// operator pod's.
pub async fn operator_leader_nodes(client: &Client, env: &E2eEnv) -> Vec<String> {
    match operator_leader_pod(client, env)
        .await
        .and_then(|p| p.spec?.node_name)
    {
        Some(node) => vec![node],
        None => cluster::operator_nodes(client, env).await,
    }
}

/// The writer of unique keys, through the read-write Service's ClusterIP from the test's host,
/// started and seen to have 300 writes acknowledged. Returns the ClusterIP with it.
async fn start_writer(pair: &PairUnderTest) -> (String, Writer) {
    let rw_ip = pair.cluster_ip(&pair.name).await;
    let writer = Writer::start(rw_ip.clone(), 6379, pair.password.clone());
    pair.expect(
        "writes acknowledged through the ClusterIP",
        Duration::from_secs(60),
        || async { (writer.acked() >= 300).then_some(()) },
    )
    .await;
    (rw_ip, writer)
}

/// A fresh pair `name` (the operator checked to run the image under test), Ready with master
/// and replica on two nodes.
async fn create_ready_pair(
    client: &Client,
    env: &E2eEnv,
    name: &str,
) -> (PairUnderTest, cluster::Healthy) {
    cluster::assert_operator_image(client, env).await;
    let pair = PairUnderTest::create(client, env, name).await;
    let healthy = pair
        .wait_healthy("the pair Ready, master and replica on two nodes", READY)
        .await;
    (pair, healthy)
}

pub async fn run_failover_case(name: &str, fault: Fault) {
    let env = E2eEnv::from_env();
    let hook: Option<&FaultHook> = match fault {
        Fault::DeleteMasterPod | Fault::PlannedSwitchover => None,
        _ => Some(env.fault_hook()),
    };
    let client = cluster::client(&env).await;
    cluster::assert_operator_image(&client, &env).await;
    let pair = PairUnderTest::create(&client, &env, name).await;
    let t_created = Instant::now();
    let mut before = pair
        .wait_healthy("the pair Ready, master and replica on two nodes", READY)
        .await;
    println!(
        "{name}: pair Ready in {:.1} s: master {} on {}, replica {} on {}, term {}",
        t_created.elapsed().as_secs_f64(),
        before.master,
        before.master_node,
        before.replica,
        before.replica_node,
        before.term
    );

    // A node fault must hit the pair, not the operator as well: that would be another case
    // (operator lost), timed by its own Lease. If the active operator shares the master's
    // node, move the master first with a planned switchover (itself checked here).
    if fault.on_node() {
        let op_nodes = operator_leader_nodes(&client, &env).await;
        if op_nodes.contains(&before.master_node) {
            let from = before.master.clone();
            println!(
                "{name}: the operator runs on {} with the master: planned switchover first",
                before.master_node
            );
            pair.request_switchover().await;
            before = pair
                .expect("the switchover to the replica", FAILOVER, || async {
                    let h = pair.healthy().await?;
                    (h.master != from).then_some(h)
                })
                .await;
        }
    }
    let old_master = before.master.clone();
    let new_master = before.replica.clone();
    let victim_node = before.master_node.clone();
    let old_pod = pair.pod(&old_master).await.expect("the master pod");
    let old_uid = old_pod.metadata.uid.clone();

    // The writer of unique keys, through the read-write Service's ClusterIP from the host.
    let (rw_ip, writer) = start_writer(&pair).await;

    // --- the fault ------------------------------------------------------------------------
    let mut undo = UndoOnDrop { hook_cmd: None };
    let mut engine_before: Option<(String, i32)> = None;
    let injected = Instant::now();
    match fault {
        Fault::DeleteMasterPod => {
            pair.pods
                .delete(&old_master, &DeleteParams::default())
                .await
                .expect("deleting the master pod");
        }
        Fault::KillMasterProcess => {
            let (id, restarts) = pair
                .engine_container(&old_master)
                .await
                .expect("the master's engine container");
            hook.unwrap()
                .run(&["kill-container", &victim_node, &id])
                .await;
            engine_before = Some((id, restarts));
        }
        Fault::FreezeMasterProcess => {
            let (id, restarts) = pair
                .engine_container(&old_master)
                .await
                .expect("the master's engine container");
            undo.hook_cmd = Some(
                hook.unwrap()
                    .command(&["thaw-container", &victim_node, &id]),
            );
            hook.unwrap()
                .run(&["freeze-container", &victim_node, &id])
                .await;
            engine_before = Some((id, restarts));
        }
        Fault::KillMasterNode => {
            undo.hook_cmd = Some(hook.unwrap().command(&["restore", &victim_node]));
            hook.unwrap().run(&["kill", &victim_node]).await;
        }
        Fault::PartitionMasterNode => {
            undo.hook_cmd = Some(hook.unwrap().command(&["heal", &victim_node]));
            hook.unwrap().run(&["partition", &victim_node]).await;
        }
        Fault::PlannedSwitchover => pair.request_switchover().await,
    }

    // --- traffic moves ----------------------------------------------------------------------
    pair.expect(
        "the read-write Service selecting the new master",
        FAILOVER,
        || async { (pair.rw_selector().await.as_deref() == Some(&new_master)).then_some(()) },
    )
    .await;
    let service_switched = injected.elapsed();
    let first_new = pair
        .expect(
            "a write acknowledged through the ClusterIP by the new master",
            FAILOVER,
            || async { writer.first_ack_in_term_above(before.term) },
        )
        .await;
    let to_first_write = first_new.at.duration_since(injected);

    // The decision and the routing agree: status names the new master in a higher term, and
    // the Service's only ready endpoint is the new master's pod.
    let status = pair
        .expect(
            "status: new master, failover complete",
            FAILOVER,
            || async {
                let s = pair.status().await?;
                (s.current_master.as_deref() == Some(&new_master)
                    && s.target_master.as_deref() == Some(&new_master)
                    && s.failover.is_none()
                    && s.last_failover.as_ref().is_some_and(|l| l.to == new_master))
                .then_some(s)
            },
        )
        .await;
    assert!(
        status.term > before.term,
        "term {} after the failover, {} before",
        status.term,
        before.term
    );
    let last = status.last_failover.clone().unwrap();
    assert_eq!(last.from, old_master, "lastFailover.from");
    let new_ip = pair.pod_ip(&new_master).await.expect("the new master's IP");
    pair.expect(
        "the read-write EndpointSlices holding the new master only",
        FAILOVER,
        || async { (pair.ready_endpoints(&pair.name).await == [new_ip.clone()]).then_some(()) },
    )
    .await;
    let n = writer.acked();
    pair.expect("writes continuing on the new master", FAILOVER, || async {
        (writer.acked() >= n + 100).then_some(())
    })
    .await;
    println!(
        "figure: {name}: fault → read-write Service on the new master {:.2} s; → first write acknowledged by the new master {:.2} s; status.lastFailover.durationSeconds {:.2} s ({})",
        service_switched.as_secs_f64(),
        to_first_write.as_secs_f64(),
        last.duration_seconds,
        last.reason
    );

    // --- recovery -------------------------------------------------------------------------
    match fault {
        Fault::DeleteMasterPod | Fault::PlannedSwitchover => {}
        Fault::KillMasterProcess => {
            // The process died, the pod did not: same pod, its engine container restarted.
            let (_, restarts) = engine_before.unwrap();
            pair.expect(
                "the killed engine's container restarted in the same pod",
                RECOVERY,
                || async {
                    let p = pair.pod(&old_master).await?;
                    let (_, r) = pair.engine_container(&old_master).await?;
                    (p.metadata.uid == old_uid && r > restarts).then_some(())
                },
            )
            .await;
        }
        Fault::FreezeMasterProcess => {
            // Resume the hung engine after the failover: it wakes up believing it is master of
            // the old term, with clients' writes it never got acknowledged; the operator must
            // demote it into a replica of the new term (checked below); every write it
            // acknowledged must be on the new master (the read back below).
            let (id, _) = engine_before.clone().unwrap();
            hook.unwrap()
                .run(&["thaw-container", &victim_node, &id])
                .await;
            undo.disarm();
            println!(
                "{name}: hung engine resumed {:.1} s after the fault",
                injected.elapsed().as_secs_f64()
            );
        }
        Fault::KillMasterNode => {
            // The node stays dead until the pair recovered without it: a replacement replica
            // on another node, Ready and replicating.
            let h = pair
                .expect(
                    "a replacement replica on another node, the pair Ready",
                    RECOVERY,
                    || async {
                        let h = pair.healthy().await?;
                        (h.replica_node != victim_node && h.master_node != victim_node).then_some(h)
                    },
                )
                .await;
            println!(
                "figure: {name}: fault → pair Ready again without the lost node {:.1} s (replica {} on {})",
                injected.elapsed().as_secs_f64(),
                h.replica,
                h.replica_node
            );
            hook.unwrap().run(&["restore", &victim_node]).await;
            undo.disarm();
        }
        Fault::PartitionMasterNode => {
            // Keep the node cut off until Kubernetes has noticed too (node NotReady, its pods'
            // eviction under way): the pair must stay on the new master through that, and the
            // old master, alive on the other side, must not come back as a second master.
            let nodes: Api<Node> = Api::all(client.clone());
            pair.expect("the partitioned node NotReady", RECOVERY, || async {
                let n = nodes.get(&victim_node).await.ok()?;
                let ready = n
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "Ready")?;
                (ready.status != "True").then_some(())
            })
            .await;
            println!(
                "{name}: node {victim_node} NotReady {:.1} s after the partition; healing it",
                injected.elapsed().as_secs_f64()
            );
            assert_eq!(
                pair.rw_selector().await.as_deref(),
                Some(new_master.as_str()),
                "the read-write Service stays on the new master while the old one is cut off"
            );
            hook.unwrap().run(&["heal", &victim_node]).await;
            undo.disarm();
        }
    }
    let after = pair
        .wait_healthy("the pair Ready again, both replicating", RECOVERY)
        .await;
    assert_eq!(
        after.master, new_master,
        "the master stays the promoted pod"
    );
    assert_eq!(
        after.replica, old_master,
        "the old master's pod is the replica"
    );
    assert_eq!(
        after.term, status.term,
        "no further failover after the first"
    );
    assert!(condition_true(&after.status, "Replicating"));
    println!(
        "{name}: recovered in {:.1} s after the fault: replica {} on {} (uid {})",
        injected.elapsed().as_secs_f64(),
        after.replica,
        after.replica_node,
        if pair.pod(&old_master).await.and_then(|p| p.metadata.uid) == old_uid {
            "same pod: the old master rejoined"
        } else {
            "new pod"
        }
    );

    // --- no acknowledged write lost ---------------------------------------------------------
    check_every_acknowledged_write_kept(name, &pair, &rw_ip, writer).await;
    pair.delete().await;
}

/// Stop the writer and check that nothing it had acknowledged is lost: every acknowledged key
/// read back from the master (through the read-write ClusterIP) and from the replica
/// (read-only ClusterIP).
async fn check_every_acknowledged_write_kept(
    name: &str,
    pair: &PairUnderTest,
    rw_ip: &str,
    writer: Writer,
) {
    let report = writer.finish().await;
    let acked = report.acked_keys();
    let term = pair.status().await.map(|s| s.term).unwrap_or(0);
    let on_master = read_back_from_master(name, pair, rw_ip, term, &acked).await;
    assert!(
        on_master.lost.is_empty(),
        "{name}: on the master: {}",
        on_master.summary()
    );
    // The replica has all of it too (the pair is whole again, not just serving).
    let ro_ip = pair.cluster_ip(&format!("{}-ro", pair.name)).await;
    let last = std::sync::Mutex::new(String::from("no read succeeded"));
    let on_replica = poll(FAILOVER, || async {
        let mut ro = connect(&ro_ip, 6379, &pair.password).await.ok()?;
        let r = acked_writes::find_lost(&mut ro, &acked).await.ok()?;
        *last.lock().unwrap() = r.summary();
        r.lost.is_empty().then_some(r)
    })
    .await;
    if on_replica.is_none() {
        pair.dump().await;
        panic!(
            "{name}: the replica (read-only ClusterIP) lacks acknowledged writes after {FAILOVER:?}: {}",
            last.into_inner().unwrap()
        );
    }
    println!(
        "{name}: {} writes acknowledged ({} attempts, {} errors while failing over, the last: {}); every one read back from the master and the replica",
        report.acks.len(),
        report.attempts,
        report.errors,
        report.last_error
    );
}

/// Read every key in `acked` back from the master, through the read-write ClusterIP, and
/// return what is missing. With `REDISPAIR_TEST_DROP_ACKED=1` one key is deleted first (the
/// check must then fail; see `tests/acked_writes`).
///
/// A read may fail right after a heal: the healed node's kube-proxy can still route the
/// ClusterIP to the cut-off old master until it resyncs, and that engine, its lease lapsed,
/// refuses reads (MASTERDOWN) instead of serving old data. So errors, and a server that is not
/// a master of term `term` or above, are retried; the first full read from the master counts.
pub async fn read_back_from_master(
    name: &str,
    pair: &PairUnderTest,
    rw_ip: &str,
    term: i64,
    acked: &[(String, u64)],
) -> LostWrites {
    let refused = std::sync::Mutex::new(Vec::<String>::new());
    let result = pair
        .expect(
            "a read through the read-write ClusterIP",
            FAILOVER,
            || async {
                let read = async {
                    let mut rw = connect(rw_ip, 6379, &pair.password)
                        .await
                        .map_err(|e| e.to_string())?;
                    let info: String = redis::cmd("INFO")
                        .arg("replication")
                        .query_async(&mut rw)
                        .await
                        .map_err(|e| e.to_string())?;
                    let field = |k: &str| {
                        info.lines()
                            .find_map(|l| l.strip_prefix(k))
                            .map(|v| v.trim().to_string())
                    };
                    let server_term: i64 =
                        field("term:").and_then(|t| t.parse().ok()).unwrap_or(-1);
                    if field("role:").as_deref() != Some("master") || server_term < term {
                        return Err(format!(
                            "reached a {:?} of term {server_term}, not the master of term {term}",
                            field("role:")
                        ));
                    }
                    acked_writes::drop_one_if_asked(&mut rw, acked)
                        .await
                        .map_err(|e| e.to_string())?;
                    acked_writes::find_lost(&mut rw, acked)
                        .await
                        .map_err(|e| e.to_string())
                };
                match read.await {
                    Ok(v) => Some(v),
                    Err(e) => {
                        refused.lock().unwrap().push(e);
                        None
                    }
                }
            },
        )
        .await;
    let refused = refused.into_inner().unwrap();
    if let Some(last) = refused.last() {
        println!(
            "{name}: {} reads through the read-write ClusterIP failed before one succeeded, the last: {last}",
            refused.len()
        );
    }
    result
}

/// What happens to the replica in [`run_replica_down_case`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReplicaFault {
    /// SIGKILL of its engine (`<hook> kill-container`): the kubelet restarts it at once and it
    /// continues by partial resync.
    Kill,
    /// SIGSTOP (`<hook> freeze-container`) for longer than the detection window: the operator
    /// must judge it failed and authorise the master to acknowledge alone (Degraded); SIGCONT
    /// (`<hook> thaw-container`) once writes go on without it.
    Hang,
}

/// A replica fault under the writer of unique keys. Not a failover: the master keeps the read-write
/// Service and its term. In semi-sync its writes wait for the replica, or for the operator's
/// degrade authorisation once the replica is judged failed, then continue; the replica catches
/// up and the pair is Ready and in sync again, with every acknowledged write on both.
pub async fn run_replica_down_case(name: &str, fault: ReplicaFault) {
    let env = E2eEnv::from_env();
    let hook = env.fault_hook();
    let client = cluster::client(&env).await;
    let (pair, before) = create_ready_pair(&client, &env, name).await;
    let (rw_ip, writer) = start_writer(&pair).await;

    let (id, restarts) = pair
        .engine_container(&before.replica)
        .await
        .expect("the replica's engine container");
    let injected = Instant::now();
    match fault {
        ReplicaFault::Kill => {
            hook.run(&["kill-container", &before.replica_node, &id])
                .await;
            pair.expect(
                "the replica's engine container restarted in the same pod",
                RECOVERY,
                || async {
                    let (_, r) = pair.engine_container(&before.replica).await?;
                    (r > restarts).then_some(())
                },
            )
            .await;
        }
        ReplicaFault::Hang => {
            let mut undo = UndoOnDrop {
                hook_cmd: Some(hook.command(&["thaw-container", &before.replica_node, &id])),
            };
            hook.run(&["freeze-container", &before.replica_node, &id])
                .await;
            pair.expect(
                "condition Degraded while the replica hangs",
                FAILOVER,
                || async { condition_true(&pair.status().await?, "Degraded").then_some(()) },
            )
            .await;
            let n = writer.acked();
            pair.expect(
                "writes acknowledged by the master alone",
                FAILOVER,
                || async { (writer.acked() >= n + 100).then_some(()) },
            )
            .await;
            println!(
                "figure: {name}: replica hung → writes acknowledged again after {:.2} s (the longest wait); Degraded",
                writer.longest_gap_after(injected).as_secs_f64()
            );
            assert_eq!(
                pair.rw_selector().await.as_deref(),
                Some(before.master.as_str()),
                "the read-write Service stays on the master"
            );
            hook.run(&["thaw-container", &before.replica_node, &id])
                .await;
            undo.disarm();
        }
    }
    let after = pair
        .expect("the pair Ready and in sync again", RECOVERY, || async {
            let h = pair.healthy().await?;
            let in_sync = h.status.replication.as_ref().is_some_and(|r| r.in_sync);
            (in_sync && !condition_true(&h.status, "Degraded")).then_some(h)
        })
        .await;
    let recovered = injected.elapsed();
    assert_eq!(after.master, before.master, "no failover: same master");
    assert_eq!(after.replica, before.replica, "same replica pod");
    assert_eq!(after.term, before.term, "no failover: same term");
    assert!(
        after.status.last_failover.is_none(),
        "no failover recorded: {:?}",
        after.status.last_failover
    );
    let n = writer.acked();
    pair.expect("writes continuing", FAILOVER, || async {
        (writer.acked() >= n + 100).then_some(())
    })
    .await;
    println!(
        "figure: {name}: replica fault → longest wait for a write acknowledgement {:.2} s; pair in sync again {:.1} s after the fault",
        writer.longest_gap_after(injected).as_secs_f64(),
        recovered.as_secs_f64()
    );
    check_every_acknowledged_write_kept(name, &pair, &rw_ip, writer).await;
    pair.delete().await;
}

/// SIGKILL of the master's engine and, at the same moment, of the active operator's container.
/// Either outcome is right, and which one happens depends on the race between the kubelet and
/// the restarted operator: a failover (the restarted operator resumes or starts it from what
/// status records), or, when the kubelet restarted the engine before the operator looked again,
/// the same master serving on (it comes back with every write its replica acknowledged: it
/// streams only what it has written to its log). Either way: the pair Ready, writes going on,
/// nothing acknowledged lost.
pub async fn run_operator_crash_case(name: &str) {
    let env = E2eEnv::from_env();
    let hook = env.fault_hook();
    let client = cluster::client(&env).await;
    let (pair, before) = create_ready_pair(&client, &env, name).await;
    let (rw_ip, writer) = start_writer(&pair).await;
    let operator = operator_leader_pod(&client, &env)
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
    let (id, _) = pair
        .engine_container(&before.master)
        .await
        .expect("the master's engine container");
    let engine_args = ["kill-container", before.master_node.as_str(), id.as_str()];
    let operator_args = ["kill-container", op_node.as_str(), op_container.as_str()];
    let injected = Instant::now();
    tokio::join!(hook.run(&engine_args), hook.run(&operator_args));
    let n = writer.acked();
    let after = pair
        .expect(
            "the pair Ready again with writes going on",
            RECOVERY,
            || async {
                let h = pair.healthy().await?;
                (writer.acked() >= n + 100).then_some(h)
            },
        )
        .await;
    println!(
        "figure: {name}: master engine and operator killed → pair Ready with writes going on {:.1} s; longest wait for an acknowledgement {:.2} s; {}",
        injected.elapsed().as_secs_f64(),
        writer.longest_gap_after(injected).as_secs_f64(),
        if after.master == before.master {
            format!("the same master {} (restarted before the operator looked), term {}", after.master, after.term)
        } else {
            format!("failed over to {} in term {}", after.master, after.term)
        }
    );
    assert!(after.term >= before.term);
    check_every_acknowledged_write_kept(name, &pair, &rw_ip, writer).await;
    pair.delete().await;
}
