//! Generators for string commands.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[
    get_set,
    counters,
    multi_key,
    set_variants,
    getex,
    floats,
    ranges,
    lcs,
];

fn get_set(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        0 => Step::exact(&["GET", &key]),
        1 => Step::exact(&["SET", &key, &value(rng)]),
        2 => {
            let opt = *pick(
                rng,
                &[
                    "NX",
                    "XX",
                    "GET",
                    "KEEPTTL",
                    "NX GET",
                    "XX GET",
                    "BOGUS",
                    "EX 100",
                    "PX 0",
                    "EX abc",
                    "EX 100 EX 200",
                    "EX 100 PX 200",
                    "KEEPTTL EX 10",
                    "EX abc NX XX",
                    "PXAT 1",
                    "EXAT 9999999999",
                    "EX 9223372036854775807",
                    "PX",
                    "GET KEEPTTL",
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

fn set_variants(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    let secs = *pick(rng, &["100", "0", "-5", "x", "9223372036854775807"]);
    match rng.gen_range(0..8) {
        0 => Step::exact(&["SETNX", &a, &value(rng)]),
        1 => Step::exact(&["SETEX", &a, secs, &value(rng)]),
        2 => Step::exact(&["PSETEX", &a, secs, &value(rng)]),
        3 => Step::exact(&["GETSET", &a, &value(rng)]),
        4 => Step::exact(&["GETDEL", &a]),
        5 => Step::exact(&["MSETNX", &a, &value(rng), &b, &value(rng)]),
        6 => Step::exact(&["MSETNX", &a, &value(rng), &b]),
        _ => Step::exact(&["APPEND", &a, &value(rng)]),
    }
}

fn getex(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let opt = *pick(
        rng,
        &[
            "",
            "EX 100",
            "PX 100000",
            "EXAT 9999999999",
            "PXAT 1",
            "EXAT 1",
            "PERSIST",
            "EX 0",
            "EX x",
            "PERSIST EX 10",
            "EX 10 PERSIST",
            "KEEPTTL",
            "NX",
            "EX",
            "EX 10 EX 20",
        ],
    );
    let mut args = vec!["GETEX".to_string(), key.clone()];
    args.extend(opt.split(' ').filter(|s| !s.is_empty()).map(String::from));
    match rng.gen_range(0..3) {
        0 => Step::with(Norm::Ttl, &["TTL", &key]),
        _ => Step::exact(&args),
    }
}

fn floats(rng: &mut StdRng, k: &Keys) -> Step {
    let inc = *pick(
        rng,
        &[
            "0.1",
            "1.5",
            "-0.25",
            "3",
            "-2.75",
            "0.2",
            "+1.5",
            ".5",
            "5.0e2",
            "1e400",
            "-1e-3",
            "123456789.123456789",
            "1.000000000000000001",
            "abc",
            "inf",
            "-inf",
            "nan",
            " 1",
            "1x",
            "1e",
            "1e99999",
            "1e-99999",
        ],
    );
    let key = if rng.gen_bool(0.3) {
        "kfloat".to_string()
    } else {
        k.pick(rng)
    };
    Step::exact(&["INCRBYFLOAT", &key, inc])
}

fn ranges(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let idx = |rng: &mut StdRng| {
        pick(
            rng,
            &[
                "0",
                "1",
                "3",
                "-1",
                "-3",
                "100",
                "-100",
                "x",
                "9223372036854775807",
            ],
        )
        .to_string()
    };
    let (s, e) = (idx(rng), idx(rng));
    match rng.gen_range(0..6) {
        0 => Step::exact(&["GETRANGE", &key, &s, &e]),
        1 => Step::exact(&["SUBSTR", &key, &s, &e]),
        2 => Step::exact(&["STRLEN", &key]),
        3 => {
            let off = *pick(rng, &["0", "2", "10", "-1", "x", "536870912", "536870911"]);
            let v = pick(rng, &["", "ab", "xyz"]).to_string();
            Step::exact(&["SETRANGE", &key, off, &v])
        }
        4 => Step::exact(&["SETRANGE", &key, "3", &value(rng)]),
        _ => Step::exact(&["GET", &key]),
    }
}

fn lcs(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    let words = ["ohmytext", "mynewtext", "abcabcab", "bcaxbca", "aaaa", ""];
    let opts = *pick(
        rng,
        &[
            "",
            "LEN",
            "IDX",
            "IDX WITHMATCHLEN",
            "IDX MINMATCHLEN 2",
            "IDX MINMATCHLEN 2 WITHMATCHLEN",
            "IDX MINMATCHLEN x",
            "LEN IDX",
            "BOGUS",
            "MINMATCHLEN",
        ],
    );
    match rng.gen_range(0..4) {
        0 => Step::exact(&["SET", &a, *pick(rng, &words[..])]),
        _ => {
            let mut args = vec!["LCS".to_string(), a, b];
            args.extend(opts.split(' ').filter(|s| !s.is_empty()).map(String::from));
            Step::exact(&args)
        }
    }
}
