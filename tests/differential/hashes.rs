//! Generators for hash commands. Pool keys get every command (so WRONGTYPE and conversions to
//! a hash table happen); the dedicated key `hsmall` only ever holds short fields and values, so
//! it stays a listpack in Redis and its order-sensitive replies (HGETALL, HKEYS, HSCAN) are
//! compared exactly.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[writes, reads, counters, random_and_scan, small_hash];

fn field(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => "x".repeat(rng.gen_range(60..70)),
        1 => rng.gen_range(0..5).to_string(),
        _ => format!("f{}", rng.gen_range(0..8)),
    }
}

fn writes(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (f1, f2) = (field(rng), field(rng));
    match rng.gen_range(0..7) {
        0 => Step::exact(&["HSET", &key, &f1, &value(rng)]),
        1 => Step::exact(&["HSET", &key, &f1, &value(rng), &f2, &value(rng)]),
        2 => Step::exact(&["HSET", &key, &f1, &value(rng), &f2]),
        3 => Step::exact(&["HMSET", &key, &f1, &value(rng), &f2, &value(rng)]),
        4 => Step::exact(&["HSETNX", &key, &f1, &value(rng)]),
        5 => Step::exact(&["HDEL", &key, &f1, &f2]),
        _ => Step::exact(&["HMSET", &key, &f1]),
    }
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (f1, f2) = (field(rng), field(rng));
    match rng.gen_range(0..9) {
        0 => Step::exact(&["HGET", &key, &f1]),
        1 => Step::exact(&["HMGET", &key, &f1, &f2, "nofield"]),
        2 => Step::exact(&["HLEN", &key]),
        3 => Step::exact(&["HSTRLEN", &key, &f1]),
        4 => Step::exact(&["HEXISTS", &key, &f1]),
        5 => Step::with(Norm::Unordered, &["HKEYS", &key]),
        6 => Step::with(Norm::Unordered, &["HVALS", &key]),
        7 => Step::with(Norm::UnorderedPairs, &["HGETALL", &key]),
        _ => Step::exact(&["HGET", &key]),
    }
}

fn counters(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let f = field(rng);
    let int = *pick(
        rng,
        &[
            "1",
            "-7",
            "100",
            "9223372036854775807",
            "-9223372036854775808",
            "x",
            "1.5",
        ],
    );
    // Redis adds in long double and we in f64: successful additions only happen on the field
    // `fl`, which only ever holds sums of increments exact in binary, so both print the same
    // text. Other fields only get increments that fail.
    let float = *pick(rng, &["0.5", "-1.25", "3", "1e3", "-0.75"]);
    let bad = *pick(rng, &["inf", "nan", "abc", "-inf", ""]);
    match rng.gen_range(0..3) {
        0 => Step::exact(&["HINCRBY", &key, &f, int]),
        1 => Step::exact(&["HINCRBYFLOAT", &key, "fl", float]),
        _ => Step::exact(&["HINCRBYFLOAT", &key, &f, bad]),
    }
}

fn random_and_scan(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let count = *pick(rng, &["1", "3", "-5", "0", "x", "100"]);
    match rng.gen_range(0..6) {
        0 => Step::with(Norm::Shape, &["HRANDFIELD", &key]),
        1 => Step::with(Norm::Shape, &["HRANDFIELD", &key, count]),
        2 => Step::with(Norm::Shape, &["HRANDFIELD", &key, count, "WITHVALUES"]),
        3 => Step::with(Norm::ErrorCode, &["HRANDFIELD", &key, "1", "BOGUS"]),
        4 => Step::with(Norm::Shape, &["HSCAN", &key, "0", "COUNT", count]),
        _ => Step::with(
            Norm::Shape,
            &["HSCAN", &key, "0", "MATCH", "f*", "NOVALUES"],
        ),
    }
}

fn small_hash(rng: &mut StdRng, _k: &Keys) -> Step {
    let f = format!("f{}", rng.gen_range(0..10));
    let v = format!("v{}", rng.gen_range(0..10));
    match rng.gen_range(0..8) {
        0 | 1 => Step::exact(&["HSET", "hsmall", &f, &v]),
        2 => Step::exact(&["HDEL", "hsmall", &f]),
        3 => Step::exact(&["HGETALL", "hsmall"]),
        4 => Step::exact(&["HKEYS", "hsmall"]),
        5 => Step::exact(&["HSCAN", "hsmall", "0", "MATCH", "f[1-5]"]),
        6 => Step::exact(&["HSCAN", "hsmall", "x"]),
        _ => Step::exact(&["HRANDFIELD", "hsmall", "100", "WITHVALUES"]),
    }
}
