#!/usr/bin/env bash
# The Prometheus endpoint (metrics_address) end to end, scraped by a real Prometheus server:
#   * a classic ss-server (aes-256-gcm) with an ACL that blocks 127.0.0.2, and a 2022 ss-server
#     with the SIP023 user alice, both with --metrics-address on loopback;
#   * 1 MiB downloads from a local web server through our ss-local and shadowsocks-libev's
#     ss-local (classic) and our ss-local as alice (2022); a name looked up by the server
#     (localhost) and one that cannot be (.invalid); 3 probes of random bytes; 1 refused target;
#     2 datagrams from 2 sockets through ss-tunnel -u (the server keeps 1 association, 3 s);
#   * the endpoint's own answers: 200 with the 0.0.4 Content-Type, 404, 405, 400, and the body
#     accepted by `promtool check metrics`;
#   * Prometheus (Debian's `prometheus`, scrape_interval 1s, its TSDB in the test's directory)
#     scrapes both servers, and its HTTP API (/api/v1/query) must report: bytes >= the sizes
#     sent, per port and per user; opened == the connections made; rejects == the probes sent;
#     targets refused == 1; the time-to-key histogram's counts; DNS lookups and failures; UDP
#     associations created, evicted and expired; and every active-connections gauge back to 0.
#
# Usage: tests/scripts/metrics_prometheus_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
# Needs prometheus, promtool, shadowsocks-libev's ss-local, curl and python3 (scripts/setup.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
setup_work ss-metrics

read -r web srv srv22 loc loc_libev loc22 met met22 prom tun echo <<<"$(free_ports 11)"
size=$((1 << 20))
head -c "$size" /dev/urandom >"$work/file.bin"
printf '[outbound_block_list]\n127.0.0.2\n' >"$work/server.acl"
ipsk=$(head -c 16 /dev/urandom | base64)
upsk=$(head -c 16 /dev/urandom | base64)
cat >"$work/server22.json" <<JSON
{"server": "127.0.0.1", "server_port": $srv22, "method": "2022-blake3-aes-128-gcm",
 "password": "$ipsk", "users": [{"name": "alice", "password": "$upsk"}],
 "allow_private_targets": true, "metrics_address": "127.0.0.1:$met22", "state_dir": ""}
JSON
cat >"$work/local22.json" <<JSON
{"server": "127.0.0.1", "server_port": $srv22, "local_address": "127.0.0.1",
 "local_port": $loc22, "method": "2022-blake3-aes-128-gcm", "password": "$ipsk:$upsk",
 "state_dir": ""}
JSON

start "$work/web.log" "$web" python3 -m http.server "$web" --bind 127.0.0.1 --directory "$work"
start "$work/server.log" "$srv" "$bin_dir/ss-server" -s 127.0.0.1 -p "$srv" -k metrics-pw \
  -m aes-256-gcm --allow-private-targets --acl "$work/server.acl" \
  --metrics-address "127.0.0.1:$met" --state-dir "" -u --udp-timeout 3 --udp-max-associations 1 --workers 1
wait_listening "$met" || fail "ss-server does not serve metrics on $met"
start "$work/server22.log" "$srv22" "$bin_dir/ss-server" -c "$work/server22.json"
start "$work/local.log" "$loc" "$bin_dir/ss-local" -s 127.0.0.1 -p "$srv" -l "$loc" \
  -k metrics-pw -m aes-256-gcm --state-dir ""
start "$work/local-libev.log" "$loc_libev" /usr/bin/ss-local -s 127.0.0.1 -p "$srv" \
  -l "$loc_libev" -k metrics-pw -m aes-256-gcm
start "$work/local22.log" "$loc22" "$bin_dir/ss-local" -c "$work/local22.json"
start "$work/tunnel.log" "$tun" "$bin_dir/ss-tunnel" -s 127.0.0.1 -p "$srv" -l "$tun" \
  -k metrics-pw -m aes-256-gcm -u -L "127.0.0.1:$echo" --state-dir ""

