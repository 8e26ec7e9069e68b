//! Numbers in Redis's textual forms (`string2ll`, `string2d`): parsing an integer or a float
//! from a value's or an argument's bytes. Pure. In storage, below the command layer, because
//! values are parsed with them too (integer encodings, RDB scores, stream IDs).

/// Parse an integer exactly like Redis's `string2ll`: optional '-', digits, no leading zeros
/// (except "0" itself), no spaces or '+', must fit i64.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s.len() == 1 && s[0] == b'0' {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// An optional sign and 1 to 15 decimal digits (leading zeros allowed), as an exact f64; None
/// for anything else (the general parser decides).
fn small_integer(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    let v = v as f64;
    Some(if neg { -v } else { v })
}

/// Parse a float like Redis's `string2d`/`getDoubleFromObject`: strtod semantics (leading
/// space rejected, "inf"/"-inf"/"+inf" accepted, NaN rejected, trailing garbage rejected).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s.len() > 5120 {
        return None;
    }
    // Most scores are integers: up to 15 digits are exact in an f64, so they are converted
    // without the general parser (the lower-cased copy and the searches below were ~900
    // instructions of a pipelined ZADD). The sign is applied last, so "-0" is -0.0 as strtod
    // gives.
    if let Some(v) = small_integer(s) {
        return Some(v);
    }
    let t = std::str::from_utf8(s).ok()?;
    // Only a letter can make "inf", "infinity" or "nan" (and exponents): no copy without one.
    let v = if s.iter().any(u8::is_ascii_alphabetic) {
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            _ => {
                // Rust accepts forms strtod rejects ("1_000" no; "nan" yes, which we refuse
                // below) and strtod accepts hex floats Rust rejects; Redis users do not rely on
                // hex floats.
                if lower.contains("nan") || lower.contains("inf") {
                    return None;
                }
                t.parse::<f64>().ok()?
            }
        }
    } else {
        t.parse::<f64>().ok()?
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_f64;

    /// What `parse_f64` answered before its integer fast path: the general parser alone.
    fn general(s: &[u8]) -> Option<f64> {
        if s.is_empty() || s[0].is_ascii_whitespace() || s.len() > 5120 {
            return None;
        }
        let t = std::str::from_utf8(s).ok()?;
        let lower = t.to_ascii_lowercase();
        let v = match lower.as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            _ => {
                if lower.contains("nan") || lower.contains("inf") {
                    return None;
                }
                t.parse::<f64>().ok()?
            }
        };
        (!v.is_nan()).then_some(v)
    }

    #[test]
    fn the_integer_fast_path_answers_as_the_general_parser() {
        let mut cases: Vec<Vec<u8>> = [
            "0",
            "-0",
            "+0",
            "+5",
            "-5",
            "000123",
            "-000",
            "123456789012345",
            "-999999999999999",
            "1234567890123456",
            "99999999999999999999",
            "-",
            "+",
            "",
            " 1",
            "1 ",
            "1e5",
            "1E5",
            "1.5",
            ".5",
            "5.",
            "-.5",
            "inf",
            "-inf",
            "+Infinity",
            "nan",
            "-NaN",
            "1a",
            "0x10",
            "1_000",
            "++1",
            "--1",
            "+-1",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // And a spread of integers of every length (a fixed linear congruential sequence).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let digits = (x >> 60) as u32 + 1; // 1..=16
            let v = (x >> 1) % 10u64.pow(digits);
            let sign = ["", "-", "+"][(x % 3) as usize];
            cases.push(format!("{sign}{v}").into_bytes());
        }
        for s in &cases {
            let (fast, slow) = (parse_f64(s), general(s));
            assert_eq!(
                fast.map(f64::to_bits),
                slow.map(f64::to_bits),
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }
}
