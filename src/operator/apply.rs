//! The apply step: writes the built objects with server-side apply under the operator's one
//! field manager. Pods are the exception: their spec is immutable, so an existing pod only
//! gets its labels merged (and, once, its spec hash: see [`existing_pod_patch`]), and a
//! missing one is created; rolling a changed spec out is the rollout's job (deleting the pod,
//! one at a time). A body identical to one applied in the last seconds is not sent again
//! ([`AppliedBodies`]). Does I/O: Kubernetes API writes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::pod::spec_hash_of;
use super::build::PairResources;
use super::error::ReconcileError;
use super::observe::Observed;
use crate::api::constants::{ANNOTATION_SPEC_HASH, FIELD_MANAGER};

/// The merge patch an existing pod needs (None: nothing). Labels follow the built pod (the
/// role label moves at every switchover). The spec hash is written only to a pod that has
/// none: such a pod was made by an operator that did not stamp pods, and is *adopted* as up to
/// date instead of being rolled, so that upgrading the operator does not restart every pair.
/// A pod that carries a different hash keeps it: that difference is what the rollout acts on.
pub fn existing_pod_patch(existing: &Pod, built: &Pod) -> Option<serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    if existing.metadata.labels != built.metadata.labels {
        metadata.insert("labels".into(), serde_json::json!(built.metadata.labels));
    }
    if spec_hash_of(existing).is_none() {
        if let Some(h) = spec_hash_of(built) {
            metadata.insert(
                "annotations".into(),
                serde_json::json!({ ANNOTATION_SPEC_HASH: h }),
            );
        }
    }
    (!metadata.is_empty()).then(|| serde_json::json!({ "metadata": metadata }))
}

/// How long an applied body is trusted to still be in place: within this time an identical
/// body is not sent again. After it, the next pass applies it anyway, which repairs an
/// object someone else changed or deleted.
const APPLIED_TTL: Duration = Duration::from_secs(15);

/// The bodies this operator applied lately, by object (kind/namespace/name → hash, when).
/// Every pass builds and applies the whole pair; during a failover each pass's API
/// round-trips (six server-side applies, most of them unchanged) delayed the engine action
/// that follows them, so an unchanged body is skipped. The read-write Service's selector,
/// which carries the routing decision, changes its body and is always sent.
#[derive(Default)]
pub struct AppliedBodies(Mutex<HashMap<String, (u64, Instant)>>);

impl AppliedBodies {
    fn fresh(&self, key: &str, hash: u64, now: Instant) -> bool {
        self.0.lock().ok().is_some_and(|m| {
            m.get(key)
                .is_some_and(|(h, at)| *h == hash && now.duration_since(*at) < APPLIED_TTL)
        })
    }
    fn record(&self, key: String, hash: u64, now: Instant) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, (hash, now));
        }
    }
    /// An object this operator deleted (a lost pod's claim): the next pass must create it
    /// again, whatever was applied before.
    pub fn forget_object(&self, kind: &str, ns: &str, name: &str) {
        self.forget(&format!("{kind}/{ns}/{name}"));
    }
    fn forget(&self, key: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }
}

async fn apply_one<K>(
    client: &Client,
    ns: &str,
    obj: &K,
    applied: &AppliedBodies,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = obj.meta().name.clone().unwrap_or_default();
    // SSA needs apiVersion and kind in the body; the typed objects leave them out.
    let mut body = serde_json::to_value(obj).expect("k8s objects serialize");
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let key = format!("{}/{ns}/{name}", K::kind(&()));
    patch_unless_fresh(&api, key, name, &body, applied, kind_name::<K>()).await
}

/// Server-side apply of `body` as `name`, unless the same body was applied under `key` a
/// moment ago ([`AppliedBodies::fresh`]): a pass that changes nothing sends nothing. A failed
/// apply forgets the key, so the next pass sends it again whatever its hash.
async fn patch_unless_fresh<K>(
    api: &Api<K>,
    key: String,
    name: String,
    body: &serde_json::Value,
    applied: &AppliedBodies,
    kind: &'static str,
) -> Result<(), ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let hash = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.to_string().hash(&mut h);
        h.finish()
    };
    let now = Instant::now();
    if applied.fresh(&key, hash, now) {
        return Ok(());
    }
    match api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
    {
        Ok(_) => {
            applied.record(key, hash, now);
            Ok(())
        }
        Err(source) => {
            applied.forget(&key);
            Err(ReconcileError::Apply { kind, name, source })
        }
    }
}

/// Server-side apply of the cert-manager Certificate as a dynamic object (no cert-manager
/// types; its CRD is only needed when a pair asks for it, and its absence is reported as the
/// apply error of this object, with the API server's message).
async fn apply_certificate(
    client: &Client,
    ns: &str,
    body: &serde_json::Value,
    applied: &AppliedBodies,
) -> Result<(), ReconcileError> {
    use super::build::certificate::*;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let gvk = GroupVersionKind::gvk(CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, CERTIFICATE_KIND);
    let ar = ApiResource::from_gvk_with_plural(&gvk, CERTIFICATE_PLURAL);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = format!("{CERTIFICATE_KIND}/{ns}/{name}");
    patch_unless_fresh(&api, key, name, body, applied, "Certificate").await
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "Secret" => "Secret",
        "Service" => "Service",
        "PodDisruptionBudget" => "PodDisruptionBudget",
        "PersistentVolumeClaim" => "PersistentVolumeClaim",
        "Pod" => "Pod",
        _ => "object",
    }
}

