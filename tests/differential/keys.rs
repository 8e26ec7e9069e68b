//! Generators for generic key commands.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[
    basics,
    expiry,
    absolute_expiry,
    rename_move_copy,
    databases,
    scan,
    object,
    dump_restore,
];

fn basics(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..8) {
        0 => Step::exact(&["DEL", &a, &b]),
        1 => Step::exact(&["EXISTS", &a, &b, &a]),
        2 => Step::exact(&["TYPE", &a]),
        3 => Step::exact(&["UNLINK", &a]),
        4 => Step::exact(&["TOUCH", &a, &b, "nokey"]),
        5 => Step::exact(&["SET", &a, &value(rng)]),
        6 => Step::with(Norm::Shape, &["RANDOMKEY"]),
        _ => Step::exact(&["DBSIZE"]),
    }
}

fn expiry(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let secs = pick(rng, &["100", "1000", "-1", "0", "abc"]).to_string();
    let flag = pick(rng, &["", "NX", "XX", "GT", "LT", "NX XX", "GT LT", "BAD"]).to_string();
    match rng.gen_range(0..7) {
        0 | 1 => {
            // Relative TTLs stay far above the test's duration (PEXPIRE counts milliseconds),
            // so no key expires on one server and not yet on the other mid-run.
            let cmd = *pick(rng, &["EXPIRE", "PEXPIRE"]);
            let time = if cmd == "PEXPIRE" && secs.parse::<i64>().is_ok_and(|v| v > 0) {
                format!("{secs}000")
            } else {
                secs
            };
            let mut args = vec![cmd.to_string(), key, time];
            args.extend(flag.split(' ').filter(|s| !s.is_empty()).map(String::from));
            Step::with(Norm::Exact, &args)
        }
        2 => Step::with(Norm::Ttl, &["TTL", &key]),
        3 => Step::with(Norm::Shape, &["PTTL", &key]),
        4 => Step::with(Norm::Ttl, &["EXPIRETIME", &key]),
        5 => Step::with(Norm::Shape, &["PEXPIRETIME", &key]),
        _ => Step::exact(&["PERSIST", &key]),
    }
}

/// EXPIREAT / PEXPIREAT with fixed absolute times, so EXPIRETIME replies are exact.
fn absolute_expiry(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let flag = pick(rng, &["", "NX", "XX", "GT", "LT", "NX GT", "BAD"]).to_string();
    let (cmd, at) = match rng.gen_range(0..3) {
        0 => (
            "EXPIREAT",
            pick(
                rng,
                &[
                    "4102444800",
                    "4102444900",
                    "1",
                    "0",
                    "x",
                    "9223372036854775807",
                ],
            ),
        ),
        1 => (
            "PEXPIREAT",
            pick(
                rng,
                &[
                    "4102444800123",
                    "4102444800999",
                    "4102444800500",
                    "1",
                    "-5",
                    "1.5",
                ],
            ),
        ),
        _ => {
            // Other generators set relative TTLs, so the two servers' deadlines differ by the
            // time between their replies.
            return match rng.gen_range(0..2) {
                0 => Step::with(Norm::Ttl, &["EXPIRETIME", &key]),
                _ => Step::with(Norm::Shape, &["PEXPIRETIME", &key]),
            };
        }
    };
    let mut args = vec![cmd.to_string(), key, at.to_string()];
    args.extend(flag.split(' ').filter(|s| !s.is_empty()).map(String::from));
    // A relative TTL set by EXPIRE makes GT/LT comparisons time-dependent only at the edges,
    // which these far-apart constants avoid.
    Step::exact(&args)
}

fn rename_move_copy(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    let db = pick(rng, &["0", "1", "2", "16", "-1", "x", "99999999999"]).to_string();
    match rng.gen_range(0..8) {
        0 => Step::exact(&["RENAME", &a, &b]),
        1 => Step::exact(&["RENAMENX", &a, &b]),
        2 => Step::exact(&["RENAME", "nokey", &b]),
        3 => Step::exact(&["MOVE", &a, &db]),
        4 => Step::exact(&["COPY", &a, &b]),
        5 => Step::exact(&["COPY", &a, &b, "REPLACE"]),
        6 => Step::exact(&["COPY", &a, &b, "DB", &db]),
        _ => {
            let opt = *pick(
                rng,
                &[
                    "DB 1 REPLACE",
                    "REPLACE DB 0",
                    "BOGUS",
                    "DB",
                    "REPLACE REPLACE",
                ],
            );
            let mut args = vec!["COPY".to_string(), a, b];
            args.extend(opt.split(' ').map(String::from));
            Step::exact(&args)
        }
    }
}

fn databases(rng: &mut StdRng, _k: &Keys) -> Step {
    match rng.gen_range(0..4) {
        // Rare: it swaps the whole dataset under comparison.
        0 => Step::exact(&["SWAPDB", "0", *pick(rng, &["1", "2", "0"])]),
        1 => Step::exact(&["SWAPDB", *pick(rng, &["x", "-1", "16", "99999999999"]), "1"]),
        2 => Step::exact(&["SWAPDB", "1", *pick(rng, &["y", "99"])]),
        _ => Step::exact(&["SWAPDB", "1", "2"]),
    }
}

