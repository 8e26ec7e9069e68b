//! libFuzzer harness of the `cjson` target (fuzz/src/cjson.rs): `cargo +nightly fuzz run cjson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::cjson::fuzz_one(data));
