//! Test certificates made with the openssl CLI (a CA, and leaves it signs for 127.0.0.1 and
//! localhost, usable as server and client certificates), a TLS client that reports which
//! certificate the server presented, and a Kubernetes-style mounted Secret (files behind a
//! `..data` symlink swapped at once). Does I/O: runs openssl, writes files, sockets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA: `<dir>/<name>.crt` and `<dir>/<name>.key`.
pub struct Ca {
    pub crt: PathBuf,
    pub key: PathBuf,
}

/// A certificate and its key.
pub struct Leaf {
    pub crt: PathBuf,
    pub key: PathBuf,
}

pub fn make_ca(dir: &Path, name: &str) -> Ca {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        &format!("/CN={name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    Ca { crt, key }
}

/// A leaf signed by `ca` for 127.0.0.1 and localhost, for server and client use.
pub fn make_leaf(dir: &Path, ca: &Ca, name: &str) -> Leaf {
    make_leaf_for(dir, ca, name, "IP:127.0.0.1,DNS:localhost")
}

/// A leaf signed by `ca` for `sans` (openssl's subjectAltName syntax), for server and client
/// use.
pub fn make_leaf_for(dir: &Path, ca: &Ca, name: &str, sans: &str) -> Leaf {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "subjectAltName={sans}\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n"
        ),
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        ca.crt.to_str().unwrap(),
        "-CAkey",
        ca.key.to_str().unwrap(),
        "-CAcreateserial",
        "-CAserial",
        dir.join("ca.srl").to_str().unwrap(),
        "-days",
        "30",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    Leaf { crt, key }
}

/// A directory laid out as the kubelet mounts a `kubernetes.io/tls` Secret: `tls.crt`,
/// `tls.key` and `ca.crt` are symlinks to `..data/<file>`, and `..data` is a symlink to a
/// timestamped directory; an update writes a new directory and renames a new `..data` link
/// over the old one, so the three files change at once.
pub struct MountedSecret {
    pub dir: PathBuf,
    generation: u32,
}

impl MountedSecret {
    pub fn new(dir: &Path, ca: &Ca, leaf: &Leaf) -> MountedSecret {
        std::fs::create_dir_all(dir).unwrap();
        let mut m = MountedSecret {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        m.update(ca, leaf);
        for f in ["tls.crt", "tls.key", "ca.crt"] {
            std::os::unix::fs::symlink(format!("..data/{f}"), dir.join(f)).unwrap();
        }
        m
    }

    /// Swap in new contents the way the kubelet does.
    pub fn update(&mut self, ca: &Ca, leaf: &Leaf) {
        self.generation += 1;
        let version = format!("..gen_{}", self.generation);
        let vdir = self.dir.join(&version);
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::copy(&leaf.crt, vdir.join("tls.crt")).unwrap();
        std::fs::copy(&leaf.key, vdir.join("tls.key")).unwrap();
        std::fs::copy(&ca.crt, vdir.join("ca.crt")).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    pub fn crt(&self) -> String {
        self.dir.join("tls.crt").display().to_string()
    }
    pub fn key(&self) -> String {
        self.dir.join("tls.key").display().to_string()
    }
    pub fn ca(&self) -> String {
        self.dir.join("ca.crt").display().to_string()
    }
}

/// The DER of the first certificate in a PEM file.
pub fn der_of(path: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Connect over TLS to 127.0.0.1:`port` trusting `ca` and presenting `client` (if any), and
/// return the certificate the server presented, or the handshake's error.
pub async fn presented_certificate(
    port: u16,
    ca: &Path,
    client: Option<&Leaf>,
) -> Result<Vec<u8>, String> {
    presented_certificate_at("127.0.0.1", port, ca, client).await
}

/// [`presented_certificate`] for `host` (an IP address or a DNS name the certificate holds).
pub async fn presented_certificate_at(
    host: &str,
    port: u16,
    ca: &Path,
    client: Option<&Leaf>,
) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some(l) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&l.crt)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect(),
                rustls::pki_types::PrivateKeyDer::from_pem_file(&l.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    Ok(session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default())
}

/// A `redis` crate connection over TLS to 127.0.0.1:`port`, trusting `ca`, presenting
/// `client`.
pub async fn tls_conn(
    port: u16,
    ca: &Path,
    client: Option<&Leaf>,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    tls_conn_at("127.0.0.1", port, None, ca, client).await
}

/// [`tls_conn`] to `host` (verified against the certificate's names), with a password.
pub async fn tls_conn_at(
    host: &str,
    port: u16,
    password: Option<&str>,
    ca: &Path,
    client: Option<&Leaf>,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let certs = redis::TlsCertificates {
        client_tls: client.map(|l| redis::ClientTlsConfig {
            client_cert: std::fs::read(&l.crt).unwrap(),
            client_key: std::fs::read(&l.key).unwrap(),
        }),
        root_cert: Some(std::fs::read(ca).unwrap()),
    };
    let auth = password.map(|p| format!(":{p}@")).unwrap_or_default();
    redis::Client::build_with_tls(format!("rediss://{auth}{host}:{port}/"), certs)?
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(std::time::Duration::from_secs(30))),
        )
        .await
}
