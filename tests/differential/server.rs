//! Generators for server and connection commands: the deterministic ones (PING, ECHO, DBSIZE,
//! CONFIG GET of settings both servers share, COMMAND GETKEYS, MEMORY USAGE of missing keys,
//! SLOWLOG/LATENCY shapes) and their error paths (arity, unknown subcommands, bad options).
//! COMMAND COUNT/INFO/DOCS are not comparable (different command sets) and are not generated.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, value, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[
    ping_echo,
    config_get,
    client_errors,
    command_getkeys,
    introspection,
    unknown_subcommands,
];

fn ping_echo(rng: &mut StdRng, _k: &Keys) -> Step {
    match rng.gen_range(0..7) {
        0 => Step::exact(&["PING"]),
        1 => Step::exact(&["PING", &value(rng)]),
        2 => Step::exact(&["PING", "a", "b"]),
        3 => Step::exact(&["ECHO", &value(rng)]),
        4 => Step::exact(&["ECHO"]),
        5 => Step::exact(&["ECHO", "a", "b"]),
        _ => Step::exact(&["DBSIZE"]),
    }
}

fn config_get(rng: &mut StdRng, _k: &Keys) -> Step {
    let key = *pick(
        rng,
        &[
            "maxmemory",
            "maxmemory-policy",
            "timeout",
            "databases",
            "hz",
            "slowlog-max-len",
            "maxclients",
            "proto-max-bulk-len",
            "appendonly",
            "save",
            "no-such-setting",
        ],
    );
    match rng.gen_range(0..5) {
        0 => Step::exact(&["CONFIG", "GET", key]),
        1 => Step::with(Norm::UnorderedPairs, &["CONFIG", "GET", key, "maxmemory"]),
        2 => Step::exact(&["CONFIG", "GET"]),
        3 => Step::exact(&["CONFIG", "SET", "no-such-setting", "1"]),
        _ => Step::exact(&["CONFIG", "SET", "maxmemory"]),
    }
}

fn client_errors(rng: &mut StdRng, _k: &Keys) -> Step {
    let args: &[&str] = match rng.gen_range(0..25) {
        0 => &["CLIENT", "GETNAME"],
        1 => &["CLIENT", "SETNAME", "has space"],
        2 => &["CLIENT", "KILL", "1.2.3.4:5"],
        3 => &["CLIENT", "KILL", "ID", "0"],
        4 => &["CLIENT", "KILL", "ID", "x"],
        5 => &["CLIENT", "KILL", "TYPE", "foo"],
        6 => &["CLIENT", "KILL", "USER", "foo"],
        7 => &["CLIENT", "KILL", "SKIPME", "maybe"],
        8 => &["CLIENT", "KILL", "ID", "999999"],
        9 => &["CLIENT", "KILL", "ID", "1", "ADDR"],
        10 => &["CLIENT", "LIST", "TYPE", "foo"],
        11 => &["CLIENT", "LIST", "ID", "abc"],
        12 => &["CLIENT", "LIST", "foo"],
        13 => &["CLIENT", "PAUSE", "abc"],
        14 => &["CLIENT", "PAUSE", "-1"],
        15 => &["CLIENT", "PAUSE", "10", "foo"],
        16 => &["CLIENT", "NO-EVICT", "maybe"],
        17 => &["CLIENT", "NO-EVICT", "off"],
        18 => &["CLIENT", "REPLY", "foo"],
        19 => &["CLIENT", "SETNAME"],
        20 => &["CLIENT", "SETNAME", "conn-1"],
        21 => &["CLIENT", "SETNAME", ""],
        22 => &["CLIENT", "TRACKING", "off"],
        23 => &["CLIENT", "GETREDIR"],
        // RESET ends a MULTI, unsubscribes and selects db 0: the same on both sides.
        _ => &["RESET"],
    };
    Step::exact(args)
}

fn command_getkeys(rng: &mut StdRng, k: &Keys) -> Step {
    let (a, b) = (k.pick(rng), k.pick(rng));
    match rng.gen_range(0..8) {
        0 => Step::exact(&["COMMAND", "GETKEYS", "GET", &a]),
        1 => Step::exact(&["COMMAND", "GETKEYS", "MSET", &a, "1", &b, "2"]),
        2 => Step::exact(&["COMMAND", "GETKEYS", "SET", &a, "v", "EX", "10"]),
        3 => Step::exact(&["COMMAND", "GETKEYS", "foo", "bar"]),
        4 => Step::exact(&["COMMAND", "GETKEYS", "get", &a, &b]),
        5 => Step::exact(&["COMMAND", "GETKEYS", "ping", "x"]),
        6 => Step::exact(&["COMMAND", "GETKEYS", "set"]),
        _ => Step::exact(&["COMMAND", "GETKEYS", "DEL", &a, &b]),
    }
}

fn introspection(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    match rng.gen_range(0..16) {
        0 => Step::exact(&["MEMORY", "USAGE", "no-such-key"]),
        1 => Step::exact(&["MEMORY", "USAGE", &key, "SAMPLES"]),
        2 => Step::exact(&["MEMORY", "USAGE", &key, "SAMPLES", "-1"]),
        3 => Step::exact(&["MEMORY", "USAGE", &key, "foo"]),
        4 => Step::with(Norm::Shape, &["MEMORY", "USAGE", &key]),
        5 => Step::exact(&["SLOWLOG", "GET", "-2"]),
        6 => Step::exact(&["SLOWLOG", "GET", "x"]),
        7 => Step::exact(&["SLOWLOG", "GET", "1", "2"]),
        8 => Step::exact(&["LATENCY", "LATEST"]),
        9 => Step::exact(&["LATENCY", "HISTORY", "command"]),
        10 => Step::exact(&["LATENCY", "RESET"]),
        11 => Step::with(Norm::Shape, &["LASTSAVE"]),
        12 => Step::with(Norm::Shape, &["TIME"]),
        13 => Step::exact(&["SHUTDOWN", "ABORT"]),
        14 => Step::exact(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        _ => Step::exact(&["DEBUG", "SLEEP", "0"]),
    }
}

fn unknown_subcommands(rng: &mut StdRng, _k: &Keys) -> Step {
    let container = *pick(
        rng,
        &[
            "CLIENT", "CONFIG", "COMMAND", "MEMORY", "SLOWLOG", "LATENCY",
        ],
    );
    match rng.gen_range(0..3) {
        0 => Step::exact(&[container, "BOGUS"]),
        1 if container != "COMMAND" => Step::exact(&[container]),
        _ => Step::exact(&[container, "bogus", "x"]),
    }
}
