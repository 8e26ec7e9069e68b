//! Generators for generic key commands.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[basics, expiry];

fn basics(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..5) {
        0 => Step::exact(&["DEL", &a, &b]),
        1 => Step::exact(&["EXISTS", &a, &b, &a]),
        2 => Step::exact(&["TYPE", &a]),
        3 => Step::exact(&["UNLINK", &a]),
        _ => Step::exact(&["DBSIZE"]),
    }
}

fn expiry(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let secs = pick(rng, &["100", "1000", "-1", "0", "abc"]).to_string();
    let flag = pick(rng, &["", "NX", "XX", "GT", "LT", "NX XX", "GT LT", "BAD"]).to_string();
    match rng.gen_range(0..5) {
        0 | 1 => {
            let mut args = vec![pick(rng, &["EXPIRE", "PEXPIRE"]).to_string(), key, secs];
            args.extend(flag.split(' ').filter(|s| !s.is_empty()).map(String::from));
            Step::with(Norm::Exact, &args)
        }
        2 => Step::with(Norm::Ttl, &["TTL", &key]),
        3 => Step::with(Norm::Shape, &["PTTL", &key]),
        _ => Step::exact(&["PERSIST", &key]),
    }
}
