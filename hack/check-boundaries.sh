#!/usr/bin/env bash
# Keeps the module split by dependency weight honest: the failover decision is pure (no kube,
# tokio or redis), the engine never touches Kubernetes.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # dir, forbidden-regex, why
  [ -d "$1" ] || return 0
  if grep -rnE "$2" "$1" --include='*.rs'; then
    echo "boundary violated: $1 must not use $3" >&2
    fail=1
  fi
}
check src/failover '(^|[^a-z_])(kube|k8s_openapi|tokio|redis)::' 'kube, k8s_openapi, tokio or redis'
check src/engine '(^|[^a-z_])(kube|k8s_openapi)::' 'kube or k8s_openapi'
# The engine's layers look down only: storage (values, databases, RDB) never reaches up into
# the command layer or the server (its number parsers live in storage/number.rs).
check src/engine/storage '(crate|super)::(engine::)?(cmd|server)(::|\b)' 'the command layer or the server (layers look down only)'
check src/api '(^|[^a-z_])(tokio|redis)::|kube::(Client|Api)' 'a client or tokio'
check src/operator '(crate|redispair)::engine' 'the engine (it talks to engines over RESP only)'
# kubectl-redispair: only src/plugin/client.rs talks to the API; the rest is pure.
for f in src/plugin/*.rs; do
  [[ $f == src/plugin/client.rs || $f == src/plugin/mod.rs ]] && continue
  if grep -nE '(^|[^a-z_])tokio::|kube::(Client|Api|api::)|async fn' "$f"; then
    echo "boundary violated: $f must stay pure (API I/O belongs in src/plugin/client.rs)" >&2
    fail=1
  fi
done
exit $fail
