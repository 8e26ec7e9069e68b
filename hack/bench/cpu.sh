#!/usr/bin/env bash
# Benchmark (not a test): what a request costs the server, the engine against Debian's
# redis-server in one run: CPU time (user + system, every thread) and voluntary context
# switches per request, read from /proc while redis-benchmark drives each server in turn.
#
#   hack/bench/cpu.sh                               # SET and MSET at -P 16, SET at -P 1
#   TESTS=set,get,mset PIPELINES="16 1" ROUNDS=3 N=1000000 hack/bench/cpu.sh
#   ENGINE=path/to/redispair-engine hack/bench/cpu.sh   # a given binary (no build)
#   ENGINES="old=path/a new=path/b" hack/bench/cpu.sh   # several engine builds side by side
#
# Why beside compare.sh: on this 2-core VM ops/s moves ±10 % between identical runs and more
# when anything else runs, and callgrind's instruction counts (instructions.sh) miss what costs
# time without instructions: store-forwarding stalls, cache misses, and the kernel's side of
# the sockets and of waking threads. CPU time per request sees all of that, and context switches
# per request show how often a server sleeps and is woken again, which in a VM costs an
# interrupt and a switch each time (2026-12-06: the engine made 3× redis-server's switches per
# 10-key MSET at -P 16, replying to each connection as soon as its requests ran; see
# docs/benchmarks.md). Both are per request, so they move far less with the machine's load than
# ops/s, but a busy machine still shares caches: compare rows of one run.
#
# Each round starts each server fresh (same flags as compare.sh: no persistence, one database),
# runs N requests of the test with CLIENTS connections, and reads /proc/PID/stat (utime+stime,
# in clock ticks: keep a run above ~1 s so a tick is under 1 %) and every thread's
# voluntary_ctxt_switches before and after. Medians of ROUNDS rounds; ratio = engine/redis
# (below 1.00: the engine costs less).
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-1000000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,mset}
PIPELINES=${PIPELINES:-"16 1"}
ROUNDS=${ROUNDS:-3}

hack/install-test-deps.sh >/dev/null
# shellcheck source=hack/lib/python.sh
source hack/lib/python.sh
export PATH=$REDISPAIR_PYTHON_VENV/bin:$PATH
if [[ -z ${ENGINES:-} ]]; then
  if [[ -z ${ENGINE:-} ]]; then
    echo "building the engine (release)..." >&2
    cargo build --release --bin redispair-engine >&2
    ENGINE=${CARGO_TARGET_DIR:-target}/release/redispair-engine
  fi
  ENGINES="engine=$ENGINE"
fi
TICK=$(getconf CLK_TCK)

work=$(mktemp -d)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat "/proc/$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }

# measure BIN TEST P -> "ops/s cpu_us_per_request switches_per_request"
measure() {
  local bin=$1 test=$2 p=$3 port dir
  port=$(free_port)
  dir=$(mktemp -d "$work/s.XXXXXX")
  if [[ $bin == redis ]]; then
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --databases 1 \
      --dir "$dir" --daemonize no --loglevel warning >/dev/null 2>&1 &
  else
    "$bin" --port "$port" --bind 127.0.0.1 --persistence off --databases 1 --dir "$dir" \
      --loglevel warning >/dev/null 2>&1 &
  fi
  pid=$!
  local up=""
  for _ in $(seq 1 500); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then up=1; break; fi
    sleep 0.02
  done
  [[ -n $up ]] || { echo "server $bin did not start" >&2; exit 1; }
  local c0 s0 c1 s1 rps
  c0=$(cpu_ticks "$pid"); s0=$(switches "$pid")
  rps=$(redis-benchmark -p "$port" -t "$test" -n "$N" -c "$CLIENTS" -P "$p" --csv 2>/dev/null \
    | tail -n1 | cut -d, -f2 | tr -d '"')
  c1=$(cpu_ticks "$pid"); s1=$(switches "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir"
  python3 -c "import sys; r,c,s,n,t=map(float,sys.argv[1:]); print(f'{r:.0f} {c*1e6/t/n:.3f} {s/n:.4f}')" \
    "$rps" "$((c1 - c0))" "$((s1 - s0))" "$N" "$TICK"
}

median() { python3 -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

echo "machine: $(nproc) cores, $(uname -r); redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "requests per test: $N, clients: $CLIENTS, rounds: $ROUNDS (medians); cpu in µs per request, sw = voluntary context switches per request"
printf '%-8s %3s %-10s %10s %8s %8s %9s %9s\n' test P server ops/s cpu_us sw cpu_ratio sw_ratio
IFS=, read -ra tests <<<"$TESTS"
for test in "${tests[@]}"; do
  for p in $PIPELINES; do
    declare -A rps=() cpu=() sw=()
    for ((r = 0; r < ROUNDS; r++)); do
      for entry in "redis=redis" $ENGINES; do
        name=${entry%%=*}
        read -r a b c < <(measure "${entry#*=}" "$test" "$p")
        rps[$name]+=" $a"; cpu[$name]+=" $b"; sw[$name]+=" $c"
      done
    done
    # shellcheck disable=SC2086 # the accumulated values are word lists
    rc=$(median ${cpu[redis]})
    # shellcheck disable=SC2086
    rs=$(median ${sw[redis]})
    for entry in "redis=redis" $ENGINES; do
      name=${entry%%=*}
      # shellcheck disable=SC2086
      read -r mr mc ms < <(echo "$(median ${rps[$name]}) $(median ${cpu[$name]}) $(median ${sw[$name]})")
      python3 -c "import sys
t,p,n,r,c,s,rc,rs=sys.argv[1:]
print(f'{t:<8} {p:>3} {n:<10} {float(r):>10.0f} {float(c):>8.3f} {float(s):>8.4f} {float(c)/float(rc):>9.2f} {(float(s)/float(rs) if float(rs) else float(\"nan\")):>9.2f}')" \
        "$test" "$p" "$name" "$mr" "$mc" "$ms" "$rc" "$rs"
    done
    unset rps cpu sw
  done
done
