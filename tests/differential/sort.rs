//! Generators for SORT and SORT_RO: lists, sets and sorted sets of numbers and words, weights
//! in strings (`w_<member>`) and hash fields (`h_<member>` → `f`), every option, STORE. Replies
//! are compared exactly where Redis's order is defined: numeric sorts break ties on the
//! element's bytes. Two orders are not: `BY nosort` on a set (the set's own order), and ALPHA
//! with BY, where equal or missing weights compare equal and the order is then the sort
//! algorithm's over the source's order (a set's differs between the two servers). Those
//! replies are compared unordered, and STORE never uses ALPHA with BY.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Norm, Step};

pub const GENERATORS: &[Generator] = &[fill, weights, sorts, stores];

fn member(rng: &mut StdRng) -> String {
    match rng.gen_range(0..5) {
        0 | 1 => rng.gen_range(-5..30).to_string(),
        2 => format!("{}.5", rng.gen_range(-3..10)),
        _ => format!("m{}", rng.gen_range(0..8)),
    }
}

fn number(rng: &mut StdRng) -> String {
    rng.gen_range(-5..30).to_string()
}

fn fill(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (m1, m2, n1, n2) = (member(rng), member(rng), number(rng), number(rng));
    match rng.gen_range(0..5) {
        0 => Step::exact(&["RPUSH", &key, &m1, &m2]),
        1 => Step::exact(&["RPUSH", &key, &n1, &n2]),
        2 => Step::exact(&["SADD", &key, &m1, &n1]),
        3 => Step::exact(&["ZADD", &key, &n1, &m1, &n2, &m2]),
        _ => Step::exact(&["DEL", &key]),
    }
}

fn weights(rng: &mut StdRng, _k: &Keys) -> Step {
    let m = member(rng);
    let w = match rng.gen_range(0..4) {
        0 => "x".to_string(),
        _ => number(rng),
    };
    match rng.gen_range(0..3) {
        0 => Step::exact(&["SET", &format!("w_{m}"), &w]),
        1 => Step::exact(&["HSET", &format!("h_{m}"), "f", &w]),
        _ => Step::exact(&["DEL", &format!("w_{m}")]),
    }
}

/// SORT's options in a random combination (with the arguments they take), and whether the
/// reply's order is undefined (see the module comment). ALPHA with BY never takes LIMIT: with
/// ties Redis's partial quicksort picks *which* elements fall in the window by its own order;
/// neither does `BY nosort`, whose window is cut from a set's own order.
fn options(rng: &mut StdRng, alpha_by: bool) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let by = rng
        .gen_bool(0.4)
        .then(|| *pick(rng, &["w_*", "h_*->f", "nosort", "w_*->", "missing_*"]));
    let alpha = rng.gen_bool(0.5) && (alpha_by || by.is_none());
    // `BY nosort` on a set: the set's own order, which LIMIT would cut differently too.
    let tie_order_undefined = alpha && by.is_some_and(|b| b != "nosort") || by == Some("nosort");
    if let Some(by) = by {
        out.extend(["BY".to_string(), by.to_string()]);
    }
    if rng.gen_bool(0.3) && !tie_order_undefined {
        out.push("LIMIT".into());
        out.push(rng.gen_range(-2..6).to_string());
        out.push(rng.gen_range(-2..6).to_string());
    }
    for _ in 0..rng.gen_range(0..3) {
        out.push("GET".into());
        out.push(pick(rng, &["#", "w_*", "h_*->f", "nothing"]).to_string());
    }
    if rng.gen_bool(0.5) {
        out.push(pick(rng, &["ASC", "DESC"]).to_string());
    }
    if alpha {
        out.push("ALPHA".into());
    }
    (out, tie_order_undefined)
}

fn sorts(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (opts, unordered) = options(rng, true);
    let cmd = if rng.gen_bool(0.5) { "SORT" } else { "SORT_RO" };
    let mut args = vec![cmd.to_string(), key];
    args.extend(opts);
    if rng.gen_range(0..20) == 0 {
        args.push("BOGUS".into());
    }
    if unordered {
        Step::with(Norm::Unordered, &args)
    } else {
        Step::exact(&args)
    }
}

fn stores(rng: &mut StdRng, k: &Keys) -> Step {
    let (key, dst) = (k.pick(rng), k.pick(rng));
    // STORE only where the order is defined: the stored list is compared exactly.
    let (opts, _) = options(rng, false);
    let mut args = vec!["SORT".to_string(), key];
    args.extend(opts);
    args.extend(["STORE".to_string(), dst]);
    Step::exact(&args)
}
