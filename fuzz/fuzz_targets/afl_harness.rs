//! AFL++ harness of every target: `afl_harness TARGET` runs TARGET's `fuzz_one` on the inputs
//! afl-fuzz gives it (persistent mode; a panic aborts, which AFL++ records as a crash). Outside
//! afl-fuzz it runs one input read from standard input: `afl_harness TARGET < crash-file`
//! reproduces a crash with its panic message. hack/fuzz.sh drives it.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(fuzz_one) = redispair_fuzz::target(&name) else {
        let names: Vec<&str> = redispair_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: afl_harness TARGET (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz(true, fuzz_one);
}
