//! The image has one layout, whichever way it is built: the Dockerfile, the Docker-less image
//! builder (hack/images/build-image.sh), the Helm chart's defaults and src/api/constants.rs
//! must agree on binary paths, user, entrypoint, image name and labels. Pure file checks.

use std::path::PathBuf;

use redispair::api::constants::{DEFAULT_IMAGE, ENGINE_BINARY, OPERATOR_BINARY};

const NONROOT_UID: u32 = 65532;
const PLUGIN_BINARY: &str = "/usr/local/bin/kubectl-redispair";

fn read(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap()
}

/// The value of `NAME=value` or `NAME=${ANY:-value}` assignments at the start of a line of a shell script.
fn shell_default(script: &str, name: &str) -> String {
    let line = script
        .lines()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in the script"));
    let value = line[name.len() + 1..].split_whitespace().next().unwrap();
    // `${ANY:-default}` gives its default.
    match value.strip_prefix("${").and_then(|v| v.split_once(":-")) {
        Some((_, rest)) => rest.trim_end_matches('}').to_string(),
        None => value.trim_matches('"').to_string(),
    }
}

/// The OCI label keys set in a text (Dockerfile LABEL lines or the builder's JSON).
fn oci_label_keys(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = text
        .match_indices("org.opencontainers.image.")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect()
        })
        .filter(|k: &String| !k.ends_with("ref.name") && !k.ends_with('.'))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn constants_name_the_binaries_under_usr_local_bin() {
    assert_eq!(OPERATOR_BINARY, "/usr/local/bin/redispair-operator");
    assert_eq!(ENGINE_BINARY, "/usr/local/bin/redispair-engine");
    assert!(DEFAULT_IMAGE.contains('/') && DEFAULT_IMAGE.contains(':'));
}

#[test]
fn dockerfile_builds_the_three_binaries_into_the_constant_paths() {
    let d = read("Dockerfile");
    assert!(d.matches("\nFROM ").count() >= 2, "multi-stage build");
    assert!(d.contains("cargo build --release --locked"));
    for bin in [
        "redispair-operator",
        "redispair-engine",
        "kubectl-redispair",
    ] {
        assert!(d.contains(&format!("--bin {bin}")), "builds {bin}");
    }
    for path in [OPERATOR_BINARY, ENGINE_BINARY, PLUGIN_BINARY] {
        assert!(d.contains(&format!("/out{path}")), "installs {path}");
    }
    // The runtime stage takes the binaries from the stage BINARIES names: the release build
    // above by default, or binaries built outside (CI's kind stage), with the same layout.
    assert!(d.contains("\nARG BINARIES=builder\n"));
    assert!(d.contains("\nFROM ${BINARIES} AS binaries\n"));
    assert!(d.contains("\nFROM scratch AS prebuilt\n"));
    let copy = d
        .lines()
        .find(|l| l.starts_with("COPY --from=prebuilt-bin "))
        .expect("the prebuilt stage copies the binaries");
    for bin in [
        "redispair-operator",
        "redispair-engine",
        "kubectl-redispair",
    ] {
        assert!(copy.contains(bin), "prebuilt copies {bin}");
    }
    assert!(
        d.contains("\nWORKDIR /out/data\n"),
        "prebuilt makes /out/data"
    );
    assert!(d.contains("COPY --from=binaries /out/usr/local/bin/ /usr/local/bin/"));
    assert!(d.contains(&format!("USER {NONROOT_UID}:{NONROOT_UID}")));
    assert!(d.contains(&format!(
        "COPY --from=binaries --chown={NONROOT_UID}:{NONROOT_UID} /out/data /data"
    )));
    assert!(d.contains(&format!("ENTRYPOINT [\"{OPERATOR_BINARY}\"]")));
    // The bases are build arguments (hack/images/docker-bases.sh makes local stand-ins for
    // builds without a registry); their defaults are the public images.
    let runtime = d.rsplit("\nFROM ").next().unwrap();
    assert!(
        runtime.starts_with("${RUNTIME_IMAGE}"),
        "runtime stage FROM the build argument"
    );
    let default = |name: &str| {
        d.lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("no default for ARG {name}"))
            .to_string()
    };
    let runtime_default = default("RUNTIME_IMAGE");
    assert!(
        runtime_default.starts_with("gcr.io/distroless/cc")
            || runtime_default.starts_with("debian:"),
        "{runtime_default}"
    );
    assert!(d.contains("\nFROM ${BUILDER_IMAGE} AS builder\n"));
    assert_eq!(
        default("BUILDER_IMAGE"),
        "docker.io/library/rust:${RUST_VERSION}-bookworm"
    );
    // No `# syntax=` line: a build without a registry cannot fetch a frontend image.
    assert!(!d.starts_with("# syntax="));
}

