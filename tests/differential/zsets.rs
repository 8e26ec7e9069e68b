//! Generators for sorted set commands. Everything on pool keys is deterministic except
//! ZRANDMEMBER (compared by shape). Lexicographic ranges are only meaningful when all scores
//! are equal, so the valid ones run on the dedicated key `zlex` (score 0 only); pool keys get
//! the invalid forms (errors, WRONGTYPE).

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[
    adds,
    reads,
    ranges,
    removals,
    pops,
    algebra,
    random_and_scan,
    lex,
];

fn member(rng: &mut StdRng) -> String {
    format!("m{}", rng.gen_range(0..12))
}

fn score(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "1", "2", "-1", "0", "-0", "1.5", "0.1", "3e2", "-inf", "+inf", "inf", "10", "7",
            "nan", "abc", "2.5", "1e400", "1e-400", "0e3",
        ],
    )
    .to_string()
}

fn bound(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "-inf", "+inf", "0", "1", "(1", "2", "(2.5", "-1", "(0", "10", "x", "(", "300",
        ],
    )
    .to_string()
}

fn rank(rng: &mut StdRng) -> String {
    pick(rng, &["0", "1", "-1", "-2", "2", "5", "100", "-100", "x"]).to_string()
}

fn adds(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let flags = *pick(
        rng,
        &[
            "",
            "NX",
            "XX",
            "GT",
            "LT",
            "CH",
            "INCR",
            "XX CH",
            "GT CH",
            "LT INCR",
            "NX INCR",
            "NX XX",
            "GT LT",
            "NX GT",
            "INCR GT CH",
            "XX INCR",
        ],
    );
    let mut args = vec!["ZADD".to_string(), key.clone()];
    args.extend(flags.split(' ').filter(|s| !s.is_empty()).map(String::from));
    match rng.gen_range(0..6) {
        0 => {
            args.push(score(rng));
            args.push(member(rng));
            args.push(score(rng));
            args.push(member(rng));
        }
        1 => {
            args.push(score(rng));
        }
        2 => return Step::exact(&["ZINCRBY", &key, &score(rng), &member(rng)]),
        _ => {
            args.push(score(rng));
            args.push(member(rng));
        }
    }
    Step::exact(&args)
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (m1, m2) = (member(rng), member(rng));
    match rng.gen_range(0..7) {
        0 => Step::exact(&["ZCARD", &key]),
        1 => Step::exact(&["ZSCORE", &key, &m1]),
        2 => Step::exact(&["ZMSCORE", &key, &m1, &m2]),
        3 => Step::exact(&["ZRANK", &key, &m1]),
        4 => Step::exact(&["ZREVRANK", &key, &m1]),
        5 => Step::exact(&["ZCOUNT", &key, &bound(rng), &bound(rng)]),
        _ => Step::exact(&["ZLEXCOUNT", &key, "a", "[b"]),
    }
}

fn ranges(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let opts = *pick(
        rng,
        &[
            "",
            "WITHSCORES",
            "REV",
            "REV WITHSCORES",
            "BYSCORE",
            "BYSCORE WITHSCORES",
            "BYSCORE REV",
            "BYSCORE LIMIT 1 2",
            "BYSCORE REV LIMIT 0 1 WITHSCORES",
            "BYSCORE LIMIT -1 2",
            "BYSCORE LIMIT 1 -1",
            "BYSCORE LIMIT 0 x",
            "LIMIT 0 1",
            "LIMIT 0 -1",
            "REV REV",
            "BYLEX",
            "BYSCORE BYLEX",
            "BOGUS",
        ],
    );
    let split = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let by_score = opts.contains("BYSCORE");
    let (min, max) = if by_score {
        (bound(rng), bound(rng))
    } else {
        (rank(rng), rank(rng))
    };
    match rng.gen_range(0..7) {
        0 | 1 => {
            let mut args = vec!["ZRANGE".to_string(), key, min, max];
            args.extend(split(opts));
            Step::exact(&args)
        }
        2 => {
            let dst = format!("k{}", rng.gen_range(0..8));
            let mut args = vec!["ZRANGESTORE".to_string(), dst, key, min, max];
            args.extend(split(opts));
            Step::exact(&args)
        }
        3 => {
            let o = *pick(
                rng,
                &["", "WITHSCORES", "LIMIT 1 1", "LIMIT 0 2 WITHSCORES", "REV"],
            );
            let mut args = vec!["ZRANGEBYSCORE".to_string(), key, bound(rng), bound(rng)];
            args.extend(split(o));
            Step::exact(&args)
        }
        4 => {
            let o = *pick(
                rng,
                &["", "WITHSCORES", "LIMIT 1 1", "LIMIT 0 2 WITHSCORES"],
            );
            let mut args = vec!["ZREVRANGEBYSCORE".to_string(), key, bound(rng), bound(rng)];
            args.extend(split(o));
            Step::exact(&args)
        }
        _ => {
            let o = *pick(rng, &["", "WITHSCORES", "LIMIT 0 1"]);
            let mut args = vec!["ZREVRANGE".to_string(), key, rank(rng), rank(rng)];
            args.extend(split(o));
            Step::exact(&args)
        }
    }
}

