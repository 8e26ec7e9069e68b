#!/usr/bin/env bash
# Build OCI image archives without Docker or a registry.
#
#   hack/images/build-image.sh redispair [--bin-dir DIR] [--ref REF] [--out FILE]
#   hack/images/build-image.sh pause     [--out FILE]
#   hack/images/build-image.sh testbox   [--out FILE]
#   hack/images/build-image.sh all       [--bin-dir DIR]      (pause + testbox, + redispair if built)
#   hack/images/build-image.sh rootfs DIR --ref REF --out FILE [--entrypoint JSON] [--cmd JSON] [--user U]
#
# Each archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) in a tar, one
# layer, importable with `ctr -n k8s.io images import` (hack/cluster/load-images.sh does that).
# Builds are deterministic: the same inputs give byte-identical archives (sorted tar entries,
# mtime 0, owner 0, `gzip -n`, fixed creation date), so digests only change when content does.
# Archives go to ~/.cache/redispair/images/ unless --out says otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)

# The name the Helm chart uses by default: change it here and only here.
REDISPAIR_IMAGE=${REDISPAIR_IMAGE:-ghcr.io/redispair/redispair:dev}
PAUSE_IMAGE=${PAUSE_IMAGE:-localhost/redispair/pause:3.10}
TESTBOX_IMAGE=${TESTBOX_IMAGE:-localhost/redispair/testbox:dev}
OUT_DIR=${REDISPAIR_IMAGES_DIR:-${REDISPAIR_CACHE:-$HOME/.cache/redispair}/images}
NONROOT_UID=65532
# Where the binaries live in the image: src/api/constants.rs (OPERATOR_BINARY, ENGINE_BINARY)
# and the Dockerfile say the same (tests/packaging.rs checks it).
OPERATOR_PATH=/usr/local/bin/redispair-operator
ENGINE_PATH=/usr/local/bin/redispair-engine
PLUGIN_PATH=/usr/local/bin/kubectl-redispair

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# json_str S: S as a JSON string literal (enough for paths, names and env entries).
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

# oci_archive ROOTFS REF OUT ENTRYPOINT_JSON CMD_JSON USER [LABELS_JSON]: pack ROOTFS as a
# one-layer image.
oci_archive() {
  local rootfs=$1 ref=$2 out=$3 entrypoint=$4 cmd=$5 user=$6 labels=${7:-null}
  local work; work=$(mktemp -d)
  mkdir -p "$work/layout/blobs/sha256"
  local blobs=$work/layout/blobs/sha256

  # The layer: a tar whose bytes depend only on the files' contents, names, modes and
  # owners (the builders below set those: root, except what the non-root user must own).
  tar --sort=name --mtime=@0 --numeric-owner --format=gnu \
      -C "$rootfs" -cf "$work/layer.tar" .
  local diff_id; diff_id=$(sha256 "$work/layer.tar")
  gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
  local layer; layer=$(sha256 "$work/layer.tar.gz")
  mv "$work/layer.tar.gz" "$blobs/$layer"

  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z",'\
'"config":{"User":"%s","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/","Labels":%s},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},'\
'"history":[{"created":"1970-01-01T00:00:00Z","created_by":"hack/images/build-image.sh"}]}' \
    "$user" "$entrypoint" "$cmd" "$labels" "$diff_id" >"$work/config.json"
  local config; config=$(sha256 "$work/config.json")
  local config_size; config_size=$(size "$work/config.json")
  mv "$work/config.json" "$blobs/$config"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$(size "$blobs/$layer")" >"$work/manifest.json"
  local manifest; manifest=$(sha256 "$work/manifest.json")
  local manifest_size; manifest_size=$(size "$work/manifest.json")
  mv "$work/manifest.json" "$blobs/$manifest"

  # Both annotations carry the full reference: containerd names the image from
  # io.containerd.image.name; other tools (skopeo, umoci) read org.opencontainers.image.ref.name.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'\
'"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,'\
'"platform":{"architecture":"amd64","os":"linux"},'\
'"annotations":{"io.containerd.image.name":%s,"org.opencontainers.image.ref.name":%s}}]}' \
    "$manifest" "$manifest_size" "$(json_str "$ref")" "$(json_str "$ref")" >"$work/layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

  mkdir -p "$(dirname "$out")"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
      -C "$work/layout" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$work"
  log "built $ref -> $out (manifest sha256:${manifest:0:12})"
}

# base_files ROOTFS: the few files every image wants: users, groups, /tmp.
base_files() {
  local r=$1
  mkdir -p "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT_UID" "$NONROOT_UID" >"$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$NONROOT_UID" >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
}

