//! Fuzz the RESP request parser: any input, fed whole and then split in two at a point chosen
//! by the first byte, must parse without panicking, always make progress, and give the same
//! requests both ways (the property tests in tests/engine_parser_props.rs, unbounded).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redispair::engine::protocol::parse::{parse_request, ParseLimits, Parsed};

fn drain(buf: &mut BytesMut, limits: ParseLimits, out: &mut Vec<Vec<bytes::Bytes>>) -> bool {
    loop {
        let before = buf.len();
        match parse_request(buf, limits) {
            Ok(Parsed::Request(args)) => {
                assert!(buf.len() < before);
                out.push(args);
            }
            Ok(Parsed::Incomplete) => return true,
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits {
        max_bulk_len: 4096,
        authenticated: true,
    };
    let mut whole = Vec::new();
    let ok_whole = drain(&mut BytesMut::from(data), limits, &mut whole);
    let cut = data.first().map(|b| *b as usize % (data.len() + 1)).unwrap_or(0);
    let mut split = Vec::new();
    let mut buf = BytesMut::from(&data[..cut]);
    let mut ok_split = drain(&mut buf, limits, &mut split);
    if ok_split {
        buf.extend_from_slice(&data[cut..]);
        ok_split = drain(&mut buf, limits, &mut split);
    }
    if ok_whole && ok_split {
        assert_eq!(whole, split);
    }
});
