# shellcheck shell=bash
# SeaweedFS (Apache-2.0), the S3-compatible object store the archive tests run against: built
# from the Go module proxy and cached, then started on loopback with credentials. Sourced,
# never run; hack/seaweedfs.sh is the command-line front end.
#
#   seaweedfs_build                   # ~/.cache/redispair/seaweedfs-<version>/bin/weed
#   seaweedfs_start DIR PORT          # an S3 endpoint on 127.0.0.1:PORT (SEAWEEDFS_BIND_IP), data
#                                     # under DIR; prints the environment to reach it (AWS_*)
#   seaweedfs_stop DIR
#   seaweedfs_netns_start DIR         # the same in a network namespace on the local cluster's
#   seaweedfs_netns_stop DIR          # bridge, for pods (hack/e2e.sh)
#
# SeaweedFS publishes no semver tags the module proxy knows, so the pin is a pseudo-version
# (a commit of 2026-11-09 on master). Its go.mod has a replace directive, which
# `go install module@version` refuses: the build goes through a throwaway module that requires
# it and repeats the replace, as hack/cluster/build.sh does for Kubernetes.

# shellcheck source=hack/lib/log.sh
source "$(dirname "${BASH_SOURCE[0]}")/log.sh"

SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
SEAWEEDFS_CACHE=${REDISPAIR_CACHE:-$HOME/.cache/redispair}/seaweedfs-$SEAWEEDFS_VERSION
SEAWEEDFS_BIN=$SEAWEEDFS_CACHE/bin/weed
# Credentials of the test endpoint (loopback only, a throwaway store).
SEAWEEDFS_ACCESS_KEY=${SEAWEEDFS_ACCESS_KEY:-redispair}
SEAWEEDFS_SECRET_KEY=${SEAWEEDFS_SECRET_KEY:-redispair-secret}
SEAWEEDFS_BUCKET=${SEAWEEDFS_BUCKET:-redispair}

seaweedfs_go() {
  local go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  [[ -x $go ]] || die "Go is needed to build SeaweedFS and there is none at $go (GO=/path/to/go sets it): install Go 1.26+ from https://go.dev/dl"
  echo "$go"
}

# seaweedfs_compile SRC GO OUT: `go build` of weed in the throwaway module SRC (a subshell).
seaweedfs_compile() (
  cd "$1" || exit
  CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local nice -n 10 \
    "$2" build -mod=mod -trimpath -ldflags "-s -w" -o "$3" github.com/seaweedfs/seaweedfs/weed
)

# seaweedfs_build: build `weed` once per version (nothing to do when it is cached).
seaweedfs_build() {
  if [[ -x $SEAWEEDFS_BIN ]]; then log "seaweedfs $SEAWEEDFS_VERSION: cached in $SEAWEEDFS_BIN"; return; fi
  local go src
  go=$(seaweedfs_go)
  src=$SEAWEEDFS_CACHE/src
  mkdir -p "$src" "$SEAWEEDFS_CACHE/bin"
  (
    cd "$src"
    "$go" mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" >download.json
  ) || die "could not download github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION from the Go module proxy"
  local smod
  smod=$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' "$src/download.json")
  [[ -f $smod ]] || die "no go.mod for github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION"
  {
    echo "module redispair.local/seaweedfsbuild"
    echo
    grep -E '^go ' "$smod"
    echo
    echo "require github.com/seaweedfs/seaweedfs $SEAWEEDFS_VERSION"
    echo
    grep -E '^replace ' "$smod"
  } >"$src/go.mod"
  # -mod=mod fills in go.sum and the requirements from seaweedfs' own go.mod; static binary,
  # at low priority (the two cores are shared with Rust builds).
  timed "building seaweedfs $SEAWEEDFS_VERSION (weed): module downloads, then compiling" \
    "first run only, cached after in $SEAWEEDFS_CACHE" \
    seaweedfs_compile "$src" "$go" "$SEAWEEDFS_BIN.tmp"
  mv "$SEAWEEDFS_BIN.tmp" "$SEAWEEDFS_BIN"
}

