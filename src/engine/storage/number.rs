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

/// Parse a float like Redis's `string2d`/`getDoubleFromObject`: strtod semantics (leading
/// space rejected, "inf"/"-inf"/"+inf" accepted, NaN rejected, trailing garbage rejected).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s.len() > 5120 {
        return None;
    }
    let t = std::str::from_utf8(s).ok()?;
    let lower = t.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts forms strtod rejects ("1_000" no; "nan" yes, which we refuse below) and
            // strtod accepts hex floats Rust rejects; Redis users do not rely on hex floats.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            t.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}
