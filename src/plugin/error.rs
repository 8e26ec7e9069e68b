//! Errors of `kubectl redispair`, worded for the person at the terminal, and how Kubernetes
//! API errors map to them. Pure.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PluginError {
    #[error("no RedisPair named \"{name}\" in namespace \"{namespace}\" (list them with: kubectl get rp -n {namespace})")]
    NoSuchPair { name: String, namespace: String },

    #[error("this cluster does not know RedisPairs: the CRD redispairs.redispair.io is not installed (install the chart: helm install redispair-operator charts/redispair-operator)")]
    CrdNotInstalled,

    #[error("no pod named \"{pod}\" in namespace \"{namespace}\"")]
    NoSuchPod { pod: String, namespace: String },

    #[error("pod \"{pod}\" does not belong to pair \"{pair}\" (its pods: {members})")]
    PodNotInPair {
        pod: String,
        pair: String,
        members: String,
    },

    #[error("you are not allowed to {action}: {detail}\n(ask a cluster admin for RBAC permission, or check the context with: kubectl auth can-i --list -n {namespace})")]
    Forbidden {
        action: String,
        namespace: String,
        detail: String,
    },

    #[error("the API server did not accept your credentials ({detail}); log in again or check the kubeconfig user")]
    Unauthorized { detail: String },

    #[error("cannot reach the Kubernetes API server ({detail}); is the cluster up and the kubeconfig context right?")]
    Unreachable { detail: String },

    #[error("no usable kubeconfig ({detail}); set KUBECONFIG or pass --kubeconfig")]
    NoKubeconfig { detail: String },

    #[error("the RedisPair operator is not running ({detail}), so nothing would act on this request.\nStart it (kubectl get deploy -A -l app.kubernetes.io/name=redispair-operator) or pass --skip-operator-check to write the request anyway")]
    OperatorNotRunning { detail: String },

    #[error("pair \"{pair}\" cannot {action} now: {reason}")]
    NotNow {
        pair: String,
        action: String,
        reason: String,
    },

    #[error("failover without --force is refused: a forced failover can lose writes the master acknowledged. For a safe, planned move use: kubectl redispair switchover {pair}")]
    ForceRequired { pair: String },

    #[error("{action} failed: {detail}")]
    Api { action: String, detail: String },

    #[error("cannot print the status as {format}: {detail}")]
    Output { format: String, detail: String },

    #[error("pair \"{pair}\" has no spec.backup: set where its backups go first (docs/backup.md)")]
    NoBackupSpec { pair: String },

    #[error("backup {name} failed: {error}")]
    BackupFailed { name: String, error: String },

    #[error("backup {name} is still {phase} after {seconds} s; follow it with: kubectl redispair backups {pair}")]
    BackupTimeout {
        name: String,
        pair: String,
        phase: String,
        seconds: u64,
    },
}

/// What the plugin was doing when an API call failed, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadPair,
    ReadPod,
    PatchPair,
    PatchPod,
    CreateBackup,
    ReadBackups,
}

impl Action {
    fn words(self) -> &'static str {
        match self {
            Action::ReadPair => "read RedisPairs",
            Action::ReadPod => "read pods",
            Action::PatchPair => "change RedisPairs (patch)",
            Action::PatchPod => "annotate pods (patch)",
            Action::CreateBackup => "create RedisPairBackups",
            Action::ReadBackups => "read RedisPairBackups",
        }
    }
}

/// An error with its causes, `outer: inner: root` (transport errors say little at the top:
/// "client error (Connect)"; the root says "Connection refused").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

