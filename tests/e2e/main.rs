//! End-to-end suite: the operator as a user installs it (Helm chart), on a real multi-node
//! cluster, through a provider-agnostic interface (a kubeconfig and a fault hook from the
//! environment, see `env`). Failover cases of issue #5: master pod deleted, engine process
//! killed, engine hung (SIGSTOP, resumed after the failover), master node killed, master node
//! partitioned, each under a writer of unique keys going through the read-write Service's
//! ClusterIP (every acknowledged key read back at the end); a planned switchover under the
//! same writer; and the replica's engine killed or hung (no failover: the semi-sync master
//! waits, or degrades on the operator's word, and the replica catches up); and the master's
//! engine killed together with the operator; point-in-time recovery from S3 (`backup`), and
//! issue 16's other cases (`archive_cases`): restores to three points across a failover and a
//! clone, a scheduled backup, retention and a corrupted object, a rollback.
//! `metrics_scraped_across_a_failover` (issue 18): both endpoints scraped, parsed and checked
//! across a failover and the pair's deletion.
//! `torture` (issue 14, `hack/torture.sh`): one pair through rounds of faults on whichever pod
//! is master, under four writers. Does I/O: the Kubernetes API, Redis over TCP, the fault
//! hook's processes.
//!
//! Every test is ignored by default (`cargo test --all-targets` has no cluster): run it with
//! `hack/e2e.sh --provider local|kind`, which brings the cluster up, installs the operator
//! and runs `cargo test --test e2e -- --ignored --test-threads=1` with the hooks set.

#[path = "../acked_writes/mod.rs"]
mod acked_writes;
mod archive_cases;
mod backup;
mod cluster;
mod env;
mod failover;
mod metrics;
#[path = "../metrics_support/mod.rs"]
mod metrics_support;
mod migration;
mod tls;
#[path = "../tls_support/mod.rs"]
mod tls_support;
mod torture;
mod writer;

use failover::{
    run_failover_case, run_operator_crash_case, run_replica_down_case, Fault, ReplicaFault,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_pod_deleted() {
    run_failover_case("e2e-delete-pod", Fault::DeleteMasterPod).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_engine_process_killed() {
    run_failover_case("e2e-kill-process", Fault::KillMasterProcess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_engine_and_operator_killed() {
    run_operator_crash_case("e2e-kill-operator").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_engine_hung() {
    run_failover_case("e2e-hung", Fault::FreezeMasterProcess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn replica_engine_killed() {
    run_replica_down_case("e2e-replica-kill", ReplicaFault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn replica_engine_hung() {
    run_replica_down_case("e2e-replica-hung", ReplicaFault::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_node_killed() {
    run_failover_case("e2e-kill-node", Fault::KillMasterNode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn master_node_partitioned() {
    run_failover_case("e2e-partition", Fault::PartitionMasterNode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn planned_switchover() {
    run_failover_case("e2e-switchover", Fault::PlannedSwitchover).await;
}

/// Issue 15: a live Redis migrated into a new pair under a writer that moves to the pair at
/// cutover (`tests/e2e/migration.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn migration_from_stock_redis() {
    migration::run_migration_case("e2e-migrate", false).await;
}

/// The same over TLS (`migrateFrom.tls`): the source's own CA, a certificate naming only a DNS
/// name (`serverName`), client certificates required (`clientCertSecret`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn migration_from_stock_redis_over_tls() {
    migration::run_migration_case("e2e-migrate-tls", true).await;
}

/// Issue 14: rounds of faults on one pair under four writers (`tests/e2e/torture.rs`). Does
/// nothing unless `E2E_TORTURE_ROUNDS` is set: `hack/torture.sh --rounds N --mode M` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/torture.sh"]
async fn torture() {
    torture::run_torture().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn backup_and_point_in_time_recovery() {
    backup::run_point_in_time_recovery_case("e2e-backup").await;
}

/// Issue 16: three recorded points restored by offset and time (the third after a failover
/// during archiving) and a clone of the live pair, each compared by digest
/// (`tests/e2e/archive_cases.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn backup_points_across_a_failover_and_a_clone() {
    archive_cases::run_points_failover_and_clone_case("e2e-pitr3").await;
}

/// Issue 16: a scheduled backup fires, retention deletes what the window no longer needs, a
/// corrupted object is named by the restore that reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn backup_schedule_retention_and_a_corrupt_object() {
    archive_cases::run_schedule_retention_and_corruption_case("e2e-retain").await;
}

/// Issue 16: a running pair rolled back in place to a point (the plugin's `rollback`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn backup_rollback_of_a_running_pair() {
    archive_cases::run_rollback_case("e2e-rollback").await;
}

/// Issue 18: both engines' and the operator's metrics endpoints scraped and parsed, every
/// family and label checked; a failover moves the role and term series; a deleted pair's
/// series go (`tests/e2e/metrics.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn metrics_scraped_across_a_failover() {
    metrics::run_metrics_scrape_case("e2e-metrics").await;
}

/// A TLS-only pair under a writer through the Service's TLS port; its Secret rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: hack/e2e.sh"]
async fn tls_rotation_under_a_writer() {
    tls::run_tls_rotation_case("e2e-tls").await;
}
