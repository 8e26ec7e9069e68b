#!/usr/bin/env bash
# For machines with Docker: a kind cluster that looks like hack/cluster/up.sh's to the e2e
# suite (three schedulable nodes labelled zone-a/b/c, the RedisPair image preloaded).
#
#   hack/kind/up.sh              create (or reuse) the cluster, build and load the image
#   kind delete cluster --name redispair                                  to remove it
#
# Like hack/cluster/up.sh, the last line of stdout is `KUBECONFIG=<path>`.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-redispair}
IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}   # the Helm chart's default
KUBECONFIG_PATH=${KIND_KUBECONFIG:-$HOME/.kube/kind-$CLUSTER.kubeconfig}

for tool in kind docker kubectl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

# One control plane (tainted, runs no workloads) and three workers, one per zone, so
# required anti-affinity and zone spread behave as on the local cluster.
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 120s --config - >&2 <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
  labels: {topology.kubernetes.io/zone: zone-a}
- role: worker
  labels: {topology.kubernetes.io/zone: zone-b}
- role: worker
  labels: {topology.kubernetes.io/zone: zone-c}
YAML
fi

# The image: `docker build` from the repository's Dockerfile; without one, the OCI archive
# that hack/images/build-image.sh makes from target/release (kind imports it the same way).
if [[ -f $REPO_ROOT/Dockerfile ]]; then
  docker build -t "$IMAGE" "$REPO_ROOT" >&2
  kind load docker-image "$IMAGE" --name "$CLUSTER" >&2
else
  archive=$(mktemp --suffix=.oci.tar)
  "$REPO_ROOT/hack/images/build-image.sh" redispair --ref "$IMAGE" --out "$archive"
  kind load image-archive "$archive" --name "$CLUSTER" >&2
  rm -f "$archive"
fi

mkdir -p "$(dirname "$KUBECONFIG_PATH")"
kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_PATH"
echo "KUBECONFIG=$KUBECONFIG_PATH"
