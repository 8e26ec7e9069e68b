//! The `RedisPair` custom resource (redispair.io/v1alpha1): spec, status and their defaults and
//! validation rules. Pure types: no client, no I/O.
//!
//! Status separates intent from observation like CloudNativePG: `targetMaster` is what the
//! operator decided (written before it acts), `currentMaster` is what the engines report. A
//! restarted operator compares the two and resumes the failover recorded in `failover`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backup::{BackupSpec, PairBackupStatus, RecoverySpec, RollbackStatus};

/// A Redis-compatible master/replica pair: two engine pods on different nodes, a read-write
/// Service that follows the master and a read-only Service that selects the replica.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "redispair.io",
    version = "v1alpha1",
    kind = "RedisPair",
    plural = "redispairs",
    singular = "redispair",
    shortname = "rp",
    namespaced,
    status = "RedisPairStatus",
    printcolumn = r#"{"name":"Master","type":"string","jsonPath":".status.currentMaster"}"#,
    printcolumn = r#"{"name":"Replica","type":"string","jsonPath":".status.replica"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.replication.mode"}"#,
    printcolumn = r#"{"name":"Lag","type":"integer","jsonPath":".status.replication.lagBytes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisPairSpec {
    /// Engine image. Defaults to the operator's own image, which ships the engine beside the
    /// operator so their versions move together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Image pull policy of the engine pods (Always, IfNotPresent, Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['Always', 'IfNotPresent', 'Never']").message("imagePullPolicy must be Always, IfNotPresent or Never"))]
    pub image_pull_policy: Option<String>,

    /// CPU and memory requests and limits of the engine container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Where the engines keep their data.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Engine settings.
    #[serde(default)]
    pub engine: EngineSpec,

    /// How writes are replicated and acknowledged.
    #[serde(default)]
    pub replication: ReplicationSpec,

    /// Client authentication.
    #[serde(default)]
    pub auth: AuthSpec,

    /// Placement of the two engine pods.
    #[serde(default)]
    pub topology: TopologySpec,

    /// Automatic failover.
    #[serde(default)]
    pub failover: FailoverSpec,

    /// The read-write and read-only Services.
    #[serde(default)]
    pub services: ServicesSpec,

    /// Extra settings for the engine pods.
    #[serde(default)]
    pub pod: PodOverrides,

    /// Continuous archiving to object storage and base backups (docs/backup.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,

    /// How a new pair's data is initialised (immutable: read once, when the pair is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.bootstrap is immutable"))]
    pub bootstrap: Option<BootstrapSpec>,

    /// TLS for clients, replication and the operator's connection to the engines (off when
    /// unset). See docs/tls.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// How a new pair starts. Empty: with no data.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.recovery) && has(self.migrateFrom))").message("spec.bootstrap takes one of recovery and migrateFrom"))]
pub struct BootstrapSpec {
    /// Restore the first master's data from an archive before it starts (a point-in-time
    /// recovery, or a clone of another pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySpec>,
    /// Live migration from a running Redis (docs/migration.md): both engines replicate from
    /// it, read-only, until `kubectl redispair migrate cutover` makes the pair take over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_from: Option<MigrateFromSpec>,
}

/// Where the engines' certificate comes from, and who must speak TLS. The engines serve TLS on
/// port 6380 (`redis-tls` on the Services) with the certificate mounted from the Secret, and
/// reload it when the Secret changes; the replica links to its master over TLS and the
/// operator connects over TLS, both verifying the peer against `ca.crt`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.issuerRef)").message("tls needs exactly one of secretName and issuerRef"))]
pub struct TlsSpec {
    /// A Secret of type kubernetes.io/tls in the pair's namespace with `tls.crt`, `tls.key`
    /// and `ca.crt`. Its certificate must be valid for server and client authentication (the
    /// replica presents it to its master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message("tls.secretName must not be empty"))]
    pub secret_name: Option<String>,
    /// A cert-manager issuer: the operator creates the Certificate `<pair>-tls` (Secret
    /// `<pair>-tls`) for the Services' and the pods' DNS names, and cert-manager renews it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<TlsIssuerRef>,
    /// Serve plaintext on port 6379 beside TLS (default true). false: TLS only (probes and
    /// hooks inside the pod still use plaintext on 127.0.0.1).
    #[serde(default = "default_true")]
    pub plaintext: bool,
    /// Whether TLS clients must present a certificate signed by the CA: `None` (default),
    /// `Optional` (verified when presented) or `Required` (the engine's `tls-auth-clients` no,
    /// optional, yes; not those words here, which YAML 1.1 reads as booleans).
    #[serde(default)]
    pub client_auth: TlsClientAuth,
}

