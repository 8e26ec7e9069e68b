//! Builder of the cert-manager `Certificate` (cert-manager.io/v1) for a pair with
//! `spec.tls.issuerRef`: a dynamic object (JSON), so the operator neither depends on
//! cert-manager's types nor needs its CRDs installed when no pair uses it. Pure.

use serde_json::json;

use crate::operator::validate::{pair_labels, ValidatedPair};

pub const CERT_MANAGER_GROUP: &str = "cert-manager.io";
pub const CERT_MANAGER_VERSION: &str = "v1";
pub const CERTIFICATE_KIND: &str = "Certificate";
pub const CERTIFICATE_PLURAL: &str = "certificates";

/// The DNS names clients and peers use: the read-write, read-only and headless Services in
/// their short and qualified forms, and each pod's name under the headless Service. Pod IPs
/// are not listed (unknown before scheduling): the replica and the operator verify the chain
/// to the CA, not the name (docs/tls.md).
pub fn certificate_dns_names(v: &ValidatedPair) -> Vec<String> {
    let ns = &v.namespace;
    let mut names = Vec::new();
    for svc in [&v.names.read_write, &v.names.read_only, &v.names.headless] {
        names.push(svc.clone());
        names.push(format!("{svc}.{ns}"));
        names.push(format!("{svc}.{ns}.svc"));
        names.push(format!("{svc}.{ns}.svc.cluster.local"));
    }
    for pod in &v.names.pods {
        let h = &v.names.headless;
        names.push(format!("{pod}.{h}"));
        names.push(format!("{pod}.{h}.{ns}.svc"));
        names.push(format!("{pod}.{h}.{ns}.svc.cluster.local"));
    }
    names
}

/// The Certificate, or None when the pair names its own Secret (or has no TLS).
pub fn build_certificate(v: &ValidatedPair) -> Option<serde_json::Value> {
    let issuer = v.spec.tls.as_ref()?.issuer_ref.as_ref()?;
    let name = v.names.certificate.as_ref()?;
    let secret = v.names.tls_secret.as_ref()?;
    Some(json!({
        "apiVersion": format!("{CERT_MANAGER_GROUP}/{CERT_MANAGER_VERSION}"),
        "kind": CERTIFICATE_KIND,
        "metadata": {
            "name": name,
            "namespace": v.namespace,
            "labels": pair_labels(v),
            "ownerReferences": [v.owner],
        },
        "spec": {
            "secretName": secret,
            "issuerRef": {
                "name": issuer.name,
                "kind": issuer.kind,
                "group": issuer.group,
            },
            "commonName": format!("{}.{}.svc", v.names.read_write, v.namespace),
            "dnsNames": certificate_dns_names(v),
            // The replica presents the same certificate to its master: client auth too.
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "privateKey": {
                "algorithm": "ECDSA",
                "size": 256,
                "rotationPolicy": "Always",
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_validated;

    #[test]
    fn no_certificate_without_an_issuer() {
        let mut v = contract_validated();
        assert!(build_certificate(&v).is_none());
        v.spec.tls = Some(crate::api::TlsSpec {
            secret_name: Some("mine".into()),
            issuer_ref: None,
            plaintext: true,
            client_auth: Default::default(),
        });
        assert!(build_certificate(&v).is_none());
    }

    #[test]
    fn the_certificate_covers_the_services_and_pods_for_server_and_client_use() {
        let mut v = contract_validated();
        v.spec.tls = Some(crate::api::TlsSpec {
            secret_name: None,
            issuer_ref: Some(crate::api::TlsIssuerRef {
                name: "pair-ca".into(),
                kind: "ClusterIssuer".into(),
                group: "cert-manager.io".into(),
            }),
            plaintext: false,
            client_auth: Default::default(),
        });
        v.names.tls_secret = Some("cache-tls".into());
        v.names.certificate = Some("cache-tls".into());
        let c = build_certificate(&v).unwrap();
        assert_eq!(c["apiVersion"], "cert-manager.io/v1");
        assert_eq!(c["kind"], "Certificate");
        assert_eq!(c["metadata"]["name"], "cache-tls");
        assert_eq!(c["metadata"]["ownerReferences"][0]["kind"], "RedisPair");
        assert_eq!(c["spec"]["secretName"], "cache-tls");
        assert_eq!(c["spec"]["issuerRef"]["kind"], "ClusterIssuer");
        let names: Vec<&str> = c["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        for want in [
            "cache",
            "cache.shop.svc",
            "cache-ro.shop.svc.cluster.local",
            "cache-a.cache-headless.shop.svc",
            "cache-b.cache-headless",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let usages = c["spec"]["usages"].to_string();
        assert!(usages.contains("server auth") && usages.contains("client auth"));
    }
}
