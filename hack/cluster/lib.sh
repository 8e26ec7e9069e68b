# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# Shared settings and helpers for hack/cluster/*.sh. Sourced, never run.
#
# Every version, path and address the local cluster uses is defined here once, so
# build.sh, up.sh, down.sh, fault.sh and selftest.sh cannot disagree about them.

# --- versions (pinned; the cache is keyed by them) -------------------------------------
# Kubernetes stays on v1.36.x: Debian's containerd 1.6 lacks the CRI RuntimeConfig call and
# kubelet 1.36 still falls back to the configured cgroup driver; 1.37 removes that fallback.
K8S_VERSION=${K8S_VERSION:-v1.36.3}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# promtool checks the chart's alerting rules (hack/check-chart.sh). Prometheus 3.x tags its Go
# module v0.3XX.Y for release 3.XX.Y: v0.316.0 is Prometheus 3.16.0.
PROMTOOL_VERSION=${PROMTOOL_VERSION:-v0.316.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
# cert-manager's CRDs (not cert-manager itself): the operator test of spec.tls.issuerRef
# (tests/operator_certmanager.rs) applies its Certificate CRD, taken from the Go module.
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.21.2}
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}
# Only for the kind node image (hack/kind/build-node-image.sh): the etcd and CoreDNS versions
# kubeadm $K8S_VERSION deploys (`kubeadm config images list`; the script checks they agree).
KIND_ETCD_VERSION=${KIND_ETCD_VERSION:-v3.6.8}
KIND_COREDNS_VERSION=${KIND_COREDNS_VERSION:-v1.14.2}
# kind itself: v0.32.0 is the release whose default node image is Kubernetes v1.36
# (hack/kind/up.sh pins that image; offline it uses hack/kind/build-node-image.sh's instead).
KIND_VERSION=${KIND_VERSION:-v0.32.0}

# --- where things live ------------------------------------------------------------------
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE_ROOT=${REDISPAIR_CACHE:-$HOME/.cache/redispair}
K8S_BIN=$CACHE_ROOT/k8s/$K8S_VERSION/bin
HELM_BIN=$CACHE_ROOT/helm/$HELM_VERSION/bin
PROMTOOL_BIN=$CACHE_ROOT/promtool/$PROMTOOL_VERSION/bin
CERT_MANAGER_CRDS=$CACHE_ROOT/cert-manager/$CERT_MANAGER_VERSION/crds
COREDNS_BIN=$CACHE_ROOT/coredns/$COREDNS_VERSION/bin
LOCAL_PATH_BIN=$CACHE_ROOT/local-path-provisioner/$LOCAL_PATH_VERSION/bin
ETCD_BIN=$CACHE_ROOT/etcd/$KIND_ETCD_VERSION/bin
KIND_COREDNS_BIN=$CACHE_ROOT/coredns-kubeadm/$KIND_COREDNS_VERSION/bin
KIND_BIN=$CACHE_ROOT/kind/$KIND_VERSION/bin
IMAGES_DIR=$CACHE_ROOT/images            # OCI archives of the cluster's own images
# All cluster state (certs, configs, logs, PIDs, per-node dirs) lives under one directory,
# so down.sh knows exactly what to remove.
STATE=${REDISPAIR_CLUSTER_DIR:-/var/lib/redispair-cluster}
KUBECONFIG_PATH=$STATE/admin.kubeconfig
# Runtime bits (containerd state and sockets, runc state) that must not outlive a reboot.
RUN_DIR=${REDISPAIR_CLUSTER_RUN_DIR:-/run/redispair-cluster}
# local-path-provisioner's volume root. Each node bind-mounts its own directory here, so a
# volume lives on one node only, as on a real cluster.
LOCAL_PATH_DIR=/var/lib/redispair-local-path
# Each node's volumes (local-path PVs) live on a tmpfs of this size of their own: a full volume
# is a fault the torture test injects (fault.sh fill-volume), and it must fill that node's
# volumes only, never the host's disk. tmpfs takes memory only for what is written.
NODE_VOLUME_SIZE=${REDISPAIR_NODE_VOLUME_SIZE:-1g}

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# The oldest Go that builds every pinned version above: the `go` line of the go.mod of
# k8s.io/kubernetes v1.36.3, CoreDNS v1.15.0 and helm v3.22.0 is 1.26.0 (local-path-provisioner
# v0.0.30: 1.23.0).
# build.sh also compares each module's own line with $GO before building it.
GO_MIN_VERSION=1.26.0

