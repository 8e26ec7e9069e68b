#!/usr/bin/env bash
# Runs Redis's own Tcl test suite (Redis 7.0.15, from Debian's source package) in external mode
# against the engine, or against Debian's redis-server for the reference figure (issue 13).
#
#   hack/redis-suite.sh                          # against the engine (release build)
#   hack/redis-suite.sh --server redis           # against redis-server, the reference
#   hack/redis-suite.sh --floor 1500             # exit 1 when fewer tests pass (CI)
#   hack/redis-suite.sh --unit unit/type/incr    # one unit (repeatable), for a quick look
#   hack/redis-suite.sh --engine PATH --out DIR  # a given engine binary; results in DIR
#
# Every unit of the suite's `all_tests` list runs on its own fresh server (started here on a free
# port, waited for with PING, stopped after):
#   ./runtest --host 127.0.0.1 --port P --single UNIT --tags -slow --durable
# External mode is how Redis's CI runs the suite against a server it did not start
# (.github/workflows/external.yml): units and blocks tagged external:skip (replication, AOF/RDB
# loading, cluster, anything that starts its own redis-server) are skipped by the suite itself
# and reported as [ignore]. --durable makes a test that raises an error (an unknown command,
# say) count as one failed test instead of aborting its whole unit; an error outside any test
# (a block's setup) still aborts the unit, which then counts as one failure and is named
# "aborted" in failures.txt with the results it had so far.
#
# Each unit has a time limit (UNIT_TIMEOUT, 300 s; shorter for units known to hang, see
# unit_timeout below). The suite's own no-progress timeout (PROGRESS_TIMEOUT, 120 s: the slowest
# test, a HyperLogLog fuzzer, runs 41-45 s on a loaded machine) fires first when one test hangs
# in a unit with the long limit, and names it. A unit stopped by either counts as one failure
# (tests it ran before count as they came out).
#
# Output: per unit `UNIT: N passed, N failed, N skipped (T s)` on stdout, and as the last line
# `redis-suite: N passed, N failed, N skipped`. In --out (default
# ${TMPDIR:-/tmp}/redispair-redis-suite/SERVER): failures.txt (one `UNIT: test name` a line),
# summary.txt (the per-unit lines), logs/UNIT.log (the suite's output) and logs/UNIT.server.log.
# Progress and timings go to stderr.
#
# Needs: tclsh 8.5+ (Debian's tcl), redis-server and redis-cli (redis-tools; the suite's
# integration/redis-cli and redis-benchmark units call src/redis-cli and src/redis-benchmark,
# linked to Debian's), python3, curl; hack/install-test-deps.sh installs what is missing.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/lib/log.sh
source hack/lib/log.sh
# shellcheck source=hack/lib/prereqs.sh
source hack/lib/prereqs.sh

REDIS_VERSION=7.0.15
TARBALL_URL=http://deb.debian.org/debian/pool/main/r/redis/redis_${REDIS_VERSION}.orig.tar.gz
TARBALL_SHA256=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982
CACHE_DIR=${REDISPAIR_CACHE:-$HOME/.cache/redispair}/redis-suite/$REDIS_VERSION
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
PROGRESS_TIMEOUT=${PROGRESS_TIMEOUT:-120}

