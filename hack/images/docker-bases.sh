#!/usr/bin/env bash
# The Dockerfile's two base images, made on this machine for builds without a registry:
#
#   hack/images/docker-bases.sh                 make (or find) both; prints the build
#                                               arguments, one a line:
#                                      --build-arg=BUILDER_IMAGE=localhost/redispair/rust:...
#                                      --build-arg=RUNTIME_IMAGE=localhost/redispair/cc-debian12:...
#   hack/images/docker-bases.sh --runtime-only  the runtime one only (a build with
#                                               BINARIES=prebuilt never uses the builder)
#
# Stand-ins for the public defaults (docker.io/library/rust:<version>-bookworm and
# gcr.io/distroless/cc-debian12:nonroot), brought in with `docker import`:
#   builder  Debian bookworm minbase by debootstrap with gcc and libc6-dev (ring and Lua's C
#            sources need a C compiler), and this machine's Rust toolchain (rustc --print
#            sysroot, which must be the Dockerfile's RUST_VERSION) as rust's images lay it out:
#            CARGO_HOME /usr/local/cargo, cargo and rustc on PATH;
#   runtime  what distroless/cc has: glibc, libgcc, CA certificates, /etc/passwd with root and
#            nonroot (65532), /tmp; no shell, no package manager. Taken from this machine's own
#            files (Debian 12, as distroless/cc-debian12), no debootstrap: the libraries are the
#            ones binaries built here were linked against, and the runtime costs seconds.
# Their tags carry a hash of their inputs; images with those tags are reused. Cold: the
# runtime ~5 s; the builder ~2 min (debootstrap ~1.5 min, the toolchain copy and import ~30 s).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
# shellcheck source=hack/lib/docker.sh
source hack/lib/docker.sh

RUNTIME_ONLY=
case ${1:-} in
  --runtime-only) RUNTIME_ONLY=1 ;;
  "") ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
need_root
docker_engine_up
SUITE=bookworm
PACKAGES=gcc,libc6-dev,ca-certificates
# What distroless/cc holds besides the CA bundle: glibc's libraries and libgcc.
RUNTIME_LIBS=(ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1)
HOST_LIB_DIR=/usr/lib/x86_64-linux-gnu
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# --- runtime: from this machine's files ---------------------------------------------------------
[[ $(cat /etc/debian_version 2>/dev/null) == 12.* ]] \
  || die "the runtime base is taken from this machine's Debian 12 libraries (distroless/cc-debian12's); this machine runs $(cat /etc/debian_version 2>/dev/null || echo something else)"
runtime_files=()
for lib in "${RUNTIME_LIBS[@]}"; do runtime_files+=("$(readlink -f "$HOST_LIB_DIR/$lib")"); done
runtime_hash=$( { printf '%s\n' "${RUNTIME_LIBS[@]}"; sha256sum "${runtime_files[@]}" "$CA_BUNDLE" hack/images/docker-bases.sh | cut -d' ' -f1; } | sha256sum | cut -c1-12)
RUNTIME=localhost/redispair/cc-debian12:nonroot-$runtime_hash
if ! docker image inspect "$RUNTIME" >/dev/null 2>&1; then
  r=$(mktemp -d /var/tmp/redispair-docker-runtime.XXXXXX)
  trap 'rm -rf "$r"' EXIT
  mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/lib64" "$r/usr/lib/x86_64-linux-gnu"
  chmod 1777 "$r/tmp"
  cp -L "$HOST_LIB_DIR/ld-linux-x86-64.so.2" "$r/lib64/"
  for lib in "${RUNTIME_LIBS[@]}"; do cp -L "$HOST_LIB_DIR/$lib" "$r/usr/lib/x86_64-linux-gnu/"; done
  ln -s usr/lib "$r/lib"
  cp "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  chown -R 0:0 "$r"
  chown 65532:65532 "$r/home/nonroot"
  tar --numeric-owner -C "$r" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot' - "$RUNTIME" >/dev/null
  rm -rf "$r"
  log "imported $RUNTIME"
fi
echo "--build-arg=RUNTIME_IMAGE=$RUNTIME"
[[ -z $RUNTIME_ONLY ]] || exit 0

# --- builder: debootstrap and this machine's toolchain -------------------------------------------
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
sysroot=$(rustc --print sysroot)
have_version=$(rustc --version | cut -d' ' -f2)
[[ $have_version == "$rust_version" || $have_version == "$rust_version".* ]] \
  || die "the Dockerfile builds with Rust $rust_version and this machine has $have_version"

hash=$( { echo "$SUITE $PACKAGES $have_version"; sha256sum hack/images/docker-bases.sh | cut -d' ' -f1; } | sha256sum | cut -c1-12)
BUILDER=localhost/redispair/rust:$have_version-$SUITE-$hash

if ! docker image inspect "$BUILDER" >/dev/null 2>&1; then
  work=$(mktemp -d /var/tmp/redispair-docker-bases.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  command -v debootstrap >/dev/null || apt_install debootstrap
  # debootstrap talks on stdout, which is this script's answer (up.sh reads it as build
  # arguments): to stderr.
  timed "debootstrap $SUITE for the Dockerfile's builder base" "~1.5 min" \
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" http://deb.debian.org/debian >&2
  rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/* \
    "$work"/root/usr/share/doc/* "$work"/root/usr/share/man/*

  # The toolchain without its documentation, where rust's images put it; and this machine's
  # CA bundle: the build fetches crates through this machine's network (--network host), which
  # may pass a TLS-inspecting proxy whose CA only this machine's store holds.
  cp "$CA_BUNDLE" "$work/root/etc/ssl/certs/ca-certificates.crt"
  tc=$work/root/usr/local/rustup/toolchains/$have_version-x86_64-unknown-linux-gnu
  mkdir -p "$tc" "$work/root/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$tc" -x
  for b in cargo rustc rustdoc; do ln -s "../../rustup/toolchains/$have_version-x86_64-unknown-linux-gnu/bin/$b" "$work/root/usr/local/cargo/bin/$b"; done
  tar --numeric-owner -C "$work/root" -c . | docker import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'WORKDIR /' - "$BUILDER" >/dev/null
  rm -rf "$work"
  log "imported $BUILDER"
fi
echo "--build-arg=BUILDER_IMAGE=$BUILDER"
