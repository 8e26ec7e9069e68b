#!/usr/bin/env bash
# Build and cache the binaries the local cluster runs, from the Go module proxy and Debian.
#
#   hack/cluster/build.sh [k8s|helm|coredns|local-path|promtool|cert-manager-crds|all]   (default: all; all does not build promtool or fetch the CRDs)
#   hack/cluster/build.sh kind|kubeadm|etcd|coredns-kubeadm    only for the kind provider
#
# Results are cached under ~/.cache/redispair/<component>/<version>/bin, keyed by version:
# a second run finds every binary and does nothing. up.sh calls this when something is missing.
# Cold, on 2 shared cores (docs/testing.md, "Measured"): Kubernetes ~5 min (263-274 s), CoreDNS
# and local-path-provisioner ~1 min each, helm ~1.5 min; each step says what it builds before it
# starts and how long it took after.
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# go_env: how every Go build here runs.
#  - GOEXPERIMENT=nojsonv2: with jsonv2 (the default from Go 1.27) kube-apiserver's OpenAPI
#    output breaks ("$root has invalid property: Extensions"). Only set when this Go knows
#    the experiment, so an older Go is not refused.
#  - CGO_ENABLED=0: static binaries, nothing depends on the host's libc.
#  - nice: the machine's two cores are shared with Rust builds.
go_env() {
  local exp=
  if GOEXPERIMENT=nojsonv2 "$GO" env GOEXPERIMENT >/dev/null 2>&1; then exp=nojsonv2; fi
  env GOEXPERIMENT="$exp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local nice -n 10 env "$@"
}

# in_dir DIR CMD...: run CMD (a program or a function) in DIR, in a subshell.
in_dir() { (cd "$1" && shift && "$@"); }

# download_module MODULE@VERSION: into the module cache; what Go says about it in download.json.
download_module() { "$GO" mod download -json "$1" >download.json; }

have_all() { local dir=$1; shift; local b; for b in "$@"; do [[ -x $dir/$b ]] || return 1; done; }

