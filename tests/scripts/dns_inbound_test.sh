#!/usr/bin/env bash
# ss-local's DNS inbound (issue 13 item 8, "the DNS split"): two test resolvers
# (tests/scripts/dns_responder.py), "local" answering 10.1.x.x and "remote" answering 10.2.x.x,
# so each answer tells which one gave it; ss-local with a "dns" local and an ACL, through our
# ss-server and through shadowsocks-libev's ss-server. Checks:
#  - a name the ACL proxies reaches the remote resolver through the tunnel (DNS over TCP), also
#    through libev's ss-server; a bypassed name the local resolver, directly;
#  - a second identical query is served from the cache (the resolvers' query logs do not grow);
#  - a truncated UDP answer from the local resolver is retried over TCP;
#  - a name no rule decides (the ACL has IP rules): the local answer when its address is
#    bypassed, else the remote answer;
#  - queries over TCP to the inbound, 100 of them pipelined on one connection; malformed queries
#    (UDP and TCP) do not stop it;
#  - 100 proxied queries at once share at most 4 reused Shadowsocks connections (ss-server's log
#    counts them), pipelined (RFC 7766);
#  - two servers, the first dead: proxied queries are still answered (retried on the other one),
#    and the dead one is reported down;
#  - a PTR query goes where the ACL routes its address (10.1.1.9 bypassed: local);
#  - shadowsocks-rust's flags: --protocol dns --local-dns-addr --remote-dns-addr; a bad value
#    names the flag;
#  - the inbound's metrics (answers by upstream, failures, answer time) on metrics_address,
#    accepted by promtool;
#  - a local resolver that never answers gives SERVFAIL after 5 s;
#  - rust's client_cache_size is refused at start, naming the key.
#
# Usage: tests/scripts/dns_inbound_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
require_tools curl promtool
setup_work ss-dnsin

method=chacha20-ietf-poly1305
password=dns-inbound-password
read -r s1 s2 d1 d2 d3 hole d4 d5 m1 m3 < <(free_ports 10)

# Started first, with the responders: one Python process (each start costs seconds on a loaded machine) answers lines on stdin:
# "udp|tcp PORT NAME [QTYPE]" prints the answer's addresses ("10.1.1.1"), "rcode N", "TC" or
# "no answer"; "pipeline PORT N" sends N queries at once over TCP and prints how many were
# answered NOERROR; "junk PORT" sends malformed queries (UDP and TCP) and prints "sent"; "bg udp|tcp
# PORT NAME" starts such a query in a thread and "join" prints its result and milliseconds.
coproc QUERIER { python3 -u -c '
import random, socket, struct, sys

def query(proto, port, name, qtype=1):
    ident = random.randrange(65536)
    msg = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    msg += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    msg += struct.pack("!HH", qtype, 1)
    try:
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(8)
            s.sendto(msg, ("127.0.0.1", port))
            r = s.recv(65536)
        else:
            s = socket.create_connection(("127.0.0.1", port), timeout=8)
            s.sendall(struct.pack("!H", len(msg)) + msg)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            r = buf[2:]
        s.close()
    except OSError:
        return "no answer"
    rid, flags, qd, an = struct.unpack("!HHHH", r[:8])
    if rid != ident:
        return "wrong id"
    if flags & 0x0200:
        return "TC"
    if flags & 0xF:
        return "rcode %d" % (flags & 0xF)
    pos = len(msg)  # the question, echoed as sent
    out = []
    for _ in range(an):
        pos += 2  # a compression pointer to the question
        t, c, ttl, n = struct.unpack("!HHIH", r[pos:pos + 10])
        pos += 10
        if t == 1:
            out.append(socket.inet_ntoa(r[pos:pos + n]))
        pos += n
    return ",".join(out) or "no records"

def pipeline(port, n, suffix):
    # n queries for distinct names (pI.SUFFIX) in one write on one TCP connection; the answers
    # counted.
    msgs = []
    tail = b"".join(bytes([len(l)]) + l.encode() for l in suffix.split(".")) + b"\0"
    for i in range(n):
        m = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0)
        m += bytes([len("p%d" % i)]) + b"p%d" % i + tail + struct.pack("!HH", 1, 1)
        msgs.append(struct.pack("!H", len(m)) + m)
    s = socket.create_connection(("127.0.0.1", port), timeout=8)
    s.sendall(b"".join(msgs))
    buf, ids = b"", set()
    try:
        while len(ids) < n:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                k = struct.unpack("!H", buf[:2])[0]
                if buf[5] & 0xF == 0:
                    ids.add(struct.unpack("!H", buf[2:4])[0])
                buf = buf[2 + k:]
    except OSError:
        pass
    return str(len(ids))

