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
check src/api '(^|[^a-z_])(tokio|redis)::|kube::(Client|Api)' 'a client or tokio'
check src/operator '(crate|redispair)::engine' 'the engine (it talks to engines over RESP only)'
exit $fail