/// A cert-manager `Issuer` or `ClusterIssuer`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsIssuerRef {
    #[x_kube(validation = Rule::new("self != ''").message("tls.issuerRef.name must not be empty"))]
    pub name: String,
    /// Issuer (default) or ClusterIssuer.
    #[serde(default = "default_issuer_kind")]
    #[x_kube(validation = Rule::new("self in ['Issuer', 'ClusterIssuer']").message("tls.issuerRef.kind must be Issuer or ClusterIssuer"))]
    pub kind: String,
    /// API group of the issuer (default cert-manager.io).
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

fn default_issuer_kind() -> String {
    "Issuer".to_string()
}
fn default_issuer_group() -> String {
    "cert-manager.io".to_string()
}

/// See [`TlsSpec::client_auth`] (Redis's `tls-auth-clients`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TlsClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

impl TlsClientAuth {
    /// The engine's `tls-auth-clients` value.
    pub fn as_engine_setting(self) -> &'static str {
        match self {
            TlsClientAuth::None => "no",
            TlsClientAuth::Optional => "optional",
            TlsClientAuth::Required => "yes",
        }
    }
}

/// The Redis (7.x, or any server speaking Redis's replication protocol) a pair migrates from.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrateFromSpec {
    /// Host name or IP address of the source, reachable from the engine pods and the operator.
    #[x_kube(validation = Rule::new("self != ''").message("migrateFrom.host must not be empty"))]
    pub host: String,
    /// Port of the source.
    #[serde(default = "default_redis_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("migrateFrom.port must be between 1 and 65535"))]
    pub port: i32,
    /// Secret holding the source's password (`masterauth`); unset: the source has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyRef>,
    /// ACL user to authenticate as (`masteruser`); unset: the default user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How long each `CLIENT PAUSE WRITE` the operator sends to the source at cutover lasts
    /// (renewed until the pair has taken over, then left to lapse): the window in which
    /// clients move to the pair. A write the source accepts after it is not in the pair.
    #[serde(default = "default_pause_seconds")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 3600").message("migrateFrom.pauseSeconds must be between 1 and 3600"))]
    pub pause_seconds: i32,
    /// TLS to the source (unset: plaintext), for the engines' replication link and the
    /// operator's own connection (offset, pause). Independent of `spec.tls`, the pair's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<MigrateFromTlsSpec>,
}

/// How the engines and the operator speak TLS to a migration source (docs/migration.md, "TLS
/// to the source"). `tls: {}` verifies the source against the system's CA certificates, by
/// `host`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.insecureSkipVerify && (has(self.caSecret) || has(self.serverName)))").message("migrateFrom.tls.insecureSkipVerify verifies nothing: it takes no caSecret or serverName"))]
pub struct MigrateFromTlsSpec {
    /// A Secret in the pair's namespace whose key `ca.crt` holds the CA certificate(s) the
    /// source's certificate must chain to. Unset: the system's CA certificates (the image's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message("migrateFrom.tls.caSecret must not be empty"))]
    pub ca_secret: Option<String>,
    /// The name the source's certificate must carry, also sent as SNI. Unset: `host` (an IP
    /// address then needs an IP entry in the certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message("migrateFrom.tls.serverName must not be empty"))]
    pub server_name: Option<String>,
    /// A Secret (type kubernetes.io/tls) whose `tls.crt` and `tls.key` the engines and the
    /// operator present to the source, for a source that requires client certificates
    /// (Redis's `tls-auth-clients yes`, its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message("migrateFrom.tls.clientCertSecret must not be empty"))]
    pub client_cert_secret: Option<String>,
    /// Encrypt without verifying the source's certificate (a self-signed source whose
    /// certificate cannot serve as a CA). Insecure: whoever can intercept the connection can
    /// pose as the source and feed the pair its data. Reported as the condition
    /// `MigrationSourceVerified=False` and a Warning Event.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_redis_port() -> i32 {
    6379
}
fn default_pause_seconds() -> i32 {
    30
}

