//! `spec.tls.issuerRef` against a real kube-apiserver with cert-manager's own Certificate CRD
//! (from its Go module, `hack/cluster/build.sh cert-manager-crds`): the operator creates the
//! Certificate the pair needs (secretName, issuerRef, dnsNames for the Services and both pods,
//! server and client auth) and the API server accepts and keeps every field of it under
//! cert-manager's schema (a misspelt field is refused); the pods mount the Secret it names. Then the test plays cert-manager's part: it issues a certificate for what the stored
//! Certificate asks (openssl) and writes the Secret; two engine processes run with the very
//! arguments the operator gave the pods (the Secret laid out as the kubelet mounts it, ports and
//! paths moved to loopback), the operator's admin client (built from the Secret, as the
//! operator builds it) promotes one and points the other at it, and they serve the certificate
//! (verified against the Secret's CA for the read-write Service's DNS name), replicate over
//! TLS with client certificates required, and a write reaches the replica. Does I/O: the
//! Kubernetes API, engine processes, openssl, TLS on loopback.

mod operator_support;
mod support;
mod tls_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Client;
use operator_support::*;
use redispair::api::constants::TLS_DIR;
use redispair::api::RedisPair;
use redispair::operator::engine_client::{EngineAccess, EngineClient};
use support::{free_port, temp_dir};
use tls_support::{der_of, make_ca, Ca, Leaf, MountedSecret};

const T: Duration = Duration::from_secs(30);
const TEST_IMAGE: &str = "localhost/redispair/redispair:test";

