//! Every committed seed (fuzz/corpus/<target>/*) through its target, outside any fuzzer: the
//! targets' properties hold on valid inputs, and a fixed crash stays fixed once its input is
//! added as a seed. `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`. Reads
//! files.

#[test]
fn every_seed_passes_its_target() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, fuzz_one) in redispair_fuzz::TARGETS {
        let mut seeds: Vec<_> = std::fs::read_dir(corpus.join(name))
            .unwrap_or_else(|e| panic!("seeds of {name}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for seed in seeds {
            eprintln!("{name}: {}", seed.display());
            fuzz_one(&std::fs::read(&seed).unwrap());
        }
    }
}
