//! TLS for the engine (rustls, ring provider): the server and replication-client
//! configurations built from Redis's `tls-*` settings, the link to a master outside the pair
//! (`master-tls-*`, [`MasterTlsSettings`]), their reload when the PEM files change,
//! and [`Socket`], the stream type connections and replication links use whether encrypted or
//! not. Does I/O: reads the certificate files; [`Socket`] wraps a TCP socket.
//!
//! Reload: Kubernetes updates a mounted Secret by swapping a symlink (`..data`), so the file
//! names stay and their contents change all at once. [`Tls::reload_if_changed`] reads the files
//! (a few kilobytes, once a second from the server's task), and when their contents differ from
//! what it saw last it builds new configurations and swaps them in. A handshake takes the
//! configuration current when it starts: connections already up keep their session, new ones
//! get the new certificate. Files that do not make a valid configuration (a half-copied pair
//! during a manual update) are logged and the previous configuration stays.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::{Mutex, RwLock};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::engine::config::Config;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{0} is needed when {1}")]
    Missing(&'static str, &'static str),
    #[error("cannot read {setting} {path}: {source}")]
    Read {
        setting: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("{setting} {path}: {reason}")]
    Pem {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("invalid TLS configuration: {0}")]
    Rustls(String),
}

/// `tls-auth-clients`: whether a TLS client must present a certificate signed by the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthClients {
    /// Required (Redis's default).
    Yes,
    No,
    /// Verified when presented, accepted without.
    Optional,
}

/// The `tls-*` settings, read once at start-up (the files they name are re-read on change).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub port: u16,
    pub replication: bool,
    pub auth_clients: AuthClients,
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
    /// The certificate the replica presents to its master (`tls-client-cert-file`); the
    /// server's when empty, as in Redis.
    pub client_cert_file: String,
    pub client_key_file: String,
}

impl TlsSettings {
    /// The settings, or `None` when TLS is used neither for clients nor for replication.
    pub fn from_config(config: &Config) -> Result<Option<TlsSettings>, TlsError> {
        let get = |name: &str| config.get(name).unwrap_or("").to_string();
        let port: u16 = config
            .get("tls-port")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let replication = config.get("tls-replication") == Some("yes");
        if port == 0 && !replication {
            return Ok(None);
        }
        let auth_clients = match config.get("tls-auth-clients").unwrap_or("yes") {
            "no" => AuthClients::No,
            "optional" => AuthClients::Optional,
            _ => AuthClients::Yes,
        };
        let s = TlsSettings {
            port,
            replication,
            auth_clients,
            cert_file: get("tls-cert-file"),
            key_file: get("tls-key-file"),
            ca_file: get("tls-ca-cert-file"),
            client_cert_file: get("tls-client-cert-file"),
            client_key_file: get("tls-client-key-file"),
        };
        let why = if port != 0 {
            "tls-port is set"
        } else {
            "tls-replication is yes"
        };
        if s.cert_file.is_empty() {
            return Err(TlsError::Missing("tls-cert-file", why));
        }
        if s.key_file.is_empty() {
            return Err(TlsError::Missing("tls-key-file", why));
        }
        // As Redis: verifying clients, or a master as a replica, needs the CA.
        if s.ca_file.is_empty() && (replication || (port != 0 && auth_clients != AuthClients::No)) {
            return Err(TlsError::Missing(
                "tls-ca-cert-file",
                "tls-auth-clients is yes or optional, or tls-replication is yes",
            ));
        }
        if s.client_cert_file.is_empty() != s.client_key_file.is_empty() {
            return Err(TlsError::Missing(
                "tls-client-cert-file and tls-client-key-file together",
                "either is set",
            ));
        }
        Ok(Some(s))
    }

    /// Every file the configurations are built from, with its setting's name.
    fn files(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            ("tls-cert-file", self.cert_file.as_str()),
            ("tls-key-file", self.key_file.as_str()),
        ];
        if !self.ca_file.is_empty() {
            v.push(("tls-ca-cert-file", self.ca_file.as_str()));
        }
        if !self.client_cert_file.is_empty() {
            v.push(("tls-client-cert-file", self.client_cert_file.as_str()));
            v.push(("tls-client-key-file", self.client_key_file.as_str()));
        }
        v
    }
}