/// Storage of each engine's data directory.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.ephemeral) || self.ephemeral == oldSelf.ephemeral").message("storage.ephemeral is immutable"))]
#[x_kube(validation = Rule::new("!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)").message("storage.storageClassName is immutable"))]
pub struct StorageSpec {
    /// Size of each engine's PersistentVolumeClaim (ignored when ephemeral).
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = Rule::new("quantity(self).isGreaterThan(quantity('0'))").message("storage.size must be positive"))]
    pub size: Quantity,

    /// StorageClass of the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,

    /// Keep data in an emptyDir instead of a PersistentVolumeClaim (a cache: a pod that is
    /// replaced starts empty and syncs from its peer).
    #[serde(default)]
    pub ephemeral: bool,

    /// What happens to the claim of a replica lost with its node. `DeleteClaim` (default):
    /// local volumes cannot follow the pod, so the claim is deleted and the recreated pod
    /// full-syncs from the master. `KeepClaim`: network-attached storage, the recreated pod
    /// mounts the same volume on another node and resumes by partial resync.
    #[serde(default)]
    pub on_node_loss: NodeLossPolicy,
}

/// See [`StorageSpec::on_node_loss`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeLossPolicy {
    #[default]
    DeleteClaim,
    KeepClaim,
}

fn default_storage_size() -> Quantity {
    Quantity("1Gi".to_string())
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_storage_size(),
            storage_class_name: None,
            ephemeral: false,
            on_node_loss: NodeLossPolicy::DeleteClaim,
        }
    }
}

/// Engine configuration passed to both engines.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EngineSpec {
    /// Memory limit of the dataset (for example 512Mi); unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory: Option<Quantity>,

    /// What to evict when maxmemory is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_policy: Option<EvictionPolicy>,

    /// When the write log is fsynced (always, everysec, no).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appendfsync: Option<AppendFsync>,

    /// Extra `name value` configuration lines. Settings the operator manages (port, dir,
    /// replication, auth) cannot be overridden here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_config: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    Noeviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::Noeviction => "noeviction",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::AllkeysLfu => "allkeys-lfu",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AppendFsync {
    Always,
    Everysec,
    No,
}

/// Replication settings.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSpec {
    /// async: acknowledged before the replica has the write (a failover may lose the last
    /// writes); semi-sync (default): acknowledged once the replica has it, zero acknowledged
    /// writes lost on failover; sync: like semi-sync and never degrades.
    #[serde(default)]
    pub mode: ReplicationMode,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationMode {
    Async,
    #[default]
    SemiSync,
    Sync,
}

impl ReplicationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationMode::Async => "async",
            ReplicationMode::SemiSync => "semi-sync",
            ReplicationMode::Sync => "sync",
        }
    }
}

/// Client authentication.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Secret holding the client password. Created with a random password when it does not
    /// exist; when unset, a Secret named `<pair>-password` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyRef>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret in the pair's namespace.
    #[x_kube(validation = Rule::new("self != ''").message("passwordSecret.name must not be empty"))]
    pub name: String,
    /// Key in the Secret (default "password").
    #[serde(default = "default_password_key")]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_string()
}

/// Placement of the two pods.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpec {
    /// The two pods never share a value of this node label (required anti-affinity).
    #[serde(default = "default_topology_key")]
    pub topology_key: String,
    /// Prefer placing the two pods in different zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_spread: Option<ZoneSpread>,
}

fn default_topology_key() -> String {
    "kubernetes.io/hostname".to_string()
}

impl Default for TopologySpec {
    fn default() -> Self {
        TopologySpec {
            topology_key: default_topology_key(),
            zone_spread: None,
        }
    }
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpread {
    /// Node label naming the zone (default topology.kubernetes.io/zone).
    #[serde(default = "default_zone_key")]
    pub topology_key: String,
}

fn default_zone_key() -> String {
    "topology.kubernetes.io/zone".to_string()
}

/// Automatic failover.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSpec {
    /// Fail over automatically when the master fails.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long the operator's probes must fail (while the replica also reports its link
    /// down) before the master counts as failed. A gone pod or a NotReady node counts at once.
    #[serde(default = "default_detection_seconds")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 60").message("failover.detectionSeconds must be between 1 and 60"))]
    pub detection_seconds: i32,
    /// Allow failing over to a replica that may lack acknowledged writes (after a degrade to
    /// async, or in async mode). Off by default: no acknowledged write is ever given up.
    #[serde(default)]
    pub allow_data_loss: bool,
}

