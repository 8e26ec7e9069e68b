//! Runs `kubectl redispair` commands against the Kubernetes API server: reads the pair, its
//! pods, nodes, events and the operator's Deployment/Lease, and sends the patches `intent`
//! builds. Does I/O: Kubernetes API (kubeconfig from --kubeconfig, $KUBECONFIG or ~/.kube).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::Value;

use crate::api::constants::{LABEL_PAIR, OPERATOR_APP_LABEL, OPERATOR_APP_NAME};
use crate::api::{RedisPair, RedisPairBackup};

use super::cli::{Cli, Command, MigrateCommand, Output};
use super::error::{Action, PluginError};
use super::intent::{self, Intent};
use super::operator::{judge_operator, OperatorObservation, OperatorPresence};
use super::render::render;
use super::view::{build_status_view, StatusInput};

/// Field manager of the plugin's patches (visible in managedFields).
const FIELD_MANAGER: &str = "kubectl-redispair";

/// A connected client and the namespace commands apply to.
pub struct Session {
    client: Client,
    namespace: String,
}

impl Session {
    /// Connects with the kubeconfig (and context) the user chose, like kubectl does.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Session, PluginError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let no_kubeconfig = |e: kube::config::KubeconfigError| PluginError::NoKubeconfig {
            detail: e.to_string(),
        };
        let mut config = match (kubeconfig, context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(no_kubeconfig)?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(no_kubeconfig)?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(no_kubeconfig)?,
            // Like kubectl: the kubeconfig, or the in-cluster account inside a pod.
            (None, None) => Config::infer()
                .await
                .map_err(|e| PluginError::NoKubeconfig {
                    detail: e.to_string(),
                })?,
        };
        // A person is waiting: fail in seconds when the API server is not there.
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(20));
        let namespace = namespace
            .map(str::to_string)
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| PluginError::Unreachable {
            detail: e.to_string(),
        })?;
        Ok(Session { client, namespace })
    }

    fn pairs(&self) -> Api<RedisPair> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn get_pair(&self, name: &str) -> Result<RedisPair, PluginError> {
        self.pairs()
            .get(name)
            .await
            .map_err(|e| PluginError::from_kube(e, Action::ReadPair, name, &self.namespace))
    }

    pub async fn get_pod(&self, name: &str) -> Result<Pod, PluginError> {
        self.pods()
            .get(name)
            .await
            .map_err(|e| PluginError::from_kube(e, Action::ReadPod, name, &self.namespace))
    }

    /// The pair's pods (label redispair.io/pair=NAME).
    pub async fn pair_pods(&self, pair: &str) -> Result<Vec<Pod>, PluginError> {
        let params = ListParams::default().labels(&format!("{LABEL_PAIR}={pair}"));
        self.pods()
            .list(&params)
            .await
            .map(|l| l.items)
            .map_err(|e| PluginError::from_kube(e, Action::ReadPod, pair, &self.namespace))
    }

    /// Nodes by name; best effort (reading nodes needs a cluster-wide permission many users
    /// lack: the status then shows no zone or node health).
    pub async fn nodes(&self, names: &[String]) -> Vec<Node> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut nodes = Vec::new();
        for name in names {
            if let Ok(Some(node)) = api.get_opt(name).await {
                nodes.push(node);
            }
        }
        nodes
    }

    /// Events of the namespace; best effort.
    pub async fn events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        api.list(&ListParams::default().limit(500))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    /// Looks for the operator: the chart's Deployment in any namespace, or a leader Lease.
    pub async fn operator_presence(&self, now: Timestamp) -> OperatorPresence {
        let deployments: Api<Deployment> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::all(self.client.clone());
        let by_label =
            ListParams::default().labels(&format!("{OPERATOR_APP_LABEL}={OPERATOR_APP_NAME}"));
        let seen = OperatorObservation {
            deployments: deployments.list(&by_label).await.ok().map(|l| l.items),
            leases: leases
                .list(&ListParams::default())
                .await
                .ok()
                .map(|l| l.items),
        };
        judge_operator(&seen, now)
    }

    async fn patch_pair(&self, name: &str, patch: &Value) -> Result<(), PluginError> {
        self.pairs()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(patch),
            )
            .await
            .map(|_| ())
            .map_err(|e| PluginError::from_kube(e, Action::PatchPair, name, &self.namespace))
    }

    async fn patch_pod(&self, name: &str, patch: &Value) -> Result<(), PluginError> {
        self.pods()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(patch),
            )
            .await
            .map(|_| ())
            .map_err(|e| PluginError::from_kube(e, Action::PatchPod, name, &self.namespace))
    }

    fn backups(&self) -> Api<RedisPairBackup> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn list_backups(&self, pair: &str) -> Result<Vec<RedisPairBackup>, PluginError> {
        self.backups()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| PluginError::from_kube(e, Action::ReadBackups, pair, &self.namespace))
    }

    /// Create the backup, then (unless `timeout` is None) poll it until it is done.
    async fn backup(
        &self,
        b: &RedisPairBackup,
        timeout: Option<Duration>,
    ) -> Result<String, PluginError> {
        let name = b.metadata.name.clone().unwrap_or_default();
        let created = self
            .backups()
            .create(&PostParams::default(), b)
            .await
            .map_err(|e| PluginError::from_kube(e, Action::CreateBackup, &name, &self.namespace))?;
        let Some(timeout) = timeout else {
            return Ok(format!(
                "backup {name} requested; follow it with: kubectl redispair backups {}\n",
                b.spec.pair
            ));
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = created;
        loop {
            if let Some(message) = super::backup::outcome(&last)? {
                return Ok(message);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PluginError::BackupTimeout {
                    name,
                    pair: b.spec.pair.clone(),
                    phase: last
                        .status
                        .and_then(|s| s.phase)
                        .unwrap_or_else(|| "not started".into()),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            last = self.backups().get(&name).await.map_err(|e| {
                PluginError::from_kube(e, Action::ReadBackups, &name, &self.namespace)
            })?;
        }
    }

    /// Refuses to write a request nobody would act on, unless told to.
    async fn require_operator(&self, skip: bool) -> Result<(), PluginError> {
        if skip {
            return Ok(());
        }
        match self.operator_presence(Timestamp::now()).await {
            OperatorPresence::NotRunning(detail) => Err(PluginError::OperatorNotRunning { detail }),
            _ => Ok(()),
        }
    }
}

/// Runs one command; returns what to print on stdout.
pub async fn run(
    cli: Cli,
    stdout_is_terminal: bool,
    no_color_env: bool,
) -> Result<String, PluginError> {
    let session = Session::connect(
        cli.kubeconfig.as_deref(),
        cli.context.as_deref(),
        cli.namespace.as_deref(),
    )
    .await?;
    match cli.command {
        Command::Status {
            name,
            output,
            color,
            events,
        } => {
            let pair = session.get_pair(&name).await?;
            let pods = session.pair_pods(&name).await?;
            let node_names: Vec<String> = pods
                .iter()
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            let input = StatusInput {
                pair,
                nodes: session.nodes(&node_names).await,
                events: session.events().await,
                operator: session.operator_presence(Timestamp::now()).await,
                pods,
                now: Timestamp::now(),
                max_events: events,
            };
            let view = build_status_view(&input);
            render(
                &view,
                output,
                color.enabled(stdout_is_terminal, no_color_env),
            )
        }
        Command::Switchover {
            name,
            skip_operator_check,
        } => {
            let pair = session.get_pair(&name).await?;
            let Intent { patch, message } = intent::switchover(&pair, Timestamp::now())?;
            session.require_operator(skip_operator_check).await?;
            session.patch_pair(&name, &patch).await?;
            Ok(message + "\n")
        }
        Command::Failover {
            name,
            force,
            skip_operator_check,
        } => {
            let pair = session.get_pair(&name).await?;
            let Intent { patch, message } = intent::force_failover(&pair, force, Timestamp::now())?;
            session.require_operator(skip_operator_check).await?;
            session.patch_pair(&name, &patch).await?;
            Ok(message + "\n")
        }
        Command::Rollback {
            name,
            to_time,
            to_offset,
            backup,
            confirm,
            skip_operator_check,
        } => {
            let pair = session.get_pair(&name).await?;
            let target = intent::RollbackTarget {
                time: to_time,
                offset: to_offset,
                backup,
            };
            let Intent { patch, message } =
                intent::rollback(&pair, target, confirm.as_deref(), Timestamp::now())?;
            session.require_operator(skip_operator_check).await?;
            session.patch_pair(&name, &patch).await?;
            Ok(message + "\n")
        }
        Command::Backup {
            name,
            backup_name,
            no_wait,
            timeout,
            skip_operator_check,
        } => {
            let pair = session.get_pair(&name).await?;
            let b = super::backup::new_backup(&pair, backup_name.as_deref(), Timestamp::now())?;
            session.require_operator(skip_operator_check).await?;
            session
                .backup(&b, (!no_wait).then(|| Duration::from_secs(timeout)))
                .await
        }
        Command::Backups { name, output } => {
            session.get_pair(&name).await?;
            let list = session.list_backups(&name).await?;
            super::backup::render_rows(&name, &super::backup::rows(&name, &list), output)
        }
        Command::Migrate {
            command:
                MigrateCommand::Cutover {
                    name,
                    skip_operator_check,
                },
        } => {
            let pair = session.get_pair(&name).await?;
            let Intent { patch, message } = intent::migrate_cutover(&pair, Timestamp::now())?;
            session.require_operator(skip_operator_check).await?;
            session.patch_pair(&name, &patch).await?;
            Ok(message + "\n")
        }
        Command::Migrate {
            command: MigrateCommand::Status { name, output },
        } => {
            let pair = session.get_pair(&name).await?;
            let migration = pair.status.as_ref().and_then(|s| s.migration.clone());
            match output {
                Output::Text => Ok(intent::migration_text(&pair)),
                Output::Json => serde_json::to_string_pretty(&migration)
                    .map(|s| s + "\n")
                    .map_err(|e| PluginError::Output {
                        format: "json".into(),
                        detail: e.to_string(),
                    }),
                Output::Yaml => {
                    serde_yaml::to_string(&migration).map_err(|e| PluginError::Output {
                        format: "yaml".into(),
                        detail: e.to_string(),
                    })
                }
            }
        }
        Command::Fence {
            name,
            pod,
            skip_operator_check,
        } => fence_command(&session, &name, &pod, skip_operator_check, true).await,
        Command::Unfence {
            name,
            pod,
            skip_operator_check,
        } => fence_command(&session, &name, &pod, skip_operator_check, false).await,
    }
}

async fn fence_command(
    session: &Session,
    name: &str,
    pod: &str,
    skip_operator_check: bool,
    fenced: bool,
) -> Result<String, PluginError> {
    let pair = session.get_pair(name).await?;
    let target = session.get_pod(pod).await?;
    let members: Vec<String> = session
        .pair_pods(name)
        .await?
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let Intent { patch, message } = intent::fence(&pair, &target, &members, fenced)?;
    session.require_operator(skip_operator_check).await?;
    session.patch_pod(pod, &patch).await?;
    Ok(message + "\n")
}
