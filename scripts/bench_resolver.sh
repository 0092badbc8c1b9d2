#!/usr/bin/env bash
# CPU per target lookup: getaddrinfo in libuv's thread pool against c-ares on the loop (README,
# "DNS"), both reading the system's resolver configuration. Runs inside private mount and network
# namespaces (needs root): a resolv.conf naming 127.0.0.1 is bound over /etc/resolv.conf there,
# and tests/scripts/dns_responder.py answers every name on 127.0.0.1:53. Nothing outside the
# namespaces changes; they end with the script.
#
# Usage: scripts/bench_resolver.sh [BUILD_DIR [LOOKUPS]]   (default build, 4000)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
lookups=${2:-4000}
if [[ $(id -u) -ne 0 ]]; then
  echo "bench_resolver.sh: needs root (private mount and network namespaces)" >&2
  exit 1
fi
cmake --build "$build" --target resolver_bench >/dev/null
bench=$(realpath "$build/tests/bench/resolver_bench")
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-resolver.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\nsearch invalid\n' >"$work/resolv.conf"
unshare -m -n --propagation private bash -c '
  set -euo pipefail
  work=$1 bench=$2 lookups=$3
  ip link set lo up
  mount --bind "$work/resolv.conf" /etc/resolv.conf
  python3 tests/scripts/dns_responder.py "$work/port" --port 53 --any 127.0.0.2 &
  responder=$!
  for ((i = 0; i < 100; i++)); do [[ -s "$work/port" ]] && break; sleep 0.05; done
  for concurrent in 1 64; do
    "$bench" getaddrinfo "$lookups" "$concurrent" bench.test
    "$bench" ares "$lookups" "$concurrent" bench.test
  done
  kill "$responder"
' bench "$work" "$bench" "$lookups"
