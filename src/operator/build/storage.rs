//! Builder of the PersistentVolumeClaim holding one engine's data directory. Pure.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::operator::validate::{pair_labels, ValidatedPair};

pub fn build_pvc(v: &ValidatedPair, pod: &str) -> PersistentVolumeClaim {
    let mut labels = pair_labels(v);
    labels.insert(
        crate::api::constants::LABEL_POD.to_string(),
        pod.to_string(),
    );
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(v.names.pvc(pod)),
            namespace: Some(v.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![v.owner.clone()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: v.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), v.spec.storage.size.clone())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_validated;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn claim_per_pod_with_the_requested_size() {
        let mut v = contract_validated();
        v.spec.storage.storage_class_name = Some("fast".into());
        let c = build_pvc(&v, "cache-b");
        assert_eq!(c.metadata.name.as_deref(), Some("data-cache-b"));
        let spec = c.spec.unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("1Gi".into())
        );
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
    }
}
