#!/usr/bin/env bash
# A kind cluster that looks like hack/cluster/up.sh's to the e2e suite (three schedulable
# nodes labelled zone-a/b/c, the RedisPair image built from the Dockerfile and loaded).
#
#   hack/kind/up.sh              create (or reuse) the cluster, build and load the image
#   hack/kind/up.sh --offline    the same with no registry (the project's machines): a Docker
#                                engine of its own (hack/kind/docker.sh), the node image built
#                                by hack/kind/build-node-image.sh, the Dockerfile's bases by
#                                hack/images/docker-bases.sh
#   hack/kind/up.sh --binaries DIR   the image from binaries already built in DIR
#                                (redispair-operator, redispair-engine, kubectl-redispair; CI
#                                passes its dev-profile build): the Dockerfile's runtime stage
#                                with BINARIES=prebuilt, no release build. Built on Debian 12
#                                or an older glibc (the runtime base is distroless/cc-debian12)
#   kind delete cluster --name redispair                                  to remove it
#                                (and `docker network rm redispair-kind`, the nodes' network)
#
# Without --offline it needs docker (with buildx), kind and kubectl on PATH and pulls the
# public images: the node image pinned below (Kubernetes v1.36, the minor version the project
# tests), the Dockerfile's default bases. With no Docker engine answering, --offline is implied.
# KIND_NODE_IMAGE overrides the node image, REDISPAIR_IMAGE the image's name.
#
# Like hack/cluster/up.sh, the last line of stdout is `KUBECONFIG=<path>`.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-redispair}
IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}   # the Helm chart's default
# Not KUBECONFIG_PATH: hack/cluster/lib.sh (sourced below with --offline) gives that name to
# the local cluster's admin kubeconfig, which must never be overwritten here.
KIND_KUBECONFIG_FILE=${KIND_KUBECONFIG:-$HOME/.kube/kind-$CLUSTER.kubeconfig}
mkdir -p "$(dirname "$KIND_KUBECONFIG_FILE")"
# kind v0.32.0's default node image: Kubernetes v1.36, by digest, so it cannot drift.
PINNED_NODE_IMAGE=kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

OFFLINE=
BINARIES_DIR=
while (( $# )); do
  case $1 in
    --offline) OFFLINE=1; shift ;;
    --binaries) BINARIES_DIR=${2:?--binaries needs a directory}; shift 2 ;;
    *) sed -n '2,23p' "$0" >&2; exit 2 ;;
  esac
done
if [[ -n $BINARIES_DIR ]]; then
  for b in redispair-operator redispair-engine kubectl-redispair; do
    [[ -x $BINARIES_DIR/$b ]] || { echo "--binaries: no $BINARIES_DIR/$b (cargo build --bin $b)" >&2; exit 1; }
  done
fi
# No client or no engine that answers: the project's own engine (its client comes with it).
if [[ -z $OFFLINE ]] && ! { command -v docker >/dev/null && timeout 10 docker version >/dev/null 2>&1; }; then
  log "no Docker engine answers: --offline (an engine of the project's own, images built here)"
  OFFLINE=1
fi

build_args=()
NODE_IMAGE=${KIND_NODE_IMAGE:-$PINNED_NODE_IMAGE}
if [[ -n $OFFLINE ]]; then
  eval "$("$REPO_ROOT/hack/kind/docker.sh" up)"
  # kind, kubectl, helm: the project's builds (hack/cluster/build.sh), when not on PATH.
  # shellcheck source=hack/cluster/lib.sh
  source "$REPO_ROOT/hack/cluster/lib.sh"
  command -v kind >/dev/null || { bash "$REPO_ROOT/hack/cluster/build.sh" kind >&2; export PATH=$KIND_BIN:$PATH; }
  command -v kubectl >/dev/null || { bash "$REPO_ROOT/hack/cluster/build.sh" k8s >&2; export PATH=$K8S_BIN:$PATH; }
  # helm is not used here, but what a user runs next (README, "With Docker: kind").
  command -v helm >/dev/null || bash "$REPO_ROOT/hack/cluster/build.sh" helm >&2
  if [[ -n $BINARIES_DIR ]]; then
    # No release build: only the runtime base is needed (seconds, no debootstrap).
    mapfile -t build_args < <("$REPO_ROOT/hack/images/docker-bases.sh" --runtime-only)
  else
    mapfile -t build_args < <("$REPO_ROOT/hack/images/docker-bases.sh")
    # Containers get no NAT to the outside here (hack/lib/docker.sh): the builder fetches
    # crates from crates.io on the host's network.
    build_args+=(--network=host)
  fi
fi
for tool in kind docker kubectl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

