#!/usr/bin/env bash
# ShellCheck over every shell script of the project: hack/**/*.sh, the scripts in hack/ without
# an extension that start with a bash shebang, and .ci/run. Sources are followed (-x) from the
# repository root, as the scripts' `# shellcheck source=` lines expect. A finding fails the run;
# where the code is right, a `# shellcheck disable=SCxxxx  # reason` on that line says why.
#
#   hack/lint-shell.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null 2>&1 || { echo "shellcheck missing: hack/install-test-deps.sh installs it" >&2; exit 1; }

files=()
while IFS= read -r -d '' f; do
  case $f in
    *.sh) files+=("$f") ;;
    */*.*) ;;
    *) head -n1 "$f" | grep -qE '^#!.*\bbash\b' && files+=("$f") ;;
  esac
done < <(find hack -type f -print0 | sort -z)
[[ -f .ci/run ]] && files+=(.ci/run)
shellcheck -x "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
