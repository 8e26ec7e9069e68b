//! Generators for bitmap commands (on the shared key pool, so they meet every type).

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Step};

pub const GENERATORS: &[Generator] = &[setget, counting, bitops, bitfield];

fn offset(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => pick(
            rng,
            &["-1", "x", "4294967296", "1.5", "01", "9223372036854775807"],
        )
        .to_string(),
        1 => rng.gen_range(0..400).to_string(),
        _ => rng.gen_range(0..40).to_string(),
    }
}

fn setget(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..5) {
        0 | 1 => {
            let bit = *pick(rng, &["0", "1", "1", "2", "-1", "x"]);
            Step::exact(&["SETBIT", &key, &offset(rng), bit])
        }
        2 => Step::exact(&["SETBIT", &key, &rng.gen_range(0..24).to_string(), "1"]),
        _ => Step::exact(&["GETBIT", &key, &offset(rng)]),
    }
}

fn index(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "0",
            "1",
            "2",
            "5",
            "-1",
            "-2",
            "-5",
            "-100",
            "100",
            "13",
            "x",
            "9223372036854775807",
        ],
    )
    .to_string()
}

fn counting(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let unit = *pick(rng, &["BYTE", "BIT", "bit", "BITS"]);
    let bit = *pick(rng, &["0", "1", "1", "0", "2", "x"]);
    let (s, e) = (index(rng), index(rng));
    match rng.gen_range(0..8) {
        0 => Step::exact(&["BITCOUNT", &key]),
        1 => Step::exact(&["BITCOUNT", &key, &s, &e]),
        2 => Step::exact(&["BITCOUNT", &key, &s, &e, unit]),
        3 => Step::exact(&["BITCOUNT", &key, &s]),
        4 => Step::exact(&["BITPOS", &key, bit]),
        5 => Step::exact(&["BITPOS", &key, bit, &s]),
        6 => Step::exact(&["BITPOS", &key, bit, &s, &e]),
        _ => Step::exact(&["BITPOS", &key, bit, &s, &e, unit]),
    }
}

fn bitops(rng: &mut StdRng, k: &Keys) -> Step {
    let (d, a, b) = (k.pick(rng), k.pick(rng), k.pick(rng));
    let op = *pick(rng, &["AND", "OR", "XOR", "NOT", "and", "nand"]);
    match rng.gen_range(0..4) {
        0 => Step::exact(&["BITOP", op, &d, &a]),
        1 => Step::exact(&["BITOP", op, &d, &a, &b]),
        2 => Step::exact(&["BITOP", op, &d, &a, "nokey"]),
        _ => Step::exact(&["BITOP", op, &d, "nokey1", "nokey2"]),
    }
}

fn bitfield(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let mut args = vec![
        if rng.gen_bool(0.2) {
            "BITFIELD_RO"
        } else {
            "BITFIELD"
        }
        .to_string(),
        key,
    ];
    for _ in 0..rng.gen_range(0..4) {
        let ty = pick(
            rng,
            &[
                "u8", "i8", "u1", "i5", "u63", "i64", "u16", "i32", "u64", "x8", "I8", "i0", "i65",
            ],
        )
        .to_string();
        let off = pick(
            rng,
            &[
                "0",
                "3",
                "7",
                "100",
                "#1",
                "#3",
                "-1",
                "#",
                "x",
                "4294967296",
            ],
        )
        .to_string();
        let val = pick(
            rng,
            &[
                "1",
                "-1",
                "100",
                "255",
                "-128",
                "127",
                "300",
                "9223372036854775807",
                "-9223372036854775808",
                "x",
            ],
        )
        .to_string();
        match rng.gen_range(0..7) {
            0 | 1 => args.extend(["GET".to_string(), ty, off]),
            2 => args.extend(["SET".to_string(), ty, off, val]),
            3 | 4 => args.extend(["INCRBY".to_string(), ty, off, val]),
            5 => {
                let ow = *pick(rng, &["WRAP", "SAT", "FAIL", "fail", "BAD"]);
                args.extend(["OVERFLOW".to_string(), ow.to_string()]);
            }
            _ => args.push(pick(rng, &["GET", "OVERFLOW", "SET"]).to_string()),
        }
    }
    Step::exact(&args)
}
