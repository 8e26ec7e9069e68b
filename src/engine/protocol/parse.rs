//! Request parsing: RESP multibulk and inline commands from a byte buffer. Pure, no I/O.
//!
//! The parser works in two passes over the bytes already received: it first checks that a whole
//! command is present, then splits it off the buffer as one frozen `Bytes` and slices the
//! arguments out of it without copying. It never allocates according to a length the peer
//! *declared*: only bytes that actually arrived are stored, so a client announcing a 512 MB bulk
//! cannot make us reserve 512 MB.
//!
//! A connection parses with a [`RequestParser`], which remembers how far it got into an
//! incomplete request (the arguments already whole, where the search for a line end stopped) and
//! resumes there when more bytes arrive. Without it, a request arriving in many reads was
//! re-scanned from its start on every read: O(n²) in its size (an RPUSH of a million elements
//! sent in 16 KB reads scanned its headers thousands of times). [`parse_request`] is the same
//! parser without memory, for whole buffers.

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

/// Take one request off the front of `buf`, parsing it from its start (see [`RequestParser`]
/// for a buffer that grows between calls).
pub fn parse_request(buf: &mut BytesMut, limits: ParseLimits) -> Result<Parsed, ProtocolError> {
    RequestParser::default().parse(buf, limits)
}

/// A parser for a buffer that receives a request in pieces: it keeps its position in an
/// incomplete request between calls, so each byte is scanned about once however many reads
/// the request takes.
///
/// The caller may only *append* to the buffer between calls (as a connection does with what it
/// reads); the state refers to positions from the buffer's front. It is cleared when a request
/// is taken off the buffer or an error is returned.
#[derive(Debug, Default)]
pub struct RequestParser {
    partial: Option<Partial>,
    /// Bytes scanned for line ends since the parser was created (tests assert it is linear).
    examined: u64,
    /// Emptied argument vectors handed back by the connection (`recycle`), reused for the
    /// next requests: a malloc and a free per request were ~110 instructions of a GET's.
    spare: Vec<Vec<Arg>>,
}

/// Spare argument vectors kept at most: a pipeline of this many requests reuses them all.
const SPARE_MAX: usize = 32;
/// A vector grown past this many arguments (a large MSET) is freed rather than kept.
const SPARE_CAPACITY_MAX: usize = 64;

/// How far the parser got into the incomplete request at the front of the buffer.
#[derive(Debug)]
enum Partial {
    /// A multibulk request of `count` arguments whose first `spans.len()` are whole; the next
    /// one starts at `pos`. Its `$<len>` line was read when `bulk` is Some (the span its bytes
    /// will have); otherwise no line end was found before `scanned`.
    Multibulk {
        count: usize,
        pos: usize,
        spans: Vec<(usize, usize)>,
        bulk: Option<(usize, usize)>,
        scanned: usize,
    },
    /// An inline request: no `\n` in the first `scanned` bytes.
    Inline { scanned: usize },
}

impl RequestParser {
    /// Take one request off the front of `buf`, resuming where the last call stopped.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
    ) -> Result<Parsed, ProtocolError> {
        if buf.is_empty() {
            self.partial = None;
            return Ok(Parsed::Incomplete);
        }
        let resume = self.partial.take();
        let r = if buf[0] == b'*' {
            parse_multibulk(buf, limits, resume, &mut self.examined, &mut self.spare)
        } else {
            parse_inline(buf, resume, &mut self.examined)
        };
        match r {
            Ok(Step::Done(args)) => Ok(Parsed::Request(args)),
            Ok(Step::Incomplete(partial)) => {
                self.partial = partial;
                Ok(Parsed::Incomplete)
            }
            Err(e) => Err(e),
        }
    }

    /// Take back the argument vector of a request that was run and not kept: the next request
    /// parsed reuses it.
    pub fn recycle(&mut self, mut args: Vec<Arg>) {
        if args.capacity() == 0 || args.capacity() > SPARE_CAPACITY_MAX {
            return;
        }
        if self.spare.len() < SPARE_MAX {
            args.clear();
            self.spare.push(args);
        }
    }

    /// Bytes scanned for line ends so far.
    pub fn examined(&self) -> u64 {
        self.examined
    }
}

/// What one parse step found.
enum Step {
    Done(Args),
    /// Not enough bytes; resume from this state (None: from the start, which is cheap).
    Incomplete(Option<Partial>),
}

