#!/usr/bin/env bash
# End-to-end checks of what a user installs, on a real cluster (the local one by default):
#
#   sudo hack/e2e-packaging.sh [--plugin PATH] [--installed WATCH_NS]
#
# Always (no operator needed):
#  - every object `helm template` renders is accepted by the API server (server-side dry run),
#  - the chart's CRD installs, every example is accepted by the real CRD schema (server-side
#    dry run) and a bad spec is rejected with its CEL message,
#  - kubectl-redispair against real objects: status (text, json) of a pair whose status is
#    written by hand, switchover / fence / unfence write their annotations, refusals and errors
#    in words (no such pair, operator not running, failover without --force, no permission).
# When the checkout has the operator (src/bin/redispair-operator.rs), also:
#  - helm install with the image built by hack/images/build-image.sh, every example Ready,
#    helm upgrade, helm uninstall.
# --installed WATCH_NS: the caller (hack/e2e.sh) has brought the cluster up ($KUBECONFIG) and
# installed the chart already (release redispair-operator in $REDISPAIR_OPERATOR_NAMESPACE,
# default redispair-system, watching WATCH_NS): no up.sh, no install of its own; every example
# Ready in WATCH_NS and helm upgrade are checked on that install, which is left in place (the
# caller checks helm uninstall).
# Output: one `ok`/`FAIL` line per check, then `N passed, N failed`; exit 1 on any failure.
# Uses namespace redispair-pkg-e2e (deleted at the end); the CRD is installed only if missing.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
NS=redispair-pkg-e2e
PLUGIN=${PLUGIN:-}
INSTALLED_NS=
OPERATOR_NS=${REDISPAIR_OPERATOR_NAMESPACE:-redispair-system}
while (( $# )); do
  case $1 in
    --plugin) PLUGIN=$2; shift 2 ;;
    --installed) INSTALLED_NS=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
need_root

passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
# check NAME CMD...: CMD must succeed.
check() { local name=$1; shift; if out=$("$@" 2>&1); then ok "$name"; else bad "$name: $out"; fi; }
# expect_fail NAME TEXT CMD...: CMD must fail and say TEXT.
expect_fail() {
  local name=$1 text=$2; shift 2
  if out=$("$@" 2>&1); then bad "$name: succeeded: $out"
  elif grep -qF -- "$text" <<<"$out"; then ok "$name: $(grep -F -- "$text" <<<"$out" | head -n1 | cut -c1-150)"
  else bad "$name: no '$text' in: $out"; fi
}

if [[ -n $INSTALLED_NS ]]; then
  [[ -n ${KUBECONFIG:-} ]] || die "--installed needs KUBECONFIG (the caller's cluster)"
  [[ $INSTALLED_NS != "$NS" ]] || die "--installed: $NS is this script's own unwatched namespace"
else
  kubeconfig_line=$(hack/cluster/up.sh --nodes 3 | tail -n1)
  export "${kubeconfig_line?}"
fi
hack/cluster/build.sh helm >&2
export PATH=$K8S_BIN:$HELM_BIN:$PATH
if [[ -z $PLUGIN ]]; then
  cargo build --locked --bin kubectl-redispair >&2 || die "cannot build kubectl-redispair"
  PLUGIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/kubectl-redispair
fi
rp() { "$PLUGIN" -n "$NS" "$@"; }

kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null 2>&1
kubectl create namespace "$NS" >/dev/null

# --- chart objects against the real API --------------------------------------------------
if ! kubectl get crd redispairs.redispair.io >/dev/null 2>&1; then
  kubectl apply -f charts/redispair-operator/crds/redispair.yaml >/dev/null
  kubectl wait --for=condition=Established crd/redispairs.redispair.io --timeout=30s >/dev/null
fi
check "chart objects accepted by the API server (dry run)" \
  bash -c "helm template redispair-operator charts/redispair-operator -n $NS | kubectl apply --dry-run=server -n $NS -f -"
