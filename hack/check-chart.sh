#!/usr/bin/env bash
# Checks the Helm chart without a cluster: the chart's CRD is the generated one, `helm lint`
# and `helm template` pass for the default values and for the namespaced and ServiceMonitor
# variants, and values.schema.json rejects bad values with a message.
#
#   hack/check-chart.sh            (helm from hack/cluster/build.sh's cache; HELM=/path overrides)
set -euo pipefail
cd "$(dirname "$0")/.."
CHART=charts/redispair-operator
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh

if [[ -z ${HELM:-} ]]; then
  # Cached after the first build (keyed by version): a no-op on every later run.
  hack/cluster/build.sh helm >&2
  HELM=$HELM_BIN/helm
fi
fail=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "chart CRD equals crds/redispair.yaml"
if ! diff -u crds/redispair.yaml "$CHART/crds/redispair.yaml"; then
  echo "$CHART/crds/redispair.yaml differs: cp crds/redispair.yaml $CHART/crds/" >&2
  fail=1
fi

echo "helm lint"
"$HELM" lint --strict "$CHART" || fail=1

# render NAME ARGS...: helm template must succeed.
render() {
  local name=$1; shift
  if "$HELM" template redispair-operator "$CHART" --namespace redispair-system "$@" >"$out/$name.yaml" 2>"$out/$name.err"; then
    echo "helm template ($name): ok, $(grep -c '^kind:' "$out/$name.yaml") objects"
  else
    echo "helm template ($name) failed:" >&2; cat "$out/$name.err" >&2; fail=1
  fi
}
render default
render namespaced --set 'watchNamespaces={team-a}'
render monitored --set metrics.serviceMonitor.enabled=true --set replicas=2
render netpol --set networkPolicy.enabled=true --set 'watchNamespaces={team-a}'
render netpol-listed --set networkPolicy.enabled=true --set 'networkPolicy.namespaces={team-a,team-b}'
grep -q 'kind: ClusterRole$' "$out/default.yaml" || { echo "default: no ClusterRole" >&2; fail=1; }
[[ $(grep -c '^kind: Role$' "$out/namespaced.yaml") == 2 ]] \
  || { echo "namespaced: expected a Role in the watched namespace plus the leader-election Role" >&2; fail=1; }
grep -q -- '--namespace=team-a' "$out/namespaced.yaml" || { echo "namespaced: no --namespace flag" >&2; fail=1; }
# Namespaced, the pair rules are a Role: a ClusterRole named like the release (the pair rules'
# name) must not be rendered; other ClusterRoles (nodes) may be.
if grep -A3 'kind: ClusterRole$' "$out/namespaced.yaml" | grep -q 'name: redispair-operator$'; then
  echo "namespaced: the pair rules must not be a ClusterRole" >&2; fail=1
fi
grep -q 'kind: ServiceMonitor' "$out/monitored.yaml" || { echo "monitored: no ServiceMonitor" >&2; fail=1; }
grep -q 'kind: NetworkPolicy' "$out/default.yaml" && { echo "default: a NetworkPolicy without networkPolicy.enabled" >&2; fail=1; }
grep -A3 'kind: NetworkPolicy' "$out/netpol.yaml" | grep -q 'namespace: team-a' \
  || { echo "netpol: no NetworkPolicy in the watched namespace" >&2; fail=1; }
[[ $(grep -c '^kind: NetworkPolicy' "$out/netpol-listed.yaml") == 2 ]] \
  || { echo "netpol-listed: expected a NetworkPolicy per listed namespace" >&2; fail=1; }

# reject NAME EXPECTED ARGS...: helm template must fail and say EXPECTED.
reject() {
  local name=$1 expected=$2; shift 2
  if "$HELM" template redispair-operator "$CHART" "$@" >/dev/null 2>"$out/$name.err"; then
    echo "bad values accepted ($name): $*" >&2; fail=1
  elif ! grep -qF -- "$expected" "$out/$name.err"; then
    echo "bad values ($name) rejected without the expected message '$expected':" >&2
    cat "$out/$name.err" >&2; fail=1
  else
    echo "rejected ($name): $(grep -F -- "$expected" "$out/$name.err" | head -n1 | sed 's/^[- ]*//')"
  fi
}
reject log-level "/logLevel" --set logLevel=verbose
reject replicas "/replicas" --set replicas=0
reject pull-policy "/image/pullPolicy" --set image.pullPolicy=Sometimes
reject namespace "/watchNamespaces/0" --set 'watchNamespaces={Not_A_Namespace}'
reject two-namespaces "/watchNamespaces" --set 'watchNamespaces={a,b}'
reject typo "imageTag" --set imageTag=v1
reject quantity "/resources/limits/memory" --set resources.limits.memory=lots
reject privileged-port "/metrics/port" --set metrics.port=80
reject no-election "leaderElection.enabled" --set replicas=2 --set leaderElection.enabled=false
reject netpol-where "networkPolicy.namespaces" --set networkPolicy.enabled=true
reject netpol-typo "clientLabel" --set networkPolicy.clientLabel=x

exit $fail
