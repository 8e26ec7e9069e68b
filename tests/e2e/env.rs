//! The suite's inputs, read from the environment that `hack/e2e.sh` sets, and the fault hook
//! that stands for the provider. Reads the environment; `FaultHook::run` runs a process.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `KUBECONFIG` | the cluster | required |
//! | `E2E_NAMESPACE` | the namespace the installed operator watches (pairs go there) | `redispair-e2e` |
//! | `E2E_OPERATOR_NAMESPACE` | the Helm release's namespace | `redispair-system` |
//! | `E2E_IMAGE` | the image the operator was installed with (pairs run it too) | the operator's default |
//! | `E2E_SOURCE_HOST` | an address of this host the cluster's pods reach: the migration case runs its stock redis-server there | unset: that case is skipped |
//! | `E2E_FAULT` | fault hook: `<hook> kill\|restore\|partition\|heal\|fill-volume\|free-volume NODE`, `<hook> kill-container\|freeze-container\|thaw-container NODE ID`, `<hook> restart-apiserver` | required by the node and process cases |
//!
//! The hook is what makes the suite provider-agnostic: `hack/cluster/fault.sh` for the local
//! cluster, `hack/kind/fault.sh` for kind. NODE is the Kubernetes node name.

use std::path::PathBuf;

pub struct E2eEnv {
    pub kubeconfig: PathBuf,
    pub namespace: String,
    pub operator_namespace: String,
    pub image: Option<String>,
    pub fault: Option<FaultHook>,
    pub source_host: Option<String>,
}

impl E2eEnv {
    pub fn from_env() -> E2eEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let kubeconfig = var("KUBECONFIG")
            .map(PathBuf::from)
            .expect("KUBECONFIG must name the e2e cluster's kubeconfig (hack/e2e.sh sets it)");
        E2eEnv {
            kubeconfig,
            namespace: var("E2E_NAMESPACE").unwrap_or_else(|| "redispair-e2e".into()),
            operator_namespace: var("E2E_OPERATOR_NAMESPACE")
                .unwrap_or_else(|| "redispair-system".into()),
            image: var("E2E_IMAGE"),
            fault: var("E2E_FAULT").map(|cmd| FaultHook::parse(&cmd)),
            source_host: var("E2E_SOURCE_HOST"),
        }
    }

    pub fn fault_hook(&self) -> &FaultHook {
        self.fault.as_ref().expect(
            "E2E_FAULT must name the fault hook (hack/cluster/fault.sh, hack/kind/fault.sh)",
        )
    }
}

/// A command line (split on whitespace) that injects a fault; the verb and its arguments are
/// appended. A relative program path is taken from the repository root, so the hook works
/// whatever directory cargo runs the test binary in.
pub struct FaultHook {
    program: PathBuf,
    args: Vec<String>,
}

impl FaultHook {
    fn parse(cmd: &str) -> FaultHook {
        let mut words = cmd.split_whitespace().map(str::to_string);
        let program = PathBuf::from(words.next().expect("E2E_FAULT is empty"));
        let program = if program.is_relative() && program.components().count() > 1 {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(program)
        } else {
            program
        };
        FaultHook {
            program,
            args: words.collect(),
        }
    }

    /// The program and arguments of `<hook> ARGS...`, to run later (without a runtime).
    pub fn command(&self, args: &[&str]) -> (PathBuf, Vec<String>) {
        let mut all = self.args.clone();
        all.extend(args.iter().map(|a| a.to_string()));
        (self.program.clone(), all)
    }

    /// Run `<hook> ARGS...` to completion; a failing hook fails the test with its output.
    pub async fn run(&self, args: &[&str]) {
        let out = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        assert!(
            out.status.success(),
            "fault hook {} {:?} failed ({}): {}{}",
            self.program.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_keeps_its_own_arguments_and_resolves_relative_paths() {
        let h = FaultHook::parse("hack/kind/fault.sh --cluster rp");
        assert!(h.program.is_absolute() && h.program.ends_with("hack/kind/fault.sh"));
        assert_eq!(h.args, ["--cluster", "rp"]);
        // A bare name is looked up on PATH, not in the repository.
        assert_eq!(FaultHook::parse("myhook").program, PathBuf::from("myhook"));
    }
}