/// cert-manager's CRDs, fetched from its Go module into the cache if not there yet: the
/// directory holding `cert-manager.io_*.yaml`.
fn cert_manager_crds() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg("-c")
        .arg("source hack/cluster/lib.sh && hack/cluster/build.sh cert-manager-crds >&2 && echo \"$CERT_MANAGER_CRDS\"")
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .expect("running hack/cluster/build.sh cert-manager-crds");
    assert!(
        out.status.success(),
        "hack/cluster/build.sh cert-manager-crds failed (it needs Go and the Go module proxy)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Apply cert-manager's Certificate CRD (server-side, idempotent) and wait until it is served.
async fn install_certificate_crd(client: &Client) {
    let path = cert_manager_crds().join("cert-manager.io_certificates.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("the CRD parses");
    let name = crd.metadata.name.clone().unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut body = serde_json::to_value(&crd).unwrap();
    body["apiVersion"] = "apiextensions.k8s.io/v1".into();
    body["kind"] = "CustomResourceDefinition".into();
    api.patch(
        &name,
        &PatchParams::apply("redispair-tests").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("cert-manager's Certificate CRD applies");
    wait_for("the Certificate CRD to be established", T, || async {
        let c = api.get(&name).await.ok()?;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

/// What cert-manager would issue for `spec` (a Certificate's): a leaf signed by `ca` with its
/// commonName, dnsNames and usages (server and client auth), an ECDSA P-256 key.
fn issue(dir: &Path, ca: &Ca, spec: &serde_json::Value) -> Leaf {
    let names: Vec<String> = spec["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .iter()
        .map(|n| format!("DNS:{}", n.as_str().unwrap()))
        .collect();
    let usages: Vec<&str> = spec["usages"]
        .as_array()
        .expect("usages")
        .iter()
        .filter_map(|u| match u.as_str()? {
            "server auth" => Some("serverAuth"),
            "client auth" => Some("clientAuth"),
            _ => None,
        })
        .collect();
    let cn = spec["commonName"].as_str().expect("commonName");
    let (crt, key, csr, ext) = (
        dir.join("issued.crt"),
        dir.join("issued.key"),
        dir.join("issued.csr"),
        dir.join("issued.ext"),
    );
    std::fs::write(
        &ext,
        format!(
            "subjectAltName={}\nextendedKeyUsage={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
            names.join(","),
            usages.join(",")
        ),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |p: &Path| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca.crt),
        "-CAkey",
        &p(&ca.key),
        "-CAcreateserial",
        "-CAserial",
        &p(&dir.join("ca.srl")),
        "-days",
        "30",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&crt),
    ]);
    Leaf { crt, key }
}

/// An engine process started with a pod's engine arguments, moved to loopback: `bind` to
/// `ip`, the TLS port to `tls_port`, the in-pod plaintext port to a free one, no metrics port,
/// the data directory and the Secret files to local paths. Everything else (TLS settings,
/// replication mode, leases) is the operator's.
struct PodEngine {
    child: Child,
    loopback_port: u16,
}

impl Drop for PodEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_pod_engine(
    args: &[String],
    ip: &str,
    tls_port: u16,
    dir: &Path,
    tls_dir: &Path,
    secrets: &[(&str, &Path)],
) -> PodEngine {
    let loopback_port = free_port();
    let mut moved = Vec::new();
    let mut it = args.iter();
    while let (Some(flag), Some(value)) = (it.next(), it.next()) {
        let value = match flag.as_str() {
            "--bind" => ip.to_string(),
            "--tls-port" => tls_port.to_string(),
            "--loopback-port" => loopback_port.to_string(),
            "--metrics-port" => "0".to_string(),
            "--dir" => dir.display().to_string(),
            _ => match secrets.iter().find(|(f, _)| *f == flag.as_str()) {
                Some((_, path)) => path.display().to_string(),
                None => match value.strip_prefix(TLS_DIR) {
                    Some(file) => format!("{}{file}", tls_dir.display()),
                    None => value.clone(),
                },
            },
        };
        moved.push(flag.clone());
        moved.push(value);
    }
    assert!(
        moved.iter().any(|a| a == "--tls-cert-file"),
        "the pod's engine has no TLS: {args:?}"
    );
    let child = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .args(&moved)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the engine starts");
    PodEngine {
        child,
        loopback_port,
    }
}

/// The certificate an engine at `ip:port` presents to a client verifying `server_name`
/// against `ca` (what a client of the Service does), or the handshake's error.
async fn presented_as(
    ip: &str,
    port: u16,
    server_name: &str,
    ca: &Path,
) -> Result<Vec<u8>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect((ip, port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
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

fn secret_value(s: &Secret, key: &str) -> Vec<u8> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
        .or_else(|| {
            s.string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.clone().into_bytes())
        })
        .unwrap_or_else(|| panic!("Secret {:?} has no {key}", s.metadata.name))
}

#[tokio::test]
async fn an_issuer_ref_gets_its_certificate_and_the_engines_serve_the_issued_secret() {
    let (client, ns, operator) =
        operator_in_fresh_namespace("rp-certmgr", Some(TEST_IMAGE), "operator-test").await;
    install_certificate_crd(&client).await;
    let mut pair: RedisPair = serde_yaml::from_str(&contract_manifest("semi-sync")).unwrap();
    pair.spec.tls = Some(
        serde_json::from_value(serde_json::json!({
            "issuerRef": {"name": "pair-ca", "kind": "Issuer"},
            "plaintext": false,
            "clientAuth": "Required",
        }))
        .unwrap(),
    );
    let pairs: Api<RedisPair> = Api::namespaced(client.clone(), &ns);
    pairs
        .create(&Default::default(), &pair)
        .await
        .expect("creating the pair");

    // The Certificate, as the API server stored it under cert-manager's schema.
    let gvk = GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate");
    let certs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk_with_plural(&gvk, "certificates"),
    );
    let cert = wait_for("the operator's Certificate cache-tls", T, || async {
        certs.get_opt("cache-tls").await.ok().flatten()
    })
    .await;
    let spec = cert.data["spec"].clone();
    assert_eq!(spec["secretName"], "cache-tls", "{spec:#}");
    assert_eq!(
        spec["issuerRef"],
        serde_json::json!({"name": "pair-ca", "kind": "Issuer", "group": "cert-manager.io"}),
        "{spec:#}"
    );
    assert_eq!(spec["commonName"], format!("cache.{ns}.svc"));
    let dns: Vec<&str> = spec["dnsNames"]
        .as_array()
        .expect("dnsNames kept")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for svc in ["cache", "cache-ro", "cache-headless"] {
        for name in [
            svc.to_string(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
        ] {
            assert!(dns.contains(&name.as_str()), "{name} not in {dns:?}");
        }
    }
    for pod in ["cache-a", "cache-b"] {
        let name = format!("{pod}.cache-headless.{ns}.svc");
        assert!(dns.contains(&name.as_str()), "{name} not in {dns:?}");
    }
    let usages = spec["usages"].as_array().expect("usages kept");
    for u in ["server auth", "client auth"] {
        assert!(usages.iter().any(|x| x == u), "{u} not in {usages:?}");
    }
    assert_eq!(
        spec["privateKey"],
        serde_json::json!({"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}),
        "the private key settings survived the schema"
    );
    let owner = cert
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.kind == "RedisPair")
        .expect("the pair owns its Certificate");
    assert_eq!(owner.name, "cache");

    // The pods mount the Secret the Certificate names, and run the engine with TLS from it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut pod_args = Vec::new();
    for name in ["cache-a", "cache-b"] {
        let pod = wait_for(&format!("pod {name}"), T, || async {
            pods.get_opt(name).await.ok().flatten()
        })
        .await;
        let spec = pod.spec.expect("pod spec");
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| {
                v.secret
                    .as_ref()
                    .is_some_and(|s| s.secret_name.as_deref() == Some("cache-tls"))
            })
            .unwrap_or_else(|| panic!("{name} has no volume of Secret cache-tls"));
        let engine = spec
            .containers
            .iter()
            .find(|c| c.name == "engine")
            .expect("the engine container");
        let mount = engine
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == volume.name)
            .unwrap_or_else(|| panic!("{name}'s engine does not mount {}", volume.name));
        assert_eq!(mount.mount_path, TLS_DIR);
        assert!(mount.sub_path.is_none(), "a subPath mount is never updated");
        pod_args.push(engine.args.clone().expect("engine args"));
    }

    // cert-manager's part: issue what the stored Certificate asks for, write its Secret.
    let dir = temp_dir("certmgr");
    let ca = make_ca(&dir, "issuer-ca");
    let leaf = issue(&dir, &ca, &spec);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let issued = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("cache-tls".into()),
            annotations: Some(
                [(
                    "cert-manager.io/certificate-name".to_string(),
                    "cache-tls".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [
                ("tls.crt", &leaf.crt),
                ("tls.key", &leaf.key),
                ("ca.crt", &ca.crt),
            ]
            .into_iter()
            .map(|(k, p)| (k.to_string(), ByteString(std::fs::read(p).unwrap())))
            .collect(),
        ),
        ..Default::default()
    };
    secrets
        .create(&Default::default(), &issued)
        .await
        .expect("writing the issued Secret");

    // The Secret as the kubelet would mount it, from the API (not from the files above), and
    // the passwords the operator generated.
    let stored = secrets.get("cache-tls").await.unwrap();
    let files = dir.join("from-api");
    std::fs::create_dir_all(&files).unwrap();
    let (api_ca, api_leaf) = (
        Ca {
            crt: files.join("ca.crt"),
            key: ca.key.clone(),
        },
        Leaf {
            crt: files.join("tls.crt"),
            key: files.join("tls.key"),
        },
    );
    for (key, path) in [
        ("ca.crt", &api_ca.crt),
        ("tls.crt", &api_leaf.crt),
        ("tls.key", &api_leaf.key),
    ] {
        std::fs::write(path, secret_value(&stored, key)).unwrap();
    }
    let mounted = MountedSecret::new(&dir.join("tls"), &api_ca, &api_leaf);
    let admin = wait_for("the admin Secret", T, || async {
        secrets.get_opt("cache-admin").await.ok().flatten()
    })
    .await;
    let client_pw = wait_for("the password Secret", T, || async {
        secrets.get_opt("cache-password").await.ok().flatten()
    })
    .await;
    let admin_pw_file = dir.join("admin-password");
    let pw_file = dir.join("password");
    std::fs::write(&admin_pw_file, secret_value(&admin, "password")).unwrap();
    std::fs::write(&pw_file, secret_value(&client_pw, "password")).unwrap();

    // Two engines as the two pods, on 127.0.0.1 and 127.0.0.2 with the same TLS port (as pods
    // share theirs), with the operator's arguments.
    let tls_port = free_port();
    let secrets_files = [
        ("--requirepass-file", pw_file.as_path()),
        ("--admin-password-file", admin_pw_file.as_path()),
    ];
    let mut engines = Vec::new();
    for (i, ip) in ["127.0.0.1", "127.0.0.2"].into_iter().enumerate() {
        let data = dir.join(format!("data-{i}"));
        std::fs::create_dir_all(&data).unwrap();
        engines.push(start_pod_engine(
            &pod_args[i],
            ip,
            tls_port,
            &data,
            &mounted.dir,
            &secrets_files,
        ));
    }

    // They serve the issued certificate to a client verifying the read-write Service's name.
    let service_name = format!("cache.{ns}.svc");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let served = wait_for(&format!("the engine on {ip} serving TLS"), T, || async {
            presented_as(ip, tls_port, &service_name, &api_ca.crt)
                .await
                .ok()
        })
        .await;
        assert_eq!(
            served,
            der_of(&leaf.crt),
            "{ip} serves the issued certificate"
        );
    }

    // The operator's admin client, from the Secret as the operator reads it, over TLS with
    // client certificates required: promote the first, point the second at it.
    let access = EngineAccess {
        admin_password: String::from_utf8(secret_value(&admin, "password")).unwrap(),
        tls_ca: Some(secret_value(&stored, "ca.crt")),
        tls_client: Some((
            secret_value(&stored, "tls.crt"),
            secret_value(&stored, "tls.key"),
        )),
    };
    let connect = |ip: &'static str| {
        let access = access.clone();
        async move {
            EngineClient::connect_port(ip, i32::from(tls_port), &access, Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("the operator's client to {ip}: {e}"))
        }
    };
    let mut a = connect("127.0.0.1").await;
    a.promote(1).await.expect("PROMOTE over TLS");
    let mut b = connect("127.0.0.2").await;
    b.demote("127.0.0.1", 1).await.expect("DEMOTE over TLS");
    // The replica's link is TLS with its certificate presented (client auth required).
    let deadline = std::time::Instant::now() + T;
    while !b.info().await.is_ok_and(|i| i.link_up) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica's TLS link did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A semi-sync write on the master (its in-pod plaintext port, as the preStop hook uses)
    // is acknowledged once the replica has it over TLS.
    let client_password = String::from_utf8(secret_value(&client_pw, "password")).unwrap();
    let conn = |port: u16| {
        let url = format!("redis://:{client_password}@127.0.0.1:{port}/");
        async move { support::redis_conn_to(&url).await }
    };
    let mut mc = conn(engines[0].loopback_port)
        .await
        .expect("master in-pod port");
    let _: () = redis::cmd("SET")
        .arg("issued")
        .arg("yes")
        .query_async(&mut mc)
        .await
        .expect("a write on the master");
    let mut rc = conn(engines[1].loopback_port)
        .await
        .expect("replica in-pod port");
    let got: Option<String> = redis::cmd("GET")
        .arg("issued")
        .query_async(&mut rc)
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("yes"), "the write reached the replica");

    drop(engines);
    operator.abort();
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(&dir);
}
