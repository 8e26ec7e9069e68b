//! libFuzzer harness of the `rdb_file` target (fuzz/src/rdb_file.rs): `cargo +nightly fuzz run rdb_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| redispair_fuzz::rdb_file::fuzz_one(data));