# --- network ----------------------------------------------------------------------------
# One host bridge of ours. The control plane binds 10.213.0.1 (the apiserver refuses a
# loopback advertise address); node i is 10.213.0.(10+i) inside its own network namespace.
# Node i's pods get 10.214.i.0/24 on a CNI bridge inside that namespace. Services use
# 10.215.0.0/24. All three ranges exist only on this machine, on links that we create.
BRIDGE=rpbr0
BRIDGE_IP=10.213.0.1
BRIDGE_CIDR=10.213.0.0/24
POD_CIDR_ALL=10.214.0.0/16
SERVICE_CIDR=10.215.0.0/24
# Catch-all routes for the three ranges: without them a packet for an address of ours that
# no node owns (a pod range of a node that is gone, the Service range with every node down)
# would follow the host's default route off the machine. Longer routes win over these.
GUARD_ROUTES=(10.213.0.0/16 10.214.0.0/16 10.215.0.0/16)
KUBERNETES_SVC_IP=10.215.0.1
CLUSTER_DNS_IP=10.215.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380

node_name()   { echo "node$1"; }
node_ip()     { echo "10.213.0.$((10 + $1))"; }
node_pod_cidr() { echo "10.214.$1.0/24"; }
node_pod_gw() { echo "10.214.$1.1"; }
node_netns()  { echo "rp-node$1"; }
node_veth()   { echo "rpveth$1"; }     # host end of node i's link to the bridge
node_zone()   { local z=(zone-a zone-b zone-c); echo "${z[$(( ($1 - 1) % 3 ))]}"; }
node_dir()    { echo "$STATE/nodes/node$1"; }

# Images the nodes need. Names carry a domain so CRI does not rewrite them to docker.io.
PAUSE_IMAGE=localhost/redispair/pause:3.10
TESTBOX_IMAGE=localhost/redispair/testbox:dev

# --- helpers ----------------------------------------------------------------------------
# log, die, stage, timed (hack/lib/log.sh); need_go, need_commands, run_as_root
# (hack/lib/prereqs.sh).
# shellcheck source=hack/lib/log.sh
source "$REPO_ROOT/hack/lib/log.sh"
# shellcheck source=hack/lib/prereqs.sh
source "$REPO_ROOT/hack/lib/prereqs.sh"

# now_ms: wall clock in milliseconds, for the timings the scripts print.
now_ms() { date +%s%3N; }

# wait_for DEADLINE_SECONDS DESCRIPTION COMMAND...: poll COMMAND (every 0.2 s) until it
# succeeds or the deadline passes. This is how the scripts synchronise: never a bare sleep.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local end=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= end )); then
      log "timed out after ${timeout}s waiting for: $what"
      return 1
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE: true when the process recorded in PIDFILE is still running and is
# still ours: every program the scripts start has the state directory in its arguments, so
# a PID reused by an unrelated process (after a reboot, say) does not count.
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE"
}

need_root() {
  [[ $(id -u) == 0 ]] || die "${0##*/} must run as root (network namespaces, bridges, cgroups): run it as root or through sudo"
  PATH=$(with_sbin "$PATH"); export PATH   # sysctl, ip, iptables (see with_sbin)
}


