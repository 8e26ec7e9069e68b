#!/usr/bin/env bash
# Benchmark (not a test): what the engine's metrics endpoint and TLS cost on the request path.
# Three engines of one binary on this machine, measured in alternation with redis-benchmark:
#   base     plaintext, no metrics endpoint
#   metrics  plaintext, --metrics-port, scraped once a second for the whole run (what a
#            Prometheus with a 1 s interval does; 15-30 s is usual)
#   tls      --port 0 --tls-port (rustls, tls-auth-clients no), redis-benchmark --tls
# and Debian's redis-server (built with TLS: OpenSSL) on a plaintext and a TLS port, started
# once with both. For each test (SET, GET), number of clients (1 and 16) and pipeline depth
# (1), the median ops/s of ROUNDS runs of each server, and the ratios that matter, all from
# the same run (every server shares the machine's state while it runs):
#   tls/b      engine TLS / engine plaintext          (what TLS costs the engine)
#   r_tls/r    redis-server TLS / redis-server plain  (what TLS costs Redis)
#   tls/r_tls  engine TLS / redis-server TLS          (the engine against Redis, both TLS)
#   metrics/b  engine scraped every second / engine plaintext
# Then each server's p99 latency (ms, median of the rounds).
#
#   hack/bench/overhead.sh                         # -n 100000 per run, 3 rounds
#   N=20000 ROUNDS=1 hack/bench/overhead.sh        # quick
#   CLIENTS="1 16 50" PIPELINES="1 16" hack/bench/overhead.sh
#   ENGINE=target/release/redispair-engine hack/bench/overhead.sh   # a given binary (no build)
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-100000}
CLIENTS=${CLIENTS:-"1 16"}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-1}
ROUNDS=${ROUNDS:-3}

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

# A CA and a certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=bench \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -CAserial "$work/ca.srl" -days 2 -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null
tls_files=(--tls-cert-file "$work/tls.crt" --tls-key-file "$work/tls.key" --tls-ca-cert-file "$work/ca.crt")

wait_ping() { # redis-cli args...
  for _ in $(seq 1 500); do
    redis-cli "$@" ping >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "server ($*) did not start" >&2; exit 1
}

# Every server is started from this shell (not a subshell) so cleanup knows their PIDs.
engine() { # name port args...
  local name=$1 port=$2; shift 2
  "$ENGINE" --port "$port" --bind 127.0.0.1 --persistence off --databases 1 \
    --dir "$work/$name" --loglevel warning "$@" >/dev/null 2>&1 &
  pids+=("$!")
}
BASE=$(free_port); METRICS=$(free_port); MPORT=$(free_port); TLS=$(free_port)
RPORT=$(free_port); RTLS=$(free_port)
engine base "$BASE"
engine metrics "$METRICS" --metrics-port "$MPORT"
engine tls 0 --tls-port "$TLS" --tls-auth-clients no "${tls_files[@]}"
mkdir -p "$work/redis"
redis-server --port "$RPORT" --tls-port "$RTLS" --tls-auth-clients no "${tls_files[@]}" \
  --bind 127.0.0.1 --save "" --appendonly no --databases 1 --dir "$work/redis" \
  --daemonize no --loglevel warning >/dev/null 2>&1 &
pids+=("$!")
TLS_CLI=(--tls --cacert "$work/ca.crt")
wait_ping -p "$BASE"; wait_ping -p "$METRICS"; wait_ping -p "$TLS" "${TLS_CLI[@]}"; wait_ping -p "$RPORT"

# The scraper: GET /metrics once a second while the benchmark runs.
python3 - "$MPORT" <<'PY' &
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
while True:
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except Exception as e:
        print(f"scrape failed: {e}", file=sys.stderr)
    time.sleep(1)
PY
pids+=("$!")

# redis-server must really serve TLS on its TLS port (a build without TLS refuses --tls-port
# at start-up; this checks the handshake too).
redis-cli -p "$RTLS" "${TLS_CLI[@]}" ping >/dev/null || { echo "redis-server does not answer TLS on $RTLS" >&2; exit 1; }

echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo "engine: $ENGINE ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "requests per run: $N, rounds: $ROUNDS (medians), servers measured in alternation"

bench() { # test clients pipeline redis-benchmark-args... -> "rps p99"
  local t=$1 c=$2 p=$3; shift 3
  redis-benchmark "$@" -t "$t" -n "$N" -c "$c" -P "$p" --csv 2>/dev/null \
    | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
hdr, data = rows[0], rows[1]
print(data[hdr.index("rps")], data[hdr.index("p99_latency_ms")])'
}
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

servers=(base metrics tls redis redis_tls)
printf '%-4s %3s %3s %10s %10s %10s %10s %10s %7s %7s %9s %9s   p99 ms: %s\n' test c P base metrics tls redis redis_tls \
  tls/b r_tls/r tls/r_tls metrics/b "${servers[*]}"
IFS=, read -ra tests <<<"$TESTS"
for c in $CLIENTS; do
  for p in $PIPELINES; do
    for t in "${tests[@]}"; do
      declare -A rps=() p99=()
      for _ in $(seq "$ROUNDS"); do
        # In alternation, so a change in the machine's load hits every server.
        read -r v l < <(bench "$t" "$c" "$p" -p "$BASE");                 rps[base]+="$v "; p99[base]+="$l "
        read -r v l < <(bench "$t" "$c" "$p" -p "$METRICS");              rps[metrics]+="$v "; p99[metrics]+="$l "
        read -r v l < <(bench "$t" "$c" "$p" -p "$TLS" "${TLS_CLI[@]}");  rps[tls]+="$v "; p99[tls]+="$l "
        read -r v l < <(bench "$t" "$c" "$p" -p "$RPORT");                rps[redis]+="$v "; p99[redis]+="$l "
        read -r v l < <(bench "$t" "$c" "$p" -p "$RTLS" "${TLS_CLI[@]}"); rps[redis_tls]+="$v "; p99[redis_tls]+="$l "
      done
      # shellcheck disable=SC2086 # each entry is a list of numbers
      {
        b=$(median ${rps[base]}); m=$(median ${rps[metrics]}); s=$(median ${rps[tls]})
        r=$(median ${rps[redis]}); rs=$(median ${rps[redis_tls]})
        lat=""; for k in "${servers[@]}"; do lat+="$(median ${p99[$k]}) "; done
      }
      printf '%-4s %3s %3s %10.0f %10.0f %10.0f %10.0f %10.0f %7s %7s %9s %9s   %s\n' "$t" "$c" "$p" "$b" "$m" "$s" "$r" "$rs" \
        "$(ratio "$s" "$b")" "$(ratio "$rs" "$r")" "$(ratio "$s" "$rs")" "$(ratio "$m" "$b")" "$lat"
      unset rps p99
    done
  done
done
