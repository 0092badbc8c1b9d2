#!/usr/bin/env bash
# ACL lookup benchmark: builds tests/bench/acl_bench (in build/, as scripts/test.sh) and runs it: an
# ACL of 100,000 rules (domains, IPv4/IPv6 CIDRs, 100 regexes) parsed, then single lookups timed.
# Prints a Markdown table (load time, RSS, median and p99 lookup ns, RE2::Set against a PCRE2
# JIT alternation) for the "ACL lookups" part of docs/BENCHMARKS.md. About 30 s plus the build.
#
# Usage: scripts/bench_acl.sh [--rules N] [--lookups N] [--runs N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=3
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    --runs) runs=$2; shift 2 ;;
    --rules | --lookups) args+=("$1" "$2"); shift 2 ;;
    *) echo "bench_acl.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
build=$root/build
source "$root/scripts/bench/build_target.sh"
build_target "$root" acl_bench
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $runs runs" >&2
for ((i = 1; i <= runs; i++)); do
  echo "run $i:"
  "$build/tests/bench/acl_bench" --markdown "${args[@]}"
  echo
done