#[test]
fn image_builder_makes_the_same_layout_user_and_entrypoint() {
    let s = read("hack/images/build-image.sh");
    assert_eq!(shell_default(&s, "OPERATOR_PATH"), OPERATOR_BINARY);
    assert_eq!(shell_default(&s, "ENGINE_PATH"), ENGINE_BINARY);
    assert_eq!(shell_default(&s, "PLUGIN_PATH"), PLUGIN_BINARY);
    assert_eq!(shell_default(&s, "NONROOT_UID"), NONROOT_UID.to_string());
    assert_eq!(shell_default(&s, "REDISPAIR_IMAGE"), DEFAULT_IMAGE);
    // The entrypoint and user of the redispair image are exactly those variables.
    assert!(s.contains(
        r#"oci_archive "$r" "$ref" "$out" "[\"$OPERATOR_PATH\"]" 'null' "$NONROOT_UID:$NONROOT_UID""#
    ));
    assert!(s.contains(r#"chown "$NONROOT_UID:$NONROOT_UID" "$r/data""#));
    assert_eq!(oci_label_keys(&s), oci_label_keys(&read("Dockerfile")));
    assert_eq!(oci_label_keys(&s).len(), 6);
}

#[test]
fn chart_defaults_use_the_default_image_and_the_image_user() {
    let values = yaml("charts/redispair-operator/values.yaml");
    let chart = yaml("charts/redispair-operator/Chart.yaml");
    let repository = values["image"]["repository"].as_str().unwrap();
    let tag = match values["image"]["tag"].as_str().unwrap() {
        "" => chart["appVersion"].as_str().unwrap(),
        tag => tag,
    };
    assert_eq!(format!("{repository}:{tag}"), DEFAULT_IMAGE);
    assert_eq!(values["image"]["pullPolicy"], "IfNotPresent");
    let pod = &values["podSecurityContext"];
    assert_eq!(pod["runAsUser"].as_u64(), Some(NONROOT_UID.into()));
    assert_eq!(pod["runAsGroup"].as_u64(), Some(NONROOT_UID.into()));
    assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(values["leaderElection"]["enabled"].as_bool(), Some(true));
    // The Deployment relies on the image's entrypoint: it must not override the command
    // with another path.
    let deployment = read("charts/redispair-operator/templates/deployment.yaml");
    assert!(!deployment.contains("command:"));
    assert!(deployment.contains("REDISPAIR_ENGINE_IMAGE"));
    for flag in [
        "--namespace=",
        "--engine-image=",
        "--metrics-addr=",
        "--leader-election=",
        "--log-level=",
    ] {
        assert!(deployment.contains(flag), "operator flag {flag}");
    }
}

/// The `--flags` the chart's Deployment passes to the operator.
fn chart_operator_flags() -> Vec<String> {
    read("charts/redispair-operator/templates/deployment.yaml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| f.split('=').next().unwrap().to_string())
        .collect()
}

#[test]
fn chart_flags_are_defined_by_the_operator_binary() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bin/redispair-operator.rs");
    let Ok(source) = std::fs::read_to_string(&path) else {
        // The operator is written in parallel; until it lands the flags are the agreed ones.
        return;
    };
    let flags = chart_operator_flags();
    assert_eq!(flags.len(), 5, "{flags:?}");
    for flag in flags {
        // clap derive: field `engine_image` is flag `--engine-image`.
        let field = format!("{}:", flag.replace('-', "_"));
        assert!(
            source.contains(&field),
            "the chart passes --{flag}, which src/bin/redispair-operator.rs does not define"
        );
    }
}

#[test]
fn kind_and_demo_scripts_use_the_default_image() {
    assert_eq!(
        shell_default(&read("hack/kind/up.sh"), "IMAGE"),
        DEFAULT_IMAGE
    );
    assert_eq!(shell_default(&read("hack/demo.sh"), "IMAGE"), DEFAULT_IMAGE);
}

#[test]
fn chart_crd_is_the_generated_crd() {
    assert_eq!(
        read("charts/redispair-operator/crds/redispair.yaml"),
        read("crds/redispair.yaml"),
        "cp crds/redispair.yaml charts/redispair-operator/crds/"
    );
}

/// Every Kubernetes API call the operator makes, as RBAC rules: (define in the chart's
/// `_helpers.tpl`, apiGroup, resource, verbs). The chart must grant exactly these (least
/// privilege: nothing the code does not use) and docs/architecture.md must list them. When the
/// code starts or stops making a call, change this list, the chart and the docs together.
const OPERATOR_RULES: &[(&str, &str, &str, &[&str])] = &[
    // Controller watch (list, watch), the startup check (list), request annotations (patch).
    (
        "pairRules",
        "redispair.io",
        "redispairs",
        &["list", "watch", "patch"],
    ),
    // Status by server-side apply.
    ("pairRules", "redispair.io", "redispairs/status", &["patch"]),
    // blockOwnerDeletion on owner references (OwnerReferencesPermissionEnforcement).
    (
        "pairRules",
        "redispair.io",
        "redispairs/finalizers",
        &["update"],
    ),
    // Base backups: observe (list), the controller's watch (list, watch), the schedule
    // (create); their status written by merge patch.
    (
        "pairRules",
        "redispair.io",
        "redispairbackups",
        &["list", "watch", "create"],
    ),
    (
        "pairRules",
        "redispair.io",
        "redispairbackups/status",
        &["patch"],
    ),
    // observe (get), reflector and owns (list, watch), apply (create, merge patch), act
    // (password annotation patch, replacement and rollout deletes).
    (
        "pairRules",
        "",
        "pods",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    // observe (get), owns (list, watch), server-side apply (create, patch: an apply that
    // creates the object is authorised as create too).
    (
        "pairRules",
        "",
        "services",
        &["get", "list", "watch", "create", "patch"],
    ),
    // owns (list, watch), server-side apply (create, patch), a lost node's claim (delete).
    (
        "pairRules",
        "",
        "persistentvolumeclaims",
        &["list", "watch", "create", "patch", "delete"],
    ),
    // observe (get), the metadata watch (list, watch), generated Secrets (create).
    (
        "pairRules",
        "",
        "secrets",
        &["get", "list", "watch", "create"],
    ),
    // server-side apply (create, patch).
    (
        "pairRules",
        "policy",
        "poddisruptionbudgets",
        &["create", "patch"],
    ),
    // kube-runtime's Recorder: events.k8s.io/v1, created then patched as a series.
    ("pairRules", "events.k8s.io", "events", &["create", "patch"]),
    // The cert-manager Certificate of a pair with spec.tls.issuerRef: server-side apply.
    (
        "pairRules",
        "cert-manager.io",
        "certificates",
        &["create", "patch"],
    ),
    // observe (get), the node watch (list, watch).
    ("nodeRules", "", "nodes", &["get", "list", "watch"]),
    // operator::leader: get_opt, create, replace.
    (
        "leaderRules",
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    ),
];

/// The rules of `{{- define "redispair-operator.NAME" -}}` in the chart's `_helpers.tpl`:
/// (apiGroup, resource, sorted verbs), one entry per group and resource.
fn chart_rules(define: &str) -> Vec<(String, String, Vec<String>)> {
    let helpers = read("charts/redispair-operator/templates/_helpers.tpl");
    let start = format!("{{{{- define \"redispair-operator.{define}\" -}}}}");
    let body = helpers
        .split_once(&start)
        .unwrap_or_else(|| panic!("no define {define} in _helpers.tpl"))
        .1;
    let body = body.split("{{- end }}").next().unwrap();
    let rules: Vec<serde_yaml::Value> = serde_yaml::from_str(body).unwrap();
    let mut out = Vec::new();
    for r in rules {
        let strings = |k: &str| -> Vec<String> {
            r[k].as_sequence()
                .unwrap_or_else(|| panic!("{define}: rule without {k}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let mut verbs = strings("verbs");
        verbs.sort();
        for g in strings("apiGroups") {
            for res in strings("resources") {
                out.push((g.clone(), res, verbs.clone()));
            }
        }
    }
    out.sort();
    out
}

fn expected_rules(define: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<_> = OPERATOR_RULES
        .iter()
        .filter(|(d, ..)| *d == define)
        .map(|(_, g, r, v)| {
            let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            v.sort();
            (g.to_string(), r.to_string(), v)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn chart_rbac_grants_exactly_the_calls_the_operator_makes() {
    for define in ["pairRules", "nodeRules", "leaderRules"] {
        assert_eq!(
            chart_rules(define),
            expected_rules(define),
            "charts/redispair-operator/templates/_helpers.tpl {define} differs from OPERATOR_RULES"
        );
    }
    // The templates grant rules only through those defines (no rule written inline).
    let rbac = read("charts/redispair-operator/templates/rbac.yaml");
    assert!(
        !rbac.contains("verbs:"),
        "a rule written inline in rbac.yaml"
    );
    for define in ["pairRules", "nodeRules", "leaderRules"] {
        assert!(
            rbac.contains(&format!("include \"redispair-operator.{define}\"")),
            "rbac.yaml does not use {define}"
        );
    }
    // The read-write verbs nobody needs stay out (wildcards included).
    for (_, _, verbs) in ["pairRules", "nodeRules", "leaderRules"]
        .iter()
        .flat_map(|d| chart_rules(d))
    {
        assert!(!verbs.iter().any(|v| v == "*" || v == "deletecollection"));
    }
}

#[test]
fn architecture_doc_lists_the_operator_rbac() {
    let doc = read("docs/architecture.md");
    let section = doc
        .split_once("### What the operator needs")
        .expect("docs/architecture.md: no 'What the operator needs' section")
        .1;
    let rows: Vec<Vec<String>> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    for (_, group, resource, verbs) in OPERATOR_RULES {
        let group = if group.is_empty() { "core" } else { group };
        let row = rows
            .iter()
            .find(|r| r[0] == group && r[1] == format!("`{resource}`"))
            .unwrap_or_else(|| {
                panic!("docs/architecture.md: no row `| {group} | `{resource}` | verbs | why |`")
            });
        assert_eq!(row[2], verbs.join(", "), "{group} {resource}");
        assert!(
            row.len() >= 4 && !row[3].is_empty(),
            "{resource}: no reason given"
        );
    }
    assert_eq!(
        rows.len(),
        OPERATOR_RULES.len(),
        "extra rows in the doc's table"
    );
}

#[test]
fn chart_network_policy_selects_the_engines_by_the_operators_labels_and_port() {
    use redispair::api::constants::{ENGINE_PORT, LABEL_MANAGED_BY, LABEL_PAIR, MANAGED_BY};
    let np = read("charts/redispair-operator/templates/networkpolicy.yaml");
    assert!(np.contains(&format!("{LABEL_MANAGED_BY}: {MANAGED_BY}")));
    assert!(np.contains(&format!("key: {LABEL_PAIR}")));
    assert!(np.contains(&format!("port: {ENGINE_PORT}")));
    assert!(np.contains("{{- if .Values.networkPolicy.enabled }}"));
    let values = yaml("charts/redispair-operator/values.yaml");
    assert_eq!(values["networkPolicy"]["enabled"].as_bool(), Some(false));
    assert_eq!(
        values["networkPolicy"]["clientLabels"]["redispair.io/client"].as_str(),
        Some("true")
    );
}

#[test]
fn chart_scrapes_the_engines_by_the_operators_labels_and_metrics_port() {
    use redispair::api::constants::{
        ENGINE_METRICS_PORT, ENGINE_METRICS_PORT_NAME, LABEL_MANAGED_BY, LABEL_PAIR, MANAGED_BY,
    };
    let pm = read("charts/redispair-operator/templates/podmonitor.yaml");
    assert!(pm.contains(&format!("{LABEL_MANAGED_BY}: {MANAGED_BY}")));
    assert!(pm.contains(&format!("key: {LABEL_PAIR}")));
    assert!(pm.contains(&format!("- port: {ENGINE_METRICS_PORT_NAME}")));
    let np = read("charts/redispair-operator/templates/networkpolicy.yaml");
    assert!(np.contains(&format!("port: {ENGINE_METRICS_PORT}")));
}

/// Every series the dashboard and the alerts query is one the engine or the operator exports
/// (a renamed family would otherwise leave an empty panel or an alert that never fires).
#[test]
fn dashboard_and_alerts_query_only_exported_families() {
    let exported = read("src/engine/metrics.rs") + &read("src/operator/metrics.rs");
    let mut checked = 0;
    for file in [
        "charts/redispair-operator/dashboards/redispair.json",
        "charts/redispair-operator/templates/prometheusrule.yaml",
    ] {
        let text = read(file);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("redispair_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            // The families' registered names, without the suffixes the encoder adds.
            let mut family = name.as_str();
            for suffix in ["_bucket", "_count", "_sum", "_total"] {
                family = family.strip_suffix(suffix).unwrap_or(family);
            }
            assert!(
                exported.contains(&format!("\"{family}\"")),
                "{file} queries {name}, which nothing exports"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} series found");
}
