#!/usr/bin/env bash
# The README's commands work as typed: every script the README names (scripts/NAME...) is
# committed with its run bit (git mode 100755), and so is every script under scripts/ and .ci/run.
# A file without it fails with "Permission denied" for a newcomer even though `bash FILE` works.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail=0
named=$(grep -oE '(^|[` (])scripts/[A-Za-z0-9_./-]+\.(sh|py)' README.md | sed -E 's/^[` (]//' | sort -u)
[[ -n $named ]] || { echo "FAIL: the README names no script"; exit 1; }
first_two=$(sed -n '/^```sh$/,/^```$/p' README.md | sed -n '2,3p' | awk '{print $1}')
for cmd in $first_two; do
  [[ $cmd == scripts/* ]] || { echo "FAIL: README command '$cmd' is not a script of ours"; fail=1; }
done
all=$( (echo "$named"; echo "$first_two"; git ls-files 'scripts/*.sh' 'scripts/*/*.py' .ci/run) | sort -u)
for f in $all; do
  mode=$(git ls-files -s -- "$f" | awk '{print $1}')
  if [[ -z $mode ]]; then
    echo "FAIL: $f is named but not committed"
    fail=1
  elif [[ $mode != 100755 ]]; then
    echo "FAIL: $f is committed as $mode, not 100755 (git update-index --chmod=+x $f)"
    fail=1
  else
    echo "ok: $f 100755"
  fi
done
[[ $fail -eq 0 ]] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
