//! LATENCY LATEST, HISTORY, RESET, GRAPH, HISTOGRAM, DOCTOR and HELP. Pure (on the locked
//! state).

use bytes::Bytes;

use super::args::lossy;
use super::command::lookup_full_name;
use super::flags::*;
use super::server::help_reply;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub(super) const LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "latest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_latest,
    ),
    CommandSpec::new(
        "history",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_history,
    ),
    CommandSpec::new(
        "reset",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_reset,
    ),
    CommandSpec::new(
        "graph",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_graph,
    ),
    CommandSpec::new(
        "histogram",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_histogram,
    ),
    CommandSpec::new(
        "doctor",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_doctor,
    ),
    CommandSpec::new(
        "help",
        2,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        latency_help,
    ),
];

/// LATENCY LATEST: per event, [name, time of the latest sample, its latency, the highest].
fn latency_latest(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Array(
        ctx.state
            .latency_monitor
            .events
            .iter()
            .filter_map(|(name, s)| {
                let (t, ms) = *s.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::bulk(Bytes::from(name.clone())),
                    Reply::Int(t),
                    Reply::Int(ms as i64),
                    Reply::Int(s.max_ms as i64),
                ]))
            })
            .collect(),
    )
}

/// LATENCY HISTORY event: [time, latency] of each sample, oldest first.
fn latency_history(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    Reply::Array(
        ctx.state
            .latency_monitor
            .events
            .get(&name)
            .map(|s| {
                s.samples
                    .iter()
                    .map(|(t, ms)| Reply::Array(vec![Reply::Int(*t), Reply::Int(*ms as i64)]))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn latency_reset(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let names: Vec<String> = a[2..].iter().map(|n| lossy(n)).collect();
    Reply::Int(ctx.state.latency_monitor.reset(&names) as i64)
}

fn latency_graph(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let name = lossy(&a[2]);
    match ctx.state.latency_monitor.graph(&name) {
        Some(g) => Reply::Verbatim(Bytes::from(g)),
        None => Reply::error(format!("ERR No samples available for event '{name}'")),
    }
}

/// LATENCY HISTOGRAM [command ...]: per command (subcommands by their full name) that ran,
/// its calls and the cumulative count per bucket (upper bounds in µs; the engine's buckets are
/// powers of four, Redis's powers of two). A container named alone stands for its
/// subcommands; unknown names are skipped, as in Redis.
fn latency_histogram(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let stats = &ctx.state.stats.commands;
    let mut wanted: Vec<&'static str> = Vec::new();
    let mut push = |spec: &'static CommandSpec, parent: Option<&'static CommandSpec>| {
        let name = if parent.is_some() {
            crate::engine::acl::full_name(spec)
        } else {
            spec.name
        };
        if !wanted.contains(&name) {
            wanted.push(name);
        }
    };
    if a.len() == 2 {
        for c in super::all_commands() {
            push(c, None);
            for s in c.subcommands {
                push(s, Some(c));
            }
        }
    } else {
        for n in &a[2..] {
            match lookup_full_name(n) {
                Some((c, Some(p))) => push(c, Some(p)),
                Some((c, None)) if !c.subcommands.is_empty() => {
                    for s in c.subcommands {
                        push(s, Some(c));
                    }
                }
                Some((c, None)) => push(c, None),
                None => {}
            }
        }
    }
    let mut out = Vec::new();
    for name in wanted {
        let Some(st) = stats.get(&crate::engine::state::CommandName(name)) else {
            continue;
        };
        if st.calls == 0 {
            continue;
        }
        let mut cumulative = 0;
        let mut buckets = Vec::new();
        for (i, n) in st.hist.iter().enumerate() {
            cumulative += n;
            if *n == 0 {
                continue;
            }
            let bound = if i < crate::engine::latency::FINITE_BUCKETS {
                1i64 << (2 * i)
            } else {
                i64::MAX
            };
            buckets.push((Reply::Int(bound), Reply::Int(cumulative as i64)));
        }
        out.push((
            Reply::bulk(Bytes::from(name)),
            Reply::Map(vec![
                (Reply::bulk_str("calls"), Reply::Int(st.calls as i64)),
                (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    Reply::Map(out)
}

fn latency_doctor(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Verbatim(Bytes::from(ctx.state.latency_monitor.doctor()))
}

fn latency_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "HISTOGRAM [<command> ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram.",
        ],
    )
}