/// The position of the first `\r\n` at or after `from`, counting the bytes scanned.
fn find_crlf(buf: &[u8], from: usize, examined: &mut u64) -> Option<usize> {
    let r = find_crlf_at(buf, from);
    *examined += (r.map_or(buf.len(), |at| at + 2).min(buf.len()) - from.min(buf.len())) as u64;
    r
}

fn find_crlf_at(buf: &[u8], from: usize) -> Option<usize> {
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

fn parse_multibulk(
    buf: &mut BytesMut,
    limits: ParseLimits,
    resume: Option<Partial>,
    examined: &mut u64,
    spare: &mut Vec<Vec<Arg>>,
) -> Result<Step, ProtocolError> {
    let bulk_max = if limits.authenticated {
        limits.max_bulk_len
    } else {
        limits.max_bulk_len.min(BULK_MAX_UNAUTHENTICATED)
    };
    // Where every argument lies, found without copying anything. Most requests have a handful
    // of arguments: their spans stay on the stack (`small`), so a request costs one allocation
    // (its argument vector) rather than two. A resumed request has its spans on the heap.
    let mut small = [(0usize, 0usize); 8];
    let (count, mut pos, mut spans, mut on_heap, mut bulk, mut scanned) = match resume {
        Some(Partial::Multibulk {
            count,
            pos,
            spans,
            bulk,
            scanned,
        }) => (count, pos, spans, true, bulk, scanned),
        _ => {
            // Header line: *<count>\r\n
            let Some(eol) = find_crlf(buf, 1, examined) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError::TooBigMultibulkCount);
                }
                return Ok(Step::Incomplete(None));
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
            if count <= 0 {
                let _ = buf.split_to(eol + 2);
                return Ok(Step::Done(Vec::new()));
            }
            (count as usize, eol + 2, Vec::new(), false, None, 0)
        }
    };
    let first = spans.len();
    for i in first..count {
        // Not all there yet: remember the whole arguments (their spans), where the next one
        // starts and what is known of it, so the next call scans none of it again.
        let incomplete =
            |spans: Vec<(usize, usize)>, small: &[(usize, usize)], on_heap, bulk, scanned| {
                let spans = if on_heap { spans } else { small[..i].to_vec() };
                Step::Incomplete(Some(Partial::Multibulk {
                    count,
                    pos,
                    spans,
                    bulk,
                    scanned,
                }))
            };
        let (start, end) = match bulk.take() {
            Some(span) => span,
            None => {
                if pos >= buf.len() {
                    return Ok(incomplete(spans, &small, on_heap, None, 0));
                }
                if buf[pos] != b'$' {
                    return Err(ProtocolError::ExpectedDollar(buf[pos] as char));
                }
                // Resume the search for the line end where the last one stopped (one byte
                // back: a `\r` at the end may be followed by the `\n` that just arrived).
                let from = scanned.max(pos + 1);
                scanned = 0;
                let Some(eol) = find_crlf(buf, from, examined) else {
                    if buf.len() - pos > INLINE_MAX {
                        return Err(ProtocolError::TooBigBulkCount);
                    }
                    let scanned = buf.len().saturating_sub(1).max(pos + 1);
                    return Ok(incomplete(spans, &small, on_heap, None, scanned));
                };
                if eol - pos > INLINE_MAX {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                let len = parse_len(&buf[pos + 1..eol]).ok_or(ProtocolError::InvalidBulkLength)?;
                if len < 0 || len > bulk_max {
                    return Err(ProtocolError::InvalidBulkLength);
                }
                (eol + 2, eol + 2 + len as usize)
            }
        };
        if end + 2 > buf.len() {
            return Ok(incomplete(spans, &small, on_heap, Some((start, end)), 0));
        }
        // Redis does not check the two bytes after a bulk; neither do we (they are skipped).
        if !on_heap && i < small.len() {
            small[i] = (start, end);
        } else {
            if !on_heap {
                spans.reserve(count.min(1024));
                spans.extend_from_slice(&small[..i]);
                on_heap = true;
            }
            spans.push((start, end));
        }
        pos = end + 2;
    }
    let spans = if on_heap { &spans[..] } else { &small[..count] };
    let mut args = spare.pop().unwrap_or_default();
    args.reserve_exact(spans.len());
    if spans.iter().all(|&(s, e)| e - s <= INLINE) {
        // Every argument is copied inline: the frame is not needed past this point, so it is
        // consumed without the reference count a shared frame would cost.
        for &(s, e) in spans {
            Arg::push_copy(&mut args, &buf[s..e]);
        }
        buf.advance(pos);
    } else {
        let frame = buf.split_to(pos).freeze();
        for &(s, e) in spans {
            Arg::push_from_frame(&mut args, &frame, s, e);
        }
    }
    Ok(Step::Done(args))
}

