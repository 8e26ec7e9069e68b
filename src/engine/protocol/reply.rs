//! Replies and their RESP2/RESP3 encoding. Pure, no I/O.
//!
//! Commands build a [`Reply`] tree once; the connection encodes it for the protocol version the
//! client negotiated with HELLO. RESP3-only shapes (maps, sets, doubles, booleans, pushes, null)
//! fall back to the RESP2 shapes Redis itself uses for them, so command code never branches on
//! the protocol version.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::Arg;

/// A reply to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+...`).
    Status(Bytes),
    /// An error; the text carries its code word (`ERR ...`, `WRONGTYPE ...`).
    Error(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// A bulk string short enough to travel inside the reply itself: a value read out of the
    /// dataset (GET, HGET, LPOP ...) is copied here instead of into a new heap allocation that
    /// would be freed right after encoding. Same bytes on the wire as `Bulk`.
    SmallBulk(SmallBulk),
    /// A missing value: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// A missing aggregate: RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; RESP2 flat array of key, value, ...
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; RESP2 array.
    Set(Vec<Reply>),
    /// RESP3 double; RESP2 bulk string formatted like Redis 7.0 (`%.17g`).
    Double(f64),
    /// RESP3 boolean; RESP2 integer 1/0.
    Bool(bool),
    /// RESP3 verbatim string (`=len\r\ntxt:...`); RESP2 bulk string.
    Verbatim(Bytes),
    /// RESP3 push (pub/sub messages); RESP2 array.
    Push(Vec<Reply>),
    /// RESP3 big number (`(digits`); RESP2 bulk string. Only DEBUG PROTOCOL and scripts make one.
    BigNum(Bytes),
    /// RESP3 attributes (`|`) ahead of the reply they describe; RESP2 sends the reply alone.
    /// Only DEBUG PROTOCOL makes one (boxed: it must not make every reply bigger).
    Attribute(Box<(Vec<(Reply, Reply)>, Reply)>),
    /// Bytes already encoded (used to splice replies that are the same in every protocol).
    Raw(Bytes),
    /// Nothing is sent (CLIENT REPLY OFF, blocked commands until they are served).
    NoReply,
}

/// Longest bulk string [`Reply::SmallBulk`] holds (it keeps `Reply` at its size).
pub const SMALL_BULK_CAP: usize = 30;

/// The bytes of a [`Reply::SmallBulk`].
#[derive(Clone, PartialEq, Eq)]
pub struct SmallBulk {
    len: u8,
    buf: [u8; SMALL_BULK_CAP],
}

impl SmallBulk {
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for SmallBulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

impl Reply {
    /// A bulk string copied from `s` (a value that lives on in the dataset): short ones inside
    /// the reply, longer ones in one allocation.
    pub fn bulk_copy(s: &[u8]) -> Reply {
        if s.len() <= SMALL_BULK_CAP {
            let mut buf = [0u8; SMALL_BULK_CAP];
            buf[..s.len()].copy_from_slice(s);
            Reply::SmallBulk(SmallBulk {
                len: s.len() as u8,
                buf,
            })
        } else {
            Reply::Bulk(Bytes::copy_from_slice(s))
        }
    }

    /// A bulk string of a request argument (ECHO, PING, names read back): a long argument's
    /// shared bytes are reused, a short one is copied into the reply.
    pub fn bulk_arg(a: &Arg) -> Reply {
        match a {
            Arg::Shared(b) => Reply::Bulk(b.clone()),
            Arg::Inline { .. } => Reply::bulk_copy(a),
        }
    }

    /// The bytes of a bulk string reply (`Bulk`, `SmallBulk`, `Verbatim`), else None.
    pub fn bulk_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) | Reply::Verbatim(b) => Some(b),
            Reply::SmallBulk(b) => Some(b.as_slice()),
            _ => None,
        }
    }

    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(Bytes::from(msg.into()))
    }
    pub fn err_static(msg: &'static str) -> Reply {
        Reply::Error(Bytes::from_static(msg.as_bytes()))
    }
    pub fn status(s: &'static str) -> Reply {
        Reply::Status(Bytes::from_static(s.as_bytes()))
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    /// Encode for a client speaking RESP `proto` (2 or 3).
    pub fn encode(&self, proto: u8, out: &mut BytesMut) {
        encode(self, proto, out)
    }
}

fn put_line(out: &mut BytesMut, prefix: u8, n: i64) {
    out.put_u8(prefix);
    let mut buf = itoa_buf();
    out.put_slice(fmt_i64(n, &mut buf));
    out.put_slice(b"\r\n");
}

fn itoa_buf() -> itoa::Buffer {
    itoa::Buffer::new()
}

