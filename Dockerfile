# The RedisPair image: the operator, the engine it runs in every pair's pods, and the kubectl
# plugin, in one image so their versions move together.
#
#   docker build -t ghcr.io/redispair/redispair:dev .
#
# The base images are build arguments: the public ones by default; without a registry,
# hack/images/docker-bases.sh makes stand-ins locally and prints the --build-arg flags for them
# (hack/kind/up.sh passes them). No `# syntax=` line: the Dockerfile frontend built into
# Docker 23+ has everything used here (RUN --mount), and a builder without a registry could
# not fetch another.
#
# Machines without a Docker engine build the same layout with hack/images/build-image.sh
# (tests/packaging.rs checks that the two, the Helm chart and src/api/constants.rs agree on
# binary paths, user and entrypoint).
#
# Binaries already built elsewhere (CI's kind stage: the dev-profile build `cargo test` made,
# hack/kind/up.sh --binaries DIR) go into the same runtime stage without the release build:
#
#   docker build --build-arg BINARIES=prebuilt --build-context prebuilt-bin=DIR .
#
# DIR holds redispair-operator, redispair-engine and kubectl-redispair. Only the stages the
# chosen BINARIES needs are built: the default never reads DIR, prebuilt never runs cargo.

ARG RUST_VERSION=1.95
ARG BUILDER_IMAGE=docker.io/library/rust:${RUST_VERSION}-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# builder (cargo build --release here) or prebuilt (the build context prebuilt-bin).
ARG BINARIES=builder

# --- builder ----------------------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
# Manifests first: the dependency download layer is reused while only sources change.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# --locked: the image is built from exactly the dependency versions CI tested.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      --bin redispair-operator --bin redispair-engine --bin kubectl-redispair \
 && install -D -m 0755 target/release/redispair-operator /out/usr/local/bin/redispair-operator \
 && install -D -m 0755 target/release/redispair-engine /out/usr/local/bin/redispair-engine \
 && install -D -m 0755 target/release/kubectl-redispair /out/usr/local/bin/kubectl-redispair \
 && install -d -m 0755 /out/data

# --- prebuilt: the same /out layout from binaries built outside ------------------------------
FROM scratch AS prebuilt
COPY --from=prebuilt-bin redispair-operator redispair-engine kubectl-redispair /out/usr/local/bin/
# WORKDIR makes the directory: a scratch stage has no shell to run install -d.
WORKDIR /out/data

# --- binaries: the stage BINARIES names ---------------------------------------------------------
FROM ${BINARIES} AS binaries

# --- runtime ----------------------------------------------------------------------------------
# distroless cc: glibc, libgcc, CA certificates, /etc/passwd with nonroot (65532); no shell.
FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="redispair" \
      org.opencontainers.image.description="RedisPair: a Redis-compatible engine and a Kubernetes operator for master/replica pairs" \
      org.opencontainers.image.source="https://github.com/redispair/redispair" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=binaries /out/usr/local/bin/ /usr/local/bin/
# The engine's data directory (a volume in the pods) belongs to the user the image runs as.
COPY --from=binaries --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/usr/local/bin/redispair-operator"]