# --- the endpoint itself ---
headers=$(curl -s -D - -o "$work/body.txt" "http://127.0.0.1:$met/metrics")
if grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' <<<"$headers"; then
  pass "GET /metrics: the 0.0.4 Content-Type"
else
  fail "GET /metrics: headers were: $headers"
fi
for want in "404 /other GET" "405 /metrics POST" "405 /metrics DELETE"; do
  read -r code path method <<<"$want"
  got=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" "http://127.0.0.1:$met$path")
  [[ $got == "$code" ]] && pass "$method $path: $code" || fail "$method $path: $got, not $code"
done
got=$(python3 - "$met" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metrics HTTP/1.1\nHost: x\n\n")  # bare LF: malformed
print(s.recv(100).split(b" ")[1].decode())
PY
)
[[ $got == 400 ]] && pass "a bare-LF request: 400" || fail "a bare-LF request: $got"

# --- traffic ---
for p in "$loc" "$loc_libev" "$loc22"; do
  curl -s --max-time 30 --socks5 "127.0.0.1:$p" "http://127.0.0.1:$web/file.bin" -o "$work/got.bin"
  cmp -s "$work/got.bin" "$work/file.bin" && pass "1 MiB through port $p" \
    || fail "1 MiB through port $p differs"
done
if curl -s --max-time 30 --socks5-hostname "127.0.0.1:$loc" \
  "http://localhost:$web/server.acl" -o "$work/got.acl" && cmp -s "$work/got.acl" "$work/server.acl"; then
  pass "a name resolved by ss-server"
else
  fail "fetching http://localhost:$web through ss-server"
fi
if curl -s --max-time 30 --socks5-hostname "127.0.0.1:$loc" "http://no-such-host.invalid:$web/" \
  -o /dev/null; then
  fail "no-such-host.invalid answered"
else
  pass "no-such-host.invalid fails"
fi
if curl -s --max-time 30 --socks5 "127.0.0.1:$loc" "http://127.0.0.2:$web/" -o /dev/null; then
  fail "the ACL did not refuse 127.0.0.2"
else
  pass "127.0.0.2 refused"
fi
# Probes: 100 random bytes each, then close (the server sends nothing back).
python3 - "$srv" <<'PY'
import os, socket, sys, time
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(os.urandom(100))
    time.sleep(0.2)
    s.close()
PY

# UDP: two client sockets through ss-tunnel to an echo server make two associations on
# ss-server, whose cap of 1 evicts the first (one worker: the cap is shared out among workers);
# the second expires after 3 idle seconds.
if python3 - "$tun" "$echo" <<'PY'; then
import socket, sys, threading
tun, echo = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", echo))
def serve():
    for _ in range(2):
        data, addr = srv.recvfrom(2048)
        srv.sendto(data, addr)
threading.Thread(target=serve, daemon=True).start()
for i in range(2):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(10)
    msg = b"datagram %d" % i
    c.sendto(msg, ("127.0.0.1", tun))
    assert c.recvfrom(2048)[0] == msg
PY
  pass "2 datagrams echoed through ss-tunnel -u"
else
  fail "datagrams through ss-tunnel -u"
fi

# --- the body, checked by promtool ---
curl -s "http://127.0.0.1:$met/metrics" >"$work/body.txt"
if promtool check metrics <"$work/body.txt" >"$work/promtool.txt" 2>&1; then
  pass "promtool check metrics accepts the body"
else
  fail "promtool check metrics: $(cat "$work/promtool.txt")"
fi

# --- Prometheus ---
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shadowsocks
    static_configs:
      - targets: ["127.0.0.1:$met", "127.0.0.1:$met22"]
YML
start "$work/prometheus.log" "$prom" prometheus --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/tsdb" --web.listen-address="127.0.0.1:$prom"

