#!/usr/bin/env bash
# The SSRF guard refuses this host's own addresses (issue 16, item 2), end to end, in a network
# namespace of its own. The namespace's "host" addresses, 11.22.33.44 and 2a00:1122::44, sit on
# its lo (this kernel has no dummy links); they are in no special-purpose range, so only the
# interface rule can refuse them. A target (TCP and UDP, every address, one port) logs each
# connection and datagram it gets.
#
#   ss-local :1080 -> ss-server :8388 (the guard on, the default)            -> must be refused
#   ss-local :1081 -> ss-server :8389 (--allow-private-targets, the control) -> must reach it
#
# Cases, TCP (curl through SOCKS5) and UDP (SOCKS5 UDP ASSOCIATE), IPv4 and IPv6: the control
# reaches the target; the guarded pair is refused and the target logs nothing (no connect(), no
# sendmsg()); an address added to lo after start is refused once the guard's 10 s refresh period
# has passed.
# Nothing here touches the root namespace and nothing routes out: the namespace has only lo. The
# namespace and every process are removed on exit, failure included.
#
# Usage: host_guard_netns_test.sh [BIN_DIR]   (default: build/bin). Needs root; exits 77 (CTest's
# "skipped") with the reason when it cannot run here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../../build/bin}" 2>/dev/null && pwd) || bin=${1:-}

skip() {
  echo "SKIP: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
for tool in ip curl python3; do
  command -v "$tool" >/dev/null 2>&1 || skip "no $tool (scripts/setup.sh installs it)"
done
for b in ss-local ss-server; do
  [[ -x $bin/$b ]] || skip "no $bin/$b: build first"
done

ns=ssguard-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ss-host-guard.XXXXXX")
pids=()
# shellcheck source=tests/scripts/netns_lib.sh
source "$here/netns_lib.sh"
# pass/fail and their counts
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
cleanup() {
  netns_cleanup
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_ns() { ip netns exec "$ns" "$@"; }
netns_add "$ns" || skip "cannot create a network namespace (ip netns add)"
in_ns ip addr add 11.22.33.44/32 dev lo
in_ns ip -6 addr add 2a00:1122::44/128 dev lo nodad

# start NAME PORT PROGRAM ARGS...: in the namespace, in the background (netns_run, its log
# $tmp/NAME.log); waits for TCP PORT, or fails the whole test with the log.
start() {
  local name=$1 port=$2
  shift 2
  netns_run "$ns" "$name" "$@"
  netns_wait_tcp "$ns" "$port" "$pid" && return 0
  echo "FAIL: $name does not listen on $port; its log:"
  cat "$tmp/$name.log"
  echo "0 passed, 1 failed"
  exit 1
}

# The target: one line in targets.log per TCP connection and per UDP datagram.
cat >"$tmp/target.py" <<'PY'
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def tcp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 7000)); s.listen(16)
    while True:
        c, _ = s.accept()
        log.write("tcp %s\n" % c.getsockname()[0])
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        c.close()
def udp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 7000))
    while True:
        data, peer = s.recvfrom(2048)
        log.write("udp\n")
        s.sendto(data, peer)
threading.Thread(target=udp, daemon=True).start()
tcp()
PY

# SOCKS5 UDP ASSOCIATE through PROXY_PORT; sends "ping" to HOST:7000; prints the reply or "none".
cat >"$tmp/udp_client.py" <<'PY'
import ipaddress, socket, struct, sys
port, host = int(sys.argv[1]), sys.argv[2]
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(b"\x05\x01\x00"); assert c.recv(2) == b"\x05\x00"
c.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
r = c.recv(10); assert r[1] == 0, r
relay = (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0])
ip = ipaddress.ip_address(host)
atyp = b"\x01" if ip.version == 4 else b"\x04"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
u.sendto(b"\x00\x00\x00" + atyp + ip.packed + struct.pack("!H", 7000) + b"ping", relay)
try:
    data, _ = u.recvfrom(2048)
    print(data[-4:].decode(errors="replace"))
except socket.timeout:
    print("none")
PY

netns_run "$ns" target python3 "$tmp/target.py" "$tmp/targets.log"
common=(-k "host guard test" -m aes-128-gcm -u)
start server 8388 "$bin/ss-server" -s 127.0.0.1 -p 8388 "${common[@]}"
start server-open 8389 "$bin/ss-server" -s 127.0.0.1 -p 8389 "${common[@]}" \
  --allow-private-targets
start local 1080 "$bin/ss-local" -s 127.0.0.1 -p 8388 -l 1080 "${common[@]}"
start local-open 1081 "$bin/ss-local" -s 127.0.0.1 -p 8389 -l 1081 "${common[@]}"
netns_wait_tcp "$ns" 7000 || { fail "the target does not listen on 7000"; }
sleep 0.2
: >"$tmp/targets.log"

fetch() { in_ns curl -s --max-time 5 --socks5-hostname "127.0.0.1:$1" "http://$2:7000/"; }
hits() { wc -l <"$tmp/targets.log"; }

# check ADDRESS URL_HOST: the control reaches ADDRESS, the guard refuses it, TCP and UDP.
check() {
  local addr=$1 url=$2 before got
  before=$(hits)
  got=$(fetch 1081 "$url")
  if [[ $got == hello && $(hits) -gt $before ]]; then
    pass "control: $addr reached over TCP with --allow-private-targets"
  else
    fail "control: $addr over TCP with --allow-private-targets got '$got'"
  fi
  before=$(hits)
  got=$(fetch 1080 "$url")
  sleep 0.3
  if [[ -z $got && $(hits) -eq $before ]]; then
    pass "guard: $addr (this host's) refused over TCP, no connection made"
  else
    fail "guard: $addr over TCP got '$got', target log grew $before -> $(hits)"
  fi
  before=$(hits)
  got=$(in_ns python3 "$tmp/udp_client.py" 1081 "$addr")
  if [[ $got == ping && $(hits) -gt $before ]]; then
    pass "control: $addr reached over UDP with --allow-private-targets"
  else
    fail "control: $addr over UDP with --allow-private-targets got '$got'"
  fi
  before=$(hits)
  got=$(in_ns python3 "$tmp/udp_client.py" 1080 "$addr")
  sleep 0.3
  if [[ $got == none && $(hits) -eq $before ]]; then
    pass "guard: $addr (this host's) refused over UDP, no datagram sent"
  else
    fail "guard: $addr over UDP got '$got', target log grew $before -> $(hits)"
  fi
}

check 11.22.33.44 11.22.33.44
check 2a00:1122::44 "[2a00:1122::44]"

# An address added after start: refused once the refresh period (10 s) has passed.
in_ns ip addr add 11.22.33.55/32 dev lo
sleep 11
check 11.22.33.55 11.22.33.55

echo "$passed passed, $failed failed"
if ((failed > 0)); then
  for f in server local; do
    echo "--- $f.log"
    cat "$tmp/$f.log"
  done
  exit 1
fi
