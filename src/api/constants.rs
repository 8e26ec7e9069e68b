//! Names shared across the API, the operator and the plugin: labels, annotations, ports, the
//! field manager. Pure.

/// Label naming the pair a pod or Service belongs to.
pub const LABEL_PAIR: &str = "redispair.io/pair";
/// Label naming a pod's role (`master` or `replica`), for humans and `kubectl get -L`. Routing
/// never depends on it: the read-write Service selects the master pod by name.
pub const LABEL_ROLE: &str = "redispair.io/role";
/// Label carrying the pod name (Services select one pod through it).
pub const LABEL_POD: &str = "redispair.io/pod";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "redispair-operator";

pub const ROLE_MASTER: &str = "master";
pub const ROLE_REPLICA: &str = "replica";

/// Annotation written by `kubectl redispair switchover` (value: a request id).
pub const ANNOTATION_SWITCHOVER: &str = "redispair.io/switchover";
/// Annotation on a pod: the operator must treat it as fenced (never master, out of Services).
/// Its value is read by [`is_fenced`].
pub const ANNOTATION_FENCED: &str = "redispair.io/fenced";

/// Whether a pod's annotations fence it: the annotation is present with any value but
/// `"false"` (any case) or the empty string. The one reading shared by the operator and the
/// plugin (they used to disagree on `"false"`).
pub fn is_fenced(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations
        .get(ANNOTATION_FENCED)
        .is_some_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("false"))
}
/// Annotation on an engine pod: the hash of the spec it was built from. A pod whose hash
/// differs from the current one is rolled (replica first, switchover, old master).
pub const ANNOTATION_SPEC_HASH: &str = "redispair.io/spec-hash";
/// Annotation on an engine pod: which version of the pair's password its engine runs with,
/// as `<mark>/<restarts>` (a salted hash of the password, and the engine container's restart
/// count when it was applied). Written at creation and after every `CONFIG SET requirepass`
/// the operator sends; a different mark (the Secret changed) or restart count (the engine
/// re-read a file the kubelet may not have refreshed yet) makes the operator send it again.
pub const ANNOTATION_PASSWORD_APPLIED: &str = "redispair.io/password-applied";

pub const ENGINE_PORT: i32 = 6379;
/// The engines' TLS port (`tls-port`) when the pair has `spec.tls`, named `redis-tls` on the
/// container and the Services.
pub const ENGINE_TLS_PORT: i32 = 6380;
pub const ENGINE_TLS_PORT_NAME: &str = "redis-tls";
/// Where the TLS Secret is mounted in the engine container (`tls.crt`, `tls.key`, `ca.crt`).
pub const TLS_DIR: &str = "/var/run/redispair/tls";
/// The engine's Prometheus endpoint in the pods the operator builds (`--metrics-port`; the
/// port redis_exporter uses, so existing scrape configs and NetworkPolicies carry over).
pub const ENGINE_METRICS_PORT: i32 = 9121;
/// Name of that port on the container and the headless Service (what a PodMonitor selects).
pub const ENGINE_METRICS_PORT_NAME: &str = "metrics";
pub const ENGINE_CONTAINER: &str = "engine";
pub const DATA_DIR: &str = "/data";
/// The engine binary inside the image (the Dockerfile and the image builder put it there).
pub const ENGINE_BINARY: &str = "/usr/local/bin/redispair-engine";
pub const OPERATOR_BINARY: &str = "/usr/local/bin/redispair-operator";
/// Default image of the operator and the engines.
pub const DEFAULT_IMAGE: &str = "ghcr.io/redispair/redispair:dev";

/// Server-side apply field manager of the operator.
pub const FIELD_MANAGER: &str = "redispair-operator";
/// Admin user the operator uses to talk to the engines.
pub const ADMIN_USER: &str = "redispair-admin";

/// Annotation written by `kubectl redispair failover --force` (value: a request id): promote
/// the replica now, even if it may lack acknowledged writes. The operator fences the old
/// master first, as in any failover.
pub const ANNOTATION_FORCE_FAILOVER: &str = "redispair.io/force-failover";
/// Annotation written by `kubectl redispair migrate cutover` (value: a request id): end a
/// migration from `spec.bootstrap.migrateFrom` (pause the source's writes, wait until the
/// pair's master has everything, promote it). Removed by the operator once handled.
pub const ANNOTATION_MIGRATE_CUTOVER: &str = "redispair.io/migrate-cutover";
/// Annotation asking for a rollback of the pair to a point of its own archive (value: a
/// [`crate::api::RollbackRequest`] as JSON). It discards newer writes: the request carries
/// the pair's name as confirmation. See docs/backup.md, "Rollback".
pub const ANNOTATION_ROLLBACK: &str = "redispair.io/rollback";
/// Label the Helm chart puts on the operator's Deployment and pods (`kubectl redispair` finds
/// the operator through it).
pub const OPERATOR_APP_LABEL: &str = "app.kubernetes.io/name";
pub const OPERATOR_APP_NAME: &str = "redispair-operator";
