#!/usr/bin/env bash
# Bring up a real Kubernetes cluster on this machine, from binaries, without Docker.
#
#   hack/cluster/up.sh --control-plane   etcd + kube-apiserver + controller-manager + scheduler
#   hack/cluster/up.sh [--nodes N]       the control plane plus N worker nodes (default 3)
#
# Idempotent: every component is started only if its recorded PID is not running, so a second
# run on a running cluster does nothing but print the kubeconfig line (and a run after
# `fault.sh kill` brings the lost node back). The LAST line of stdout is always
# `KUBECONFIG=<path>`; everything else goes to stderr.
#
# Layout: state under $REDISPAIR_CLUSTER_DIR (default /var/lib/redispair-cluster): certs in
# pki/, kubeconfigs, logs in logs/, PIDs in pids/, one directory per node in nodes/.
# Addresses and versions: lib.sh.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,8p' "$0" >&2; exit 2; }

MODE=nodes
NODES=3
while (( $# )); do
  case $1 in
    --control-plane) MODE=control-plane; shift ;;
    --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[[ $NODES =~ ^[1-9]$ ]] || die "--nodes takes 1..9"

need_root
T_START=$(now_ms)
PKI=$STATE/pki
PIDS=$STATE/pids
LOGS=$STATE/logs

# ---------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------
install_packages() {
  local pkgs=(etcd-server openssl curl iproute2 util-linux procps iptables)
  [[ $MODE == nodes ]] && pkgs+=(containerd runc containernetworking-plugins conntrack busybox-static gcc libc6-dev)
  apt_install "${pkgs[@]}"
}

build_binaries() {
  local what=(k8s)
  [[ $MODE == nodes ]] && what+=(coredns local-path helm)
  local w
  for w in "${what[@]}"; do "$(dirname "$0")/build.sh" "$w"; done
}

# ---------------------------------------------------------------------------------------
# Certificates: one CA signs everything; all keys are made once and kept with the state.
# ---------------------------------------------------------------------------------------
# newkey FILE: an ECDSA P-256 key. Every Kubernetes component accepts them (service-account
# tokens become ES256), and they take milliseconds to make where RSA takes a second or more
# on a loaded machine.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# cert NAME CN [O] [SANS]: a client/server certificate signed by the cluster CA.
cert() {
  local name=$1 cn=$2 org=${3:-} sans=${4:-}
  [[ -s $PKI/$name.crt ]] && return 0
  local subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org$subj"
  newkey "$PKI/$name.key"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
  mkdir -p "$PKI"
  if [[ ! -s $PKI/ca.crt ]]; then
    newkey "$PKI/ca.key"
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=redispair-local-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  # Service-account tokens are signed with this pair.
  if [[ ! -s $PKI/sa.key ]]; then
    newkey "$PKI/sa.key"
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" \
    "IP:$BRIDGE_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  cert admin admin system:masters
  # The apiserver authenticates to kubelets (logs, exec) with this one.
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
}

# kubeconfig FILE CERTNAME: a kubeconfig for the cluster, authenticating with pki/CERTNAME.
kubeconfig() {
  local file=$1 name=$2
  # Kept when it is ours (it names our apiserver); anything else is written anew: `kind
  # delete cluster` run with KUBECONFIG naming this file once left it an empty Config, and
  # every later up.sh then failed with kubectl talking to localhost:8080.
  [[ -s $file ]] && grep -qF "server: https://$BRIDGE_IP:$APISERVER_PORT" "$file" && return 0
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: redispair-local
  cluster:
    server: https://$BRIDGE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: redispair-local
  context: {cluster: redispair-local, user: $name}
current-context: redispair-local
EOF
  chmod 600 "$file"
}

# ---------------------------------------------------------------------------------------
# Processes: each started detached (setsid, stdin closed, log file), its PID recorded in
# pids/NAME.pid. `start NAME CMD...` does nothing when that PID is still alive.
# ---------------------------------------------------------------------------------------
start() {
  local name=$1; shift
  if pid_alive "$PIDS/$name.pid"; then return 0; fi
  log "starting $name"
  # setsid without -f does not fork here (a background job is not a group leader), so $!
  # is the PID of the final program after every exec.
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# `supervise NAME CMD...`: like `start`, but CMD is started again whenever it exits, as the
# kubelet does for a real cluster's static control-plane pods. kube-scheduler exits on
# purpose when its cache finds a pod on another node than it assumed (which a watch gap
# across an apiserver restart can cause); without a supervisor the cluster then schedules
# nothing until the next up.sh. pids/NAME.pid is the supervisor's: TERM stops CMD and it.
supervise() {
  local name=$1; shift
  if pid_alive "$PIDS/$name.pid"; then return 0; fi
  log "starting $name (restarted whenever it exits)"
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'child=
    trap '\''kill "$child" 2>/dev/null; wait "$child"; exit 0'\'' TERM INT
    while :; do
      "$@" & child=$!
      wait "$child"; code=$?
      echo "supervise: $1 exited ($code); starting it again in 1 s"
      sleep 1
    done' supervise "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# put FILE: write stdin to FILE only if the content differs, and say so in PUT_CHANGED.
# kube-proxy exits when its config file is rewritten, even with the same bytes, so a
# second up.sh must leave unchanged files alone.
PUT_CHANGED=0
put() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; PUT_CHANGED=0; else mv "$tmp" "$1"; PUT_CHANGED=1; fi
}

# ---------------------------------------------------------------------------------------
# The host side: our bridge, with the control plane's address on it.
# ---------------------------------------------------------------------------------------
setup_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    # Our ranges must be free on this machine: traffic for them has to stay on our links.
    if ip -4 -o addr show | grep -qE ' inet 10\.21[345]\.'; then
      die "10.213-215.x addresses are already in use here; the local cluster needs them"
    fi
    ip link add "$BRIDGE" type bridge stp_state 0 forward_delay 0
  fi
  ip addr replace "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local r
  for r in "${GUARD_ROUTES[@]}"; do ip route replace unreachable "$r"; done
}

apiserver_ready() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://$BRIDGE_IP:$APISERVER_PORT/readyz" >/dev/null; }
healthz_ok() { curl -skf --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null; }
etcd_ok() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }

