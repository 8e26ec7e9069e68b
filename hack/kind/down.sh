#!/usr/bin/env bash
# Undo hack/kind/up.sh: delete the kind cluster and the nodes' network; with --offline (or
# when the Docker engine is the project's own, hack/kind/docker.sh) stop that engine too. Its
# data root keeps the images (node image, bases, BuildKit cache) for the next run.
#
#   hack/kind/down.sh [--keep-engine]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-redispair}
NETWORK=${KIND_EXPERIMENTAL_DOCKER_NETWORK:-redispair-kind}
# shellcheck source=hack/cluster/lib.sh
source "$REPO_ROOT/hack/cluster/lib.sh"
# shellcheck source=hack/lib/docker.sh
source "$REPO_ROOT/hack/lib/docker.sh"
KEEP_ENGINE=
[[ ${1:-} == --keep-engine ]] && KEEP_ENGINE=1
eval "$("$REPO_ROOT/hack/kind/docker.sh" env)"
command -v kind >/dev/null || export PATH=$KIND_BIN:$PATH

if docker_answers; then
  # The host's routes (hack/kind/fault.sh route): the Services via the control plane, each
  # node's pod range via that node. Every route via one of the cluster's nodes goes.
  for node in $(docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.Names}}' 2>/dev/null); do
    node_ip=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$NETWORK\").IPAddress }}" "$node" 2>/dev/null) || node_ip=
    [[ -n $node_ip ]] || continue
    ip route show | awk -v via="$node_ip" '$2 == "via" && $3 == via {print $1}' | while read -r dst; do
      ip route del "$dst" via "$node_ip" && log "route $dst via $node_ip removed"
    done
  done
  cluster_cidr=$(docker exec "$CLUSTER-control-plane" cat /etc/kubernetes/manifests/kube-controller-manager.yaml 2>/dev/null |
    sed -n 's/.*--cluster-cidr=\([^, ]*\).*/\1/p' | head -n1) || cluster_cidr=
  if [[ -n $cluster_cidr ]] && ip route show type unreachable | grep -q "^unreachable $cluster_cidr"; then
    ip route del unreachable "$cluster_cidr" && log "route $cluster_cidr unreachable removed"
  fi
  if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    # Its own kubeconfig, never $KUBECONFIG: the caller's may be the local cluster's admin
    # kubeconfig (hack/test.sh exports it), which kind would rewrite without its context.
    kind delete cluster --name "$CLUSTER" --kubeconfig "${KIND_KUBECONFIG:-$HOME/.kube/kind-$CLUSTER.kubeconfig}" >&2
  fi
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    docker network rm "$NETWORK" >/dev/null && log "docker network $NETWORK removed"
  fi
  rm -rf "${TMPDIR:-/tmp}/redispair-kind-fault-$CLUSTER"
fi
# The workers' volume file systems (hack/kind/up.sh), once no node uses them.
VOLUMES_ROOT=${REDISPAIR_KIND_VOLUMES:-/var/lib/redispair-kind}/$CLUSTER
if [[ -d $VOLUMES_ROOT ]] && ! { docker_answers && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }; then
  for d in "$VOLUMES_ROOT"/*; do
    if mountpoint -q "$d"; then umount "$d" && log "volumes of $(basename "$d") unmounted"; fi
  done
  rm -rf "$VOLUMES_ROOT"
fi
[[ -n $KEEP_ENGINE ]] || docker_engine_down
