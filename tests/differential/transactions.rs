//! Generators for transactions. The harness sends one command per step, so a transaction is
//! built from consecutive steps: MULTI, whatever the other generators emit (queued, +QUEUED or
//! a queueing error), then EXEC or DISCARD. WATCH is invalidated by this same client's writes
//! and by FLUSHDB, which is as Redis behaves too. Queueing errors (unknown command, wrong arity)
//! make EXEC answer EXECABORT; runtime errors (WRONGTYPE, not an integer) do not abort the rest.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Step};

pub const GENERATORS: &[Generator] = &[control, control, watch, queued_data];

/// MULTI / EXEC / DISCARD, valid and with errors.
fn control(rng: &mut StdRng, _k: &Keys) -> Step {
    match rng.gen_range(0..12) {
        0..=3 => Step::exact(&["MULTI"]),
        4..=7 => Step::exact(&["EXEC"]),
        8 | 9 => Step::exact(&["DISCARD"]),
        10 => Step::exact(&["MULTI", "extra"]),
        _ => Step::exact(&["EXEC", "extra"]),
    }
}

fn watch(rng: &mut StdRng, k: &Keys) -> Step {
    match rng.gen_range(0..8) {
        0..=3 => {
            let mut args = vec!["WATCH".to_string()];
            for _ in 0..rng.gen_range(1..3) {
                args.push(k.pick(rng));
            }
            Step::exact(&args)
        }
        4 | 5 => Step::exact(&["UNWATCH"]),
        6 => Step::exact(&["WATCH"]),
        _ => Step::exact(&["FLUSHDB"]),
    }
}

/// Data commands with deterministic replies, plus queueing and runtime errors.
fn queued_data(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..10) {
        0 => Step::exact(&["SET", &key, &value(rng)]),
        1 => Step::exact(&["GET", &key]),
        2 => Step::exact(&["INCR", &key]),
        3 => Step::exact(&["RPUSH", &key, &value(rng)]),
        4 => Step::exact(&["LPOP", &key]),
        5 => Step::exact(&["BLPOP", &key, "0.01"]),
        6 => Step::exact(&["NOSUCHCOMMAND", &key]),
        7 => Step::exact(&["GET"]),
        8 => Step::exact(&["DEL", &key]),
        _ => {
            let db = *pick(rng, &["0", "1", "0", "99"]);
            Step::exact(&["SELECT", db])
        }
    }
}
