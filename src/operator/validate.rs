//! The validate step: turns a RedisPair and the objects it refers to into a [`ValidatedPair`]
//! that the builders can use without further checks. Pure.
//!
//! Decisions (documented in docs/failover.md): a named password Secret that does not exist is
//! created by the operator (the contract manifest relies on it); one that exists but lacks the
//! key is a validation error (we never overwrite a user's Secret). Validation errors become a
//! `Ready=False` condition and a Warning Event, never a crash.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use super::engine_client::EngineAccess;
use crate::api::constants::DEFAULT_IMAGE;
use crate::api::{RedisPair, RedisPairSpec};

/// Settings the operator passes itself; `extraConfig` may not override them.
pub const MANAGED_SETTINGS: &[&str] = &[
    "port",
    "bind",
    "metrics-port",
    "dir",
    "requirepass",
    "requirepass-file",
    "admin-user",
    "admin-password",
    "admin-password-file",
    "masterauth-file",
    "replication-mode",
    "semi-sync-degrade",
    "write-lease-ms",
    "repl-timeout",
    "replicaof",
    "slaveof",
    "maxmemory",
    "maxmemory-policy",
    "appendfsync",
    "archive-url",
    "archive-credentials-dir",
    "archive-retention",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-replication",
    "tls-client-cert-file",
    "tls-client-key-file",
    "loopback-port",
    "master-tls",
    "master-tls-ca-cert-file",
    "master-tls-cert-file",
    "master-tls-key-file",
    "master-tls-server-name",
    "master-tls-verify",
];

/// The longest pair name: `<name>-headless` must stay a valid 63-character Service name.
pub const MAX_NAME_LEN: usize = 50;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidateError {
    #[error("the RedisPair has no namespace")]
    NoNamespace,
    #[error("name {0:?} is longer than {MAX_NAME_LEN} characters")]
    NameTooLong(String),
    #[error("Secret {secret} exists but has no key {key:?}")]
    PasswordKeyMissing { secret: String, key: String },
    #[error("Secret {secret} key {key:?} is empty")]
    PasswordEmpty { secret: String, key: String },
    #[error("engine.extraConfig line {0:?} must be `name value`")]
    BadExtraConfig(String),
    #[error("engine.extraConfig may not set {0:?}: the operator manages it")]
    ManagedSetting(String),
    #[error("backup.{0}")]
    BadSchedule(super::schedule::ScheduleError),
    #[error("TLS Secret {secret} has no (or an empty) key {key:?}")]
    TlsKeyMissing { secret: String, key: &'static str },
    #[error("bootstrap.migrateFrom: Secret {secret} does not exist")]
    SourceSecretMissing { secret: String },
    #[error("bootstrap.migrateFrom.tls: Secret {secret} has no (or an empty) key {key:?}")]
    SourceTlsKeyMissing { secret: String, key: &'static str },
    #[error(
        "spec.bootstrap is immutable: this pair migrates from {recorded}, the spec now names {now}"
    )]
    BootstrapChanged { recorded: String, now: String },
    #[error("spec.bootstrap.migrateFrom was added to a pair that already has a master of its own: a migration only bootstraps a new pair")]
    BootstrapAfterCreation,
}

impl ValidateError {
    /// Label for metrics and the Event reason.
    pub fn category(&self) -> &'static str {
        "InvalidSpec"
    }
}

/// Names of every object of a pair, derived in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub pair: String,
    pub pods: [String; 2],
    pub read_write: String,
    pub read_only: String,
    pub headless: String,
    pub pdb: String,
    pub admin_secret: String,
    pub password_secret: String,
    pub password_key: String,
    /// The Secret with the engines' certificate (`spec.tls`): the one named, or the one the
    /// operator's cert-manager Certificate writes (`<pair>-tls`).
    pub tls_secret: Option<String>,
    /// The cert-manager Certificate the operator creates (`spec.tls.issuerRef`).
    pub certificate: Option<String>,
    /// The Secret and key of a migration source's password (`bootstrap.migrateFrom`).
    pub source_secret: Option<(String, String)>,
    /// The Secret with the CA a migration source is verified against (`migrateFrom.tls.caSecret`).
    pub source_ca_secret: Option<String>,
    /// The Secret with the client certificate presented to a migration source
    /// (`migrateFrom.tls.clientCertSecret`).
    pub source_client_secret: Option<String>,
    /// The archive's credentials Secret (`spec.backup.destination.credentialsSecret`).
    pub archive_secret: Option<String>,
    /// A recovery source's credentials Secret (`spec.bootstrap.recovery.source`).
    pub recovery_secret: Option<String>,
}

