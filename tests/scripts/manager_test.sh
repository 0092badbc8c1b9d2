#!/usr/bin/env bash
# ss-manager (issue 14, item 2) end to end, through the real binaries on loopback:
#   * our ss-manager on UDP (2 workers) and another on a Unix datagram socket; ports added with
#     libev's messages (server_port as an integer and as a string, a 2022 port with SIP023
#     "users"), then 1 MiB downloads through our ss-local and shadowsocks-libev's ss-local at once
#     on the same added port, and through the 2022 port and the Unix manager's port;
#   * list (libev's array, ports as strings) and ping (stat: bytes >= what was fetched, < that +
#     64 KiB, 0 for an idle port);
#   * remove during a rate-limited download: the download finishes whole, new connections are
#     refused; add again: ping's count goes on from where it was; reset (ours) starts it at 0;
#   * an add on a port in use: "port is not available"; malformed datagrams: libev's replies
#     ("err", or none), and the manager still answers;
#   * UDP on a port added at run time ("mode": "tcp_and_udp"): datagrams echoed through our
#     ss-tunnel -u and libev's; ping counts their exact ciphertext bytes; remove closes the UDP
#     socket (ss -uln), add again serves UDP again and the count goes on;
#   * shadowsocks-libev's ss-manager (spawning /usr/bin/ss-server in a scratch directory) gets
#     the same messages: the replies have the same form; stopped by PID, its servers are gone.
#
# Usage: tests/scripts/manager_test.sh BIN_DIR   (BIN_DIR holds ss-manager and ss-local)
# Needs shadowsocks-libev (ss-manager, ss-server, ss-local), curl and python3 (scripts/setup.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
setup_work ss-manager

read -r web mgr p1 p2 p3 p4 loc loc_libev loc22 loc4 libev_mgr libev_p p5 echo tun tun_libev \
  <<<"$(free_ports 16)"
umgr="$work/manager.sock"
size=$((1 << 20))
head -c "$size" /dev/urandom >"$work/file.bin"
head -c $((2 * size)) /dev/urandom >"$work/big.bin"
ipsk=$(head -c 16 /dev/urandom | base64)
upsk=$(head -c 16 /dev/urandom | base64)

