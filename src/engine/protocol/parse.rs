//! Request parsing: RESP multibulk and inline commands from a byte buffer. Pure, no I/O.
//!
//! The parser works in two passes over the bytes already received: it first checks that a whole
//! command is present (so an incomplete command costs nothing but a rescan later), then splits it
//! off the buffer as one frozen `Bytes` and slices the arguments out of it without copying. It
//! never allocates according to a length the peer *declared*: only bytes that actually arrived are
//! stored, so a client announcing a 512 MB bulk cannot make us reserve 512 MB.

use bytes::{Buf, BytesMut};
use thiserror::Error;

use super::arg::{Arg, INLINE};

/// The longest inline request line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// The most arguments one multibulk request may declare (Redis: INT_MAX; we use 1 Mi like the
/// unauthenticated limit times 100 000, which no real client reaches).
pub const MULTIBULK_MAX: i64 = 1024 * 1024;
/// An unauthenticated client may declare at most this many arguments (as in Redis).
pub const MULTIBULK_MAX_UNAUTHENTICATED: i64 = 10;
/// An unauthenticated client may declare bulks of at most this many bytes (as in Redis).
pub const BULK_MAX_UNAUTHENTICATED: i64 = 16384;

/// Why a request was rejected. The `Display` text is the exact Redis error (without the `ERR `
/// prefix), because clients and tests match on it. After any of these the connection is closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Limits the parser enforces; they come from the server configuration.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: i64,
    /// Whether the client has authenticated (unauthenticated clients get tighter limits).
    pub authenticated: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// One parsed request: its arguments, short ones copied inline, long ones zero-copy slices of
/// the received bytes (see [`Arg`]).
pub type Args = Vec<Arg>;

/// Outcome of trying to take one request off the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request; its bytes were removed from the buffer. May be empty (a blank inline
    /// line or `*0`), which the caller skips like Redis does.
    Request(Args),
    /// Not enough bytes yet; the buffer is untouched.
    Incomplete,
}

/// Take one request off the front of `buf`.
pub fn parse_request(buf: &mut BytesMut, limits: ParseLimits) -> Result<Parsed, ProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if buf[0] == b'*' {
        parse_multibulk(buf, limits)
    } else {
        parse_inline(buf)
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    // memchr-like scan for '\r' followed by '\n'.
    let mut i = from;
    while i + 1 < buf.len() {
        match buf[i..].iter().position(|&b| b == b'\r') {
            Some(p) => {
                let at = i + p;
                if at + 1 < buf.len() {
                    if buf[at + 1] == b'\n' {
                        return Some(at);
                    }
                    i = at + 1;
                } else {
                    return None;
                }
            }
            None => return None,
        }
    }
    None
}

/// Parse a decimal integer the way Redis's `string2ll` does (no spaces, no '+', no leading zeros
/// issues matter here because we only accept what Redis accepts for lengths).
fn parse_len(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let (neg, body) = match digits[0] {
        b'-' => (true, &digits[1..]),
        _ => (false, digits),
    };
    if body.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

fn parse_multibulk(buf: &mut BytesMut, limits: ParseLimits) -> Result<Parsed, ProtocolError> {
    // Header line: *<count>\r\n
    let Some(eol) = find_crlf(buf, 1) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigMultibulkCount);
        }
        return Ok(Parsed::Incomplete);
    };
    if eol > INLINE_MAX {
        return Err(ProtocolError::TooBigMultibulkCount);
    }
    let count = parse_len(&buf[1..eol]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    let count_max = if limits.authenticated {
        MULTIBULK_MAX
    } else {
        MULTIBULK_MAX_UNAUTHENTICATED
    };
    if count > count_max {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    let mut pos = eol + 2;
    if count <= 0 {
        let _ = buf.split_to(pos);
        return Ok(Parsed::Request(Vec::new()));
    }
    let bulk_max = if limits.authenticated {
        limits.max_bulk_len
    } else {
        limits.max_bulk_len.min(BULK_MAX_UNAUTHENTICATED)
    };
    // First pass: find where every argument lies, without copying anything. Most requests
    // have a handful of arguments: their spans stay on the stack, so a request costs one
    // allocation (its argument vector) rather than two.
    let mut small = [(0usize, 0usize); 8];
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in 0..count as usize {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[pos] as char));
        }
        let Some(eol) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(Parsed::Incomplete);
        };
        if eol - pos > INLINE_MAX {
            return Err(ProtocolError::TooBigBulkCount);
        }
        let len = parse_len(&buf[pos + 1..eol]).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len > bulk_max {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Ok(Parsed::Incomplete);
        }
        // Redis does not check the two bytes after a bulk; neither do we (they are skipped).
        if i < small.len() {
            small[i] = (start, end);
        } else {
            if spans.is_empty() {
                spans.reserve((count as usize).min(1024));
                spans.extend_from_slice(&small);
            }
            spans.push((start, end));
        }
        pos = end + 2;
    }
    let spans = if spans.is_empty() {
        &small[..count as usize]
    } else {
        &spans[..]
    };
    let mut args = Vec::with_capacity(spans.len());
    if spans.iter().all(|&(s, e)| e - s <= INLINE) {
        // Every argument is copied inline: the frame is not needed past this point, so it is
        // consumed without the reference count a shared frame would cost.
        args.extend(spans.iter().map(|&(s, e)| Arg::copy_from_slice(&buf[s..e])));
        buf.advance(pos);
    } else {
        let frame = buf.split_to(pos).freeze();
        args.extend(spans.iter().map(|&(s, e)| Arg::from_frame(&frame, s, e)));
    }
    Ok(Parsed::Request(args))
}

