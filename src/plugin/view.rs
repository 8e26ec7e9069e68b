//! The status of a pair as `kubectl redispair status` shows it, built from the RedisPair, its
//! pods, their nodes and recent events. Pure: the caller fetches the objects and the time.

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::api::constants::{
    is_fenced, ANNOTATION_FORCE_FAILOVER, ANNOTATION_SWITCHOVER, LABEL_ROLE,
};
use crate::api::RedisPair;

use super::operator::OperatorPresence;

/// Node label giving the zone (the well-known one; zone spread uses it by default).
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Everything `status` needs, fetched by the caller.
#[derive(Debug)]
pub struct StatusInput {
    pub pair: RedisPair,
    /// The pair's pods (label redispair.io/pair=NAME).
    pub pods: Vec<Pod>,
    /// The nodes those pods run on (missing ones are shown as unknown).
    pub nodes: Vec<Node>,
    /// Events of the namespace; those about the pair or its pods are kept.
    pub events: Vec<Event>,
    pub operator: OperatorPresence,
    pub now: Timestamp,
    /// How many recent events to keep.
    pub max_events: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub name: String,
    pub namespace: String,
    pub phase: String,
    /// Replication mode asked for in the spec.
    pub mode: String,
    pub term: i64,
    pub current_master: Option<String>,
    pub target_master: Option<String>,
    pub replica: Option<String>,
    pub replication: Option<ReplicationView>,
    /// The operator authorised the master to go on without the replica in this term.
    pub degraded: bool,
    pub failover_enabled: bool,
    pub allow_data_loss: bool,
    /// The operator has seen the latest spec.
    pub spec_observed: bool,
    pub read_write_service: Option<String>,
    pub read_only_service: Option<String>,
    pub instances: Vec<InstanceView>,
    pub failover_in_progress: Option<FailoverView>,
    pub last_failover: Option<LastFailoverView>,
    /// Requests written by this plugin that the operator has not consumed yet.
    pub pending_requests: Vec<String>,
    pub conditions: Vec<ConditionView>,
    pub events: Vec<EventView>,
    pub operator: OperatorPresence,
    /// Things a person should look at, worst first.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationView {
    pub in_sync: bool,
    pub master_offset: i64,
    pub replica_offset: i64,
    pub lag_bytes: i64,
    pub lag_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub pod: String,
    /// master, replica, "master (promoting)", or what the pod's label says when status does
    /// not name it.
    pub role: String,
    pub node: Option<String>,
    pub zone: Option<String>,
    pub node_ready: Option<bool>,
    /// Pod phase (Pending, Running, ...) or Terminating.
    pub pod_phase: String,
    pub ready: bool,
    pub fenced: bool,
    pub restarts: i32,
    /// Replication offset this engine reported (master: written; replica: acknowledged).
    pub offset: Option<i64>,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverView {
    pub step: String,
    pub from: String,
    pub to: String,
    pub term: i64,
    pub reason: String,
    pub planned: bool,
    pub started_at: String,
    pub running_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastFailoverView {
    pub time: String,
    pub age_seconds: Option<i64>,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub duration_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub age_seconds: Option<i64>,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    /// kind/name of the object the event is about.
    pub object: String,
    pub message: String,
    pub count: i32,
}

fn seconds_since(now: Timestamp, then: Timestamp) -> i64 {
    (now.as_second() - then.as_second()).max(0)
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Builds the view. Role comes from status (what the operator observed), not from labels:
/// labels are for humans and may lag.
pub fn build_status_view(input: &StatusInput) -> StatusView {
    let pair = &input.pair;
    let status = pair.status.clone().unwrap_or_default();
    let name = pair.metadata.name.clone().unwrap_or_default();
    let namespace = pair.metadata.namespace.clone().unwrap_or_default();
    let now = input.now;

    let replication = status.replication.as_ref().map(|r| ReplicationView {
        in_sync: r.in_sync,
        master_offset: r.master_offset,
        replica_offset: r.replica_offset,
        lag_bytes: r.lag_bytes,
        lag_seconds: r.lag_seconds,
    });

    let mut pods: Vec<&Pod> = input.pods.iter().collect();
    pods.sort_by_key(|p| pod_name(p));
    let instances: Vec<InstanceView> = pods
        .iter()
        .map(|pod| build_instance(pod, &status, input))
        .collect();

    let failover_in_progress = status.failover.as_ref().map(|f| FailoverView {
        step: format!("{:?}", f.step),
        from: f.from.clone(),
        to: f.to.clone(),
        term: f.term,
        reason: f.reason.clone(),
        planned: f.planned,
        started_at: f.started_at.clone(),
        running_seconds: parse_time(&f.started_at).map(|t| seconds_since(now, t)),
    });
    let last_failover = status.last_failover.as_ref().map(|f| LastFailoverView {
        time: f.time.clone(),
        age_seconds: parse_time(&f.time).map(|t| seconds_since(now, t)),
        from: f.from.clone(),
        to: f.to.clone(),
        reason: f.reason.clone(),
        duration_seconds: f.duration_seconds,
    });

    let annotations = pair.metadata.annotations.clone().unwrap_or_default();
    let mut pending_requests = Vec::new();
    if let Some(id) = annotations.get(ANNOTATION_SWITCHOVER) {
        pending_requests.push(format!("switchover (request {id})"));
    }
    if let Some(id) = annotations.get(ANNOTATION_FORCE_FAILOVER) {
        pending_requests.push(format!("forced failover (request {id})"));
    }

    let mut conditions: Vec<ConditionView> = status
        .conditions
        .iter()
        .map(|c| ConditionView {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            age_seconds: Some(seconds_since(now, c.last_transition_time.0)),
        })
        .collect();
    // Ready first, then the rest in the operator's order.
    conditions.sort_by_key(|c| c.type_ != "Ready");

    let events = build_events(input, &name);
    let degraded = status.degrade_authorized_term == Some(status.term) && status.term > 0
        || conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True");

    let mut view = StatusView {
        name,
        namespace,
        phase: status
            .phase
            .clone()
            .unwrap_or_else(|| "Unknown".to_string()),
        mode: pair.spec.replication.mode.as_str().to_string(),
        term: status.term,
        current_master: status.current_master.clone(),
        target_master: status.target_master.clone(),
        replica: status.replica.clone(),
        replication,
        degraded,
        failover_enabled: pair.spec.failover.enabled,
        allow_data_loss: pair.spec.failover.allow_data_loss,
        spec_observed: match (status.observed_generation, pair.metadata.generation) {
            (Some(seen), Some(current)) => seen >= current,
            (None, Some(_)) => false,
            _ => true,
        },
        read_write_service: status.services.as_ref().map(|s| s.read_write.clone()),
        read_only_service: status.services.as_ref().map(|s| s.read_only.clone()),
        instances,
        failover_in_progress,
        last_failover,
        pending_requests,
        conditions,
        events,
        operator: input.operator.clone(),
        warnings: Vec::new(),
    };
    view.warnings = warnings(&view);
    view
}

fn build_instance(
    pod: &Pod,
    status: &crate::api::RedisPairStatus,
    input: &StatusInput,
) -> InstanceView {
    let name = pod_name(pod);
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let is_current = status.current_master.as_deref() == Some(name.as_str());
    let is_target = status.target_master.as_deref() == Some(name.as_str());
    let role = if is_current {
        "master".to_string()
    } else if is_target {
        "master (promoting)".to_string()
    } else if status.replica.as_deref() == Some(name.as_str()) {
        "replica".to_string()
    } else {
        labels
            .get(LABEL_ROLE)
            .map(|r| format!("{r}?"))
            .unwrap_or_else(|| "unknown".to_string())
    };
    let offset = status.replication.as_ref().and_then(|r| {
        if is_current {
            Some(r.master_offset)
        } else if status.replica.as_deref() == Some(name.as_str()) {
            Some(r.replica_offset)
        } else {
            None
        }
    });
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let node = node_name.as_ref().and_then(|n| {
        input
            .nodes
            .iter()
            .find(|node| node.metadata.name.as_ref() == Some(n))
    });
    let zone = node.and_then(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned());
    let node_ready = node.and_then(|n| {
        let conditions = n.status.as_ref()?.conditions.as_ref()?;
        conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status == "True")
    });
    let pod_status = pod.status.clone().unwrap_or_default();
    let ready = pod_status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let pod_phase = if pod.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        pod_status
            .phase
            .clone()
            .unwrap_or_else(|| "Unknown".to_string())
    };
    let restarts = pod_status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    InstanceView {
        pod: name,
        role,
        node: node_name,
        zone,
        node_ready,
        pod_phase,
        ready,
        fenced: is_fenced(&annotations),
        restarts,
        offset,
        age_seconds: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| seconds_since(input.now, t.0)),
    }
}

