#!/usr/bin/env bash
# Benchmark (not a test): what the engine's metrics endpoint and TLS cost on the request path.
# Three engines of one binary on this machine, measured in alternation with redis-benchmark:
#   base     plaintext, no metrics endpoint
#   metrics  plaintext, --metrics-port, scraped once a second for the whole run (what a
#            Prometheus with a 1 s interval does; 15-30 s is usual)
#   tls      --port 0 --tls-port (rustls, tls-auth-clients no), redis-benchmark --tls
# and, for reference, redis-server with TLS. Prints ops/s and p99 per test and pipeline depth,
# and the ratios metrics/base and tls/base (redis-server tls/plain beside it): ratios are what
# matter, every server shares the machine's state during the run.
#
#   hack/bench/overhead.sh                         # -n 200000 per run, 3 rounds (a few minutes)
#   N=50000 ROUNDS=1 hack/bench/overhead.sh        # quick
#   ENGINE=target/debug/redispair-engine hack/bench/overhead.sh   # a given binary (no build)
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get}
PIPELINES=${PIPELINES:-"1 16"}
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

echo "machine: $(nproc) cores, $(uname -r); engine $ENGINE; redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "requests per run: $N, clients: $CLIENTS, rounds: $ROUNDS (medians)"

bench() { # test pipeline redis-benchmark-args... -> "rps p99"
  local t=$1 p=$2; shift 2
  redis-benchmark "$@" -t "$t" -n "$N" -c "$CLIENTS" -P "$p" --csv 2>/dev/null \
    | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
hdr, data = rows[0], rows[1]
print(data[hdr.index("rps")], data[hdr.index("p99_latency_ms")])'
}
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

printf '%-5s %3s %12s %12s %12s %12s %12s %9s %9s %9s\n' test P base metrics tls redis redis_tls \
  metrics/b tls/b r_tls/r
IFS=, read -ra tests <<<"$TESTS"
for p in $PIPELINES; do
  for t in "${tests[@]}"; do
    declare -A rps=()
    for _ in $(seq "$ROUNDS"); do
      # In alternation, so a change in the machine's load hits every server.
      read -r v _ < <(bench "$t" "$p" -p "$BASE");                 rps[base]+="$v "
      read -r v _ < <(bench "$t" "$p" -p "$METRICS");              rps[metrics]+="$v "
      read -r v _ < <(bench "$t" "$p" -p "$TLS" "${TLS_CLI[@]}");  rps[tls]+="$v "
      read -r v _ < <(bench "$t" "$p" -p "$RPORT");                rps[redis]+="$v "
      read -r v _ < <(bench "$t" "$p" -p "$RTLS" "${TLS_CLI[@]}"); rps[redis_tls]+="$v "
    done
    # shellcheck disable=SC2086 # each entry is a list of numbers
    {
      b=$(median ${rps[base]}); m=$(median ${rps[metrics]}); s=$(median ${rps[tls]})
      r=$(median ${rps[redis]}); rs=$(median ${rps[redis_tls]})
    }
    printf '%-5s %3s %12.0f %12.0f %12.0f %12.0f %12.0f %9s %9s %9s\n' "$t" "$p" "$b" "$m" "$s" "$r" "$rs" \
      "$(python3 -c "print(f'{$m/$b:.2f}')")" "$(python3 -c "print(f'{$s/$b:.2f}')")" \
      "$(python3 -c "print(f'{$rs/$r:.2f}')")"
    unset rps
  done
done
