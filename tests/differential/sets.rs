//! Generators for set commands. Pool keys get every command; the dedicated key `sint` only ever
//! holds a few integers, so it stays an intset in Redis and its ordered replies (SMEMBERS,
//! SSCAN) are compared exactly. SPOP is only used in forms that pop the whole set, so both
//! datasets stay identical.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[writes, reads, algebra, random_and_scan, int_set];

fn member(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 | 1 => rng.gen_range(-5..20).to_string(),
        2 => "x".repeat(rng.gen_range(1..70)),
        _ => format!("m{}", rng.gen_range(0..10)),
    }
}

fn writes(rng: &mut StdRng, k: &Keys) -> Step {
    let (key, other) = (k.pick(rng), k.pick(rng));
    let (m1, m2) = (member(rng), member(rng));
    match rng.gen_range(0..6) {
        0 | 1 => Step::exact(&["SADD", &key, &m1, &m2]),
        2 => Step::exact(&["SREM", &key, &m1, &m2]),
        3 => Step::exact(&["SMOVE", &key, &other, &m1]),
        4 => Step::with(Norm::Unordered, &["SPOP", &key, "1000"]),
        _ => {
            let count = *pick(rng, &["-1", "x", "0", "1000 1"]);
            let mut args = vec!["SPOP".to_string(), key];
            args.extend(count.split(' ').map(String::from));
            Step::with(Norm::Unordered, &args)
        }
    }
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (m1, m2) = (member(rng), member(rng));
    match rng.gen_range(0..5) {
        0 => Step::exact(&["SCARD", &key]),
        1 => Step::exact(&["SISMEMBER", &key, &m1]),
        2 => Step::exact(&["SMISMEMBER", &key, &m1, &m2]),
        3 => Step::with(Norm::Unordered, &["SMEMBERS", &key]),
        _ => Step::exact(&["SISMEMBER", &key]),
    }
}

fn algebra(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b, c) = (k.pick(rng), k.pick(rng), k.pick(rng));
    match rng.gen_range(0..9) {
        0 => Step::with(Norm::Unordered, &["SINTER", &a, &b]),
        1 => Step::with(Norm::Unordered, &["SUNION", &a, &b, "nokey"]),
        2 => Step::with(Norm::Unordered, &["SDIFF", &a, &b, &c]),
        3 => Step::exact(&["SINTERSTORE", &c, &a, &b]),
        4 => Step::exact(&["SUNIONSTORE", &c, &a, &b]),
        5 => Step::exact(&["SDIFFSTORE", &c, &a, &b]),
        6 => Step::exact(&["SINTERCARD", "2", &a, &b]),
        7 => {
            let limit = *pick(rng, &["0", "1", "-1", "x"]);
            Step::exact(&["SINTERCARD", "2", &a, &b, "LIMIT", limit])
        }
        _ => {
            let n = *pick(rng, &["0", "x", "5", "1"]);
            Step::exact(&["SINTERCARD", n, &a, "BOGUS"])
        }
    }
}

fn random_and_scan(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        0 => Step::with(Norm::Shape, &["SRANDMEMBER", &key]),
        1 => Step::with(Norm::Unordered, &["SRANDMEMBER", &key, "1000"]),
        2 => Step::with(Norm::Shape, &["SRANDMEMBER", &key, "-3"]),
        3 => Step::exact(&["SRANDMEMBER", &key, "x"]),
        4 => Step::with(Norm::Shape, &["SSCAN", &key, "0", "COUNT", "3"]),
        _ => Step::with(
            Norm::Shape,
            &["SSCAN", &key, "0", "MATCH", "m*", "COUNT", "0"],
        ),
    }
}

fn int_set(rng: &mut StdRng, _k: &Keys) -> Step {
    let m = rng.gen_range(-20..20).to_string();
    match rng.gen_range(0..7) {
        0 | 1 => Step::exact(&["SADD", "sint", &m]),
        2 => Step::exact(&["SREM", "sint", &m]),
        3 => Step::exact(&["SMEMBERS", "sint"]),
        4 => Step::exact(&["SSCAN", "sint", "0", "MATCH", "1*"]),
        5 => Step::exact(&["SRANDMEMBER", "sint", "100"]),
        _ => Step::exact(&["SUNION", "sint", "nokey"]),
    }
}
