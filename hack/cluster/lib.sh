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
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}

# --- where things live ------------------------------------------------------------------
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE_ROOT=${REDISPAIR_CACHE:-$HOME/.cache/redispair}
K8S_BIN=$CACHE_ROOT/k8s/$K8S_VERSION/bin
HELM_BIN=$CACHE_ROOT/helm/$HELM_VERSION/bin
COREDNS_BIN=$CACHE_ROOT/coredns/$COREDNS_VERSION/bin
LOCAL_PATH_BIN=$CACHE_ROOT/local-path-provisioner/$LOCAL_PATH_VERSION/bin
IMAGES_DIR=$CACHE_ROOT/images            # OCI archives of the cluster's own images
# All cluster state (certs, configs, logs, PIDs, per-node dirs) lives under one directory,
# so down.sh knows exactly what to remove.
STATE=${REDISPAIR_CLUSTER_DIR:-/var/lib/redispair-cluster}
KUBECONFIG_PATH=$STATE/admin.kubeconfig

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

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
KUBERNETES_SVC_IP=10.215.0.1
CLUSTER_DNS_IP=10.215.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380

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
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

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

# pid_alive PIDFILE: true when the process recorded in PIDFILE is still running.
pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_root() { [[ $(id -u) == 0 ]] || die "must run as root (namespaces, bridges, cgroups)"; }

# apt_install PKG...: install Debian packages that are missing (apt-get update once first).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

kc() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
