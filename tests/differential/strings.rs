//! Generators for string commands.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[get_set, counters, multi_key];

fn get_set(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        0 => Step::exact(&["GET", &key]),
        1 => Step::exact(&["SET", &key, &value(rng)]),
        2 => {
            let opt = *pick(
                rng,
                &[
                    "NX", "XX", "GET", "KEEPTTL", "NX GET", "XX GET", "BOGUS", "EX 100", "PX 0",
                    "EX abc",
                ],
            );
            let mut args = vec!["SET".to_string(), key, value(rng)];
            args.extend(opt.split(' ').map(String::from));
            let norm = Norm::Exact;
            Step::with(norm, &args)
        }
        3 => Step::exact(&["SET", &key]),
        _ => Step::exact(&["GET", &key, "extra"]),
    }
}

fn counters(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let n = pick(
        rng,
        &[
            "1",
            "-5",
            "100",
            "9223372036854775807",
            "-9223372036854775808",
            "x",
            "1.5",
            "01",
        ],
    )
    .to_string();
    match rng.gen_range(0..4) {
        0 => Step::exact(&["INCR", &key]),
        1 => Step::exact(&["DECR", &key]),
        2 => Step::exact(&["INCRBY", &key, &n]),
        _ => Step::exact(&["DECRBY", &key, &n]),
    }
}

fn multi_key(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..3) {
        0 => Step::exact(&["MGET", &a, &b, "nokey"]),
        1 => Step::exact(&["MSET", &a, &value(rng), &b, &value(rng)]),
        _ => Step::exact(&["MSET", &a, &value(rng), &b]),
    }
}
