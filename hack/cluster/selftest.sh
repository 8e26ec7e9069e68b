#!/usr/bin/env bash
# Prove the local cluster works, end to end, on this machine.
#
#   hack/cluster/selftest.sh
#
# Brings the cluster up (hack/cluster/up.sh --nodes 3; a no-op if it is already up), then
# checks: three Ready nodes with zone labels; a Deployment with required pod anti-affinity
# spread over the three nodes, Running and Ready with probes; a Service's ClusterIP from the
# host and from a pod on another node (and by DNS name); a PVC on the default StorageClass;
# `fault.sh kill` (node NotReady, pods rescheduled, up.sh revives it); `fault.sh partition`
# and `heal`; `down.sh` leaving nothing behind; and up/down once more from scratch.
# Timings are printed as figures (`timing:` lines), never asserted. Synchronisation is by
# polling a condition with a deadline (wait_for), never by sleeping. The last line is
# `N passed, N failed`; the exit code is non-zero if anything failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"
need_root

PASSED=0
FAILED=0
NS=redispair-selftest
LOG_DIR=$(mktemp -d /tmp/redispair-selftest.XXXXXX)   # up.sh output, cluster logs on failure

pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: one assertion.
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
timing() { echo "timing: $1 $(awk -v ms="$2" 'BEGIN { printf "%.1f s", ms / 1000 }')"; }
FINISHED=0
finish() { FINISHED=1; echo "$PASSED passed, $FAILED failed"; (( FAILED == 0 )); }
# A command outside any check that fails (set -e) still ends the run with a failure
# counted, the cluster torn down (logs kept) and the summary line.
ERR_LINE=
trap 'ERR_LINE=$LINENO' ERR
on_exit() {
  (( FINISHED )) && return
  fail "selftest stopped by an unexpected error (line ${ERR_LINE:-?})"
  REDISPAIR_KEEP_LOGS="$LOG_DIR/cluster-logs-abort" "$HERE/down.sh" >/dev/null 2>&1 || true
  echo "# logs: $LOG_DIR"
  finish || true
  exit 1
}
trap on_exit EXIT

# A check whose failure makes the rest meaningless ends the run (after cleaning up).
require() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; abort; fi; }
abort() {
  echo "# aborting; node and pod state for diagnosis:"
  kc get nodes -o wide 2>&1 | sed 's/^/#   /' || true
  kc -n "$NS" get pods -o wide 2>&1 | sed 's/^/#   /' || true
  REDISPAIR_KEEP_LOGS="$LOG_DIR/cluster-logs-abort" "$HERE/down.sh" >/dev/null 2>&1 || true
  echo "# logs: $LOG_DIR"
  finish
  exit 1
}

# run_up: up.sh --nodes 3, checking that its last line is KUBECONFIG=<path>.
UP_LAST=
run_up() {
  local out
  out=$("$HERE/up.sh" --nodes 3 2>"$LOG_DIR/up.$(date +%s%N).log") || return 1
  UP_LAST=$(tail -n1 <<<"$out")
  [[ $UP_LAST == "KUBECONFIG=$KUBECONFIG_PATH" ]]
}

node_condition() { kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null; }
node_is_ready() { [[ $(node_condition "$1") == True ]]; }
node_not_ready() { [[ $(node_condition "$1") != True ]]; }
all_nodes_ready() {
  local i
  for i in 1 2 3; do node_is_ready "node$i" || return 1; done
}
deploy_ready() {
  [[ $(kc -n "$NS" get deploy "$1" -o jsonpath='{.status.readyReplicas}' 2>/dev/null) == "$2" ]]
}
# pods_nodes LABEL: the nodes of the Running pods with app=LABEL that are not being deleted.
pods_nodes() {
  kc -n "$NS" get pods -l "app=$1" -o go-template='{{range .items}}{{if and (not .metadata.deletionTimestamp) (eq .status.phase "Running")}}{{.spec.nodeName}}{{"\n"}}{{end}}{{end}}'
}

# The kubelets write these; the nodes' masks must keep them from reaching the host.
host_sysctls() { cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops; }
SYSCTLS_BEFORE=$(host_sysctls)

# ---------------------------------------------------------------------------------------
echo "# up (hack/cluster/up.sh --nodes 3)"
t0=$(now_ms)
require "up.sh --nodes 3 succeeds and ends with KUBECONFIG=$KUBECONFIG_PATH" run_up
timing "up.sh --nodes 3 (first call of this run)" $(( $(now_ms) - t0 ))
t0=$(now_ms)
require "all three nodes Ready" wait_for 120 "nodes Ready" all_nodes_ready
timing "nodes Ready after up.sh returned" $(( $(now_ms) - t0 ))
t0=$(now_ms)
check "a second up.sh is a no-op that prints the same KUBECONFIG line" run_up
timing "second up.sh (cluster running)" $(( $(now_ms) - t0 ))

