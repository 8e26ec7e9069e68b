//! Every manifest in examples/ starts with a comment saying what it shows, parses into the
//! RedisPair type, and is accepted by the CRD's OpenAPI schema as far as it can be checked
//! offline (types, enums, required fields, unknown fields, and the simple CEL rules). Pure
//! apart from reading the files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use redispair::api::RedisPair;
use serde_json::Value;

const EXAMPLES: [&str; 5] = [
    "minimal.yaml",
    "persistent.yaml",
    "semi-sync.yaml",
    "zone-spread.yaml",
    "custom.yaml",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The YAML documents of a file, as JSON values (empty documents skipped).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The openAPIV3Schema of the committed CRD (the file the chart and users install).
fn crd_schema() -> Value {
    let crd = documents(&repo().join("crds/redispair.yaml")).remove(0);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Checks `value` against an OpenAPI v3 structural schema the way the API server would for
/// what can be checked offline; pushes one message per violation. CEL rules are evaluated
/// when they have one of the simple shapes the CRD uses; transition rules (`oldSelf`) only
/// apply to updates and are skipped.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errors.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == Value::Bool(true);
    if int_or_string {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{path}: must be an integer or a string"));
        }
    } else if let Some(ty) = schema["type"].as_str() {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: must be of type {ty}, got {value}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default();
            if cel_rule_rejects(text, value) == Some(true) {
                errors.push(format!(
                    "{path}: {}",
                    rule["message"].as_str().unwrap_or(text)
                ));
            }
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            for (key, field) in fields {
                let child = format!("{path}.{key}");
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    validate(sub, field, &child, errors);
                } else if let Some(extra) = schema.get("additionalProperties") {
                    if extra.is_object() {
                        validate(extra, field, &child, errors);
                    }
                } else if path.is_empty()
                    && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    // Checked by the API server itself, not by the CRD's schema.
                } else if schema["x-kubernetes-preserve-unknown-fields"] != Value::Bool(true) {
                    // The API server would prune it silently: in an example that is a typo.
                    errors.push(format!("{child}: unknown field (the API server drops it)"));
                }
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    errors.push(format!("{path}: missing required field {name}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// Evaluates the CEL rule shapes the RedisPair CRD uses. `Some(true)`: the value breaks the
/// rule; `Some(false)`: it satisfies it; `None`: a shape this offline check does not know.
fn cel_rule_rejects(rule: &str, value: &Value) -> Option<bool> {
    if rule.contains("oldSelf") {
        return None;
    }
    if let Some(list) = rule
        .strip_prefix("self in [")
        .and_then(|r| r.strip_suffix(']'))
    {
        let allowed: Vec<&str> = list
            .split(',')
            .map(|s| s.trim().trim_matches('\''))
            .collect();
        return Some(!allowed.contains(&value.as_str()?));
    }
    if rule == "self != ''" {
        return Some(value.as_str()?.is_empty());
    }
    if let Some(rest) = rule.strip_prefix("self >= ") {
        let (low, high) = rest.split_once(" && self <= ")?;
        let (low, high): (i64, i64) = (low.parse().ok()?, high.parse().ok()?);
        let v = value.as_i64()?;
        return Some(v < low || v > high);
    }
    if rule == "quantity(self).isGreaterThan(quantity('0'))" {
        let q = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if q.starts_with('-') {
            return Some(true);
        }
        let digits: String = q
            .trim_start_matches('+')
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number: f64 = digits.parse().ok()?;
        return Some(number <= 0.0);
    }
    None
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(&crd_schema(), doc, "", &mut errors);
    errors
}

#[test]
fn examples_directory_holds_exactly_the_documented_examples() {
    let found: BTreeSet<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    let expected: BTreeSet<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, expected,
        "update EXAMPLES, the README and the e2e suite"
    );
}

#[test]
fn every_example_starts_with_a_comment_saying_what_it_shows() {
    for name in EXAMPLES {
        let text = std::fs::read_to_string(repo().join("examples").join(name)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# ") && first.len() > 20,
            "{name}: first line must be a comment describing the example, got {first:?}"
        );
    }
}

#[test]
fn every_example_parses_into_redispair_and_passes_the_crd_schema() {
    let mut pairs = BTreeSet::new();
    for name in EXAMPLES {
        let docs = documents(&repo().join("examples").join(name));
        let mut found_pair = false;
        for doc in &docs {
            match doc["kind"].as_str() {
                Some("RedisPair") => {
                    found_pair = true;
                    assert_eq!(doc["apiVersion"], "redispair.io/v1alpha1", "{name}");
                    let rp: RedisPair = serde_json::from_value(doc.clone())
                        .unwrap_or_else(|e| panic!("{name}: not a RedisPair: {e}"));
                    let pair_name = rp.metadata.name.clone().expect("metadata.name");
                    assert!(
                        pairs.insert(pair_name.clone()),
                        "{name}: pair name {pair_name} reused: examples are applied together"
                    );
                    assert!(
                        rp.metadata.namespace.is_none(),
                        "{name}: leave the namespace to kubectl -n"
                    );
                    let errors = schema_errors(doc);
                    assert!(
                        errors.is_empty(),
                        "{name}: rejected by the CRD schema: {errors:#?}"
                    );
                }
                Some("Secret") => {
                    let secret: Secret = serde_json::from_value(doc.clone()).unwrap();
                    assert!(
                        secret.metadata.name.is_some(),
                        "{name}: Secret without a name"
                    );
                }
                other => panic!("{name}: unexpected kind {other:?}"),
            }
        }
        assert!(found_pair, "{name}: no RedisPair");
    }
}

#[test]
fn semi_sync_example_is_the_contract_manifest_with_its_secret() {
    let docs = documents(&repo().join("examples/semi-sync.yaml"));
    let secret: Secret = serde_json::from_value(docs[0].clone()).unwrap();
    let rp: RedisPair = serde_json::from_value(docs[1].clone()).unwrap();
    let reference = rp.spec.auth.password_secret.as_ref().unwrap();
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(reference.name.as_str())
    );
    assert!(
        secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(&reference.key)),
        "the Secret must hold key {}",
        reference.key
    );
    // The contract (issue 5): exactly these fields, these values.
    assert_eq!(rp.metadata.name.as_deref(), Some("cache"));
    assert_eq!(
        docs[1]["spec"],
        serde_json::json!({
            "replication": {"mode": "semi-sync"},
            "storage": {"size": "1Gi"},
            "auth": {"passwordSecret": {"name": "cache-password"}},
            "failover": {"detectionSeconds": 2}
        })
    );
}

