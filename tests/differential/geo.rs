//! Generators for the GEO commands: points in a few clusters (a city, the antimeridian, near
//! the Mercator latitude limit, the southern hemisphere) added with GEOADD's options, then
//! GEOPOS/GEODIST/GEOHASH/ZSCORE and every search form (GEORADIUS[BYMEMBER][_RO], GEOSEARCH,
//! GEOSEARCHSTORE) with random shapes, units, sorts, COUNT [ANY], WITH* and STORE options,
//! plus invalid arguments. Everything is compared exactly: scores, distances and coordinates
//! must be redis-server's to the last digit. Coordinates carry 6 random decimals, so two
//! points at exactly the same distance (where Redis's partial sort could order ties its own
//! way) do not occur.

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::{pick, Generator, Keys, Step};

pub const GENERATORS: &[Generator] = &[fill, reads, searches, searches, stores];

/// Cluster centres: (longitude, latitude, spread in degrees).
const CLUSTERS: &[(f64, f64, f64)] = &[
    (13.361389, 38.115556, 1.5),
    (179.9, 10.0, 0.3),
    (-179.9, -10.0, 0.3),
    (0.0, 84.9, 0.2),
    (-58.38, -34.6, 3.0),
    (0.0, 0.0, 0.01),
];

fn coords(rng: &mut StdRng) -> (String, String) {
    if rng.gen_range(0..30) == 0 {
        // Outside the limits, or not a number.
        return pick(
            rng,
            &[
                ("181".to_string(), "0".to_string()),
                ("0".to_string(), "85.06".to_string()),
                ("x".to_string(), "1".to_string()),
                ("-180".to_string(), "-85.05112878".to_string()),
            ],
        )
        .clone();
    }
    let (lon, lat, spread) = *pick(rng, CLUSTERS);
    let lon = (lon + rng.gen_range(-spread..spread)).clamp(-180.0, 180.0);
    let lat = (lat + rng.gen_range(-spread..spread)).clamp(-85.05, 85.05);
    (format!("{lon:.6}"), format!("{lat:.6}"))
}

fn member(rng: &mut StdRng) -> String {
    format!("p{}", rng.gen_range(0..25))
}

fn unit(rng: &mut StdRng) -> &'static str {
    const UNITS: [&str; 8] = ["m", "km", "KM", "ft", "mi", "m", "km", "furlong"];
    UNITS[rng.gen_range(0..UNITS.len())]
}

fn radius(rng: &mut StdRng) -> String {
    match rng.gen_range(0..12) {
        0 => "0".into(),
        1 => "-1".into(),
        2 => "abc".into(),
        3 => "50000".into(),
        _ => format!("{:.3}", rng.gen_range(0.0..400.0)),
    }
}

fn fill(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let mut args = vec!["GEOADD".to_string(), key.clone()];
    for opt in ["NX", "XX", "CH"] {
        if rng.gen_range(0..6) == 0 {
            args.push(opt.into());
        }
    }
    for _ in 0..rng.gen_range(1..4) {
        let (lon, lat) = coords(rng);
        args.extend([lon, lat, member(rng)]);
    }
    match rng.gen_range(0..14) {
        0 => Step::exact(&["DEL", &key]),
        1 => Step::exact(&["SET", &key, "x"]),
        2 => Step::exact(&["ZREM", &key, &member(rng)]),
        // A score no GEOADD writes (still decodes to some point).
        3 => Step::exact(&[
            "ZADD",
            &key,
            &rng.gen_range(0..(1u64 << 52)).to_string(),
            &member(rng),
        ]),
        4 => Step::exact(&["GEOADD", &key, "1", "2"]),
        _ => Step::exact(&args),
    }
}

