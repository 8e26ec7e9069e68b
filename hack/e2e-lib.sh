# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# What hack/e2e.sh and hack/torture.sh share: bring the provider's cluster up with the image
# under test, and install the operator the way a user does. Sourced (after
# hack/cluster/lib.sh), never run.
#
# e2e_provider_up PROVIDER   local: hack/cluster/up.sh --nodes 3, the binaries built with the
#                            dev profile, packed by hack/images/build-image.sh (only when they
#                            changed) and imported into every node; kind: hack/kind/up.sh (the
#                            Dockerfile's image, from the dev-profile binaries when
#                            REDISPAIR_KIND_BINARIES=dev; offline without a Docker engine) and
#                            the host's route to ClusterIPs. Exports KUBECONFIG, PATH (kubectl,
#                            helm) and E2E_FAULT; sets bin_dir (local) and image_stamp.
# e2e_install_operator       helm upgrade --install of charts/redispair-operator: release
#                            $RELEASE in $E2E_OPERATOR_NAMESPACE watching $E2E_NAMESPACE only,
#                            image $E2E_IMAGE; waits until it is available.

export E2E_NAMESPACE=${E2E_NAMESPACE:-redispair-e2e}
export E2E_OPERATOR_NAMESPACE=${E2E_OPERATOR_NAMESPACE:-redispair-system}
export E2E_IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}   # the chart's default
RELEASE=redispair-operator
bin_dir=
image_stamp=

step() { printf '\n==> %s\n' "$*" >&2; }

