//! libFuzzer harness of the `restore` target (fuzz/src/restore.rs): `cargo +nightly fuzz run restore`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::restore::fuzz_one(data));