# One python3 for every request (a start costs seconds on a loaded machine): it reads
# "MODE<TAB>ADDR<TAB>MESSAGE" lines, sends MESSAGE as one datagram to a manager (host:port, or a
# Unix socket path), and writes one line: the reply with \n and \t escaped (MODE raw), or its
# form, keys and types with the values left out (MODE list or stat); "<no reply>" after 0.3 s
# (3 s with MODE udp: a datagram through a tunnel, echoed).
coproc HELPER {
  PYTHONIOENCODING=utf-8:surrogateescape exec python3 -u -c '
import json, os, socket, sys
for line in sys.stdin:
    mode, addr, msg = line.rstrip("\n").split("\t", 2)
    if "/" in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        me = "%s.client%d" % (addr, os.getpid())
        s.bind(me)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        me, addr = None, (host, int(port))
    s.settimeout(3 if mode == "udp" else 0.3)
    s.sendto(msg.encode("utf-8", "surrogateescape"), addr)
    try:
        r = s.recv(65536).decode("latin-1")
    except socket.timeout:
        r = "<no reply>"
    s.close()
    if me:
        os.unlink(me)
    try:
        if mode == "stat":
            d = json.loads(r[len("stat: "):])
            r = "stat " + repr(sorted({type(v).__name__ for v in d.values()}))
        elif mode == "list":
            l = json.loads(r)
            r = repr((r[:3] == "[\n\t", r[-2:] == "\n]", sorted(
                {tuple(sorted((k, type(v).__name__) for k, v in e.items())) for e in l})))
    except ValueError as e:
        r = "not JSON: " + r
    print(r.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t"), flush=True)
'
}
pids+=("$HELPER_PID")
# ask ADDR MESSAGE [MODE]: the manager's reply (see HELPER).
ask() {
  local line
  printf '%s\t%s\t%s\n' "${3:-raw}" "$1" "$2" >&"${HELPER[1]}"
  IFS= read -r line <&"${HELPER[0]}"
  printf '%b\n' "$line"
}
# expect WHAT GOT WANT
expect() {
  if [[ "$2" == "$3" ]]; then pass "$1: $3"; else fail "$1: got '$2', want '$3'"; fi
}
# stat_of REPLY PORT: the port's count in a "stat: {...}" reply ("absent" if not there).
stat_of() {
  if [[ "$1" =~ \"$2\":([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo absent; fi
}
# fetch LOCAL FILE: downloads FILE through the SOCKS5 port LOCAL; 0 if it arrives whole.
fetch() {
  curl -sS --max-time 20 --socks5-hostname "127.0.0.1:$1" "http://127.0.0.1:$web/$2" \
    -o "$work/got.$1" && cmp -s "$work/got.$1" "$work/$2"
}

start "$work/web.log" "$web" python3 -m http.server "$web" --bind 127.0.0.1 --directory "$work"
"$bin_dir/ss-manager" --manager-address "127.0.0.1:$mgr" -s 127.0.0.1 -m aes-256-gcm \
  --allow-private-targets --state-dir "" --workers 2 --executable /usr/bin/ss-server \
  >"$work/manager.log" 2>&1 &
manager_pid=$!
pids+=("$manager_pid")
"$bin_dir/ss-manager" --manager-address "$umgr" -s 127.0.0.1 -m chacha20-ietf-poly1305 \
  --allow-private-targets --state-dir "" --workers 1 >"$work/umanager.log" 2>&1 &
umanager_pid=$!
pids+=("$umanager_pid")
for ((i = 0; i < 50; i++)); do
  [[ "$(ask "127.0.0.1:$mgr" ping)" == "stat: {}" && -S "$umgr" ]] && break
  sleep 0.1
done
expect "ping, no port yet" "$(ask "127.0.0.1:$mgr" ping)" "stat: {}"
grep -q -- "--executable /usr/bin/ss-server is not used" "$work/manager.log" &&
  pass "--executable is accepted with a note" || fail "no note about --executable"

# --- add over UDP and over a Unix datagram socket ---
expect "add (integer port)" "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p1, \"password\": \"pw1\"}")" ok
expect "add (string port, own method)" "$(ask "127.0.0.1:$mgr" \
  "add:{\"server_port\":\"$p2\",\"password\":\"pw2\",\"method\":\"chacha20-ietf-poly1305\",\"fast_open\":false,\"plugin\":\"\",\"mode\":\"tcp_only\"}")" ok
expect "add (2022, users)" "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p3, \"method\": \"2022-blake3-aes-128-gcm\", \"password\": \"$ipsk\", \"users\": [{\"name\": \"alice\", \"password\": \"$upsk\"}]}")" ok
expect "add over a Unix socket" "$(ask "$umgr" "add: {\"server_port\": $p4, \"password\": \"pw4\"}")" ok
wait_listening "$p1" && wait_listening "$p3" && wait_listening "$p4" || fail "added ports do not listen"

start "$work/local.log" "$loc" "$bin_dir/ss-local" -s 127.0.0.1 -p "$p1" -l "$loc" -k pw1 \
  -m aes-256-gcm --state-dir ""
start "$work/local-libev.log" "$loc_libev" /usr/bin/ss-local -s 127.0.0.1 -p "$p1" \
  -l "$loc_libev" -k pw1 -m aes-256-gcm
start "$work/local22.log" "$loc22" "$bin_dir/ss-local" -s 127.0.0.1 -p "$p3" -l "$loc22" \
  -k "$ipsk:$upsk" -m 2022-blake3-aes-128-gcm --state-dir ""
start "$work/local4.log" "$loc4" "$bin_dir/ss-local" -s 127.0.0.1 -p "$p4" -l "$loc4" -k pw4 \
  -m chacha20-ietf-poly1305 --state-dir ""

fetch "$loc" file.bin &
ours=$!
fetch "$loc_libev" file.bin &
theirs=$!
wait "$ours" && pass "1 MiB through our ss-local on an added port" || fail "our ss-local's download"
wait "$theirs" && pass "1 MiB through libev's ss-local on the same port at once" ||
  fail "libev's ss-local's download"
fetch "$loc22" file.bin && pass "1 MiB through the 2022 port as its user alice" ||
  fail "download through the 2022 port"
fetch "$loc4" file.bin && pass "1 MiB through the port the Unix-socket manager added" ||
  fail "download through the Unix manager's port"

# --- list and ping ---
list=$(ask "127.0.0.1:$mgr" list)
entry() { printf '{"server_port":"%s","password":"%s","method":"%s"}' "$@"; }
expected=$(printf '%s\n' "$p1 $(entry "$p1" pw1 aes-256-gcm)" \
  "$p2 $(entry "$p2" pw2 chacha20-ietf-poly1305)" "$p3 $(entry "$p3" "$ipsk" 2022-blake3-aes-128-gcm)" |
  sort -n | cut -d' ' -f2- | sed '$!s/$/,/; s/^/\t/')
if [[ "$list" == "[
$expected
]" ]]; then
  pass "list: libev's array of the 3 ports, ports as strings"
else
  fail "list: $list"
fi
stat=$(ask "127.0.0.1:$mgr" ping)
b1=$(stat_of "$stat" "$p1")
b2=$(stat_of "$stat" "$p2")
b3=$(stat_of "$stat" "$p3")
if ((b1 >= 2 * size && b1 < 2 * size + 65536)); then
  pass "ping: port $p1 counts the two downloads ($b1 bytes)"
else
  fail "ping: port $p1: $b1 bytes for two 1 MiB downloads ($stat)"
fi
((b3 >= size && b3 < size + 65536)) && pass "ping: the 2022 port ($b3 bytes)" ||
  fail "ping: the 2022 port: $b3 ($stat)"
expect "ping: the idle port" "$b2" 0
b4=$(stat_of "$(ask "$umgr" ping)" "$p4")
((b4 >= size && b4 < size + 65536)) && pass "ping over the Unix socket ($b4 bytes)" ||
  fail "ping over the Unix socket: $b4"

# --- remove during a transfer; add again keeps the count ---
curl -sS --max-time 20 --limit-rate 1M --socks5-hostname "127.0.0.1:$loc" \
  "http://127.0.0.1:$web/big.bin" -o "$work/got.slow" &
slow=$!
sleep 0.5
expect "remove" "$(ask "127.0.0.1:$mgr" "remove: {\"server_port\": $p1}")" ok
refused=0
for ((i = 0; i < 50; i++)); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null; then refused=1 && break; fi
  sleep 0.1
done
((refused)) && pass "removed port: new connections refused" || fail "removed port still accepts"
wait "$slow" && cmp -s "$work/got.slow" "$work/big.bin" &&
  pass "removed port: the live 2 MiB download finished whole" || fail "the live download was cut"
expect "remove of a port not served" "$(ask "127.0.0.1:$mgr" "remove: {\"server_port\": $p1}")" ok
expect "ping after remove" "$(stat_of "$(ask "127.0.0.1:$mgr" ping)" "$p1")" absent
expect "add again" "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p1, \"password\": \"pw1\"}")" ok
wait_listening "$p1" || fail "port $p1 does not listen again"
again=$(stat_of "$(ask "127.0.0.1:$mgr" ping)" "$p1")
((again >= b1 + 2 * size)) && pass "remove then add keeps the count ($again bytes)" ||
  fail "count after remove and add: $again, want >= $((b1 + 2 * size))"
fetch "$loc" file.bin && pass "the port added again serves" || fail "download after add again"
expect "reset (ours)" "$(ask "127.0.0.1:$mgr" "reset: {\"server_port\": $p1}")" ok
expect "ping after reset" "$(stat_of "$(ask "127.0.0.1:$mgr" ping)" "$p1")" 0
expect "add replacing a port's password" \
  "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p1, \"password\": \"new\"}")" ok