e2e_provider_up() {
  local provider=$1 kubeconfig_line archive stamp tool
  case $provider in
    local)
      need_root
      step "local cluster (hack/cluster/up.sh --nodes 3)"
      kubeconfig_line=$(hack/cluster/up.sh --nodes 3 | tail -n1) || die "hack/cluster/up.sh failed"
      export "${kubeconfig_line?}"
      hack/cluster/build.sh helm >&2 || die "cannot build helm"
      export PATH=$K8S_BIN:$HELM_BIN:$PATH
      export E2E_FAULT=${E2E_FAULT:-hack/cluster/fault.sh}
      # The migration case runs a stock redis-server on the host's end of the cluster bridge,
      # which every pod reaches (the apiserver listens there too).
      export E2E_SOURCE_HOST=${E2E_SOURCE_HOST:-$BRIDGE_IP}
      step "binaries (dev profile) and image $E2E_IMAGE"
      cargo build --locked --bin redispair-operator --bin redispair-engine --bin kubectl-redispair >&2 \
        || die "cargo build failed"
      bin_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug
      archive=$IMAGES_DIR/redispair-e2e.oci.tar
      # Packing ~700 MB of dev binaries takes a minute or more; the archive is deterministic,
      # so it is rebuilt only when the binaries (or the image name) changed. The stamp is their
      # content, not their mtime: the cache directory is shared by every worktree on the
      # machine.
      stamp=$( { sha256sum "$bin_dir"/redispair-operator "$bin_dir"/redispair-engine "$bin_dir"/kubectl-redispair \
        hack/images/build-image.sh | cut -d' ' -f1; echo "$E2E_IMAGE"; } | sha256sum | cut -c1-32)
      if [[ -s $archive && $(cat "$archive.stamp" 2>/dev/null) == "$stamp" ]]; then
        log "image archive up to date: $archive"
      else
        rm -f "$archive.stamp"
        REDISPAIR_IMAGE=$E2E_IMAGE hack/images/build-image.sh redispair --bin-dir "$bin_dir" --ref "$E2E_IMAGE" \
          --out "$archive" || die "image build failed"
        echo "$stamp" >"$archive.stamp"
      fi
      hack/cluster/load-images.sh "$archive" || die "loading the image into the nodes failed"
      # The image is re-imported under the same tag: a changed digest restarts the operator.
      image_stamp=$(sha256sum "$archive" | cut -c1-16)
      ;;
    kind)
      need_root
      # Without a Docker engine (the project's machines) up.sh goes --offline: an engine of
      # the project's own, the node image and the Dockerfile's bases built here. The same
      # engine for fault.sh and the checks below.
      # REDISPAIR_KIND_BINARIES=dev (CI): the image from the dev-profile binaries `cargo test`
      # built, the Dockerfile's BINARIES=prebuilt (the release build inside Docker is ~40 min
      # cold here, docs/testing.md "kind"). Unset: the Dockerfile's full build, as a user's.
      local up_args=()
      case ${REDISPAIR_KIND_BINARIES:-} in
        dev)
          step "binaries (dev profile) for the image"
          cargo build --locked --bin redispair-operator --bin redispair-engine --bin kubectl-redispair >&2 \
            || die "cargo build failed"
          up_args=(--binaries "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug") ;;
        "") ;;
        *) die "REDISPAIR_KIND_BINARIES is dev or unset" ;;
      esac
      step "kind cluster (hack/kind/up.sh ${up_args[*]})"
      kubeconfig_line=$(REDISPAIR_IMAGE=$E2E_IMAGE hack/kind/up.sh "${up_args[@]}" | tail -n1) || die "hack/kind/up.sh failed"
      export "${kubeconfig_line?}"
      eval "$(hack/kind/docker.sh env)"
      hack/cluster/build.sh helm >&2 || die "cannot build helm"
      command -v kubectl >/dev/null || export PATH=$K8S_BIN:$PATH
      command -v helm >/dev/null || export PATH=$HELM_BIN:$PATH
      for tool in docker kubectl helm; do
        command -v "$tool" >/dev/null || die "provider kind needs $tool on PATH"
      done
      export E2E_FAULT=${E2E_FAULT:-hack/kind/fault.sh}
      # The migration case's stock redis-server listens on the host's end of the nodes' Docker
      # network (its gateway), which every node and pod reaches.
      E2E_SOURCE_HOST=${E2E_SOURCE_HOST:-$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
        "${KIND_EXPERIMENTAL_DOCKER_NETWORK:-redispair-kind}" | awk '{print $1}')}
      export E2E_SOURCE_HOST
      # The suite's writer runs here and connects to ClusterIPs (needs root for ip route).
      hack/kind/fault.sh route || die "cannot route the Service range to the kind cluster"
      image_stamp=$(docker image inspect -f '{{.Id}}' "$E2E_IMAGE" | sed 's/^sha256://' | cut -c1-16)
      # The packaging checks' plugin runs here: the dev-profile build, as for provider local.
      cargo build --locked --bin kubectl-redispair >&2 || die "cargo build failed"
      bin_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug
      ;;
    *) die "--provider is local or kind" ;;
  esac
  [[ -n ${KUBECONFIG:-} ]] || die "the provider printed no KUBECONFIG=..."
}

e2e_install_operator() {
  step "helm upgrade --install $RELEASE ($E2E_OPERATOR_NAMESPACE, watching $E2E_NAMESPACE)"
  # The watched namespace first: the chart puts its Role there.
  kubectl get namespace "$E2E_NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$E2E_NAMESPACE" >&2
  # Helm installs a chart's CRDs only when they are absent and never upgrades them: on a
  # cluster kept from an earlier run the old schema would stay, and the API server would
  # prune every new field (a spec.bootstrap silently dropped). Apply the current ones first.
  kubectl apply --server-side --force-conflicts -f charts/redispair-operator/crds/ >&2
  helm upgrade --install "$RELEASE" charts/redispair-operator \
    --namespace "$E2E_OPERATOR_NAMESPACE" --create-namespace \
    --set image.repository="${E2E_IMAGE%:*}" --set image.tag="${E2E_IMAGE##*:}" \
    --set image.pullPolicy=IfNotPresent --set "watchNamespaces={$E2E_NAMESPACE}" \
    --set-string "podAnnotations.redispair\.io/image-archive=$image_stamp" \
    --wait --timeout 5m >&2
}
