//! `kubectl redispair backup NAME` and `backups NAME`: the RedisPairBackup a backup request
//! creates, what the wait makes of its status, and the list of a pair's backups as a table,
//! JSON or YAML. Pure: `client` reads and writes the API.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use super::cli::Output;
use super::error::PluginError;
use super::render::format_bytes;
use crate::api::constants::LABEL_PAIR;
use crate::api::{
    RedisPair, RedisPairBackup, RedisPairBackupSpec, BACKUP_COMPLETED, BACKUP_FAILED,
};

/// The RedisPairBackup `backup` creates: `name`, or `<pair>-<yyyymmddhhmmss>`.
pub fn new_backup(
    pair: &RedisPair,
    name: Option<&str>,
    now: Timestamp,
) -> Result<RedisPairBackup, PluginError> {
    let pair_name = pair.name_any();
    if pair.spec.backup.is_none() {
        return Err(PluginError::NoBackupSpec { pair: pair_name });
    }
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{pair_name}-{}", now.strftime("%Y%m%d%H%M%S")));
    Ok(RedisPairBackup {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: pair.namespace(),
            labels: Some([(LABEL_PAIR.to_string(), pair_name.clone())].into()),
            ..Default::default()
        },
        spec: RedisPairBackupSpec { pair: pair_name },
        status: None,
    })
}

/// What waiting on a backup ended with: Some(message) when it is done and completed, an
/// error when it failed, None while it runs.
pub fn outcome(b: &RedisPairBackup) -> Result<Option<String>, PluginError> {
    let Some(s) = &b.status else { return Ok(None) };
    match s.phase.as_deref() {
        Some(BACKUP_COMPLETED) => Ok(Some(format!(
            "backup {} completed: {} at offset {}, in {}\n",
            b.name_any(),
            s.size.map_or("?".to_string(), format_bytes),
            s.start_offset.map_or("?".to_string(), |o| o.to_string()),
            s.location.as_deref().unwrap_or("?"),
        ))),
        Some(BACKUP_FAILED) => Err(PluginError::BackupFailed {
            name: b.name_any(),
            error: s.error.clone().unwrap_or_else(|| "no reason given".into()),
        }),
        _ => Ok(None),
    }
}

/// One line of `backups`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRow {
    pub name: String,
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The pair's backups, oldest first.
pub fn rows(pair: &str, backups: &[RedisPairBackup]) -> Vec<BackupRow> {
    let mut list: Vec<&RedisPairBackup> = backups.iter().filter(|b| b.spec.pair == pair).collect();
    list.sort_by_key(|b| (b.creation_timestamp().map(|t| t.0), b.name_any()));
    list.into_iter()
        .map(|b| {
            let s = b.status.clone().unwrap_or_default();
            BackupRow {
                name: b.name_any(),
                phase: s.phase.unwrap_or_else(|| "New".to_string()),
                backup_id: s.backup_id,
                started_at: s.started_at,
                finished_at: s.finished_at,
                start_offset: s.start_offset,
                size: s.size,
                location: s.location,
                error: s.error,
            }
        })
        .collect()
}