/// The contents of the files, in [`TlsSettings::files`] order.
type FileContents = Vec<Vec<u8>>;

/// The configurations in force: handshakes clone the `Arc` they start with.
struct Configs {
    server: Arc<ServerConfig>,
    /// The replica's side; needs the CA (so there is none without `tls-ca-cert-file`).
    client: Option<Arc<ClientConfig>>,
}

/// The engine's TLS state: settings, current configurations, what the files held last.
pub struct Tls {
    pub settings: TlsSettings,
    current: RwLock<Arc<Configs>>,
    seen: Mutex<FileContents>,
    /// Successful reloads since start (INFO and the tests read it).
    reloads: std::sync::atomic::AtomicU64,
}

impl Tls {
    /// Load the files and build the configurations; an error stops start-up.
    pub fn load(settings: TlsSettings) -> Result<Arc<Tls>, TlsError> {
        let contents = read_files(&settings)?;
        let configs = build(&settings, &contents)?;
        Ok(Arc::new(Tls {
            settings,
            current: RwLock::new(Arc::new(configs)),
            seen: Mutex::new(contents),
            reloads: Default::default(),
        }))
    }

    /// The acceptor for a new client connection (the configuration current now).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.read().server.clone())
    }

    /// The connector for the replica's link to its master (`None` without a CA, which
    /// [`TlsSettings::from_config`] does not allow with `tls-replication yes`).
    pub fn connector(&self) -> Option<tokio_rustls::TlsConnector> {
        self.current
            .read()
            .client
            .clone()
            .map(tokio_rustls::TlsConnector::from)
    }

    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Re-read the files; when they changed, build and swap in new configurations. Returns
    /// whether the configurations were replaced. A file that cannot be read, or contents that
    /// do not build, leave the current configurations in place (logged once per change).
    pub fn reload_if_changed(&self) -> bool {
        let contents = match read_files(&self.settings) {
            Ok(c) => c,
            Err(e) => {
                // A Secret being swapped can leave a name dangling for an instant: try again
                // next time, quietly unless it lasts (the next read will say so again).
                tracing::debug!(error = %e, "TLS files not readable; keeping the current certificates");
                return false;
            }
        };
        let mut seen = self.seen.lock();
        if *seen == contents {
            return false;
        }
        *seen = contents;
        match build(&self.settings, &seen) {
            Ok(configs) => {
                *self.current.write() = Arc::new(configs);
                self.reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!("TLS certificates reloaded; new connections use them");
                true
            }
            Err(e) => {
                warn!(error = %e, "TLS files changed but do not make a valid configuration; keeping the current certificates");
                false
            }
        }
    }
}