/// What [`apply_pair`] could not write. The Services carry the routing decision (during a
/// failover the read-write one selects nothing before the promotion: that is the fence), so
/// their failure stops the pass before any engine action. Anything else failing (a claim
/// resize refused, a pod create refused by a quota or a webhook, the PDB) must not hold up a
/// failover: the caller goes on with the engine actions and reports these at the end.
#[derive(Debug, Default)]
pub struct ApplyErrors {
    pub routing: Option<ReconcileError>,
    pub others: Vec<ReconcileError>,
}

/// Apply every object of the pair, in an order that lets each exist when the next needs it:
/// Secrets (pods read them at start), claims, pods, then Services and the PDB. The read-write
/// Service carries the routing decision, so it is applied after the pods it may select. One
/// object failing does not stop the others (see [`ApplyErrors`]).
pub async fn apply_pair(
    client: &Client,
    ns: &str,
    resources: &PairResources,
    observed: &Observed,
    applied: &AppliedBodies,
) -> ApplyErrors {
    let PairResources {
        secrets,
        services,
        pdb,
        pvcs,
        pods,
        certificate,
    } = resources;
    let mut errors = ApplyErrors::default();
    for s in secrets {
        // Only Secrets that did not exist are built; create, never overwrite (a concurrent
        // creation by the user wins).
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        match api.create(&PostParams::default(), s).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(source) => errors.others.push(ReconcileError::Apply {
                kind: "Secret",
                name: s.metadata.name.clone().unwrap_or_default(),
                source,
            }),
        }
    }
    // Before the pods: they mount the Secret cert-manager writes for it.
    if let Some(c) = certificate {
        if let Err(e) = apply_certificate(client, ns, c, applied).await {
            errors.others.push(e);
        }
    }
    for c in pvcs {
        if let Err(e) = apply_one::<PersistentVolumeClaim>(client, ns, c, applied).await {
            errors.others.push(e);
        }
    }
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for p in pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let err = |source| ReconcileError::Apply {
            kind: "Pod",
            name: name.clone(),
            source,
        };
        let result = match observed.pods.get(&name) {
            None => match pod_api.create(&PostParams::default(), p).await {
                Ok(_) => Ok(()),
                // Still terminating, or created by a concurrent pass: the next pass sees it.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(err(e)),
            },
            Some(existing) => match existing_pod_patch(existing, p) {
                Some(patch) => pod_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(err),
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            errors.others.push(e);
        }
    }
    for s in services {
        if let Err(e) = apply_one::<Service>(client, ns, s, applied).await {
            // The first routing failure is the one reported; the other Service is still tried.
            if errors.routing.is_none() {
                errors.routing = Some(e);
            } else {
                errors.others.push(e);
            }
        }
    }
    if let Err(e) = apply_one::<PodDisruptionBudget>(client, ns, pdb, applied).await {
        errors.others.push(e);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applied_body_is_trusted_for_a_while_and_only_if_identical() {
        let applied = AppliedBodies::default();
        let t0 = Instant::now();
        assert!(!applied.fresh("Service/ns/cache", 1, t0));
        applied.record("Service/ns/cache".into(), 1, t0);
        assert!(applied.fresh("Service/ns/cache", 1, t0 + Duration::from_secs(1)));
        // A changed body (a new selector) is sent.
        assert!(!applied.fresh("Service/ns/cache", 2, t0 + Duration::from_secs(1)));
        // After the TTL the same body is sent again (repairs outside changes).
        assert!(!applied.fresh("Service/ns/cache", 1, t0 + APPLIED_TTL));
        applied.forget("Service/ns/cache");
        assert!(!applied.fresh("Service/ns/cache", 1, t0));
    }
    use crate::operator::build::pod::build_pod;
    use crate::operator::validate::tests::contract_validated;

    #[test]
    fn a_pod_without_a_hash_is_adopted_and_a_stale_hash_is_left_for_the_rollout() {
        let v = contract_validated();
        let built = build_pod(&v, "cache-a", Some("master"));
        // Up to date: nothing to write.
        assert_eq!(existing_pod_patch(&built, &built), None);
        // Made by an older operator (no hash): stamped with the current one, not rolled.
        let mut old = built.clone();
        old.metadata.annotations = None;
        let patch = existing_pod_patch(&old, &built).unwrap();
        assert_eq!(
            patch["metadata"]["annotations"][ANNOTATION_SPEC_HASH],
            serde_json::json!(spec_hash_of(&built).unwrap())
        );
        assert!(patch["metadata"].get("labels").is_none());
        // A different hash stays: the rollout replaces that pod. Only the role label moves.
        let mut stale = built.clone();
        stale
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_SPEC_HASH.into(), "0000".into());
        let replica = build_pod(&v, "cache-a", Some("replica"));
        let patch = existing_pod_patch(&stale, &replica).unwrap();
        assert!(patch["metadata"].get("annotations").is_none());
        assert_eq!(patch["metadata"]["labels"]["redispair.io/role"], "replica");
    }
}