server=engine floor='' out='' engine='' units=()
while (( $# > 0 )); do
  case $1 in
    --server) server=${2:?--server engine|redis}; shift 2 ;;
    --floor) floor=${2:?--floor N}; shift 2 ;;
    --out) out=${2:?--out DIR}; shift 2 ;;
    --engine) engine=${2:?--engine PATH}; shift 2 ;;
    --unit) units+=("${2:?--unit UNIT}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $server == engine || $server == redis ]] || die "--server must be engine or redis, not $server"
[[ -z $floor || $floor =~ ^[0-9]+$ ]] || die "--floor takes a number, not $floor"
# The suite's own ports: its test server listens on --baseport − 32 (the first free one of a
# hundred from there) and would start servers from --baseport up; its default, 21111, lies in
# the range the project's tests pick ports from, and two runs at once (CI beside a developer's
# run) fought over it: the second's every unit stopped at "couldn't open socket: address already
# in use". So each run takes one of eight slots by a lock held until it ends (flock on a file
# descriptor: released whatever ends the run), with its own port range below the kernel's
# ephemeral ports and above the tests' (20000-30000), and its own default output directory.
SLOT=
for k in 0 1 2 3 4 5 6 7; do
  exec {slot_fd}>"${TMPDIR:-/tmp}/redispair-redis-suite-slot$k.lock"
  if flock -n "$slot_fd"; then SLOT=$k; break; fi
  exec {slot_fd}>&-
done
[[ -n $SLOT ]] || die "eight Redis suite runs already hold every port slot (${TMPDIR:-/tmp}/redispair-redis-suite-slot*.lock)"
BASEPORT=$(( 30111 + SLOT * 200 ))
suffix=
(( SLOT == 0 )) || suffix=-slot$SLOT
out=${out:-${TMPDIR:-/tmp}/redispair-redis-suite/$server$suffix}

# Units known to hang against the engine get a shorter time limit (HANG_TIMEOUT), so a run stays
# within CI's budget; docs/compatibility.md says why each hangs. None does today: unit/tracking
# was the last (a test waited forever for an invalidation) until CLIENT TRACKING was
# implemented; it now takes ~2 s, like unit/pause and unit/pubsub since their fixes.
HANG_UNITS=()
HANG_TIMEOUT=30

# unit_timeout UNIT: the time limit of UNIT, in seconds.
unit_timeout() {
  local u
  for u in "${HANG_UNITS[@]}"; do
    [[ $1 == "$u" ]] && { echo "$HANG_TIMEOUT"; return; }
  done
  echo "$UNIT_TIMEOUT"
}

T_ALL=$SECONDS

stage "redis-suite: prerequisites (hack/install-test-deps.sh)"
hack/install-test-deps.sh
need_commands curl sha256sum python3 redis-cli redis-server timeout
tclsh=
for v in 8.7 8.6 8.5; do command -v "tclsh$v" >/dev/null 2>&1 && { tclsh=tclsh$v; break; }; done
[[ -n $tclsh ]] || die "the Redis suite needs tclsh 8.5 or newer (Debian package tcl): hack/install-test-deps.sh installs it"
log "using $($tclsh <<<'puts "tclsh [info patchlevel]"'), $(redis-server --version | cut -d' ' -f1-3)"

stage "redis-suite: Redis $REDIS_VERSION test suite (cached in $CACHE_DIR)"
src_tree=$CACHE_DIR/redis-$REDIS_VERSION
if [[ ! -f $src_tree/tests/test_helper.tcl ]]; then
  mkdir -p "$CACHE_DIR"
  tarball=$CACHE_DIR/redis_$REDIS_VERSION.orig.tar.gz
  if [[ ! -f $tarball ]]; then
    log "downloading $TARBALL_URL"
    curl -fsSL --retry 3 -o "$tarball.part" "$TARBALL_URL"
    mv "$tarball.part" "$tarball"
  fi
  have=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [[ $have != "$TARBALL_SHA256" ]]; then
    rm -f "$tarball"
    die "$tarball: sha256 $have, expected $TARBALL_SHA256 (removed; a re-run downloads it again)"
  fi
  log "sha256 verified; extracting"
  # Extracted beside the final place and renamed: an interrupted extraction leaves no half tree.
  rm -rf "$src_tree.tmp"
  mkdir -p "$src_tree.tmp"
  tar -xzf "$tarball" -C "$src_tree.tmp" --strip-components=1
  mv "$src_tree.tmp" "$src_tree"
else
  log "already extracted: $src_tree"
fi

# The suite writes under tests/tmp; each run gets its own copy of tests/ (2.7 MB), so the cache
# stays pristine and runs against both servers can share it. src/ holds Debian's binaries where
# the suite looks for its own build.
stage "redis-suite: preparing $out"
rm -rf "$out"
mkdir -p "$out/logs" "$out/tree/src" "$out/data"
cp -R "$src_tree/tests" "$src_tree/runtest" "$out/tree/"
# unit/acl and unit/acl-v2 are tagged external:skip as a whole, yet their first server block (most
# of their tests: ACL SETUSER, GETUSER, LOG, DRYRUN, selectors...) only needs a server it may
# add users to, which a fresh server per unit is. The tag is taken off that block, for both
# servers alike (the reference figure counts them too); the later blocks, which restart the
# server with an ACL file, stay skipped.
for f in unit/acl.tcl unit/acl-v2.tcl; do
  sed -i '1s/^start_server {tags {"acl external:skip"}} {$/start_server {tags {"acl"}} {/' "$out/tree/tests/$f"
  head -1 "$out/tree/tests/$f" | grep -q 'tags {"acl"}' || die "tests/$f: its first line changed; update the external:skip patch"
done
for b in redis-cli redis-benchmark redis-server redis-check-aof redis-check-rdb; do
  p=$(command -v "$b" 2>/dev/null) && ln -s "$p" "$out/tree/src/$b"
done
if (( ${#units[@]} == 0 )); then
  # The unit list is the suite's own: the `set ::all_tests { ... }` block of test_helper.tcl.
  mapfile -t units < <(awk '/^set ::all_tests \{/{on=1; next} on && /^\}/{exit} on{print $1}' \
    "$out/tree/tests/test_helper.tcl")
fi
(( ${#units[@]} > 0 )) || die "no units found in tests/test_helper.tcl"

if [[ $server == engine ]]; then
  if [[ -z $engine ]]; then
    stage "redis-suite: building the engine (cargo build --release --bin redispair-engine)"
    cargo build --release --locked --bin redispair-engine
    engine=${CARGO_TARGET_DIR:-target}/release/redispair-engine
  fi
  [[ -x $engine ]] || die "no engine binary at $engine"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER_PID='' RUN_PID=''
# On any exit: the suite run (timeout(1) passes the signal to its whole group) and the server.
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  if [[ -n $RUN_PID ]]; then kill "$RUN_PID" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server PORT DIR LOG: a fresh server of the kind asked for, in the background.
start_server() {
  local port=$1 dir=$2 logf=$3
  mkdir -p "$dir"
  if [[ $server == engine ]]; then
    "$engine" --port "$port" --bind 127.0.0.1 --dir "$dir" >"$logf" 2>&1 &
  else
    # As Redis's CI starts the server it tests in external mode (.github/workflows/external.yml),
    # and without persistence (the engine's data directory is fresh per unit, too).
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
      --enable-protected-configs yes --enable-debug-command yes --enable-module-command yes \
      >"$logf" 2>&1 &
  fi
  SERVER_PID=$!
}

# wait_ping PORT: until the server answers PING, for at most 20 s; fails at once when it exits.
wait_ping() {
  local deadline=$((SECONDS + 20))
  until [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    (( SECONDS < deadline )) || return 1
    sleep 0.05
  done
}

# stop_server: SIGTERM, then SIGKILL after 10 s.
stop_server() {
  local deadline=$((SECONDS + 10))
  kill "$SERVER_PID" 2>/dev/null || true
  while kill -0 "$SERVER_PID" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.05; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# parse_unit UNIT LOG RC LIMIT: append UNIT's failures to failures.txt and print
# "passed failed skipped note" (note: "-" or why the unit stopped early).
parse_unit() {
  local unit=$1 logf=$2 rc=$3 limit=$4
  awk -v unit="$unit" -v rc="$rc" -v limit="$limit" -v ptimeout="$PROGRESS_TIMEOUT" \
      -v failures="$out/failures.txt" '
    BEGIN { ok = 0; err = 0; skip = 0; note = "-" }
    /^\[ok\]: /        { ok++; next }
    /^\[skip\]: /      { skip++; next }
    /^\[ignore\]: /    { skip++; next }
    # A failed test: "[err]: NAME in tests/FILE.tcl", then the details. An error outside any
    # test but inside a server block (its setup) is an [err] too, with the message cut where
    # the name would be and the whole message on the next line: the rest of that block did
    # not run.
    /^\[err\]: .* in tests\/[^ ]*\.tcl$/ { err++; name = substr($0, 8)
                         sub(/ in tests\/[^ ]*\.tcl$/, "", name)
                         print unit ": " name >> failures; next }
    /^\[err\]: /       { err++; getline msg
                         print unit ": (a server block stopped outside a test: " msg \
                           "; the rest of the block did not run)" >> failures; next }
    /^\[exception\]: / { exc = 1; getline msg; sub(/^Executing test client: /, "", msg)
                         excmsg = msg; next }
    /^\[TIMEOUT\]: /   { hung = 1; next }
    hung && / => \(IN PROGRESS\) / { sub(/.* => \(IN PROGRESS\) /, ""); hungtest = $0; next }
    /The End/          { ended = 1 }
    END {
      if (rc == 124 || rc == 137) {
        err++; note = "stopped by the unit time limit (" limit " s)"
        print unit ": (unit stopped by its " limit " s time limit; the rest of the unit did not run)" >> failures
      } else if (hung) {
        err++; note = "a test hung (no progress for " ptimeout " s): " hungtest
        print unit ": " hungtest " (hung: no progress for " ptimeout " s; the rest of the unit did not run)" >> failures
      } else if (exc) {
        err++; note = "aborted: " excmsg
        print unit ": (unit aborted outside a test: " excmsg "; the rest of the unit did not run)" >> failures
      } else if (!ended) {
        err++; note = "the suite stopped without a result (exit " rc ")"
        print unit ": (the suite stopped without a result, exit " rc ")" >> failures
      }
      print ok, err, skip, note
    }' "$logf"
}

stage "redis-suite: ${#units[@]} units against $server, each on a fresh server" \
  "limit ${UNIT_TIMEOUT} s a unit${HANG_UNITS[*]:+; ${HANG_TIMEOUT} s for ${HANG_UNITS[*]}, which hang on the engine}"
: >"$out/failures.txt"
: >"$out/summary.txt"
total_ok=0 total_err=0 total_skip=0
for unit in "${units[@]}"; do
  t0=$SECONDS
  name=${unit//\//_}
  logf=$out/logs/$name.log
  limit=$(unit_timeout "$unit")
  port=$(free_port)
  start_server "$port" "$out/data/$name" "$out/logs/$name.server.log"
  if ! wait_ping "$port"; then
    stop_server
    log "$unit: the $server did not answer PING within 20 s (log: $out/logs/$name.server.log)"
    echo "$unit: (the $server did not start)" >>"$out/failures.txt"
    line="$unit: 0 passed, 1 failed, 0 skipped (0 s) [server did not start]"
    echo "$line" | tee -a "$out/summary.txt"
    total_err=$((total_err + 1))
    continue
  fi
  rc=0
  # timeout(1) runs the suite in a process group of its own and signals all of it: the test
  # server, its client and any helper it spawned. TERM=dumb: no colour codes in the log.
  (cd "$out/tree" && exec env TERM=dumb timeout -k 10 "$limit" "$tclsh" tests/test_helper.tcl \
    --host 127.0.0.1 --port "$port" --baseport "$BASEPORT" --single "$unit" --tags -slow --durable \
    --timeout "$PROGRESS_TIMEOUT") >"$logf" 2>&1 &
  RUN_PID=$!
  wait "$RUN_PID" || rc=$?
  RUN_PID=
  # A server that exited during the unit (a crash, or a test's SHUTDOWN) explains the failures
  # after it: said on the unit's line and in failures.txt (the tests it failed count already).
  died=
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    died="the $server exited during the unit (log: logs/$name.server.log)"
    echo "$unit: ($died)" >>"$out/failures.txt"
  fi
  stop_server
  read -r ok err skip note < <(parse_unit "$unit" "$logf" "$rc" "$limit")
  total_ok=$((total_ok + ok)) total_err=$((total_err + err)) total_skip=$((total_skip + skip))
  line="$unit: $ok passed, $err failed, $skip skipped ($((SECONDS - t0)) s)"
  [[ $note != - ]] && line+=" [$note]"
  [[ -n $died ]] && line+=" [$died]"
  echo "$line" | tee -a "$out/summary.txt"
done
stage_end

log "failing tests: $out/failures.txt ($(wc -l <"$out/failures.txt") lines); logs: $out/logs"
log "redis-suite against $server: $(fmt_seconds $((SECONDS - T_ALL))) in all"
rc=0
if [[ -n $floor ]]; then
  if (( total_ok < floor )); then
    log "FAIL: $total_ok tests passed, fewer than the floor of $floor (hack/redis-suite.floor)"
    rc=1
  else
    log "ok: $total_ok tests passed, at least the floor of $floor"
  fi
fi
echo "redis-suite: $total_ok passed, $total_err failed, $total_skip skipped"
exit "$rc"