start_control_plane() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  # etcd on loopback only, plain HTTP: nothing but the apiserver talks to it. Non-default
  # ports so a developer's own etcd on 2379 is not disturbed.
  start etcd etcd --name redispair-local --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "redispair-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --log-level warn
  wait_for 30 "etcd healthy" etcd_ok

  # kube-apiserver binds only the bridge address: it refuses a loopback advertise address,
  # and the nodes reach it there. --default-*-toleration-seconds is how long a pod stays
  # on a NotReady/unreachable node before eviction (default 300 s; 10 s for tests).
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --default-not-ready-toleration-seconds=10 --default-unreachable-toleration-seconds=10 \
    --profiling=false
  wait_for 60 "kube-apiserver ready" apiserver_ready

  # Node lifecycle timings, low for a test cluster (defaults: 5 s / 50 s):
  #   --node-monitor-period=1s         how often node health is checked
  #   --node-monitor-grace-period=10s  no heartbeat for this long => node NotReady/Unknown
  # with the 10 s tolerations above, a lost node's pods are evicted ~20 s after it dies.
  supervise kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false \
    --node-monitor-period=1s --node-monitor-grace-period=10s \
    --controllers='*,bootstrapsigner,tokencleaner' --profiling=false
  supervise kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false
}

# Controller-manager and scheduler take a few seconds to become useful; the nodes start
# meanwhile. Healthy is not yet working: pods cannot be created until the service-account
# controller has made the namespace's "default" account.
wait_control_plane_working() {
  wait_for 60 "kube-controller-manager healthy" healthz_ok 10257
  wait_for 60 "kube-scheduler healthy" healthz_ok 10259
  wait_for 60 "default service account" kc -n default get serviceaccount default
}

# ---------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------
# Every cgroup v1 hierarchy mounted here (cpu, cpuacct, cpuset, memory, ..., name=systemd).
cgroup_hierarchies() {
  awk '$3 == "cgroup" { print $2 }' /proc/mounts
}

