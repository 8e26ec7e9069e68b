#!/usr/bin/env bash
# From a fresh machine to a running pair, in one command:
#
#   sudo hack/demo.sh [--debug] [--example NAME] [--set KEY=VALUE]... [--down]
#
# 1. brings up the project's local 3-node Kubernetes (hack/cluster/up.sh; builds and caches
#    Kubernetes, CoreDNS, local-path-provisioner and helm on the first run),
# 2. builds redispair-operator, redispair-engine and kubectl-redispair (release; --debug for a
#    faster, slower-running build), packs them into the image ghcr.io/redispair/redispair:dev
#    without Docker (hack/images/build-image.sh) and imports it into every node,
# 3. installs the Helm chart charts/redispair-operator into namespace redispair-system
#    (--set passes chart values, e.g. --set 'watchNamespaces={redispair-demo}'),
# 4. applies examples/NAME.yaml (default: minimal) in namespace redispair-demo, waits for the
#    pair to be Ready and prints `kubectl get rp` and `kubectl redispair status`.
#
# Running it again upgrades the chart and re-applies the example (the cluster is reused).
# --down removes the cluster (hack/cluster/down.sh). Needs root, like hack/cluster/.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh

IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}   # the chart's default image
RELEASE=redispair-operator
OPERATOR_NS=${REDISPAIR_OPERATOR_NAMESPACE:-redispair-system}
DEMO_NS=${REDISPAIR_DEMO_NAMESPACE:-redispair-demo}
PROFILE=release
EXAMPLE=minimal
READY_TIMEOUT=${REDISPAIR_DEMO_TIMEOUT:-300}
helm_values=()

while (( $# )); do
  case $1 in
    --debug) PROFILE=debug; shift ;;
    --example) EXAMPLE=$2; shift 2 ;;
    --set) helm_values+=(--set "$2"); shift 2 ;;
    --down) exec hack/cluster/down.sh ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
need_root
[[ -f examples/$EXAMPLE.yaml ]] || die "no such example: examples/$EXAMPLE.yaml"
step() { printf '\n==> %s\n' "$*" >&2; }

step "local cluster (hack/cluster/up.sh --nodes 3)"
kubeconfig_line=$(hack/cluster/up.sh --nodes 3 | tail -n1)
export "${kubeconfig_line?}"
[[ -n ${KUBECONFIG:-} ]] || die "up.sh did not print KUBECONFIG=..."
hack/cluster/build.sh helm >&2
export PATH=$K8S_BIN:$HELM_BIN:$PATH

step "build the binaries ($PROFILE)"
grep -q 'name = "redispair-operator"' Cargo.toml \
  || die "this checkout has no redispair-operator binary yet (the operator is still being written)"
cargo_flags=(--locked --bin redispair-operator --bin redispair-engine --bin kubectl-redispair)
[[ $PROFILE == release ]] && cargo_flags+=(--release)
cargo build "${cargo_flags[@]}" >&2
bin_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/$PROFILE
export PATH=$bin_dir:$PATH   # kubectl finds the plugin (kubectl-redispair) on PATH

step "image $IMAGE (no Docker: hack/images/build-image.sh) into every node"
archive=$IMAGES_DIR/redispair-demo.oci.tar
REDISPAIR_IMAGE=$IMAGE hack/images/build-image.sh redispair --bin-dir "$bin_dir" --ref "$IMAGE" --out "$archive"
hack/cluster/load-images.sh "$archive"

step "helm upgrade --install $RELEASE ($OPERATOR_NS)"
# Before the chart: with watchNamespaces set, its Role goes into this namespace.
kubectl get namespace "$DEMO_NS" >/dev/null 2>&1 || kubectl create namespace "$DEMO_NS" >&2
# The image was re-imported under the same tag: restart the operator so it runs the new one.
helm upgrade --install "$RELEASE" charts/redispair-operator \
  --namespace "$OPERATOR_NS" --create-namespace \
  --set image.pullPolicy=IfNotPresent "${helm_values[@]}" \
  --set-string "podAnnotations.redispair\.io/image-archive=$(sha256sum "$archive" | cut -c1-16)" \
  --wait --timeout 5m >&2

step "examples/$EXAMPLE.yaml in namespace $DEMO_NS"
kubectl -n "$DEMO_NS" apply -f "examples/$EXAMPLE.yaml" >&2
# The RedisPair's name: the first `  name:` after `kind: RedisPair` (examples are plain YAML).
pair=$(awk '/^kind: RedisPair/{found=1} found && /^  name:/{print $2; exit}' "examples/$EXAMPLE.yaml")
[[ -n $pair ]] || die "examples/$EXAMPLE.yaml has no RedisPair"
t0=$(date +%s)
if ! kubectl -n "$DEMO_NS" wait "redispair/$pair" --for=jsonpath='{.status.phase}'=Ready \
     --timeout="${READY_TIMEOUT}s" >&2; then
  kubectl -n "$DEMO_NS" get rp,pods -o wide >&2 || true
  kubectl-redispair -n "$DEMO_NS" status "$pair" >&2 || true
  die "pair $pair not Ready after ${READY_TIMEOUT}s (operator logs: kubectl -n $OPERATOR_NS logs deploy/$RELEASE)"
fi
step "pair $pair Ready after $(( $(date +%s) - t0 )) s"

kubectl-redispair -n "$DEMO_NS" status "$pair" || true
echo
kubectl -n "$DEMO_NS" get rp
cat >&2 <<MSG

Next (in this shell):
  export KUBECONFIG=$KUBECONFIG PATH=$K8S_BIN:$bin_dir:\$PATH
  kubectl redispair status $pair -n $DEMO_NS
  kubectl redispair switchover $pair -n $DEMO_NS
  kubectl -n $DEMO_NS apply -f examples/semi-sync.yaml
Remove everything: sudo hack/demo.sh --down
MSG