fn removals(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..5) {
        0 | 1 => Step::exact(&["ZREM", &key, &member(rng), &member(rng)]),
        2 => Step::exact(&["ZREMRANGEBYRANK", &key, &rank(rng), &rank(rng)]),
        3 => Step::exact(&["ZREMRANGEBYSCORE", &key, &bound(rng), &bound(rng)]),
        _ => Step::exact(&["ZREMRANGEBYLEX", &key, "x", "+"]),
    }
}

fn pops(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    let count = *pick(rng, &["1", "2", "0", "-1", "x", "10"]);
    match rng.gen_range(0..8) {
        0 => Step::exact(&["ZPOPMIN", &a]),
        1 => Step::exact(&["ZPOPMAX", &a, count]),
        2 => Step::exact(&["ZPOPMIN", &a, count, "extra"]),
        3 => Step::exact(&["BZPOPMIN", &a, &b, "0.01"]),
        4 => Step::exact(&["BZPOPMAX", &a, "-1"]),
        5 => Step::exact(&["ZMPOP", "2", &a, &b, "MAX", "COUNT", count]),
        6 => {
            let n = *pick(rng, &["1", "0", "3", "x"]);
            Step::exact(&["ZMPOP", n, &a, "MIN"])
        }
        _ => Step::exact(&["BZMPOP", "0.01", "2", &a, &b, "MIN", "COUNT", "2"]),
    }
}

fn algebra(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b, c) = (k.pick(rng), k.pick(rng), k.pick(rng));
    let cmd = *pick(rng, &["ZUNION", "ZINTER", "ZDIFF"]);
    let store = *pick(rng, &["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
    let opts = *pick(
        rng,
        &[
            "",
            "WEIGHTS 2 0.5",
            "WEIGHTS 1 inf",
            "WEIGHTS -1 0",
            "AGGREGATE MIN",
            "AGGREGATE MAX WEIGHTS 3 1",
            "AGGREGATE BOGUS",
            "WEIGHTS x 1",
            "WEIGHTS 1",
            "WITHSCORES",
        ],
    );
    let split = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    match rng.gen_range(0..6) {
        0 | 1 => {
            let mut args = vec![cmd.to_string(), "2".into(), a, b];
            args.extend(split(opts));
            if rng.gen_bool(0.5) {
                args.push("WITHSCORES".into());
            }
            Step::exact(&args)
        }
        2 | 3 => {
            let mut args = vec![store.to_string(), c, "2".into(), a, b];
            args.extend(split(opts));
            Step::exact(&args)
        }
        4 => {
            let limit = *pick(rng, &["", "LIMIT 1", "LIMIT 0", "LIMIT -1"]);
            let mut args = vec!["ZINTERCARD".to_string(), "2".into(), a, b];
            args.extend(split(limit));
            Step::exact(&args)
        }
        _ => {
            let n = *pick(rng, &["0", "x", "3"]);
            Step::exact(&[cmd, n, &a, &b])
        }
    }
}

fn random_and_scan(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        0 => Step::with(Norm::Shape, &["ZRANDMEMBER", &key]),
        1 => Step::with(Norm::Shape, &["ZRANDMEMBER", &key, "-3", "WITHSCORES"]),
        2 => Step::exact(&["ZRANDMEMBER", &key, "100", "WITHSCORES"]),
        3 => Step::exact(&["ZRANDMEMBER", &key, "x"]),
        4 => Step::exact(&["ZSCAN", &key, "0"]),
        _ => Step::exact(&["ZSCAN", &key, "0", "MATCH", "m1*", "COUNT", "2"]),
    }
}

fn lex(rng: &mut StdRng, _k: &Keys) -> Step {
    let lb = |rng: &mut StdRng| -> String {
        pick(rng, &["-", "+", "[a", "(a", "[m3", "(m5", "[z", "bad"]).to_string()
    };
    let m = format!("{}{}", pick(rng, &["a", "m", "z"]), rng.gen_range(0..8));
    match rng.gen_range(0..8) {
        0 | 1 => Step::exact(&["ZADD", "zlex", "0", &m]),
        2 => Step::exact(&["ZRANGEBYLEX", "zlex", &lb(rng), &lb(rng)]),
        3 => Step::exact(&[
            "ZREVRANGEBYLEX",
            "zlex",
            &lb(rng),
            &lb(rng),
            "LIMIT",
            "1",
            "2",
        ]),
        4 => Step::exact(&["ZLEXCOUNT", "zlex", &lb(rng), &lb(rng)]),
        5 => Step::exact(&["ZRANGE", "zlex", &lb(rng), &lb(rng), "BYLEX", "REV"]),
        6 => Step::exact(&["ZREMRANGEBYLEX", "zlex", &lb(rng), &lb(rng)]),
        _ => Step::exact(&["ZRANGEBYLEX", "zlex", "-", "+", "WITHSCORES"]),
    }
}
