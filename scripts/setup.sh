#!/usr/bin/env bash
# Installs the Debian packages shadowsocks-uv needs to build, test and demo. Quiet and quick when
# everything is already there; otherwise runs apt-get update + install (as root, or through sudo).
# Also makes sure Debian's shadowsocks-libev service is not running: it listens on 8388, and the
# tests and the demo start their own servers.
#
# Usage: scripts/setup.sh
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libssl-dev libsodium-dev librust-blake3-dev nlohmann-json3-dev libcxxopts-dev catch2
  shadowsocks-libev curl socat b3sum iperf3 python3 clang libclang-rt-14-dev llvm
  # packaging: cpack's .deb (dpkg-shlibdeps), man page checks, systemd-analyze for the units
  dpkg-dev groff-base man-db systemd
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

installed_libev=0
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 && ${#as_root[@]} -eq 0 ]]; then
    echo "setup.sh: missing packages: ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  for p in "${missing[@]}"; do [[ $p == shadowsocks-libev ]] && installed_libev=1; done
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's shadowsocks-libev package may start ss-server (from /etc/shadowsocks-libev) on 8388 when
# it is installed, and at boot. Stop it if it runs, and keep it from starting again.
libev_service_running() {
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl is-active --quiet shadowsocks-libev.service 2>/dev/null && return 0
  fi
  [[ -x /etc/init.d/shadowsocks-libev ]] && command -v service >/dev/null 2>&1 &&
    service shadowsocks-libev status >/dev/null 2>&1
}

if libev_service_running || [[ $installed_libev -eq 1 ]]; then
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${as_root[@]}" systemctl disable --now shadowsocks-libev.service >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/shadowsocks-libev ]]; then
    if libev_service_running; then
      echo "setup.sh: stopping the shadowsocks-libev system service (it listens on 8388)"
      "${as_root[@]}" service shadowsocks-libev stop >/dev/null 2>&1 ||
        "${as_root[@]}" /etc/init.d/shadowsocks-libev stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
      "${as_root[@]}" update-rc.d shadowsocks-libev disable >/dev/null 2>&1 || true
    fi
  fi
  if libev_service_running; then
    echo "setup.sh: could not stop the shadowsocks-libev service" >&2
    exit 1
  fi
fi