fn reads(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let (m1, m2) = (member(rng), member(rng));
    match rng.gen_range(0..6) {
        0 => Step::exact(&["GEOPOS", &key, &m1, &m2, "nosuch"]),
        1 => Step::exact(&["GEODIST", &key, &m1, &m2]),
        2 => Step::exact(&["GEODIST", &key, &m1, &m2, unit(rng)]),
        3 => Step::exact(&["GEOHASH", &key, &m1, &m2]),
        4 => Step::exact(&["ZSCORE", &key, &m1]),
        _ => Step::exact(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
    }
}

/// The options every search takes, in random order and combination.
fn common_options(rng: &mut StdRng, store: bool) -> Vec<String> {
    let mut opts: Vec<Vec<String>> = Vec::new();
    if !store || rng.gen_range(0..10) == 0 {
        for w in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
            if rng.gen_bool(0.4) {
                opts.push(vec![w.into()]);
            }
        }
    }
    if rng.gen_bool(0.5) {
        opts.push(vec![pick(rng, &["ASC", "DESC"]).to_string()]);
    }
    if rng.gen_bool(0.4) {
        let n = match rng.gen_range(0..10) {
            0 => "0".to_string(),
            1 => "-3".to_string(),
            _ => rng.gen_range(1..8).to_string(),
        };
        opts.push(vec!["COUNT".into(), n]);
        if rng.gen_bool(0.3) {
            opts.push(vec!["ANY".into()]);
        }
    } else if rng.gen_range(0..15) == 0 {
        opts.push(vec!["ANY".into()]);
    }
    // Options may come in any order (ANY must not come before COUNT's number, which the
    // grouping keeps).
    let n = opts.len();
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i);
        opts.swap(i, j);
    }
    opts.concat()
}

fn from_and_by(rng: &mut StdRng) -> Vec<String> {
    let mut parts: Vec<Vec<String>> = Vec::new();
    match rng.gen_range(0..12) {
        0 => {}
        1..=5 => parts.push(vec!["FROMMEMBER".into(), member(rng)]),
        _ => {
            let (lon, lat) = coords(rng);
            parts.push(vec!["FROMLONLAT".into(), lon, lat]);
        }
    }
    match rng.gen_range(0..12) {
        0 => {}
        1..=5 => parts.push(vec!["BYRADIUS".into(), radius(rng), unit(rng).into()]),
        _ => parts.push(vec![
            "BYBOX".into(),
            radius(rng),
            radius(rng),
            unit(rng).into(),
        ]),
    }
    if rng.gen_bool(0.5) {
        parts.reverse();
    }
    parts.concat()
}

fn searches(rng: &mut StdRng, k: &Keys) -> Step {
    let key = k.pick(rng);
    let mut args: Vec<String> = match rng.gen_range(0..5) {
        0 | 1 => {
            let mut a = vec!["GEOSEARCH".to_string(), key];
            a.extend(from_and_by(rng));
            a
        }
        2 => {
            let (lon, lat) = coords(rng);
            let cmd = pick(rng, &["GEORADIUS", "GEORADIUS_RO"]).to_string();
            vec![cmd, key, lon, lat, radius(rng), unit(rng).into()]
        }
        _ => {
            let cmd = pick(rng, &["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]).to_string();
            vec![cmd, key, member(rng), radius(rng), unit(rng).into()]
        }
    };
    args.extend(common_options(rng, false));
    if rng.gen_range(0..25) == 0 {
        args.push("BOGUS".into());
    }
    Step::exact(&args)
}

fn stores(rng: &mut StdRng, k: &Keys) -> Step {
    let (key, dst) = (k.pick(rng), k.pick(rng));
    let mut args: Vec<String> = if rng.gen_bool(0.5) {
        let mut a = vec!["GEOSEARCHSTORE".to_string(), dst, key];
        a.extend(from_and_by(rng));
        if rng.gen_bool(0.4) {
            a.push("STOREDIST".into());
        }
        a
    } else {
        let mut a = if rng.gen_bool(0.5) {
            let (lon, lat) = coords(rng);
            vec![
                "GEORADIUS".to_string(),
                key,
                lon,
                lat,
                radius(rng),
                unit(rng).into(),
            ]
        } else {
            vec![
                "GEORADIUSBYMEMBER".to_string(),
                key,
                member(rng),
                radius(rng),
                unit(rng).into(),
            ]
        };
        a.push(pick(rng, &["STORE", "STOREDIST"]).to_string());
        a.push(dst);
        a
    };
    args.extend(common_options(rng, true));
    Step::exact(&args)
}
