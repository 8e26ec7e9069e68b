#!/usr/bin/env bash
# Checks the Helm chart without a cluster: the chart's CRD is the generated one, `helm lint`
# and `helm template` pass for the default values and for the namespaced and ServiceMonitor
# variants, the monitoring objects appear exactly where their CRDs exist, the Grafana
# dashboard is valid JSON, the alerting rules pass `promtool check rules` and
# `promtool test rules` (hack/promtool/alerts-test.yaml), and values.schema.json rejects bad
# values with a message.
#
#   hack/check-chart.sh      (helm and promtool from hack/cluster/build.sh's cache; HELM=/path
#                             and PROMTOOL=/path override; promtool's first build takes minutes)
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
if [[ -z ${PROMTOOL:-} ]]; then
  hack/cluster/build.sh promtool >&2
  PROMTOOL=$PROMTOOL_BIN/promtool
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
# The PodMonitor and the PrometheusRule exist only where the Prometheus operator's CRDs do.
CRDS=(--api-versions monitoring.coreos.com/v1/PodMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule)
render prometheus-operator "${CRDS[@]}" --set 'watchNamespaces={team-a}'
for kind in PodMonitor PrometheusRule; do
  grep -q "^kind: $kind\$" "$out/default.yaml" && { echo "default: a $kind without its CRD" >&2; fail=1; }
  grep -q "^kind: $kind\$" "$out/prometheus-operator.yaml" || { echo "prometheus-operator: no $kind" >&2; fail=1; }
done
grep -q 'matchNames: \["team-a"\]' "$out/prometheus-operator.yaml" \
  || { echo "prometheus-operator: the PodMonitor does not select the watched namespace" >&2; fail=1; }
render no-monitoring "${CRDS[@]}" --set metrics.podMonitor.enabled=false \
  --set metrics.prometheusRule.enabled=false --set metrics.dashboard.enabled=false
grep -qE '^kind: (PodMonitor|PrometheusRule)$|grafana_dashboard' "$out/no-monitoring.yaml" \
  && { echo "no-monitoring: monitoring objects rendered although disabled" >&2; fail=1; }

echo "Grafana dashboard"
grep -q 'grafana_dashboard: "1"' "$out/default.yaml" || { echo "default: no dashboard ConfigMap" >&2; fail=1; }
python3 -m json.tool "$CHART/dashboards/redispair.json" >/dev/null \
  || { echo "$CHART/dashboards/redispair.json is not valid JSON" >&2; fail=1; }

echo "alerting rules (promtool)"
# The PrometheusRule's spec is a Prometheus rule file: its lines after `spec:`, de-indented.
"$HELM" template redispair-operator "$CHART" "${CRDS[@]}" --show-only templates/prometheusrule.yaml \
  | sed -n '/^spec:$/,$p' | tail -n +2 | sed 's/^  //' >"$out/rules.yaml"
cp hack/promtool/alerts-test.yaml "$out/"
"$PROMTOOL" check rules "$out/rules.yaml" || fail=1
"$PROMTOOL" test rules "$out/alerts-test.yaml" || fail=1
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
reject lag-threshold "/metrics/prometheusRule/replicaLagBytes" --set metrics.prometheusRule.replicaLagBytes=0
reject rule-for "/metrics/prometheusRule/degradedFor" --set metrics.prometheusRule.degradedFor=soon

exit $fail
