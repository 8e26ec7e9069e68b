//! The command line of `kubectl redispair` (clap). Pure: parsing only.

use clap::{Parser, Subcommand, ValueEnum};

/// Inspect RedisPairs and ask the operator for switchovers, fencing, failovers and backups.
///
/// Every command writes intent to the Kubernetes API (annotations on the RedisPair or its
/// pods); the RedisPair operator carries it out. Nothing here talks to the engines.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "kubectl-redispair", bin_name = "kubectl redispair", version)]
pub struct Cli {
    /// Namespace of the pair (default: the kubeconfig context's namespace).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Show a pair: master and replica (pod, node, role, offsets, lag), mode and whether the
    /// replica is in sync, the term, the last failover, conditions and recent events.
    Status {
        /// Name of the RedisPair.
        name: String,
        /// Output format: text for people, json or yaml for scripts.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Colour: auto (when writing to a terminal and NO_COLOR is unset), always, never.
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
        /// How many recent events to show.
        #[arg(long, default_value_t = 10)]
        events: usize,
    },
    /// Planned switchover: the replica becomes master once it is in sync, writes pause
    /// briefly, no acknowledged write is lost; the old master becomes the replica.
    Switchover {
        /// Name of the RedisPair.
        name: String,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// Fence a pod: the operator takes it out of the Services and never makes it master.
    /// Fencing the master makes the operator fail over to the replica when that is safe.
    Fence {
        /// Name of the RedisPair.
        name: String,
        /// The pod to fence (one of the pair's two pods).
        pod: String,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// Lift the fence on a pod: it rejoins as replica.
    Unfence {
        /// Name of the RedisPair.
        name: String,
        /// The fenced pod.
        pod: String,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// DANGEROUS: promote the replica now, even if it lacks writes the master acknowledged
    /// (after a degrade to async, or in async mode). Those writes are lost for good. Use it
    /// only when the master is gone and you accept the loss; prefer `switchover`.
    Failover {
        /// Name of the RedisPair.
        name: String,
        /// Required: confirms that acknowledged writes may be lost.
        #[arg(long)]
        force: bool,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// Take a base backup of the pair now (it needs spec.backup): creates a RedisPairBackup
    /// and waits until the operator reports it completed or failed.
    Backup {
        /// Name of the RedisPair.
        name: String,
        /// Name of the RedisPairBackup (default: <pair>-<yyyymmddhhmmss>).
        #[arg(long = "backup-name")]
        backup_name: Option<String>,
        /// Return once the request is written, without waiting.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// DANGEROUS: roll the pair back to a point of its own archive (spec.backup). Every write
    /// after the target is discarded, on both pods: the operator cuts clients off, deletes
    /// both pods, restores the first from the archive and makes the other sync from it.
    Rollback {
        /// Name of the RedisPair.
        name: String,
        /// Keep every write up to this time (RFC 3339), none after.
        #[arg(long, conflicts_with = "to_offset")]
        to_time: Option<String>,
        /// Keep the stream up to this replication offset.
        #[arg(long)]
        to_offset: Option<u64>,
        /// The base backup to start from (default: the newest before the target).
        #[arg(long)]
        backup: Option<String>,
        /// Required: the pair's name again, confirming that newer writes are discarded.
        #[arg(long)]
        confirm: Option<String>,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
    /// List the pair's backups: phase, times, offset, size and where each is.
    Backups {
        /// Name of the RedisPair.
        name: String,
        /// Output format: text for people, json or yaml for scripts.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Live migration from a running Redis (`spec.bootstrap.migrateFrom`): its status, and
    /// the cutover that makes the pair take over.
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum MigrateCommand {
    /// Show the migration: phase, source, the master's link to it, offsets and lag.
    Status {
        /// Name of the RedisPair.
        name: String,
        /// Output format: text for people, json or yaml for scripts.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// End the migration: the operator pauses writes on the source (CLIENT PAUSE WRITE for
    /// migrateFrom.pauseSeconds, renewed until done), waits until the pair's master has the
    /// source's offset, and promotes it. Move your clients to the pair within the pause.
    Cutover {
        /// Name of the RedisPair.
        name: String,
        /// Write the request even when no running operator can be found.
        #[arg(long)]
        skip_operator_check: bool,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stdout is a terminal and whether NO_COLOR is set.
    pub fn enabled(self, stdout_is_terminal: bool, no_color_env: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_is_terminal && !no_color_env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_namespace_after_the_subcommand() {
        // kubectl passes everything after `kubectl redispair` through, so `-n` often comes last.
        let cli = Cli::try_parse_from([
            "kubectl-redispair",
            "status",
            "cache",
            "-n",
            "prod",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        assert_eq!(
            cli.command,
            Command::Status {
                name: "cache".into(),
                output: Output::Json,
                color: ColorChoice::Auto,
                events: 10
            }
        );
    }

    #[test]
    fn fence_takes_pair_and_pod() {
        let cli = Cli::try_parse_from(["kubectl-redispair", "fence", "cache", "cache-a"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Fence {
                name: "cache".into(),
                pod: "cache-a".into(),
                skip_operator_check: false
            }
        );
    }

    #[test]
    fn migrate_subcommands() {
        let cli =
            Cli::try_parse_from(["kubectl-redispair", "migrate", "cutover", "cache"]).unwrap();
        assert_eq!(
            cli.command,
            Command::Migrate {
                command: MigrateCommand::Cutover {
                    name: "cache".into(),
                    skip_operator_check: false
                }
            }
        );
        let cli = Cli::try_parse_from([
            "kubectl-redispair",
            "migrate",
            "status",
            "cache",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(
            cli.command,
            Command::Migrate {
                command: MigrateCommand::Status {
                    name: "cache".into(),
                    output: Output::Json
                }
            }
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(ColorChoice::Auto.enabled(true, false));
        assert!(!ColorChoice::Auto.enabled(false, false));
        assert!(!ColorChoice::Auto.enabled(true, true));
        assert!(ColorChoice::Always.enabled(false, true));
        assert!(!ColorChoice::Never.enabled(true, false));
    }
}
