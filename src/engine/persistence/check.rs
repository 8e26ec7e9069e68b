//! `redispair-engine check-log DIR [--truncate]`: validate every segment and snapshot, report
//! ranges and the first damage, and optionally cut the log at the first bad record (losing what
//! follows, which is reported). Does I/O: reads files, and truncates/deletes with `--truncate`.

use std::fmt::Write as _;
use std::path::Path;

use super::{list_segments, list_snapshots, record};

/// The report, and whether the directory is (now) usable.
pub fn check_log(dir: &Path, truncate: bool) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for (offset, path) in list_snapshots(dir) {
        match std::fs::read(&path) {
            Ok(data) => {
                let (recs, end) = record::scan(&data, false, None);
                let _ = writeln!(
                    out,
                    "snapshot {} offset {offset}: {} records, {}",
                    path.display(),
                    recs.len(),
                    describe(&end)
                );
                if end != record::ScanEnd::Clean {
                    ok = false;
                }
            }
            Err(e) => {
                let _ = writeln!(out, "snapshot {}: {e}", path.display());
                ok = false;
            }
        }
    }
    let segs = list_segments(dir);
    let mut cut_after: Option<usize> = None;
    let mut expect: Option<u64> = None;
    for (i, (first, path)) in segs.iter().enumerate() {
        if cut_after.is_some() {
            let _ = writeln!(out, "segment {}: after the damage", path.display());
            if truncate {
                let _ = std::fs::remove_file(path);
                let _ = writeln!(out, "  removed");
            }
            continue;
        }
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                let _ = writeln!(out, "segment {}: {e}", path.display());
                ok = false;
                continue;
            }
        };
        if let Some(e) = expect {
            if e != *first {
                let _ = writeln!(
                    out,
                    "segment {}: starts at {first}, previous segment ends at {e} (gap)",
                    path.display()
                );
                ok = false;
            }
        }
        let (recs, end) = record::scan(&data, true, Some(*first));
        let last = recs
            .last()
            .map(|r| r.offset + r.len as u64)
            .unwrap_or(*first);
        let _ = writeln!(
            out,
            "segment {}: offsets {first}..{last}, {} records, {}",
            path.display(),
            recs.len(),
            describe(&end)
        );
        expect = Some(last);
        let at = match end {
            record::ScanEnd::Clean => continue,
            record::ScanEnd::Torn { at } | record::ScanEnd::Corrupt { at, .. } => at,
        };
        let is_last = i + 1 == segs.len();
        let torn = matches!(end, record::ScanEnd::Torn { .. });
        if !(torn && is_last) {
            ok = false;
        }
        if truncate {
            match std::fs::OpenOptions::new().write(true).open(path) {
                Ok(f) => {
                    let _ = f.set_len(at as u64);
                    let _ = f.sync_all();
                    let _ = writeln!(
                        out,
                        "  truncated at byte {at} ({} bytes dropped)",
                        data.len() - at
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "  cannot truncate: {e}");
                }
            }
        }
        cut_after = Some(i);
    }
    if truncate && cut_after.is_some() {
        ok = true;
    }
    let _ = writeln!(out, "{}", if ok { "OK" } else { "DAMAGED" });
    (out, ok)
}

fn describe(end: &record::ScanEnd) -> String {
    match end {
        record::ScanEnd::Clean => "clean".into(),
        record::ScanEnd::Torn { at } => format!("torn last record at byte {at}"),
        record::ScanEnd::Corrupt { at, reason } => format!("CORRUPT at byte {at}: {reason}"),
    }
}
