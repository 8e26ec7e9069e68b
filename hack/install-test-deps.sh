#!/usr/bin/env bash
# Installs the tools the tests use, idempotently: Debian's redis-server and redis-tools (the
# reference server for differential tests, redis-cli and redis-benchmark for smoke tests) and
# the redis-py client.
set -euo pipefail

# wait_for_apt: another apt-get or dpkg (a parallel job, unattended upgrades) holds the package
# locks; apt-get update fails at once on its lists lock (DPkg::Lock::Timeout covers only dpkg's),
# so wait until none runs, for at most 10 minutes.
wait_for_apt() {
  local deadline=$((SECONDS + 600))
  while pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null; do
    (( SECONDS < deadline )) || { echo "another apt-get/dpkg has held the package locks for 10 min" >&2; return 1; }
    sleep 2
  done
}

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# tmux gives interactive redis-cli a terminal in tests/engine_tools.rs.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  wait_for_apt
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts a redis-server service on install where an init system exists; tests start
# their own on ephemeral ports, so a running one does no harm.
if ! python3 -c 'import redis' >/dev/null 2>&1; then
  echo "installing redis-py"
  python3 -m pip install -q 'redis>=5' >/dev/null
fi
