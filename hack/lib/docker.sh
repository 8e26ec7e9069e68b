# shellcheck shell=bash
# A Docker Engine for the kind provider on machines that have none (the project's: no Docker,
# no registry). Sourced, never run; hack/kind/docker.sh is the command-line face.
#
#   docker_engine_up     use the engine DOCKER_HOST (or the default socket) names when one
#                        answers; otherwise unpack Debian's Docker Engine under the cache and
#                        start dockerd with its own data root, exec root and socket (idempotent:
#                        a running one is reused). Exports DOCKER_HOST and DOCKER_CONFIG.
#   docker_engine_down   stop the dockerd docker_engine_up started (nothing else), and wait
#                        until it and its containerd are gone.
#   docker_engine_env    the export lines for a shell that wants the same engine.
#
# Why not `apt-get install docker.io`: bookworm's docker.io is 20.10, whose `--privileged`
# asks runc for every capability the kernel knows, and this sandbox filters some, so kind's
# node containers fail to start; trixie's 26.x grants only the capabilities the daemon has.
# Installing trixie's packages system-wide would also replace bookworm's containerd 1.6, which
# the local cluster (hack/cluster/) runs. So the packages are fetched with apt-get from a
# private apt configuration (its own sources, lists and cache under the cache directory, the
# machine's apt untouched) and unpacked with dpkg -x: docker.io (dockerd, docker-proxy),
# containerd 1.7 (run by dockerd only) and docker-buildx (BuildKit for `docker build`). Their
# binaries need glibc 2.34 (bookworm has 2.36); runc is bookworm's (/usr/sbin/runc).
#
# The daemon: `--iptables=false` keeps it off the machine's firewall (the local cluster and
# other work share it; Docker would set the FORWARD policy to DROP). Containers still reach
# each other and the host on Docker's bridges, and published ports go through docker-proxy;
# they get no NAT to the outside, which nothing here needs (no registry is reachable anyway).
# Address pools are the project's own (10.219.0.0/24 for docker0, 10.220.0.0/16 for networks
# such as kind's), away from the local cluster's 10.213-10.215.

DOCKER_SUITE=${DOCKER_SUITE:-trixie}
DOCKER_CACHE=${REDISPAIR_CACHE:-$HOME/.cache/redispair}
# The data root holds images (the kind node image, the bases, BuildKit's cache): under the
# cache, so a second CI run on the same machine starts warm.
DOCKER_DATA_ROOT=${REDISPAIR_DOCKER_DATA:-$DOCKER_CACHE/docker-data}
DOCKER_RUN_DIR=${REDISPAIR_DOCKER_RUN:-/run/redispair-docker}
DOCKER_SOCKET=$DOCKER_RUN_DIR.sock
DOCKER_PIDFILE=$DOCKER_RUN_DIR.pid
DOCKER_LOG=$DOCKER_CACHE/dockerd.log

_docker_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
_docker_die() { _docker_log "error: $*"; exit 1; }

# docker_answers [HOST]: the engine at HOST (default: the client's own choice) answers.
docker_answers() {
  if [[ -n ${1:-} ]]; then timeout 10 docker -H "$1" version >/dev/null 2>&1
  else timeout 10 docker version >/dev/null 2>&1; fi
}

# docker_apt apt-get|apt-cache ARGS...: against the private configuration for $DOCKER_SUITE.
docker_apt() {
  local dir=$DOCKER_CACHE/docker-apt-$DOCKER_SUITE tool=$1; shift
  "$tool" -q \
    -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o Dir::State::status=/dev/null \
    -o APT::Sandbox::User=root "$@"
}

