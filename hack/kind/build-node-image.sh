#!/usr/bin/env bash
# Build a kind node image from the project's own Kubernetes build, with no registry: for
# machines that cannot pull kindest/node (the project's). Prints the image's name last on stdout.
#
#   hack/kind/build-node-image.sh            build it, or find it already built
#   hack/kind/build-node-image.sh --prepare  only what needs no Docker engine: the Go builds and
#                                            the root file system's tarball (cached), so that
#                                            hack/test.sh can do them beside a stage that waits
#   hack/kind/up.sh                          uses it when KIND_NODE_IMAGE names it
#
# The image has the layout of kind's own node images (kind v0.32.0's images/base and
# pkg/build/nodeimage, read from the Go module cache), so `kind create cluster --image` runs it
# unchanged:
#   - root file system: Debian bookworm by debootstrap (systemd, containerd 1.6, runc, CNI
#     plugins, iptables, ...), imported with `docker import`; kind's files on top
#     (entrypoint, systemd units, kubelet drop-ins, /kind/bin), hack/kind/node/Dockerfile;
#   - /usr/bin/kubelet, kubeadm, kubectl: hack/cluster/build.sh's build of $K8S_VERSION (the
#     version the local cluster runs), /kind/version;
#   - in the node's containerd, imported with `ctr images import` in a running build container
#     and committed (kind's own method): the images `kubeadm config images list` names, made
#     here from the same build (kube-apiserver, -controller-manager, -scheduler, -proxy), etcd
#     and CoreDNS built from the Go module proxy at the versions kubeadm names, the pause
#     program (hack/images/pause), the project's busybox (testbox) and local-path-provisioner;
#   - /kind/manifests: the pod network and the default StorageClass (hack/kind/node/).
# Why bookworm and not trixie (kind's base): the machines here run cgroup v1, which trixie's
# systemd 257 no longer boots on; bookworm's containerd 1.6 and runc 1.1.5 are what the local
# cluster already runs Kubernetes 1.36 on.
#
# Cache: the image's tag is a hash of every input (binaries, files, this script, versions);
# an image with that tag in Docker's data root (~/.cache/redispair/docker-data) is reused. The
# debootstrap root file system is kept as a tarball under ~/.cache/redispair/kind-rootfs, keyed
# by the suite and package list (like the base image made from it), so --prepare can make it
# without a Docker engine.
# Cold: ~2 min debootstrap, ~1 min images and commit, plus the Go builds when not cached
# (kubeadm ~1 min, etcd ~3 min, CoreDNS ~2.5 min; Kubernetes itself ~5 min).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
# shellcheck source=hack/lib/docker.sh
source hack/lib/docker.sh

need_root
PREPARE=0
case ${1:-} in
  --prepare) PREPARE=1 ;;
  '') ;;
  *) die "usage: hack/kind/build-node-image.sh [--prepare]" ;;
esac
# What this script runs from Debian, installed up front (a fresh machine has neither): the
# root file system's builder, and the static busybox the testbox image is made of.
apt_install debootstrap busybox-static
(( PREPARE )) || docker_engine_up

# Debian packages of the node (kind's base image list, with Debian's containerd, runc and CNI
# plugins instead of kind's own builds of them).
NODE_PACKAGES=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins,socat
NODE_SUITE=bookworm
PAUSE_TAG=registry.k8s.io/pause:3.10.2
STATIC_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

stage "binaries (hack/cluster/build.sh: Kubernetes $K8S_VERSION, kubeadm, etcd, CoreDNS, local-path-provisioner)" \
  "each cached after its first build"
for what in k8s kubeadm etcd coredns-kubeadm local-path; do bash hack/cluster/build.sh "$what" >&2; done
# kind itself is up.sh's to build; --prepare builds it too, so nothing is left for later.
(( PREPARE )) && bash hack/cluster/build.sh kind >&2

