//! Migration glue (`spec.bootstrap.migrateFrom`, docs/migration.md): the machine's migration
//! record to and from status, what the pass observed of the source and the engines, and the
//! source's side (probe, pause), over TLS when `migrateFrom.tls` asks. Pure except
//! [`probe_source`], which does I/O: RESP (over TCP or TLS) to the source Redis.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::decide::{format_time_ms, parse_time_ms};
use super::observe::Observed;
use crate::api::constants::ANNOTATION_MIGRATE_CUTOVER;
use crate::api::{MigrateFromSpec, MigrationPhase as ApiPhase, MigrationStatus, RedisPair};
use crate::failover::{
    Member, Migration, MigrationObservation, MigrationPhase, Observation, Record, Role,
};

/// What the operator read from the source in this pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceProbe {
    /// `master_repl_offset` (read after the pause when one was sent).
    pub offset: Option<i64>,
    /// `CLIENT PAUSE WRITE` was accepted before the offset was read.
    pub paused: bool,
    /// Why the source could not be read.
    pub error: Option<String>,
}

/// How the operator speaks TLS to a migration source, from `migrateFrom.tls` and its Secrets
/// (checked by `validate::validate_migration`). The engines get the same through their
/// `master-tls-*` flags and mounted Secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceTls {
    /// PEM of `caSecret`'s `ca.crt`; None: the system's CA certificates.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key of `clientCertSecret`.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify and send as SNI; None: the host.
    pub server_name: Option<String>,
    /// false: `insecureSkipVerify`.
    pub verify: bool,
}

impl std::fmt::Debug for SourceTls {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTls")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

/// Why a TLS connection to the source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SourceTlsError {
    #[error("migrateFrom.tls: {0}")]
    Config(String),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
}

