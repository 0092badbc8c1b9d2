#!/usr/bin/env bash
# ss-redir end to end, in two network namespaces of its own: a client and a router joined by a
# veth pair, with the target (a web server) on addresses of its own on the router's loopback (a
# dummy interface would do, but kernels without the dummy driver exist; lo always does). The
# router runs ss-server and ss-redir; its iptables send the client's connections to the target to
# ss-redir, by REDIRECT (nat) or by TPROXY (mangle, with a policy route for the mark). The client
# fetches a file from the target address with curl and checks it byte for byte (sha256), and the
# web server's log shows the request came from the router side (ss-server), not from the client.
#
#   client ns                     router ns
#   veth 10.200.0.2/30  <---->    veth 10.200.0.1/30        ss-redir, ss-server on 127.0.0.1
#        fd00:200::2/64                fd00:200::1/64
#                                 lo 10.201.0.1/32, fd00:201::1/128: the web server
#                                 veth 10.202.0.1/30  <---->  veth 10.202.0.2/30   target ns
#                                      fd00:202::1/64              fd00:202::2/64
#                                                             lo 10.203.0.1/32, fd00:203::1/128:
#                                                                the UDP echo server
#
# UDP through TPROXY: the client's datagrams to the UDP target are delivered to ss-redir -u,
# which relays them through ss-server and sends each reply back from the target's address. The
# UDP target lives in a third namespace because those replies leave from a socket bound
# (transparently) to its address, which must not be one of the router's own sockets' addresses.
# The client sends datagrams of several sizes from two sockets and checks each echo byte for
# byte and that it came from the target's address and port; the echo server logs where each
# datagram came from, which must be ss-server's side, not the client.
#
# Cases: ours x ours, REDIRECT and TPROXY, TCP and UDP, IPv4 and IPv6, and IPv4 clients on a
# dual-stack listener; our ss-redir -> libev's ss-server, libev's ss-redir -> our ss-server; a
# connection made straight to ss-redir's port (REDIRECT or TPROXY mode) is closed; with ss-server
# stopped the fetch fails.
# An IPv6 case whose ip6tables rule the kernel refuses (no IPv6 NAT or TPROXY) is reported as
# skipped; an IPv4 one fails.
# Nothing here touches the root namespace's interfaces, routes or iptables, and nothing routes
# out of the machine: the namespaces' only link is the veth pair between them. Both namespaces
# and every process are removed on exit, failure included.
#
# Usage: redir_netns_test.sh [BIN_DIR]   (default: build/bin). Needs root; exits 77 (CTest's
# "skipped") with the reason when it cannot run here.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../../build/bin}" 2>/dev/null && pwd) || bin=${1:-}
libev_redir=/usr/bin/ss-redir
libev_server=/usr/bin/ss-server

