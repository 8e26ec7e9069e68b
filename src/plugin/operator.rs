//! Whether the RedisPair operator is running, judged from what the API shows: the chart's
//! Deployment (label app.kubernetes.io/name=redispair-operator) and the leader-election Lease.
//! Pure: the caller lists the objects.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// A Lease counts as held when it was renewed within its duration plus this slack (the
/// holder renews well before expiry; the slack absorbs clock skew between machines).
const LEASE_SLACK_SECONDS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "camelCase")]
pub enum OperatorPresence {
    /// Running; the detail says where.
    Running(String),
    /// Not running; the detail says what was seen.
    NotRunning(String),
    /// Could not tell (typically no permission to list Deployments or Leases).
    Unknown(String),
}

impl OperatorPresence {
    pub fn is_not_running(&self) -> bool {
        matches!(self, OperatorPresence::NotRunning(_))
    }
}

/// What the caller could list: `None` when the list call was refused or failed.
#[derive(Debug, Default)]
pub struct OperatorObservation {
    /// Deployments labelled as the operator, in any namespace.
    pub deployments: Option<Vec<Deployment>>,
    /// Leases in any namespace (only those named like the operator are considered).
    pub leases: Option<Vec<Lease>>,
}

fn qualified(ns: Option<&String>, name: Option<&String>) -> String {
    format!(
        "{}/{}",
        ns.map(String::as_str).unwrap_or("?"),
        name.map(String::as_str).unwrap_or("?")
    )
}

/// Judges presence: a Deployment with a ready replica, or a fresh Lease held by an operator
/// (run outside the chart), means running.
pub fn judge_operator(seen: &OperatorObservation, now: Timestamp) -> OperatorPresence {
    let mut not_ready = Vec::new();
    for d in seen.deployments.iter().flatten() {
        let where_ = qualified(d.metadata.namespace.as_ref(), d.metadata.name.as_ref());
        let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready > 0 {
            return OperatorPresence::Running(format!(
                "deployment {where_}, {ready}/{wanted} ready"
            ));
        }
        not_ready.push(format!("deployment {where_} has 0/{wanted} pods ready"));
    }
    for l in seen.leases.iter().flatten() {
        let name = l.metadata.name.as_deref().unwrap_or_default();
        if !name.contains("redispair") {
            continue;
        }
        let Some(spec) = &l.spec else { continue };
        let (Some(holder), Some(renewed)) = (&spec.holder_identity, &spec.renew_time) else {
            continue;
        };
        if holder.is_empty() {
            continue;
        }
        let age = now.as_second() - renewed.0.as_second();
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        if age <= duration + LEASE_SLACK_SECONDS {
            return OperatorPresence::Running(format!(
                "leader {holder} (lease {}, renewed {age}s ago)",
                qualified(l.metadata.namespace.as_ref(), l.metadata.name.as_ref())
            ));
        }
        not_ready.push(format!("lease {name} last renewed {age}s ago by {holder}"));
    }
    if !not_ready.is_empty() {
        return OperatorPresence::NotRunning(not_ready.join("; "));
    }
    match (&seen.deployments, &seen.leases) {
        (None, None) => OperatorPresence::Unknown(
            "not allowed to list Deployments or Leases to look for it".to_string(),
        ),
        _ => OperatorPresence::NotRunning(
            "no redispair-operator Deployment or leader Lease found in any namespace".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T02:00:00Z".parse().unwrap()
    }

    fn deployment(ready: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "redispair-operator", "namespace": "redispair-system"},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": ready}
        }))
        .unwrap()
    }

    fn lease(renewed: &str) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "redispair-operator-leader", "namespace": "ops"},
            "spec": {"holderIdentity": "op-1", "renewTime": renewed, "leaseDurationSeconds": 15}
        }))
        .unwrap()
    }

    #[test]
    fn ready_deployment_is_running() {
        let seen = OperatorObservation {
            deployments: Some(vec![deployment(1)]),
            leases: None,
        };
        assert_eq!(
            judge_operator(&seen, now()),
            OperatorPresence::Running(
                "deployment redispair-system/redispair-operator, 1/2 ready".into()
            )
        );
    }

    #[test]
    fn deployment_without_ready_pods_is_not_running() {
        let seen = OperatorObservation {
            deployments: Some(vec![deployment(0)]),
            leases: Some(vec![]),
        };
        let judged = judge_operator(&seen, now());
        assert!(judged.is_not_running(), "{judged:?}");
        assert!(format!("{judged:?}").contains("0/2 pods ready"));
    }

    #[test]
    fn fresh_lease_counts_stale_lease_does_not() {
        let fresh = OperatorObservation {
            deployments: Some(vec![]),
            leases: Some(vec![lease("2026-11-22T01:59:55.000000Z")]),
        };
        assert!(matches!(
            judge_operator(&fresh, now()),
            OperatorPresence::Running(_)
        ));
        let stale = OperatorObservation {
            deployments: Some(vec![]),
            leases: Some(vec![lease("2026-11-22T01:50:00.000000Z")]),
        };
        let judged = judge_operator(&stale, now());
        assert!(judged.is_not_running());
        assert!(format!("{judged:?}").contains("600s ago"));
    }

    #[test]
    fn nothing_found_and_nothing_listable() {
        let none = OperatorObservation {
            deployments: Some(vec![]),
            leases: Some(vec![]),
        };
        assert!(judge_operator(&none, now()).is_not_running());
        let forbidden = OperatorObservation::default();
        assert!(matches!(
            judge_operator(&forbidden, now()),
            OperatorPresence::Unknown(_)
        ));
    }
}
