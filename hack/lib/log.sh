# shellcheck shell=bash
# Progress output shared by the scripts in hack/: what a step is about to do before it starts,
# how long it took after, and a summary of every stage with the total. Sourced, never run.
#
#   stage "local cluster" "first run: ~8 min, cached after"   # ends the previous stage
#   timed "building helm" "first run: ~1 min" CMD...           # one command, with a heartbeat
#   stages_summary                                             # ends the last stage, prints all
#   stages_report_on_failure                                   # a failing exit prints them too
#
# Everything goes to stderr: several scripts keep stdout for one machine-read line.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# fmt_seconds S: "42 s" or "4 min 35 s".
fmt_seconds() {
  local s=$1
  if (( s >= 60 )); then printf '%d min %d s' $((s / 60)) $((s % 60)); else printf '%d s' "$s"; fi
}

STAGE_NAME=
STAGE_T0=0
STAGES_T0=${STAGES_T0:-$SECONDS}
STAGE_LINES=()

# stage NAME [HINT]: end the current stage (printing how long it took) and start NAME. HINT
# says what to expect, e.g. "first run: ~5 min, cached after".
stage() {
  stage_end
  STAGE_NAME=$1 STAGE_T0=$SECONDS
  printf '\n==> [%s] %s%s\n' "$(date +%H:%M:%S)" "$1" "${2:+ ($2)}" >&2
}

# stage_end: print the current stage's elapsed time and record it for stages_summary.
stage_end() {
  [[ -n $STAGE_NAME ]] || return 0
  local took=$(( SECONDS - STAGE_T0 ))
  printf '<== %s: %s\n' "$STAGE_NAME" "$(fmt_seconds "$took")" >&2
  STAGE_LINES+=("$(printf '%9s  %s' "$(fmt_seconds "$took")" "$STAGE_NAME")")
  STAGE_NAME=
}

# stages_summary: end the current stage, then one line per stage and the total.
stages_summary() {
  stage_end
  printf '\ntime per stage:\n' >&2
  printf '  %s\n' "${STAGE_LINES[@]}" >&2
  printf '  %9s  total\n' "$(fmt_seconds $(( SECONDS - STAGES_T0 )))" >&2
}

# stages_report_on_failure: from here on, a failing exit says in which stage it failed and prints
# the stages so far (a successful run calls stages_summary itself).
stages_report_on_failure() { trap 'stages_exit_report $?' EXIT; }
stages_exit_report() {
  (( $1 == 0 )) && return 0
  [[ -n $STAGE_NAME ]] && log "failed in stage \"$STAGE_NAME\" (exit $1)"
  stages_summary
}

# timed WHAT HINT CMD...: say WHAT (and HINT, when not empty) before CMD, "still WHAT: N s"
# every 30 s while it runs (a cold Go build is minutes of silence otherwise), and how long it
# took after. Returns CMD's status.
timed() {
  local what=$1 hint=$2; shift 2
  local t0=$SECONDS ticker rc=0
  log "$what${hint:+ ($hint)}"
  # The heartbeat is a child of this shell, stopped by its PID below (taking its sleep with
  # it, so no process holds the caller's stdout open); it also stops by itself once this
  # shell is gone (kill -0 $$ fails), so an interrupted run leaves nothing behind.
  (
    nap=
    trap '[[ -n $nap ]] && kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "${HEARTBEAT_SECONDS:-30}" & nap=$!
      wait "$nap"
      kill -0 $$ 2>/dev/null || exit 0
      log "... still $what: $(fmt_seconds $(( SECONDS - t0 ))) so far"
    done
  ) >&2 &
  ticker=$!
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if (( rc == 0 )); then
    log "$what: done in $(fmt_seconds $(( SECONDS - t0 )))"
  else
    log "$what: failed after $(fmt_seconds $(( SECONDS - t0 ))) (exit $rc)"
  fi
  return "$rc"
}
