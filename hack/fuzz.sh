#!/usr/bin/env bash
# Fuzzes the engine's decoders of client input with AFL++ on the stable toolchain (issue 13):
#
#   hack/fuzz.sh [--seconds N] [TARGET...]      (default: 60 s for each of every target)
#
# Targets (fuzz/src/<target>.rs): parse_request, restore, hyperloglog, cmsgpack, cjson, rdb_file. Each
# starts from its committed seeds (fuzz/corpus/<target>/) and runs N seconds; then one line per
# target: inputs executed, corpus size, crashes, hangs. Exits non-zero if any target crashed,
# keeping each crashing input under fuzz/artifacts/<target>/ and printing the command that
# replays it with the panic message.
#
# cargo-afl (crates.io) builds the harness with the stable compiler's SanitizerCoverage
# (no LLVM plugins, so no nightly and no clang of rustc's LLVM version) and brings AFL++'s
# afl-fuzz, built from the source it ships: both cached under ~/.cache/redispair/cargo-afl-<v>,
# keyed by cargo-afl's version (and, inside, by rustc's). The harness is built into
# $CARGO_TARGET_DIR/afl (instrumented and optimised: kept apart from the normal builds).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/lib/log.sh
source hack/lib/log.sh

# Must equal the `afl` dependency's version in fuzz/Cargo.toml (the runtime cargo-afl links in
# is built for it).
CARGO_AFL_VERSION=0.18.2
ALL_TARGETS=(parse_request restore hyperloglog cmsgpack cjson rdb_file)

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
seconds=60
targets=()
while (( $# )); do
  case $1 in
    --seconds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--seconds needs a positive number"; seconds=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ " ${ALL_TARGETS[*]} " == *" $1 "* ]] || die "unknown target $1 (one of: ${ALL_TARGETS[*]})"
       targets+=("$1"); shift ;;
  esac
done
(( ${#targets[@]} )) || targets=("${ALL_TARGETS[@]}")
command -v cargo >/dev/null 2>&1 || die "cargo is needed"

CACHE=$HOME/.cache/redispair/cargo-afl-$CARGO_AFL_VERSION
export PATH=$CACHE/bin:$PATH
# cargo-afl keeps AFL++ under $XDG_DATA_HOME/afl.rs/rustc-<version>/afl.rs-<version>/.
export XDG_DATA_HOME=$CACHE/data
if [[ ! -x $CACHE/bin/cargo-afl ]]; then
  timed "installing cargo-afl $CARGO_AFL_VERSION into $CACHE" "first run: ~1.5 min, cached after" \
    cargo install --quiet --locked "cargo-afl@$CARGO_AFL_VERSION" --root "$CACHE"
fi
if ! compgen -G "$XDG_DATA_HOME/afl.rs/rustc-$(rustc -V | cut -d' ' -f2)-*/afl.rs-$CARGO_AFL_VERSION/afl/bin/afl-fuzz" >/dev/null; then
  timed "building AFL++ (cargo afl config --build)" "first run: ~30 s, cached after" \
    cargo afl config --build
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/afl
HARNESS=$TARGET_DIR/release/afl_harness
timed "building the AFL++ harness (fuzz/, cargo afl build)" "first run: ~20 min on 2 cores, ~2 min after an engine change" \
  env CARGO_TARGET_DIR="$TARGET_DIR" cargo afl build --quiet --release \
    --manifest-path fuzz/Cargo.toml --no-default-features --features afl --bin afl_harness

OUT=$TARGET_DIR/out
# afl-fuzz refuses to start when crashes would go to a core-dump helper, or when the CPU
# governor may slow it: neither matters for finding crashes here. AFL_NO_UI gives a status line
# per minute instead of the full-screen UI; AFL_NO_AFFINITY leaves the shared cores to the
# scheduler.
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_NO_WARN_INSTABILITY=1 AFL_QUIET=1

stat_of() { sed -n "s/^$1 *: *//p" "$2"; }

results=()
failed=()
for target in "${targets[@]}"; do
  seeds=fuzz/corpus/$target
  [[ -d $seeds ]] || die "no seeds for $target: $seeds is missing"
  rm -rf "${OUT:?}/$target"
  mkdir -p "$OUT/$target"
  log "fuzzing $target for $seconds s (seeds: $seeds, $(find "$seeds" -type f | wc -l) inputs; output: $OUT/$target)"
  # -V: stop after N seconds; -t: an input that runs 2 s is a hang. Its own log, shown on failure.
  if ! cargo afl fuzz -V "$seconds" -t 2000 -i "$seeds" -o "$OUT/$target" -- "$HARNESS" "$target" \
      > "$OUT/$target.log" 2>&1; then
    tail -n 30 "$OUT/$target.log" >&2
    die "afl-fuzz failed to run $target (log: $OUT/$target.log)"
  fi
  stats=$OUT/$target/default/fuzzer_stats
  execs=$(stat_of execs_done "$stats")
  rate=$(stat_of execs_per_sec "$stats")
  corpus=$(stat_of corpus_count "$stats")
  crashes=$(stat_of saved_crashes "$stats")
  hangs=$(stat_of saved_hangs "$stats")
  results+=("$(printf '%-14s %12s inputs (%s/s)  corpus %5s  crashes %s  hangs %s' \
    "$target" "$execs" "${rate%%.*}" "$corpus" "$crashes" "$hangs")")
  if (( crashes > 0 )); then
    failed+=("$target")
    mkdir -p "fuzz/artifacts/$target"
    for crash in "$OUT/$target"/default/crashes/id:*; do
      kept=fuzz/artifacts/$target/crash-$(sha1sum "$crash" | cut -c1-16)
      cp "$crash" "$kept"
      log "$target crashed on $kept; replay it with:"
      log "  $HARNESS $target < $kept"
    done
  fi
  if (( hangs > 0 )); then
    log "$target: $hangs input(s) ran over 2 s (kept in $OUT/$target/default/hangs/; a loaded machine can cause these)"
  fi
done

printf '\nfuzzing, %s s per target (AFL++ %s):\n' "$seconds" "cargo-afl $CARGO_AFL_VERSION" >&2
printf '  %s\n' "${results[@]}" >&2
if (( ${#failed[@]} )); then
  die "crashes in: ${failed[*]} (inputs under fuzz/artifacts/, replay commands above)"
fi
