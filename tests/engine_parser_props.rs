//! Property tests for the RESP request parser: arbitrary bytes never panic nor leave the parser
//! stuck, a valid stream split at arbitrary points parses to the same requests as in one piece,
//! and declared lengths (huge bulks, huge multibulk counts) never make it reserve memory. Pure.

use bytes::BytesMut;
use proptest::prelude::*;
use redispair::engine::protocol::arg::Arg;
use redispair::engine::protocol::parse::{
    parse_request, ParseLimits, Parsed, ProtocolError, RequestParser,
};

/// Parse everything in `buf` with the parser without memory (`parse_request`): the requests,
/// and the error if one stopped parsing.
fn parse_all(buf: &mut BytesMut, limits: ParseLimits) -> (Vec<Vec<Arg>>, Option<ProtocolError>) {
    parse_all_by(|b| parse_request(b, limits), buf)
}

/// `parse_all` with a parser that keeps its place in an incomplete request between calls.
fn parse_all_with(
    parser: &mut RequestParser,
    buf: &mut BytesMut,
    limits: ParseLimits,
) -> (Vec<Vec<Arg>>, Option<ProtocolError>) {
    parse_all_by(|b| parser.parse(b, limits), buf)
}

fn parse_all_by(
    mut parse: impl FnMut(&mut BytesMut) -> Result<Parsed, ProtocolError>,
    buf: &mut BytesMut,
) -> (Vec<Vec<Arg>>, Option<ProtocolError>) {
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match parse(buf) {
            Ok(Parsed::Request(args)) => {
                // Progress: a request always consumes bytes (no infinite loop on any input).
                assert!(buf.len() < before, "request parsed without consuming input");
                out.push(args);
            }
            Ok(Parsed::Incomplete) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "Incomplete must leave the buffer untouched"
                );
                return (out, None);
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Feed `chunks` one after another, parsing after each with one resuming parser, as a
/// connection does.
fn parse_split(chunks: &[&[u8]], limits: ParseLimits) -> (Vec<Vec<Arg>>, Option<ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut parser = RequestParser::default();
    let mut all = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        let (reqs, err) = parse_all_with(&mut parser, &mut buf, limits);
        all.extend(reqs);
        if err.is_some() {
            return (all, err);
        }
    }
    (all, None)
}

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn request() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
}

