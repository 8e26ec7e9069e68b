#!/usr/bin/env bash
# Torture (issue 14): rounds of faults on one pair under four writers of unique keys, on the
# same cluster, image and Helm install as hack/e2e.sh.
#
#   sudo hack/torture.sh --rounds N [--mode semi-sync|sync|async] [--provider local|kind]
#   sudo hack/torture.sh --rounds 10 --mode semi-sync --rounds 3 --mode sync --rounds 3 --mode async
#   sudo hack/torture.sh --kinds volume-full,back-to-back --rounds 4   (only these fault kinds)
#
# Each `--mode` ends a run with the latest `--rounds` (default mode: semi-sync); several runs
# share one install. A run is `cargo test --test e2e -- --ignored --exact torture`
# (tests/e2e/torture.rs) with E2E_TORTURE_ROUNDS and E2E_TORTURE_MODE set: a fresh pair
# (spec.replication.mode from --mode, password Secret, failover.detectionSeconds 2), four
# writers through the read-write Service, one fault per round on whichever pod is master, in
# rotation: pod force-deleted, engine SIGKILL, engine SIGSTOP (resumed after the failover),
# node killed (restored after), node partitioned (healed after), the operator killed when the
# failover record reaches a step (Fencing, Promoting, Switching in turn), the apiserver
# restarted during a failover, the master's data volume full (freed after), back to back (the
# new master killed while the old one rejoins). Each round starts once the pair is Ready with
# its replica in sync.
#
# Prints per round and per fault kind the gaps between acknowledged writes (p50/p99/max) and
# the acknowledged writes lost, the pair's Events for rounds with a gap over 5 s, and per run
# `torture: rounds=N mode=M lost=L max_gap_ms=G` and its duration. Exits non-zero when a run
# failed: an acknowledged write lost in semi-sync or sync, or a pair that did not recover
# within the deadlines (timing alone never fails it). async reports its loss.
#
# Brings the cluster up and installs the operator like hack/e2e.sh (hack/e2e-lib.sh: up.sh,
# the image rebuilt only when the binaries changed, helm upgrade --install), and uninstalls it
# at the end. The cluster stays up.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
# shellcheck source=hack/e2e-lib.sh
source hack/e2e-lib.sh

PROVIDER=local
rounds=
pending=0   # a --rounds not yet closed by a --mode
runs=()     # "ROUNDS MODE"
while (( $# )); do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; pending=1; shift 2
      [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds is a positive number" ;;
    --mode) [[ -n $rounds ]] || die "--mode comes after --rounds"
      [[ ${2:-} =~ ^(semi-sync|sync|async)$ ]] || die "--mode is semi-sync, sync or async"
      runs+=("$rounds $2"); pending=0; shift 2 ;;
    --provider) PROVIDER=${2:?--provider needs local or kind}; shift 2 ;;
    --kinds) export E2E_TORTURE_KINDS=${2:?--kinds needs a comma-separated list}; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ -n $rounds ]] || die "--rounds N is required (see --help)"
(( pending )) && runs+=("$rounds semi-sync")

# On kind, volume-full needs the workers' volumes on file systems of their own, which
# hack/kind/up.sh mounts only as root on Linux: without them the rotation leaves it out
# (checked once the cluster is up, below) unless --kinds names it.
# Build the test binary before touching the cluster: a compile error is not a torture result.
cargo test --locked --test e2e --no-run >&2 || die "cargo test --no-run failed"

e2e_provider_up "$PROVIDER"
if [[ $PROVIDER == kind && -z ${E2E_TORTURE_KINDS:-} ]] && ! bash hack/kind/fault.sh has-volumes; then
  export E2E_TORTURE_KINDS=pod-force-deleted,engine-sigkill,engine-sigstop,node-killed,node-partitioned,operator-killed-mid-failover,apiserver-restarted,back-to-back
  log "provider kind: the workers' volumes are not on file systems of their own (not root on Linux?): volume-full left out"
fi
e2e_install_operator || die "helm install failed"

summary=() failed=0
for run in "${runs[@]}"; do
  read -r n mode <<<"$run"
  step "torture: $n rounds, mode $mode (cargo test --test e2e -- --ignored --exact torture)"
  t0=$(date +%s)
  log_file=$(mktemp)
  E2E_TORTURE_ROUNDS=$n E2E_TORTURE_MODE=$mode \
    cargo test --locked --test e2e -- --ignored --exact torture --nocapture 2>&1 | tee "$log_file"
  rc=${PIPESTATUS[0]}
  secs=$(( $(date +%s) - t0 ))
  last=$(grep '^torture: rounds=' "$log_file" | tail -n1)
  rm -f "$log_file"
  if (( rc == 0 )); then
    summary+=("ok   ${last:-torture: rounds=$n mode=$mode (no result line)} ($secs s)")
  else
    summary+=("FAIL ${last:-torture: rounds=$n mode=$mode (no result line)} ($secs s)")
    failed=$((failed + 1))
    step "operator logs (the torture run failed)"
    kubectl -n "$E2E_OPERATOR_NAMESPACE" logs "deploy/$RELEASE" --tail=300 >&2 || true
  fi
done

step "helm uninstall $RELEASE"
helm uninstall "$RELEASE" -n "$E2E_OPERATOR_NAMESPACE" --wait --timeout 3m >&2 || failed=$((failed + 1))
printf '\n' >&2
printf '%s\n' "${summary[@]}"
(( failed == 0 ))