# seaweedfs_start DIR PORT: start `weed mini` (master, volume, filer and S3 gateway in one
# process) with its data under DIR and the S3 API on 127.0.0.1:PORT, wait until it answers,
# create the bucket, and print the environment that reaches it, one `NAME=value` a line.
seaweedfs_start() {
  local dir=$1 port=$2 ip=${SEAWEEDFS_BIND_IP:-127.0.0.1}
  [[ -x $SEAWEEDFS_BIN ]] || die "no weed at $SEAWEEDFS_BIN: run hack/seaweedfs.sh build first"
  mkdir -p "$dir/data"
  cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "redispair", "credentials": [{"accessKey": "$SEAWEEDFS_ACCESS_KEY", "secretKey": "$SEAWEEDFS_SECRET_KEY"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  # Every port weed opens is derived from PORT, so two endpoints (two test runs) can coexist.
  "$SEAWEEDFS_BIN" server -ip="$ip" -ip.bind="$ip" -dir="$dir/data" \
    -master.port=$((port + 1)) -volume.port=$((port + 2)) -filer.port=$((port + 3)) \
    -master.port.grpc=$((port + 10001)) -volume.port.grpc=$((port + 10002)) -filer.port.grpc=$((port + 10003)) \
    -s3 -s3.port="$port" -s3.config="$dir/s3.json" -volume.max=8 -master.volumeSizeLimitMB=64 \
    >"$dir/weed.log" 2>&1 &
  echo $! >"$dir/weed.pid"
  local deadline=$((SECONDS + 120))
  until curl -s -o /dev/null "http://$ip:$port/"; do
    kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || { tail -n 30 "$dir/weed.log" >&2; die "weed exited at start (log: $dir/weed.log)"; }
    (( SECONDS < deadline )) || { tail -n 30 "$dir/weed.log" >&2; die "weed's S3 API did not answer on $ip:$port within 120 s"; }
    sleep 0.5
  done
  # The bucket, created through the S3 API itself (curl signs the request with SigV4). The S3
  # port answers before the filer behind it is ready (seen with three endpoints starting at
  # once on a loaded machine): retried until the same deadline.
  until curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$SEAWEEDFS_ACCESS_KEY:$SEAWEEDFS_SECRET_KEY" \
      -X PUT "http://$ip:$port/$SEAWEEDFS_BUCKET" >/dev/null \
    || curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$SEAWEEDFS_ACCESS_KEY:$SEAWEEDFS_SECRET_KEY" \
      "http://$ip:$port/$SEAWEEDFS_BUCKET" >/dev/null; do
    (( SECONDS < deadline )) || die "cannot create the bucket $SEAWEEDFS_BUCKET on $ip:$port (log: $dir/weed.log)"
    sleep 0.5
  done
  echo "AWS_ACCESS_KEY_ID=$SEAWEEDFS_ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SEAWEEDFS_SECRET_KEY"
  echo "AWS_REGION=us-east-1"
  echo "AWS_ENDPOINT=http://$ip:$port"
  echo "AWS_ALLOW_HTTP=true"
  echo "REDISPAIR_S3_BUCKET=$SEAWEEDFS_BUCKET"
}

# seaweedfs_stop DIR: stop the weed started by seaweedfs_start DIR (by its recorded pid).
seaweedfs_stop() {
  local pidfile=$1/weed.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# The S3 endpoint of the end-to-end suite on the local cluster (hack/e2e.sh): pods must reach
# it, and servers listen on loopback or inside network namespaces of our own only. So it runs
# in a namespace of its own, SEAWEEDFS_NETNS, plugged into the cluster's bridge like a node
# (hack/cluster/lib.sh: BRIDGE, the nodes' addresses and pod ranges), at SEAWEEDFS_NETNS_IP.
SEAWEEDFS_NETNS=${SEAWEEDFS_NETNS:-rp-s3}
SEAWEEDFS_NETNS_IP=${SEAWEEDFS_NETNS_IP:-10.213.0.250}
SEAWEEDFS_NETNS_PORT=${SEAWEEDFS_NETNS_PORT:-8333}

# seaweedfs_netns_start DIR: the namespace, its link to the bridge, routes back to every
# node's pods (the host does not forward), then weed bound to SEAWEEDFS_NETNS_IP inside it.
# Prints the NAME=value lines of seaweedfs_start. Needs root and the cluster's bridge.
seaweedfs_netns_start() {
  local dir=$1 bridge=${BRIDGE:?source hack/cluster/lib.sh first} veth=rp-s3-veth i
  [[ -e /run/netns/$SEAWEEDFS_NETNS ]] || ip netns add "$SEAWEEDFS_NETNS"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$SEAWEEDFS_NETNS"
  fi
  ip link set "$veth" master "$bridge" up
  ip -n "$SEAWEEDFS_NETNS" link set lo up
  ip -n "$SEAWEEDFS_NETNS" addr replace "$SEAWEEDFS_NETNS_IP/24" dev eth0
  ip -n "$SEAWEEDFS_NETNS" link set eth0 up
  for ((i = 1; i <= 9; i++)); do
    [[ -e /run/netns/$(node_netns "$i") ]] || continue
    ip -n "$SEAWEEDFS_NETNS" route replace "$(node_pod_cidr "$i")" via "$(node_ip "$i")" dev eth0
  done
  # weed's own ports stay on the namespace's loopback-like address; seaweedfs_start binds
  # SEAWEEDFS_BIND_IP.
  SEAWEEDFS_BIND_IP=$SEAWEEDFS_NETNS_IP ip netns exec "$SEAWEEDFS_NETNS" \
    bash -c "source '${BASH_SOURCE[0]}' && seaweedfs_start '$dir' '$SEAWEEDFS_NETNS_PORT'"
}

# seaweedfs_netns_stop DIR: weed, then the namespace and its link.
seaweedfs_netns_stop() {
  seaweedfs_stop "$1"
  ip link del rp-s3-veth 2>/dev/null || true
  ip netns del "$SEAWEEDFS_NETNS" 2>/dev/null || true
}