fn parse_inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Parsed::Incomplete);
    };
    if nl > INLINE_MAX {
        return Err(ProtocolError::TooBigInline);
    }
    let line = buf.split_to(nl + 1);
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    let args = split_args(&line[..end]).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Parsed::Request(args.into_iter().map(Arg::from).collect()))
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Split a line into arguments like Redis's `sdssplitargs`: whitespace separated, with
/// "double quotes" (supporting \n \r \t \b \a \\ \" and \xHH escapes) and 'single quotes'
/// (supporting \'). A closing quote must be followed by whitespace or the end. Returns None on
/// unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match parse_request(&mut buf, ParseLimits::default())? {
                Parsed::Request(a) => out.push(a.iter().map(|b| b.to_vec()).collect()),
                Parsed::Incomplete => return Ok(out),
            }
        }
    }

    #[test]
    fn argument_counts_around_the_stack_spans_parse_alike() {
        // Up to 8 argument spans stay on the stack, more spill to the heap: both paths, and
        // an incomplete request on either side of the boundary, must give the same arguments.
        for n in [1usize, 7, 8, 9, 17, 300] {
            let args: Vec<Vec<u8>> = (0..n).map(|i| format!("arg{i}").into_bytes()).collect();
            let mut wire = format!("*{n}\r\n").into_bytes();
            for a in &args {
                wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                wire.extend_from_slice(a);
                wire.extend_from_slice(b"\r\n");
            }
            assert_eq!(
                parse_all(&wire).unwrap(),
                vec![args.clone()],
                "{n} arguments"
            );
            assert_eq!(
                parse_all(&wire[..wire.len() - 1]).unwrap(),
                Vec::<Vec<Vec<u8>>>::new()
            );
        }
    }

    #[test]
    fn multibulk_and_pipelining() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(
            got,
            vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn incomplete_leaves_buffer_untouched() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\n"[..]);
        assert_eq!(
            parse_request(&mut buf, ParseLimits::default()),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(buf.len(), 17);
    }

    #[test]
    fn inline_with_quotes() {
        let got = parse_all(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n").unwrap();
        assert_eq!(
            got,
            vec![vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec(),
                b"A\n".to_vec()
            ]]
        );
        assert_eq!(
            parse_all(b"get \"abc\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"get \"abc\"x\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn errors_match_redis() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\nfoo\r\n"),
            Err(ProtocolError::ExpectedDollar('f'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$999999999999\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        let long = vec![b'a'; INLINE_MAX + 10];
        assert_eq!(parse_all(&long), Err(ProtocolError::TooBigInline));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut buf = BytesMut::from(&b"*100\r\n"[..]);
        let limits = ParseLimits {
            authenticated: false,
            ..Default::default()
        };
        assert_eq!(
            parse_request(&mut buf, limits),
            Err(ProtocolError::InvalidMultibulkLength)
        );
    }

    #[test]
    fn empty_requests() {
        assert_eq!(
            parse_all(b"\r\n*0\r\n").unwrap(),
            vec![Vec::<Vec<u8>>::new(); 2]
        );
    }
}