impl SourceTls {
    /// The rustls client configuration: the source verified by chain and name (a source is a
    /// server like any other, dialled by a name its certificate should carry, unlike the
    /// pair's own engines), or not at all with `insecureSkipVerify`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, SourceTlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bad =
            |what: &str, e: &dyn std::fmt::Display| SourceTlsError::Config(format!("{what}: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("protocol versions", &e))?;
        let builder = if self.verify {
            let mut roots = rustls::RootCertStore::empty();
            match &self.ca {
                Some(pem) => {
                    for c in CertificateDer::pem_slice_iter(pem) {
                        let c = c.map_err(|e| bad("caSecret ca.crt", &e))?;
                        roots.add(c).map_err(|e| bad("caSecret ca.crt", &e))?;
                    }
                }
                None => roots.roots = system_roots().roots.clone(),
            }
            if roots.is_empty() {
                return Err(SourceTlsError::Config(
                    "no CA certificate to verify the source with (caSecret's ca.crt is empty, or the system has none)".into(),
                ));
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad("CA certificates", &e))?;
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        };
        match &self.client {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("clientCertSecret tls.crt", &e))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| bad("clientCertSecret tls.key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("clientCertSecret", &e))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// Connect to `host:port` and complete the TLS handshake.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, SourceTlsError> {
        let config = self.client_config()?;
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = rustls::pki_types::ServerName::try_from(name.to_string())
            .map_err(|e| SourceTlsError::Config(format!("server name {name:?}: {e}")))?;
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| SourceTlsError::Timeout)?
            .map_err(SourceTlsError::Connect)?;
        let _ = tcp.set_nodelay(true);
        tokio::time::timeout(
            timeout,
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| SourceTlsError::Timeout)?
        .map_err(SourceTlsError::Handshake)
    }
}

/// The system's CA certificates (the image's /etc/ssl/certs, or `SSL_CERT_FILE`), read once:
/// the source is probed every pass. Unparsable entries are skipped, as every TLS client does.
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: std::sync::OnceLock<rustls::RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

/// `insecureSkipVerify`: any certificate is taken; the handshake's signatures are still
/// checked (the session is with the holder of the certificate's key, whoever that is).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `host:port` of a source.
pub fn source_address(m: &MigrateFromSpec) -> String {
    format!("{}:{}", m.host, m.port)
}

/// The migration the spec asks for, if any.
pub fn migrate_from(pair: &RedisPair) -> Option<&MigrateFromSpec> {
    pair.spec.bootstrap.as_ref()?.migrate_from.as_ref()
}

/// `migrateFrom.tls` of a spec, if any.
pub fn migrate_from_tls(
    spec: &crate::api::RedisPairSpec,
) -> Option<&crate::api::MigrateFromTlsSpec> {
    spec.bootstrap.as_ref()?.migrate_from.as_ref()?.tls.as_ref()
}

/// The source must be paused in this pass: the recorded phase is `CuttingOver` (intent first:
/// the pass that records it does not pause; the next one does).
pub fn pause_due(previous: Option<&crate::api::RedisPairStatus>) -> bool {
    previous
        .and_then(|s| s.migration.as_ref())
        .is_some_and(|m| m.phase == ApiPhase::CuttingOver)
}

/// The source must be read at all: a migration is asked for and not completed.
pub fn source_wanted(pair: &RedisPair, previous: Option<&crate::api::RedisPairStatus>) -> bool {
    migrate_from(pair).is_some()
        && !previous
            .and_then(|s| s.migration.as_ref())
            .is_some_and(|m| m.phase == ApiPhase::Completed)
}

pub fn migration_from_api(m: &MigrationStatus) -> Migration {
    Migration {
        source: m.source.clone(),
        phase: match m.phase {
            ApiPhase::Following => MigrationPhase::Following,
            ApiPhase::CuttingOver => MigrationPhase::CuttingOver,
            ApiPhase::Completed => MigrationPhase::Completed,
        },
        started_ms: parse_time_ms(&m.started_at),
        cutover_request: m.cutover_request.clone(),
        cutover_started_ms: m.cutover_started_at.as_deref().map(parse_time_ms),
        completed_ms: m.completed_at.as_deref().map(parse_time_ms),
        master: m.master.clone(),
    }
}

/// The record's part of `status.migration` (the observed fields are kept as they were; the
/// status step fills them in).
pub fn write_migration_record(
    previous: Option<&MigrationStatus>,
    r: &Record,
) -> Option<MigrationStatus> {
    let m = r.migration.as_ref()?;
    let mut s = previous
        .cloned()
        .unwrap_or_else(|| MigrationStatus::new(ApiPhase::Following, String::new()));
    s.phase = match m.phase {
        MigrationPhase::Following => ApiPhase::Following,
        MigrationPhase::CuttingOver => ApiPhase::CuttingOver,
        MigrationPhase::Completed => ApiPhase::Completed,
    };
    s.source = m.source.clone();
    s.started_at = format_time_ms(m.started_ms);
    s.cutover_request = m.cutover_request.clone();
    s.cutover_started_at = m.cutover_started_ms.map(format_time_ms);
    s.completed_at = m.completed_ms.map(format_time_ms);
    s.master = m.master.clone();
    Some(s)
}

/// Fill in what this pass observed (while the migration is not completed; a completed one
/// keeps the figures of its last pass).
pub fn observe_into_status(s: &mut MigrationStatus, obs: &Observation) {
    let Some(mo) = obs.migration.as_ref() else {
        return;
    };
    if s.phase == ApiPhase::Completed {
        return;
    }
    let master = s.master.clone().unwrap_or_default();
    let link = mo.following.iter().find(|(p, _)| *p == master);
    s.link_up = link.is_some_and(|(_, up)| *up);
    s.master_offset = obs
        .members
        .iter()
        .find(|m| m.pod == master && link.is_some())
        .and_then(|m| m.report.as_ref())
        .map_or(0, |r| r.offset);
    s.source_offset = mo.source_offset;
    s.lag_bytes = mo.source_offset.map(|src| (src - s.master_offset).max(0));
}

/// The pass's view of a migration, from the engines' reports and the source probe.
pub fn migration_observation(
    pair: &RedisPair,
    o: &Observed,
    members: &[Member],
) -> Option<MigrationObservation> {
    let spec = migrate_from(pair)?;
    // `following` names a pod when the host is one of the pair's, else the host as reported.
    let following = members
        .iter()
        .filter_map(|m| {
            let r = m.report.as_ref()?;
            (r.role == Role::Replica && r.following.as_deref() == Some(spec.host.as_str()))
                .then(|| (m.pod.clone(), r.link_up))
        })
        .collect();
    let probe = o.source.clone().unwrap_or_default();
    Some(MigrationObservation {
        source: source_address(spec),
        following,
        source_offset: probe.offset,
        source_paused: probe.paused,
        cutover_requested: pair
            .annotations()
            .get(ANNOTATION_MIGRATE_CUTOVER)
            .filter(|id| !id.is_empty())
            .cloned(),
    })
}

/// Read the source's offset, pausing its writes first when `pause_ms` is given (so the offset
/// covers every write it acknowledged). Never an error: what failed is in the result.
pub async fn probe_source(
    spec: &MigrateFromSpec,
    password: Option<&str>,
    tls: Option<&SourceTls>,
    pause_ms: Option<u64>,
    timeout: Duration,
) -> SourceProbe {
    match probe_source_inner(spec, password, tls, pause_ms, timeout).await {
        Ok(p) => p,
        Err(e) => SourceProbe {
            offset: None,
            paused: false,
            error: Some(format!("{}: {e}", source_address(spec))),
        },
    }
}

/// A failed probe: the client's or the TLS setup's.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Tls(#[from] SourceTlsError),
}

