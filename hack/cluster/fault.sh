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
#
# NODE is node1..nodeN (or just the number).
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
(( $# == 2 )) || usage
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
  *) usage ;;
esac