impl Names {
    pub fn new(pair: &RedisPair) -> Names {
        let name = pair.name_any();
        let (password_secret, password_key) = match &pair.spec.auth.password_secret {
            Some(r) => (r.name.clone(), r.key.clone()),
            None => (format!("{name}-password"), "password".to_string()),
        };
        let (tls_secret, certificate) = match &pair.spec.tls {
            Some(t) => match &t.secret_name {
                Some(s) => (Some(s.clone()), None),
                None => (Some(format!("{name}-tls")), Some(format!("{name}-tls"))),
            },
            None => (None, None),
        };
        Names {
            tls_secret,
            certificate,
            pods: [format!("{name}-a"), format!("{name}-b")],
            read_write: name.clone(),
            read_only: format!("{name}-ro"),
            headless: format!("{name}-headless"),
            pdb: name.clone(),
            admin_secret: format!("{name}-admin"),
            password_secret,
            password_key,
            source_secret: super::migrate::migrate_from(pair)
                .and_then(|m| m.password_secret.as_ref())
                .map(|r| (r.name.clone(), r.key.clone())),
            source_ca_secret: super::migrate::migrate_from(pair)
                .and_then(|m| m.tls.as_ref()?.ca_secret.clone()),
            source_client_secret: super::migrate::migrate_from(pair)
                .and_then(|m| m.tls.as_ref()?.client_cert_secret.clone()),
            archive_secret: pair
                .spec
                .backup
                .as_ref()
                .and_then(|b| b.destination.credentials_secret.as_ref())
                .map(|r| r.name.clone()),
            recovery_secret: pair
                .spec
                .bootstrap
                .as_ref()
                .and_then(|b| b.recovery.as_ref())
                .and_then(|r| r.source.credentials_secret.as_ref())
                .map(|r| r.name.clone()),
            pair: name,
        }
    }

    /// The claim holding a pod's data directory.
    pub fn pvc(&self, pod: &str) -> String {
        format!("data-{pod}")
    }
}

/// A RedisPair whose spec and references were checked.
#[derive(Debug, Clone)]
pub struct ValidatedPair {
    pub names: Names,
    pub namespace: String,
    pub spec: RedisPairSpec,
    pub image: String,
    /// Owner reference put on every object the operator creates for the pair.
    pub owner: OwnerReference,
    /// The password Secret does not exist: the operator creates it.
    pub create_password_secret: bool,
    /// The admin Secret does not exist: the operator creates it.
    pub create_admin_secret: bool,
    /// `extraConfig` as (name, value) pairs.
    pub extra_config: Vec<(String, String)>,
    /// The admin password when the admin Secret exists (the prober needs it).
    pub admin_password: Option<String>,
    /// The client password when the password Secret exists (rotated into running engines).
    pub password: Option<String>,
    /// `spec.backup.schedule`, parsed.
    pub schedule: Option<super::schedule::Schedule>,
    /// `spec.bootstrap.recovery` is set and no master was ever elected: the first pod's data
    /// directory is restored from the archive before its engine starts, and it alone may be
    /// elected (see `decide_pass`).
    pub restore_first_master: bool,
    /// A rollback in its Restoring phase (set by the controller from `status.rollback`): the
    /// first pod's restore step reads the pair's own archive, to this target.
    pub rollback_restore: Option<super::rollback::RollbackRestore>,
    /// The CA (`ca.crt` of the TLS Secret) when the pair has TLS and the Secret exists.
    pub tls_ca: Option<Vec<u8>>,
    /// The pair's certificate and key (`tls.crt`, `tls.key`), which the operator presents.
    pub tls_client: Option<(Vec<u8>, Vec<u8>)>,
    /// The migration source's password (`bootstrap.migrateFrom.passwordSecret`), set by
    /// [`validate_migration`].
    pub source_password: Option<String>,
    /// How the operator speaks TLS to the migration source (`bootstrap.migrateFrom.tls`),
    /// with the Secrets' contents, set by [`validate_migration`].
    pub source_tls: Option<super::migrate::SourceTls>,
}

