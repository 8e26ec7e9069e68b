#!/usr/bin/env bash
# Benchmark (not a test): CPU instructions per request, the engine against Debian's
# redis-server, counted by valgrind's callgrind. Unlike ops/s (hack/bench/compare.sh), an
# instruction count does not depend on the machine's load, so a change on the request path can
# be measured on a busy machine and compared between runs: it is the figure to watch for the
# per-command checks (ACL, eviction, tracking, keyspace notifications) that ops/s ratios are too
# noisy to show. It does not see what costs time without instructions (cache misses, lock
# waits, syscall latency), so it complements compare.sh rather than replacing it.
#
#   hack/bench/instructions.sh                 # GET, SET, INCR, LPUSH at P1, SET at P16
#   N=2000 hack/bench/instructions.sh          # fewer requests per test (default 5000)
#   TESTS=get,set PIPELINES="1 16" CLIENTS=4 hack/bench/instructions.sh
#   CLIENTS=50 N=16000 TESTS=set,get,incr,lpush,zadd,mset PIPELINES="16 1" EXTRA="" \
#     hack/bench/instructions.sh               # compare.sh's 50 clients, both depths
#                                              # (the P16 figures of docs/benchmarks.md)
#   ANNOTATE=1 hack/bench/instructions.sh      # also keep the engine's profiles for
#                                              # callgrind_annotate (their paths are printed)
#
# How: each server runs under `valgrind --tool=callgrind` (no persistence, one database, as in
# compare.sh). Per test: `callgrind_control --zero`, then redis-benchmark sends N requests
# (CLIENTS connections, pipeline P, keys from a 100 000 key space), then `callgrind_control
# --dump`; the dump's total Ir (instructions executed, every thread, the server's background
# ticks included) divided by N is the figure. Output: one row per test with both counts and the
# ratio engine/redis-server (lower is better for the engine; 1.00 = as many instructions).
#
# The total includes each server's timer-driven background work, whose cost is per second, not
# per request: under valgrind on a loaded machine a run lasts longer and that share grows.
# redis-server's `serverCron` (10 times a second; its jemalloc statistics alone) was 30 % of a
# GET run's total on 2026-12-06, the engine's background tasks 4 %. So each row also gives the
# request path alone ("fg"): the total less the inclusive cost of redis-server's `serverCron`
# and of the engine's `periodic_tasks`, `replication_task`, `persistence_task` and
# `tls_reload_task` (callgrind_annotate). The fg ratio is the one that does not move with the
# machine's load.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-5000}
CLIENTS=${CLIENTS:-4}
TESTS=${TESTS:-get,set,incr,lpush}
PIPELINES=${PIPELINES:-"1"}
EXTRA=${EXTRA-"set:16"}  # extra test:pipeline rows (the pipelined batch)
ENGINE=${ENGINE:-}

if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
  echo "needs valgrind (Debian package valgrind)" >&2; exit 1
fi
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "needs redis-server and redis-benchmark (hack/install-test-deps.sh)" >&2; exit 1
fi
if [[ -z $ENGINE ]]; then
  echo "building the engine (release)..." >&2
  cargo build --release --locked --bin redispair-engine >&2
  ENGINE=${CARGO_TARGET_DIR:-target}/release/redispair-engine
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n ${ANNOTATE:-} ]]; then echo "profiles kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

wait_ping() { # port pid: valgrind starts a server 20-50x slower, so up to 120 s
  local deadline=$((SECONDS + 120))
  until redis-cli -p "$1" ping >/dev/null 2>&1; do
    kill -0 "$2" 2>/dev/null || { echo "server on port $1 exited" >&2; exit 1; }
    (( SECONDS < deadline )) || { echo "server on port $1 did not start" >&2; exit 1; }
    sleep 0.2
  done
}

