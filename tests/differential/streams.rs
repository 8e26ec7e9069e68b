//! Generators for the stream commands: XADD with explicit IDs (`*` takes the clock, which the
//! two servers read at different times) and every trimming form, range reads, XREAD without
//! BLOCK, consumer groups (XGROUP, XREADGROUP with `>` and history, XACK, XCLAIM, XAUTOCLAIM,
//! XPENDING), XSETID and XINFO. Replies that carry times (XPENDING's idle, XINFO CONSUMERS,
//! XINFO STREAM FULL's delivery and seen times) are compared by shape; the rest exactly,
//! approximate trimming included (it depends on the node layout the engine keeps like Redis).

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[add, add, reads, groups, group_reads, claims, admin];

fn id(rng: &mut StdRng) -> String {
    let ms = rng.gen_range(0..60);
    match rng.gen_range(0..6) {
        0 => format!("{ms}"),
        1 => format!("{ms}-*"),
        2 => format!("{ms}-{}", rng.gen_range(0..4)),
        _ => format!("{}-{}", rng.gen_range(0..60), rng.gen_range(0..3)),
    }
}

fn bound(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => "-".into(),
        1 => "+".into(),
        2 => format!("({}", rng.gen_range(0..60)),
        3 => format!("({}-{}", rng.gen_range(0..60), rng.gen_range(0..3)),
        _ => format!("{}", rng.gen_range(0..60)),
    }
}

fn group(rng: &mut StdRng) -> String {
    pick(rng, &["g1", "g2"]).to_string()
}

fn consumer(rng: &mut StdRng) -> String {
    pick(rng, &["alice", "bob", "carol"]).to_string()
}

fn add(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let mut args: Vec<String> = vec!["XADD".into(), key];
    if rng.gen_bool(0.1) {
        args.push("NOMKSTREAM".into());
    }
    if rng.gen_bool(0.3) {
        let maxlen = rng.gen_bool(0.6);
        args.push(if maxlen { "MAXLEN" } else { "MINID" }.into());
        let approx = rng.gen_bool(0.5);
        match rng.gen_range(0..3) {
            0 if approx => args.push("~".into()),
            1 => args.push("=".into()),
            _ => {}
        }
        args.push(if maxlen {
            rng.gen_range(0..12).to_string()
        } else {
            format!("{}", rng.gen_range(0..60))
        });
        if approx && args.contains(&"~".to_string()) && rng.gen_bool(0.3) {
            args.push("LIMIT".into());
            args.push(rng.gen_range(0..5).to_string());
        }
    }
    args.push(id(rng));
    for _ in 0..rng.gen_range(1..3) {
        args.push(pick(rng, &["f", "g", "h"]).to_string());
        args.push(value(rng));
    }
    Step::exact(&args)
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (b1, b2) = (bound(rng), bound(rng));
    let count = rng.gen_range(-1..5).to_string();
    match rng.gen_range(0..8) {
        0 => Step::exact(&["XRANGE", &key, &b1, &b2]),
        1 => Step::exact(&["XRANGE", &key, &b1, &b2, "COUNT", &count]),
        2 => Step::exact(&["XREVRANGE", &key, &b1, &b2, "COUNT", &count]),
        3 => Step::exact(&["XLEN", &key]),
        4 => {
            let key2 = k.pick(rng);
            let (i1, i2) = (id(rng).replace("-*", ""), id(rng).replace("-*", ""));
            Step::exact(&["XREAD", "COUNT", &count, "STREAMS", &key, &key2, &i1, &i2])
        }
        5 => Step::exact(&["XDEL", &key, &id(rng).replace("-*", "")]),
        6 => {
            let strategy = pick(rng, &["MAXLEN", "MINID"]);
            let v = if *strategy == "MAXLEN" {
                rng.gen_range(0..10).to_string()
            } else {
                rng.gen_range(0..60).to_string()
            };
            match rng.gen_range(0..3) {
                0 => Step::exact(&["XTRIM", &key, strategy, "~", &v]),
                1 => Step::exact(&["XTRIM", &key, strategy, "~", &v, "LIMIT", "2"]),
                _ => Step::exact(&["XTRIM", &key, strategy, &v]),
            }
        }
        _ => Step::exact(&["TYPE", &key]),
    }
}

fn groups(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let g = group(rng);
    let start = pick(rng, &["0", "$", "5", "30-1"]).to_string();
    match rng.gen_range(0..7) {
        0 => Step::exact(&["XGROUP", "CREATE", &key, &g, &start]),
        1 => Step::exact(&["XGROUP", "CREATE", &key, &g, &start, "MKSTREAM"]),
        2 => Step::exact(&["XGROUP", "SETID", &key, &g, &start]),
        3 => Step::exact(&["XGROUP", "DESTROY", &key, &g]),
        4 => Step::exact(&["XGROUP", "CREATECONSUMER", &key, &g, &consumer(rng)]),
        5 => Step::exact(&["XGROUP", "DELCONSUMER", &key, &g, &consumer(rng)]),
        _ => Step::exact(&["XINFO", "GROUPS", &key]),
    }
}

fn group_reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (g, c) = (group(rng), consumer(rng));
    let count = rng.gen_range(1..4).to_string();
    let from = if rng.gen_bool(0.7) {
        ">".to_string()
    } else {
        "0".to_string()
    };
    match rng.gen_range(0..5) {
        0 => Step::exact(&["XREADGROUP", "GROUP", &g, &c, "STREAMS", &key, &from]),
        1 => Step::exact(&[
            "XREADGROUP",
            "GROUP",
            &g,
            &c,
            "COUNT",
            &count,
            "STREAMS",
            &key,
            &from,
        ]),
        2 => Step::exact(&[
            "XREADGROUP",
            "GROUP",
            &g,
            &c,
            "COUNT",
            &count,
            "NOACK",
            "STREAMS",
            &key,
            ">",
        ]),
        3 => Step::exact(&["XACK", &key, &g, &id(rng).replace("-*", "")]),
        _ => Step::exact(&["XPENDING", &key, &g]),
    }
}

fn claims(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (g, c) = (group(rng), consumer(rng));
    let i = id(rng).replace("-*", "");
    match rng.gen_range(0..6) {
        0 => Step::exact(&["XCLAIM", &key, &g, &c, "0", &i]),
        1 => Step::exact(&["XCLAIM", &key, &g, &c, "0", &i, "JUSTID"]),
        2 => Step::exact(&["XCLAIM", &key, &g, &c, "0", &i, "FORCE", "RETRYCOUNT", "3"]),
        3 => Step::exact(&["XAUTOCLAIM", &key, &g, &c, "0", "0", "COUNT", "2"]),
        4 => Step::exact(&["XAUTOCLAIM", &key, &g, &c, "0", &bound(rng), "JUSTID"]),
        _ => Step::with(Norm::Shape, &["XPENDING", &key, &g, "-", "+", "10"]),
    }
}

fn admin(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        0 => Step::exact(&["XSETID", &key, &format!("{}-5", rng.gen_range(0..80))]),
        1 => Step::with(Norm::Shape, &["XINFO", "STREAM", &key]),
        2 => Step::with(Norm::Shape, &["XINFO", "CONSUMERS", &key, &group(rng)]),
        // Not OBJECT ENCODING: mixed with the other families it would meet strings, whose
        // encodings differ after SETRANGE (docs/compatibility.md).
        3 => Step::exact(&["TYPE", &key]),
        4 => Step::exact(&["DEL", &key]),
        _ => Step::exact(&["EXISTS", &key]),
    }
}