impl ValidatedPair {
    /// How the operator reaches the engines, once the admin Secret exists (and, with TLS,
    /// the TLS Secret: without its CA the operator cannot verify the engines, so it does
    /// not talk to them).
    pub fn engine_access(&self) -> Option<EngineAccess> {
        if self.spec.tls.is_some() && self.tls_ca.is_none() {
            return None;
        }
        Some(EngineAccess {
            admin_password: self.admin_password.clone()?,
            tls_ca: self.tls_ca.clone(),
            tls_client: self.tls_client.clone(),
        })
    }
}

/// Check the TLS Secret of a pair with `spec.tls` (None: not there yet; cert-manager may not
/// have issued it) and take its CA for the operator's connections.
pub fn validate_tls(v: &mut ValidatedPair, secret: Option<&Secret>) -> Result<(), ValidateError> {
    let (Some(_), Some(name), Some(secret)) = (&v.spec.tls, &v.names.tls_secret, secret) else {
        return Ok(());
    };
    let data = secret.data.as_ref();
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        if data.is_none_or(|d| d.get(key).is_none_or(|v| v.0.is_empty())) {
            return Err(ValidateError::TlsKeyMissing {
                secret: name.clone(),
                key,
            });
        }
    }
    let get = |key: &str| data.and_then(|d| d.get(key)).map(|c| c.0.clone());
    v.tls_ca = get("ca.crt");
    v.tls_client = get("tls.crt").zip(get("tls.key"));
    Ok(())
}

/// A password as the engine reads it from the mounted Secret file: one trailing newline
/// (`\n` or `\r\n`, as `kubectl create secret --from-file` of an edited file leaves) is not
/// part of it. The operator must send exactly what the engine would read, or a rotation and a
/// restart would disagree.
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let raw = match secret.data.as_ref().and_then(|d| d.get(key)) {
        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
        None => secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))?
            .clone(),
    };
    Some(
        raw.strip_suffix("\r\n")
            .or_else(|| raw.strip_suffix('\n'))
            .unwrap_or(&raw)
            .to_string(),
    )
}

