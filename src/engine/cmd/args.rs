//! Argument parsing shared by all commands, with Redis's exact rules and error texts. Pure.

use crate::engine::protocol::reply::Reply;

pub const ERR_SYNTAX: &str = "ERR syntax error";
pub const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub const ERR_WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const ERR_NO_SUCH_KEY: &str = "ERR no such key";
pub const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const ERR_DB_RANGE: &str = "ERR DB index is out of range";
pub const ERR_INDEX_RANGE: &str = "ERR index out of range";
pub const ERR_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

pub fn syntax_error() -> Reply {
    Reply::err_static(ERR_SYNTAX)
}
pub fn wrongtype() -> Reply {
    Reply::err_static(ERR_WRONGTYPE)
}
pub fn not_int() -> Reply {
    Reply::err_static(ERR_NOT_INT)
}
pub fn not_float() -> Reply {
    Reply::err_static(ERR_NOT_FLOAT)
}

// The number parsers live in storage (values are parsed from their bytes there too: integer
// encodings, RDB scores); commands use them through here.
pub use crate::engine::storage::number::{parse_f64, parse_i64_strict};

/// Integer argument or Redis's "value is not an integer or out of range" error.
pub fn int_arg(s: &[u8]) -> Result<i64, Reply> {
    parse_i64_strict(s).ok_or_else(not_int)
}

/// Float argument or "value is not a valid float".
pub fn float_arg(s: &[u8]) -> Result<f64, Reply> {
    parse_f64(s).ok_or_else(not_float)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// An owned copy of an argument as a lossy UTF-8 string (for error messages).
pub fn lossy(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Blocking timeout in seconds (a float), as Redis 7.0 parses it for every blocking command
/// (lists, sorted sets, streams): the absolute deadline in ms, or 0 to wait forever. The
/// milliseconds are rounded *up*, so a timeout under 1 ms (`0.0001`) waits 1 ms rather than
/// becoming 0, "forever" (a negative value that rounds up to 0 does mean forever, as in Redis).
/// Values whose milliseconds do not fit a signed 64-bit integer (inf, 1e400) come out negative
/// in Redis's conversion, hence "timeout is negative" for them too.
pub fn blocking_deadline(arg: &[u8], now_ms: i64) -> Result<i64, Reply> {
    let secs = parse_f64(arg)
        .ok_or_else(|| Reply::err_static("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // 2^63 ms: the first value that does not fit Redis's `long long` (NaN fails too).
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(Reply::err_static("ERR timeout is negative"));
    }
    let ms = ms as i64;
    Ok(if ms == 0 {
        0
    } else {
        now_ms.saturating_add(ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(blocking_deadline(b"0", 5), Ok(0));
        assert_eq!(
            blocking_deadline(b"0.0001", 5),
            Ok(6),
            "rounded up, not 0 (forever)"
        );
        assert_eq!(
            blocking_deadline(b"-0.0001", 5),
            Ok(0),
            "rounds up to 0: forever"
        );
        assert_eq!(blocking_deadline(b"1.5", 5), Ok(1_505));
        for bad in [&b"-1"[..], b"inf", b"1e400", b"-inf"] {
            assert_eq!(
                blocking_deadline(bad, 5),
                Err(Reply::err_static("ERR timeout is negative"))
            );
        }
        for bad in [&b"x"[..], b"", b" 1", b"nan"] {
            assert_eq!(
                blocking_deadline(bad, 5),
                Err(Reply::err_static(
                    "ERR timeout is not a float or out of range"
                ))
            );
        }
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-12"), Some(-12));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775808"), None);
        assert_eq!(parse_i64_strict(b"01"), None);
        assert_eq!(parse_i64_strict(b"+1"), None);
        assert_eq!(parse_i64_strict(b" 1"), None);
        assert_eq!(parse_i64_strict(b"-0"), None);
        assert_eq!(parse_i64_strict(b""), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
    }
}
