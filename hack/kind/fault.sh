#!/usr/bin/env bash
# Inject real faults into a kind cluster's nodes: the same verbs as hack/cluster/fault.sh, so
# the e2e suite (tests/e2e, fault hook E2E_FAULT) runs unchanged on either provider.
#
#   hack/kind/fault.sh kill NODE        the node is lost: `docker kill` (SIGKILL) of the node's
#                                       container, with its kubelet, containerd and every pod
#   hack/kind/fault.sh restore NODE     bring a killed node back: `docker start`, with the
#                                       address it had
#   hack/kind/fault.sh partition NODE   the node keeps running, cut off: `docker network
#                                       disconnect` from the nodes' network (its address is
#                                       recorded so heal gives the same one back)
#   hack/kind/fault.sh heal NODE        `docker network connect` with the recorded address
#   hack/kind/fault.sh kill-container NODE ID
#                                       SIGKILL the init process of container ID through the
#                                       node's containerd (`ctr task kill`); the pod stays
#   hack/kind/fault.sh freeze-container NODE ID / thaw-container NODE ID
#                                       SIGSTOP / SIGCONT that process (a hung engine)
#   hack/kind/fault.sh fill-volume NODE fill the node's volumes (the tmpfs hack/kind/up.sh
#                                       bind-mounts at /var/local-path-provisioner): writes
#                                       there fail with ENOSPC from then on
#   hack/kind/fault.sh free-volume NODE remove what fill-volume wrote
#   hack/kind/fault.sh restart-apiserver
#                                       SIGKILL the kube-apiserver (a static pod: the
#                                       control-plane node's kubelet starts it again); returns
#                                       once it answers /readyz
#   hack/kind/fault.sh has-volumes      exit 0 when every worker's volumes are on a
#                                       filesystem of their own (fill-volume can be used)
#   hack/kind/fault.sh route            make ClusterIPs and pod IPs reachable from this host
#                                       (Linux): `ip route replace <service CIDR> via <control-
#                                       plane IP>`, and each node's pod range via that node
#
# NODE is a Kubernetes node name, which kind also uses as the node's container name. Faults
# are meant for workers: the control-plane node carries the host's Service route and the API.
set -euo pipefail
CLUSTER=${KIND_CLUSTER_NAME:-redispair}
NETWORK=${KIND_EXPERIMENTAL_DOCKER_NETWORK:-redispair-kind}   # hack/kind/up.sh makes it
STATE=${KIND_FAULT_STATE:-${TMPDIR:-/tmp}/redispair-kind-fault-$CLUSTER}
# Where hack/kind/up.sh mounts each worker's volume tmpfs (one directory per node name).
VOLUMES_ROOT=${REDISPAIR_KIND_VOLUMES:-/var/lib/redispair-kind}/$CLUSTER
CONTROL_PLANE=$CLUSTER-control-plane

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=hack/lib/volume.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/volume.sh"
usage() { sed -n '2,33p' "$0" >&2; exit 2; }

# node_is_ours NODE: a container of this kind cluster (kind labels them with the cluster name).
node_is_ours() {
  [[ $(docker inspect -f '{{ index .Config.Labels "io.x-k8s.kind.cluster" }}' "$1" 2>/dev/null) == "$CLUSTER" ]]
}

# service_cidr: the apiserver's --service-cluster-ip-range (kind's default is 10.96.0.0/16;
# read it rather than assume, a kind config may change it). IPv4 part only.
service_cidr() {
  docker exec "$CLUSTER-control-plane" cat /etc/kubernetes/manifests/kube-apiserver.yaml |
    sed -n 's/.*--service-cluster-ip-range=\([^, ]*\).*/\1/p' | head -n1
}