fn scan(rng: &mut StdRng, _k: &Keys) -> Step {
    let filters = *pick(
        rng,
        &[
            "",
            "MATCH k1*",
            "MATCH *[0-3]",
            "TYPE string",
            "TYPE list",
            "TYPE hash",
            "TYPE set",
            "TYPE zset",
            "TYPE bogus",
            "MATCH k* TYPE string",
        ],
    );
    let mut args = vec![
        "SCAN".to_string(),
        "0".into(),
        "COUNT".into(),
        "1000".into(),
    ];
    args.extend(
        filters
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from),
    );
    match rng.gen_range(0..4) {
        0 | 1 => Step::with(Norm::ScanAll, &args),
        // A partial walk: cursors differ between implementations, only the shape compares.
        2 => Step::with(Norm::Shape, &["SCAN", "0", "COUNT", "2"]),
        _ => {
            let bad = *pick(
                rng,
                &[
                    "SCAN x",
                    "SCAN 0 COUNT 0",
                    "SCAN 0 COUNT -1",
                    "SCAN 0 COUNT x",
                    "SCAN 0 MATCH",
                    "SCAN 0 BOGUS 1",
                    "SCAN 18446744073709551616",
                    "SCAN -",
                    "SCAN +",
                ],
            );
            Step::exact(&bad.split(' ').collect::<Vec<_>>())
        }
    }
}

fn object(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..6) {
        // Redis never converts a collection back to its compact encoding; this engine reports
        // by current size, so only the reply kind is compared here (tests/engine_keys.rs checks
        // the encodings themselves).
        0 => Step::with(Norm::Shape, &["OBJECT", "ENCODING", &key]),
        1 => Step::with(Norm::Shape, &["OBJECT", "REFCOUNT", &key]),
        2 => Step::with(Norm::Shape, &["OBJECT", "IDLETIME", &key]),
        3 => Step::exact(&["OBJECT", "FREQ", &key]),
        4 => Step::exact(&["OBJECT", "HELP"]),
        _ => Step::exact(&["OBJECT", *pick(rng, &["BOGUS", "ENCODING"])]),
    }
}

/// Payloads written by redis-server 7.0.15 (string, int, quicklist2, listpack hash, intset,
/// plain set, listpack zset), restored on both sides.
const PAYLOADS: &[&[u8]] = &[
    b"\x00\x05hello\x0a\x00cr\xdfve4\x20\x0a",
    b"\x00\xc0\x2a\x0a\x00\x81\xfb\x5c\xfa\x86cOP",
    b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x01\x01\x81b\x02\xff\x0a\x00\x90C\xa3L\xeb\x8e\x1b\x1c",
    b"\x10\x12\x12\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x81g\x02\x07\x01\xff\x0a\x00g\x0fs\xbad\xa7\xf2\xa2",
    b"\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x2c\x01\x0a\x00\xe5\x10\xb2\x8e\x7b\x95\x29\xaa",
    b"\x02\x02\x01b\x01a\x0a\x00u\xd9\x9d\x83\x5e\xf8\x5fe",
    b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x832\x2e5\x04\xff\x0a\x00\xd4Ln\xa4\xf6D\xd9\xd7",
    // Corrupt: a flipped checksum byte, and a truncated payload.
    b"\x00\x05hello\x0a\x00cr\xdfve4\x20\x0b",
    b"\x00\x05hel",
];

fn dump_restore(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let payload = *pick(rng, PAYLOADS);
    // No small relative TTL: it could expire between the two servers' replies.
    let ttl = *pick(rng, &["0", "100000", "-1", "x"]);
    let opts = *pick(
        rng,
        &[
            "",
            "REPLACE",
            "ABSTTL",
            "REPLACE ABSTTL",
            "IDLETIME 10",
            "FREQ 5",
            "IDLETIME -1",
            "FREQ 256",
            "IDLETIME 1 FREQ 1",
            "REPLACE BOGUS",
            "IDLETIME",
        ],
    );
    match rng.gen_range(0..5) {
        // The bytes differ (the engine writes plain RDB types), so only nil vs bulk compares.
        0 => Step::with(Norm::Shape, &["DUMP", &key]),
        // An absolute TTL in the past: nothing is created (a replaced key is deleted).
        1 => {
            let replace = *pick(rng, &["REPLACE", "ABSTTL"]);
            Step::new(
                &[
                    b"RESTORE",
                    key.as_bytes(),
                    b"1",
                    payload,
                    b"ABSTTL",
                    replace.as_bytes(),
                ],
                Norm::Exact,
            )
        }
        _ => {
            let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), ttl.as_bytes(), payload];
            args.extend(opts.split(' ').filter(|s| !s.is_empty()).map(str::as_bytes));
            Step::new(&args, Norm::Exact)
        }
    }
}
