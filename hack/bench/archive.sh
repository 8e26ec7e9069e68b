#!/usr/bin/env bash
# Benchmark (not a test): what continuous archiving costs (issue 16, docs/benchmarks.md).
# Two engines of one binary, both with the write log on (`--persistence on`, the pods'
# setting), one of them archiving (`--archive-url`, default a file:// target on this disk: the
# archiver's whole cost, reading the log back, checksumming and writing it again, lands on this
# machine; an S3 endpoint elsewhere would cost less here). Prints:
#   1. write throughput (redis-benchmark SET, pipeline 1) at 1 and 16 parallel clients, the
#      two engines measured in alternation, medians of ROUNDS, and the cost in percent;
#   2. a base backup of SIZE_MB of data (REDISPAIR BACKUP to `completed`, the archive caught
#      up first so the figure is the backup's own), and the snapshot's part of it;
#   3. a restore of that backup (`redispair-engine restore`) and the start of an engine on the
#      restored directory, beside a restart of the engine on its own directory (the same load).
# The machine's load (uptime) is printed before and after: figures from a busy machine are
# comparisons between the two engines, not absolutes.
#
#   hack/bench/archive.sh                             # N=100000, 3 rounds, 1024 MB (~5 min)
#   N=20000 ROUNDS=1 SIZE_MB=100 hack/bench/archive.sh   # quick
#   ENGINE=/path/to/redispair-engine hack/bench/archive.sh   # a given binary (no build)
#   ARCHIVE_URL=s3://bucket/prefix hack/bench/archive.sh     # another store (its AWS_* in the
#                                                            # environment)
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 16"}
SIZE_MB=${SIZE_MB:-1024}
VALUE=${VALUE:-1000}

hack/install-test-deps.sh >/dev/null
# shellcheck source=hack/lib/python.sh
source hack/lib/python.sh
export PATH=$REDISPAIR_PYTHON_VENV/bin:$PATH
if [[ -z ${ENGINE:-} ]]; then
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
  rm -rf "$work"
}
trap cleanup EXIT
ARCHIVE_URL=${ARCHIVE_URL:-file://$work/archive}
ADMIN=(--user op --pass secret --no-auth-warning)

wait_ping() { # port
  for _ in $(seq 1 1500); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "engine on port $1 did not start" >&2; exit 1
}
engine() { # name port args... (started from this shell, so cleanup knows the PID)
  local name=$1 port=$2; shift 2
  "$ENGINE" --port "$port" --bind 127.0.0.1 --persistence on --dir "$work/$name" \
    --admin-user op --admin-password secret --loglevel warning "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
}
now() { python3 -c 'import time; print(time.monotonic())'; }
since() { python3 -c "import time; print(f'{time.monotonic() - $1:.1f}')"; }
info() { redis-cli -p "$1" "${ADMIN[@]}" info persistence | tr -d '\r' | sed -n "s/^$2://p"; }
offset() { redis-cli -p "$1" info replication | tr -d '\r' | sed -n 's/^master_repl_offset://p'; }

BASE=$(free_port); ARCH=$(free_port)
engine base "$BASE"
engine archiving "$ARCH" --archive-url "$ARCHIVE_URL"
wait_ping "$BASE"; wait_ping "$ARCH"

echo "machine: $(nproc) cores, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "engine: $ENGINE; archive: $ARCHIVE_URL"
echo
echo "1. write throughput (SET, ${VALUE}-byte values, pipeline 1, $N requests a run, medians of $ROUNDS)"
bench() { # port clients -> rps
  redis-benchmark -p "$1" -t set -n "$N" -c "$2" -P 1 -r 100000 -d "$VALUE" --csv 2>/dev/null \
    | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
print(rows[1][rows[0].index("rps")])'
}
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
printf '%8s %12s %12s %8s\n' clients "no archive" archiving cost
for c in $CLIENTS; do
  b=() a=()
  for _ in $(seq "$ROUNDS"); do
    # In alternation, so a change in the machine's load hits both engines.
    b+=("$(bench "$BASE" "$c")"); a+=("$(bench "$ARCH" "$c")")
  done
  mb=$(median "${b[@]}"); ma=$(median "${a[@]}")
  printf '%8s %12.0f %12.0f %7s%%\n' "$c" "$mb" "$ma" "$(python3 -c "print(f'{($mb-$ma)/$mb*100:+.1f}')")"
  echo "         rounds: no archive ${b[*]}; archiving ${a[*]}"
done
[[ $(info "$ARCH" archive_status) == ok ]] || { echo "the archiver is not ok: $(info "$ARCH" archive_last_error)" >&2; exit 1; }

echo
echo "2. base backup of ${SIZE_MB} MB (${VALUE}-byte values)"
keys=$((SIZE_MB * 1024 * 1024 / VALUE))
redis-cli -p "$ARCH" flushall >/dev/null
t=$(now)
python3 - "$keys" "$VALUE" <<'PY' | redis-cli -p "$ARCH" --pipe >/dev/null
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
value = b"v" * size
for i in range(n):
    k = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, value))
PY
echo "   filled: $keys keys in $(since "$t") s, used_memory $(redis-cli -p "$ARCH" info memory | tr -d '\r' | sed -n 's/^used_memory_human://p')"
end=$(offset "$ARCH")
t=$(now)
until (( $(info "$ARCH" archived_offset) >= end )); do sleep 0.2; done
echo "   archive caught up with the fill's log ($((end / 1048576)) MB of stream) $(since "$t") s after it ended"
t=$(now)
redis-cli -p "$ARCH" "${ADMIN[@]}" redispair backup bench1 >/dev/null
status() { redis-cli -p "$ARCH" "${ADMIN[@]}" redispair backup-status bench1 | tr -d '\r' | sed -n "/^$1\$/{n;p}"; }
until [[ $(status phase) == completed ]]; do
  [[ $(status phase) == failed ]] && { echo "backup failed: $(status error)" >&2; exit 1; }
  sleep 0.1
done
total=$(since "$t")
snap=$(( $(status end_time_ms) - $(status start_time_ms) ))
echo "   REDISPAIR BACKUP to completed: ${total} s (snapshot start to manifest: $((snap / 1000)).$(printf '%03d' $((snap % 1000))) s); $(( $(status size) / 1048576 )) MB snapshot"

echo
echo "3. restore of that backup"
t=$(now)
"$ENGINE" restore --from "$ARCHIVE_URL" --backup bench1 --dir "$work/restored" >"$work/restore.json"
echo "   redispair-engine restore: $(since "$t") s ($(cat "$work/restore.json"))"
RPORT=$(free_port)
t=$(now)
engine restored "$RPORT"
wait_ping "$RPORT"
until [[ $(redis-cli -p "$RPORT" info persistence | tr -d '\r' | sed -n 's/^loading://p') == 0 ]]; do sleep 0.05; done
echo "   an engine started on the restored directory answers, loaded: $(since "$t") s, $(redis-cli -p "$RPORT" dbsize) keys"
# The same load from the engine's own directory, for comparison.
redis-cli -p "$ARCH" shutdown >/dev/null 2>&1 || true
while redis-cli -p "$ARCH" ping >/dev/null 2>&1; do sleep 0.05; done
t=$(now)
engine archiving "$ARCH"
wait_ping "$ARCH"
until [[ $(redis-cli -p "$ARCH" info persistence | tr -d '\r' | sed -n 's/^loading://p') == 0 ]]; do sleep 0.05; done
echo "   (the archiving engine restarted on its own directory: $(since "$t") s)"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