# apt_install PKG...: install Debian packages that are missing (apt-get update once first).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0
  local t=$SECONDS
  log "installing Debian packages: ${missing[*]}"
  wait_for_apt
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
  log "Debian packages installed in $(fmt_seconds $(( SECONDS - t )))"
}

# update_service_route: the host reaches ClusterIPs through the nodes' kube-proxy rules. Route
# the Service range over every node that is up and reachable (marker files in $STATE/up,
# removed by fault.sh kill/partition), so host-to-Service traffic survives a lost node.
update_service_route() {
  local hops=() f
  for f in "$STATE"/up/node*; do
    [[ -e $f ]] || continue
    hops+=(nexthop via "$(node_ip "${f##*/node}")" dev "$BRIDGE")
  done
  if (( ${#hops[@]} )); then
    ip route replace "$SERVICE_CIDR" "${hops[@]}"
  else
    ip route del "$SERVICE_CIDR" 2>/dev/null || true
  fi
}

# cluster_binaries_cached: every binary build.sh makes is in the cache, so no Go is needed.
cluster_binaries_cached() {
  local f
  for f in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl} \
           "$HELM_BIN/helm" "$COREDNS_BIN/coredns" "$LOCAL_PATH_BIN/local-path-provisioner"; do
    [[ -x $f ]] || return 1
  done
}

kc() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# node_pids I: every process of node I: its daemons in pids:/nodeI/system and its
# containers in pids:/nodeI/kubepods/..., whichever cgroup below /nodeI they are in.
node_pids() {
  local root=/sys/fs/cgroup/pids/node$1
  [[ -d $root ]] || return 0
  find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# kill_node I: SIGKILL everything of node I (holder, containerd, shims, containers,
# kubelet, kube-proxy), repeating until the node's cgroups are empty, since a dying shim or
# container may still fork.
kill_node() {
  local i=$1 pids end=$(( $(date +%s) + 20 ))
  while pids=$(node_pids "$i") && [[ -n $pids ]]; do
    # shellcheck disable=SC2086  # one PID per word
    kill -9 $pids 2>/dev/null || true
    (( $(date +%s) < end )) || { log "node$i: processes left after 20 s: $pids"; return 1; }
    sleep 0.1
  done
  remove_shim_sockets "$i"
}

# remove_shim_sockets I: containerd puts each shim's socket under /run/containerd/s/ (a
# path it picks itself, not under the node's state) and a SIGKILLed shim leaves it behind.
# Every shim's address is recorded in its bundle in the node's containerd state directory.
remove_shim_sockets() {
  local f sock
  for f in "$RUN_DIR/node$1"/containerd-state/io.containerd.runtime.v2.task/*/*/address; do
    [[ -e $f ]] || continue
    sock=$(sed 's#^unix://##' "$f")
    [[ $sock == /run/containerd/s/* ]] && rm -f "$sock"
  done
  # Only if empty: a containerd of the machine's own would have its sockets there too.
  rmdir /run/containerd/s /run/containerd 2>/dev/null || true
}

# stop_pidfiles FILE...: stop the processes recorded in the FILEs, together (SIGTERM,
# then SIGKILL for any still there after 3 s), but only those that are still ours (see
# pid_alive). The FILEs are removed.
stop_pidfiles() {
  local f pids=() end
  for f in "$@"; do
    if pid_alive "$f"; then pids+=("$(cat "$f")"); fi
  done
  if (( ${#pids[@]} )); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    end=$(( $(date +%s%N) / 1000000 + 3000 ))
    while any_alive "${pids[@]}" && (( $(date +%s%N) / 1000000 < end )); do sleep 0.1; done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  rm -f "$@"
}
stop_pidfile() { stop_pidfiles "$1"; }
any_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

# known_nodes: the node numbers this state directory has ever set up.
known_nodes() {
  local d
  for d in "$STATE"/nodes/node*; do [[ -d $d ]] && echo "${d##*/node}"; done
  return 0
}
