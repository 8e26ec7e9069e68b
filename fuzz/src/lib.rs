//! The fuzz targets: one `fuzz_one(data)` per decoder of what a client can send the engine,
//! each asserting that the decoder never panics and, where it is cheap, a round-trip or
//! agreement property. Pure. Run by fuzz_targets/afl_harness.rs (AFL++, stable toolchain) and
//! by one libFuzzer binary per target (fuzz_targets/<name>.rs, nightly toolchain).

pub mod cjson;
pub mod cmsgpack;
pub mod hyperloglog;
pub mod parse_request;
pub mod rdb_file;
pub mod restore;

/// A target: runs one input, panics when a property fails.
pub type FuzzOne = fn(&[u8]);

/// Every target by name (the names of fuzz/corpus/<name> and of the libFuzzer binaries).
pub const TARGETS: &[(&str, FuzzOne)] = &[
    ("parse_request", parse_request::fuzz_one),
    ("restore", restore::fuzz_one),
    ("hyperloglog", hyperloglog::fuzz_one),
    ("cmsgpack", cmsgpack::fuzz_one),
    ("cjson", cjson::fuzz_one),
    ("rdb_file", rdb_file::fuzz_one),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<FuzzOne> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