# docker_prefix_install: unpack the engine's packages under $DOCKER_CACHE/docker-<version>
# (keyed by docker.io's version) and print that directory. A second call finds it.
docker_prefix_install() {
  local apt_dir=$DOCKER_CACHE/docker-apt-$DOCKER_SUITE version prefix work deb
  local done_mark
  # The newest prefix already unpacked is used as is: no network when the cache is warm.
  done_mark=$(find "$DOCKER_CACHE" -maxdepth 2 -path "$DOCKER_CACHE/docker-2*/.complete" 2>/dev/null | sort -V | tail -n1)
  # A prefix unpacked before it carried the client is fetched again only on a machine that
  # has no client of its own.
  if [[ -n $done_mark ]] && { command -v docker >/dev/null || [[ -x ${done_mark%/.complete}/root/usr/bin/docker ]]; }; then
    dirname "$done_mark"; return
  fi
  if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
    _docker_die "no Docker engine, and no apt-get/dpkg to fetch one: install Docker"
  fi
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DOCKER_SUITE main" \
    >"$apt_dir/sources.list"
  _docker_log "fetching Docker Engine from Debian $DOCKER_SUITE (private apt lists under $apt_dir)"
  docker_apt apt-get update >&2 || _docker_die "apt-get update for $DOCKER_SUITE failed"
  version=$(docker_apt apt-cache show docker.io 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
  [[ -n $version ]] || _docker_die "Debian $DOCKER_SUITE has no docker.io"
  prefix=$DOCKER_CACHE/docker-${version%%+*}
  work=$(mktemp -d)
  (cd "$work" && docker_apt apt-get download docker.io docker-cli containerd docker-buildx >&2) || _docker_die "downloading docker.io failed"
  rm -rf "$prefix"
  mkdir -p "$prefix/root"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix/root"; done
  rm -rf "$work" "$apt_dir/cache/archives"/*.deb
  # The client finds plugins in $DOCKER_CONFIG/cli-plugins.
  mkdir -p "$prefix/config/cli-plugins"
  ln -sf "$prefix/root/usr/libexec/docker/cli-plugins/docker-buildx" "$prefix/config/cli-plugins/docker-buildx"
  echo "$version" >"$prefix/.complete"
  _docker_log "Docker Engine $version unpacked in $prefix"
  echo "$prefix"
}

docker_engine_env() {
  printf 'export DOCKER_HOST=%q\n' "$DOCKER_HOST"
  # The client unpacked with the engine, when the machine has none of its own.
  local client p
  client=$(command -v docker || true)
  if [[ -z $client ]]; then
    for p in "$DOCKER_CACHE"/docker-2*/root/usr/bin/docker; do [[ -x $p ]] && client=$p; done
  fi
  # shellcheck disable=SC2016  # $PATH is the caller's, expanded where this is eval'ed
  [[ $client == "$DOCKER_CACHE"/* ]] && printf 'export PATH=%q:"$PATH"\n' "${client%/docker}"
  [[ -n ${DOCKER_CONFIG:-} ]] && printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG"
  return 0
}

docker_engine_up() {
  # An engine of the user's own (Docker Desktop, a system dockerd) is used as it is.
  if [[ -z ${REDISPAIR_OWN_DOCKER:-} ]] && docker_answers; then
    _docker_log "using the running Docker engine ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    return 0
  fi
  [[ $(id -u) == 0 ]] || _docker_die "starting a Docker engine needs root"
  local prefix; prefix=$(docker_prefix_install)
  # No client on the machine: the one unpacked with the engine (trixie's docker-cli).
  command -v docker >/dev/null || export PATH=$prefix/root/usr/bin:$PATH
  command -v docker >/dev/null || _docker_die "no docker client on PATH nor in $prefix"
  export DOCKER_HOST=unix://$DOCKER_SOCKET
  # The client: the machine's own when it has buildx, else the plugin from the prefix.
  if ! docker buildx version >/dev/null 2>&1; then export DOCKER_CONFIG=$prefix/config; fi
  if docker_answers "$DOCKER_HOST"; then
    _docker_log "dockerd already running ($DOCKER_HOST)"
    return 0
  fi
  command -v runc >/dev/null || { _docker_log "installing runc (Debian)"; apt-get install -y -q runc >&2; }
  mkdir -p "$DOCKER_DATA_ROOT" "$(dirname "$DOCKER_LOG")"
  _docker_log "starting dockerd $(cat "$prefix/.complete") (data root $DOCKER_DATA_ROOT, socket $DOCKER_SOCKET, log $DOCKER_LOG)"
  # setsid: the daemon outlives this script and is not in its process group (a caller's
  # Ctrl-C must not take it down halfway); docker_engine_down stops it by its pidfile.
  PATH=$prefix/root/usr/bin:$prefix/root/usr/sbin:$PATH setsid "$prefix/root/usr/sbin/dockerd" \
    --data-root "$DOCKER_DATA_ROOT" --exec-root "$DOCKER_RUN_DIR" --pidfile "$DOCKER_PIDFILE" \
    --host "$DOCKER_HOST" --iptables=false --ip6tables=false \
    --bip 10.219.0.1/24 --default-address-pool base=10.220.0.0/16,size=24 \
    </dev/null >>"$DOCKER_LOG" 2>&1 &
  local i
  for (( i = 0; i < 60; i++ )); do
    docker_answers "$DOCKER_HOST" && { _docker_log "dockerd up"; return 0; }
    sleep 1
  done
  tail -n 20 "$DOCKER_LOG" >&2
  _docker_die "dockerd did not answer on $DOCKER_HOST within 60 s"
}

docker_engine_down() {
  local pid i
  pid=$(cat "$DOCKER_PIDFILE" 2>/dev/null) || { _docker_log "no dockerd of ours running"; return 0; }
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$DOCKER_PIDFILE"; return 0; fi
  _docker_log "stopping dockerd (pid $pid; it stops its containers and its containerd)"
  kill -TERM "$pid"
  for (( i = 0; i < 60; i++ )); do
    kill -0 "$pid" 2>/dev/null || { _docker_log "dockerd stopped"; return 0; }
    sleep 1
  done
  _docker_die "dockerd (pid $pid) still running after 60 s"
}