/// Format an i64 into `buf` without allocating; returns the digits. Every reply header and
/// every stream record goes through here, so it uses `itoa` (two digits per step).
pub fn fmt_i64(n: i64, buf: &mut itoa::Buffer) -> &[u8] {
    buf.format(n).as_bytes()
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_line(out, b'$', b.len() as i64);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

fn encode(r: &Reply, proto: u8, out: &mut BytesMut) {
    match r {
        Reply::Ok => out.put_slice(b"+OK\r\n"),
        Reply::Status(s) => {
            out.put_u8(b'+');
            out.put_slice(s);
            out.put_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.put_u8(b'-');
            // Newlines would break the protocol; Redis replaces them with spaces.
            for &c in e.iter() {
                out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
            }
            out.put_slice(b"\r\n");
        }
        Reply::Int(n) => put_line(out, b':', *n),
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::SmallBulk(b) => put_bulk(out, b.as_slice()),
        Reply::Nil => {
            if proto >= 3 {
                out.put_slice(b"_\r\n")
            } else {
                out.put_slice(b"$-1\r\n")
            }
        }
        Reply::NilArray => {
            if proto >= 3 {
                out.put_slice(b"_\r\n")
            } else {
                out.put_slice(b"*-1\r\n")
            }
        }
        Reply::Array(items) => {
            put_line(out, b'*', items.len() as i64);
            for i in items {
                encode(i, proto, out);
            }
        }
        Reply::Map(pairs) => {
            if proto >= 3 {
                put_line(out, b'%', pairs.len() as i64);
            } else {
                put_line(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Set(items) => {
            put_line(
                out,
                if proto >= 3 { b'~' } else { b'*' },
                items.len() as i64,
            );
            for i in items {
                encode(i, proto, out);
            }
        }
        Reply::Push(items) => {
            put_line(
                out,
                if proto >= 3 { b'>' } else { b'*' },
                items.len() as i64,
            );
            for i in items {
                encode(i, proto, out);
            }
        }
        Reply::Double(d) => {
            let s = format_double(*d);
            if proto >= 3 {
                out.put_u8(b',');
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Bool(b) => {
            if proto >= 3 {
                out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Reply::Verbatim(b) => {
            if proto >= 3 {
                put_line(out, b'=', b.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(b);
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, b);
            }
        }
        Reply::BigNum(b) => {
            if proto >= 3 {
                out.put_u8(b'(');
                out.put_slice(b);
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, b);
            }
        }
        Reply::Attribute(a) => {
            let (attrs, reply) = &**a;
            if proto >= 3 {
                put_line(out, b'|', attrs.len() as i64);
                for (k, v) in attrs {
                    encode(k, proto, out);
                    encode(v, proto, out);
                }
            }
            encode(reply, proto, out);
        }
        Reply::Raw(b) => out.put_slice(b),
        Reply::NoReply => {}
    }
}

/// Format a double as Redis 7.0 replies with it: `inf`, `-inf`, `nan`, else C's `%.17g`.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g(d, 17)
}

/// C's `%.{precision}g`.
pub fn format_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let p = precision.max(1);
    // Scientific form with p significant digits tells us the decimal exponent after rounding.
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Format a double the way Redis's INCRBYFLOAT / HINCRBYFLOAT store their result: fixed point,
/// no exponent, trailing zeros removed. Redis computes in `long double`; we use the shortest
/// representation that round-trips an f64, which gives the same text for ordinary values.
pub fn format_float_human(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{}", d);
    if s.contains('e') {
        // Rust prints huge/tiny values with an exponent only via {:e}; `{}` never does, but keep
        // the guard for safety.
        return format!("{:.17}", d)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    if s == "-0" {
        return "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bulk_encodes_like_bulk() {
        for len in [
            0,
            1,
            SMALL_BULK_CAP - 1,
            SMALL_BULK_CAP,
            SMALL_BULK_CAP + 1,
            1000,
        ] {
            let v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let small = Reply::bulk_copy(&v);
            assert_eq!(
                matches!(small, Reply::SmallBulk(_)),
                len <= SMALL_BULK_CAP,
                "{len}"
            );
            assert_eq!(small.bulk_bytes(), Some(&v[..]));
            for proto in [2, 3] {
                let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
                encode(&small, proto, &mut a);
                encode(&Reply::Bulk(Bytes::from(v.clone())), proto, &mut b);
                assert_eq!(a, b);
            }
        }
        assert!(std::mem::size_of::<Reply>() <= 40);
    }

    fn enc(r: Reply, proto: u8) -> Vec<u8> {
        let mut b = BytesMut::new();
        r.encode(proto, &mut b);
        b.to_vec()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        assert_eq!(enc(Reply::Nil, 2), b"$-1\r\n");
        assert_eq!(enc(Reply::Nil, 3), b"_\r\n");
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(enc(m.clone(), 2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(m, 3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(Reply::Double(1.5), 2), b"$3\r\n1.5\r\n");
        assert_eq!(enc(Reply::Double(1.5), 3), b",1.5\r\n");
        assert_eq!(enc(Reply::Int(-42), 2), b":-42\r\n");
        assert_eq!(enc(Reply::error("ERR a\nb"), 2), b"-ERR a b\r\n");
    }

    #[test]
    fn percent_g_matches_c() {
        assert_eq!(format_double(1.1), "1.1000000000000001");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(100.0), "100");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(-2.0), "-2");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(
            format_double(123456789012345678.0),
            "1.2345678901234568e+17"
        );
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
    }

    #[test]
    fn human_floats() {
        assert_eq!(format_float_human(10.6), "10.6");
        assert_eq!(format_float_human(3000.0), "3000");
        assert_eq!(format_float_human(-0.0), "0");
    }
}