# --- the root file system, as a tarball (needs no Docker engine) -------------------------------
base_hash=$(echo "$NODE_SUITE $NODE_PACKAGES" | sha256sum | cut -c1-12)
BASE=localhost/redispair/kind-base:$NODE_SUITE-$base_hash
ROOTFS_TAR=$CACHE_ROOT/kind-rootfs/$NODE_SUITE-$base_hash.tar
ROOTFS_DIR=   # debootstrap's target while it is being made; removed by the EXIT trap whatever happens
trap '[[ -z $ROOTFS_DIR ]] || rm -rf "$ROOTFS_DIR"' EXIT
rootfs_tar() {
  if [[ -f $ROOTFS_TAR ]]; then log "root file system cached: $ROOTFS_TAR"; return; fi
  stage "node root file system: debootstrap $NODE_SUITE" "~2 min"
  ROOTFS_DIR=$(mktemp -d /var/tmp/redispair-kind-rootfs.XXXXXX)
  debootstrap --variant=minbase --include="$NODE_PACKAGES" "$NODE_SUITE" "$ROOTFS_DIR" http://deb.debian.org/debian >&2 \
    || die "debootstrap failed"
  # What a container never uses: package caches and lists, documentation.
  rm -rf "$ROOTFS_DIR"/var/cache/apt/archives/*.deb "$ROOTFS_DIR"/var/lib/apt/lists/* \
    "$ROOTFS_DIR"/usr/share/doc/* "$ROOTFS_DIR"/usr/share/man/*
  mkdir -p "$(dirname "$ROOTFS_TAR")"
  # Written aside and renamed: an interrupted run never leaves a tarball that looks complete.
  tar --numeric-owner -C "$ROOTFS_DIR" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$ROOTFS_DIR"
  ROOTFS_DIR=
  stage_end
}

# kubeadm decides which images a node needs: they must be exactly the ones built here.
want=$("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null | sort)
have=$(printf '%s\n' "registry.k8s.io/kube-apiserver:$K8S_VERSION" "registry.k8s.io/kube-controller-manager:$K8S_VERSION" \
  "registry.k8s.io/kube-scheduler:$K8S_VERSION" "registry.k8s.io/kube-proxy:$K8S_VERSION" \
  "registry.k8s.io/coredns/coredns:$KIND_COREDNS_VERSION" "$PAUSE_TAG" \
  "registry.k8s.io/etcd:${KIND_ETCD_VERSION#v}-0" | sort)
[[ $want == "$have" ]] || die "kubeadm $K8S_VERSION wants other images than this script builds:
$want
(set KIND_ETCD_VERSION, KIND_COREDNS_VERSION in hack/cluster/lib.sh and PAUSE_TAG here)"

if (( PREPARE )); then
  rootfs_tar
  log "prepared: the binaries and $ROOTFS_TAR"
  exit 0
fi

kind_dir=$(cd /tmp && "$GO" mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[[ -d $kind_dir/images/base/files ]] || die "no kind $KIND_VERSION source in the Go module cache"

# The tag: every input's content.
bins=("$K8S_BIN"/{kubelet,kubeadm,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy}
  "$ETCD_BIN/etcd" "$KIND_COREDNS_BIN/coredns" "$LOCAL_PATH_BIN/local-path-provisioner" /bin/busybox)
hash=$( {
  echo "$K8S_VERSION $KIND_VERSION $NODE_SUITE $NODE_PACKAGES $PAUSE_TAG"
  sha256sum "${bins[@]}" hack/kind/build-node-image.sh hack/kind/node/* hack/images/build-image.sh hack/images/pause/* | cut -d' ' -f1
  (cd "$kind_dir/images/base/files" && find . -type f | sort | xargs sha256sum)
} | sha256sum | cut -c1-12)
IMAGE=${KIND_NODE_IMAGE_NAME:-localhost/redispair/kind-node:$K8S_VERSION-$hash}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "node image up to date: $IMAGE"
  echo "$IMAGE"
  exit 0
fi

work=$(mktemp -d /var/tmp/redispair-kind-node.XXXXXX)
container=
cleanup() {
  [[ -z $ROOTFS_DIR ]] || rm -rf "$ROOTFS_DIR"
  [[ -n $container ]] && docker rm -f -v "$container" >/dev/null 2>&1
  docker rmi "$IMAGE-stage" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# --- the base image: the root file system imported ------------------------------------------
if docker image inspect "$BASE" >/dev/null 2>&1; then
  log "base up to date: $BASE"
else
  rootfs_tar
  docker import - "$BASE" <"$ROOTFS_TAR" >/dev/null
  log "imported $BASE"
fi

# --- the node's file system with kind's files -------------------------------------------------
stage "node file system (hack/kind/node/Dockerfile)"
ctx=$work/node
mkdir -p "$ctx/bin"
cp -r "$kind_dir/images/base/files" "$ctx/kind-files"
chmod -R u+w "$ctx/kind-files"
cp hack/kind/node/* "$ctx/"
cp "$K8S_BIN"/{kubelet,kubeadm,kubectl} "$ctx/bin/"
docker build -q -t "$IMAGE-stage" --build-arg BASE_IMAGE="$BASE" --build-arg K8S_VERSION="$K8S_VERSION" \
  --build-arg PAUSE_IMAGE="$PAUSE_TAG" "$ctx" >/dev/null || die "docker build of the node file system failed"

# --- the images the node runs -------------------------------------------------------------------
stage "images for the node's containerd"
img=$work/images
mkdir -p "$img/root/etc" "$img/root/tmp" "$img/bin" "$work/archives"
chmod 1777 "$img/root/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$img/root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$img/root/etc/group"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$img/root/etc/ssl/certs/ca-certificates.crt"
cp "${bins[@]:3:7}" "$img/bin/"
# static_image REF BINARY PATH [ENTRYPOINT_JSON]: a Go binary (CGO_ENABLED=0) on users,
# groups, /tmp and CA certificates, as the distroless images upstream uses.
static_image() {
  local ref=$1 bin=$2 path=$3 entry=${4:-}
  { echo "FROM scratch"
    echo "COPY root/ /"
    echo "COPY bin/$bin $path"
    echo "ENV PATH=$STATIC_PATH"
    if [[ -n $entry ]]; then echo "ENTRYPOINT $entry"; fi
  } | docker build -q -t "$ref" -f - "$img" >/dev/null || die "docker build of $ref failed"
}
static_image "registry.k8s.io/kube-apiserver:$K8S_VERSION" kube-apiserver /usr/local/bin/kube-apiserver
static_image "registry.k8s.io/kube-controller-manager:$K8S_VERSION" kube-controller-manager /usr/local/bin/kube-controller-manager
static_image "registry.k8s.io/kube-scheduler:$K8S_VERSION" kube-scheduler /usr/local/bin/kube-scheduler
static_image "registry.k8s.io/etcd:${KIND_ETCD_VERSION#v}-0" etcd /usr/local/bin/etcd
static_image "registry.k8s.io/coredns/coredns:$KIND_COREDNS_VERSION" coredns /coredns '["/coredns"]'
static_image localhost/redispair/local-path-provisioner:dev local-path-provisioner /local-path-provisioner '["/local-path-provisioner"]'
# kube-proxy runs iptables and conntrack: the node's own Debian, as upstream's image is Debian.
printf 'FROM %s\nCOPY bin/kube-proxy /usr/local/bin/kube-proxy\n' "$BASE" |
  docker build -q -t "registry.k8s.io/kube-proxy:$K8S_VERSION" -f - "$img" >/dev/null || die "docker build of kube-proxy failed"
docker_refs=("registry.k8s.io/kube-apiserver:$K8S_VERSION" "registry.k8s.io/kube-controller-manager:$K8S_VERSION"
  "registry.k8s.io/kube-scheduler:$K8S_VERSION" "registry.k8s.io/kube-proxy:$K8S_VERSION"
  "registry.k8s.io/etcd:${KIND_ETCD_VERSION#v}-0" "registry.k8s.io/coredns/coredns:$KIND_COREDNS_VERSION"
  localhost/redispair/local-path-provisioner:dev)
docker save "${docker_refs[@]}" -o "$work/archives/docker-built.tar"
docker rmi "${docker_refs[@]}" >/dev/null
PAUSE_IMAGE=$PAUSE_TAG bash hack/images/build-image.sh pause --out "$work/archives/pause.oci.tar"
bash hack/images/build-image.sh testbox --out "$work/archives/testbox.oci.tar"

# --- import them into the node's containerd, commit -----------------------------------------------
stage "import into the node's containerd and commit $IMAGE"
container=$(docker run -d --privileged --entrypoint sleep "$IMAGE-stage" infinity)
docker exec "$container" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
wait_for 30 "containerd in the build container" docker exec "$container" ctr version >/dev/null
for archive in "$work"/archives/*.tar; do
  # --no-unpack: only the content store; each node unpacks on first use. Pinned: the
  # kubelet's image garbage collection never removes them (there is no registry to pull from).
  docker exec -i "$container" ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"$archive" >&2 || die "ctr import of $archive failed"
done
docker exec "$container" ctr -n k8s.io images ls -q >&2
docker exec "$container" pkill containerd
# The container's PID 1 is `sleep`, which reaps nobody: a stopped containerd stays a zombie.
wait_for 30 "containerd to stop" bash -c "! docker exec $container sh -c 'ps -o stat= -C containerd | grep -qv Z'"
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$container" "$IMAGE" >/dev/null
stage_end
# Older node images (other hashes) are ~1.5 GB each: removed, unless a cluster still runs one.
docker images --format '{{.Repository}}:{{.Tag}}' localhost/redispair/kind-node | grep -vx "$IMAGE" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec))"
echo "$IMAGE"
