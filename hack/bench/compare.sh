#!/usr/bin/env bash
# Benchmark (not a test): the engine against Debian's redis-server on the same machine, same
# flags (no persistence, one database), measured in alternation in one run with redis-benchmark.
# Prints, per test and pipeline depth, ops/s and p99 for both and the ratio engine/redis-server,
# then bytes per key after loading 1M keys. Ratios are what matter: both servers share the
# machine's state during the run.
#
#   hack/bench/compare.sh                # full run (-n 1000000; several minutes)
#   N=200000 hack/bench/compare.sh       # quicker
#   ROUNDS=3 hack/bench/compare.sh       # each test 3 times in alternation, medians reported
#   ENGINE_ARGS="--worker-threads 1" hack/bench/compare.sh     # extra engine flags
#   ENGINE=path/to/redispair-engine hack/bench/compare.sh    # a given binary, no build
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-1000000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,lpush,lpop,sadd,hset,zadd,mset}
KEYS=${KEYS:-1000000}
PIPELINES=${PIPELINES:-"1 16"}
ROUNDS=${ROUNDS:-1}

hack/install-test-deps.sh >/dev/null
# shellcheck source=hack/lib/python.sh
source hack/lib/python.sh   # the same python3 as the tests (only its standard library is used here)
export PATH=$REDISPAIR_PYTHON_VENV/bin:$PATH
if [[ -z ${ENGINE:-} ]]; then
  echo "building the engine (release)..." >&2
  cargo build --release --bin redispair-engine >&2
  ENGINE=${CARGO_TARGET_DIR:-target}/release/redispair-engine
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_ping() { # port
  for _ in $(seq 1 500); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "server on port $1 did not start" >&2; exit 1
}

# Both servers are started from this shell (not a subshell) so cleanup knows their PIDs.
RPORT=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --databases 1 \
  --dir "$work/redis" --daemonize no --loglevel warning >/dev/null 2>&1 &
RPID=$!; pids+=("$RPID")
EPORT=$(free_port)
# shellcheck disable=SC2086 # ENGINE_ARGS is a list of flags
"$ENGINE" --port "$EPORT" --bind 127.0.0.1 --persistence off --databases 1 \
  --dir "$work/engine" --loglevel warning ${ENGINE_ARGS:-} >/dev/null 2>&1 &
EPID=$!; pids+=("$EPID")
wait_ping "$RPORT"
wait_ping "$EPORT"

echo "machine: $(nproc) cores, $(uname -r); redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "requests per test: $N, clients: $CLIENTS, rounds: $ROUNDS (medians)"
printf '%-8s %3s %14s %14s %8s %10s %10s\n' test P redis_ops/s engine_ops/s ratio redis_p99 engine_p99

bench() { # port test pipeline -> "rps p99"
  redis-benchmark -p "$1" -t "$2" -n "$N" -c "$CLIENTS" -P "$3" --csv 2>/dev/null \
    | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
hdr, data = rows[0], rows[1]
print(data[hdr.index("rps")], data[hdr.index("p99_latency_ms")])'
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

IFS=, read -ra tests <<<"$TESTS"
for p in $PIPELINES; do
  for t in "${tests[@]}"; do
    # Alternate the two servers ROUNDS times so a change in the machine's load hits both.
    r_rpss=() r_p99s=() e_rpss=() e_p99s=()
    for _ in $(seq "$ROUNDS"); do
      redis-cli -p "$RPORT" flushall >/dev/null; redis-cli -p "$EPORT" flushall >/dev/null
      read -r r_rps r_p99 < <(bench "$RPORT" "$t" "$p")
      read -r e_rps e_p99 < <(bench "$EPORT" "$t" "$p")
      r_rpss+=("$r_rps") r_p99s+=("$r_p99") e_rpss+=("$e_rps") e_p99s+=("$e_p99")
    done
    r_rps=$(median "${r_rpss[@]}") r_p99=$(median "${r_p99s[@]}")
    e_rps=$(median "${e_rpss[@]}") e_p99=$(median "${e_p99s[@]}")
    ratio=$(python3 -c "print(f'{float($e_rps)/float($r_rps):.2f}')")
    printf '%-8s %3s %14.0f %14.0f %8s %10.3f %10.3f\n' "$t" "$p" "$r_rps" "$e_rps" "$ratio" "$r_p99" "$e_p99"
    echo "ratio engine/redis-server ops/s = $ratio ($t, P$p)" >>"$work/ratios"
  done
done

# Memory per key after loading KEYS keys with redis-benchmark's default 3-byte values.
mem() { # port pid -> "used_memory rss_bytes"
  local used rss
  used=$(redis-cli -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory:\(.*\)/\1/p')
  rss=$(( $(awk '{print $2}' "/proc/$2/statm") * 4096 ))
  echo "$used $rss"
}
load_and_measure() { # port pid
  redis-cli -p "$1" flushall >/dev/null
  read -r u0 r0 < <(mem "$1" "$2")
  redis-benchmark -p "$1" -t set -n "$KEYS" -r "$KEYS" -P 32 -c 20 -q >/dev/null 2>&1
  local keys; keys=$(redis-cli -p "$1" dbsize)
  read -r u1 r1 < <(mem "$1" "$2")
  python3 -c "print(f'{$keys} {($u1-$u0)/$keys:.1f} {($r1-$r0)/$keys:.1f}')"
}
read -r rk ru rr < <(load_and_measure "$RPORT" "$RPID")
read -r ek eu er < <(load_and_measure "$EPORT" "$EPID")
echo
echo "memory after loading keys (redis-benchmark -r $KEYS, 3-byte values):"
printf '%-14s %10s %18s %18s\n' server keys used_memory/key rss_delta/key
printf '%-14s %10s %18s %18s\n' redis-server "$rk" "$ru" "$rr"
printf '%-14s %10s %18s %18s\n' engine "$ek" "$eu" "$er"
echo "ratio engine/redis-server bytes per key (rss) = $(python3 -c "print(f'{$er/$rr:.2f}')")"
