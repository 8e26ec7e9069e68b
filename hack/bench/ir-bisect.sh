#!/usr/bin/env bash
# Benchmark helper (not a test): a `git bisect run` step that judges a commit by the engine's
# instruction count per request (callgrind, as hack/bench/instructions.sh counts it), so a
# slowdown can be bisected on a loaded machine. Builds the release engine at HEAD, runs it
# under callgrind, sends a warm-up pass then N requests of TEST at pipeline P from 50 clients
# (compare.sh's count), and exits 1 (bad) when the count per request is above THRESH, 0 when
# not, 125 (skip) when the commit does not build. Each step appends "commit date count" to LOG.
#
#   git bisect start --first-parent BAD GOOD
#   THRESH=3444 CARGO_TARGET_DIR=/some/dir git bisect run /path/to/hack/bench/ir-bisect.sh
#
# Run it from a copy outside the work tree being bisected (bisect checks out old commits,
# which may not have this file). THRESH: halfway between the good and the bad commit's
# counts. Used for the P16 loss of 2026-12-06 (docs/benchmarks.md).
set -uo pipefail

THRESH=${THRESH:?THRESH (instructions per request) is required}
TEST=${TEST:-set} P=${P:-16} N=${N:-16000} CLIENTS=${CLIENTS:-50}
LOG=${LOG:-/tmp/ir-bisect.log}
target=${CARGO_TARGET_DIR:-target}
c=$(git rev-parse --short HEAD)
if ! nice -n 19 cargo build --release --locked --bin redispair-engine >/tmp/ir-bisect-build.log 2>&1; then
  echo "$c build-failed" >>"$LOG"; exit 125
fi
w=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$w"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --dump-instr=no --collect-jumps=no --callgrind-out-file="$w/e.out" \
  "$target/release/redispair-engine" --port "$port" --bind 127.0.0.1 --persistence off \
  --databases 1 --dir "$w" --loglevel warning >"$w/log" 2>&1 &
pid=$!
deadline=$((SECONDS + 120)) # valgrind starts a server 20-50x slower
until redis-cli -p "$port" ping >/dev/null 2>&1; do
  if (( SECONDS >= deadline )) || ! kill -0 "$pid" 2>/dev/null; then
    echo "$c no-start" >>"$LOG"; exit 125
  fi
  sleep 0.2
done
bench() { redis-benchmark -p "$port" -t "$TEST" -n "$N" -c "$CLIENTS" -P "$P" -r 100000 -q >/dev/null 2>&1; }
bench
callgrind_control --zero "$pid" >/dev/null 2>&1
bench
callgrind_control --dump="$TEST" "$pid" >/dev/null 2>&1
# The dump is written asynchronously: wait for its file (60 s at most).
deadline=$((SECONDS + 60)) ir=''
while [[ -z $ir ]]; do
  f=$(find "$w" -name 'e.out.*' | head -1)
  [[ -n $f ]] && ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)
  [[ -n $ir ]] && break
  (( SECONDS < deadline )) || { echo "$c no-dump" >>"$LOG"; exit 125; }
  sleep 0.3
done
per=$((ir / N))
echo "$c $(git log -1 --format=%cd --date=iso) $TEST-P$P=$per" >>"$LOG"
(( per > THRESH )) && exit 1
exit 0
