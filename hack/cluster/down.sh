#!/usr/bin/env bash
# Tear down what hack/cluster/up.sh started, and nothing else.
#
#   hack/cluster/down.sh
#   REDISPAIR_KEEP_LOGS=DIR hack/cluster/down.sh     (copy the cluster's logs to DIR first)
#
# Stops the recorded processes (add-ons, nodes with their containerd shims and containers,
# control plane), removes the node network namespaces, our bridge and routes, the cgroups
# made for the nodes, the runtime directory and the state directory. The build cache
# (~/.cache/redispair) is kept. Idempotent: on a machine without a cluster it does nothing.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

# Node numbers from every trace a node leaves: state dirs, namespaces, cgroups.
all_nodes() {
  {
    known_nodes
    ip netns list 2>/dev/null | sed -n 's/^rp-node\([0-9]*\).*/\1/p'
    for d in /sys/fs/cgroup/pids/node*; do [[ -d $d ]] && echo "${d##*/node}"; done
  } | sort -un
}
mapfile -t NODES < <(all_nodes)

# Add-ons first (they watch the API), then the nodes, then the control plane, so nothing
# logs a storm of connection errors on its way out.
stop_pidfiles "$STATE/pids/local-path-provisioner.pid" "$STATE/pids/coredns.pid"

for i in "${NODES[@]}"; do
  # Everything of the node at once (SIGKILL): its state is thrown away anyway. This also
  # removes the shims' sockets.
  kill_node "$i" || true
  for f in "$STATE/pids/node$i"-*.pid; do [[ -e $f ]] && rm -f "$f"; done
done

stop_pidfiles "$STATE/pids/kube-scheduler.pid" "$STATE/pids/kube-controller-manager.pid" \
  "$STATE/pids/kube-apiserver.pid"
stop_pidfile "$STATE/pids/etcd.pid"   # last: the apiserver may still write while it stops

# cgroups: the kubelet made /nodeI/kubepods/... below the roots we made; remove depth-first.
for i in "${NODES[@]}"; do
  while read -r h; do
    [[ -d $h/node$i ]] || continue
    find "$h/node$i" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $h/node$i ]] && log "warning: could not remove cgroup $h/node$i"
  done < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts)
done

# Network: deleting a namespace deletes the node end of its veth, and with it the host end.
for i in "${NODES[@]}"; do
  ip route del "$(node_pod_cidr "$i")" 2>/dev/null || true
  ip netns del "$(node_netns "$i")" 2>/dev/null || true
  ip link del "$(node_veth "$i")" 2>/dev/null || true
done
ip route del "$SERVICE_CIDR" 2>/dev/null || true
ip link del "$BRIDGE" 2>/dev/null || true
for r in "${GUARD_ROUTES[@]}"; do ip route del unreachable "$r" 2>/dev/null || true; done

# Mount points up.sh created on the host for the nodes' bind mounts (only if still empty).
if [[ -f $STATE/created-dirs ]]; then
  while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$STATE/created-dirs"
fi
# The nodes' volume filesystems (up.sh), once no process of a node holds them.
for d in "$STATE"/nodes/node*/local-path; do
  if mountpoint -q "$d"; then umount "$d" || umount -l "$d"; fi
done
if [[ -n ${REDISPAIR_KEEP_LOGS:-} && -d $STATE/logs ]]; then
  mkdir -p "$REDISPAIR_KEEP_LOGS"
  cp -a "$STATE/logs/." "$REDISPAIR_KEEP_LOGS/"
  log "logs kept in $REDISPAIR_KEEP_LOGS"
fi
rm -rf "$RUN_DIR" "$STATE"
log "cluster down"
