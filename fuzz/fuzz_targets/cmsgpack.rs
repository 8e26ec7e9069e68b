//! libFuzzer harness of the `cmsgpack` target (fuzz/src/cmsgpack.rs): `cargo +nightly fuzz run cmsgpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::cmsgpack::fuzz_one(data));
