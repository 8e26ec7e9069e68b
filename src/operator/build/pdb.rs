//! Builder of the PodDisruptionBudget: at most one engine pod voluntarily evicted at a time,
//! so a node drain never takes both. Pure.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::operator::validate::{pair_labels, ValidatedPair};

pub fn build_pdb(v: &ValidatedPair) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(v.names.pdb.clone()),
            namespace: Some(v.namespace.clone()),
            labels: Some(pair_labels(v)),
            owner_references: Some(vec![v.owner.clone()]),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(
                    [(
                        crate::api::constants::LABEL_PAIR.to_string(),
                        v.names.pair.clone(),
                    )]
                    .into(),
                ),
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

    #[test]
    fn pdb_allows_one_disruption_of_the_pair() {
        let p = build_pdb(&contract_validated());
        let spec = p.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()["redispair.io/pair"],
            "cache"
        );
    }
}
