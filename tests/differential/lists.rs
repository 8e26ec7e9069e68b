//! Generators for list commands: pushes and pops (with counts), ranges and indexes, LSET,
//! LINSERT, LREM, LTRIM, LPOS options, LMOVE/RPOPLPUSH/LMPOP, and the blocking forms either
//! with data present or with a 10 ms timeout (never a forever block). Error paths included.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Step};

pub const GENERATORS: &[Generator] = &[
    pushes, pushes, pops, reads, edits, lpos, moves, mpop, blocking, other_type,
];

/// Now and then a string on the shared keys, so list commands meet WRONGTYPE.
fn other_type(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    if rng.gen_bool(0.2) {
        Step::exact(&["SET", &key, "s"])
    } else {
        Step::exact(&["LLEN", &key])
    }
}

/// List elements: a small alphabet so LREM, LPOS and LINSERT find matches.
fn elem(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => String::new(),
        1 => "x".repeat(rng.gen_range(20..40)),
        _ => format!("e{}", rng.gen_range(0..5)),
    }
}

fn index(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "0",
            "1",
            "2",
            "-1",
            "-2",
            "5",
            "-10",
            "100",
            "x",
            "1.5",
            "9223372036854775807",
            "-9223372036854775808",
        ],
    )
    .to_string()
}

const ENDS: [&str; 5] = ["LEFT", "RIGHT", "left", "right", "MIDDLE"];

fn end(rng: &mut StdRng) -> &'static str {
    let end: &&'static str = pick(rng, &ENDS);
    end
}

fn pushes(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let cmd = *pick(rng, &["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]);
    let mut args = vec![cmd.to_string(), key];
    for _ in 0..rng.gen_range(0..5) {
        args.push(elem(rng));
    }
    Step::exact(&args)
}

fn pops(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let cmd = *pick(rng, &["LPOP", "RPOP"]);
    match rng.gen_range(0..4) {
        0 => Step::exact(&[cmd, &key]),
        1 => Step::exact(&[cmd, &key, "1", "2"]),
        _ => {
            let n = *pick(rng, &["0", "1", "2", "10", "-1", "x"]);
            Step::exact(&[cmd, &key, n])
        }
    }
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..4) {
        0 => Step::exact(&["LLEN", &key]),
        1 => Step::exact(&["LINDEX", &key, &index(rng)]),
        _ => Step::exact(&["LRANGE", &key, &index(rng), &index(rng)]),
    }
}

fn edits(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..5) {
        0 => Step::exact(&["LSET", &key, &index(rng), &elem(rng)]),
        1 => {
            let place = *pick(rng, &["BEFORE", "AFTER", "after", "NEAR"]);
            Step::exact(&["LINSERT", &key, place, &elem(rng), &elem(rng)])
        }
        2 => {
            let count = *pick(rng, &["0", "1", "-1", "2", "-2", "x"]);
            Step::exact(&["LREM", &key, count, &elem(rng)])
        }
        _ => Step::exact(&["LTRIM", &key, &index(rng), &index(rng)]),
    }
}

fn lpos(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let mut args = vec!["LPOS".to_string(), key, elem(rng)];
    for _ in 0..rng.gen_range(0..3) {
        let opt = *pick(rng, &["RANK", "COUNT", "MAXLEN", "BOGUS"]);
        args.push(opt.to_string());
        if rng.gen_bool(0.95) {
            let v = *pick(
                rng,
                &["0", "1", "2", "-1", "-2", "3", "x", "-9223372036854775808"],
            );
            args.push(v.to_string());
        }
    }
    Step::exact(&args)
}

fn moves(rng: &mut StdRng, k: &Keys) -> Step {
    let (src, dst) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..3) {
        0 => Step::exact(&["RPOPLPUSH", &src, &dst]),
        _ => Step::exact(&["LMOVE", &src, &dst, end(rng), end(rng)]),
    }
}

fn mpop_tail(rng: &mut StdRng, k: &Keys, args: &mut Vec<String>) {
    let n = rng.gen_range(1..4);
    let numkeys = match rng.gen_range(0..10) {
        0 => "0".to_string(),
        1 => "x".to_string(),
        2 => (n + 1).to_string(),
        _ => n.to_string(),
    };
    args.push(numkeys);
    for _ in 0..n {
        args.push(k.pick(rng));
    }
    args.push(end(rng).to_string());
    match rng.gen_range(0..6) {
        0 | 1 => {}
        2 => args.extend(["COUNT".to_string(), "0".to_string()]),
        3 => args.push("COUNT".to_string()),
        _ => args.extend([
            "COUNT".to_string(),
            pick(rng, &["1", "2", "5", "-1"]).to_string(),
        ]),
    }
}

fn mpop(rng: &mut StdRng, k: &Keys) -> Step {
    let mut args = vec!["LMPOP".to_string()];
    mpop_tail(rng, k, &mut args);
    Step::exact(&args)
}

/// Blocking forms: with a 10 ms timeout the reply is either data (when present) or the
/// timeout reply; invalid timeouts exercise the parser.
fn blocking(rng: &mut StdRng, k: &Keys) -> Step {
    let timeout = *pick(
        rng,
        &[
            "0.01", "0.01", "0.01", "0.01", "-1", "x", "inf", "", "1e400",
        ],
    );
    let (a, b) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..5) {
        0 => Step::exact(&["BLPOP", &a, &b, timeout]),
        1 => Step::exact(&["BRPOP", &a, timeout]),
        2 => Step::exact(&["BRPOPLPUSH", &a, &b, timeout]),
        3 => Step::exact(&["BLMOVE", &a, &b, end(rng), end(rng), timeout]),
        _ => {
            let mut args = vec!["BLMPOP".to_string(), timeout.to_string()];
            mpop_tail(rng, k, &mut args);
            Step::exact(&args)
        }
    }
}