#[test]
fn the_offline_schema_check_rejects_what_the_api_server_rejects() {
    let bad = [
        (
            r#"{"spec":{"replication":{"mode":"fast"}}}"#,
            "spec.replication.mode",
        ),
        (
            r#"{"spec":{"storage":{"size":"-1Gi"}}}"#,
            "storage.size must be positive",
        ),
        (
            r#"{"spec":{"failover":{"detectionSeconds":0}}}"#,
            "between 1 and 60",
        ),
        (
            r#"{"spec":{"imagePullPolicy":"Sometimes"}}"#,
            "imagePullPolicy must be",
        ),
        (
            r#"{"spec":{"storage":{"ephemeral":"yes"}}}"#,
            "must be of type boolean",
        ),
        (r#"{"spec":{"replicas":3}}"#, "spec.replicas: unknown field"),
        (
            r#"{"spec":{"auth":{"passwordSecret":{}}}}"#,
            "missing required field name",
        ),
        (
            r#"{"metadata":{"name":"x"}}"#,
            "missing required field spec",
        ),
    ];
    for (doc, expected) in bad {
        let errors = schema_errors(&serde_json::from_str(doc).unwrap());
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{doc}: expected an error containing {expected:?}, got {errors:?}"
        );
    }
    let good = serde_json::json!({"spec": {"storage": {"size": "1Gi"}}, "metadata": {"name": "x"}});
    assert!(schema_errors(&good).is_empty());
}

#[test]
fn the_committed_crd_is_the_generated_one_for_the_schema_check() {
    // The offline check reads crds/redispair.yaml; make sure it is the generated schema, not a
    // stale file (hack/test.sh also diffs it against crdgen).
    let generated = serde_json::to_value(RedisPair::crd()).unwrap();
    assert_eq!(
        generated["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        crd_schema()
    );
}
