#!/usr/bin/env bash
# The Dockerfile's two base images, made on this machine for builds without a registry:
#
#   hack/images/docker-bases.sh      make (or find) both; prints the build arguments, one a line:
#                                      --build-arg=BUILDER_IMAGE=localhost/redispair/rust:...
#                                      --build-arg=RUNTIME_IMAGE=localhost/redispair/cc-debian12:...
#
# Stand-ins for the public defaults (docker.io/library/rust:<version>-bookworm and
# gcr.io/distroless/cc-debian12:nonroot), from one Debian bookworm made by debootstrap and
# brought in with `docker import`:
#   builder  bookworm minbase with gcc and libc6-dev (ring and Lua's C sources need a C
#            compiler), and this machine's Rust toolchain (rustc --print sysroot, which must be
#            the Dockerfile's RUST_VERSION) as rust's images lay it out: CARGO_HOME
#            /usr/local/cargo, cargo and rustc on PATH;
#   runtime  what distroless/cc has: glibc, libgcc, CA certificates, /etc/passwd with root and
#            nonroot (65532), /tmp; no shell, no package manager.
# Their tags carry a hash of their inputs; images with those tags are reused. Cold: ~2 min
# (debootstrap ~1.5 min, the toolchain copy and the imports ~30 s).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=hack/cluster/lib.sh
source hack/cluster/lib.sh
# shellcheck source=hack/lib/docker.sh
source hack/lib/docker.sh

need_root
docker_engine_up
SUITE=bookworm
PACKAGES=gcc,libc6-dev,ca-certificates
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
sysroot=$(rustc --print sysroot)
have_version=$(rustc --version | cut -d' ' -f2)
[[ $have_version == "$rust_version" || $have_version == "$rust_version".* ]] \
  || die "the Dockerfile builds with Rust $rust_version and this machine has $have_version"

hash=$( { echo "$SUITE $PACKAGES $have_version"; sha256sum hack/images/docker-bases.sh | cut -d' ' -f1; } | sha256sum | cut -c1-12)
BUILDER=localhost/redispair/rust:$have_version-$SUITE-$hash
RUNTIME=localhost/redispair/cc-debian12:nonroot-$hash

if ! docker image inspect "$BUILDER" >/dev/null 2>&1 || ! docker image inspect "$RUNTIME" >/dev/null 2>&1; then
  work=$(mktemp -d /var/tmp/redispair-docker-bases.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  command -v debootstrap >/dev/null || apt_install debootstrap
  timed "debootstrap $SUITE for the Dockerfile's bases" "~1.5 min" \
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" http://deb.debian.org/debian
  cp "$work/root/etc/ssl/certs/ca-certificates.crt" "$work/debian-ca-certificates.crt"
  rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/* \
    "$work"/root/usr/share/doc/* "$work"/root/usr/share/man/*

  # builder: the toolchain without its documentation, where rust's images put it; and this
  # machine's CA bundle: the build fetches crates through this machine's network (--network
  # host), which may pass a TLS-inspecting proxy whose CA only this machine's store holds.
  cp /etc/ssl/certs/ca-certificates.crt "$work/root/etc/ssl/certs/ca-certificates.crt"
  tc=$work/root/usr/local/rustup/toolchains/$have_version-x86_64-unknown-linux-gnu
  mkdir -p "$tc" "$work/root/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$tc" -x
  for b in cargo rustc rustdoc; do ln -s "../../rustup/toolchains/$have_version-x86_64-unknown-linux-gnu/bin/$b" "$work/root/usr/local/cargo/bin/$b"; done
  tar --numeric-owner -C "$work/root" -c . | docker import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'WORKDIR /' - "$BUILDER" >/dev/null
  log "imported $BUILDER"

  # runtime: distroless/cc's contents, taken from the same tree.
  r=$work/runtime
  mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/lib64" "$r/usr/lib/x86_64-linux-gnu"
  chmod 1777 "$r/tmp"
  cp -a "$work/root/lib64/ld-linux-x86-64.so.2" "$r/lib64/"
  for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1; do
    cp -L "$work/root/usr/lib/x86_64-linux-gnu/$lib" "$r/usr/lib/x86_64-linux-gnu/"
  done
  ln -s usr/lib "$r/lib"
  cp "$work/debian-ca-certificates.crt" "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  chown 65532:65532 "$r/home/nonroot"
  tar --numeric-owner -C "$r" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot' - "$RUNTIME" >/dev/null
  log "imported $RUNTIME"
fi
echo "--build-arg=BUILDER_IMAGE=$BUILDER"
echo "--build-arg=RUNTIME_IMAGE=$RUNTIME"