fn read_files(s: &TlsSettings) -> Result<FileContents, TlsError> {
    s.files()
        .into_iter()
        .map(|(setting, path)| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                setting,
                path: path.to_string(),
                source,
            })
        })
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(
    setting: &'static str,
    path: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Pem {
        setting,
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}

fn key(setting: &'static str, path: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        setting,
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Build both configurations from the files' contents (pure).
fn build(s: &TlsSettings, contents: &FileContents) -> Result<Configs, TlsError> {
    let files = s.files();
    let content = |name: &str| {
        files
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| (files[i].1, contents[i].as_slice()))
    };
    let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());
    let (cert_path, cert_pem) = content("tls-cert-file").expect("always listed");
    let (key_path, key_pem) = content("tls-key-file").expect("always listed");
    let chain = certs("tls-cert-file", cert_path, cert_pem)?;
    let private = key("tls-key-file", key_path, key_pem)?;
    let roots = match content("tls-ca-cert-file") {
        Some((path, pem)) => {
            let mut roots = RootCertStore::empty();
            for c in certs("tls-ca-cert-file", path, pem)? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    setting: "tls-ca-cert-file",
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };

    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = match (&roots, s.auth_clients) {
        (Some(roots), AuthClients::Yes | AuthClients::Optional) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let v = if s.auth_clients == AuthClients::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder
                .with_client_cert_verifier(v.build().map_err(|e| TlsError::Rustls(e.to_string()))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(chain.clone(), private.clone_key())
        .map_err(rustls_err)?;

    // The replica's side, which verifies its master against the CA.
    let Some(roots) = roots else {
        return Ok(Configs {
            server: Arc::new(server),
            client: None,
        });
    };
    let verifier = ChainOnlyVerifier {
        inner: WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?,
    };
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let client = match content("tls-client-cert-file") {
        Some((path, pem)) => {
            let (kpath, kpem) = content("tls-client-key-file").expect("listed with the cert");
            client.with_client_auth_cert(
                certs("tls-client-cert-file", path, pem)?,
                key("tls-client-key-file", kpath, kpem)?,
            )
        }
        None => client.with_client_auth_cert(chain, private),
    }
    .map_err(rustls_err)?;
    Ok(Configs {
        server: Arc::new(server),
        client: Some(Arc::new(client)),
    })
}

/// How a replica verifies its master, as Redis does: the certificate must chain to
/// `tls-ca-cert-file` and be valid now, but its names are not compared with the address the
/// replica dialled. Masters are addressed by pod IP, which no certificate issued before the
/// pod was scheduled can name; the CA is the pair's own, so chaining to it is the identity
/// check.
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // webpki checks the name last, after the chain, validity and usage.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `master-tls-*`: TLS of the replica's link to a master outside the pair (a migration
/// source), with its own CA, client certificate and name. Apart from [`TlsSettings`], which
/// serve the pair's own links: the source has its own CA, usually a public or corporate one,
/// and is dialled by a name its certificate carries, so it is verified as any TLS server is
/// (chain and name), unlike the pair's peers (see [`ChainOnlyVerifier`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterTlsSettings {
    /// Empty: the system's CA certificates.
    pub ca_file: String,
    /// Empty: no client certificate.
    pub cert_file: String,
    pub key_file: String,
    /// Empty: the host dialled.
    pub server_name: String,
    /// false: encrypt without verifying the certificate (`master-tls-verify no`).
    pub verify: bool,
}

impl MasterTlsSettings {
    /// The file settings (whether `master-tls` is on or not).
    pub fn from_config(config: &Config) -> Result<MasterTlsSettings, TlsError> {
        let get = |name: &str| config.get(name).unwrap_or("").to_string();
        let s = MasterTlsSettings {
            ca_file: get("master-tls-ca-cert-file"),
            cert_file: get("master-tls-cert-file"),
            key_file: get("master-tls-key-file"),
            server_name: get("master-tls-server-name"),
            verify: config.get("master-tls-verify") != Some("no"),
        };
        if s.cert_file.is_empty() != s.key_file.is_empty() {
            return Err(TlsError::Missing(
                "master-tls-cert-file and master-tls-key-file together",
                "either is set",
            ));
        }
        if !s.server_name.is_empty() {
            ServerName::try_from(s.server_name.clone()).map_err(|e| TlsError::Pem {
                setting: "master-tls-server-name",
                path: s.server_name.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(s)
    }

    /// Whether any file is given (start-up checks them once, so a wrong path stops it).
    pub fn has_files(&self) -> bool {
        !self.ca_file.is_empty() || !self.cert_file.is_empty()
    }

    /// Read the files and build the link's configuration, and the name to verify and send as
    /// SNI (`server_name`, else `host`). Called at every connect: the files are a few
    /// kilobytes, and a rotated Secret is then used by the next link without a watcher.
    pub fn connector(
        &self,
        host: &str,
    ) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), TlsError> {
        let name = if self.server_name.is_empty() {
            host
        } else {
            &self.server_name
        };
        let name = ServerName::try_from(name.to_string()).map_err(|e| TlsError::Pem {
            setting: "master-tls-server-name",
            path: name.to_string(),
            reason: e.to_string(),
        })?;
        let read = |setting: &'static str, path: &str| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                setting,
                path: path.to_string(),
                source,
            })
        };
        let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());
        let roots = if !self.verify {
            // Nothing is verified against them.
            Arc::new(RootCertStore::empty())
        } else if self.ca_file.is_empty() {
            system_roots()?
        } else {
            let pem = read("master-tls-ca-cert-file", &self.ca_file)?;
            let mut roots = RootCertStore::empty();
            for c in certs("master-tls-ca-cert-file", &self.ca_file, &pem)? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    setting: "master-tls-ca-cert-file",
                    path: self.ca_file.clone(),
                    reason: e.to_string(),
                })?;
            }
            Arc::new(roots)
        };
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify {
            WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?
        } else {
            Arc::new(UnverifiedServer {
                algorithms: provider().signature_verification_algorithms,
            })
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rustls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = if self.cert_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            let chain = certs(
                "master-tls-cert-file",
                &self.cert_file,
                &read("master-tls-cert-file", &self.cert_file)?,
            )?;
            let key = key(
                "master-tls-key-file",
                &self.key_file,
                &read("master-tls-key-file", &self.key_file)?,
            )?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(rustls_err)?
        };
        Ok((
            tokio_rustls::TlsConnector::from(Arc::new(config)),
            name.to_owned(),
        ))
    }
}

