//! Fuzz `cjson.decode` (and `cjson.encode` of what it gives), the JSON library scripts use on
//! text a client passes in ARGV, in the scripts' own interpreter (engine::fuzzing). Nothing may
//! panic. What decodes encodes, unless it holds a number JSON cannot write (inf from `1e999`);
//! the JSON written decodes to the same value, numbers rounded to `%.14g` as lua-cjson writes
//! them, and encoding is a fixed point after that round. Pure.

use redispair::engine::fuzzing::{LuaData, ScriptLibraries};
use redispair::engine::protocol::reply::format_g;

thread_local! {
    static LIBS: ScriptLibraries = ScriptLibraries::new().expect("the scripting interpreter starts");
}

fn rounded_as_written(n: f64) -> f64 {
    format_g(n, 14).parse().unwrap_or(f64::NAN)
}

fn decode_encode(libs: &ScriptLibraries, text: &[u8]) -> (LuaData, Vec<u8>) {
    let (value, encoded) = match libs.json_decode_encode(text) {
        Ok(v) => v,
        Err(e) => panic!("what cjson.encode wrote does not decode: {e}"),
    };
    match encoded {
        Ok(text) => (value, text),
        Err(e) => panic!("cjson.encode refused what it wrote once: {e}"),
    }
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    LIBS.with(|libs| {
        let Ok((value, encoded)) = libs.json_decode_encode(data) else {
            return;
        };
        let text = match encoded {
            Ok(text) => text,
            Err(e) => {
                assert!(
                    value.has_non_finite(),
                    "cjson.encode refused what cjson.decode gave: {e}"
                );
                return;
            }
        };
        let (again, text2) = decode_encode(libs, &text);
        assert_eq!(
            again,
            value.map_numbers(&rounded_as_written),
            "decode(encode(v))"
        );
        let (third, _) = decode_encode(libs, &text2);
        assert_eq!(third, again, "encode is not a fixed point");
    });
}