fn default_true() -> bool {
    true
}
fn default_detection_seconds() -> i32 {
    2
}

impl Default for FailoverSpec {
    fn default() -> Self {
        FailoverSpec {
            enabled: true,
            detection_seconds: default_detection_seconds(),
            allow_data_loss: false,
        }
    }
}

/// The Services in front of the pair.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServicesSpec {
    /// Service type of the read-write and read-only Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['ClusterIP', 'NodePort', 'LoadBalancer']").message("services.type must be ClusterIP, NodePort or LoadBalancer"))]
    pub r#type: Option<String>,
    /// Annotations added to both Services.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Pod-level overrides for the engine pods.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Extra labels (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Observed state of a pair.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RedisPairStatus {
    /// Pending, Creating, Ready, Upgrading, FailingOver, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The pod the operator decided should be master (intent, written before acting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_master: Option<String>,
    /// The pod that reports itself master with the current term (observation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_master: Option<String>,
    /// The replica pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// Replication term: grows by one at every promotion; engines refuse lower terms.
    #[serde(default)]
    pub term: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationStatus>,
    /// The term for which the operator authorised the master to stop waiting for the replica
    /// (semi-sync degraded to async). Automatic failover is off while it equals `term` and
    /// the replica has not caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degrade_authorized_term: Option<i64>,
    /// The last term in which the pair was seen Ready (master Ready and serving, replica
    /// linked). Before the first time, a master pod not Ready yet but answering as master is
    /// starting, not failed, and the phase is Creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_term: Option<i64>,
    /// A failover in progress, recorded before each step so a restarted operator resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<LastFailover>,
    /// The last `redispair.io/force-failover` request id the operator handled (carried out or
    /// refused); a request is acted on once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_failover_handled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceNames>,
    /// A rollout of a changed pod spec in progress (replica first, switchover, old master),
    /// recorded before each step so a restarted operator resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutProgress>,
    /// A destructive repair in progress (a lost replica replaced, a detached one full-synced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairProgress>,
    /// Archiving and base backups (with `spec.backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PairBackupStatus>,
    /// A live migration from `spec.bootstrap.migrateFrom`: its phase (recorded before each
    /// step) and what was last observed of the source and the engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// The last rollback requested with `redispair.io/rollback` (docs/backup.md, "Rollback"):
    /// its phase, recorded before each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
}

/// The phases of a migration. Each is recorded before it is acted on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    /// Both engines replicate from the source, read-only (writes get READONLY).
    Following,
    /// Cutover requested: writes on the source are paused until the pair's master holds the
    /// source's offset, then it is promoted.
    CuttingOver,
    /// The pair took over (promoted in its own term); the source is no longer followed.
    Completed,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    pub phase: MigrationPhase,
    /// `host:port` of the source.
    pub source: String,
    /// RFC 3339 time the migration started (the first pass that saw `migrateFrom`).
    pub started_at: String,
    /// The `redispair.io/migrate-cutover` request handled (carried out or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The pod that follows the source and becomes master at cutover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Observed: the master's link to the source is up.
    #[serde(default)]
    pub link_up: bool,
    /// Observed: the source's replication offset (None: the operator could not read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_offset: Option<i64>,
    /// Observed: the offset the master has applied from the source.
    #[serde(default)]
    pub master_offset: i64,
    /// Bytes of the source's stream the master lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<i64>,
    /// Why the source could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_error: Option<String>,
}

impl MigrationStatus {
    /// The status of a migration in `phase` from `source` before anything was observed (no
    /// times, no link, offsets unknown): where the operator starts and what tests build on.
    pub fn new(phase: MigrationPhase, source: impl Into<String>) -> MigrationStatus {
        MigrationStatus {
            phase,
            source: source.into(),
            started_at: String::new(),
            cutover_request: None,
            cutover_started_at: None,
            completed_at: None,
            master: None,
            link_up: false,
            source_offset: None,
            master_offset: 0,
            lag_bytes: None,
            source_error: None,
        }
    }
}

