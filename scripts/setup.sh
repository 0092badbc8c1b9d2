#!/usr/bin/env bash
# Installs the Debian packages shadowsocks-uv needs to build, test and demo. Quiet and quick when
# everything is already there; otherwise runs apt-get update + install (as root, or through sudo).
# It installs what is missing and nothing else: it never stops, disables or kills a service or a
# process, and the daemons of the packages it installs are not started (see below).
#
# Usage: scripts/setup.sh
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libssl-dev libsodium-dev librust-blake3-dev nlohmann-json3-dev libcxxopts-dev catch2
  # ACL regexes (RE2::Set); PCRE2 only for the ACL benchmark's comparison
  libre2-dev libpcre2-dev
  libqrencode-dev
  # SIP008 online config: HTTPS fetches through libcurl's multi socket API (relay/https_fetch.cpp);
  # openssl makes the test's CA and certificate (tests/scripts/online_config_test.sh)
  libcurl4-openssl-dev openssl
  # ss-server's nameserver / -d: lookups through c-ares on the workers' loops (relay/net/resolver.cpp)
  libc-ares-dev
  shadowsocks-libev curl socat b3sum iperf3 python3 clang libclang-rt-14-dev llvm
  # ss-redir tests: REDIRECT and TPROXY rules inside their own network namespaces
  iptables
  # packaging: cpack's .deb (dpkg-shlibdeps), man page checks, systemd-analyze for the units
  dpkg-dev groff-base man-db systemd
  # real clients through ss-local's mixed port (tests/scripts/real_clients_test.sh)
  proxychains4 chromium iproute2
  # SIP003 plugins (tests/scripts/plugins_test.sh): obfs-local/obfs-server, ss-v2ray-plugin
  simple-obfs shadowsocks-v2ray-plugin procps
  # the metrics endpoint scraped by a real Prometheus server, and promtool (metrics_prometheus_test)
  prometheus
  # the status page's QR codes checked against the qrencode CLI's, and decoded from its
  # screenshot by zbarimg (tests/scripts/api_test.sh)
  qrencode zbar-tools
  # a fleet sharing its users through Redis (server/fleet/): hiredis, and redis-server/redis-cli
  # for its test (tests/scripts/fleet_redis_test.sh starts its own; the daemon is not started)
  libhiredis-dev redis-server redis-tools
)

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  as_root=()
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done
# A local web server for manual tests and benchmarks: any of Debian's nginx flavours will do.
if ! is_installed nginx-light && ! is_installed nginx && ! is_installed nginx-core; then
  missing+=(nginx-light)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 && ${#as_root[@]} -eq 0 ]]; then
  echo "setup.sh: missing packages: ${missing[*]}; run as root or install sudo" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}"

# Some of these packages ship a daemon (shadowsocks-libev's ss-server on 8388, nginx on 80) that
# Debian starts on install. We want their programs, not their services: while our apt-get runs, a
# policy-rc.d (the hook invoke-rc.d and deb-systemd-invoke ask) says "do not start". Only if the
# machine has none of its own, and it is removed again afterwards. Nothing already running is
# stopped, disabled or touched.
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
  if [[ $made_policy -eq 1 ]]; then "${as_root[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# Written by shadowsocks-uv scripts/setup.sh for the length of one apt-get install.\nexit 101\n' |
    "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  made_policy=1
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