async fn probe_source_inner(
    spec: &MigrateFromSpec,
    password: Option<&str>,
    tls: Option<&SourceTls>,
    pause_ms: Option<u64>,
    timeout: Duration,
) -> Result<SourceProbe, ProbeError> {
    let port = u16::try_from(spec.port).unwrap_or(6379);
    let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(pw) = password {
        settings = settings.set_password(pw);
        if let Some(user) = &spec.user {
            settings = settings.set_username(user);
        }
    }
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = match tls {
        // redis-rs takes the dialled host as the TLS name; the source may need another
        // (`serverName`) and its own verification, so the session is made here and handed
        // over. Its driver ends when the connection is dropped at the end of the probe.
        Some(tls) => {
            let stream = tls.connect(&spec.host, port, timeout).await?;
            let (conn, driver) =
                redis::aio::MultiplexedConnection::new_with_config(&settings, stream, config)
                    .await?;
            tokio::spawn(driver);
            conn
        }
        None => {
            let info = ConnectionAddr::Tcp(spec.host.clone(), port)
                .into_connection_info()?
                .set_redis_settings(settings);
            redis::Client::open(info)?
                .get_multiplexed_async_connection_with_config(&config)
                .await?
        }
    };
    let mut paused = false;
    if let Some(ms) = pause_ms {
        // Writes wait from here (they are not refused): a client that gives up in the meantime
        // never had its write applied. Redis keeps the later of two pause deadlines, so the
        // pass-by-pass renewal extends it.
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .arg("WRITE")
            .query_async(&mut conn)
            .await?;
        paused = true;
    }
    // On the same connection, so after the pause took effect.
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await?;
    let offset = text
        .lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == "master_repl_offset")
        .and_then(|(_, v)| v.trim().parse::<i64>().ok());
    Ok(SourceProbe {
        offset,
        paused,
        error: offset
            .is_none()
            .then(|| "INFO replication has no master_repl_offset".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MigrateFromSpec {
        serde_json::from_value(serde_json::json!({"host": "old-redis.prod", "port": 6380})).unwrap()
    }

    #[test]
    fn defaults_and_address() {
        let s = spec();
        assert_eq!(s.pause_seconds, 30);
        assert_eq!(source_address(&s), "old-redis.prod:6380");
    }

    #[test]
    fn record_round_trips_through_status() {
        let r = Record {
            migration: Some(Migration {
                source: "old:6379".into(),
                phase: MigrationPhase::CuttingOver,
                started_ms: 1_700_000_000_000,
                cutover_request: Some("2026-12-06T12:00:00Z".into()),
                cutover_started_ms: Some(1_700_000_100_000),
                completed_ms: None,
                master: Some("p-a".into()),
            }),
            ..Record::default()
        };
        let s = write_migration_record(None, &r).unwrap();
        assert_eq!(s.phase, ApiPhase::CuttingOver);
        assert_eq!(&migration_from_api(&s), r.migration.as_ref().unwrap());
    }
}