# The kubelet refuses a cgroupRoot that does not exist: make /nodeI in every hierarchy.
# cpuset needs cpus/mems filled before a task may join. pids:/nodeI/system holds the node's
# daemons (holder, containerd and its shims, kubelet, kube-proxy): together with the pods
# under /nodeI/kubepods, everything of the node is under pids:/nodeI, which is how
# fault.sh and down.sh find every process of a node.
make_node_cgroups() {
  local i=$1 h
  while read -r h; do
    mkdir -p "$h/node$i"
    if [[ -f $h/cpuset.cpus ]]; then
      [[ $(cat "$h/node$i/cpuset.cpus") != "" ]] || cat "$h/cpuset.cpus" >"$h/node$i/cpuset.cpus"
      [[ $(cat "$h/node$i/cpuset.mems") != "" ]] || cat "$h/cpuset.mems" >"$h/node$i/cpuset.mems"
    fi
  done < <(cgroup_hierarchies)
  mkdir -p "/sys/fs/cgroup/pids/node$i/system"
}

node_link() {
  local i=$1 ns veth ip
  ns=$(node_netns "$i"); veth=$(node_veth "$i"); ip=$(node_ip "$i")
  [[ -e /run/netns/$ns ]] || ip netns add "$ns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$veth" master "$BRIDGE"
  # A node cut off by `fault.sh partition` stays cut off until `fault.sh heal`.
  [[ -e $STATE/partitioned/node$i ]] || ip link set "$veth" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  # Forwarding is needed inside the node (pods <-> other nodes); br_netfilter makes pod
  # traffic on the node's CNI bridge visible to kube-proxy's iptables rules. No default
  # route: traffic for addresses outside our ranges has nowhere to go.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

# Each node's pod CIDR is routed via that node's address, on the host and on every other node.
node_routes() {
  local n=$1 i j
  for ((i = 1; i <= n; i++)); do
    ip route replace "$(node_pod_cidr "$i")" via "$(node_ip "$i")" dev "$BRIDGE"
    for ((j = 1; j <= n; j++)); do
      (( i == j )) && continue
      ip -n "$(node_netns "$i")" route replace "$(node_pod_cidr "$j")" via "$(node_ip "$j")" dev eth0
    done
  done
  # The node's own processes (kubelet probes, hostNetwork pods) reach ClusterIPs too: a
  # locally sent packet needs a route before kube-proxy's OUTPUT rules rewrite it. Via the
  # host, which does not forward, so an address without endpoints goes nowhere.
  for ((i = 1; i <= n; i++)); do
    ip -n "$(node_netns "$i")" route replace "$SERVICE_CIDR" via "$BRIDGE_IP" dev eth0
  done
  update_service_route
}

write_node_config() {
  local i=$1 d name ip
  d=$(node_dir "$i"); name=$(node_name "$i"); ip=$(node_ip "$i")
  mkdir -p "$d"/{kubelet,pod-logs,container-logs,netns,cni/net.d,cni/data,sysctl,local-path,containerd/root}
  mkdir -p "$RUN_DIR/node$i"/{containerd-state,runc}
  # Before the holder bind-mounts it: the node's volumes on a filesystem of their own (lib.sh,
  # NODE_VOLUME_SIZE). Kept across a node's kill and restore, like a disk; down.sh unmounts it.
  if ! mountpoint -q "$d/local-path"; then
    mount -t tmpfs -o "size=$NODE_VOLUME_SIZE,mode=0755" "redispair-node$i-volumes" "$d/local-path"
  fi
  # Values the kubelet insists on; it reads (and may write) these files instead of the
  # host's /proc/sys entries.
  echo 1 >"$d/sysctl/overcommit_memory"; echo 10 >"$d/sysctl/panic"; echo 1 >"$d/sysctl/panic_on_oops"

  cert "$name" "system:node:$name" system:nodes "IP:$ip,DNS:$name"
  kubeconfig "$d/kubelet.kubeconfig" "$name"

  # containerd: Debian's defaults plus what these machines need (see the notes):
  #  restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, runc may not write -998;
  #  SystemdCgroup=false: no systemd; own root/state/socket/runc Root: one containerd per node.
  if [[ ! -s $d/containerd.toml ]]; then
    containerd config default | awk -v root="$d/containerd/root" -v state="$RUN_DIR/node$i/containerd-state" \
      -v sock="$RUN_DIR/node$i/containerd.sock" -v pause="$PAUSE_IMAGE" -v netd="$d/cni/net.d" \
      -v runc="$RUN_DIR/node$i/runc" '
      /^root = /                        { print "root = \"" root "\""; next }
      /^state = /                       { print "state = \"" state "\""; next }
      /^\[grpc\]/                       { grpc = 1 }
      /^\[/ && !/^\[grpc\]/             { grpc = 0 }
      grpc && /^ *address = /           { print "  address = \"" sock "\""; next }
      /^ *sandbox_image = /             { print "    sandbox_image = \"" pause "\""; next }
      /^ *restrict_oom_score_adj = /    { print "    restrict_oom_score_adj = true"; next }
      /^ *bin_dir = /                   { print "      bin_dir = \"/usr/lib/cni\""; next }
      /^ *conf_dir = /                  { print "      conf_dir = \"" netd "\""; next }
      /^ *SystemdCgroup = /             { print "            SystemdCgroup = false"; next }
      /^ *Root = ""/                    { print "            Root = \"" runc "\""; next }
      { print }' >"$d/containerd.toml.tmp"
    grep -q "restrict_oom_score_adj = true" "$d/containerd.toml.tmp" || die "containerd config: restrict_oom_score_adj not set"
    grep -q "Root = \"$RUN_DIR" "$d/containerd.toml.tmp" || die "containerd config: runc Root not set"
    mv "$d/containerd.toml.tmp" "$d/containerd.toml"
  fi

  # CNI: a bridge per node with its own pod CIDR; no masquerade (every pod CIDR is routed).
  put "$d/cni/net.d/10-redispair.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "redispair-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$d/cni/data",
        "ranges": [[{"subnet": "$(node_pod_cidr "$i")", "gateway": "$(node_pod_gw "$i")"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Pods with dnsPolicy Default get this instead of the host's resolver.
  echo "nameserver $CLUSTER_DNS_IP" | put "$d/resolv.conf"

  # kubelet: settings proven on cgroup v1 hosts without systemd (see the notes). Ports
  # differ per node so two nodes never collide even if put in one network namespace.
  # Heartbeats are frequent (lease renewed every 2.5 s, status every 4 s) so that the
  # controller-manager's 10 s grace period is safe. Eviction and image GC thresholds are
  # relaxed: a full developer disk must not taint nodes or delete imported images (there is
  # no registry to pull them back from).
  put "$d/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $((10250 + 10 * (i - 1)))
healthzBindAddress: 127.0.0.1
healthzPort: $((10248 + 10 * (i - 1)))
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: true
cgroupRoot: /node$i
containerRuntimeEndpoint: unix://$RUN_DIR/node$i/containerd.sock
imageServiceEndpoint: unix://$RUN_DIR/node$i/containerd.sock
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $d/resolv.conf
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 10s
nodeLeaseDurationSeconds: 10
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  # A changed configuration (new scripts) takes effect by restarting the program.
  if (( PUT_CHANGED )); then stop_pidfile "$PIDS/node$i-kubelet.pid"; fi

  cert "kube-proxy" system:kube-proxy
  kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy
  # kube-proxy in iptables mode inside the node's network namespace. clusterCIDR makes it
  # masquerade Service traffic that comes from outside the pod range (the host), so replies
  # return through the node that translated them. conntrack: leave the kernel's values alone.
  put "$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $name
bindAddress: $ip
clusterCIDR: $POD_CIDR_ALL
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {syncPeriod: 10s, minSyncPeriod: 200ms}
EOF
  if (( PUT_CHANGED )); then stop_pidfile "$PIDS/node$i-kube-proxy.pid"; fi

  # The holder: the first process of the node's mount namespace. It bind-mounts the
  # node's own directories over the fixed paths two kubelets would otherwise share, masks
  # the three /proc/sys entries the kubelet writes, then loops forever (a bare `wait` would
  # return when its children die). Everything else of the node is entered via its PID.
  put "$d/holder.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
echo \$\$ >/sys/fs/cgroup/pids/node$i/system/cgroup.procs
mount --bind $d/kubelet /var/lib/kubelet
mount --bind $d/pod-logs /var/log/pods
mount --bind $d/container-logs /var/log/containers
mount --bind $d/netns /run/netns
mount --bind $d/cni/data /var/lib/cni
mount --bind $d/local-path $LOCAL_PATH_DIR
mount --bind $d/sysctl/overcommit_memory /proc/sys/vm/overcommit_memory
mount --bind $d/sysctl/panic /proc/sys/kernel/panic
mount --bind $d/sysctl/panic_on_oops /proc/sys/kernel/panic_on_oops
touch $d/holder.ready
while :; do sleep 3600; done
EOF
}

# Mount points the holders bind over must exist on the host; note the ones we create so
# down.sh removes them (only if still empty).
host_mountpoints() {
  local p
  for p in /var/lib/kubelet /var/log/pods /var/log/containers /run/netns /var/lib/cni "$LOCAL_PATH_DIR"; do
    if [[ ! -d $p ]]; then
      mkdir -p "$p"
      echo "$p" >>"$STATE/created-dirs"
    fi
  done
}

# write_enter_script I: $d/enter.sh runs a program inside node I (the holder's network and
# mount namespaces), after moving itself into pids:/nodeI/system so fault.sh and down.sh
# find it. Every exec keeps the PID, so the PID recorded by start() is the program's.
write_enter_script() {
  local i=$1 d; d=$(node_dir "$i")
  put "$d/enter.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
echo \$\$ >/sys/fs/cgroup/pids/node$i/system/cgroup.procs
exec nsenter -t "\$(cat $PIDS/node$i-holder.pid)" -m -n -- "\$@"
EOF
  chmod +x "$d/enter.sh"
}

containerd_ok() { timeout 5 ctr --address "$RUN_DIR/node$1/containerd.sock" version; }

# Images are imported once per containerd, checked by name.
node_images() {
  local i=$1 img archive have
  have=$(timeout 10 ctr --address "$RUN_DIR/node$i/containerd.sock" -n k8s.io images ls -q)
  for img in "$PAUSE_IMAGE" "$TESTBOX_IMAGE"; do
    archive=$IMAGES_DIR/$(basename "${img//:/_}").oci.tar
    grep -qxF "$img" <<<"$have" && continue
    [[ -s $archive ]] || "$REPO_ROOT/hack/images/build-image.sh" "$( [[ $img == "$PAUSE_IMAGE" ]] && echo pause || echo testbox)" --out "$archive"
    timeout 120 ctr --address "$RUN_DIR/node$i/containerd.sock" -n k8s.io images import "$archive" >/dev/null
  done
}

start_node() {
  local i=$1 name
  name=$(node_name "$i")
  make_node_cgroups "$i"
  node_link "$i"
  write_node_config "$i"
  local d; d=$(node_dir "$i")
  if ! pid_alive "$PIDS/node$i-holder.pid"; then
    rm -f "$d/holder.ready"
    start "node$i-holder" nsenter --net="/run/netns/$(node_netns "$i")" \
      unshare --mount --propagation private -- bash "$d/holder.sh"
    wait_for 10 "node$i holder" test -e "$d/holder.ready"
  fi
  write_enter_script "$i"
  start "node$i-containerd" "$d/enter.sh" containerd --config "$d/containerd.toml"
  wait_for 30 "node$i containerd" containerd_ok "$i"
  node_images "$i"
  start "node$i-kubelet" "$d/enter.sh" "$K8S_BIN/kubelet" --config="$d/kubelet-config.yaml" \
    --kubeconfig="$d/kubelet.kubeconfig" --hostname-override="$name" --node-ip="$(node_ip "$i")" \
    --node-labels="topology.kubernetes.io/zone=$(node_zone "$i")" --v=1
  start "node$i-kube-proxy" "$d/enter.sh" "$K8S_BIN/kube-proxy" --config="$d/kube-proxy.yaml" --v=1
  if [[ ! -e $STATE/partitioned/node$i ]]; then mkdir -p "$STATE/up"; touch "$STATE/up/node$i"; fi
}

node_ready() {
  [[ $(kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# ---------------------------------------------------------------------------------------
# Add-ons, run as host processes on the bridge address (no images needed):
#  CoreDNS answers for cluster.local only (no upstream: nothing leaves this machine) and
#  is reached through the kube-dns Service, whose endpoints point at the host.
#  local-path-provisioner gives the default StorageClass dynamic provisioning; its
#  helper pods use the testbox image.
# ---------------------------------------------------------------------------------------
start_addons() {
  put "$STATE/Corefile" <<EOF
.:53 {
    bind $BRIDGE_IP
    errors
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_PATH
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 10
}
EOF
  if (( PUT_CHANGED )); then stop_pidfile "$PIDS/coredns.pid"; fi
  start coredns "$COREDNS_BIN/coredns" -conf "$STATE/Corefile"
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $CLUSTER_DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: redispair-local}
addressType: IPv4
endpoints:
- addresses: [$BRIDGE_IP]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF

  put "$STATE/local-path-config.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$LOCAL_PATH_DIR"]}]}
EOF
  # The helper pod runs `sh -c "$SETUP"` with busybox; these are the upstream scripts, trimmed.
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: kube-system}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      containers:
      - name: helper-pod
        image: $TESTBOX_IMAGE
        imagePullPolicy: Never
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
  start local-path-provisioner "$LOCAL_PATH_BIN/local-path-provisioner" --debug start \
    --kubeconfig "$KUBECONFIG_PATH" --namespace kube-system \
    --config "$STATE/local-path-config.json" --configmap-name local-path-config \
    --provisioner-name rancher.io/local-path --helper-image "$TESTBOX_IMAGE" \
    --service-account-name default
}

# already_up: every component this mode needs has a live recorded PID and the apiserver is
# ready. Then there is nothing to do, not even the package and build checks.
already_up() {
  local names=(etcd kube-apiserver kube-controller-manager kube-scheduler) i n
  if [[ $MODE == nodes ]]; then
    names+=(coredns local-path-provisioner)
    for ((i = 1; i <= NODES; i++)); do
      names+=("node$i-holder" "node$i-containerd" "node$i-kubelet" "node$i-kube-proxy")
    done
  fi
  for n in "${names[@]}"; do pid_alive "$PIDS/$n.pid" || return 1; done
  [[ -s $PKI/admin.crt ]] && apiserver_ready
}

main() {
  if already_up; then
    log "cluster already up (state: $STATE)"
    echo "KUBECONFIG=$KUBECONFIG_PATH"
    return 0
  fi
  install_packages
  build_binaries
  mkdir -p "$STATE" "$PKI" "$PIDS" "$LOGS" "$RUN_DIR"
  setup_bridge
  make_pki
  kubeconfig "$KUBECONFIG_PATH" admin
  kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
  kubeconfig "$STATE/scheduler.kubeconfig" scheduler
  local t=$SECONDS
  log "starting the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)"
  start_control_plane
  log "control plane serving after $(fmt_seconds $(( SECONDS - t )))"
  if [[ $MODE == nodes ]]; then
    t=$SECONDS
    log "starting $NODES nodes (holder, containerd, kubelet, kube-proxy each), CoreDNS and local-path-provisioner"
    host_mountpoints
    local i
    for ((i = 1; i <= NODES; i++)); do start_node "$i"; done
    node_routes "$NODES"
    start_addons
    log "waiting for $NODES nodes to be Ready (deadline 120 s each)"
    for ((i = 1; i <= NODES; i++)); do
      wait_for 120 "node$i Ready" node_ready "$(node_name "$i")"
    done
    log "$NODES nodes Ready $(fmt_seconds $(( SECONDS - t ))) after they were started"
  fi
  wait_control_plane_working
  log "cluster up in $(( $(now_ms) - T_START )) ms, builds included (state: $STATE, kubectl: $K8S_BIN/kubectl)"
  echo "KUBECONFIG=$KUBECONFIG_PATH"
}

main