/// Check a pair against the Secrets it refers to (None: the Secret does not exist).
pub fn validate(
    pair: &RedisPair,
    password_secret: Option<&Secret>,
    admin_secret: Option<&Secret>,
    default_image: Option<&str>,
) -> Result<ValidatedPair, ValidateError> {
    let namespace = pair.namespace().ok_or(ValidateError::NoNamespace)?;
    let names = Names::new(pair);
    if names.pair.len() > MAX_NAME_LEN {
        return Err(ValidateError::NameTooLong(names.pair));
    }
    if let Some(s) = password_secret {
        match secret_value(s, &names.password_key) {
            None => {
                return Err(ValidateError::PasswordKeyMissing {
                    secret: names.password_secret.clone(),
                    key: names.password_key.clone(),
                })
            }
            Some(v) if v.is_empty() => {
                return Err(ValidateError::PasswordEmpty {
                    secret: names.password_secret.clone(),
                    key: names.password_key.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let mut extra_config = Vec::new();
    for line in &pair.spec.engine.extra_config {
        let line = line.trim();
        let Some((name, value)) = line.split_once(char::is_whitespace) else {
            return Err(ValidateError::BadExtraConfig(line.to_string()));
        };
        let name = name.to_ascii_lowercase();
        if MANAGED_SETTINGS.contains(&name.as_str()) {
            return Err(ValidateError::ManagedSetting(name));
        }
        extra_config.push((name, value.trim().to_string()));
    }
    let schedule = match pair
        .spec
        .backup
        .as_ref()
        .and_then(|b| b.schedule.as_deref())
    {
        Some(text) => {
            Some(super::schedule::Schedule::parse(text).map_err(ValidateError::BadSchedule)?)
        }
        None => None,
    };
    let status = pair.status.as_ref();
    let restore_first_master = pair
        .spec
        .bootstrap
        .as_ref()
        .is_some_and(|b| b.recovery.is_some())
        && status.is_none_or(|s| s.target_master.is_none() && s.ready_term.is_none());
    let owner = pair
        .controller_owner_ref(&())
        .expect("a RedisPair read from the API server has a name and uid");
    Ok(ValidatedPair {
        image: pair
            .spec
            .image
            .clone()
            .or_else(|| default_image.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        spec: pair.spec.clone(),
        create_password_secret: password_secret.is_none(),
        create_admin_secret: admin_secret.is_none(),
        admin_password: admin_secret.and_then(|s| secret_value(s, "password")),
        password: password_secret.and_then(|s| secret_value(s, &names.password_key)),
        tls_ca: None,
        tls_client: None,
        source_password: None,
        source_tls: None,
        extra_config,
        owner,
        namespace,
        names,
        schedule,
        restore_first_master,
        rollback_restore: None,
    })
}

/// The Secrets a migration source's settings name (None: it does not exist).
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceSecrets<'a> {
    pub password: Option<&'a Secret>,
    pub ca: Option<&'a Secret>,
    pub client: Option<&'a Secret>,
}

/// Check `spec.bootstrap.migrateFrom` against the status (the bootstrap is immutable: the
/// operator cannot see the old spec, but the status records what it started) and resolve the
/// source's password and TLS Secrets. `status` is the newest status known. A Secret that is
/// missing, or lacks its key, blocks the pass (`InvalidSpec`): no pod is built, so nothing
/// waits for a volume or crash-loops, until it is fixed. Once the migration completed the
/// source is never contacted again and its Secrets may go.
pub fn validate_migration(
    v: &mut ValidatedPair,
    pair: &RedisPair,
    status: Option<&crate::api::RedisPairStatus>,
    secrets: SourceSecrets<'_>,
) -> Result<(), ValidateError> {
    let recorded = status.and_then(|s| s.migration.as_ref());
    let Some(spec) = super::migrate::migrate_from(pair) else {
        // Removed while it runs: the pair would elect a master among two read-only copies
        // of the source without pausing it. Removing it once completed is harmless.
        if let Some(m) = recorded.filter(|m| m.phase != crate::api::MigrationPhase::Completed) {
            return Err(ValidateError::BootstrapChanged {
                recorded: m.source.clone(),
                now: "no migration".into(),
            });
        }
        return Ok(());
    };
    let now = super::migrate::source_address(spec);
    match recorded {
        Some(m) if m.source != now => {
            return Err(ValidateError::BootstrapChanged {
                recorded: m.source.clone(),
                now,
            })
        }
        None if status.is_some_and(|s| s.target_master.is_some() || s.term > 0) => {
            return Err(ValidateError::BootstrapAfterCreation)
        }
        _ => {}
    }
    if recorded.is_some_and(|m| m.phase == crate::api::MigrationPhase::Completed) {
        return Ok(());
    }
    if let Some(t) = &spec.tls {
        let get = |name: &String, secret: Option<&Secret>, key: &'static str| {
            let secret = secret.ok_or_else(|| ValidateError::SourceSecretMissing {
                secret: name.clone(),
            })?;
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ValidateError::SourceTlsKeyMissing {
                    secret: name.clone(),
                    key,
                })
        };
        let ca = match &t.ca_secret {
            Some(name) => Some(get(name, secrets.ca, "ca.crt")?),
            None => None,
        };
        let client = match &t.client_cert_secret {
            Some(name) => Some((
                get(name, secrets.client, "tls.crt")?,
                get(name, secrets.client, "tls.key")?,
            )),
            None => None,
        };
        v.source_tls = Some(super::migrate::SourceTls {
            ca,
            client,
            server_name: t.server_name.clone(),
            verify: !t.insecure_skip_verify,
        });
    }
    if let Some(r) = &spec.password_secret {
        let Some(secret) = secrets.password else {
            return Err(ValidateError::SourceSecretMissing {
                secret: r.name.clone(),
            });
        };
        match secret_value(secret, &r.key) {
            None => {
                return Err(ValidateError::PasswordKeyMissing {
                    secret: r.name.clone(),
                    key: r.key.clone(),
                })
            }
            Some(pw) => v.source_password = Some(pw),
        }
    }
    Ok(())
}

/// What is wrong with a credentials Secret of `spec.backup` or `spec.bootstrap.recovery`.
/// Not a [`ValidateError`]: a backup problem never stops a pass (the pair keeps failing over
/// and its pods keep being built); it is the `BackupCredentials` condition and a Warning
/// Event instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupCredentialsError {
    #[error("{field}: Secret {secret} does not exist")]
    SecretMissing { field: &'static str, secret: String },
    #[error("{field}: Secret {secret} has no key {key} ({scheme}:// needs it; the Secret has {present})")]
    KeyMissing {
        field: &'static str,
        secret: String,
        scheme: String,
        /// The key, or "one of A, B, C".
        key: String,
        /// The keys it has, for a misspelt one ("no keys" when empty).
        present: String,
    },
    #[error("{field}: Secret {secret} key {key} is empty")]
    KeyEmpty {
        field: &'static str,
        secret: String,
        key: String,
    },
}

impl BackupCredentialsError {
    /// The Secret the error is about.
    pub fn secret(&self) -> &str {
        match self {
            BackupCredentialsError::SecretMissing { secret, .. }
            | BackupCredentialsError::KeyMissing { secret, .. }
            | BackupCredentialsError::KeyEmpty { secret, .. } => secret,
        }
    }
}

/// The keys a credentials Secret must hold for a destination, by URL scheme: each inner list
/// is "one of these". Names as the engine reads them (`Archive::open_with` takes file names
/// case-insensitively, as the stores' own variable names). Static credentials only: a pair
/// that relies on the node's or the pod's identity (IRSA, workload identity) names no Secret,
/// and nothing is checked. `file://` needs none.
pub fn required_credential_keys(url: &str) -> &'static [&'static [&'static str]] {
    match url.split_once("://").map(|(s, _)| s) {
        Some("s3" | "s3a") => &[&["AWS_ACCESS_KEY_ID"], &["AWS_SECRET_ACCESS_KEY"]],
        Some("gs") => &[&[
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ]],
        Some("az" | "azure" | "abfs" | "abfss") => &[
            &["AZURE_STORAGE_ACCOUNT_NAME"],
            &[
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_SAS_KEY",
                "AZURE_STORAGE_SAS_TOKEN",
                "AZURE_CLIENT_SECRET",
                "AZURE_STORAGE_TOKEN",
            ],
        ],
        _ => &[],
    }
}

/// The keys of a Secret (`data` and `stringData`) with whether each value is non-empty.
fn secret_keys(secret: &Secret) -> BTreeMap<String, bool> {
    let mut keys = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        keys.insert(k.clone(), !v.0.is_empty());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        keys.insert(k.clone(), !v.is_empty());
    }
    keys
}

/// Check one credentials Secret (None: it does not exist) against what `url` needs.
fn check_credentials_secret(
    field: &'static str,
    secret_name: &str,
    url: &str,
    secret: Option<&Secret>,
) -> Result<(), BackupCredentialsError> {
    let Some(secret) = secret else {
        return Err(BackupCredentialsError::SecretMissing {
            field,
            secret: secret_name.to_string(),
        });
    };
    let keys = secret_keys(secret);
    for group in required_credential_keys(url) {
        let found = keys
            .iter()
            .find(|(k, _)| group.iter().any(|g| g.eq_ignore_ascii_case(k)));
        match found {
            Some((_, true)) => {}
            Some((k, false)) => {
                return Err(BackupCredentialsError::KeyEmpty {
                    field,
                    secret: secret_name.to_string(),
                    key: k.clone(),
                })
            }
            None => {
                return Err(BackupCredentialsError::KeyMissing {
                    field,
                    secret: secret_name.to_string(),
                    scheme: url.split_once("://").map_or("", |(s, _)| s).to_string(),
                    key: match group {
                        [one] => one.to_string(),
                        many => format!("one of {}", many.join(", ")),
                    },
                    present: if keys.is_empty() {
                        "no keys".to_string()
                    } else {
                        format!(
                            "keys {}",
                            keys.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    },
                })
            }
        }
    }
    Ok(())
}

/// Check the credentials Secrets a pair names for backups: the archive's
/// (`spec.backup.destination`) and a recovery source's (`spec.bootstrap.recovery.source`,
/// only while the restore is still to run). `secrets` holds those read this pass (name → the
/// Secret, None: it does not exist); one that could not be read is not checked. Pure.
pub fn check_backup_credentials(
    v: &ValidatedPair,
    secrets: &BTreeMap<String, Option<Secret>>,
) -> Result<(), BackupCredentialsError> {
    let archive = v.spec.backup.as_ref().and_then(|b| {
        let r = b.destination.credentials_secret.as_ref()?;
        Some((
            "spec.backup.destination.credentialsSecret",
            r,
            b.destination.url(),
        ))
    });
    let recovery = v
        .spec
        .bootstrap
        .as_ref()
        .and_then(|b| b.recovery.as_ref())
        .filter(|_| v.restore_first_master)
        .and_then(|r| {
            let s = r.source.credentials_secret.as_ref()?;
            Some((
                "spec.bootstrap.recovery.source.credentialsSecret",
                s,
                r.source.url(),
            ))
        });
    for (field, r, url) in archive.into_iter().chain(recovery) {
        if let Some(secret) = secrets.get(&r.name) {
            check_credentials_secret(field, &r.name, url, secret.as_ref())?;
        }
    }
    Ok(())
}

/// Labels every object of the pair carries.
pub fn pair_labels(v: &ValidatedPair) -> BTreeMap<String, String> {
    use crate::api::constants::*;
    BTreeMap::from([
        (LABEL_PAIR.to_string(), v.names.pair.clone()),
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
    ])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    /// The contract manifest, as read back from the API server (namespace and uid set).
    pub(crate) fn contract_pair() -> RedisPair {
        let mut p: RedisPair = serde_yaml::from_str(
            r#"
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata:
  name: cache
  namespace: shop
  uid: 1b7a6a0e-0000-0000-0000-000000000001
  generation: 3
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
"#,
        )
        .unwrap();
        p.metadata.generation = Some(3);
        p
    }

    pub(crate) fn contract_validated() -> ValidatedPair {
        validate(&contract_pair(), None, None, Some("localhost/rp:test")).unwrap()
    }

    fn secret(key: &str, value: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn contract_manifest_validates_and_names_everything() {
        let v = contract_validated();
        assert_eq!(v.names.pods, ["cache-a".to_string(), "cache-b".to_string()]);
        assert_eq!(v.names.read_write, "cache");
        assert_eq!(v.names.read_only, "cache-ro");
        assert_eq!(v.names.password_secret, "cache-password");
        assert_eq!(v.names.password_key, "password");
        assert!(v.create_password_secret && v.create_admin_secret);
        assert_eq!(v.image, "localhost/rp:test");
        assert_eq!(v.owner.kind, "RedisPair");
        assert_eq!(v.owner.controller, Some(true));
    }

    #[test]
    fn existing_secret_without_the_key_is_rejected() {
        let err = validate(&contract_pair(), Some(&secret("pw", "x")), None, None).unwrap_err();
        assert_eq!(
            err,
            ValidateError::PasswordKeyMissing {
                secret: "cache-password".into(),
                key: "password".into()
            }
        );
        let ok = validate(&contract_pair(), Some(&secret("password", "x")), None, None).unwrap();
        assert!(!ok.create_password_secret);
        assert_eq!(ok.password.as_deref(), Some("x"));
        // Read as the engine reads the mounted file: one trailing newline is not part of it,
        // and a value that is only a newline is empty.
        let ok = validate(
            &contract_pair(),
            Some(&secret("password", "x\n")),
            None,
            None,
        );
        assert_eq!(ok.unwrap().password.as_deref(), Some("x"));
        assert!(matches!(
            validate(
                &contract_pair(),
                Some(&secret("password", "\n")),
                None,
                None
            ),
            Err(ValidateError::PasswordEmpty { .. })
        ));
    }

    #[test]
    fn extra_config_cannot_override_managed_settings() {
        let mut p = contract_pair();
        p.spec.engine.extra_config = vec!["hz 20".into(), "requirepass x".into()];
        assert_eq!(
            validate(&p, None, None, None).unwrap_err(),
            ValidateError::ManagedSetting("requirepass".into())
        );
        p.spec.engine.extra_config = vec!["hz 20".into(), "lonely".into()];
        assert!(matches!(
            validate(&p, None, None, None).unwrap_err(),
            ValidateError::BadExtraConfig(_)
        ));
        p.spec.engine.extra_config = vec!["hz   20".into()];
        let v = validate(&p, None, None, None).unwrap();
        assert_eq!(v.extra_config, vec![("hz".to_string(), "20".to_string())]);
    }

    #[test]
    fn long_names_are_rejected() {
        let mut p = contract_pair();
        p.metadata.name = Some("x".repeat(51));
        assert!(matches!(
            validate(&p, None, None, None).unwrap_err(),
            ValidateError::NameTooLong(_)
        ));
    }

    fn pw_only(s: &Secret) -> SourceSecrets<'_> {
        SourceSecrets {
            password: Some(s),
            ..Default::default()
        }
    }

    #[test]
    fn migration_source_tls_secrets_are_required_with_their_keys() {
        let mut p = contract_pair();
        p.spec.bootstrap = Some(
            serde_json::from_value(serde_json::json!({"migrateFrom": {
                "host": "10.0.0.9", "tls": {"caSecret": "src-ca", "serverName": "old.example",
                "clientCertSecret": "src-client"}}}))
            .unwrap(),
        );
        let names = Names::new(&p);
        assert_eq!(names.source_ca_secret.as_deref(), Some("src-ca"));
        assert_eq!(names.source_client_secret.as_deref(), Some("src-client"));
        let mut v = contract_validated();
        let ca = secret("ca.crt", "CA PEM");
        let mut client = secret("tls.crt", "CERT PEM");
        fn both<'a>(ca: Option<&'a Secret>, client: Option<&'a Secret>) -> SourceSecrets<'a> {
            SourceSecrets {
                password: None,
                ca,
                client,
            }
        }
        // Missing Secrets, then a Secret without its key: refused, naming them.
        assert_eq!(
            validate_migration(&mut v, &p, None, both(None, Some(&client))).unwrap_err(),
            ValidateError::SourceSecretMissing {
                secret: "src-ca".into()
            }
        );
        assert_eq!(
            validate_migration(&mut v, &p, None, both(Some(&ca), None)).unwrap_err(),
            ValidateError::SourceSecretMissing {
                secret: "src-client".into()
            }
        );
        let err = validate_migration(&mut v, &p, None, both(Some(&ca), Some(&client)));
        assert_eq!(
            err.unwrap_err(),
            ValidateError::SourceTlsKeyMissing {
                secret: "src-client".into(),
                key: "tls.key"
            }
        );
        assert!(v.source_tls.is_none());
        client
            .data
            .as_mut()
            .unwrap()
            .insert("tls.key".into(), ByteString(b"KEY PEM".to_vec()));
        validate_migration(&mut v, &p, None, both(Some(&ca), Some(&client))).unwrap();
        let t = v.source_tls.clone().unwrap();
        assert_eq!(t.ca.as_deref(), Some(&b"CA PEM"[..]));
        assert_eq!(t.client, Some((b"CERT PEM".to_vec(), b"KEY PEM".to_vec())));
        assert_eq!(t.server_name.as_deref(), Some("old.example"));
        assert!(t.verify);
        // Completed: the source is not contacted again, its Secrets may be gone.
        let done = crate::api::RedisPairStatus {
            migration: Some(migration_status(
                crate::api::MigrationPhase::Completed,
                "10.0.0.9:6379",
            )),
            ..Default::default()
        };
        validate_migration(&mut v, &p, Some(&done), SourceSecrets::default()).unwrap();
    }

    /// A migration's status in `phase` from `source`, nothing else known yet.
    fn migration_status(
        phase: crate::api::MigrationPhase,
        source: &str,
    ) -> crate::api::MigrationStatus {
        crate::api::MigrationStatus::new(phase, source)
    }

    #[test]
    fn migration_source_password_and_immutable_bootstrap() {
        use crate::api::{MigrationPhase, RedisPairStatus};
        let mut p = contract_pair();
        p.spec.bootstrap = Some(
            serde_json::from_value(serde_json::json!({"migrateFrom": {
                "host": "old", "passwordSecret": {"name": "old-pw"}}}))
            .unwrap(),
        );
        let mut v = contract_validated();
        assert_eq!(
            validate_migration(&mut v, &p, None, SourceSecrets::default()).unwrap_err(),
            ValidateError::SourceSecretMissing {
                secret: "old-pw".into()
            }
        );
        validate_migration(&mut v, &p, None, pw_only(&secret("password", "s3cret\n"))).unwrap();
        assert_eq!(v.source_password.as_deref(), Some("s3cret"));
        // Added to a pair that already runs: refused.
        let running = RedisPairStatus {
            term: 3,
            target_master: Some("cache-a".into()),
            ..Default::default()
        };
        let pw = secret("password", "x");
        assert_eq!(
            validate_migration(&mut v, &p, Some(&running), pw_only(&pw)).unwrap_err(),
            ValidateError::BootstrapAfterCreation
        );
        // Changed while it runs, or removed before it completed: refused.
        let mut migrating = RedisPairStatus {
            migration: Some(migration_status(
                MigrationPhase::Following,
                "elsewhere:6379",
            )),
            ..Default::default()
        };
        assert!(matches!(
            validate_migration(&mut v, &p, Some(&migrating), pw_only(&pw)),
            Err(ValidateError::BootstrapChanged { .. })
        ));
        let plain = contract_pair();
        assert!(
            validate_migration(&mut v, &plain, Some(&migrating), SourceSecrets::default()).is_err()
        );
        // Removing it once completed is fine.
        migrating.migration.as_mut().unwrap().phase = MigrationPhase::Completed;
        validate_migration(&mut v, &plain, Some(&migrating), SourceSecrets::default()).unwrap();
    }

    fn with_credentials(url: &str, recovery: bool) -> ValidatedPair {
        let mut v = contract_validated();
        v.spec.backup = Some(
            serde_json::from_value(serde_json::json!({"destination": {
                "destinationPath": url, "credentialsSecret": {"name": "store"}}}))
            .unwrap(),
        );
        if recovery {
            v.spec.bootstrap = Some(
                serde_json::from_value(serde_json::json!({"recovery": {"source": {
                    "destinationPath": "s3://old/p", "credentialsSecret": {"name": "old"}}}}))
                .unwrap(),
            );
            v.restore_first_master = true;
        }
        v
    }

    fn secrets(list: &[(&str, Option<Secret>)]) -> BTreeMap<String, Option<Secret>> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    #[test]
    fn backup_credentials_name_the_missing_secret_and_key() {
        let v = with_credentials("s3://bucket/shop/cache", false);
        let mut good = secret("AWS_ACCESS_KEY_ID", "id");
        good.data.as_mut().unwrap().insert(
            "AWS_SECRET_ACCESS_KEY".into(),
            ByteString(b"secret".to_vec()),
        );
        assert_eq!(
            check_backup_credentials(&v, &secrets(&[("store", Some(good.clone()))])),
            Ok(())
        );
        // Not read this pass (an API error): not checked.
        assert_eq!(check_backup_credentials(&v, &secrets(&[])), Ok(()));
        let e = check_backup_credentials(&v, &secrets(&[("store", None)])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.backup.destination.credentialsSecret: Secret store does not exist"
        );
        // A misspelt key: the message names the one needed and shows what is there.
        let e = check_backup_credentials(
            &v,
            &secrets(&[("store", Some(secret("AWS_ACCESS_KEY_ID", "id")))]),
        )
        .unwrap_err();
        assert_eq!(e.secret(), "store");
        assert_eq!(
            e.to_string(),
            "spec.backup.destination.credentialsSecret: Secret store has no key AWS_SECRET_ACCESS_KEY (s3:// needs it; the Secret has keys AWS_ACCESS_KEY_ID)"
        );
        // Names are read case-insensitively, as the engine reads its files.
        let mut lower = secret("aws_access_key_id", "id");
        lower
            .data
            .as_mut()
            .unwrap()
            .insert("aws_secret_access_key".into(), ByteString(Vec::new()));
        assert!(matches!(
            check_backup_credentials(&v, &secrets(&[("store", Some(lower))])),
            Err(BackupCredentialsError::KeyEmpty { key, .. }) if key == "aws_secret_access_key"
        ));
        // Azure: the account and one of the ways to sign; file:// needs nothing.
        let v = with_credentials("az://container/p", false);
        let e = check_backup_credentials(
            &v,
            &secrets(&[("store", Some(secret("AZURE_STORAGE_ACCOUNT_NAME", "acct")))]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("no key one of AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_ACCESS_KEY"),
            "{e}"
        );
        let v = with_credentials("file:///backups", false);
        assert_eq!(
            check_backup_credentials(&v, &secrets(&[("store", Some(Secret::default()))])),
            Ok(())
        );
        // The recovery source's Secret, while the restore is still to run.
        let mut v = with_credentials("s3://bucket/shop/cache", true);
        let both = secrets(&[("store", Some(good)), ("old", None)]);
        let e = check_backup_credentials(&v, &both).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.bootstrap.recovery.source.credentialsSecret: Secret old does not exist"
        );
        v.restore_first_master = false;
        assert_eq!(check_backup_credentials(&v, &both), Ok(()));
    }
}
