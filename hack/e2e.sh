#!/usr/bin/env bash
# End to end on a real 3-node cluster: the operator installed with its Helm chart, what a user
# installs (hack/e2e-packaging.sh), then the failover suite (tests/e2e).
#
#   sudo hack/e2e.sh [--provider local|kind] [--skip-packaging] [-- CARGO_TEST_ARGS...]
#
# provider local (default; CI): hack/cluster/up.sh --nodes 3, the binaries built with the dev
#   profile (the one hack/demo.sh --debug and the cargo test run use: no second release
#   build), packed by hack/images/build-image.sh and imported by hack/cluster/load-images.sh.
#   Fault hook: hack/cluster/fault.sh. The host reaches ClusterIPs through the nodes.
# provider kind: hack/kind/up.sh (docker build of the Dockerfile + kind load; without a Docker
#   engine, --offline: an engine of the project's own and images built here, see
#   docs/testing.md "kind"), `hack/kind/fault.sh route` for the host's route to ClusterIPs.
#   Fault hook: hack/kind/fault.sh.
#
# Then, for both: helm upgrade --install of charts/redispair-operator (release
# redispair-operator in $E2E_OPERATOR_NAMESPACE, watching $E2E_NAMESPACE only, so operator
# tests on the same cluster keep their namespaces to themselves), the packaging checks on that
# install, SeaweedFS in a network namespace on the cluster's bridge (local provider: the
# backup cases' object store), `cargo test --test e2e -- --ignored --test-threads=1` with the
# hooks in the environment (KUBECONFIG, E2E_NAMESPACE, E2E_OPERATOR_NAMESPACE, E2E_IMAGE,
# E2E_FAULT, E2E_S3_*), and helm uninstall. The cluster is left up (hack/cluster/down.sh or
# `kind delete cluster`).
# Ends with one line per stage and `e2e: N passed, N failed`; exit 1 on any failure.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
# shellcheck source=hack/e2e-lib.sh
source hack/e2e-lib.sh

PROVIDER=local
PACKAGING=1
CARGO_TEST_ARGS=()
while (( $# )); do
  case $1 in
    --provider) PROVIDER=${2:?--provider needs local or kind}; shift 2 ;;
    --skip-packaging) PACKAGING=0; shift ;;
    --) shift; CARGO_TEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $PROVIDER == local || $PROVIDER == kind ]] || die "--provider is local or kind"

results=() passed=0 failed=0
stage() {   # stage NAME CMD...: run CMD, record its outcome
  local name=$1; shift
  local t0; t0=$(date +%s)
  if "$@"; then results+=("ok   $name ($(( $(date +%s) - t0 )) s)"); passed=$((passed + 1))
  else results+=("FAIL $name ($(( $(date +%s) - t0 )) s)"); failed=$((failed + 1)); fi
}
# The backup cases' S3 endpoint (started below), stopped when the run ends.
S3_DIR=""
stop_s3() { [[ -z $S3_DIR ]] || { bash hack/seaweedfs.sh netns-stop "$S3_DIR"; rm -rf "$S3_DIR"; }; }
trap stop_s3 EXIT
finish() {
  stop_s3; S3_DIR=""
  printf '\n' >&2
  printf '%s\n' "${results[@]}"
  echo "e2e: $passed passed, $failed failed"
  (( failed == 0 ))
  exit
}

# --- the cluster and the image ----------------------------------------------------------
e2e_provider_up "$PROVIDER"

# --- the operator, as a user installs it --------------------------------------------------
stage "helm install (operator watching $E2E_NAMESPACE)" e2e_install_operator
(( failed == 0 )) || finish

# --- what a user installs: chart objects, examples, the plugin, helm upgrade -------------------
if (( PACKAGING )); then
  step "packaging checks (hack/e2e-packaging.sh --installed $E2E_NAMESPACE)"
  stage "packaging (hack/e2e-packaging.sh)" env REDISPAIR_OPERATOR_NAMESPACE="$E2E_OPERATOR_NAMESPACE" \
    PLUGIN="${bin_dir:-}/kubectl-redispair" bash hack/e2e-packaging.sh --installed "$E2E_NAMESPACE"
fi

# --- an S3 endpoint for the backup cases (issue 16) ---------------------------------------------
# SeaweedFS in a network namespace of its own on the cluster's bridge, where pods reach it
# (local provider only; on kind the backup cases say SKIPPED). Stopped at the end. Through
# hack/seaweedfs.sh (a process of its own: its libraries define their own `stage`).
if [[ $PROVIDER == local ]]; then
  step "SeaweedFS for the backup cases (hack/seaweedfs.sh netns-start)"
  S3_DIR=$(mktemp -d /tmp/redispair-e2e-s3.XXXXXX)
  if bash hack/seaweedfs.sh build >&2 && s3_env=$(bash hack/seaweedfs.sh netns-start "$S3_DIR"); then
    while IFS='=' read -r k v; do
      case $k in
        AWS_ENDPOINT) export E2E_S3_ENDPOINT=$v ;;
        AWS_ACCESS_KEY_ID) export E2E_S3_ACCESS_KEY=$v ;;
        AWS_SECRET_ACCESS_KEY) export E2E_S3_SECRET_KEY=$v ;;
        REDISPAIR_S3_BUCKET) export E2E_S3_BUCKET=$v ;;
      esac
    done <<<"$s3_env"
  else
    results+=("FAIL SeaweedFS for the backup cases"); failed=$((failed + 1))
  fi
fi

# --- failover on the real cluster ------------------------------------------------------------
step "failover suite (cargo test --test e2e -- --ignored --test-threads=1)"
stage "failover suite (tests/e2e)" cargo test --locked --test e2e -- --ignored --test-threads=1 --nocapture \
  "${CARGO_TEST_ARGS[@]}"

if [[ ${results[-1]} == FAIL* ]]; then
  # What the operator decided, for whoever reads a failed CI log (the suite printed the pair's
  # state at the failing wait).
  step "operator logs (the suite failed)"
  kubectl -n "$E2E_OPERATOR_NAMESPACE" logs "deploy/$RELEASE" --tail=300 >&2 || true
fi

step "helm uninstall $RELEASE"
stage "helm uninstall" helm uninstall "$RELEASE" -n "$E2E_OPERATOR_NAMESPACE" --wait --timeout 3m
finish
