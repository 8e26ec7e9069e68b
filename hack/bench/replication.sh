#!/usr/bin/env bash
# Replication benchmark: a master and a replica (release build, loopback), redis-benchmark SET
# load in async then semi-sync mode. Reports throughput of each mode, their ratio, and the
# replication lag (master offset minus the replica's acknowledged offset, sampled every 20 ms)
# at p50 and p99. Usage: hack/bench/replication.sh [requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-200000}
C=${2:-50}
MPORT=${MPORT:-7101}
RPORT=${RPORT:-7102}
WORK=$(mktemp -d)
MPID= RPID=
cleanup() {
  kill $MPID $RPID 2>/dev/null || true
  wait $MPID $RPID 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --bin redispair-engine >/dev/null
BIN=target/release/redispair-engine
$BIN --port "$MPORT" --dir "$WORK/m" --loglevel warning &
MPID=$!
$BIN --port "$RPORT" --dir "$WORK/r" --loglevel warning &
RPID=$!
for p in "$MPORT" "$RPORT"; do
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
done
redis-cli -p "$RPORT" replicaof 127.0.0.1 "$MPORT" >/dev/null
until redis-cli -p "$RPORT" info replication | grep -q 'master_link_status:up'; do sleep 0.05; done

# Sample lag in bytes until the file $1.stop exists.
sample_lag() {
  local out=$1
  : >"$out"
  while [ ! -e "$out.stop" ]; do
    redis-cli -p "$MPORT" info replication | tr -d '\r' | awk -F'[:,=]' '
      /^master_repl_offset:/ { m = $2 }
      /^slave0:/ { for (i = 1; i <= NF; i++) if ($i == "offset") o = $(i + 1) }
      END { if (m != "" && o != "") print m - o }' >>"$out"
    sleep 0.02
  done
}

percentile() { sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int(NR * p / 100); if (i < 1) i = 1; print a[i] }'; }

run() {
  local mode=$1
  redis-cli -p "$MPORT" config set replication-mode "$mode" >/dev/null
  sample_lag "$WORK/lag-$mode" &
  local sp=$!
  local rps
  rps=$(redis-benchmark -p "$MPORT" -t set -n "$N" -c "$C" -r 100000 -q |
    tr '\r' '\n' | awk '/requests per second/ { print $2 }' | tail -1)
  touch "$WORK/lag-$mode.stop"
  wait $sp
  echo "$rps"
}

ASYNC=$(run async)
SEMI=$(run semi-sync)
echo "async:     ${ASYNC} SET/s, lag p50 $(percentile "$WORK/lag-async" 50) B, p99 $(percentile "$WORK/lag-async" 99) B"
echo "semi-sync: ${SEMI} SET/s, lag p50 $(percentile "$WORK/lag-semi-sync" 50) B, p99 $(percentile "$WORK/lag-semi-sync" 99) B"
awk -v a="$ASYNC" -v s="$SEMI" 'BEGIN { if (a > 0) printf "semi-sync / async throughput: %.2f\n", s / a }'
