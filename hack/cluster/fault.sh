#!/usr/bin/env bash
# Inject real faults into the local cluster's nodes.
#
#   hack/cluster/fault.sh kill NODE        the node is lost: its kubelet, kube-proxy,
#                                          containerd, shims and containers are SIGKILLed;
#                                          nothing restarts them (up.sh would)
#   hack/cluster/fault.sh partition NODE   the node keeps running but its only link (the
#                                          veth to our bridge) goes down: no apiserver, no
#                                          other node, no host can reach it or be reached
#   hack/cluster/fault.sh heal NODE        bring a partitioned node's link back
#   hack/cluster/fault.sh restore NODE     bring a killed node back (runs up.sh, which starts
#                                          whatever of the cluster is not running)
#   hack/cluster/fault.sh kill-container NODE ID
#                                          SIGKILL the init process of container ID (the
#                                          containerd ID in a pod's status, with or without
#                                          its containerd:// prefix) on NODE: the process dies,
#                                          the pod stays, the kubelet restarts the container
#   hack/cluster/fault.sh freeze-container NODE ID
#                                          SIGSTOP that process: a hung engine (alive, its
#                                          sockets open, answering nothing)
#   hack/cluster/fault.sh thaw-container NODE ID
#                                          SIGCONT it: the hung engine resumes where it was
#   hack/cluster/fault.sh fill-volume NODE  fill the node's volume filesystem (every local-path
#                                          PV on it; up.sh gives each node a tmpfs of its own):
#                                          writes there fail with ENOSPC from then on
#   hack/cluster/fault.sh free-volume NODE  remove what fill-volume wrote
#   hack/cluster/fault.sh restart-apiserver
#                                          SIGKILL the kube-apiserver and start it again (up.sh);
#                                          returns once it answers /readyz
#
# NODE is node1..nodeN (or just the number). tests/e2e calls this script as its fault hook
# (E2E_FAULT); hack/kind/fault.sh offers the same verbs for kind.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=hack/lib/volume.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/volume.sh"
need_root

usage() { sed -n '2,33p' "$0" >&2; exit 2; }
(( $# >= 1 )) || usage

# up.sh is idempotent: it starts only what is not running (and marks nodes up in the Service
# route). Its stdout (the KUBECONFIG line) is not ours to print.
bring_up() {
  local nodes
  nodes=$(known_nodes | sort -n | tail -n1)
  "$(dirname "${BASH_SOURCE[0]}")/up.sh" --nodes "$nodes" >/dev/null
}

if [[ $1 == restart-apiserver ]]; then
  (( $# == 1 )) || usage
  pidfile=$STATE/pids/kube-apiserver.pid
  pid_alive "$pidfile" || die "the kube-apiserver is not running"
  pid=$(cat "$pidfile")
  kill -9 "$pid"
  # Gone before up.sh looks, or it would find it alive and start nothing.
  # shellcheck disable=SC2317  # called through wait_for
  pid_gone() { ! kill -0 "$1" 2>/dev/null; }
  wait_for 10 "kube-apiserver (PID $pid) gone" pid_gone "$pid" || die "the kube-apiserver did not die"
  log "kube-apiserver killed (SIGKILL); starting it again"
  bring_up
  log "kube-apiserver restarted"
  exit 0
fi
(( $# == 2 || $# == 3 )) || usage
[[ $1 == *-container ]] || (( $# == 2 )) || usage
action=$1
i=${2#node}
[[ $i =~ ^[0-9]+$ && -d $(node_dir "$i") ]] || die "no such node: $2"
veth=$(node_veth "$i")

case $action in
  kill)
    kill_node "$i"
    # The host no longer routes Service traffic through this node.
    rm -f "$STATE/up/node$i"
    update_service_route
    log "node$i killed: no process of it is left"
    ;;
  partition)
    ip link set "$veth" down
    mkdir -p "$STATE/partitioned"
    touch "$STATE/partitioned/node$i"
    rm -f "$STATE/up/node$i"
    update_service_route
    log "node$i partitioned: link $veth down, its processes keep running"
    ;;
  heal)
    ip link set "$veth" up
    rm -f "$STATE/partitioned/node$i"
    # A killed node stays out of the Service route until up.sh brings it back.
    if pid_alive "$STATE/pids/node$i-kubelet.pid"; then
      mkdir -p "$STATE/up"
      touch "$STATE/up/node$i"
    fi
    update_service_route
    log "node$i healed: link $veth up"
    ;;
  restore)
    bring_up
    log "node$i restored"
    ;;
  fill-volume) volume_fill "$(node_dir "$i")/local-path" "node$i" ;;
  free-volume) volume_free "$(node_dir "$i")/local-path" "node$i" ;;
  kill-container)
    (( $# == 3 )) || usage
    id=${3#containerd://}
    [[ $id =~ ^[0-9a-f]{64}$ ]] || die "not a containerd container ID: $3"
    # The node's own containerd knows the container's init process (for an engine pod: the
    # engine itself). A SIGKILL through it is the same as kill -9 of that PID on the host.
    timeout 10 ctr --address "$RUN_DIR/node$i/containerd.sock" -n k8s.io task kill -s SIGKILL "$id"
    log "node$i: container ${id:0:12} killed (SIGKILL)"
    ;;
  freeze-container|thaw-container)
    (( $# == 3 )) || usage
    id=${3#containerd://}
    [[ $id =~ ^[0-9a-f]{64}$ ]] || die "not a containerd container ID: $3"
    sig=SIGSTOP
    [[ $action == thaw-container ]] && sig=SIGCONT
    timeout 10 ctr --address "$RUN_DIR/node$i/containerd.sock" -n k8s.io task kill -s "$sig" "$id"
    log "node$i: container ${id:0:12} sent $sig"
    ;;
  *) usage ;;
esac