zones=$(kc get nodes -o jsonpath='{range .items[*]}{.metadata.labels.topology\.kubernetes\.io/zone}{" "}{.metadata.labels.kubernetes\.io/hostname}{"\n"}{end}' | sort)
check "nodes labelled with zone-a/b/c and their hostname" \
  test "$zones" == $'zone-a node1\nzone-b node2\nzone-c node3'

check "helm (built by build.sh) talks to the cluster" "$HELM_BIN/helm" --kubeconfig "$KUBECONFIG_PATH" list -A -q

kc delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kc create namespace "$NS" >/dev/null
wait_for 30 "default service account" kc -n "$NS" get serviceaccount default

# ---------------------------------------------------------------------------------------
echo "# spread: 3 replicas, required anti-affinity on kubernetes.io/hostname, probes"
t0=$(now_ms)
kc -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $TESTBOX_IMAGE
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /www && hostname >/www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: spread}
spec:
  selector: {app: spread}
  ports: [{port: 80, targetPort: 8080}]
EOF
require "spread: 3 replicas Running and Ready" wait_for 120 "spread ready" deploy_ready spread 3
timing "3-replica Deployment Ready after apply" $(( $(now_ms) - t0 ))
check "spread: one pod on each of the three nodes" test "$(pods_nodes spread | sort -u | wc -l)" -eq 3

# ---------------------------------------------------------------------------------------
echo "# Service traffic"
svc_ip=$(kc -n "$NS" get svc spread -o jsonpath='{.spec.clusterIP}')
host_get() { curl -sf --max-time 2 "http://$svc_ip/"; }
# Each answer names the pod that served it; kube-proxy spreads connections over all three.
host_reaches_all() {
  local seen=""
  for _ in $(seq 1 40); do seen+="$(host_get || true)"$'\n'; done
  [[ $(grep -c . <<<"$(sort -u <<<"$seen")") -eq 3 ]]
}
check "host -> ClusterIP $svc_ip answers" wait_for 30 "host to Service" host_get
# Waited on, not checked once: the Deployment is Ready when its pods are, but each kube-proxy
# programs the third endpoint a moment later (its EndpointSlice watch and sync); a single try
# of 40 right after the first answer once saw two pods (CI, 2026-12-06 21:03). A pod that is
# really unreachable still fails this after 30 s.
check "host -> ClusterIP reaches all three pods" wait_for 30 "host to reach all three pods" host_reaches_all

# A client pod on node1, and a backend pod on another node.
kc -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: $TESTBOX_IMAGE, imagePullPolicy: Never, command: [sleep, "100000"]}
EOF
wait_for 60 "client pod running" sh -c "[ \"\$($K8S_BIN/kubectl --kubeconfig $KUBECONFIG_PATH -n $NS get pod client -o jsonpath='{.status.phase}')\" = Running ]" || true
in_client() { kc -n "$NS" exec client -- "$@"; }
remote_pod=$(kc -n "$NS" get pods -l app=spread -o jsonpath='{range .items[?(@.spec.nodeName!="node1")]}{.metadata.name} {.status.podIP}{"\n"}{end}' | awk 'NR == 1')
check "pod on node1 -> pod ${remote_pod% *} on another node (pod IP)" \
  wait_for 30 "pod to pod" sh -c "$K8S_BIN/kubectl --kubeconfig $KUBECONFIG_PATH -n $NS exec client -- wget -qO- http://${remote_pod#* }:8080/ | grep -qx ${remote_pod% *}"
check "pod on node1 -> ClusterIP $svc_ip" wait_for 30 "pod to Service" in_client wget -qO- "http://$svc_ip/"
# Through the Service to the pods on node2 and node3 too, not only to node1's own.
pod_reaches_all() {
  [[ $(in_client sh -c "for i in \$(seq 40); do wget -qO- http://$svc_ip/; done" | sort -u | grep -c .) -eq 3 ]]
}
check "pod on node1 -> ClusterIP reaches the pods on all three nodes" wait_for 30 "pod to reach all three pods" pod_reaches_all
check "pod -> Service by DNS name (spread.$NS.svc.$CLUSTER_DOMAIN)" \
  wait_for 30 "pod to Service by name" in_client wget -qO- "http://spread.$NS.svc.$CLUSTER_DOMAIN/"