# The nodes' network, made here rather than by kind: hack/kind/fault.sh gives a restored or
# healed node its old address back (`docker network connect --ip`: the kubelet registered the
# node with it, the other nodes route its pods there), and Docker accepts --ip only on networks
# whose subnet was given at creation, which kind's own "kind" network's IPv4 is not. Docker
# picks a free subnet first; the network is then made again with that subnet written down.
NETWORK=${KIND_EXPERIMENTAL_DOCKER_NETWORK:-redispair-kind}
export KIND_EXPERIMENTAL_DOCKER_NETWORK=$NETWORK
if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
  docker network create "$NETWORK" >/dev/null
  read -r subnet gateway < <(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}' "$NETWORK")
  docker network rm "$NETWORK" >/dev/null
  docker network create --subnet "$subnet" --gateway "$gateway" \
    -o com.docker.network.bridge.enable_ip_masquerade=true "$NETWORK" >/dev/null
  log "docker network $NETWORK: $subnet"
fi

# Each worker's volumes (local-path PVs, /var/local-path-provisioner in the node) on a tmpfs of
# its own on the host, bind-mounted into the node, as hack/cluster/up.sh gives its nodes: the
# torture test's volume-full fault (hack/kind/fault.sh fill-volume) then fills that node's
# volumes only, never the disk under Docker's data root, and the data outlives the node's
# container being killed and started again, as a disk outlives a node crash. Needs root on
# Linux (mount); elsewhere the volumes stay in the nodes' own file systems and fill-volume is
# refused (hack/torture.sh then leaves volume-full out).
VOLUMES_ROOT=${REDISPAIR_KIND_VOLUMES:-/var/lib/redispair-kind}/$CLUSTER
VOLUME_SIZE=${REDISPAIR_NODE_VOLUME_SIZE:-1g}
workers=("$CLUSTER-worker" "$CLUSTER-worker2" "$CLUSTER-worker3")   # kind's names for them
volumes=
if [[ $(id -u) == 0 && $(uname -s) == Linux ]]; then
  volumes=1
  for node in "${workers[@]}"; do
    mkdir -p "$VOLUMES_ROOT/$node"
    mountpoint -q "$VOLUMES_ROOT/$node" ||
      mount -t tmpfs -o "size=$VOLUME_SIZE,mode=0755" "redispair-kind-volumes" "$VOLUMES_ROOT/$node"
  done
else
  log "not root on Linux: the nodes' volumes stay in their own file systems (no volume-full fault)"
fi
# worker_yaml ZONE NODE: one worker of the kind config.
worker_yaml() {
  printf -- '- role: worker\n  labels: {topology.kubernetes.io/zone: %s}\n' "$1"
  [[ -z $volumes ]] || printf '  extraMounts:\n  - {hostPath: %s, containerPath: /var/local-path-provisioner}\n' "$VOLUMES_ROOT/$2"
}

# One control plane (tainted, runs no workloads) and three workers, one per zone, so
# required anti-affinity and zone spread behave as on the local cluster.
# failCgroupV1: false lets kubelet 1.35+ run on hosts still on cgroup v1 (the project's
# machines are); on cgroup v2 it changes nothing.
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  if [[ -n $OFFLINE && -z ${KIND_NODE_IMAGE:-} ]]; then
    NODE_IMAGE=$("$REPO_ROOT/hack/kind/build-node-image.sh" | tail -n1)
  fi
  log "creating kind cluster $CLUSTER with $NODE_IMAGE"
  kind create cluster --name "$CLUSTER" --kubeconfig "$KIND_KUBECONFIG_FILE" --image "$NODE_IMAGE" --wait 300s --config - >&2 <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
$(worker_yaml zone-a "${workers[0]}")
$(worker_yaml zone-b "${workers[1]}")
$(worker_yaml zone-c "${workers[2]}")
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  failCgroupV1: false
YAML
fi

# The image: `docker build` from the repository's Dockerfile, the image the chart installs.
bin_ctx=
if [[ -n $BINARIES_DIR ]]; then
  # Their debug sections stripped (a dev-profile build's are most of its size): a smaller
  # image for `kind load` to copy into every node. Symbols stay, so backtraces keep names.
  bin_ctx=$(mktemp -d /var/tmp/redispair-kind-bin.XXXXXX)
  trap 'rm -rf "$bin_ctx"' EXIT
  for b in redispair-operator redispair-engine kubectl-redispair; do
    objcopy --strip-debug "$BINARIES_DIR/$b" "$bin_ctx/$b"
  done
  build_args+=(--build-arg BINARIES=prebuilt --build-context "prebuilt-bin=$bin_ctx")
fi
log "docker build -t $IMAGE ${build_args[*]} ."
docker build -t "$IMAGE" "${build_args[@]}" "$REPO_ROOT" >&2
# On the project's own engine, the image this tag named before (~140 MB each build with new
# binaries) is left dangling: removed, so the data root under the cache does not grow run
# after run. A user's own engine is left alone.
[[ -z $OFFLINE ]] || docker image prune -f >/dev/null 2>&1 || true
kind load docker-image "$IMAGE" --name "$CLUSTER" >&2

mkdir -p "$(dirname "$KIND_KUBECONFIG_FILE")"
kind get kubeconfig --name "$CLUSTER" >"$KIND_KUBECONFIG_FILE"
echo "KUBECONFIG=$KIND_KUBECONFIG_FILE"
