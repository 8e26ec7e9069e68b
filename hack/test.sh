#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need (Debian's
# redis-server/redis-tools as the reference and for client smoke tests, Python's redis client),
# then lint (fmt, clippy, module-boundary check) and the whole cargo test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

hack/install-test-deps.sh

log "cargo fmt --check"
cargo fmt --all -- --check

log "module boundaries"
hack/check-boundaries.sh

log "generated CRD is up to date"
cargo run --quiet --locked --bin crdgen > "${TMPDIR:-/tmp}/redispair-crd.yaml"
diff -u crds/redispair.yaml "${TMPDIR:-/tmp}/redispair-crd.yaml" \
  || { echo "crds/redispair.yaml is stale: run 'cargo run --bin crdgen > crds/redispair.yaml'" >&2; exit 1; }

log "Helm chart: CRD copy, lint, template, schema rejects bad values"
hack/check-chart.sh

log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

log "cargo test"
cargo test --locked --all-targets -- --test-threads=2