check "namespaced chart objects accepted (dry run)" \
  bash -c "helm template redispair-operator charts/redispair-operator -n $NS --set 'watchNamespaces={$NS}' | kubectl apply --dry-run=server -n $NS -f -"

# --- least privilege: the chart's RBAC, applied for real, as the operator's ServiceAccount ---
rbac_release=pkg-e2e-rbac   # its own names: never collides with an installed chart
helm template "$rbac_release" charts/redispair-operator -n "$NS" \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml >"$NS-rbac.yaml"
kubectl apply -n "$NS" -f "$NS-rbac.yaml" >/dev/null
sa=system:serviceaccount:$NS:$rbac_release-redispair-operator
# Subresources need --subresource: `kubectl auth can-i VERB RES/X` means the object named X.
can() { [[ $(kubectl auth can-i --as="$sa" "$@" 2>/dev/null) == yes ]]; }
rbac_ok=1 rbac_missing=
for want in "list redispairs.redispair.io -A" "watch redispairs.redispair.io -A" "patch redispairs.redispair.io --subresource=status -n default" \
            "update redispairs.redispair.io --subresource=finalizers -n default" "create pods -n default" "delete pods -n default" \
            "patch services -n default" "delete persistentvolumeclaims -n default" "create secrets -n default" \
            "create poddisruptionbudgets.policy -n default" "create events.events.k8s.io -n default" \
            "watch nodes" "update leases.coordination.k8s.io -n $NS"; do
  # shellcheck disable=SC2086
  can $want || { rbac_ok=0; rbac_missing+=" [$want]"; }
done
if (( rbac_ok )); then ok "RBAC: the operator may do what it does"; else bad "RBAC: missing$rbac_missing"; fi
rbac_ok=1 rbac_extra=
for deny in "delete secrets -n default" "get configmaps -n default" "patch nodes" "create leases.coordination.k8s.io -n default" \
            "update pods -n default" "delete redispairs.redispair.io -n default" "create pods --subresource=exec -n default" "update redispairs.redispair.io --subresource=status -n default" \
            "create customresourcedefinitions.apiextensions.k8s.io" "create events -n default"; do
  # shellcheck disable=SC2086
  can $deny && { rbac_ok=0; rbac_extra+=" [$deny]"; }
done
if (( rbac_ok )); then ok "RBAC: and nothing more (least privilege)"; else bad "RBAC: more than needed:$rbac_extra"; fi
kubectl delete -n "$NS" -f "$NS-rbac.yaml" --wait=false >/dev/null 2>&1
rm -f "$NS-rbac.yaml"

