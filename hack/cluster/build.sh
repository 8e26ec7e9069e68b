#!/usr/bin/env bash
# Build and cache the binaries the local cluster runs, from the Go module proxy and Debian.
#
#   hack/cluster/build.sh [k8s|helm|coredns|local-path|promtool|all]   (default: all; all does not build promtool)
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
  helm) build_helm ;;
  promtool) build_promtool ;;
  coredns) build_coredns ;;
  local-path) build_local_path ;;
  all) build_k8s; build_coredns; build_local_path; build_helm ;;
  *) die "usage: $0 [k8s|helm|coredns|local-path|promtool|all]" ;;
esac