# What an in-cluster operator does first: connect to the apiserver through its Service.
# (busybox's TLS cannot talk to it, so only the connection is checked.)
check "pod -> kubernetes.default.svc:443 (the apiserver, from the host via kube-proxy)" \
  wait_for 30 "pod to apiserver" in_client sh -c 'nc -w 2 kubernetes.default.svc 443 </dev/null' 

# ---------------------------------------------------------------------------------------
echo "# storage: a PVC on the default StorageClass"
t0=$(now_ms)
kc -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  containers:
  - name: w
    image: $TESTBOX_IMAGE
    imagePullPolicy: Never
    command: [sh, -c, 'echo persisted >/data/file && cat /data/file']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
EOF
pvc_bound() { [[ $(kc -n "$NS" get pvc data -o jsonpath='{.status.phase}') == Bound ]]; }
writer_done() { [[ $(kc -n "$NS" get pod writer -o jsonpath='{.status.phase}') == Succeeded ]]; }
check "PVC on the default StorageClass binds" wait_for 90 "PVC bound" pvc_bound
check "a pod writes to the volume" wait_for 90 "writer succeeded" writer_done
check "the data is on the node's disk" \
  test "$(cat "$(node_dir "$(kc -n "$NS" get pod writer -o jsonpath='{.spec.nodeName}' | tr -dc 0-9)")"/local-path/*/file 2>/dev/null)" == persisted
timing "PVC bound and written after apply" $(( $(now_ms) - t0 ))

# ---------------------------------------------------------------------------------------
echo "# images: build-image.sh and load-images.sh, with glibc-linked stand-ins for our binaries"
# sleep and true stand in for redispair-operator and redispair-engine: dynamically linked,
# so the image only runs if build-image.sh copied the shared libraries ldd reported.
stand_in=$LOG_DIR/stand-in
mkdir -p "$stand_in"
cp /usr/bin/sleep "$stand_in/redispair-operator"
cp /usr/bin/true "$stand_in/redispair-engine"
image_ref=localhost/redispair/image-selftest:dev
archive=$LOG_DIR/image-selftest.oci.tar
check "build-image.sh packs the binaries with their shared libraries" \
  "$REPO_ROOT/hack/images/build-image.sh" redispair --bin-dir "$stand_in" --ref "$image_ref" --out "$archive"
check "load-images.sh imports the archive into every node" "$HERE/load-images.sh" "$archive"
kc -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: image-selftest}
spec:
  nodeName: node3
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: $image_ref, imagePullPolicy: Never, args: ["100000"]}
EOF
image_pod_running() { [[ $(kc -n "$NS" get pod image-selftest -o jsonpath='{.status.phase}') == Running ]]; }
check "a pod runs the image's entrypoint (/usr/local/bin/redispair-operator)" wait_for 60 "image pod" image_pod_running
# The container's process, seen from the host: it must run as the image's user, 65532.
image_uid() {
  local p
  for p in $(node_pids 3); do
    [[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == "/usr/local/bin/redispair-operator 100000 " ]] &&
      stat -c %u "/proc/$p"
  done
}
check "as user 65532" test "$(image_uid)" == 65532
kc -n "$NS" delete pod image-selftest --wait=false >/dev/null

# ---------------------------------------------------------------------------------------
echo "# fault: kill a node (a 2-replica Deployment without anti-affinity must move)"
kc -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: movable}
spec:
  replicas: 2
  selector: {matchLabels: {app: movable}}
  template:
    metadata: {labels: {app: movable}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: $TESTBOX_IMAGE
        imagePullPolicy: Never
        command: [sleep, "100000"]
        readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}