# record_addr NODE SUFFIX: the node's IPv4 and IPv6 addresses on the kind network into
# $STATE/NODE.SUFFIX, to give them back later.
record_addr() {
  local net ip4 ip6
  net=$(docker inspect -f "{{ json (index .NetworkSettings.Networks \"$NETWORK\") }}" "$1")
  ip4=$(sed -n 's/.*"IPAddress":"\([^"]*\)".*/\1/p' <<<"$net")
  ip6=$(sed -n 's/.*"GlobalIPv6Address":"\([^"]*\)".*/\1/p' <<<"$net")
  [[ -n $ip4 ]] || die "$1 has no address on network $NETWORK"
  printf '%s %s\n' "$ip4" "$ip6" >"$STATE/$1.$2"
}

(( $# >= 1 )) || usage
action=$1
case $action in
  route)
    (( $# == 1 )) || usage
    cidr=$(service_cidr)
    [[ -n $cidr ]] || die "cannot read the service CIDR from $CLUSTER-control-plane"
    cp_ip=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$NETWORK\").IPAddress }}" "$CLUSTER-control-plane")
    [[ -n $cp_ip ]] || die "no address of $CLUSTER-control-plane on network $NETWORK"
    # kube-proxy on the control-plane node translates ClusterIPs, and masquerades traffic from
    # outside the pod range (this host), so replies come back the same way. The control plane
    # is never a fault target, so the route survives every fault the suite injects.
    ip route replace "$cidr" via "$cp_ip"
    log "route: $cidr via $cp_ip ($CLUSTER-control-plane)"
    # Each node's pod range via that node, as kindnet routes them between nodes: the host then
    # reaches pods by IP as it does on the local cluster (the metrics scrape and the migration
    # case's per-engine checks need it). Replies need no masquerade: they belong to connections
    # the host opened, so conntrack sends them back unchanged. The routes stay through faults:
    # a killed or partitioned node's pods are unreachable while it is, as they should be, and a
    # node comes back with the address it had (restore, heal).
    ranges=$(docker exec "$CONTROL_PLANE" kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes \
      -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR}{"\n"}{end}') \
      || die "cannot read the nodes' pod ranges through $CONTROL_PLANE"
    # The whole pod range unreachable underneath the nodes' routes: a pod address no node owns
    # (a deleted pod's, a node's before its route is added) fails here at once instead of
    # following this host's default route off the machine (2026-12-06: a scrape of an unrouted
    # pod IP got a 404 from somewhere else).
    cluster_cidr=$(docker exec "$CONTROL_PLANE" cat /etc/kubernetes/manifests/kube-controller-manager.yaml |
      sed -n 's/.*--cluster-cidr=\([^, ]*\).*/\1/p' | head -n1)
    [[ -n $cluster_cidr ]] || die "cannot read the pod range (--cluster-cidr) from $CONTROL_PLANE"
    ip route replace unreachable "$cluster_cidr"
    log "route: $cluster_cidr unreachable (below each node's pod range)"
    while read -r node pod_cidr; do
      [[ -n $node && -n $pod_cidr ]] || continue
      node_ip=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$NETWORK\").IPAddress }}" "$node")
      [[ -n $node_ip ]] || die "no address of $node on network $NETWORK"
      ip route replace "$pod_cidr" via "$node_ip"
      log "route: $pod_cidr via $node_ip ($node)"
    done <<<"$ranges"
    exit 0
    ;;
  has-volumes)
    (( $# == 1 )) || usage
    for node in $(docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --filter "label=io.x-k8s.kind.role=worker" --format '{{.Names}}'); do
      mountpoint -q "$VOLUMES_ROOT/$node" || exit 1
    done
    exit 0
    ;;
  restart-apiserver)
    (( $# == 1 )) || usage
    # The apiserver's running task, found through the node's containerd by the label the
    # kubelet gives every container (no crictl needed in the node image).
    running_apiserver() {
      local c
      for c in $(docker exec "$CONTROL_PLANE" ctr -n k8s.io containers ls -q 'labels."io.kubernetes.container.name"==kube-apiserver'); do
        docker exec "$CONTROL_PLANE" ctr -n k8s.io task ls | awk -v id="$c" '$1 == id && $3 == "RUNNING" {print $1}'
      done
    }
    id=$(running_apiserver | head -n1)
    [[ -n $id ]] || die "no running kube-apiserver on $CONTROL_PLANE"
    docker exec "$CONTROL_PLANE" ctr -n k8s.io task kill -s SIGKILL "$id"
    log "kube-apiserver killed (SIGKILL, container ${id:0:12}); the kubelet starts it again"
    # Gone first (or /readyz could still be answered by the dying process), then answering:
    # the kubelet notices the exit at its next relist (~1 s) and restarts a static pod's
    # container at once the first time (its back-off grows only for repeated crashes).
    deadline=$(( $(date +%s) + 120 ))
    until ! running_apiserver | grep -qx "$id"; do
      (( $(date +%s) < deadline )) || die "kube-apiserver container ${id:0:12} still running after SIGKILL"
      sleep 0.2
    done
    until docker exec "$CONTROL_PLANE" kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz >/dev/null 2>&1; do
      (( $(date +%s) < deadline )) || die "kube-apiserver not ready 120 s after the restart"
      sleep 0.5
    done
    log "kube-apiserver restarted and ready"
    exit 0
    ;;
esac

(( $# == 2 || $# == 3 )) || usage
[[ $action == *-container ]] || (( $# == 2 )) || usage
node=$2
node_is_ours "$node" || die "no node $node in kind cluster $CLUSTER"
[[ $node != "$CLUSTER-control-plane" ]] || die "refusing to fault the control plane"
mkdir -p "$STATE"

case $action in
  kill)
    record_addr "$node" kill
    docker kill "$node" >/dev/null
    log "$node killed (docker kill)"
    ;;
  restore)
    # Docker gives a restarted container the next free address, not its old one; the
    # kubelet registered the node with the old one (--node-ip) and the other nodes route its
    # pod range there. So the stopped container is reconnected with the recorded address
    # first.
    if [[ -s $STATE/$node.kill ]]; then
      read -r ip4 ip6 <"$STATE/$node.kill"
      args=(--ip "$ip4")
      [[ -n ${ip6:-} ]] && args+=(--ip6 "$ip6")
      docker network disconnect "$NETWORK" "$node" >/dev/null 2>&1 || true
      docker network connect "${args[@]}" "$NETWORK" "$node"
      rm -f "$STATE/$node.kill"
    fi
    docker start "$node" >/dev/null
    log "$node started again"
    ;;
  partition)
    record_addr "$node" addr
    read -r ip4 _ <"$STATE/$node.addr"
    docker network disconnect "$NETWORK" "$node"
    log "$node partitioned: disconnected from $NETWORK (was $ip4)"
    ;;
  heal)
    [[ -s $STATE/$node.addr ]] || die "no recorded address for $node: was it partitioned by this script?"
    read -r ip4 ip6 <"$STATE/$node.addr"
    # The same address: the kubelet registered the node with it (--node-ip), and other nodes'
    # routes to its pod range point at it.
    args=(--ip "$ip4")
    [[ -n ${ip6:-} ]] && args+=(--ip6 "$ip6")
    docker network connect "${args[@]}" "$NETWORK" "$node"
    rm -f "$STATE/$node.addr"
    log "$node healed: reconnected to $NETWORK as $ip4"
    ;;
  fill-volume) volume_fill "$VOLUMES_ROOT/$node" "$node" ;;
  free-volume) volume_free "$VOLUMES_ROOT/$node" "$node" ;;
  kill-container)
    id=${3#containerd://}
    [[ $id =~ ^[0-9a-f]{64}$ ]] || die "not a containerd container ID: $3"
    docker exec "$node" ctr -n k8s.io task kill -s SIGKILL "$id"
    log "$node: container ${id:0:12} killed (SIGKILL)"
    ;;
  freeze-container|thaw-container)
    id=${3#containerd://}
    [[ $id =~ ^[0-9a-f]{64}$ ]] || die "not a containerd container ID: $3"
    sig=SIGSTOP
    [[ $action == thaw-container ]] && sig=SIGCONT
    docker exec "$node" ctr -n k8s.io task kill -s "$sig" "$id"
    log "$node: container ${id:0:12} sent $sig"
    ;;
  *) usage ;;
esac
