//! Builders of the pair's Services: read-write (selects the master pod by name), read-only
//! (selects the replica pod by name) and headless (stable DNS names for both pods). Pure.
//!
//! Routing is the selector, not a role label: moving traffic is one write of one Service, so a
//! label lagging the real role (the OT/Spotahome failure) cannot misroute clients, and two pods
//! can never both be selected (the Dragonfly double-master label).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::constants::{
    ENGINE_METRICS_PORT, ENGINE_METRICS_PORT_NAME, ENGINE_PORT, ENGINE_TLS_PORT,
    ENGINE_TLS_PORT_NAME, LABEL_PAIR, LABEL_POD,
};
use crate::operator::validate::{pair_labels, ValidatedPair};

/// Selector value that matches no pod (pods carry their own name, never this).
pub const SELECTS_NOTHING: &str = "none";

fn selector(v: &ValidatedPair, pod: Option<&str>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_PAIR.to_string(), v.names.pair.clone()),
        (
            LABEL_POD.to_string(),
            pod.unwrap_or(SELECTS_NOTHING).to_string(),
        ),
    ])
}

fn meta(v: &ValidatedPair, name: &str, user_annotations: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(v.namespace.clone()),
        labels: Some(pair_labels(v)),
        annotations: (user_annotations && !v.spec.services.annotations.is_empty())
            .then(|| v.spec.services.annotations.clone()),
        owner_references: Some(vec![v.owner.clone()]),
        ..Default::default()
    }
}

/// The client ports of the read-write and read-only Services: `redis` (6379) unless
/// plaintext is off, `redis-tls` (6380) with TLS.
fn ports(v: &ValidatedPair) -> Vec<ServicePort> {
    let port = |name: &str, number: i32| ServicePort {
        name: Some(name.to_string()),
        port: number,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    };
    let mut ports = Vec::new();
    if v.spec.tls.as_ref().is_none_or(|t| t.plaintext) {
        ports.push(port("redis", ENGINE_PORT));
    }
    if v.spec.tls.is_some() {
        ports.push(port(ENGINE_TLS_PORT_NAME, ENGINE_TLS_PORT));
    }
    ports
}

/// The read-write Service, named after the pair: selects exactly the given master pod.
pub fn build_read_write_service(v: &ValidatedPair, master: Option<&str>) -> Service {
    Service {
        metadata: meta(v, &v.names.read_write, true),
        spec: Some(ServiceSpec {
            type_: v.spec.services.r#type.clone(),
            selector: Some(selector(v, master)),
            ports: Some(ports(v)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The read-only Service `<pair>-ro`: selects the replica pod.
pub fn build_read_only_service(v: &ValidatedPair, replica: Option<&str>) -> Service {
    Service {
        metadata: meta(v, &v.names.read_only, true),
        spec: Some(ServiceSpec {
            type_: v.spec.services.r#type.clone(),
            selector: Some(selector(v, replica)),
            ports: Some(ports(v)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The headless Service: `<pod>.<pair>-headless` names for both pods, ready or not (the replica
/// must reach the master while it is still syncing).
pub fn build_headless_service(v: &ValidatedPair) -> Service {
    Service {
        metadata: meta(v, &v.names.headless, false),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(BTreeMap::from([(
                LABEL_PAIR.to_string(),
                v.names.pair.clone(),
            )])),
            // The metrics port too: a ServiceMonitor (or any Endpoints-based scrape) finds
            // both engines through this Service.
            ports: Some(
                ports(v)
                    .into_iter()
                    .chain([ServicePort {
                        name: Some(ENGINE_METRICS_PORT_NAME.to_string()),
                        port: ENGINE_METRICS_PORT,
                        target_port: Some(IntOrString::String(
                            ENGINE_METRICS_PORT_NAME.to_string(),
                        )),
                        protocol: Some("TCP".to_string()),
                        ..Default::default()
                    }])
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod a read-write or read-only Service selects, as read back from the API server.
pub fn selected_pod(service: &Service) -> Option<String> {
    let pod = service.spec.as_ref()?.selector.as_ref()?.get(LABEL_POD)?;
    (pod != SELECTS_NOTHING).then(|| pod.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_validated;

    #[test]
    fn read_write_service_selects_the_master_pod_by_name() {
        let v = contract_validated();
        let s = build_read_write_service(&v, Some("cache-b"));
        assert_eq!(s.metadata.name.as_deref(), Some("cache"));
        let spec = s.spec.as_ref().unwrap();
        let sel = spec.selector.as_ref().unwrap();
        assert_eq!(sel["redispair.io/pod"], "cache-b");
        assert_eq!(sel["redispair.io/pair"], "cache");
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 6379);
        assert_eq!(selected_pod(&s).as_deref(), Some("cache-b"));
    }

    #[test]
    fn the_headless_service_carries_the_metrics_port() {
        let v = contract_validated();
        let s = build_headless_service(&v);
        let ports = s.spec.unwrap().ports.unwrap();
        let names: Vec<_> = ports.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(names, ["redis", "metrics"]);
        assert_eq!(ports[1].port, 9121);
    }

    #[test]
    fn during_failover_the_read_write_service_selects_nothing() {
        let v = contract_validated();
        let s = build_read_write_service(&v, None);
        assert_eq!(
            s.spec.as_ref().unwrap().selector.as_ref().unwrap()["redispair.io/pod"],
            SELECTS_NOTHING
        );
        assert_eq!(selected_pod(&s), None);
    }

    #[test]
    fn read_only_and_headless_services() {
        let mut v = contract_validated();
        v.spec.services.r#type = Some("NodePort".into());
        v.spec.services.annotations.insert("a".into(), "b".into());
        let ro = build_read_only_service(&v, Some("cache-a"));
        assert_eq!(ro.metadata.name.as_deref(), Some("cache-ro"));
        assert_eq!(ro.metadata.annotations.as_ref().unwrap()["a"], "b");
        let spec = ro.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.selector.unwrap()["redispair.io/pod"], "cache-a");
        let h = build_headless_service(&v);
        assert_eq!(h.metadata.name.as_deref(), Some("cache-headless"));
        let spec = h.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert!(!spec.selector.unwrap().contains_key("redispair.io/pod"));
    }
}