skip() {
  echo "SKIP: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, iptables)"
for tool in ip iptables ip6tables curl python3 sha256sum ss; do
  command -v "$tool" >/dev/null 2>&1 || skip "no $tool (scripts/setup.sh installs it)"
done
for b in ss-redir ss-server; do
  [[ -x $bin/$b ]] || skip "no $bin/$b: build first"
done

ns_c=ssredir-c-$$
ns_r=ssredir-r-$$
ns_t=ssredir-t-$$
tmp=$(mktemp -d /tmp/ss-redir-test.XXXXXX)
pids=()
# shellcheck source=tests/scripts/netns_lib.sh
source "$here/netns_lib.sh"
cleanup() {
  netns_cleanup
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_c() { ip netns exec "$ns_c" "$@"; }
in_r() { ip netns exec "$ns_r" "$@"; }
in_t() { ip netns exec "$ns_t" "$@"; }

netns_add "$ns_c" "$ns_r" "$ns_t" || skip "cannot create network namespaces (ip netns add)"

# --- the two namespaces ---
client4=10.200.0.2
router4=10.200.0.1
target4=10.201.0.1
client6=fd00:200::2
router6=fd00:200::1
target6=fd00:201::1
web=8080
utarget4=10.203.0.1
utarget6=fd00:203::1
uecho=7007
pw='redir test password'
method=chacha20-ietf-poly1305

setup() {
  ip link add c0 netns "$ns_c" type veth peer name r0 netns "$ns_r" || return 1
  in_c ip addr add "$client4/30" dev c0 && in_c ip addr add "$client6/64" dev c0 nodad || return 1
  in_r ip addr add "$router4/30" dev r0 && in_r ip addr add "$router6/64" dev r0 nodad || return 1
  in_c ip link set c0 up && in_r ip link set r0 up || return 1
  in_r ip addr add "$target4/32" dev lo && in_r ip addr add "$target6/128" dev lo nodad || return 1
  # The client reaches the targets through the router, and nothing else.
  in_c ip route add "$target4/32" via "$router4" && in_c ip -6 route add "$target6/128" via "$router6" || return 1
  # TPROXY: marked packets are delivered locally (to the transparent listener).
  in_r ip rule add fwmark 1 lookup 100 && in_r ip route add local 0.0.0.0/0 dev lo table 100 || return 1
  in_r ip -6 rule add fwmark 1 lookup 100 && in_r ip -6 route add local ::/0 dev lo table 100 || return 1
  # The UDP target's namespace, behind the router.
  ip link add r1 netns "$ns_r" type veth peer name t0 netns "$ns_t" || return 1
  in_r ip addr add 10.202.0.1/30 dev r1 && in_r ip addr add fd00:202::1/64 dev r1 nodad || return 1
  in_t ip addr add 10.202.0.2/30 dev t0 && in_t ip addr add fd00:202::2/64 dev t0 nodad || return 1
  in_r ip link set r1 up && in_t ip link set t0 up || return 1
  in_t ip addr add "$utarget4/32" dev lo && in_t ip addr add "$utarget6/128" dev lo nodad || return 1
  in_r ip route add "$utarget4/32" via 10.202.0.2 && in_r ip -6 route add "$utarget6/128" via fd00:202::2 || return 1
  in_c ip route add "$utarget4/32" via "$router4" && in_c ip -6 route add "$utarget6/128" via "$router6" || return 1
}
setup || skip "cannot set up the veth pair, addresses or routes in the namespaces"
in_r iptables -t nat -L >/dev/null 2>&1 || skip "iptables (nat) does not work in a network namespace here"

head -c 3000000 /dev/urandom >"$tmp/blob"
want=$(sha256sum <"$tmp/blob" | cut -d' ' -f1)

# start NAME CMD...: CMD in the router namespace (netns_run); sets $pid.
start() { netns_run "$ns_r" "$@"; }
stop() {
  kill "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}
# wait_listen PORT [PID] / wait_udp PORT [PID]: a TCP listener / bound UDP socket on PORT in the
# router namespace.
wait_listen() { netns_wait_tcp "$ns_r" "$@"; }
wait_udp() { netns_wait_udp "$ns_r" "$@"; }

# The web server, one per family (python's http.server logs "ADDRESS - - [...] "GET ...").
start web4 python3 -u -m http.server --bind "$target4" --directory "$tmp" "$web"
web4_pid=$pid
start web6 python3 -u -m http.server --bind "$target6" --directory "$tmp" "$web"
wait_listen "$web" "$web4_pid" || skip "the web server did not start: $(tail -3 "$tmp/web4.log")"
for ((i = 0; i < 100; i++)); do
  [[ $(in_r ss -Hltn "sport = :$web" | wc -l) -ge 2 ]] && break
  sleep 0.05
done

# The UDP echo server, one per family, in the target namespace: each datagram back as it came,
# and its sender's address on a line of its log.
udp_echo='
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(65535)
    print(a[0], flush=True)
    s.sendto(d, a)
'
ip netns exec "$ns_t" python3 -c "$udp_echo" "$utarget4" "$uecho" >"$tmp/uecho4.log" 2>&1 &
pids+=("$!")
ip netns exec "$ns_t" python3 -c "$udp_echo" "$utarget6" "$uecho" >"$tmp/uecho6.log" 2>&1 &
pids+=("$!")

start server "$bin/ss-server" -s 127.0.0.1 -p 8388 -k "$pw" -m "$method" --allow-private-targets -u
our_server=$pid
wait_listen 8388 "$our_server" || { cat "$tmp/server.log"; skip "our ss-server did not start"; }
have_libev=0
if [[ -x $libev_server && -x $libev_redir ]]; then
  have_libev=1
  start libev-server "$libev_server" -s 127.0.0.1 -p 8389 -k "$pw" -m "$method" -u
  wait_listen 8389 "$pid" || { cat "$tmp/libev-server.log"; skip "libev's ss-server did not start"; }
fi

passed=0
failed=0
skipped=0
ok() {
  echo "ok: $*"
  passed=$((passed + 1))
}
not_ok() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

flush_rules() {
  local t
  for t in iptables ip6tables; do
    in_r "$t" -t nat -F PREROUTING 2>/dev/null
    in_r "$t" -t mangle -F PREROUTING 2>/dev/null
  done
}
# rules MODE FAMILY PORT: the client's TCP to the target's web port goes to PORT. Its output
# (iptables' error) goes to $tmp/rules.err.
rules() {
  local mode=$1 fam=$2 port=$3 ipt=iptables dst=$target4
  [[ $fam == 6 ]] && ipt=ip6tables dst=$target6
  if [[ $mode == redirect ]]; then
    in_r "$ipt" -t nat -A PREROUTING -i r0 -p tcp -d "$dst" --dport "$web" \
      -j REDIRECT --to-ports "$port" 2>"$tmp/rules.err"
  else
    in_r "$ipt" -t mangle -A PREROUTING -i r0 -p tcp -d "$dst" --dport "$web" \
      -j TPROXY --on-port "$port" --tproxy-mark 1 2>"$tmp/rules.err"
  fi
}

# fetch FAMILY: curl the blob from the target, through whatever the rules say. Sets $why on
# failure.
fetch() {
  local fam=$1 url="http://$target4:$web/blob" log=$tmp/web4.log src=$target4 before
  [[ $fam == 6 ]] && url="http://[$target6]:$web/blob" log=$tmp/web6.log src=$target6
  before=$(wc -l <"$log")
  rm -f "$tmp/got"
  if ! in_c curl -g -sS --max-time 20 -o "$tmp/got" "$url" 2>"$tmp/curl.err"; then
    why="curl: $(cat "$tmp/curl.err")"
    return 1
  fi
  local got
  got=$(sha256sum <"$tmp/got" | cut -d' ' -f1)
  if [[ $got != "$want" ]]; then
    why="sha256 $got, want $want ($(wc -c <"$tmp/got") bytes)"
    return 1
  fi
  # The web server saw one request, from the router (ss-server), not from the client.
  local seen
  seen=$(tail -n +"$((before + 1))" "$log" | grep '"GET /blob' | awk '{print $1}')
  if [[ $seen != "$src" ]]; then
    why="the web server saw the request from '${seen//$'\n'/ }', want $src (ss-server's side)"
    return 1
  fi
  return 0
}

# check NAME MODE FAMILY REDIR_CMD...: rules for MODE, start the redir, fetch, stop, flush.
next_port=12300
check() {
  local name=$1 mode=$2 fam=$3
  shift 3
  local port=$((next_port++))
  local cmd=("$@" -l "$port")
  if ! rules "$mode" "$fam" "$port"; then
    if [[ $fam == 6 ]]; then
      echo "skip: $name: ip6tables refused the rule: $(cat "$tmp/rules.err")"
      skipped=$((skipped + 1))
    else
      not_ok "$name: iptables refused the rule: $(cat "$tmp/rules.err")"
    fi
    flush_rules
    return
  fi
  start "redir-$port" "${cmd[@]}"
  local redir=$pid
  if ! wait_listen "$port" "$redir"; then
    not_ok "$name: ss-redir did not listen: $(tail -3 "$tmp/redir-$port.log")"
  elif fetch "$fam"; then
    ok "$name"
  else
    not_ok "$name: $why"
    tail -5 "$tmp/redir-$port.log" | sed 's/^/  redir: /'
  fi
  stop "$redir"
  flush_rules
}

# Command prefixes: our ss-redir towards our ss-server (8388) or libev's (8389), libev's ss-redir
# towards ours.
ours=("$bin/ss-redir" -s 127.0.0.1 -p 8388 -k "$pw" -m "$method" -v)
ours_to_libev=("$bin/ss-redir" -s 127.0.0.1 -p 8389 -k "$pw" -m "$method" -v)
libev=("$libev_redir" -s 127.0.0.1 -p 8388 -k "$pw" -m "$method")

# --- ours x ours ---
check "REDIRECT, IPv4" redirect 4 "${ours[@]}" -b 0.0.0.0
check "REDIRECT, IPv4 client on a dual-stack [::] listener" redirect 4 "${ours[@]}" -b ::
check "REDIRECT, IPv6" redirect 6 "${ours[@]}" -b ::
check "TPROXY (-T), IPv4" tproxy 4 "${ours[@]}" -b 0.0.0.0 -T
check "TPROXY (-T), IPv4 client on a dual-stack [::] listener" tproxy 4 "${ours[@]}" -b :: -T
check "TPROXY (-T), IPv6" tproxy 6 "${ours[@]}" -b :: -T
# The config file's key does what -T does.
printf '{"server": "127.0.0.1", "server_port": 8388, "local_address": "0.0.0.0", "password": "%s", "method": "%s", "tcp_tproxy": true}\n' \
  "$pw" "$method" >"$tmp/redir.json"
check "TPROXY from \"tcp_tproxy\": true in -c FILE" tproxy 4 "$bin/ss-redir" -c "$tmp/redir.json"

# --- against shadowsocks-libev ---
if [[ $have_libev -eq 1 ]]; then
  check "our ss-redir (REDIRECT) -> libev's ss-server" redirect 4 "${ours_to_libev[@]}" -b 0.0.0.0
  check "our ss-redir (TPROXY) -> libev's ss-server" tproxy 4 "${ours_to_libev[@]}" -b 0.0.0.0 -T
  check "our ss-redir (REDIRECT, IPv6) -> libev's ss-server" redirect 6 "${ours_to_libev[@]}" -b ::
  check "libev's ss-redir (REDIRECT) -> our ss-server" redirect 4 "${libev[@]}" -b 0.0.0.0
  check "libev's ss-redir (TPROXY, -T) -> our ss-server" tproxy 4 "${libev[@]}" -b 0.0.0.0 -T
  check "libev's ss-redir (REDIRECT, IPv6) -> our ss-server" redirect 6 "${libev[@]}" -b ::
else
  echo "note: shadowsocks-libev's ss-redir/ss-server not installed: interop cases not run"
fi

# --- UDP through TPROXY ---
# The client side: datagrams of each size (comma-separated) from two sockets to the UDP target;
# each must come back byte for byte from the target's address and port. The first is resent
# until it does (ss-redir's UDP socket may still be starting).
udp_client='
import os, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
sizes = [int(n) for n in sys.argv[3].split(",")]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
def exchange(s, data, tries):
    for _ in range(tries):
        s.sendto(data, (host, port))
        end = time.time() + 1.0
        while time.time() < end:
            s.settimeout(max(0.01, end - time.time()))
            try:
                d, a = s.recvfrom(65535)
            except socket.timeout:
                break
            if d == data:
                return a
    return None
first = True
for i in range(2):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for n in sizes:
        data = os.urandom(n)
        a = exchange(s, data, 10 if first else 3)
        first = False
        if a is None:
            sys.exit("socket %d: no byte-exact echo of %d bytes" % (i, n))
        if a[0] != host or a[1] != port:
            sys.exit("the echo of %d bytes came from %s port %d, want %s port %d" % (n, a[0], a[1], host, port))
print("ok")
'

# check_udp NAME FAMILY SIZES REDIR_CMD...: the TPROXY rule for the client's UDP to the target,
# start the redir, exchange, stop, flush.
check_udp() {
  local name=$1 fam=$2 sizes=$3
  shift 3
  local port=$((next_port++)) ipt=iptables dst=$utarget4 log=$tmp/uecho4.log from=10.202.0.1
  [[ $fam == 6 ]] && ipt=ip6tables dst=$utarget6 log=$tmp/uecho6.log from=fd00:202::1
  if ! in_r "$ipt" -t mangle -A PREROUTING -i r0 -p udp -d "$dst" --dport "$uecho" \
    -j TPROXY --on-port "$port" --tproxy-mark 1 2>"$tmp/rules.err"; then
    if [[ $fam == 6 ]]; then
      echo "skip: $name: ip6tables refused the rule: $(cat "$tmp/rules.err")"
      skipped=$((skipped + 1))
    else
      not_ok "$name: iptables refused the rule: $(cat "$tmp/rules.err")"
    fi
    flush_rules
    return
  fi
  start "redir-$port" "$@" -l "$port"
  local redir=$pid before seen
  before=$(wc -l <"$log")
  if ! wait_udp "$port" "$redir"; then
    not_ok "$name: ss-redir did not bind its UDP socket: $(tail -3 "$tmp/redir-$port.log")"
  elif ! in_c python3 -c "$udp_client" "$dst" "$uecho" "$sizes" >"$tmp/uclient.log" 2>&1; then
    not_ok "$name: $(tail -1 "$tmp/uclient.log")"
    tail -5 "$tmp/redir-$port.log" | sed 's/^/  redir: /'
  else
    # Every datagram reached the target from ss-server's side of the router, none from the client.
    seen=$(tail -n +"$((before + 1))" "$log" | sort -u | tr '\n' ' ')
    if [[ $seen != "$from " ]]; then
      not_ok "$name: the UDP target saw datagrams from '$seen', want only $from (ss-server's side)"
    else
      ok "$name"
    fi
  fi
  stop "$redir"
  flush_rules
}

check_udp "TPROXY UDP (-u), IPv4" 4 1,1400,8000 "${ours[@]}" -u -b 0.0.0.0
check_udp "TPROXY UDP (-u), IPv4 client on a dual-stack [::] listener" 4 1,1400,8000 \
  "${ours[@]}" -u -b ::
check_udp "TPROXY UDP (-u), IPv6" 6 1,1400,8000 "${ours[@]}" -u -b ::
check_udp "TPROXY UDP only (-U), IPv4" 4 1,1400 "${ours[@]}" -U -b 0.0.0.0
if [[ $have_libev -eq 1 ]]; then
  # libev relays UDP datagrams up to about 2.7 KB without --mtu: 1400 at most.
  check_udp "our ss-redir (TPROXY UDP) -> libev's ss-server" 4 1,700,1400 \
    "${ours_to_libev[@]}" -u -b 0.0.0.0
  check_udp "libev's ss-redir (TPROXY UDP) -> our ss-server" 4 1,700,1400 "${libev[@]}" -u -b 0.0.0.0
fi

# --- a connection made straight to ss-redir's port (not intercepted) is closed, reaches nothing ---
# With REDIRECT the NAT entry changed nothing; with TPROXY the socket's own address is one of the
# router's and the port is ss-redir's. Served, either would connect back to ss-redir, in a loop.
direct_check() {
  local mode=$1 port=$((next_port++))
  shift
  start "redir-$port" "${ours[@]}" -b 0.0.0.0 -l "$port" "$@"
  local redir=$pid
  if wait_listen "$port" "$redir"; then
    local before
    before=$(wc -l <"$tmp/web4.log")
    rules "$mode" 4 "$port"  # with REDIRECT, a NAT table, so conntrack sees the direct connection
    if in_c curl -sS --max-time 10 -o /dev/null "http://$router4:$port/blob" 2>/dev/null; then
      not_ok "$mode: a direct connection to ss-redir's port was answered"
    elif [[ $(wc -l <"$tmp/web4.log") -ne $before ]]; then
      not_ok "$mode: a direct connection to ss-redir's port reached the web server"
    else
      sleep 0.2
      local accepted
      accepted=$(grep -c "closed: bad request" "$tmp/redir-$port.log")
      if [[ $accepted -eq 1 ]]; then
        ok "$mode: a connection made straight to ss-redir's port is closed"
      else
        not_ok "$mode: direct connection: $accepted 'closed: bad request' lines in ss-redir's log, want 1: $(tail -3 "$tmp/redir-$port.log")"
      fi
    fi
    flush_rules
  else
    not_ok "$mode: ss-redir did not listen: $(tail -3 "$tmp/redir-$port.log")"
  fi
  stop "$redir"
}
direct_check redirect
direct_check tproxy -T

# --- without ss-server, nothing gets through (the fetches above went through it) ---
stop "$our_server"
port=$((next_port++))
rules redirect 4 "$port"
start "redir-$port" "${ours[@]}" -b 0.0.0.0 -l "$port"
redir=$pid
if ! wait_listen "$port" "$redir"; then
  not_ok "ss-redir did not listen: $(tail -3 "$tmp/redir-$port.log")"
elif fetch 4; then
  not_ok "with ss-server stopped, the fetch still worked"
else
  ok "with ss-server stopped, the fetch fails ($why)"
fi
stop "$redir"
flush_rules

[[ $skipped -eq 0 ]] || echo "($skipped IPv6 cases skipped: see above)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
