#!/usr/bin/env bash
# Installs the tools the tests use, idempotently: Debian's redis-server and redis-tools (the
# reference server for differential tests, redis-cli and redis-benchmark for smoke tests), tmux,
# ShellCheck (the lint of hack/), tclsh (Redis's own test suite, hack/redis-suite.sh), and redis-py in the project's own virtualenv
# (~/.cache/redispair/python, hack/lib/python.sh; callers put its bin/ first on PATH). Needs
# root for apt-get, only when a Debian package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/python.sh
source hack/lib/python.sh

# shellcheck source=hack/lib/prereqs.sh
source hack/lib/prereqs.sh

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# tmux gives interactive redis-cli a terminal in tests/engine_tools.rs.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
# Redis's test suite (hack/redis-suite.sh) needs tclsh 8.5 or newer under a versioned name, as
# its runtest looks for it; Debian's tcl brings tclsh8.6.
command -v tclsh8.6 >/dev/null 2>&1 || command -v tclsh8.7 >/dev/null 2>&1 \
  || command -v tclsh8.5 >/dev/null 2>&1 || need_apt+=(tcl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Debian's python3 makes virtualenvs only with python3-venv (it carries ensurepip).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install-test-deps: ${need_apt[*]} missing; apt-get needs root" >&2; exit 1; }
  echo "installing ${need_apt[*]}" >&2
  wait_for_apt
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts a redis-server service on install where an init system exists; tests start
# their own on ephemeral ports, so a running one does no harm.

py=$REDISPAIR_PYTHON_VENV/bin/python3
if ! "$py" -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 5)' >/dev/null 2>&1; then
  echo "installing redis-py into $REDISPAIR_PYTHON_VENV (a virtualenv of this project)" >&2
  python3 -m venv "$REDISPAIR_PYTHON_VENV"
  "$py" -m pip install -q --disable-pip-version-check 'redis>=5' >/dev/null
fi
