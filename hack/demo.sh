#!/usr/bin/env bash
# From a fresh machine to a running pair, in one command:
#
#   hack/demo.sh [--debug] [--example NAME] [--set KEY=VALUE]... [--down]
#
# Needs root (network namespaces, bridges, cgroups, apt-get): run as a user, it re-runs itself
# through sudo. First run on 2 cores: ~15 min (Kubernetes, CoreDNS, local-path-provisioner and
# helm built from source and cached, then the release build); a second run takes a few minutes.
#
# 1. checks what it needs (cargo, Go new enough when the cluster's binaries are not cached yet),
# 2. brings up the project's local 3-node Kubernetes (hack/cluster/up.sh; builds and caches
#    Kubernetes, CoreDNS, local-path-provisioner and helm on the first run),
# 3. builds redispair-operator, redispair-engine and kubectl-redispair (release; --debug for a
#    faster, slower-running build), packs them into the image ghcr.io/redispair/redispair:dev
#    without Docker (hack/images/build-image.sh) and imports it into every node,
# 4. installs the Helm chart charts/redispair-operator into namespace redispair-system
#    (--set passes chart values, e.g. --set 'watchNamespaces={redispair-demo}'),
# 5. applies examples/NAME.yaml (default: minimal) in namespace redispair-demo and waits until
#    the pair serves: both pods Ready, the replica replicating (and in sync, unless the mode is
#    async), a SET and a GET through the read-write Service answered. Then it prints
#    `kubectl redispair status`, `kubectl get rp` and the time each stage took.
#
# Running it again upgrades the chart and re-applies the example (the cluster is reused).
# --down removes the cluster (hack/cluster/down.sh). hack/test.sh stops this cluster too: its
# operator tests need a control plane with no operator installed.
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
DOWN=0
READY_TIMEOUT=${REDISPAIR_DEMO_TIMEOUT:-300}
helm_values=()

args=("$@")
while (( $# )); do
  case $1 in
    --debug) PROFILE=debug; shift ;;
    --example) EXAMPLE=${2:?--example needs a name}; shift 2 ;;
    --set) helm_values+=(--set "${2:?--set needs KEY=VALUE}"); shift 2 ;;
    --down) DOWN=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
run_as_root "$REPO_ROOT/hack/demo.sh" "${args[@]}"
if (( DOWN )); then exec hack/cluster/down.sh; fi
stages_report_on_failure

# --- prerequisites: each missing piece is one message, before anything long starts ------------
stage "prerequisites"
[[ -f examples/$EXAMPLE.yaml ]] || die "no such example: examples/$EXAMPLE.yaml (see examples/)"
grep -q 'name = "redispair-operator"' Cargo.toml \
  || die "this checkout has no redispair-operator binary yet (the operator is still being written)"
need_commands cargo sha256sum awk
# Go builds the cluster's Kubernetes, CoreDNS, local-path-provisioner and helm once; they are
# cached after, and a Go is no longer needed.
cluster_binaries_cached || need_go "$GO_MIN_VERSION"
# redis-cli: the demo's last check writes and reads through the pair's Service with it.
apt_install redis-tools
if cluster_binaries_cached; then go_said="the cluster's binaries cached"; else go_said=$("$GO" env GOVERSION); fi
log "ok: root, cargo, $go_said, redis-cli"

# --- the cluster, the image, the operator ----------------------------------------------------
if cluster_binaries_cached; then
  stage "local cluster (hack/cluster/up.sh --nodes 3)"
else
  stage "local cluster (hack/cluster/up.sh --nodes 3)" \
    "first run: ~8 min on 2 cores to build Kubernetes (~5 min), CoreDNS, local-path-provisioner and helm (~1 min each); cached after"
fi
kubeconfig_line=$(hack/cluster/up.sh --nodes 3 | tail -n1)
export "${kubeconfig_line?}"
[[ -n ${KUBECONFIG:-} ]] || die "up.sh did not print KUBECONFIG=..."
hack/cluster/build.sh helm >&2
export PATH=$K8S_BIN:$HELM_BIN:$PATH

