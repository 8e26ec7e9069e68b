//! Generators for HyperLogLog commands. Replies and, through the final dataset comparison, the
//! HLL string bytes must equal redis-server's, sparse and dense.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{Generator, Keys, Step};

pub const GENERATORS: &[Generator] = &[pfadd, pfcount_merge, pfdebug];

/// Elements from a bounded universe, so repeated adds also hit "no register changed".
fn elements(rng: &mut StdRng, n: usize) -> Vec<String> {
    let universe = *[50u32, 1000, 100_000]
        .get(rng.gen_range(0..3))
        .unwrap_or(&50);
    (0..n)
        .map(|_| format!("e{}", rng.gen_range(0..universe)))
        .collect()
}

fn pfadd(rng: &mut StdRng, k: &Keys) -> Step {
    // Mostly HLL-only keys (so they grow to dense), sometimes the shared pool (WRONGTYPE).
    let key = if rng.gen_bool(0.8) {
        format!("hll{}", rng.gen_range(0..3))
    } else {
        k.pick(rng)
    };
    let n = match rng.gen_range(0..4) {
        0 => 0,
        1 => rng.gen_range(1..4),
        2 => rng.gen_range(4..40),
        _ => rng.gen_range(40..400),
    };
    let mut args = vec!["PFADD".to_string(), key];
    args.extend(elements(rng, n));
    Step::exact(&args)
}

fn pfcount_merge(rng: &mut StdRng, k: &Keys) -> Step {
    let h = |rng: &mut StdRng| format!("hll{}", rng.gen_range(0..4));
    let (a, b) = (h(rng), h(rng));
    match rng.gen_range(0..7) {
        0 | 1 => Step::exact(&["PFCOUNT", &a]),
        2 => Step::exact(&["PFCOUNT", &a, &b, "nokey"]),
        3 => Step::exact(&["PFCOUNT", &k.pick(rng)]),
        4 => Step::exact(&["PFMERGE", &a, &b]),
        5 => Step::exact(&["PFMERGE", &h(rng), &a, &k.pick(rng)]),
        _ => Step::exact(&["GET", &a]),
    }
}

fn pfdebug(rng: &mut StdRng, k: &Keys) -> Step {
    let key = if rng.gen_bool(0.8) {
        format!("hll{}", rng.gen_range(0..4))
    } else {
        k.pick(rng)
    };
    let sub = *crate::harness::pick(rng, &["DECODE", "ENCODING", "TODENSE", "GETREG", "bogus"]);
    // GETREG converts to dense; keep it rare so sparse HLLs stay common.
    if sub == "GETREG" && rng.gen_bool(0.8) {
        return Step::exact(&["PFDEBUG", "ENCODING", &key]);
    }
    Step::exact(&["PFDEBUG", sub, &key])
}