# go_for MODULE@VERSION [GO_MOD_FILE]: Go is there, new enough for the pinned versions
# (GO_MIN_VERSION), and for this module's own `go` line (read from GO_MOD_FILE, or asked of the
# module proxy), so an old Go stops here with what to install instead of a compiler error.
go_for() {
  need_go "$GO_MIN_VERSION"
  local want have
  if [[ -n ${2:-} ]]; then
    want=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$2" | head -n1)
  else
    want=$(cd /tmp && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$GO" list -m -f '{{.GoVersion}}' "$1" 2>/dev/null) || want=
  fi
  have=$("$GO" env GOVERSION)
  [[ -z $want ]] || version_ge "$have" "$want" \
    || die "$1 needs Go $want or newer and $GO is $have: install Go $want+ from https://go.dev/dl (or GO=/path/to/go); then raise GO_MIN_VERSION in hack/cluster/lib.sh"
}

# Kubernetes: a throwaway module that requires k8s.io/kubernetes and replaces each staging
# module (k8s.io/api, k8s.io/client-go, ...) with its published v0.<minor>.<patch> twin, which
# is what k8s.io/kubernetes' own go.mod points at ./staging for.
build_k8s() {
  if have_all "$K8S_BIN" "${K8S_CMDS[@]}"; then log "kubernetes $K8S_VERSION: cached in $K8S_BIN"; return; fi
  need_go "$GO_MIN_VERSION"
  local src=$CACHE_ROOT/k8s/$K8S_VERSION/src staging_ver=v0.${K8S_VERSION#v1.}
  mkdir -p "$src" "$K8S_BIN" "$K8S_BIN.tmp"
  local kmod
  timed "downloading k8s.io/kubernetes $K8S_VERSION from the Go module proxy" "first run only" \
    in_dir "$src" download_module "k8s.io/kubernetes@$K8S_VERSION"
  kmod=$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' "$src/download.json")
  [[ -f $kmod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  go_for "k8s.io/kubernetes@$K8S_VERSION" "$kmod"
  {
    echo "module redispair.local/k8sbuild"
    echo
    grep -E '^go |^godebug ' "$kmod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Lines like "k8s.io/api => ./staging/src/k8s.io/api" become "k8s.io/api => k8s.io/api v0.36.3".
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\t\1 => \1 '"$staging_ver"'#p' "$kmod"
    echo ")"
  } >"$src/go.mod"
  local ldflags=(
    -s -w
    -X "k8s.io/component-base/version.gitVersion=$K8S_VERSION"
    -X "k8s.io/component-base/version.gitMajor=1"
    -X "k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
    -X "k8s.io/component-base/version.gitTreeState=clean"
    -X "k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
    -X "k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  )
  local pkgs=() c
  for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # -mod=mod lets go fill in go.sum and the indirect requirements from k8s.io/kubernetes' go.mod.
  # Go first downloads the modules those need (minutes of silence; the heartbeat says it is
  # still going), then compiles.
  timed "building kubernetes $K8S_VERSION (${K8S_CMDS[*]}): module downloads, then compiling" \
    "first run: ~5 min on 2 cores, cached after in $K8S_BIN" \
    in_dir "$src" go_env "$GO" build -mod=mod -trimpath -ldflags "${ldflags[*]}" -o "$K8S_BIN.tmp/" "${pkgs[@]}"
  mv "$K8S_BIN.tmp"/* "$K8S_BIN"/ && rmdir "$K8S_BIN.tmp"
}

# kubeadm: only the kind node image needs it (hack/kind/build-node-image.sh), so it is a
# target of its own: machines whose cluster binaries are cached do not rebuild them. Same
# module, go.mod and flags as build_k8s (which it runs first), so most packages come from
# Go's build cache.
build_kubeadm() {
  if have_all "$K8S_BIN" kubeadm; then log "kubeadm $K8S_VERSION: cached in $K8S_BIN"; return; fi
  build_k8s
  local src=$CACHE_ROOT/k8s/$K8S_VERSION/src
  [[ -f $src/go.mod ]] || die "no $src/go.mod: remove $K8S_BIN and run $0 k8s"
  local ldflags=(
    -s -w
    -X "k8s.io/component-base/version.gitVersion=$K8S_VERSION"
    -X "k8s.io/component-base/version.gitMajor=1"
    -X "k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
    -X "k8s.io/component-base/version.gitTreeState=clean"
    -X "k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
    -X "k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  )
  timed "building kubeadm $K8S_VERSION" "first run: ~1-2 min after the other Kubernetes binaries, cached after in $K8S_BIN" \
    in_dir "$src" go_env "$GO" build -mod=mod -trimpath -ldflags "${ldflags[*]}" -o "$K8S_BIN/kubeadm.tmp" k8s.io/kubernetes/cmd/kubeadm
  mv "$K8S_BIN/kubeadm.tmp" "$K8S_BIN/kubeadm"
}

# helm: the chart is installed with it. helm.sh/helm/v3 has no replace directives, so
# `go install module@version` builds it as released.
build_helm() {
  if have_all "$HELM_BIN" helm; then log "helm $HELM_VERSION: cached in $HELM_BIN"; return; fi
  go_for "helm.sh/helm/v3@$HELM_VERSION"
  timed "building helm $HELM_VERSION" "first run: ~1.5 min, cached after in $HELM_BIN" \
    in_dir /tmp go_env GOBIN="$HELM_BIN" "$GO" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# promtool: `promtool check rules` / `test rules` on the chart's PrometheusRule. Built from the
# Go module proxy like helm (github.com/prometheus/prometheus has no replace directives).
# `remove_all_sd` (Prometheus's own build tag) leaves out the service-discovery plugins, which
# rule checks never use: without it the build downloads and compiles every cloud provider's SDK
# (gigabytes of module cache and build cache on a shared disk).
build_promtool() {
  if have_all "$PROMTOOL_BIN" promtool; then log "promtool $PROMTOOL_VERSION: cached in $PROMTOOL_BIN"; return; fi
  go_for "github.com/prometheus/prometheus@$PROMTOOL_VERSION"
  timed "building promtool $PROMTOOL_VERSION" "first run: a few minutes (module downloads, then compiling), cached after in $PROMTOOL_BIN" \
    in_dir /tmp go_env GOBIN="$PROMTOOL_BIN" "$GO" install -trimpath -tags remove_all_sd -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
}

# cert-manager's CRDs (deploy/crds/*.yaml of its Go module, plain CRD YAML generated by
# controller-gen): copied out of the module cache, nothing built. The operator test of
# `spec.tls.issuerRef` applies the Certificate CRD, so the API server validates and prunes the
# Certificate the operator writes with cert-manager's real schema.
build_cert_manager_crds() {
  if [[ -s $CERT_MANAGER_CRDS/cert-manager.io_certificates.yaml ]]; then
    log "cert-manager $CERT_MANAGER_VERSION CRDs: cached in $CERT_MANAGER_CRDS"; return
  fi
  need_go "$GO_MIN_VERSION"
  local src dir
  src=$(mktemp -d)
  in_dir "$src" go_env "$GO" mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" >"$src/download.json" \
    || die "go mod download github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION failed"
  dir=$(sed -n 's/.*"Dir": "\(.*\)",/\1/p' "$src/download.json")
  [[ -d $dir/deploy/crds ]] || die "no deploy/crds in cert-manager $CERT_MANAGER_VERSION ($dir)"
  mkdir -p "$CERT_MANAGER_CRDS"
  cp "$dir"/deploy/crds/cert-manager.io_*.yaml "$CERT_MANAGER_CRDS/"
  rm -rf "$src"
  log "cert-manager $CERT_MANAGER_VERSION CRDs: in $CERT_MANAGER_CRDS"
}

# CoreDNS with only the plugins the cluster uses (the documented way to build a custom
# CoreDNS: a main package that imports the plugins and sets the directive order). The full
# build pulls every cloud provider's SDK; this one needs the kubernetes plugin only.
build_coredns() {
  if have_all "$COREDNS_BIN" coredns; then log "coredns $COREDNS_VERSION: cached in $COREDNS_BIN"; return; fi
  need_go "$GO_MIN_VERSION"
  local src=$CACHE_ROOT/coredns/$COREDNS_VERSION/src
  mkdir -p "$src" "$COREDNS_BIN"
  cat >"$src/main.go" <<'EOF'
// A CoreDNS with the plugins the local cluster needs: cluster.local names from the
// Kubernetes API, a cache, error logging, and binding to one address.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
)

func init() {
	// The order in which plugins see a query: the same relative order as CoreDNS' plugin.cfg.
	dnsserver.Directives = []string{"bind", "errors", "log", "cache", "kubernetes"}
}

func main() { coremain.Run() }
EOF
  local cmod
  cmod=$(cd "$src" && "$GO" mod download -json "github.com/coredns/coredns@$COREDNS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  printf 'module redispair.local/coredns\n\n%s\n\nrequire github.com/coredns/coredns %s\n' \
    "$(grep -E '^go ' "$cmod")" "$COREDNS_VERSION" >"$src/go.mod"
  go_for "github.com/coredns/coredns@$COREDNS_VERSION" "$cmod"
  timed "building coredns $COREDNS_VERSION" "first run: ~1 min, cached after in $COREDNS_BIN" \
    in_dir "$src" go_env "$GO" build -mod=mod -trimpath -ldflags "-s -w" -o "$COREDNS_BIN/coredns" .
}

# etcd, for the kind node image's control plane (the local cluster runs Debian's etcd-server
# 3.4; kubeadm's static pod passes flags only 3.6 knows). go.etcd.io/etcd/server/v3 is a main
# package whose go.mod replaces its sibling modules with ../ paths, so `go install` refuses
# it: a throwaway module requires it instead, and the siblings resolve to the released
# versions its go.mod names.
build_etcd() {
  if have_all "$ETCD_BIN" etcd; then log "etcd $KIND_ETCD_VERSION: cached in $ETCD_BIN"; return; fi
  need_go "$GO_MIN_VERSION"
  local src=$CACHE_ROOT/etcd/$KIND_ETCD_VERSION/src emod
  mkdir -p "$src" "$ETCD_BIN"
  emod=$(cd "$src" && "$GO" mod download -json "go.etcd.io/etcd/server/v3@$KIND_ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [[ -f $emod ]] || die "could not download go.etcd.io/etcd/server/v3@$KIND_ETCD_VERSION"
  go_for "go.etcd.io/etcd/server/v3@$KIND_ETCD_VERSION" "$emod"
  printf 'module redispair.local/etcd\n\n%s\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$(grep -E '^go ' "$emod")" "$KIND_ETCD_VERSION" >"$src/go.mod"
  timed "building etcd $KIND_ETCD_VERSION" "first run: ~1.5 min, cached after in $ETCD_BIN" \
    in_dir "$src" go_env "$GO" build -mod=mod -trimpath -ldflags "-s -w" -o "$ETCD_BIN/etcd" go.etcd.io/etcd/server/v3
}

# CoreDNS for the kind node image: the version kubeadm deploys, with the plugins its Corefile
# names (health and ready for the probes, prometheus, forward, loop, reload, loadbalance), so
# kubeadm's own Deployment runs it unchanged. Same recipe as build_coredns.
build_coredns_kubeadm() {
  if have_all "$KIND_COREDNS_BIN" coredns; then log "coredns $KIND_COREDNS_VERSION (kubeadm's plugins): cached in $KIND_COREDNS_BIN"; return; fi
  need_go "$GO_MIN_VERSION"
  local src=$CACHE_ROOT/coredns-kubeadm/$KIND_COREDNS_VERSION/src cmod p imports=
  mkdir -p "$src" "$KIND_COREDNS_BIN"
  # (the prometheus directive is the metrics package)
  for p in errors log health ready kubernetes metrics forward cache loop reload loadbalance; do
    imports+=$'\t_ "github.com/coredns/coredns/plugin/'"$p"$'"\n'
  done
  cat >"$src/main.go" <<EOF
// CoreDNS with the plugins kubeadm's Corefile uses.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

$imports)

func init() {
	// The relative order of CoreDNS' plugin.cfg.
	dnsserver.Directives = []string{"reload", "health", "ready", "prometheus", "errors", "log", "loadbalance", "cache", "kubernetes", "loop", "forward"}
}

func main() { coremain.Run() }
EOF
  cmod=$(cd "$src" && "$GO" mod download -json "github.com/coredns/coredns@$KIND_COREDNS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  printf 'module redispair.local/coredns\n\n%s\n\nrequire github.com/coredns/coredns %s\n' \
    "$(grep -E '^go ' "$cmod")" "$KIND_COREDNS_VERSION" >"$src/go.mod"
  go_for "github.com/coredns/coredns@$KIND_COREDNS_VERSION" "$cmod"
  timed "building coredns $KIND_COREDNS_VERSION (kubeadm's plugins)" "first run: ~1.5 min, cached after in $KIND_COREDNS_BIN" \
    in_dir "$src" go_env "$GO" build -mod=mod -trimpath -ldflags "-s -w" -o "$KIND_COREDNS_BIN/coredns" .
}

# kind, for the kind provider (hack/kind/). Released modules with no replace directives:
# `go install module@version` builds it as released.
build_kind() {
  if have_all "$KIND_BIN" kind; then log "kind $KIND_VERSION: cached in $KIND_BIN"; return; fi
  go_for "sigs.k8s.io/kind@$KIND_VERSION"
  timed "building kind $KIND_VERSION" "first run: ~30 s, cached after in $KIND_BIN" \
    in_dir /tmp go_env GOBIN="$KIND_BIN" "$GO" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
}

# local-path-provisioner: dynamic hostPath-style volumes for the default StorageClass.
build_local_path() {
  if have_all "$LOCAL_PATH_BIN" local-path-provisioner; then log "local-path-provisioner $LOCAL_PATH_VERSION: cached in $LOCAL_PATH_BIN"; return; fi
  go_for "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
  timed "building local-path-provisioner $LOCAL_PATH_VERSION" "first run: ~1 min, cached after in $LOCAL_PATH_BIN" \
    in_dir /tmp go_env GOBIN="$LOCAL_PATH_BIN" "$GO" install -trimpath -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
}

case ${1:-all} in
  k8s) build_k8s ;;
  kubeadm) build_kubeadm ;;
  etcd) build_etcd ;;
  kind) build_kind ;;
  coredns-kubeadm) build_coredns_kubeadm ;;
  helm) build_helm ;;
  promtool) build_promtool ;;
  cert-manager-crds) build_cert_manager_crds ;;
  coredns) build_coredns ;;
  local-path) build_local_path ;;
  all) build_k8s; build_coredns; build_local_path; build_helm ;;
  *) die "usage: $0 [k8s|helm|coredns|local-path|promtool|cert-manager-crds|all|kind|kubeadm|etcd|coredns-kubeadm]" ;;
esac
