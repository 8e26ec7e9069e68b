//! libFuzzer harness of the `hyperloglog` target (fuzz/src/hyperloglog.rs): `cargo +nightly fuzz run hyperloglog`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::hyperloglog::fuzz_one(data));