fn parse_inline(
    buf: &mut BytesMut,
    resume: Option<Partial>,
    examined: &mut u64,
) -> Result<Step, ProtocolError> {
    let from = match resume {
        Some(Partial::Inline { scanned }) => scanned.min(buf.len()),
        _ => 0,
    };
    let found = buf[from..].iter().position(|&b| b == b'\n');
    *examined += found.map_or(buf.len() - from, |p| p + 1) as u64;
    let Some(nl) = found.map(|p| from + p) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Step::Incomplete(Some(Partial::Inline {
            scanned: buf.len(),
        })));
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
    Ok(Step::Done(args.into_iter().map(Arg::from).collect()))
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

    /// A large request fed in many small pieces, as a connection receives it: each piece is
    /// parsed as it arrives, and the bytes scanned stay proportional to the request's size
    /// (they were quadratic: every read re-scanned the request from its start).
    #[test]
    fn a_request_fed_in_small_pieces_is_scanned_about_once() {
        let n = 20_000;
        let mut wire = format!("*{n}\r\n").into_bytes();
        for i in 0..n {
            let a = format!("element-{i}");
            wire.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        for chunk in [1usize, 7, 100, 4096] {
            let mut parser = RequestParser::default();
            let mut buf = BytesMut::new();
            let mut got = None;
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                match parser.parse(&mut buf, ParseLimits::default()).unwrap() {
                    Parsed::Request(args) => got = Some(args),
                    Parsed::Incomplete => {}
                }
            }
            let args = got.expect("the request parsed");
            assert_eq!(args.len(), n);
            assert_eq!(
                args[n - 1].as_ref(),
                format!("element-{}", n - 1).as_bytes()
            );
            assert!(buf.is_empty());
            assert!(
                parser.examined() <= 2 * wire.len() as u64,
                "{chunk}-byte pieces: {} bytes scanned for a {}-byte request",
                parser.examined(),
                wire.len()
            );
        }
        // An inline request fed byte by byte too.
        let line = format!("SET k {}\r\n", "v".repeat(30_000));
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::new();
        for b in line.as_bytes() {
            buf.extend_from_slice(&[*b]);
            let _ = parser.parse(&mut buf, ParseLimits::default()).unwrap();
        }
        assert!(buf.is_empty());
        assert!(parser.examined() <= 2 * line.len() as u64);
    }

    /// The state is dropped with the request it belongs to: the next request (and an error
    /// in the middle of one) parses from the new front of the buffer.
    #[test]
    fn the_resumed_state_ends_with_its_request() {
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..]);
        assert_eq!(
            parser.parse(&mut buf, ParseLimits::default()),
            Ok(Parsed::Incomplete)
        );
        buf.extend_from_slice(b"\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n");
        let Ok(Parsed::Request(set)) = parser.parse(&mut buf, ParseLimits::default()) else {
            panic!("SET parsed");
        };
        assert_eq!(set.len(), 3);
        let Ok(Parsed::Request(ping)) = parser.parse(&mut buf, ParseLimits::default()) else {
            panic!("PING parsed");
        };
        assert_eq!(ping[0].as_ref(), b"PING");
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n"[..]);
        assert_eq!(
            parser.parse(&mut buf, ParseLimits::default()),
            Ok(Parsed::Incomplete)
        );
        buf.extend_from_slice(b"x\r\n");
        assert_eq!(
            parser.parse(&mut buf, ParseLimits::default()),
            Err(ProtocolError::ExpectedDollar('x'))
        );
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

    #[test]
    fn recycled_argument_vectors_carry_nothing_over() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(
            &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..],
        );
        let Ok(Parsed::Request(first)) = p.parse(&mut buf, ParseLimits::default()) else {
            panic!("SET not parsed");
        };
        p.recycle(first);
        // The second request reuses the first one's vector: two arguments, none of SET's.
        let Ok(Parsed::Request(second)) = p.parse(&mut buf, ParseLimits::default()) else {
            panic!("GET not parsed");
        };
        let args: Vec<&[u8]> = second.iter().map(|a| &a[..]).collect();
        assert_eq!(args, vec![&b"GET"[..], b"k"]);
        // A vector grown large (a long MSET) is freed rather than kept.
        p.recycle(Vec::with_capacity(SPARE_CAPACITY_MAX + 1));
        assert!(p.spare.is_empty());
        p.recycle(second);
        assert_eq!(p.spare.len(), 1);
        assert!(p.spare[0].is_empty());
    }
}
