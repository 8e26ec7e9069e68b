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

log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

log "cargo test"
cargo test --locked --all-targets -- --test-threads=2
