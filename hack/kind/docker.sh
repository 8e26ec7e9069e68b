#!/usr/bin/env bash
# A Docker Engine for the kind provider (hack/lib/docker.sh says how and why).
#
#   hack/kind/docker.sh up      use the running engine, or unpack Debian's and start dockerd
#                               with its own data root and socket (idempotent); prints the
#                               export lines:  eval "$(hack/kind/docker.sh up)"
#   hack/kind/docker.sh env     the export lines only (no start)
#   hack/kind/docker.sh down    stop the dockerd `up` started (its containers stop with it)
set -euo pipefail
# shellcheck source=hack/lib/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/docker.sh"

case ${1:-} in
  up) docker_engine_up; docker_engine_env ;;
  env)
    if [[ -S $DOCKER_SOCKET ]]; then
      DOCKER_HOST=unix://$DOCKER_SOCKET
      prefix=$(find "$DOCKER_CACHE" -maxdepth 2 -path "$DOCKER_CACHE/docker-2*/.complete" 2>/dev/null | sort -V | tail -n1)
      if [[ -n $prefix ]] && ! docker buildx version >/dev/null 2>&1; then DOCKER_CONFIG=$(dirname "$prefix")/config; fi
    fi
    DOCKER_HOST=${DOCKER_HOST:-}
    [[ -n $DOCKER_HOST ]] && docker_engine_env
    ;;
  down) docker_engine_down ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
