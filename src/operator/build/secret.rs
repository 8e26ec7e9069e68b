//! Builders of the Secrets the operator creates when they are missing: the client password and
//! the admin password the operator uses on the engines. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use crate::operator::validate::{pair_labels, ValidatedPair};

fn build_secret(v: &ValidatedPair, name: &str, key: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(v.namespace.clone()),
            labels: Some(pair_labels(v)),
            // Owned by the pair: a Secret the operator generated goes away with it. A Secret
            // the user made is never touched (it is not rebuilt when it exists).
            owner_references: Some(vec![v.owner.clone()]),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(BTreeMap::from([(
            key.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// The client password Secret (spec.auth.passwordSecret or `<pair>-password`).
pub fn build_password_secret(v: &ValidatedPair, password: &str) -> Secret {
    build_secret(v, &v.names.password_secret, &v.names.password_key, password)
}

/// The admin Secret (`<pair>-admin`, key `password`): the operator's own credentials.
pub fn build_admin_secret(v: &ValidatedPair, password: &str) -> Secret {
    build_secret(v, &v.names.admin_secret, "password", password)
}

/// The version of a password recorded on the pods (see
/// [`crate::api::constants::ANNOTATION_PASSWORD_APPLIED`]): SHA-1 over the pair's uid and the
/// password, 16 hex digits. Salted with the uid so that the annotation, readable by anyone who
/// can read pods, does not serve as an unsalted hash of a user-chosen password.
pub fn password_mark(v: &ValidatedPair, password: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(v.owner.uid.as_bytes());
    h.update(&[0]);
    h.update(password.as_bytes());
    h.digest().to_string()[..16].to_string()
}

/// The annotation's value: the password version and the engine container's restart count.
pub fn password_applied_value(mark: &str, restarts: i32) -> String {
    format!("{mark}/{restarts}")
}

/// A random password: 32 alphanumeric characters from the given generator.
pub fn generate_password(rng: &mut impl rand::Rng) -> String {
    use rand::distributions::Alphanumeric;
    (0..32).map(|_| rng.sample(Alphanumeric) as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_validated;
    use rand::SeedableRng;

    #[test]
    fn password_secret_uses_the_named_secret_and_key() {
        let v = contract_validated();
        let s = build_password_secret(&v, "hunter2");
        assert_eq!(s.metadata.name.as_deref(), Some("cache-password"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(s.data.as_ref().unwrap()["password"].0, b"hunter2");
        assert_eq!(
            s.metadata.owner_references.as_ref().unwrap()[0].name,
            "cache"
        );
        let a = build_admin_secret(&v, "x");
        assert_eq!(a.metadata.name.as_deref(), Some("cache-admin"));
    }

    #[test]
    fn password_mark_is_salted_with_the_pair_and_hides_the_password() {
        let v = contract_validated();
        let m = password_mark(&v, "hunter2");
        assert_eq!(m.len(), 16);
        assert_eq!(m, password_mark(&v, "hunter2"));
        assert_ne!(m, password_mark(&v, "hunter3"));
        let mut other = contract_validated();
        other.owner.uid = "another-pair".into();
        assert_ne!(m, password_mark(&other, "hunter2"));
        assert!(!m.contains("hunter2"));
        assert_eq!(password_applied_value(&m, 2), format!("{m}/2"));
    }

    #[test]
    fn generated_passwords_are_long_and_seeded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = generate_password(&mut rng);
        let b = generate_password(&mut rng);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