def junk(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for j in (b"", b"\x01", b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\xc0\x0c\x00\x01\x00\x01",
              b"\xff" * 600):
        u.sendto(j, ("127.0.0.1", port))
    t = socket.create_connection(("127.0.0.1", port), timeout=5)
    t.sendall(b"\x00\x00garbage")  # a zero length: the connection is closed
    try:
        t.recv(10)
    except OSError:
        pass
    return "sent"

import threading, time
bg = {}
def timed(proto, port, name):
    t0 = time.monotonic()
    r = query(proto, port, name)
    bg["result"] = "%s %d" % (r.replace(" ", "_"), (time.monotonic() - t0) * 1000)

for line in sys.stdin:
    w = line.split()
    if w[0] == "pipeline":
        print(pipeline(int(w[1]), int(w[2]), w[3] if len(w) > 3 else "test"), flush=True)
    elif w[0] == "junk":
        print(junk(int(w[1])), flush=True)
    elif w[0] == "bg":
        bg["thread"] = threading.Thread(target=timed, args=(w[1], int(w[2]), w[3]))
        bg["thread"].start()
        print("started", flush=True)
    elif w[0] == "join":
        bg["thread"].join()
        print(bg["result"], flush=True)
    else:
        print(query(w[0], int(w[1]), w[2], int(w[3]) if len(w) > 3 else 1), flush=True)
'; }
pids+=($QUERIER_PID)
q() {
  echo "$*" >&"${QUERIER[1]}"
  local line
  read -r line <&"${QUERIER[0]}"
  echo "$line"
}

start_responder() { # NAME ARGS...
  local name=$1
  shift
  : >"$work/$name.queries"
  python3 "$here/dns_responder.py" "$work/$name.port" --log "$work/$name.queries" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
}
start_responder local --zone direct.test=10.1.1.1 --zone tc.test=10.1.1.3 \
  --zone far.test=10.7.7.7 --truncate-zone tc.test --any 10.1.1.9
start_responder remote --zone proxied.test=10.2.2.2 --zone libev.test=10.2.2.3 --any 10.2.2.9
for ((i = 0; i < 200; i++)); do
  [[ -s "$work/local.port" && -s "$work/remote.port" ]] && break
  sleep 0.05
done
local_dns=$(cat "$work/local.port")
remote_dns=$(cat "$work/remote.port")

cat >"$work/acl" <<'ACL'
[proxy_all]
[bypass_list]
(^|\.)direct\.test$
(^|\.)tc\.test$
10.1.1.0/24
[proxy_list]
(^|\.)proxied\.test$
(^|\.)libev\.test$
ACL
local_config() { # FILE SERVER_PORT DNS_PORT [EXTRA JSON] [LOCAL RESOLVER PORT]
  cat >"$1" <<JSON
{"server": "127.0.0.1", "server_port": $2, "method": "$method", "password": "$password",
 "locals": [{"protocol": "dns", "local_address": "127.0.0.1", "local_port": $3,
             "local_dns_address": "127.0.0.1", "local_dns_port": ${5:-$local_dns},
             "remote_dns_address": "127.0.0.1", "remote_dns_port": $remote_dns $4}]}
JSON
}
start "$work/s1.log" "$s1" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s1" -m "$method" \
  -k "$password" --allow-private-targets -vv
libev=0
if command -v ss-server >/dev/null && [[ "$(command -v ss-server)" != "$bin_dir/ss-server" ]]; then
  start "$work/s2.log" "$s2" "$(command -v ss-server)" -s 127.0.0.1 -p "$s2" -m "$method" \
    -k "$password"
  libev=1
fi
local_config "$work/l1.json" "$s1" "$d1" ""
local_config "$work/l2.json" "$s2" "$d2" ""
start "$work/l1.log" "$d1" "$bin_dir/ss-local" -c "$work/l1.json" --acl "$work/acl" -v \
  --metrics-address "127.0.0.1:$m1"
l1_pid=${pids[-1]}
[[ $libev -eq 1 ]] && start "$work/l2.log" "$d2" "$bin_dir/ss-local" -c "$work/l2.json" \
  --acl "$work/acl" -v
# A local resolver that never answers (nothing on that UDP port): SERVFAIL after 5 s, checked
# last; the query starts now.
local_config "$work/l3.json" "$s1" "$d3" "" "$hole"
start "$work/l3.log" "$d3" "$bin_dir/ss-local" -c "$work/l3.json" --acl "$work/acl" \
  --metrics-address "127.0.0.1:$m3"
q bg udp "$d3" direct.test >/dev/null

count() { grep -c "$2" "$work/$1.queries" || true; }
check() { # TEXT GOT WANT
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}

a=$(q udp "$d1" proxied.test)
check "a proxied name is answered by the remote resolver" "$a" "10.2.2.2"
if [[ $(count remote "^tcp proxied.test 1$") -eq 1 && $(count local proxied.test) -eq 0 ]]; then
  pass "it went through the tunnel as DNS over TCP, not to the local resolver"
else
  fail "proxied.test: remote log $(tr '\n' ';' <"$work/remote.queries"), local log $(tr '\n' ';' <"$work/local.queries")"
fi
a=$(q udp "$d1" direct.test)
check "a bypassed name is answered by the local resolver" "$a" "10.1.1.1"
[[ $(count remote direct.test) -eq 0 ]] || fail "direct.test reached the remote resolver"
a=$(q udp "$d1" direct.test)
b=$(q tcp "$d1" proxied.test)
if [[ "$a" == 10.1.1.1 && "$b" == 10.2.2.2 && $(count local "direct.test") -eq 1 &&
  $(count remote "proxied.test") -eq 1 ]]; then
  pass "repeated queries (UDP and TCP) are served from the cache"
else
  fail "cache: answers '$a' '$b'; local log $(tr '\n' ';' <"$work/local.queries"); remote log $(tr '\n' ';' <"$work/remote.queries")"
fi
a=$(q udp "$d1" tc.test)
if [[ "$a" == 10.1.1.3 && $(count local "^udp tc.test 1$") -eq 1 &&
  $(count local "^tcp tc.test 1$") -eq 1 ]]; then
  pass "a truncated UDP answer is retried over TCP"
else
  fail "TC: got '$a'; local log $(tr '\n' ';' <"$work/local.queries")"
fi
a=$(q tcp "$d1" other.test)
check "TCP query, no rule: the local answer (10.1.1.9 is bypassed) is kept" "$a" "10.1.1.9"
a=$(q udp "$d1" far.test)
if [[ "$a" == 10.2.2.9 && $(count local "far.test") -eq 1 ]]; then
  pass "no rule, local answer not bypassed (10.7.7.7): the remote answer"
else
  fail "far.test: got '$a'; local log $(tr '\n' ';' <"$work/local.queries")"
fi

# Malformed input: garbage over UDP is dropped; a zero-length frame over TCP closes that
# connection; the inbound answers on.
q junk "$d1" >/dev/null
a=$(q udp "$d1" fresh.test)
b=$(q tcp "$d1" direct.test)
if [[ "$a" == 10.1.1.9 && "$b" == 10.1.1.1 ]] && kill -0 "$l1_pid" 2>/dev/null; then
  pass "malformed queries (UDP and TCP) do not stop the inbound"
else
  fail "after malformed queries: '$a' '$b'"
fi

a=$(q pipeline "$d1" 100)
check "100 queries pipelined on one TCP connection are all answered" \
  "$a" 100

# Reuse: ss-server logs each connection's target ("connect 127.0.0.1:PORT") at -vv.
conns() { grep -c "connect 127.0.0.1:$remote_dns" "$work/s1.log" || true; }
before=$(conns)
a=$(q pipeline "$d1" 100 proxied.test)
after=$(conns)
if [[ "$a" == 100 && $((after - before)) -le 4 && $(count remote "proxied.test") -ge 101 ]]; then
  pass "100 proxied queries at once: all answered, over $((after - before)) new Shadowsocks connection(s) ($after in all)"
else
  fail "100 proxied queries: $a answered, $((after - before)) new connections (want <= 4)"
fi

# Failover: the first server is dead (nothing listens on $hole); queries still answered.
cat >"$work/l4.json" <<JSON
{"servers": [{"server": "127.0.0.1", "server_port": $hole, "method": "$method", "password": "$password"},
             {"server": "127.0.0.1", "server_port": $s1, "method": "$method", "password": "$password"}],
 "locals": [{"protocol": "dns", "local_address": "127.0.0.1", "local_port": $d4,
             "local_dns_address": "127.0.0.1", "local_dns_port": $local_dns,
             "remote_dns_address": "127.0.0.1", "remote_dns_port": $remote_dns}]}
JSON
start "$work/l4.log" "$d4" "$bin_dir/ss-local" -c "$work/l4.json" -vv
a=$(q pipeline "$d4" 5 failover.test)
b=$(q udp "$d4" one.failover.test)
if [[ "$a" == 5 && "$b" == 10.2.2.9 ]] && grep -q "server 127.0.0.1:$hole is down" "$work/l4.log"; then
  pass "two servers, the first dead: proxied queries answered, the dead one reported down"
else
  fail "failover: $a of 5 answered, then '$b'; log: $(grep -E 'dns|balancer' "$work/l4.log" | tail -5 | tr '\n' ';')"
fi

# PTR by the ACL's IP rules: 10.1.1.9 is bypassed (local), 10.7.7.7 is not (proxy_all: remote).
q udp "$d1" 9.1.1.10.in-addr.arpa 12 >/dev/null
q udp "$d1" 7.7.7.10.in-addr.arpa 12 >/dev/null
if [[ $(count local "^udp 9.1.1.10.in-addr.arpa 12$") -eq 1 &&
  $(count remote "9.1.1.10.in-addr.arpa") -eq 0 &&
  $(count remote "^tcp 7.7.7.10.in-addr.arpa 12$") -eq 1 &&
  $(count local "7.7.7.10.in-addr.arpa") -eq 0 ]]; then
  pass "PTR queries go where the ACL routes their address"
else
  fail "PTR: local log $(tr '\n' ';' <"$work/local.queries"); remote log $(tail -3 "$work/remote.queries" | tr '\n' ';')"
fi

# shadowsocks-rust's flags, without a file.
start "$work/l5.log" "$d5" "$bin_dir/ss-local" -s 127.0.0.1 -p "$s1" -m "$method" -k "$password" \
  -b 127.0.0.1 -l "$d5" --protocol dns --local-dns-addr "127.0.0.1:$local_dns" \
  --remote-dns-addr "127.0.0.1:$remote_dns" --acl "$work/acl"
a=$(q udp "$d5" direct.test)
b=$(q tcp "$d5" flags.proxied.test)
check "--protocol dns --local-dns-addr --remote-dns-addr: a DNS local" "$a $b" "10.1.1.1 10.2.2.9"
if out=$("$bin_dir/ss-local" -s 127.0.0.1 -p "$s1" -m "$method" -k "$password" -l "$d2" \
  --protocol dns --local-dns-addr resolver.example 2>&1); then
  fail "--local-dns-addr resolver.example was accepted"
elif [[ "$out" == *"--local-dns-addr: must be IP or IP:PORT"* ]]; then
  pass "a bad --local-dns-addr is refused, naming the flag"
else
  fail "--local-dns-addr resolver.example: unexpected message: $out"
fi

if [[ $libev -eq 1 ]]; then
  a=$(q udp "$d2" libev.test)
  check "through shadowsocks-libev's ss-server: the remote resolver's answer" "$a" "10.2.2.3"
else
  fail "shadowsocks-libev's ss-server is not installed (scripts/setup.sh installs it)"
fi

read -r a ms < <(q join)
if [[ "$a" == "rcode_2" && $ms -ge 4900 && $ms -le 8000 ]]; then
  pass "a local resolver that does not answer: SERVFAIL after $ms ms"
else
  fail "silent resolver: got '$a' after $ms ms, want SERVFAIL (rcode 2) after 5 s"
fi

# Metrics: l1 answered from each upstream and the cache; l3's silent resolver is one failure.
curl -s "http://127.0.0.1:$m1/metrics" >"$work/m1.txt"
curl -s "http://127.0.0.1:$m3/metrics" >"$work/m3.txt"
metric() { awk -v k="$2" '$1 == k { print $2 }' "$work/$1"; }
remote_n=$(metric m1.txt 'shadowsocks_dns_inbound_answers_total{upstream="remote"}')
local_n=$(metric m1.txt 'shadowsocks_dns_inbound_answers_total{upstream="local"}')
cache_n=$(metric m1.txt 'shadowsocks_dns_inbound_answers_total{upstream="cache"}')
hist_n=$(metric m1.txt 'shadowsocks_dns_inbound_answer_seconds_count')
fail_n=$(metric m3.txt 'shadowsocks_dns_inbound_failures_total{upstream="local"}')
if [[ ${remote_n:-0} -ge 100 && ${local_n:-0} -ge 100 && ${cache_n:-0} -ge 2 &&
  ${hist_n:-0} -eq $((remote_n + local_n + cache_n)) && ${fail_n:-0} -eq 1 ]] &&
  promtool check metrics <"$work/m1.txt" >"$work/promtool.txt" 2>&1; then
  pass "metrics: $remote_n remote, $local_n local, $cache_n cached answers, $fail_n failure (promtool accepts them)"
else
  fail "metrics: remote '$remote_n' local '$local_n' cache '$cache_n' histogram '$hist_n' failures '$fail_n'; promtool: $(cat "$work/promtool.txt" 2>/dev/null)"
fi

local_config "$work/bad.json" "$s1" "$d2" ', "client_cache_size": 5'
if out=$("$bin_dir/ss-local" -c "$work/bad.json" 2>&1); then
  fail "client_cache_size was accepted"
elif [[ "$out" == *"client_cache_size: not supported"* ]]; then
  pass "client_cache_size is refused: ${out:0:90}..."
else
  fail "client_cache_size: unexpected message: $out"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
