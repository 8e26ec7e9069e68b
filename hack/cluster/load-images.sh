#!/usr/bin/env bash
# Import OCI image archives into every running node's containerd.
#
#   hack/cluster/load-images.sh ARCHIVE.tar...
#
# The nodes have no registry to pull from: an image a pod uses must be imported into the
# containerd of whichever node the pod lands on, so every archive goes to every node.
# Pods should use `imagePullPolicy: IfNotPresent` (or Never). Archives come from
# hack/images/build-image.sh (they carry their image name in index.json).
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
(( $# )) || { sed -n '2,9p' "$0" >&2; exit 2; }
for a in "$@"; do [[ -s $a ]] || die "no such archive: $a"; done

loaded=0
while read -r i; do
  sock=$RUN_DIR/node$i/containerd.sock
  if ! pid_alive "$STATE/pids/node$i-containerd.pid"; then
    log "node$i: containerd not running, skipped"
    continue
  fi
  for a in "$@"; do
    # ctr blocks forever on a socket without a listener: always bound it.
    timeout 300 ctr --address "$sock" -n k8s.io images import "$a" >/dev/null
    log "node$i: imported $a"
  done
  loaded=$((loaded + 1))
done < <(known_nodes)
(( loaded )) || die "no running node to load images into"
