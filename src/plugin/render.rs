//! Prints a `StatusView`: aligned text for people (colour optional), JSON or YAML for
//! scripts. Pure: returns strings.

use super::cli::Output;
use super::error::PluginError;
use super::operator::OperatorPresence;
use super::view::StatusView;

/// ANSI styles; `Style::paint` returns the text unchanged when colour is off.
#[derive(Clone, Copy)]
enum Style {
    Bold,
    Green,
    Yellow,
    Red,
    Dim,
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if !self.color || text.is_empty() {
            return text.to_string();
        }
        let code = match style {
            Style::Bold => "1",
            Style::Green => "32",
            Style::Yellow => "33",
            Style::Red => "31",
            Style::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// A cell: its text and an optional style (applied after padding, so widths count only the
/// visible characters).
type Cell = (String, Option<Style>);

fn plain(s: impl Into<String>) -> Cell {
    (s.into(), None)
}

fn styled(s: impl Into<String>, style: Style) -> Cell {
    (s.into(), Some(style))
}

/// Left-aligned columns two spaces apart, indented by two; the last column is not padded.
fn table(p: &Painter, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, (text, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(text.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<Cell>, out: &mut String| {
        out.push_str("  ");
        let last = cells.len() - 1;
        for (i, (text, style)) in cells.into_iter().enumerate() {
            let pad = if i == last {
                0
            } else {
                widths[i] - text.chars().count() + 2
            };
            match style {
                Some(s) => out.push_str(&p.paint(s, &text)),
                None => out.push_str(&text),
            }
            out.push_str(&" ".repeat(pad));
        }
        // An empty last cell leaves the padding of the one before it.
        out.truncate(out.trim_end_matches(' ').len());
        out.push('\n');
    };
    line(
        headers.iter().map(|h| styled(*h, Style::Dim)).collect(),
        &mut out,
    );
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

/// kubectl-style age: 45s, 3m12s, 2h5m, 4d3h.
pub fn format_age(seconds: Option<i64>) -> String {
    let Some(s) = seconds else {
        return "?".to_string();
    };
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Bytes in the largest unit that keeps a number ≥ 1 (B, KiB, MiB, GiB).
pub fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn phase_style(phase: &str) -> Style {
    match phase {
        "Ready" => Style::Green,
        "Failed" => Style::Red,
        _ => Style::Yellow,
    }
}

/// The status as text, like `kubectl cnpg status`: a summary, the two instances, failover
/// history, conditions, recent events, then warnings.
pub fn render_text(v: &StatusView, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let kv = |out: &mut String, label: &str, value: String| {
        let pad = " ".repeat(15usize.saturating_sub(label.chars().count()));
        out.push_str(&format!("{}{pad}{value}\n", p.paint(Style::Bold, label)));
    };

    out.push_str(&format!(
        "{}\n",
        p.paint(
            Style::Bold,
            &format!("RedisPair {}/{}", v.namespace, v.name)
        )
    ));
    kv(&mut out, "Phase", p.paint(phase_style(&v.phase), &v.phase));
    let sync = match &v.replication {
        Some(r) if r.in_sync => p.paint(Style::Green, "in sync"),
        Some(_) if v.degraded => p.paint(Style::Red, "NOT in sync (degraded)"),
        Some(_) => p.paint(Style::Yellow, "NOT in sync"),
        None => p.paint(Style::Dim, "not reported yet"),
    };
    kv(&mut out, "Replication", format!("{}, {sync}", v.mode));
    kv(&mut out, "Term", v.term.to_string());
    let master = match (&v.current_master, &v.target_master) {
        (Some(c), Some(t)) if c != t => format!("{c} (operator is moving it to {t})"),
        (Some(c), _) => c.clone(),
        (None, Some(t)) => format!("none yet (target {t})"),
        (None, None) => p.paint(Style::Red, "none"),
    };
    kv(&mut out, "Master", master);
    if let (Some(rw), Some(ro)) = (&v.read_write_service, &v.read_only_service) {
        kv(
            &mut out,
            "Services",
            format!("{rw} (read-write), {ro} (read-only)"),
        );
    }
    let failover = match (v.failover_enabled, v.allow_data_loss) {
        (false, _) => p.paint(Style::Yellow, "disabled"),
        (true, false) => "automatic, never loses acknowledged writes".to_string(),
        (true, true) => p.paint(Style::Yellow, "automatic, may lose writes (allowDataLoss)"),
    };
    kv(&mut out, "Failover", failover);
    let operator = match &v.operator {
        OperatorPresence::Running(d) => format!("{} ({d})", p.paint(Style::Green, "running")),
        OperatorPresence::NotRunning(d) => format!("{} ({d})", p.paint(Style::Red, "NOT running")),
        OperatorPresence::Unknown(d) => format!("{} ({d})", p.paint(Style::Yellow, "unknown")),
    };
    kv(&mut out, "Operator", operator);

    out.push_str(&format!("\n{}\n", p.paint(Style::Bold, "Instances")));
    if v.instances.is_empty() {
        out.push_str("  no pods yet\n");
    } else {
        let rows: Vec<Vec<Cell>> = v
            .instances
            .iter()
            .map(|i| {
                let role_style = if i.role == "master" {
                    Style::Bold
                } else if i.role == "replica" {
                    Style::Green
                } else {
                    Style::Yellow
                };
                let lag = match (&v.replication, i.role.as_str()) {
                    (Some(r), "replica") => {
                        format!("{} / {}s", format_bytes(r.lag_bytes), r.lag_seconds)
                    }
                    _ => "-".to_string(),
                };
                let node = match (&i.node, i.node_ready) {
                    (Some(n), Some(false)) => styled(format!("{n} (NotReady)"), Style::Red),
                    (Some(n), _) => plain(n.clone()),
                    (None, _) => styled("unscheduled", Style::Yellow),
                };
                let status = if i.ready {
                    styled(format!("{} ready", i.pod_phase), Style::Green)
                } else {
                    styled(format!("{} not ready", i.pod_phase), Style::Red)
                };
                vec![
                    plain(i.pod.clone()),
                    styled(i.role.clone(), role_style),
                    node,
                    plain(i.zone.clone().unwrap_or_else(|| "-".into())),
                    status,
                    if i.fenced {
                        styled("yes", Style::Red)
                    } else {
                        plain("no")
                    },
                    plain(i.restarts.to_string()),
                    plain(
                        i.offset
                            .map(|o| o.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ),
                    plain(lag),
                    plain(format_age(i.age_seconds)),
                ]
            })
            .collect();
        out.push_str(&table(
            &p,
            &[
                "POD", "ROLE", "NODE", "ZONE", "STATUS", "FENCED", "RESTARTS", "OFFSET", "LAG",
                "AGE",
            ],
            &rows,
        ));
    }

    if let Some(f) = &v.failover_in_progress {
        let kind = if f.planned { "Switchover" } else { "Failover" };
        out.push_str(&format!(
            "\n{} {} -> {} (term {}), step {}, running for {}: {}\n",
            p.paint(Style::Yellow, &format!("{kind} in progress:")),
            f.from,
            f.to,
            f.term,
            f.step,
            format_age(f.running_seconds),
            f.reason
        ));
    }
    match &v.last_failover {
        Some(f) => out.push_str(&format!(
            "\n{}  {} ago ({}): {} -> {}, took {:.1}s, because {}\n",
            p.paint(Style::Bold, "Last failover"),
            format_age(f.age_seconds),
            f.time,
            f.from,
            f.to,
            f.duration_seconds,
            f.reason
        )),
        None => out.push_str(&format!(
            "\n{}  never\n",
            p.paint(Style::Bold, "Last failover")
        )),
    }
    for r in &v.pending_requests {
        out.push_str(&format!(
            "{}  {r}, waiting for the operator\n",
            p.paint(Style::Yellow, "Requested")
        ));
    }

    if !v.conditions.is_empty() {
        out.push_str(&format!("\n{}\n", p.paint(Style::Bold, "Conditions")));
        let rows: Vec<Vec<Cell>> = v
            .conditions
            .iter()
            .map(|c| {
                // Ready and Replicating are good when True; FailingOver and Degraded when False.
                let good = matches!(
                    (c.type_.as_str(), c.status.as_str()),
                    ("Ready" | "Replicating", "True") | ("FailingOver" | "Degraded", "False")
                );
                vec![
                    plain(c.type_.clone()),
                    styled(
                        c.status.clone(),
                        if good { Style::Green } else { Style::Yellow },
                    ),
                    plain(c.reason.clone()),
                    plain(format_age(c.age_seconds)),
                    plain(c.message.clone()),
                ]
            })
            .collect();
        out.push_str(&table(
            &p,
            &["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
            &rows,
        ));
    }

    out.push_str(&format!("\n{}\n", p.paint(Style::Bold, "Recent events")));
    if v.events.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows: Vec<Vec<Cell>> = v
            .events
            .iter()
            .map(|e| {
                let count = if e.count > 1 {
                    format!(" (x{})", e.count)
                } else {
                    String::new()
                };
                vec![
                    plain(format_age(e.age_seconds)),
                    if e.type_ == "Warning" {
                        styled(e.type_.clone(), Style::Yellow)
                    } else {
                        plain(e.type_.clone())
                    },
                    plain(e.reason.clone()),
                    plain(e.object.clone()),
                    plain(format!("{}{count}", e.message)),
                ]
            })
            .collect();
        out.push_str(&table(
            &p,
            &["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            &rows,
        ));
    }

    if !v.warnings.is_empty() {
        out.push('\n');
        for w in &v.warnings {
            out.push_str(&format!("{} {w}\n", p.paint(Style::Red, "!")));
        }
    }
    out
}

/// The status in the format asked for. JSON and YAML carry every field of the view.
pub fn render(v: &StatusView, output: Output, color: bool) -> Result<String, PluginError> {
    match output {
        Output::Text => Ok(render_text(v, color)),
        Output::Json => serde_json::to_string_pretty(v)
            .map(|s| s + "\n")
            .map_err(|e| PluginError::Output {
                format: "json".into(),
                detail: e.to_string(),
            }),
        Output::Yaml => serde_yaml::to_string(v).map_err(|e| PluginError::Output {
            format: "yaml".into(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::view::build_status_view;
    use crate::plugin::view::tests::fixture_input;

    #[test]
    fn text_shows_pair_instances_failover_conditions_events() {
        let text = render_text(&build_status_view(&fixture_input()), false);
        let expected = include_str!("testdata/status.txt");
        assert_eq!(text, expected, "\n--- got ---\n{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let view = build_status_view(&fixture_input());
        assert!(!render_text(&view, false).contains('\x1b'));
        let coloured = render_text(&view, true);
        assert!(coloured.contains("\x1b[32mReady\x1b[0m"));
        // Stripping the escapes gives the plain text back: colour never shifts columns.
        let stripped = strip_ansi(&coloured);
        assert_eq!(stripped, render_text(&view, false));
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn json_and_yaml_carry_the_fields_scripts_need() {
        let view = build_status_view(&fixture_input());
        let json: serde_json::Value =
            serde_json::from_str(&render(&view, Output::Json, false).unwrap()).unwrap();
        assert_eq!(json["currentMaster"], "cache-b");
        assert_eq!(json["replication"]["inSync"], true);
        assert_eq!(json["instances"][1]["node"], "node2");
        assert_eq!(json["lastFailover"]["durationSeconds"], 2.4);
        assert_eq!(json["operator"]["state"], "running");
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&render(&view, Output::Yaml, false).unwrap()).unwrap();
        assert_eq!(yaml["term"].as_i64(), Some(3));
        assert_eq!(yaml["conditions"][0]["type"].as_str(), Some("Ready"));
    }

    #[test]
    fn ages_and_sizes() {
        assert_eq!(format_age(Some(5)), "5s");
        assert_eq!(format_age(Some(192)), "3m12s");
        assert_eq!(format_age(Some(7500)), "2h5m");
        assert_eq!(format_age(Some(97200)), "1d3h");
        assert_eq!(format_age(None), "?");
        assert_eq!(format_bytes(576), "576 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
