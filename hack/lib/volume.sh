# shellcheck shell=bash
# A node's volumes made full and freed again: the torture test's volume-full fault (issue 14),
# shared by hack/cluster/fault.sh and hack/kind/fault.sh. Sourced, never run. Both providers put
# each node's local-path volumes on a tmpfs of its own, so filling it fills that node's volumes
# only, never the host's disk; the functions refuse a directory that is not a mount point.

# volume_fill DIR LABEL: fill DIR's filesystem until writes there fail with ENOSPC.
volume_fill() {
  local vol=$1 label=$2 avail
  mountpoint -q "$vol" || die "$label's volumes ($vol) are not on a filesystem of their own: filling them would fill the host's disk"
  # All the free space but 1 MiB at once (fallocate writes nothing: fast whatever the size;
  # the margin keeps it from failing when an engine writes meanwhile), then the rest 4 KiB at
  # a time (dd stops at ENOSPC, which is the point).
  avail=$(df --output=avail -B1 "$vol" | tail -n1)
  if (( avail > 1048576 )); then
    fallocate -l $(( avail - 1048576 )) "$vol/.redispair-fill" 2>/dev/null || true
  fi
  dd if=/dev/zero of="$vol/.redispair-fill-rest" bs=4096 2>/dev/null || true
  log "$label: volumes full ($(df --output=avail -B1 "$vol" | tail -n1) bytes left)"
}

# volume_free DIR LABEL: remove what volume_fill wrote.
volume_free() {
  local vol=$1 label=$2
  rm -f "$vol/.redispair-fill" "$vol/.redispair-fill-rest"
  log "$label: volumes freed ($(df --output=avail -h "$vol" | tail -n1 | tr -d ' ') available)"
}