/// The system's CA certificates (the image's /etc/ssl/certs, or `SSL_CERT_FILE`), read once.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: std::sync::OnceLock<Arc<RootCertStore>> = std::sync::OnceLock::new();
    if let Some(r) = ROOTS.get() {
        return Ok(r.clone());
    }
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Unparsable entries in a system bundle are skipped, as every TLS client does.
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsError::Missing(
            "master-tls-ca-cert-file (no system CA certificates were found)",
            "master-tls is yes",
        ));
    }
    Ok(ROOTS.get_or_init(|| Arc::new(roots)).clone())
}

/// `master-tls-verify no`: any certificate is taken (the handshake's signatures are still
/// checked, so the session is with whoever holds the key the certificate names). Encryption
/// without authentication: an operator's explicit choice for a self-signed source, warned
/// about at every link made.
#[derive(Debug)]
struct UnverifiedServer {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UnverifiedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A connection's byte stream: plain TCP, or TLS over TCP as the server or as the replica's
/// client side. An enum rather than a trait object so the plain path costs one match per call.
pub enum Socket {
    Plain(TcpStream),
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Socket {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(s) => s,
            Socket::Server(s) => s.get_ref().0,
            Socket::Client(s) => s.get_ref().0,
        }
    }

    /// The plain socket, when nothing is encrypted (the full sync's thread writes to its
    /// descriptor directly).
    pub fn plain(&self) -> Option<&TcpStream> {
        match self {
            Socket::Plain(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, Socket::Plain(_))
    }

    /// Write all of `buf` and, on TLS, flush the session. Every write to a client or a peer
    /// goes through here: tokio-rustls may keep encrypted records it could not write yet
    /// inside the session until the next write or flush, and a reply must not wait for the
    /// next request. On plain TCP the flush is skipped (it does nothing there).
    pub async fn write_flush(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Socket::Plain(s) = self {
            // The socket almost always takes a reply whole: one `send` straight away, without
            // the `WriteAll` future and the runtime's budget bookkeeping around it (~100
            // instructions a round trip). What is left, or a socket not writable yet, goes
            // the ordinary way. (`try_write` makes no syscall while tokio knows the socket is
            // not writable.)
            let written = match s.try_write(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            if written < buf.len() {
                s.write_all(&buf[written..]).await?;
            }
            return Ok(());
        }
        self.write_all(buf).await?;
        if self.is_tls() {
            self.flush().await?;
        }
        Ok(())
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Server(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Socket::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Socket::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Server(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Socket::Client(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Plain(s) => s.is_write_vectored(),
            Socket::Server(s) => s.is_write_vectored(),
            Socket::Client(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Socket::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Socket::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