# expect TEXT PROMQL OP VALUE: polls Prometheus' API (30 s at most) until the query's single
# value compares to VALUE by OP (==, >=); the last value is in the failure line.
expect() {
  local got
  if got=$(python3 - "$prom" "$2" "$3" "$4" <<'PY'
import json, sys, time, urllib.parse, urllib.request
port, query, op, want = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
url = "http://127.0.0.1:%s/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))
got = "nothing"
for _ in range(60):
    try:
        r = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
        got = r[0]["value"][1] if len(r) == 1 else "%d series" % len(r)
        if len(r) == 1 and (float(got) == want if op == "==" else float(got) >= want):
            print(got)
            sys.exit(0)
    except OSError as e:
        got = str(e)
    time.sleep(0.5)
print(got)
sys.exit(1)
PY
  ); then
    pass "$1: $got $3 $4"
  else
    fail "$1: $2 = $got, not $3 $4"
  fi
}
c="instance=\"127.0.0.1:$met\""
t="instance=\"127.0.0.1:$met22\""
expect "build_info" "shadowsocks_build_info{$c}" == 1
expect "bytes target to proxy, classic port" \
  "sum(shadowsocks_data_bytes_total{$c,port=\"$srv\",dir=\"t>p\"})" '>=' $((2 * size))
expect "bytes proxy to client, classic port" \
  "sum(shadowsocks_data_bytes_total{$c,port=\"$srv\",dir=\"p>c\"})" '>=' $((2 * size))
expect "bytes client to proxy >= proxy to target (ciphertext in)" \
  "sum(shadowsocks_data_bytes_total{$c,dir=\"c>p\"}) - sum(shadowsocks_data_bytes_total{$c,dir=\"p>t\"})" \
  '>=' 1
expect "bytes to alice" "shadowsocks_data_bytes_total{$t,port=\"$srv22\",user=\"alice\",dir=\"p>c\"}" \
  '>=' "$size"
expect "nothing counted without a user on the 2022 port" \
  "sum(shadowsocks_data_bytes_total{$t,user=\"\"})" == 0
# On the classic port: 2 downloads, 1 fetch by name, 1 failed lookup, 1 refused target, and the
# connection ss-tunnel opened for start()'s readiness check of its TCP port.
expect "connections opened, classic port" \
  "shadowsocks_tcp_connections_opened_total{$c,port=\"$srv\",user=\"\"}" == 6
# Those 6, the 3 probes, and start()'s readiness check of ss-server's own port.
expect "connections accepted, classic port" \
  "shadowsocks_tcp_connections_accepted_total{$c,port=\"$srv\"}" == 10
expect "connections opened by alice" "shadowsocks_tcp_connections_opened_total{$t,user=\"alice\"}" == 1
expect "probe rejects (auth)" "shadowsocks_tcp_probe_rejects_total{$c,reason=\"auth\"}" == 3
expect "probe rejects (replay)" "shadowsocks_tcp_probe_rejects_total{$c,reason=\"replay\"}" == 0
expect "targets refused" "shadowsocks_targets_refused_total{$c}" == 1
expect "key searches that failed" "shadowsocks_key_search_seconds_count{$c,found=\"false\"}" == 3
expect "key searches that found the key" \
  "shadowsocks_key_search_seconds_count{$c,found=\"true\"}" == 6
expect "DNS lookups" "shadowsocks_dns_resolve_seconds_count{$c}" == 2
expect "DNS failures" "shadowsocks_dns_failures_total{$c}" == 1
expect "UDP associations created" "shadowsocks_udp_associations_created_total{$c}" == 2
expect "UDP associations evicted" "shadowsocks_udp_associations_evicted_total{$c}" == 1
expect "UDP associations expired" "shadowsocks_udp_associations_expired_total{$c}" == 1
expect "no connection left active" "sum(shadowsocks_tcp_connections_active)" == 0
expect "closed == opened" \
  "sum(shadowsocks_tcp_connections_closed_total) - sum(shadowsocks_tcp_connections_opened_total)" \
  == 0

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
