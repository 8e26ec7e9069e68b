//! Fuzz the RESP request parser: any input, fed whole (to the parser without memory) and then
//! split in two at a point chosen by the first byte (to one resuming `RequestParser`), must
//! parse without panicking, always make progress, and give the same requests both ways (the
//! property tests in tests/engine_parser_props.rs, unbounded). Pure.

use bytes::BytesMut;
use redispair::engine::protocol::arg::Arg;
use redispair::engine::protocol::parse::{
    parse_request, ParseLimits, Parsed, ProtocolError, RequestParser,
};

/// Parse every request in `buf` with `parse` into `out`; false if one was a protocol error.
fn drain(
    mut parse: impl FnMut(&mut BytesMut) -> Result<Parsed, ProtocolError>,
    buf: &mut BytesMut,
    out: &mut Vec<Vec<Arg>>,
) -> bool {
    loop {
        let before = buf.len();
        match parse(buf) {
            Ok(Parsed::Request(args)) => {
                assert!(buf.len() < before);
                out.push(args);
            }
            Ok(Parsed::Incomplete) => return true,
            Err(_) => return false,
        }
    }
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    let limits = ParseLimits {
        max_bulk_len: 4096,
        authenticated: true,
    };
    let mut whole = Vec::new();
    // Whole, with the parser without memory.
    let ok_whole = drain(
        |b| parse_request(b, limits),
        &mut BytesMut::from(data),
        &mut whole,
    );
    let cut = data
        .first()
        .map(|b| *b as usize % (data.len() + 1))
        .unwrap_or(0);
    // Split, with one parser that resumes an incomplete request where it stopped.
    let mut split = Vec::new();
    let mut parser = RequestParser::default();
    let mut buf = BytesMut::from(&data[..cut]);
    let mut ok_split = drain(|b| parser.parse(b, limits), &mut buf, &mut split);
    if ok_split {
        buf.extend_from_slice(&data[cut..]);
        ok_split = drain(|b| parser.parse(b, limits), &mut buf, &mut split);
    }
    if ok_whole && ok_split {
        assert_eq!(whole, split);
    }
}
