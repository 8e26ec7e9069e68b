# shellcheck shell=bash
# The Python that tests and benchmarks run: a virtualenv the project owns, with redis-py (5 or
# newer: tests/engine_tools.rs speaks RESP3 through it). A venv, not `pip install` into the
# system: Debian's Python refuses that (PEP 668, "externally managed"), and Debian's
# python3-redis (4.3 in bookworm) has no RESP3. hack/install-test-deps.sh makes it; callers
# put its bin/ first on PATH, so `python3` there is this one. Sourced, never run.
REDISPAIR_PYTHON_VENV=${REDISPAIR_PYTHON_VENV:-${REDISPAIR_CACHE:-$HOME/.cache/redispair}/python}
