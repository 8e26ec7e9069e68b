//! libFuzzer harness of the `parse_request` target (fuzz/src/parse_request.rs): `cargo +nightly fuzz run parse_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::parse_request::fuzz_one(data));