curl -sS --max-time 2 --socks5-hostname "127.0.0.1:$loc" "http://127.0.0.1:$web/file.bin" \
  -o /dev/null 2>/dev/null && fail "the old password still works after a replace" ||
  pass "replaced port: the old password is refused"

# --- UDP on a port added at run time ---
# udp_bound PORT: a UDP socket is bound to PORT; wait_udp PORT [gone]: polls for it (or its end).
udp_bound() { [[ -n "$(ss -Hunl "sport = :$1")" ]]; }
wait_udp() {
  local i
  for ((i = 0; i < 50; i++)); do
    if [[ -z "${2:-}" ]]; then udp_bound "$1" && return 0; else udp_bound "$1" || return 0; fi
    sleep 0.1
  done
  return 1
}
socat UDP4-RECVFROM:"$echo",bind=127.0.0.1,fork PIPE >"$work/echo.log" 2>&1 &
pids+=($!)
expect "add with UDP" "$(ask "127.0.0.1:$mgr" \
  "add: {\"server_port\": $p5, \"password\": \"pw5\", \"mode\": \"tcp_and_udp\"}")" ok
wait_udp "$p5" && pass "the added port's UDP socket is bound" || fail "no UDP socket on $p5"
# UDP only (-U): a TCP probe of the tunnels would add TCP bytes to the port's count.
"$bin_dir/ss-tunnel" -s 127.0.0.1 -p "$p5" -l "$tun" -k pw5 -m aes-256-gcm -L "127.0.0.1:$echo" \
  -U --state-dir "" >"$work/tunnel.log" 2>&1 &