bin_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/$PROFILE
if [[ -x $bin_dir/redispair-engine ]]; then
  stage "build the binaries ($PROFILE, incremental)"
else
  stage "build the binaries ($PROFILE)" "first run: ~5 min on 2 cores, incremental after"
fi
cargo_flags=(--locked --bin redispair-operator --bin redispair-engine --bin kubectl-redispair)
[[ $PROFILE == release ]] && cargo_flags+=(--release)
cargo build "${cargo_flags[@]}" >&2
export PATH=$bin_dir:$PATH   # kubectl finds the plugin (kubectl-redispair) on PATH

stage "image $IMAGE (no Docker: hack/images/build-image.sh) into every node"
archive=$IMAGES_DIR/redispair-demo.oci.tar
REDISPAIR_IMAGE=$IMAGE hack/images/build-image.sh redispair --bin-dir "$bin_dir" --ref "$IMAGE" --out "$archive"
hack/cluster/load-images.sh "$archive"

stage "helm upgrade --install $RELEASE ($OPERATOR_NS)"
# Before the chart: with watchNamespaces set, its Role goes into this namespace.
kubectl get namespace "$DEMO_NS" >/dev/null 2>&1 || kubectl create namespace "$DEMO_NS" >&2
# The image was re-imported under the same tag: restart the operator so it runs the new one.
helm upgrade --install "$RELEASE" charts/redispair-operator \
  --namespace "$OPERATOR_NS" --create-namespace \
  --set image.pullPolicy=IfNotPresent "${helm_values[@]}" \
  --set-string "podAnnotations.redispair\.io/image-archive=$(sha256sum "$archive" | cut -c1-16)" \
  --wait --timeout 5m >&2

stage "examples/$EXAMPLE.yaml in namespace $DEMO_NS"
kubectl -n "$DEMO_NS" apply -f "examples/$EXAMPLE.yaml" >&2
# The RedisPair's name: the first `  name:` after `kind: RedisPair` (examples are plain YAML).
pair=$(awk '/^kind: RedisPair/{found=1} found && /^  name:/{print $2; exit}' "examples/$EXAMPLE.yaml")
[[ -n $pair ]] || die "examples/$EXAMPLE.yaml has no RedisPair"

