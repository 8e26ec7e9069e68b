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
# provider kind (machines with Docker; untested on the project's machines): hack/kind/up.sh
#   (docker build + kind load), `hack/kind/fault.sh route` for the host's route to ClusterIPs.
#   Fault hook: hack/kind/fault.sh. The packaging checks are local-only (testbox image).
#
# Then, for both: helm upgrade --install of charts/redispair-operator (release
# redispair-operator in $E2E_OPERATOR_NAMESPACE, watching $E2E_NAMESPACE only, so operator
# tests on the same cluster keep their namespaces to themselves), the packaging checks on that
# install, `cargo test --test e2e -- --ignored --test-threads=1` with the hooks in the
# environment (KUBECONFIG, E2E_NAMESPACE, E2E_OPERATOR_NAMESPACE, E2E_IMAGE, E2E_FAULT), and
# helm uninstall. The cluster is left up (hack/cluster/down.sh or `kind delete cluster`).
# Ends with one line per stage and `e2e: N passed, N failed`; exit 1 on any failure.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh

PROVIDER=local
PACKAGING=1
CARGO_TEST_ARGS=()
while (( $# )); do
  case $1 in
    --provider) PROVIDER=${2:?--provider needs local or kind}; shift 2 ;;
    --skip-packaging) PACKAGING=0; shift ;;
    --) shift; CARGO_TEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ $PROVIDER == local || $PROVIDER == kind ]] || die "--provider is local or kind"

export E2E_NAMESPACE=${E2E_NAMESPACE:-redispair-e2e}
export E2E_OPERATOR_NAMESPACE=${E2E_OPERATOR_NAMESPACE:-redispair-system}
export E2E_IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}   # the chart's default
RELEASE=redispair-operator
step() { printf '\n==> %s\n' "$*" >&2; }
results=() passed=0 failed=0
stage() {   # stage NAME CMD...: run CMD, record its outcome
  local name=$1; shift
  local t0; t0=$(date +%s)
  if "$@"; then results+=("ok   $name ($(( $(date +%s) - t0 )) s)"); passed=$((passed + 1))
  else results+=("FAIL $name ($(( $(date +%s) - t0 )) s)"); failed=$((failed + 1)); fi
}
finish() {
  printf '\n' >&2
  printf '%s\n' "${results[@]}"
  echo "e2e: $passed passed, $failed failed"
  (( failed == 0 ))
  exit
}

# --- the cluster and the image ----------------------------------------------------------
case $PROVIDER in
  local)
    need_root
    step "local cluster (hack/cluster/up.sh --nodes 3)"
    kubeconfig_line=$(hack/cluster/up.sh --nodes 3 | tail -n1) || die "hack/cluster/up.sh failed"
    export "${kubeconfig_line?}"
    hack/cluster/build.sh helm >&2 || die "cannot build helm"
    export PATH=$K8S_BIN:$HELM_BIN:$PATH
    export E2E_FAULT=${E2E_FAULT:-hack/cluster/fault.sh}
    step "binaries (dev profile) and image $E2E_IMAGE"
    cargo build --locked --bin redispair-operator --bin redispair-engine --bin kubectl-redispair >&2 \
      || die "cargo build failed"
    bin_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug
    archive=$IMAGES_DIR/redispair-e2e.oci.tar
    # Packing ~700 MB of dev binaries takes a minute or more; the archive is deterministic, so
    # it is rebuilt only when the binaries (or the image name) changed. The stamp is their
    # content, not their mtime: the cache directory is shared by every worktree on the machine.
    stamp=$( { sha256sum "$bin_dir"/redispair-operator "$bin_dir"/redispair-engine "$bin_dir"/kubectl-redispair \
      hack/images/build-image.sh | cut -d' ' -f1; echo "$E2E_IMAGE"; } | sha256sum | cut -c1-32)
    if [[ -s $archive && $(cat "$archive.stamp" 2>/dev/null) == "$stamp" ]]; then
      log "image archive up to date: $archive"
    else
      rm -f "$archive.stamp"
      REDISPAIR_IMAGE=$E2E_IMAGE hack/images/build-image.sh redispair --bin-dir "$bin_dir" --ref "$E2E_IMAGE" \
        --out "$archive" || die "image build failed"
      echo "$stamp" >"$archive.stamp"
    fi
    hack/cluster/load-images.sh "$archive" || die "loading the image into the nodes failed"
    # The image is re-imported under the same tag: a changed digest restarts the operator.
    image_stamp=$(sha256sum "$archive" | cut -c1-16)
    ;;
  kind)
    for tool in kind docker kubectl helm; do
      command -v "$tool" >/dev/null || die "provider kind needs $tool on PATH"
    done
    step "kind cluster (hack/kind/up.sh)"
    kubeconfig_line=$(REDISPAIR_IMAGE=$E2E_IMAGE hack/kind/up.sh | tail -n1) || die "hack/kind/up.sh failed"
    export "${kubeconfig_line?}"
    export E2E_FAULT=${E2E_FAULT:-hack/kind/fault.sh}
    # The suite's writer runs here and connects to ClusterIPs (needs root for ip route).
    hack/kind/fault.sh route || die "cannot route the Service range to the kind cluster"
    image_stamp=$(docker image inspect -f '{{.Id}}' "$E2E_IMAGE" | sed 's/^sha256://' | cut -c1-16)
    ;;
esac
[[ -n ${KUBECONFIG:-} ]] || die "the provider printed no KUBECONFIG=..."

# --- the operator, as a user installs it --------------------------------------------------
step "helm upgrade --install $RELEASE ($E2E_OPERATOR_NAMESPACE, watching $E2E_NAMESPACE)"
# The watched namespace first: the chart puts its Role there.
kubectl get namespace "$E2E_NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$E2E_NAMESPACE" >&2
# shellcheck disable=SC2317  # called through stage
install_operator() {
  helm upgrade --install "$RELEASE" charts/redispair-operator \
    --namespace "$E2E_OPERATOR_NAMESPACE" --create-namespace \
    --set image.repository="${E2E_IMAGE%:*}" --set image.tag="${E2E_IMAGE##*:}" \
    --set image.pullPolicy=IfNotPresent --set "watchNamespaces={$E2E_NAMESPACE}" \
    --set-string "podAnnotations.redispair\.io/image-archive=$image_stamp" \
    --wait --timeout 5m >&2
}
stage "helm install (operator watching $E2E_NAMESPACE)" install_operator
(( failed == 0 )) || finish

# --- what a user installs: chart objects, examples, the plugin, helm upgrade -------------------
if (( PACKAGING )) && [[ $PROVIDER == local ]]; then
  step "packaging checks (hack/e2e-packaging.sh --installed $E2E_NAMESPACE)"
  stage "packaging (hack/e2e-packaging.sh)" env REDISPAIR_OPERATOR_NAMESPACE="$E2E_OPERATOR_NAMESPACE" \
    PLUGIN="${bin_dir:-}/kubectl-redispair" bash hack/e2e-packaging.sh --installed "$E2E_NAMESPACE"
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
