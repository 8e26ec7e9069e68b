#!/usr/bin/env bash
# Keeps the module split by dependency weight honest: the failover decision is pure (no kube,
# tokio or redis), the engine never touches Kubernetes.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# `rs_lines PATH...`: the Rust sources under PATH as grep -rn prints them (path:line:text), but a
# `use` item written over several lines (a braced list, one name a line, as rustfmt writes long
# ones) joined onto its first line, so a forbidden import cannot hide on a line of its own.
rs_lines() {
  # shellcheck disable=SC2016  # a Perl program: its $ variables are Perl's, not the shell's
  find "$@" -name '*.rs' -type f -print0 | sort -z | xargs -0 -r perl -ne '
    if (defined $acc) {
      chomp; s/^\s+//; $acc .= " $_";
      if (/;/) { print "$ARGV:$start:$acc\n"; undef $acc }
    } elsif (/^\s*(pub(\([^)]*\))?\s+)?use\s/ && !/;/) {
      chomp; $acc = $_; $start = $.;
    } else {
      print "$ARGV:$.:$_";
    }
    if (eof) { print "$ARGV:$start:$acc\n" if defined $acc; undef $acc; close ARGV }'
}
check() { # dir, forbidden-regex, why
  [ -e "$1" ] || return 0
  if rs_lines "$1" | grep -E "$2"; then
    echo "boundary violated: $1 must not use $3" >&2
    fail=1
  fi
}
check src/failover '(^|[^a-z_])(kube|k8s_openapi|tokio|redis)::' 'kube, k8s_openapi, tokio or redis'
check src/engine '(^|[^a-z_])(kube|k8s_openapi)::' 'kube or k8s_openapi'
# The engine's layers look down only (docs/architecture.md, "Layers"):
#   protocol → storage → persistence → replication → the command layer (cmd/, state/, client,
#   scripting, acl, notify, tracking, eviction, info) → the server (server/, core, metrics).
# `engine_import NAMES` matches an import of one of the engine's modules NAMES, written as a
# path (crate::engine::x, super::super::x) or anywhere inside a braced group (nested groups and
# groups over several lines included: rs_lines joins a `use` onto one line, and `[^;]*` runs to
# the end of the item).
engine_import() {
  printf '%s' "(crate::engine::|super::super::)($1)\\b|(crate::engine::|super::super::)\\{[^;]*\\b($1)\\b"
}
upper='cmd|state|server|core|client|scripting|acl|notify|tracking|eviction|info|metrics|archive|admin'
# protocol is the bottom: RESP and commands as RESP, nothing of the engine's.
check src/engine/protocol "$(engine_import "storage|persistence|replication|$upper")" 'anything above the protocol'
# storage (values, databases, RDB) never reaches up: not into the command layer or the server
# (its number parsers live in storage/number.rs), nor into persistence or replication (commands
# are encoded by protocol::commands).
check src/engine/storage "$(engine_import "persistence|replication|$upper")" 'persistence, replication, the command layer or the server (layers look down only)'
# Edge 1 of issue #15: replay does not go through the command layer. Persistence reads records
# and hands them up (persistence::recovery::Replayer, snapshot::load's callback); state::replay
# applies them. It never sees the engine's state, a client or a command.
check src/engine/persistence "$(engine_import "replication|$upper")" 'replication, the command layer or the server: it hands decoded records up (recovery::Replayer)'
# Edge 2: replication's rules work on its own state (ReplState), not on EngineState; the tasks
# that drive it (server::master, server::replica) sit beside the server.
check src/engine/replication "$(engine_import "$upper")" 'the command layer or the server: its rules take ReplState, its drivers live in server/'
# Edge 3: Engine and now_ms live in core and clock. Below the server nothing uses the server,
# and nothing in the command layer holds the Engine (only the tasks above it do).
for d in src/engine/cmd src/engine/state src/engine/archive src/engine/scripting src/engine/acl \
  src/engine/client.rs src/engine/eviction.rs src/engine/notify.rs src/engine/tracking.rs \
  src/engine/info.rs src/engine/config.rs src/engine/clock.rs src/engine/core.rs; do
  if rs_lines "$d" | grep -E "$(engine_import server)"; then
    echo "boundary violated: $d must not use the server (Engine and now_ms are in core and clock)" >&2
    fail=1
  fi
done
for d in src/engine/cmd src/engine/state src/engine/archive src/engine/scripting src/engine/acl \
  src/engine/client.rs src/engine/eviction.rs src/engine/notify.rs src/engine/tracking.rs \
  src/engine/info.rs src/engine/config.rs; do
  if rs_lines "$d" | grep -E "$(engine_import core)"; then
    echo "boundary violated: $d must not hold the Engine (core): the command layer works on the locked state" >&2
    fail=1
  fi
done
# Edge 4: every command table is under cmd/ (the registry imports nothing from below for them).
if grep -rn 'CommandSpec::new(' src/engine --include='*.rs' | grep -v '^src/engine/cmd/'; then
  echo "boundary violated: command tables belong under src/engine/cmd/" >&2
  fail=1
fi
check src/api '(^|[^a-z_])(tokio|redis)::|kube::(Client|Api)' 'a client or tokio'
check src/operator '(crate|redispair)::engine' 'the engine (it talks to engines over RESP only)'
# kubectl-redispair: only src/plugin/client.rs talks to the API; the rest is pure.
for f in src/plugin/*.rs; do
  [[ $f == src/plugin/client.rs || $f == src/plugin/mod.rs ]] && continue
  if grep -nE '(^|[^a-z_])tokio::|kube::(Client|Api|api::)|async fn' "$f"; then
    echo "boundary violated: $f must stay pure (API I/O belongs in src/plugin/client.rs)" >&2
    fail=1
  fi
done
exit $fail
