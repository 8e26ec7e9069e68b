# shellcheck shell=bash
# Checks the scripts in hack/ make before any long step, each failing with one message that
# says what to do, and the re-run through sudo. Sourced after hack/lib/log.sh, never run.

# version_ge A B: true when version A >= version B (1.26.0 style; "go" prefix allowed).
version_ge() {
  local a=${1#go} b=${2#go}
  [[ $(printf '%s\n%s\n' "$b" "$a" | sort -V | head -n1) == "$b" ]]
}

# run_as_root SCRIPT ARGS...: return when already root; otherwise re-run SCRIPT through sudo,
# or stop with a message when there is no sudo. The caller's PATH comes along (so cargo, go
# and rustup's toolchain are found as root), and so do the variables the scripts read
# (REDISPAIR_*, E2E_*, CARGO_*, RUSTUP_*, GO*, CI, KUBECONFIG, TMPDIR). HOME becomes root's, so
# root's caches are used (~root/.cache/redispair, ~root/.cargo); CARGO_TARGET_DIR defaults to
# ~root/.cache/redispair/cargo-target so the caller's target/ gets no root-owned files.
run_as_root() {
  local script=$1; shift
  if [[ $(id -u) == 0 ]]; then
    PATH=$(with_sbin "$PATH"); export PATH
    return 0
  fi
  local name=${script#"${REPO_ROOT:-}"/}
  command -v sudo >/dev/null 2>&1 \
    || die "$name needs root (network namespaces, bridges, cgroups, apt-get) and there is no sudo: run it as root (su -c '$name')"
  local keep=() v
  for v in $(compgen -e); do
    case $v in
      REDISPAIR_*|E2E_*|CARGO_*|RUSTUP_*|GO*|CI|KUBECONFIG|TMPDIR) keep+=("$v=${!v}") ;;
    esac
  done
  # rustup's proxies (~/.cargo/bin/cargo) find their toolchain through RUSTUP_HOME.
  [[ -z ${RUSTUP_HOME:-} && -d $HOME/.rustup ]] && keep+=("RUSTUP_HOME=$HOME/.rustup")
  [[ -z ${CARGO_TARGET_DIR:-} ]] && keep+=("CARGO_TARGET_DIR=$(getent passwd root | cut -d: -f6)/.cache/redispair/cargo-target")
  log "$name needs root (network namespaces, bridges, cgroups, apt-get): re-running it through sudo"
  exec sudo env PATH="$(with_sbin "$PATH")" "${keep[@]}" bash "$script" "$@"
}

# with_sbin PATH: PATH with the system directories root's tools live in (sysctl, ip, iptables,
# modprobe) appended when missing. A user's PATH has no /usr/sbin or /sbin on Debian, and the
# re-run through sudo keeps the caller's PATH (for cargo and go): the first `hack/demo.sh`
# started by a sudo user that had to start the cluster stopped at `exec of "sysctl" failed`
# (issue 19's run of 2026-12-07). Root with a trimmed PATH (`env -i`, `su` without `-`) is
# given the same.
with_sbin() {
  local p=$1 d
  for d in /usr/local/sbin /usr/sbin /sbin; do
    [[ ":$p:" == *":$d:"* ]] || p+=":$d"
  done
  printf '%s' "$p"
}

# need_commands CMD...: every CMD on PATH, or one message naming the missing ones.
need_commands() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  (( ${#missing[@]} == 0 )) && return 0
  local hint=
  [[ " ${missing[*]} " == *" cargo "* ]] && hint=" (Rust's cargo: install it with rustup, https://rustup.rs)"
  die "missing on PATH: ${missing[*]}$hint"
}

# need_go MIN: Go at $GO (from hack/cluster/lib.sh), at least version MIN, or one message
# saying what to install. The cluster's Kubernetes and helm are built from source with it.
need_go() {
  local min=$1 have
  [[ -x ${GO:-} ]] || die "Go $min or newer is needed to build the local cluster's Kubernetes and helm, and there is none at $GO (looked on PATH, then /usr/local/go/bin/go; GO=/path/to/go sets it): install Go $min+ from https://go.dev/dl (unpack to /usr/local/go)"
  have=$("$GO" env GOVERSION 2>/dev/null) || die "$GO does not run ('$GO env GOVERSION' failed)"
  version_ge "$have" "$min" \
    || die "Go $min or newer is needed (the go.mod of k8s.io/kubernetes $K8S_VERSION, CoreDNS $COREDNS_VERSION and helm $HELM_VERSION say so); $GO is $have: install Go $min+ from https://go.dev/dl, or point GO=/path/to/go at one"
}

# wait_for_apt: another apt-get or dpkg (a parallel job, unattended upgrades) holds the package
# locks; apt-get update fails at once on its lists lock (DPkg::Lock::Timeout covers only dpkg's),
# so wait until none runs, for at most 10 minutes.
wait_for_apt() {
  local deadline=$((SECONDS + 600))
  while pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null; do
    (( SECONDS < deadline )) || { echo "another apt-get/dpkg has held the package locks for 10 min" >&2; return 1; }
    sleep 2
  done
}
