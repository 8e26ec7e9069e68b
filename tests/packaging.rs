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
    assert!(d.contains("COPY --from=builder /out/usr/local/bin/ /usr/local/bin/"));
    assert!(d.contains(&format!("USER {NONROOT_UID}:{NONROOT_UID}")));
    assert!(d.contains(&format!(
        "--chown={NONROOT_UID}:{NONROOT_UID} /out/data /data"
    )));
    assert!(d.contains(&format!("ENTRYPOINT [\"{OPERATOR_BINARY}\"]")));
    let runtime = d.rsplit("\nFROM ").next().unwrap();
    assert!(runtime.starts_with("gcr.io/distroless/cc") || runtime.starts_with("debian:"));
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
