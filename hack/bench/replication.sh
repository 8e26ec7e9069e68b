#!/usr/bin/env bash
# Replication and durability benchmark (not a test): real engine processes on loopback, release
# build, redis-benchmark and a paced writer. Sections: semi-sync/async throughput at P1 and P16,
# replication lag at 50k writes/s, p99 during snapshots and during full syncs (ratio to p99
# without), restart time with 1M keys (redis-server's RDB load as the reference).
#
#   hack/bench/replication.sh                     # everything (several minutes)
#   hack/bench/replication.sh modes lag           # some sections
#   KEYS=200000 N=100000 hack/bench/replication.sh restart
#
# Details and figures: docs/benchmarks.md. The measuring code is hack/bench/replication.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
hack/install-test-deps.sh >/dev/null
# shellcheck source=hack/lib/python.sh
source hack/lib/python.sh   # the virtualenv with redis-py that install-test-deps.sh made
echo "building the engine (release)..." >&2
cargo build --release --locked --bin redispair-engine >&2
exec "$REDISPAIR_PYTHON_VENV/bin/python3" hack/bench/replication.py --engine "${CARGO_TARGET_DIR:-target}/release/redispair-engine" \
  --n "${N:-200000}" --keys "${KEYS:-1000000}" --rate "${RATE:-50000}" --engine-args "${ENGINE_ARGS:-}" "$@"