/// `backups` output.
pub fn render_rows(pair: &str, rows: &[BackupRow], output: Output) -> Result<String, PluginError> {
    match output {
        Output::Json => serde_json::to_string_pretty(rows)
            .map(|s| s + "\n")
            .map_err(|e| PluginError::Output {
                format: "json".into(),
                detail: e.to_string(),
            }),
        Output::Yaml => serde_yaml::to_string(rows).map_err(|e| PluginError::Output {
            format: "yaml".into(),
            detail: e.to_string(),
        }),
        Output::Text if rows.is_empty() => Ok(format!(
            "no backups of {pair} (take one with: kubectl redispair backup {pair})\n"
        )),
        Output::Text => {
            let headers = [
                "NAME", "PHASE", "STARTED", "FINISHED", "OFFSET", "SIZE", "LOCATION",
            ];
            let cells: Vec<[String; 7]> = rows
                .iter()
                .map(|r| {
                    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    [
                        r.name.clone(),
                        match &r.error {
                            Some(e) => format!("{} ({e})", r.phase),
                            None => r.phase.clone(),
                        },
                        opt(&r.started_at),
                        opt(&r.finished_at),
                        r.start_offset.map_or("-".into(), |o| o.to_string()),
                        r.size.map_or("-".into(), format_bytes),
                        opt(&r.location),
                    ]
                })
                .collect();
            let mut widths = headers.map(str::len);
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cols: Vec<&str>| {
                let mut l = String::new();
                for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                    if i + 1 == cols.len() {
                        l.push_str(c);
                    } else {
                        l.push_str(&format!("{c:<w$}  "));
                    }
                }
                l.trim_end().to_string() + "\n"
            };
            let mut out = line(headers.to_vec());
            for row in &cells {
                out.push_str(&line(row.iter().map(String::as_str).collect()));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackupSpec, ObjectStoreSpec, RedisPairBackupStatus};

    fn pair(with_backup: bool) -> RedisPair {
        let mut p: RedisPair =
            serde_yaml::from_str("metadata: {name: cache, namespace: shop}\nspec: {}\n").unwrap();
        if with_backup {
            p.spec.backup = Some(BackupSpec {
                destination: ObjectStoreSpec {
                    destination_path: "s3://b/shop/cache".into(),
                    endpoint_url: None,
                    region: None,
                    credentials_secret: None,
                },
                schedule: None,
                retention: None,
            });
        }
        p
    }

    #[test]
    fn a_backup_request_names_the_pair_and_needs_spec_backup() {
        let now: Timestamp = "2026-12-06T12:30:05Z".parse().unwrap();
        let b = new_backup(&pair(true), None, now).unwrap();
        assert_eq!(b.name_any(), "cache-20261206123005");
        assert_eq!(b.namespace().as_deref(), Some("shop"));
        assert_eq!(b.spec.pair, "cache");
        assert_eq!(
            new_backup(&pair(true), Some("before-deploy"), now)
                .unwrap()
                .name_any(),
            "before-deploy"
        );
        let err = new_backup(&pair(false), None, now).unwrap_err();
        assert!(err.to_string().contains("spec.backup"), "{err}");
    }

    fn backup(name: &str, phase: Option<&str>, error: Option<&str>) -> RedisPairBackup {
        let mut b = RedisPairBackup::new(
            name,
            RedisPairBackupSpec {
                pair: "cache".into(),
            },
        );
        b.status = phase.map(|p| RedisPairBackupStatus {
            phase: Some(p.into()),
            size: Some(2048),
            start_offset: Some(77),
            location: Some(format!("s3://b/shop/cache/base/{name}-x/")),
            error: error.map(str::to_string),
            ..Default::default()
        });
        b
    }

    #[test]
    fn waiting_ends_on_completed_or_failed() {
        assert_eq!(outcome(&backup("b1", None, None)).unwrap(), None);
        assert_eq!(outcome(&backup("b1", Some("Running"), None)).unwrap(), None);
        let done = outcome(&backup("b1", Some(BACKUP_COMPLETED), None))
            .unwrap()
            .unwrap();
        assert!(
            done.contains("completed") && done.contains("offset 77"),
            "{done}"
        );
        let err = outcome(&backup(
            "b1",
            Some(BACKUP_FAILED),
            Some("object store: denied"),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("b1") && err.contains("object store: denied"),
            "{err}"
        );
    }

    #[test]
    fn the_list_shows_the_pairs_backups_as_a_table_or_json() {
        let mut other = backup("x", Some(BACKUP_COMPLETED), None);
        other.spec.pair = "sessions".into();
        let list = [
            backup("b1", Some(BACKUP_COMPLETED), None),
            backup("b2", Some(BACKUP_FAILED), Some("boom")),
            other,
        ];
        let r = rows("cache", &list);
        assert_eq!(r.len(), 2);
        let text = render_rows("cache", &r, Output::Text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAME") && lines[0].contains("LOCATION"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("b1") && lines[1].contains("Completed"),
            "{text}"
        );
        assert!(lines[2].contains("Failed (boom)"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render_rows("cache", &r, Output::Json).unwrap()).unwrap();
        assert_eq!(json[0]["startOffset"], 77);
        assert!(render_rows("cache", &[], Output::Text)
            .unwrap()
            .contains("no backups of cache"));
    }
}