impl PluginError {
    /// Maps an API error to the words a user understands. `name` is the object the call was
    /// about (the pair or the pod), `namespace` where it was looked for.
    pub fn from_kube(err: kube::Error, action: Action, name: &str, namespace: &str) -> PluginError {
        match err {
            kube::Error::Api(status) if status.is_not_found() => {
                // A missing object names itself in the details; a missing resource type (the
                // CRD is not installed) does not.
                let names_object = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
                match action {
                    Action::ReadPair | Action::PatchPair if !names_object => {
                        PluginError::CrdNotInstalled
                    }
                    Action::ReadPair | Action::PatchPair => PluginError::NoSuchPair {
                        name: name.to_string(),
                        namespace: namespace.to_string(),
                    },
                    Action::CreateBackup | Action::ReadBackups => PluginError::Api {
                        action: action.words().to_string(),
                        detail: "the RedisPairBackup CRD is not installed (upgrade the chart)"
                            .to_string(),
                    },
                    Action::ReadPod | Action::PatchPod => PluginError::NoSuchPod {
                        pod: name.to_string(),
                        namespace: namespace.to_string(),
                    },
                }
            }
            kube::Error::Api(status) if status.is_forbidden() => PluginError::Forbidden {
                action: format!("{} in namespace \"{namespace}\"", action.words()),
                namespace: namespace.to_string(),
                detail: status.message,
            },
            kube::Error::Api(status) if status.code == 401 => PluginError::Unauthorized {
                detail: status.message,
            },
            kube::Error::Auth(e) => PluginError::Unauthorized {
                detail: e.to_string(),
            },
            kube::Error::HyperError(e) => PluginError::Unreachable {
                detail: error_chain(&e),
            },
            kube::Error::Service(e) => PluginError::Unreachable {
                detail: error_chain(e.as_ref()),
            },
            kube::Error::InferConfig(e) => PluginError::NoKubeconfig {
                detail: e.to_string(),
            },
            kube::Error::Api(status) => PluginError::Api {
                action: action.words().to_string(),
                detail: format!("{} ({})", status.message, status.code),
            },
            other => PluginError::Api {
                action: action.words().to_string(),
                detail: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str, details_name: Option<&str>) -> kube::Error {
        let mut status = Status::failure(message, reason).with_code(code);
        if let Some(name) = details_name {
            let details: StatusDetails = serde_json::from_value(serde_json::json!({
                "name": name, "group": "redispair.io", "kind": "redispairs"
            }))
            .unwrap();
            status = status.with_details(details);
        }
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn missing_pair_and_missing_crd_are_told_apart() {
        let missing = api(
            404,
            "NotFound",
            "redispairs.redispair.io \"cache\" not found",
            Some("cache"),
        );
        let err = PluginError::from_kube(missing, Action::ReadPair, "cache", "prod");
        assert_eq!(
            err,
            PluginError::NoSuchPair {
                name: "cache".into(),
                namespace: "prod".into()
            }
        );
        assert!(err.to_string().contains("kubectl get rp -n prod"));

        let no_crd = api(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
        assert_eq!(
            PluginError::from_kube(no_crd, Action::ReadPair, "cache", "prod"),
            PluginError::CrdNotInstalled
        );
    }

    #[test]
    fn missing_pod() {
        let missing = api(404, "NotFound", "pods \"x\" not found", Some("x"));
        assert_eq!(
            PluginError::from_kube(missing, Action::PatchPod, "x", "prod"),
            PluginError::NoSuchPod {
                pod: "x".into(),
                namespace: "prod".into()
            }
        );
    }

    #[test]
    fn forbidden_says_what_was_refused() {
        let denied = api(
            403,
            "Forbidden",
            "redispairs.redispair.io \"cache\" is forbidden: User \"dev\" cannot patch resource \"redispairs\"",
            Some("cache"),
        );
        let msg = PluginError::from_kube(denied, Action::PatchPair, "cache", "prod").to_string();
        assert!(
            msg.starts_with(
                "you are not allowed to change RedisPairs (patch) in namespace \"prod\""
            ),
            "{msg}"
        );
        assert!(msg.contains("User \"dev\" cannot patch"));
        assert!(msg.contains("kubectl auth can-i"));
    }

    #[test]
    fn unauthorized_and_other_codes() {
        let e = api(401, "Unauthorized", "Unauthorized", None);
        assert!(matches!(
            PluginError::from_kube(e, Action::ReadPair, "c", "n"),
            PluginError::Unauthorized { .. }
        ));
        let e = api(500, "InternalError", "etcd is sad", None);
        assert_eq!(
            PluginError::from_kube(e, Action::ReadPair, "c", "n").to_string(),
            "read RedisPairs failed: etcd is sad (500)"
        );
    }
}
