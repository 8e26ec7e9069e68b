#!/usr/bin/env bash
# Installs the tools the tests use, idempotently: Debian's redis-server and redis-tools (the
# reference server for differential tests, redis-cli and redis-benchmark for smoke tests) and
# the redis-py client.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# tmux gives interactive redis-cli a terminal in tests/engine_tools.rs.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts a redis-server service on install where an init system exists; tests start
# their own on ephemeral ports, so a running one does no harm.
if ! python3 -c 'import redis' >/dev/null 2>&1; then
  echo "installing redis-py"
  python3 -m pip install -q 'redis>=5' >/dev/null
fi