pids+=($!)
/usr/bin/ss-tunnel -s 127.0.0.1 -p "$p5" -l "$tun_libev" -k pw5 -m aes-256-gcm \
  -L "127.0.0.1:$echo" -U >"$work/tunnel-libev.log" 2>&1 &
pids+=($!)
wait_udp "$tun" && wait_udp "$tun_libev" || fail "the tunnels' UDP sockets"
expect "UDP through our ss-tunnel on the added port" "$(ask "127.0.0.1:$tun" udp-hello udp)" udp-hello
expect "UDP through libev's ss-tunnel on the added port" \
  "$(ask "127.0.0.1:$tun_libev" udp-hello udp)" udp-hello
# Each way 32 (salt) + 7 (IPv4 address) + 9 + 16 (tag) bytes: 128 a round trip.
expect "ping counts the UDP bytes both ways" "$(stat_of "$(ask "127.0.0.1:$mgr" ping)" "$p5")" 256
expect "remove the UDP port" "$(ask "127.0.0.1:$mgr" "remove: {\"server_port\": $p5}")" ok
wait_udp "$p5" gone && pass "removed: its UDP socket is closed (ss -uln)" ||
  fail "removed port: UDP still bound: $(ss -Hunl "sport = :$p5")"
expect "no UDP answer once removed" "$(ask "127.0.0.1:$tun" udp-gone)" "<no reply>"
expect "add the UDP port again" "$(ask "127.0.0.1:$mgr" \
  "add: {\"server_port\": $p5, \"password\": \"pw5\", \"mode\": \"tcp_and_udp\"}")" ok
wait_udp "$p5" || fail "no UDP socket on $p5 after add again"
expect "UDP again after remove and add" "$(ask "127.0.0.1:$tun" udp-again udp)" udp-again
expect "the UDP count goes on" "$(stat_of "$(ask "127.0.0.1:$mgr" ping)" "$p5")" 384

# --- errors ---
expect "add on a port in use" \
  "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $web, \"password\": \"x\"}")" "port is not available"