/// Events about the pair or one of its pods, newest first.
fn build_events(input: &StatusInput, pair: &str) -> Vec<EventView> {
    let pods: Vec<String> = input.pods.iter().map(pod_name).collect();
    let mut events: Vec<(Option<Timestamp>, EventView)> = input
        .events
        .iter()
        .filter(|e| {
            let obj = &e.involved_object;
            let name = obj.name.as_deref().unwrap_or_default();
            match obj.kind.as_deref() {
                Some("RedisPair") => name == pair,
                Some("Pod") => pods.iter().any(|p| p == name),
                _ => false,
            }
        })
        .map(|e| {
            let when = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
                .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
                .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let obj = &e.involved_object;
            (
                when,
                EventView {
                    age_seconds: when.map(|t| seconds_since(input.now, t)),
                    type_: e.type_.clone().unwrap_or_else(|| "Normal".to_string()),
                    reason: e.reason.clone().unwrap_or_default(),
                    object: format!(
                        "{}/{}",
                        obj.kind.as_deref().unwrap_or_default().to_lowercase(),
                        obj.name.as_deref().unwrap_or_default()
                    ),
                    message: e.message.clone().unwrap_or_default().trim().to_string(),
                    count: e.count.unwrap_or(1),
                },
            )
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    // The same event repeated (a retry loop writes one per attempt) is one line with a count,
    // at the age of its newest occurrence, so it cannot push everything else off the list.
    let mut collapsed: Vec<EventView> = Vec::new();
    for (_, e) in events {
        match collapsed.iter_mut().find(|c| {
            (&c.type_, &c.reason, &c.object, &c.message)
                == (&e.type_, &e.reason, &e.object, &e.message)
        }) {
            Some(seen) => seen.count += e.count,
            None => collapsed.push(e),
        }
    }
    collapsed.truncate(input.max_events);
    collapsed
}

fn warnings(view: &StatusView) -> Vec<String> {
    let mut w = Vec::new();
    if let OperatorPresence::NotRunning(why) = &view.operator {
        w.push(format!(
            "the operator is not running ({why}): nothing reconciles this pair or fails it over"
        ));
    }
    if view.current_master.is_none() {
        w.push("no master: writes through the read-write Service fail".to_string());
    }
    if let Some(master) = &view.current_master {
        match view.instances.iter().find(|i| &i.pod == master) {
            None => w.push(format!("master pod {master} does not exist")),
            Some(i) if !i.ready => w.push(format!("master pod {master} is not ready")),
            Some(i) if i.node_ready == Some(false) => w.push(format!(
                "the master's node {} is NotReady",
                i.node.as_deref().unwrap_or("?")
            )),
            _ => {}
        }
    }
    if view.degraded {
        w.push(
            "degraded: the master acknowledges writes without the replica; automatic failover is off until the replica catches up"
                .to_string(),
        );
    } else if view.mode != "async" && view.replication.as_ref().is_some_and(|r| !r.in_sync) {
        w.push("the replica is not in sync: a failover now would wait for it".to_string());
    }
    for i in &view.instances {
        if i.fenced {
            w.push(format!(
                "pod {} is fenced (kubectl redispair unfence {} {})",
                i.pod, view.name, i.pod
            ));
        }
    }
    let nodes: Vec<&String> = view
        .instances
        .iter()
        .filter_map(|i| i.node.as_ref())
        .collect();
    if nodes.len() == 2 && nodes[0] == nodes[1] {
        w.push(format!(
            "both pods run on node {}: one node failure takes the pair down",
            nodes[0]
        ));
    }
    if !view.spec_observed {
        w.push("the operator has not processed the latest spec yet".to_string());
    }
    if !view.failover_enabled {
        w.push("automatic failover is disabled (spec.failover.enabled: false)".to_string());
    }
    w
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::constants::ANNOTATION_FENCED;

    pub(crate) fn fixture_input() -> StatusInput {
        let pair: RedisPair = serde_yaml::from_str(include_str!("testdata/pair.yaml")).unwrap();
        let pods: Vec<Pod> = serde_yaml::from_str(include_str!("testdata/pods.yaml")).unwrap();
        let nodes: Vec<Node> = serde_yaml::from_str(include_str!("testdata/nodes.yaml")).unwrap();
        let events: Vec<Event> =
            serde_yaml::from_str(include_str!("testdata/events.yaml")).unwrap();
        StatusInput {
            pair,
            pods,
            nodes,
            events,
            operator: OperatorPresence::Running(
                "deployment redispair-system/redispair-operator, 1/1 ready".into(),
            ),
            now: "2026-11-22T02:00:00Z".parse().unwrap(),
            max_events: 10,
        }
    }

    #[test]
    fn roles_nodes_offsets_come_from_status_and_nodes() {
        let view = build_status_view(&fixture_input());
        assert_eq!(view.phase, "Ready");
        assert_eq!(view.mode, "semi-sync");
        assert_eq!(view.term, 3);
        let [a, b] = &view.instances[..] else {
            panic!("{:?}", view.instances)
        };
        assert_eq!((a.pod.as_str(), a.role.as_str()), ("cache-a", "replica"));
        assert_eq!((b.pod.as_str(), b.role.as_str()), ("cache-b", "master"));
        assert_eq!(b.offset, Some(1_048_576));
        assert_eq!(a.offset, Some(1_048_000));
        assert_eq!(b.node.as_deref(), Some("node2"));
        assert_eq!(b.zone.as_deref(), Some("zone-b"));
        assert_eq!(b.node_ready, Some(true));
        assert_eq!(a.restarts, 1);
        assert!(view.warnings.is_empty(), "{:?}", view.warnings);
        assert_eq!(view.read_write_service.as_deref(), Some("cache"));
    }

    #[test]
    fn last_failover_and_conditions() {
        let view = build_status_view(&fixture_input());
        let last = view.last_failover.unwrap();
        assert_eq!(
            (last.from.as_str(), last.to.as_str()),
            ("cache-a", "cache-b")
        );
        assert_eq!(last.age_seconds, Some(3600));
        assert_eq!(view.conditions[0].type_, "Ready");
        assert_eq!(view.conditions.len(), 4);
    }

    #[test]
    fn events_are_the_pairs_and_its_pods_newest_first() {
        let view = build_status_view(&fixture_input());
        let objects: Vec<&str> = view.events.iter().map(|e| e.object.as_str()).collect();
        // The event about another pair's pod is left out.
        assert_eq!(
            objects,
            ["redispair/cache", "pod/cache-b", "redispair/cache"]
        );
        assert_eq!(view.events[0].reason, "SwitchoverDone");
        let mut input = fixture_input();
        input.max_events = 1;
        assert_eq!(build_status_view(&input).events.len(), 1);
    }

    #[test]
    fn repeated_events_collapse_into_one_line_with_a_count() {
        let mut input = fixture_input();
        let retry = input.events[0].clone();
        for second in 10..15 {
            let mut e = retry.clone();
            e.last_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                format!("2026-11-22T01:59:{second}Z").parse().unwrap(),
            ));
            input.events.push(e);
        }
        let view = build_status_view(&input);
        let failover_lines: Vec<&EventView> = view
            .events
            .iter()
            .filter(|e| e.reason == "FailoverDone")
            .collect();
        assert_eq!(failover_lines.len(), 1);
        assert_eq!(failover_lines[0].count, 6);
        assert_eq!(failover_lines[0].age_seconds, Some(46));
        assert_eq!(view.events.len(), 3);
    }

    #[test]
    fn trouble_shows_as_warnings() {
        let mut input = fixture_input();
        input.operator = OperatorPresence::NotRunning("deployment x/y has 0/1 pods ready".into());
        let status = input.pair.status.as_mut().unwrap();
        status.replication.as_mut().unwrap().in_sync = false;
        // pods[0] is cache-b (on node2), pods[1] is cache-a (moved onto node2 here).
        input.pods[0].metadata.annotations =
            Some([(ANNOTATION_FENCED.to_string(), "true".to_string())].into());
        input.pods[1].spec.as_mut().unwrap().node_name = Some("node2".into());
        input.pair.metadata.annotations = Some(
            [(
                ANNOTATION_SWITCHOVER.to_string(),
                "2026-11-22T01:59:00Z".to_string(),
            )]
            .into(),
        );
        let view = build_status_view(&input);
        let text = view.warnings.join("\n");
        assert!(text.contains("operator is not running"), "{text}");
        assert!(text.contains("not in sync"), "{text}");
        assert!(text.contains("pod cache-b is fenced"), "{text}");
        assert!(text.contains("both pods run on node node2"), "{text}");
        assert_eq!(
            view.pending_requests,
            ["switchover (request 2026-11-22T01:59:00Z)"]
        );
    }

    #[test]
    fn a_pair_without_status_renders_as_unknown() {
        let mut input = fixture_input();
        input.pair.status = None;
        input.pods.clear();
        let view = build_status_view(&input);
        assert_eq!(view.phase, "Unknown");
        assert!(view.instances.is_empty());
        assert!(view.warnings.iter().any(|w| w.starts_with("no master")));
    }
}