# copy_with_libs ROOTFS BINARY DEST: copy BINARY to DEST inside ROOTFS together with every
# shared library ldd reports (and the dynamic loader), at the same paths as on this machine,
# so a glibc-linked Rust binary runs in an otherwise empty image.
copy_with_libs() {
  local r=$1 bin=$2 dest=$3 lib
  install -D -m 0755 "$bin" "$r$dest"
  # ldd prints "libfoo.so => /path (addr)" or "/lib64/ld-linux-x86-64.so.2 (addr)";
  # a static binary prints "not a dynamic executable" (and exits 1).
  while read -r lib; do
    [[ -n $lib && -e $lib ]] || continue
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done < <(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' | sort -u || true)
}

# redispair_labels REF: the OCI labels the Dockerfile sets. The revision comes from
# $REDISPAIR_REVISION (default "unknown", like the Dockerfile's), not from git: the same
# binaries must keep giving the same digest.
redispair_labels() {
  local ref=$1 rev=${REDISPAIR_REVISION:-unknown}
  printf '{"org.opencontainers.image.title":"redispair",'\
'"org.opencontainers.image.description":"RedisPair: a Redis-compatible engine and a Kubernetes operator for master/replica pairs",'\
'"org.opencontainers.image.source":"https://github.com/redispair/redispair",'\
'"org.opencontainers.image.licenses":"Apache-2.0",'\
'"org.opencontainers.image.version":%s,"org.opencontainers.image.revision":%s}' \
    "$(json_str "${ref##*:}")" "$(json_str "$rev")"
}

build_redispair() {
  local bin_dir=$1 ref=$2 out=$3
  local op=$bin_dir/redispair-operator engine=$bin_dir/redispair-engine plugin=$bin_dir/kubectl-redispair
  [[ -x $op && -x $engine ]] ||
    die "need $op and $engine (cargo build --release), or pass --bin-dir DIR"
  local r; r=$(mktemp -d)
  base_files "$r"
  copy_with_libs "$r" "$op" "$OPERATOR_PATH"
  copy_with_libs "$r" "$engine" "$ENGINE_PATH"
  [[ -x $plugin ]] && copy_with_libs "$r" "$plugin" "$PLUGIN_PATH"
  # rustls / native-tls look here when a client talks TLS outside the cluster's own CA.
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  fi
  mkdir -p "$r/data" "$r/home/nonroot"
  chown -R 0:0 "$r"
  # The engine's data directory and the user's home belong to the user the image runs as.
  chown "$NONROOT_UID:$NONROOT_UID" "$r/data" "$r/home/nonroot"
  # Same layout, user, entrypoint and labels as the Dockerfile (tests/packaging.rs checks it).
  oci_archive "$r" "$ref" "$out" "[\"$OPERATOR_PATH\"]" 'null' "$NONROOT_UID:$NONROOT_UID" "$(redispair_labels "$ref")"
  rm -rf "$r"
}

build_pause() {
  local out=$1 r; r=$(mktemp -d)
  command -v gcc >/dev/null || die "gcc is needed to build the pause program"
  mkdir -p "$r/bin"
  gcc -static -Os -s -o "$r/bin/pause" "$HERE/pause/pause.c"
  chown -R 0:0 "$r"
  # The result of gcc is not byte-stable across compilers; the layer is still deterministic
  # for a given toolchain.
  oci_archive "$r" "$PAUSE_IMAGE" "$out" '["/bin/pause"]' 'null' "65535:65535"
  rm -rf "$r"
}

# testbox: busybox-static with its applets as symlinks. Tests use it for probes, wget,
# nc and sleep; local-path-provisioner's helper pods use it for mkdir/rm.
build_testbox() {
  local out=$1 r applet
  r=$(mktemp -d)
  if ! /bin/busybox --list-full >/dev/null 2>&1; then
    die "busybox-static is needed (apt-get install busybox-static)"
  fi
  base_files "$r"
  install -D -m 0755 /bin/busybox "$r/bin/busybox"
  while read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    mkdir -p "$r/$(dirname "$applet")"
    ln -sf /bin/busybox "$r/$applet"
  done < <(/bin/busybox --list-full)
  chown -R 0:0 "$r"
  oci_archive "$r" "$TESTBOX_IMAGE" "$out" 'null' '["sh"]' "0:0"
  rm -rf "$r"
}

archive_name() { local n=${1##*/}; echo "$OUT_DIR/${n//:/_}.oci.tar"; }

main() {
  local what=${1:-}; shift || true
  local bin_dir=$REPO_ROOT/target/release ref='' out='' rootfs='' entrypoint=null cmd=null user=0:0
  [[ $what == rootfs ]] && { rootfs=${1:?rootfs DIR}; shift; }
  while (( $# )); do
    case $1 in
      --bin-dir) bin_dir=$2; shift 2 ;;
      --ref) ref=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --entrypoint) entrypoint=$2; shift 2 ;;
      --cmd) cmd=$2; shift 2 ;;
      --user) user=$2; shift 2 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  case $what in
    redispair) ref=${ref:-$REDISPAIR_IMAGE}; build_redispair "$bin_dir" "$ref" "${out:-$(archive_name "$ref")}" ;;
    pause) build_pause "${out:-$(archive_name "$PAUSE_IMAGE")}" ;;
    testbox) build_testbox "${out:-$(archive_name "$TESTBOX_IMAGE")}" ;;
    all)
      build_pause "$(archive_name "$PAUSE_IMAGE")"
      build_testbox "$(archive_name "$TESTBOX_IMAGE")"
      if [[ -x $bin_dir/redispair-operator && -x $bin_dir/redispair-engine ]]; then
        build_redispair "$bin_dir" "$REDISPAIR_IMAGE" "$(archive_name "$REDISPAIR_IMAGE")"
      else
        log "skipping $REDISPAIR_IMAGE: no binaries in $bin_dir yet"
      fi ;;
    rootfs)
      [[ -n $ref && -n $out ]] || die "rootfs needs --ref and --out"
      # Owners are taken from DIR as they are.
      oci_archive "$rootfs" "$ref" "$out" "$entrypoint" "$cmd" "$user" ;;
    *) sed -n '2,16p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
}

main "$@"