expect "add, invalid JSON" "$(ask "127.0.0.1:$mgr" 'add: {"server_port": 1')" err
expect "add, no JSON" "$(ask "127.0.0.1:$mgr" 'add')" err
expect "add, no password" "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p2}")" err
expect "add, port 70000" "$(ask "127.0.0.1:$mgr" 'add: {"server_port": 70000, "password": "x"}')" err
expect "add, unknown method" \
  "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p2, \"password\": \"x\", \"method\": \"rot13\"}")" err
expect "remove, no port" "$(ask "127.0.0.1:$mgr" 'remove: {}')" err
expect "unknown command" "$(ask "127.0.0.1:$mgr" 'hello: {}')" "<no reply>"
expect "stat report (libev's servers')" "$(ask "127.0.0.1:$mgr" "stat: {\"$p1\": 5}")" "<no reply>"
expect "40000-byte request" "$(ask "127.0.0.1:$mgr" "add: {$(head -c 40000 /dev/zero | tr '\0' ' ')}")" "<no reply>"
expect "binary garbage" "$(ask "127.0.0.1:$mgr" $'\x01\xff{\x80')" "<no reply>"
[[ "$(stat_of "$(ask "127.0.0.1:$mgr" " ping")" "$p3")" == "$b3" ]] && pass "still answering" ||
  fail "no answer to ping after the malformed requests"

# --- shadowsocks-libev's ss-manager: the same messages, the same forms ---
start_libev_manager "$libev_mgr"
for ((i = 0; i < 50; i++)); do
  [[ "$(ask "127.0.0.1:$libev_mgr" ping)" == "<no reply>" ]] || break
done
for msg in "add: {\"server_port\": PORT, \"password\": \"pw\"}" 'add: {"server_port": 1' \
  'add: {"password": "x"}' 'hello' 'remove: {}'; do
  theirs=$(ask "127.0.0.1:$libev_mgr" "${msg//PORT/$libev_p}")
  ours=$(ask "127.0.0.1:$mgr" "${msg//PORT/$p2}")
  expect "same reply as libev's to '${msg//PORT/N}'" "$ours" "$theirs"
done
wait_listening "$libev_p" || fail "libev's ss-manager did not start its ss-server"
expect "list: the same form as libev's" "$(ask "127.0.0.1:$mgr" list list)" \
  "$(ask "127.0.0.1:$libev_mgr" list list)"
ask "127.0.0.1:$mgr" "remove: {\"server_port\": $p3}" >/dev/null
expect "ping: the same form as libev's" "$(ask "127.0.0.1:$mgr" ping stat)" \
  "$(ask "127.0.0.1:$libev_mgr" ping stat)"
children=$(cat "$work"/libev/.shadowsocks_*.pid 2>/dev/null || true)
[[ -n "$children" ]] && pass "libev's ss-manager runs its ss-server ($children)" ||
  fail "no pid file of libev's ss-server in its directory"
kill "$libev_pid"
wait "$libev_pid" 2>/dev/null || true
left=$children
for ((i = 0; i < 50 && ${#left}; i++)); do
  sleep 0.1
  left=""
  for c in $children; do kill -0 "$c" 2>/dev/null && left+=" $c"; done
done
for c in $left; do kill "$c"; done
[[ -z "$left" ]] && pass "libev's ss-manager stopped, its ss-server gone" ||
  fail "libev's ss-server left running:$left (stopped now)"

# --- our managers stop on SIGTERM, the Unix socket removed ---
kill "$manager_pid" "$umanager_pid"
wait "$manager_pid" && wait "$umanager_pid" && pass "both managers exit 0 on SIGTERM" ||
  fail "a manager did not exit 0"
[[ ! -e "$umgr" ]] && pass "the Unix socket is removed" || fail "the Unix socket is left"
grep -q "refused: mode\|ERROR\|live handles" "$work/manager.log" && fail "manager log: $(cat "$work/manager.log")"

echo "$passed passed, $failed failed"
((failed == 0))