/// The steps of a rollout. Each is recorded before it is performed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutStep {
    /// The replica pod was deleted to be recreated from the current spec; waiting until it is
    /// back, linked and in sync.
    ReplacingReplica,
    /// The master runs an outdated spec: a planned switchover moves the role away from it.
    Switchover,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutProgress {
    pub step: RolloutStep,
    /// The pod the step is about.
    pub pod: String,
    /// RFC 3339 time the rollout started.
    pub started_at: String,
}

/// A destructive repair, recorded before the operator carries it out (so a restarted operator
/// resumes it instead of deciding again).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepairProgress {
    pub action: RepairAction,
    /// The pod repaired.
    pub pod: String,
    /// The pod object the decision was about (a deletion's precondition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// FullSync: the master the replica syncs from, and its term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(default)]
    pub term: i64,
    pub reason: String,
    /// RFC 3339 time the repair was decided.
    pub started_at: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairAction {
    /// The pod is force-deleted (lost node or evicted) and recreated; its claim kept.
    ReplacePod,
    /// The pod is force-deleted with its claim (local storage on a lost node).
    ReplacePodAndClaim,
    /// The pod's engine is in CrashLoopBackOff: the pod is deleted (its claim kept) and
    /// recreated at once instead of after the kubelet's back-off.
    RestartPod,
    /// The replica discards its data and full-syncs from the master.
    FullSync,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStatus {
    pub mode: String,
    /// Bytes of the master's stream the replica has not acknowledged.
    #[serde(default)]
    pub lag_bytes: i64,
    /// Seconds since the replica last acknowledged.
    #[serde(default)]
    pub lag_seconds: i64,
    /// The replica holds every write the master acknowledged.
    #[serde(default)]
    pub in_sync: bool,
    #[serde(default)]
    pub master_offset: i64,
    #[serde(default)]
    pub replica_offset: i64,
}

/// The steps of a failover, in order. Each is recorded before it is performed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverStep {
    /// The old master is taken out of the read-write Service and fenced.
    Fencing,
    /// Planned switchover: writes paused on the master until the replica caught up.
    Pausing,
    /// The replica is promoted with the new term.
    Promoting,
    /// The read-write Service selector is moved to the new master.
    Switching,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverProgress {
    pub step: FailoverStep,
    pub from: String,
    pub to: String,
    /// The term the new master is promoted with.
    pub term: i64,
    pub reason: String,
    /// RFC 3339 time the failover started.
    pub started_at: String,
    /// Planned switchover (no data loss, old master demoted) rather than failover.
    #[serde(default)]
    pub planned: bool,
    /// Async failover: RFC 3339 time from which the promoted master may accept writes (the old
    /// master's write lease has certainly lapsed by then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_after: Option<String>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LastFailover {
    pub time: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Seconds from detection to the Service selecting the new master.
    pub duration_seconds: f64,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNames {
    pub read_write: String,
    pub read_only: String,
    pub headless: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest that docs and tests share (issue contract) must parse with these defaults.
    #[test]
    fn contract_manifest_parses_with_defaults() {
        let yaml = r#"
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata:
  name: cache
spec:
  replication:
    mode: semi-sync
  storage:
    size: 1Gi
  auth:
    passwordSecret:
      name: cache-password
  failover:
    detectionSeconds: 2
"#;
        let rp: RedisPair = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(rp.spec.replication.mode, ReplicationMode::SemiSync);
        assert_eq!(rp.spec.storage.size, Quantity("1Gi".into()));
        assert!(!rp.spec.storage.ephemeral);
        let secret = rp.spec.auth.password_secret.unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("cache-password", "password")
        );
        assert!(rp.spec.failover.enabled && !rp.spec.failover.allow_data_loss);
        assert_eq!(rp.spec.failover.detection_seconds, 2);
        assert_eq!(rp.spec.topology.topology_key, "kubernetes.io/hostname");
    }

    #[test]
    fn unknown_mode_is_rejected() {
        let err = serde_json::from_str::<ReplicationSpec>(r#"{"mode":"fast"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"));
    }

    #[test]
    fn crd_has_printer_columns_and_short_name() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_string(&RedisPair::crd()).unwrap();
        for col in ["Master", "Replica", "Phase", "Mode", "Lag", "Age"] {
            assert!(crd.contains(&format!(r#""name":"{col}""#)), "{col}");
        }
        assert!(crd.contains(r#""shortNames":["rp"]"#));
        assert!(crd.contains("self == oldSelf") || crd.contains("oldSelf"));
    }
}
