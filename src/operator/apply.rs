//! The apply step: writes the built objects with server-side apply under the operator's one
//! field manager. Pods are the exception: their spec is immutable, so an existing pod only
//! gets its labels merged, and a missing one is created. Does I/O: Kubernetes API writes.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::PairResources;
use super::error::ReconcileError;
use super::observe::Observed;
use crate::api::constants::FIELD_MANAGER;

async fn apply_one<K>(client: &Client, ns: &str, obj: &K) -> Result<(), ReconcileError>
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
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| ReconcileError::Apply {
        kind: kind_name::<K>(),
        name,
        source,
    })?;
    Ok(())
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

/// Apply every object of the pair, in an order that lets each exist when the next needs it:
/// Secrets (pods read them at start), claims, pods, then Services and the PDB. The read-write
/// Service carries the routing decision, so it is applied after the pods it may select.
pub async fn apply_pair(
    client: &Client,
    ns: &str,
    resources: &PairResources,
    observed: &Observed,
) -> Result<(), ReconcileError> {
    let PairResources {
        secrets,
        services,
        pdb,
        pvcs,
        pods,
    } = resources;
    for s in secrets {
        // Only Secrets that did not exist are built; create, never overwrite (a concurrent
        // creation by the user wins).
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        match api.create(&PostParams::default(), s).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(source) => {
                return Err(ReconcileError::Apply {
                    kind: "Secret",
                    name: s.metadata.name.clone().unwrap_or_default(),
                    source,
                })
            }
        }
    }
    for c in pvcs {
        apply_one::<PersistentVolumeClaim>(client, ns, c).await?;
    }
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for p in pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let err = |source| ReconcileError::Apply {
            kind: "Pod",
            name: name.clone(),
            source,
        };
        match observed.pods.get(&name) {
            None => match pod_api.create(&PostParams::default(), p).await {
                Ok(_) => {}
                // Still terminating, or created by a concurrent pass: the next pass sees it.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(err(e)),
            },
            Some(existing) if existing.metadata.labels != p.metadata.labels => {
                let patch = serde_json::json!({"metadata": {"labels": p.metadata.labels}});
                pod_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(err)?;
            }
            Some(_) => {}
        }
    }
    for s in services {
        apply_one::<Service>(client, ns, s).await?;
    }
    apply_one::<PodDisruptionBudget>(client, ns, pdb).await?;
    Ok(())
}