# --- what a user means by "ready" ---------------------------------------------------------
# status.phase alone is not it: it can say Ready before either pod is (issue 19). The pair
# serves when the operator's status names a master and a replica, both pods are Ready, the
# replica replicates (and, unless the mode is async, is in sync: it holds every acknowledged
# write), and a SET then a GET through the read-write Service's ClusterIP (the host reaches
# ClusterIPs through the nodes' kube-proxy) are answered. Sets WAITING_FOR to what is missing
# and SERVICE_ADDR to the Service's ClusterIP:port.
WAITING_FOR=
SERVICE_ADDR=
REPLICA_SAID=
k() { kubectl -n "$DEMO_NS" "$@"; }
pod_ready() {
  [[ $(k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
pair_serving() {
  local state phase master replica mode in_sync replicating svc
  state=$(k get redispair "$pair" -o jsonpath='{.status.phase}|{.status.currentMaster}|{.status.replica}|{.status.replication.mode}|{.status.replication.inSync}|{.status.conditions[?(@.type=="Replicating")].status}|{.status.services.readWrite}' 2>/dev/null) || state=
  IFS='|' read -r phase master replica mode in_sync replicating svc <<<"$state"
  WAITING_FOR="phase ${phase:-(none yet)}, not Ready"
  [[ $phase == Ready ]] || return 1
  WAITING_FOR="no master in status.currentMaster"
  [[ -n $master ]] || return 1
  WAITING_FOR="master pod $master is not Ready"
  pod_ready "$master" || return 1
  WAITING_FOR="no replica in status.replica"
  [[ -n $replica ]] || return 1
  WAITING_FOR="replica pod $replica is not Ready"
  pod_ready "$replica" || return 1
  WAITING_FOR="the replica $replica is not replicating (condition Replicating)"
  [[ $replicating == True ]] || return 1
  REPLICA_SAID="the replica replicating (mode async)"
  if [[ $mode != async ]]; then
    WAITING_FOR="the replica $replica is not in sync (status.replication.inSync)"
    [[ $in_sync == true ]] || return 1
    REPLICA_SAID="the replica in sync (mode $mode)"
  fi
  svc=${svc:-$pair}
  WAITING_FOR="a SET and a GET through Service $svc"
  local ip port secret key password value got
  read -r ip port < <(k get service "$svc" -o jsonpath='{.spec.clusterIP} {.spec.ports[?(@.name=="redis")].port}{"\n"}' 2>/dev/null) || return 1
  [[ -n $ip && -n $port ]] || return 1
  SERVICE_ADDR=$ip:$port
  secret=$(k get redispair "$pair" -o jsonpath='{.spec.auth.passwordSecret.name}')
  key=$(k get redispair "$pair" -o jsonpath='{.spec.auth.passwordSecret.key}')
  password=$(k get secret "${secret:-$pair-password}" -o jsonpath="{.data.${key:-password}}" 2>/dev/null | base64 -d) || return 1
  value="demo $(date -u +%FT%TZ)"
  WAITING_FOR="a SET through Service $svc ($SERVICE_ADDR)"
  [[ $(REDISCLI_AUTH=$password timeout 5 redis-cli -h "$ip" -p "$port" SET redispair:demo "$value" 2>&1) == OK ]] || return 1
  WAITING_FOR="a GET through Service $svc ($SERVICE_ADDR)"
  got=$(REDISCLI_AUTH=$password timeout 5 redis-cli -h "$ip" -p "$port" GET redispair:demo 2>&1) || return 1
  [[ $got == "$value" ]] || return 1
  WAITING_FOR=
}

stage "wait until pair $pair serves (deadline ${READY_TIMEOUT}s)"
deadline=$(( SECONDS + READY_TIMEOUT ))
said=
until pair_serving; do
  if [[ $WAITING_FOR != "$said" ]]; then log "waiting: $WAITING_FOR"; said=$WAITING_FOR; fi
  if (( SECONDS >= deadline )); then
    log "pair $pair does not serve after ${READY_TIMEOUT}s: $WAITING_FOR. What Kubernetes shows:"
    k get rp,pods -o wide >&2 || true
    k get events --sort-by=.lastTimestamp 2>&1 | tail -n 25 >&2 || true
    kubectl-redispair -n "$DEMO_NS" status "$pair" >&2 || true
    die "pair $pair not serving (waited for: $WAITING_FOR). Operator logs: kubectl -n $OPERATOR_NS logs deploy/$RELEASE; a longer wait: REDISPAIR_DEMO_TIMEOUT=600 hack/demo.sh"
  fi
  sleep 1
done
stage_end

echo
kubectl-redispair -n "$DEMO_NS" status "$pair" || true
echo
k get rp
# What was printed above is a moment later than the check: check again, so the lines below are
# true when they are printed.
pair_serving || die "pair $pair served a moment ago but now: $WAITING_FOR (see the status above)"
echo
echo "pair $pair serves: master and replica pods Ready, $REPLICA_SAID, SET and GET through its read-write Service ($SERVICE_ADDR) answered"
stages_summary

cat >&2 <<MSG

Next (as root${SUDO_USER:+: sudo -s}):
  export KUBECONFIG=$KUBECONFIG PATH=$K8S_BIN:$bin_dir:\$PATH
  kubectl redispair status $pair -n $DEMO_NS
  kubectl redispair switchover $pair -n $DEMO_NS
  kubectl -n $DEMO_NS apply -f examples/semi-sync.yaml
Remove everything: hack/demo.sh --down
MSG