fn inline_request() -> impl Strategy<Value = Vec<u8>> {
    // Words of printable characters without quotes: they split exactly on spaces.
    prop::collection::vec("[a-zA-Z0-9:_.-]{1,10}", 1..5).prop_map(|w| {
        let mut line = w.join(" ").into_bytes();
        line.extend_from_slice(b"\r\n");
        line
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_stick(bytes in prop::collection::vec(any::<u8>(), 0..600),
                                            authenticated in any::<bool>()) {
        let limits = ParseLimits { max_bulk_len: 1024, authenticated };
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = parse_all(&mut buf, limits);
    }

    #[test]
    fn resp_like_noise_never_panics(parts in prop::collection::vec(
        prop_oneof![
            Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"-1".to_vec()),
            Just(b"99999999999999999999".to_vec()), Just(b"3".to_vec()), Just(b"\"".to_vec()),
            Just(b"'".to_vec()), Just(b"\\x4".to_vec()), Just(b" ".to_vec()), Just(b"\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..5),
        ], 0..60)) {
        let bytes: Vec<u8> = parts.concat();
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = parse_all(&mut buf, ParseLimits::default());
    }

    #[test]
    fn split_stream_equals_unsplit(reqs in prop::collection::vec(
            prop_oneof![request().prop_map(|r| encode(&r)), inline_request()], 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let stream: Vec<u8> = reqs.concat();
        let mut whole = BytesMut::from(&stream[..]);
        let (expected, err) = parse_all(&mut whole, ParseLimits::default());
        prop_assert!(err.is_none());
        prop_assert!(whole.is_empty());
        prop_assert_eq!(expected.len(), reqs.len());
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&stream[last..p]);
            last = p;
        }
        chunks.push(&stream[last..]);
        let (got, err) = parse_split(&chunks, ParseLimits::default());
        prop_assert!(err.is_none());
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn multibulk_roundtrip(r in request()) {
        let mut buf = BytesMut::from(&encode(&r)[..]);
        let (got, err) = parse_all(&mut buf, ParseLimits::default());
        prop_assert!(err.is_none());
        let want: Vec<Vec<Arg>> = vec![r.into_iter().map(Arg::from).collect()];
        prop_assert_eq!(got, want);
    }

    /// Any declared bulk length above the limit is refused at once, whatever follows.
    #[test]
    fn oversized_bulk_is_refused(limit in 1i64..10_000, excess in 1i64..1_000_000) {
        let limits = ParseLimits { max_bulk_len: limit, authenticated: true };
        let mut buf = BytesMut::from(format!("*1\r\n${}\r\nab", limit + excess).as_bytes());
        prop_assert_eq!(parse_all(&mut buf, limits).1, Some(ProtocolError::InvalidBulkLength));
    }
}

/// The parser never sizes anything by a length the peer declared: the buffer's capacity after
/// parsing a header announcing 512 MB (or a million arguments) stays what the bytes needed.
#[test]
fn declared_lengths_do_not_reserve_memory() {
    let limits = ParseLimits::default();
    for header in [
        "*1\r\n$536870912\r\nabc".to_string(),
        "*1048576\r\n$1\r\na\r\n".to_string(),
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n".to_string(),
    ] {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(header.as_bytes());
        let used_before = redispair_used_memory();
        let (reqs, err) = parse_all(&mut buf, limits);
        assert!(reqs.is_empty() && err.is_none(), "{header:?}");
        assert!(buf.capacity() < 4096, "buffer grew to {}", buf.capacity());
        // Nothing in the order of the declared sizes was allocated on the way.
        assert!(redispair_used_memory() < used_before + (1 << 20));
    }
    // Declared counts beyond the limits are refused before any argument is read.
    let mut buf = BytesMut::from(&b"*1048577\r\n"[..]);
    assert_eq!(
        parse_all(&mut buf, limits).1,
        Some(ProtocolError::InvalidMultibulkLength)
    );
    let unauth = ParseLimits {
        authenticated: false,
        ..limits
    };
    let mut buf = BytesMut::from(&b"*11\r\n"[..]);
    assert_eq!(
        parse_all(&mut buf, unauth).1,
        Some(ProtocolError::InvalidMultibulkLength)
    );
    let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
    assert_eq!(
        parse_all(&mut buf, unauth).1,
        Some(ProtocolError::InvalidBulkLength)
    );
}

/// Heap in use by this test process (the engine's counting allocator is installed below).
fn redispair_used_memory() -> usize {
    redispair::engine::memory::used_memory()
}

#[global_allocator]
static ALLOC: redispair::engine::memory::CountingAllocator =
    redispair::engine::memory::CountingAllocator;

/// A request line longer than the inline limit, or a header without CRLF beyond it, is an
/// error rather than a buffer that grows forever.
#[test]
fn unterminated_lines_are_bounded() {
    let limits = ParseLimits::default();
    let mut buf = BytesMut::from(&vec![b'a'; 70 * 1024][..]);
    assert_eq!(
        parse_all(&mut buf, limits).1,
        Some(ProtocolError::TooBigInline)
    );
    let mut big = b"*".to_vec();
    big.extend(vec![b'1'; 70 * 1024]);
    let mut buf = BytesMut::from(&big[..]);
    assert_eq!(
        parse_all(&mut buf, limits).1,
        Some(ProtocolError::TooBigMultibulkCount)
    );
    let mut big = b"*1\r\n$".to_vec();
    big.extend(vec![b'1'; 70 * 1024]);
    let mut buf = BytesMut::from(&big[..]);
    assert_eq!(
        parse_all(&mut buf, limits).1,
        Some(ProtocolError::TooBigBulkCount)
    );
}