EOF
require "movable: 2 replicas Ready" wait_for 90 "movable ready" deploy_ready movable 2
# awk, not head: head exits after one line and, with pipefail, a writer that gets
# SIGPIPE would fail the assignment and end the run.
victim=$(pods_nodes movable | awk 'NR == 1')
victim_i=${victim#node}
movable_off_victim() {
  deploy_ready movable 2 && ! pods_nodes movable | grep -qx "$victim"
}
t0=$(now_ms)
check "fault.sh kill $victim" "$HERE/fault.sh" kill "$victim"
check "no process of $victim is left" test -z "$(node_pids "$victim_i")"
check "$victim goes NotReady" wait_for 90 "$victim NotReady" node_not_ready "$victim"
timing "kill -> $victim NotReady" $(( $(now_ms) - t0 ))
check "movable's pods are rescheduled off $victim and Ready" wait_for 120 "movable rescheduled" movable_off_victim
timing "kill -> pods rescheduled and Ready elsewhere" $(( $(now_ms) - t0 ))
check "host -> ClusterIP still answers with $victim gone" wait_for 30 "host to Service" host_get

t0=$(now_ms)
check "up.sh brings the lost node back" run_up
check "$victim Ready again" wait_for 90 "$victim Ready" node_is_ready "$victim"
timing "up.sh -> $victim Ready again" $(( $(now_ms) - t0 ))

# ---------------------------------------------------------------------------------------
cut=node2
[[ $victim == node2 ]] && cut=node3
cut_i=${cut#node}
echo "# fault: partition $cut"
# reachable I: the host can open a TCP connection to node I's kubelet.
reachable() { timeout 2 bash -c "</dev/tcp/$(node_ip "$1")/$((10250 + 10 * ($1 - 1)))" 2>/dev/null; }
check "$cut's kubelet port is reachable from the host before the partition" reachable "$cut_i"
t0=$(now_ms)
check "fault.sh partition $cut" "$HERE/fault.sh" partition "$cut"
check "$cut goes NotReady" wait_for 90 "$cut NotReady" node_not_ready "$cut"
timing "partition -> $cut NotReady" $(( $(now_ms) - t0 ))
check "$cut's kubelet and containerd are still alive" \
  sh -c "kill -0 $(cat "$STATE/pids/$cut-kubelet.pid") && kill -0 $(cat "$STATE/pids/$cut-containerd.pid")"
check "$cut is unreachable from the host" sh -c "! timeout 3 bash -c '</dev/tcp/$(node_ip "$cut_i")/$((10250 + 10 * (cut_i - 1)))' 2>/dev/null"
check "host -> ClusterIP still answers with $cut cut off" wait_for 30 "host to Service" host_get
t0=$(now_ms)
check "fault.sh heal $cut" "$HERE/fault.sh" heal "$cut"
check "$cut Ready again" wait_for 90 "$cut Ready" node_is_ready "$cut"
timing "heal -> $cut Ready" $(( $(now_ms) - t0 ))
check "$cut reachable again" reachable "$cut_i"

# ---------------------------------------------------------------------------------------
# leftovers: everything of ours that could survive down.sh, one line per kind.
leftovers() {
  local out=""
  out+=$(pgrep -af "$STATE" || true)
  out+=$(ip netns list 2>/dev/null | grep '^rp-node' || true)
  out+=$(ip -br link 2>/dev/null | grep -E "^($BRIDGE|rpveth)" || true)
  out+=$(ip route 2>/dev/null | grep -E '10\.21[345]\.' || true)
  out+=$(iptables-save 2>/dev/null | grep -E 'KUBE-|CNI-|10\.21[345]\.' || true)
  out+=$(ls -d /sys/fs/cgroup/*/node[0-9]* 2>/dev/null || true)
  out+=$(grep -F -e "$STATE" -e "$RUN_DIR" /proc/mounts || true)
  out+=$(ls -d "$STATE" "$RUN_DIR" 2>/dev/null || true)
  out+=$(ls -d /run/containerd/s/* 2>/dev/null || true)
  [[ -z $out ]] || { while read -r l; do echo "#   left: $l"; done <<<"$out"; return 1; }
}

echo "# down"
t0=$(now_ms)
check "down.sh succeeds" env REDISPAIR_KEEP_LOGS="$LOG_DIR/cluster-logs-1" "$HERE/down.sh"
timing "down.sh" $(( $(now_ms) - t0 ))
check "nothing left: processes, namespaces, links, routes, iptables rules, cgroups, mounts, state" leftovers
check "down.sh again is a no-op" "$HERE/down.sh"
check "the host's vm.overcommit_memory, kernel.panic, kernel.panic_on_oops are untouched" \
  test "$(host_sysctls)" == "$SYSCTLS_BEFORE"

echo "# up again after down (binaries cached: a warm start)"
t0=$(now_ms)
check "up.sh --nodes 3 after down.sh" run_up
check "all three nodes Ready" wait_for 120 "nodes Ready" all_nodes_ready
timing "warm up.sh --nodes 3 to all nodes Ready" $(( $(now_ms) - t0 ))
check "down.sh" env REDISPAIR_KEEP_LOGS="$LOG_DIR/cluster-logs-2" "$HERE/down.sh"
check "nothing left after the second down" leftovers

# The cluster's and up.sh's logs are kept when something failed, for diagnosis.
if (( FAILED == 0 )); then rm -rf "$LOG_DIR"; else echo "# logs: $LOG_DIR"; fi
finish
