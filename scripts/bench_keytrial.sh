#!/usr/bin/env bash
# Key-trial benchmark: builds tests/bench/keytrial_bench (in build/, as scripts/test.sh) and runs it:
# the CPU time per new connection to find a classic user's key among 1, 100 and 1,000 users, for a
# client IP whose key is cached and for one whose key is not, through the real server opener.
# Prints Markdown tables for the "Key trial" part of docs/BENCHMARKS.md. About 10 s plus the build.
#
# Usage: scripts/bench_keytrial.sh [--ops N] [--methods "m1 m2 ..."]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ops=20000
methods="chacha20-ietf-poly1305 aes-128-gcm aes-256-gcm"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    --ops) ops=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    *) echo "bench_keytrial.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
build=$root/build
source "$root/scripts/bench/build_target.sh"
build_target "$root" keytrial_bench
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $ops operations per case" >&2
for m in $methods; do
  "$build/tests/bench/keytrial_bench" --markdown --ops "$ops" --method "$m"
  echo
done