# --- examples against the real CRD -------------------------------------------------------
for f in examples/*.yaml; do
  check "example $f accepted by the CRD (dry run)" kubectl apply --dry-run=server -n "$NS" -f "$f"
done
expect_fail "bad spec rejected with its message" "failover.detectionSeconds must be between 1 and 60" \
  kubectl apply --dry-run=server -n "$NS" -f - <<'YAML'
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata: {name: bad}
spec: {failover: {detectionSeconds: 600}}
YAML
expect_fail "unknown mode rejected" 'Unsupported value: "fast"' \
  kubectl apply --dry-run=server -n "$NS" -f - <<'YAML'
apiVersion: redispair.io/v1alpha1
kind: RedisPair
metadata: {name: bad}
spec: {replication: {mode: fast}}
YAML

# --- the plugin against real objects -----------------------------------------------------
expect_fail "plugin: no such pair" 'no RedisPair named "nope" in namespace "'"$NS"'"' rp status nope
operator_running=0
if kubectl get deploy -A -l app.kubernetes.io/name=redispair-operator -o name 2>/dev/null | grep -q .; then
  operator_running=1
fi

# A pair with a status written by hand (what the operator would write), and two pods that
# carry its labels. Without an operator nothing else touches them.
kubectl apply -n "$NS" -f examples/semi-sync.yaml >/dev/null
for p in cache-a cache-b; do
  kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $p
  labels: {redispair.io/pair: cache, redispair.io/pod: $p}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: engine
    image: localhost/redispair/testbox:dev
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
YAML
done
kubectl -n "$NS" wait --for=condition=Ready pod/cache-a pod/cache-b --timeout=60s >/dev/null 2>&1 \
  || echo "note: test pods not Ready (testbox image missing?); continuing" >&2
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kubectl -n "$NS" patch rp cache --subresource=status --type=merge -p "$(cat <<JSON
{"status": {"phase": "Ready", "targetMaster": "cache-a", "currentMaster": "cache-a", "replica": "cache-b",
 "term": 2, "observedGeneration": 1,
 "replication": {"mode": "semi-sync", "lagBytes": 0, "lagSeconds": 0, "inSync": true, "masterOffset": 4096, "replicaOffset": 4096},
 "lastFailover": {"time": "$now", "from": "cache-b", "to": "cache-a", "reason": "e2e: written by hand", "durationSeconds": 1.5},
 "services": {"readWrite": "cache", "readOnly": "cache-ro", "headless": "cache-hl"},
 "conditions": [{"type": "Ready", "status": "True", "reason": "MasterServing", "message": "written by hand", "lastTransitionTime": "$now"}]}}
JSON
)" >/dev/null
status_text=$(rp status cache --color never 2>&1)
# Each pod's line: role, then its node (node<i> here, <cluster>-worker<i> on kind) and zone.
if grep -q "Phase          Ready" <<<"$status_text" && grep -qE "cache-a +master +[^ ]+ +zone-[abc] " <<<"$status_text" \
   && grep -qE "cache-b +replica +[^ ]+ +zone-[abc] " <<<"$status_text" && grep -q "cache-b -> cache-a" <<<"$status_text"; then
  ok "plugin: status shows the pair, roles, nodes and last failover"
else
  bad "plugin: status text: $status_text"
fi
mapfile -t status_lines <<<"$status_text"
printf '     | %s\n' "${status_lines[@]}"
status_json=$(rp status cache -o json 2>&1)
if python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["currentMaster"]=="cache-a" and d["instances"][0]["node"], d' <<<"$status_json" 2>/dev/null; then
  ok "plugin: status -o json parses and names the master's node"
else
  bad "plugin: status -o json: $status_json"
fi
check "plugin: status -o yaml" rp status cache -o yaml

if (( ! operator_running )); then
  expect_fail "plugin: switchover refused while the operator is not running" "operator is not running" rp switchover cache
fi
check "plugin: switchover writes its request" rp switchover cache --skip-operator-check
check "plugin: switchover annotation on the pair" \
  bash -c "kubectl -n $NS get rp cache -o jsonpath='{.metadata.annotations.redispair\.io/switchover}' | grep -q ."
check "plugin: fence cache-b" rp fence cache cache-b --skip-operator-check
check "plugin: fenced annotation on the pod" \
  bash -c "[[ \$(kubectl -n $NS get pod cache-b -o jsonpath='{.metadata.annotations.redispair\.io/fenced}') == true ]]"
expect_fail "plugin: fence twice" "already fenced" rp fence cache cache-b --skip-operator-check
check "plugin: unfence cache-b" rp unfence cache cache-b --skip-operator-check
check "plugin: fenced annotation removed" \
  bash -c "[[ -z \$(kubectl -n $NS get pod cache-b -o jsonpath='{.metadata.annotations.redispair\.io/fenced}') ]]"
expect_fail "plugin: fence a pod of another pair" 'does not belong to pair "cache"' \
  bash -c "kubectl -n $NS run stranger --image=localhost/redispair/testbox:dev --restart=Never --command -- sleep 600 >/dev/null && $PLUGIN -n $NS fence cache stranger --skip-operator-check"
expect_fail "plugin: failover without --force" "failover without --force is refused" rp failover cache
check "plugin: failover --force writes its request" rp failover cache --force --skip-operator-check

# No permission: a ServiceAccount that may read pods but not RedisPairs.
kubectl -n "$NS" create serviceaccount viewer >/dev/null
kubectl -n "$NS" create rolebinding viewer --clusterrole=view --serviceaccount="$NS:viewer" >/dev/null
token=$(kubectl -n "$NS" create token viewer --duration=10m)
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[[ -n $ca ]] || ca=$(base64 -w0 <"$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')")
viewer_kc=$(mktemp)
cat >"$viewer_kc" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: viewer, user: {token: "$token"}}]
contexts: [{name: viewer, context: {cluster: c, user: viewer, namespace: $NS}}]
current-context: viewer
YAML
expect_fail "plugin: no permission, in words" "you are not allowed to read RedisPairs" \
  "$PLUGIN" --kubeconfig "$viewer_kc" status cache
rm -f "$viewer_kc"
expect_fail "plugin: unreachable API server, in words" "cannot reach the Kubernetes API server" \
  bash -c "KUBECONFIG=/dev/null $PLUGIN --kubeconfig <(sed 's#server: .*#server: https://127.0.0.1:1#' \"$KUBECONFIG\") status cache"

# --- helm install / upgrade / uninstall with the operator ---------------------------------
# example_pair E: the RedisPair's name in examples/E.yaml (the first `  name:` after its kind).
example_pair() { awk '/^kind: RedisPair/{found=1} found && /^  name:/{print $2; exit}' "examples/$1.yaml"; }
if [[ -n $INSTALLED_NS ]]; then
  # The caller's install: every example Ready in the watched namespace, the upgrade, and the
  # examples removed again (the namespace stays: the chart's Role lives there).
  kubectl delete namespace "$NS" --wait=true >/dev/null
  for e in minimal persistent semi-sync zone-spread custom; do
    name=$(example_pair "$e")
    kubectl -n "$INSTALLED_NS" apply -f "examples/$e.yaml" >/dev/null
    check "example $e: pair $name Ready" kubectl -n "$INSTALLED_NS" wait "rp/$name" --for=jsonpath='{.status.phase}'=Ready --timeout=300s
  done
  check "helm upgrade (2 operator replicas)" helm upgrade redispair-operator charts/redispair-operator \
    -n "$OPERATOR_NS" --reuse-values --set replicas=2 --wait --timeout 3m
  check "pairs still Ready after the upgrade" kubectl -n "$INSTALLED_NS" wait rp --all --for=jsonpath='{.status.phase}'=Ready --timeout=120s
  for e in minimal persistent semi-sync zone-spread custom; do
    kubectl -n "$INSTALLED_NS" delete -f "examples/$e.yaml" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1
  done
elif [[ -f src/bin/redispair-operator.rs ]]; then
  kubectl delete namespace "$NS" --wait=true >/dev/null
  # Namespaced install: on a shared cluster it leaves other tests' pairs alone, and it checks
  # the per-namespace RBAC.
  REDISPAIR_DEMO_NAMESPACE=$NS check "helm install + minimal example Ready (hack/demo.sh --debug)" \
    hack/demo.sh --debug --set "watchNamespaces={$NS}"
  for e in persistent semi-sync zone-spread custom; do
    name=$(example_pair "$e")
    kubectl -n "$NS" apply -f "examples/$e.yaml" >/dev/null
    check "example $e: pair $name Ready" kubectl -n "$NS" wait "rp/$name" --for=jsonpath='{.status.phase}'=Ready --timeout=300s
  done
  check "helm upgrade (2 operator replicas)" helm upgrade redispair-operator charts/redispair-operator \
    -n redispair-system --reuse-values --set replicas=2 --wait --timeout 3m
  check "pairs still Ready after the upgrade" kubectl -n "$NS" wait rp --all --for=jsonpath='{.status.phase}'=Ready --timeout=120s
  kubectl delete namespace "$NS" --wait=true --timeout=120s >/dev/null
  check "helm uninstall" helm uninstall redispair-operator -n redispair-system --wait
else
  echo "skip helm install/upgrade/uninstall: this checkout has no operator yet" >&2
fi

kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
echo "$passed passed, $failed failed"
(( failed == 0 ))
