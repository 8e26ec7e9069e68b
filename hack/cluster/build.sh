#!/usr/bin/env bash
# Build and cache the binaries the local cluster runs, from the Go module proxy and Debian.
#
#   hack/cluster/build.sh [k8s|helm|coredns|local-path|all]   (default: all)
#
# Results are cached under ~/.cache/redispair/<component>/<version>/bin, keyed by version:
# a second run finds every binary and does nothing. up.sh calls this when something is missing.
# The Kubernetes build is the long pole (about 25 min of 2 cores cold); run it early.
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

have_all() { local dir=$1; shift; local b; for b in "$@"; do [[ -x $dir/$b ]] || return 1; done; }

need_go() {
  [[ -x $GO ]] || die "Go not found (set GO=/path/to/go); /usr/local/go/bin/go is the usual place"
}

# Kubernetes: a throwaway module that requires k8s.io/kubernetes and replaces each staging
# module (k8s.io/api, k8s.io/client-go, ...) with its published v0.<minor>.<patch> twin, which
# is what k8s.io/kubernetes' own go.mod points at ./staging for.
build_k8s() {
  if have_all "$K8S_BIN" "${K8S_CMDS[@]}"; then log "kubernetes $K8S_VERSION: cached in $K8S_BIN"; return; fi
  need_go
  local src=$CACHE_ROOT/k8s/$K8S_VERSION/src staging_ver=v0.${K8S_VERSION#v1.}
  mkdir -p "$src" "$K8S_BIN" "$K8S_BIN.tmp"
  local kmod
  kmod=$(cd "$src" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [[ -f $kmod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
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
  log "building kubernetes $K8S_VERSION (${K8S_CMDS[*]}); this takes a while"
  local t0; t0=$(now_ms)
  # -mod=mod lets go fill in go.sum and the indirect requirements from k8s.io/kubernetes' go.mod.
  (cd "$src" && go_env "$GO" build -mod=mod -trimpath -ldflags "${ldflags[*]}" -o "$K8S_BIN.tmp/" "${pkgs[@]}")
  mv "$K8S_BIN.tmp"/* "$K8S_BIN"/ && rmdir "$K8S_BIN.tmp"
  log "kubernetes built in $(( ($(now_ms) - t0) / 1000 )) s"
}

# helm: the chart is installed with it. helm.sh/helm/v3 has no replace directives, so
# `go install module@version` builds it as released.
build_helm() {
  if have_all "$HELM_BIN" helm; then log "helm $HELM_VERSION: cached in $HELM_BIN"; return; fi
  need_go
  log "building helm $HELM_VERSION"
  local t0; t0=$(now_ms)
  (cd /tmp && go_env GOBIN="$HELM_BIN" "$GO" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  log "helm built in $(( ($(now_ms) - t0) / 1000 )) s"
}

# CoreDNS with only the plugins the cluster uses (the documented way to build a custom
# CoreDNS: a main package that imports the plugins and sets the directive order). The full
# build pulls every cloud provider's SDK; this one needs the kubernetes plugin only.
build_coredns() {
  if have_all "$COREDNS_BIN" coredns; then log "coredns $COREDNS_VERSION: cached in $COREDNS_BIN"; return; fi
  need_go
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
  log "building coredns $COREDNS_VERSION"
  local t0; t0=$(now_ms)
  (cd "$src" && go_env "$GO" build -mod=mod -trimpath -ldflags "-s -w" -o "$COREDNS_BIN/coredns" .)
  log "coredns built in $(( ($(now_ms) - t0) / 1000 )) s"
}

# local-path-provisioner: dynamic hostPath-style volumes for the default StorageClass.
build_local_path() {
  if have_all "$LOCAL_PATH_BIN" local-path-provisioner; then log "local-path-provisioner $LOCAL_PATH_VERSION: cached in $LOCAL_PATH_BIN"; return; fi
  need_go
  log "building local-path-provisioner $LOCAL_PATH_VERSION"
  local t0; t0=$(now_ms)
  (cd /tmp && go_env GOBIN="$LOCAL_PATH_BIN" "$GO" install -trimpath -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION")
  log "local-path-provisioner built in $(( ($(now_ms) - t0) / 1000 )) s"
}

case ${1:-all} in
  k8s) build_k8s ;;
  helm) build_helm ;;
  coredns) build_coredns ;;
  local-path) build_local_path ;;
  all) build_k8s; build_coredns; build_local_path; build_helm ;;
  *) die "usage: $0 [k8s|helm|coredns|local-path|all]" ;;
esac
