#!/usr/bin/env bash
# SeaweedFS for the archive tests: an S3-compatible object store on loopback.
#
#   hack/seaweedfs.sh build           # build and cache weed (Go module proxy); ~/.cache/redispair/seaweedfs-<version>
#   hack/seaweedfs.sh path            # print weed's path; exit 1 when it is not built
#   hack/seaweedfs.sh start DIR PORT  # S3 API on 127.0.0.1:PORT, data in DIR; prints NAME=value lines
#   hack/seaweedfs.sh stop DIR
#   hack/seaweedfs.sh netns-start DIR # S3 API in network namespace rp-s3 on the local cluster's
#   hack/seaweedfs.sh netns-stop DIR  # bridge (10.213.0.250:8333), for pods; hack/e2e.sh
#
# tests/engine_archive_s3.rs starts and stops its own endpoint through this script.
set -euo pipefail
# shellcheck source=hack/lib/seaweedfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/seaweedfs.sh"

case ${1:-} in
  build) seaweedfs_build ;;
  path) [[ -x $SEAWEEDFS_BIN ]] || exit 1; echo "$SEAWEEDFS_BIN" ;;
  start) [[ $# == 3 ]] || die "usage: $0 start DIR PORT"; seaweedfs_start "$2" "$3" ;;
  stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; seaweedfs_stop "$2" ;;
  netns-start|netns-stop)
    [[ $# == 2 ]] || die "usage: $0 $1 DIR"
    # shellcheck source=hack/cluster/lib.sh
    source "$(dirname "${BASH_SOURCE[0]}")/cluster/lib.sh"
    if [[ $1 == netns-start ]]; then seaweedfs_netns_start "$2"; else seaweedfs_netns_stop "$2"; fi
    ;;
  *) die "usage: $0 build | path | start DIR PORT | stop DIR | netns-start DIR | netns-stop DIR" ;;
esac