CG=(valgrind --tool=callgrind --dump-instr=no --collect-jumps=no)
RPORT=$(free_port)
mkdir -p "$work/redis" "$work/engine"
"${CG[@]}" --callgrind-out-file="$work/redis.out" \
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --databases 1 \
  --dir "$work/redis" --daemonize no --loglevel warning >"$work/redis.log" 2>&1 &
RPID=$!; pids+=("$RPID")
EPORT=$(free_port)
"${CG[@]}" --callgrind-out-file="$work/engine.out" \
  "$ENGINE" --port "$EPORT" --bind 127.0.0.1 --persistence off --databases 1 \
  --dir "$work/engine" --loglevel warning >"$work/engine.log" 2>&1 &
EPID=$!; pids+=("$EPID")
wait_ping "$RPORT" "$RPID"
wait_ping "$EPORT" "$EPID"

# background FILE REGEX -> the inclusive instructions of the functions whose name matches REGEX
# (their symbols, not their inlined fragments: those lines end in the object's name)
background() {
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null \
    | grep -E ":($2) \[" | awk '{ gsub(",", "", $1); s += $1 } END { print s + 0 }'
}
BG_REDIS='serverCron'
BG_ENGINE='redispair::engine::server::(periodic_tasks|replication_task|persistence_task|tls_reload_task)::\{\{closure\}\}'

# count PORT PID TEST PIPELINE OUTFILE BG_REGEX -> "instructions per request, the same less the
# background"
count() {
  local port=$1 pid=$2 t=$3 p=$4 before after ir
  redis-cli -p "$port" flushall >/dev/null
  # A first pass fills the key space, so GET finds values and both servers run warm.
  redis-benchmark -p "$port" -t "$t" -n "$N" -c "$CLIENTS" -P "$p" -r 100000 -q >/dev/null 2>&1
  callgrind_control --zero "$pid" >/dev/null 2>&1
  redis-benchmark -p "$port" -t "$t" -n "$N" -c "$CLIENTS" -P "$p" -r 100000 -q >/dev/null 2>&1
  before=$(find "$work" -name "$(basename "$5").*" | wc -l)
  callgrind_control --dump="$t-P$p" "$pid" >/dev/null 2>&1
  # The dump is written asynchronously: wait for its file (60 s at most).
  local deadline=$((SECONDS + 60)) f=''
  while :; do
    after=$(find "$work" -name "$(basename "$5").*" | wc -l)
    if (( after > before )); then
      f=$(find "$work" -name "$(basename "$5").*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
      ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)
      [[ -n $ir ]] && break
    fi
    (( SECONDS < deadline )) || { echo "no callgrind dump from pid $pid" >&2; exit 1; }
    sleep 0.2
  done
  local bg
  bg=$(background "$f" "$6")
  python3 -c "print(round($ir / $N), round(($ir - $bg) / $N))"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'); engine $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "instructions per request (callgrind Ir, every thread), N=$N requests per test, $CLIENTS clients"
printf '%-8s %3s %14s %14s %8s %10s %10s %8s\n' test P redis_Ir/req engine_Ir/req ratio redis_fg engine_fg fg_ratio

rows=()
IFS=, read -ra tests <<<"$TESTS"
for p in $PIPELINES; do
  for t in "${tests[@]}"; do rows+=("$t:$p"); done
done
for e in $EXTRA; do rows+=("$e"); done
for row in "${rows[@]}"; do
  t=${row%%:*} p=${row##*:}
  read -r r rfg < <(count "$RPORT" "$RPID" "$t" "$p" "$work/redis.out" "$BG_REDIS")
  read -r e efg < <(count "$EPORT" "$EPID" "$t" "$p" "$work/engine.out" "$BG_ENGINE")
  ratio=$(python3 -c "print(f'{$e/$r:.2f}')")
  fg_ratio=$(python3 -c "print(f'{$efg/$rfg:.2f}')")
  printf '%-8s %3s %14s %14s %8s %10s %10s %8s\n' "$t" "$p" "$r" "$e" "$ratio" "$rfg" "$efg" "$fg_ratio"
done
