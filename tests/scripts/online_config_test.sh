#!/usr/bin/env bash
# SIP008 online config (issue 13, item 7) through the real binaries. The test makes a CA and a
# server certificate with openssl and runs Debian's nginx on loopback (its own prefix and config,
# stopped by PID) serving a SIP008 document over TLS, plus a plain-HTTP origin for the traffic.
# ss-local has "online_config" with update_interval 1 s and the test's CA as "ca_file":
# - it fetches the list at start and a request through it reaches our ss-server, the one listed;
# - a slow 24 MiB download is started through that server; the document is changed to list
#   shadowsocks-libev's ss-server (another method and password) instead: ss-local logs the
#   change, new connections go to libev's server (ours sees none of them), and the download
#   started before finishes byte-exact;
# - broken documents keep the list in use, each with a warning: invalid JSON, an unknown method,
#   a body over 1 MiB, a 404, a certificate from a CA ss-local does not trust; the list in use
#   still serves;
# - a server with a plugin (obfs-local, before libev's ss-server with obfs-server) that first
#   appears in a refresh gets its plugin started and is used once it listens; when the list drops
#   it, its obfs-local process ends;
# - UDP follows the list too: ss-tunnel with the same online_config gets no answer through our
#   ss-server (TCP only), then an answer through libev's (-u) once the list names it;
# - without "ca_file" (the system store) the test's CA is not trusted: with a configured server
#   ss-local serves through it, and with none it exits 1 naming online_config; an http:// URL is
#   refused naming online_config.config_url;
# - ss-local exits 0 on SIGTERM with no live handle left.
#
# Usage: tests/scripts/online_config_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
# Needs openssl, nginx, curl, python3 and shadowsocks-libev (scripts/setup.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
require_tools openssl curl python3 "$nginx_bin" /usr/bin/ss-server obfs-local obfs-server

setup_work ss-online
chmod 755 "$work" # nginx's workers may run as another user
cd "$work"        # the binaries' replay state files go here
read -r tls_port http_port small_port ours_port libev_port local_port local2_port dead_port \
  tunnel_port echo_port plug_port < <(free_ports 11)

# --- certificates: the test's CA, nginx's certificate for 127.0.0.1 from it, and another CA ------
pki=$work/pki
mkdir -p "$pki"
make_ca() { # make_ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=shadowsocks-uv test $1" \
    -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>/dev/null
}
make_cert() { # make_cert NAME CA
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$pki/$1.key" \
    -out "$pki/$1.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial \
    -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
make_ca ca
make_ca other-ca
make_cert server ca
make_cert stranger other-ca
cp "$pki/server.pem" "$pki/live.pem"
cp "$pki/server.key" "$pki/live.key"

# --- nginx: the SIP008 document over TLS; a big and a small file over plain HTTP ----------------
www=$work/nginx/www
mkdir -p "$www/sub" "$work/nginx/tmp"
head -c $((24 << 20)) /dev/urandom >"$www/big.bin"
echo "small file" >"$www/small.txt"
secret=3f1c0d6e9a5b4c7d8e2f1a0b9c8d7e6f
doc=$www/sub/$secret.json
chmod -R a+rX "$work/nginx" "$pki"
start_nginx "$work/nginx" "$tls_port" "$nginx_bin" "
  types { application/json json; application/octet-stream bin; text/plain txt; }
  charset_types application/json;
  charset utf-8;
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $pki/live.pem;
    ssl_certificate_key $pki/live.key;
    root $www;
  }
  server {
    listen 127.0.0.1:$http_port;
    listen 127.0.0.1:$small_port;
    root $www;
  }"
nginx_pid=${pids[-1]}
url="https://127.0.0.1:$tls_port/sub/$secret.json"

# --- the servers: ours (aes-256-gcm) and shadowsocks-libev's (chacha20-ietf-poly1305) -----------
ours_pw="ours online password"
libev_pw="libev online password"
start "$work/ours.log" "$ours_port" "$bin_dir/ss-server" -s 127.0.0.1 -p "$ours_port" \
  -m aes-256-gcm -k "$ours_pw" --allow-private-targets -vv
start "$work/libev.log" "$libev_port" /usr/bin/ss-server -s 127.0.0.1 -p "$libev_port" \
  -m chacha20-ietf-poly1305 -k "$libev_pw" -u -v
start "$work/libev-plug.log" "$plug_port" /usr/bin/ss-server -s 127.0.0.1 -p "$plug_port" \
  -m chacha20-ietf-poly1305 -k "$libev_pw" -v --plugin obfs-server --plugin-opts obfs=http

write_doc() { # write_doc PORT METHOD PASSWORD: a SIP008 document listing one server
  cat >"$doc.tmp" <<EOF
{
  "version": 1,
  "servers": [
    {"id": "27b8a625-4f4b-4428-9f0f-8a2317db7c79", "remarks": "test server",
     "server": "127.0.0.1", "server_port": $1, "password": "$3", "method": "$2",
     "custom_field": "ignored"}
  ],
  "bytes_used": 274877906944,
  "bytes_remaining": 824633720832
}
EOF
  chmod a+r "$doc.tmp"
  mv "$doc.tmp" "$doc"
}
write_doc "$ours_port" aes-256-gcm "$ours_pw"

cat >"$work/local.json" <<EOF
{
  "local_address": "127.0.0.1", "local_port": $local_port, "timeout": 60, "state_dir": "",
  "online_config": {"config_url": "$url", "update_interval": 1, "ca_file": "$pki/ca.pem"}
}
EOF
start "$work/local.log" "$local_port" "$bin_dir/ss-local" -c "$work/local.json" -v
local_pid=${pids[-1]}

# UDP: ss-tunnel with the same online_config forwards datagrams to a UDP echo server. Our
# ss-server relays TCP only and libev's relays UDP too, so a datagram comes back only once the
# list names libev's server.
cat >"$work/echo.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
PY
python3 "$work/echo.py" "$echo_port" &
pids+=($!)
sed -e "s/\"local_port\": $local_port/\"local_port\": $tunnel_port/" \
  -e "s/\"timeout\": 60,/\"timeout\": 60, \"mode\": \"tcp_and_udp\",/" \
  "$work/local.json" >"$work/tunnel.json"
start "$work/tunnel.log" "$tunnel_port" "$bin_dir/ss-tunnel" -c "$work/tunnel.json" \
  -L "127.0.0.1:$echo_port" -v
# udp_echo: one datagram through ss-tunnel from a new socket (a new association); "ok" if it
# came back.
udp_echo() {
  python3 - "$tunnel_port" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
msg = os.urandom(600)
s.sendto(msg, ("127.0.0.1", int(sys.argv[1])))
try:
    print("ok" if s.recvfrom(65535)[0] == msg else "wrong")
except socket.timeout:
    print("none")
PY
}

# get PORT: the small file through ss-local; prints the body.
get() {
  curl -sS --max-time 10 --socks5-hostname "127.0.0.1:$local_port" "http://127.0.0.1:$1/small.txt"
}
ours_connects() { grep -c "connect 127.0.0.1:$small_port" "$work/ours.log" || true; }
# wait_log PATTERN COUNT: until ss-local's log has COUNT lines matching PATTERN (15 s at most).
wait_log() {
  local i
  for ((i = 0; i < 150; i++)); do
    [[ $(grep -c -- "$1" "$work/local.log" || true) -ge $2 ]] && return 0
    sleep 0.1
  done
  return 1
}

if grep -q "online_config: 1 server from https://127.0.0.1:$tls_port/\.\.\." "$work/local.log" &&
  ! grep -q "$secret" "$work/local.log"; then
  pass "ss-local fetched the list at start (its log names the host, never the URL's secret path)"
else
  fail "no start-up fetch line in ss-local's log"
  cat "$work/local.log"
fi
if [[ $(get "$small_port") == "small file" && $(ours_connects) -eq 1 ]]; then
  pass "a request through ss-local reaches our ss-server, the server the document lists"
else
  fail "a request through the fetched server"
fi

if [[ $(udp_echo) == none ]]; then
  pass "UDP before the refresh: no answer (our ss-server, the one listed, relays TCP only)"
else
  fail "UDP before the refresh came back: it did not go to the listed server"
fi

# --- the list changes under a live transfer ------------------------------------------------------
curl -sS --max-time 60 --limit-rate 4M --socks5-hostname "127.0.0.1:$local_port" \
  -o "$work/big.out" "http://127.0.0.1:$http_port/big.bin" 2>"$work/big.err" &
big_pid=$!
for ((i = 0; i < 50; i++)); do
  [[ $(stat -c %s "$work/big.out" 2>/dev/null || echo 0) -gt $((1 << 20)) ]] && break
  sleep 0.1
done
write_doc "$libev_port" chacha20-ietf-poly1305 "$libev_pw"
if wait_log "removed: 127.0.0.1:$ours_port" 1 && wait_log "added: 127.0.0.1:$libev_port" 1; then
  pass "ss-local logged the change (libev's server added, ours removed)"
else
  fail "no change line in ss-local's log"
fi
before=$(ours_connects)
ok=0
for i in 1 2 3 4 5; do
  [[ $(get "$small_port") == "small file" ]] && ok=$((ok + 1))
done
if [[ $ok -eq 5 && $(ours_connects) -eq $before ]] &&
  [[ $(grep -c "connect to 127.0.0.1:$small_port" "$work/libev.log" || true) -ge 5 ]]; then
  pass "after the refresh new connections go to shadowsocks-libev's ss-server (5 of 5; ours saw none)"
else
  fail "after the refresh: $ok of 5 succeeded; ours saw $(($(ours_connects) - before))"
fi
udp=none
for ((i = 0; i < 20; i++)); do
  grep -q "removed: 127.0.0.1:$ours_port" "$work/tunnel.log" && udp=$(udp_echo) && break
  sleep 0.2
done
if [[ $udp == ok ]]; then
  pass "UDP after the refresh: ss-tunnel's new association goes to libev's ss-server and back"
else
  fail "UDP after the refresh: $udp"
fi
big_rc=0
wait "$big_pid" || big_rc=$?
if [[ $big_rc -eq 0 ]] && cmp -s "$work/big.out" "$www/big.bin"; then
  pass "the 24 MiB download started before the refresh finished byte-exact"
else
  fail "the live download: curl exit $big_rc, $(stat -c %s "$work/big.out" 2>/dev/null) bytes"
  cat "$work/big.err"
fi
if grep -q "closed: .*$((24 << 20)) bytes" "$work/ours.log" ||
  grep -q "connect 127.0.0.1:$http_port" "$work/ours.log"; then
  pass "the download went through our ss-server, the server of its snapshot"
else
  fail "the download did not go through our ss-server"
fi

# --- broken documents keep the list in use -------------------------------------------------------
# broken WHAT PATTERN: a warning naming PATTERN comes (fetches run every second, so a warning
# about the document before may come first), and the list in use still serves.
broken() {
  local i found=0
  for ((i = 0; i < 150; i++)); do
    if grep "keeping the servers in use (1 from it)" "$work/local.log" | grep -q -- "$2"; then
      found=1
      break
    fi
    sleep 0.1
  done
  if [[ $found -eq 1 && $(get "$small_port") == "small file" ]]; then
    pass "$1: a warning, and the list in use still serves"
  else
    fail "$1: no warning naming '$2', or the list in use no longer serves"
    tail -n 5 "$work/local.log"
  fi
}
# A server with a plugin that first appears in a refresh: its obfs-local is started, and it is
# used once that listens (libev's ss-server behind obfs-server logs the connects).
write_doc "$plug_port" chacha20-ietf-poly1305 "$libev_pw"
sed -e 's/"custom_field": "ignored"/"plugin": "obfs-local", "plugin_opts": "obfs=http;obfs-host=www.example.com"/' \
  "$doc" >"$doc.tmp"
chmod a+r "$doc.tmp"
mv "$doc.tmp" "$doc"
plug_connects() { grep -c "connect to 127.0.0.1:$small_port" "$work/libev-plug.log" || true; }
ok=0
if wait_log "added: 127.0.0.1:$plug_port" 1; then
  for ((i = 0; i < 50 && $(plug_connects) == 0; i++)); do
    [[ $(get "$small_port") == "small file" ]] && ok=$((ok + 1))
    sleep 0.1
  done
fi
plug_pid=$(grep -o "plugin obfs-local (pid [0-9]*) for server 127.0.0.1:$plug_port" \
  "$work/local.log" | grep -o "pid [0-9]*" | tail -1 | cut -d' ' -f2)
if [[ $(plug_connects) -ge 1 && -n "$plug_pid" && -d "/proc/$plug_pid" ]] &&
  [[ $(get "$small_port") == "small file" ]]; then
  pass "a server with a plugin new in a refresh: its obfs-local started (pid $plug_pid), and used"
else
  fail "a new server with a plugin: $(plug_connects) connects through it, pid '$plug_pid'"
  grep -i plugin "$work/local.log" | tail -5
fi
write_doc "$libev_port" chacha20-ietf-poly1305 "$libev_pw"
for ((i = 0; i < 100 && ${#plug_pid} > 0; i++)); do
  [[ -d "/proc/$plug_pid" ]] || break
  sleep 0.1
done
if wait_log "removed: 127.0.0.1:$plug_port" 1 && [[ -n "$plug_pid" && ! -d "/proc/$plug_pid" ]]; then
  pass "the server dropped by a refresh: its obfs-local is retired and gone"
else
  fail "the dropped server's plugin ($plug_pid) still runs"
fi
printf '{"version": 1, "servers": [' >"$doc.tmp"
chmod a+r "$doc.tmp"
mv "$doc.tmp" "$doc"
broken "invalid JSON" "not valid JSON"
write_doc "$libev_port" rc4-md5-nope "$libev_pw"
broken "an unknown method" "servers\[0\].method: unknown method"
python3 -c 'import sys; sys.stdout.write("{\"version\": 1, \"pad\": \"" + "x" * (2 << 20) + "\"}")' \
  >"$doc.tmp"
chmod a+r "$doc.tmp"
mv "$doc.tmp" "$doc" # whole at once: a fetch never sees half of it
broken "a document over 1 MiB" "larger than 1048576 bytes"
rm -f "$doc"
broken "a 404" "HTTP status 404"
write_doc "$libev_port" chacha20-ietf-poly1305 "$libev_pw"
cp "$pki/stranger.pem" "$pki/live.pem"
cp "$pki/stranger.key" "$pki/live.key"
kill -HUP "$nginx_pid"
broken "a certificate from an untrusted CA" "certificate"
cp "$pki/server.pem" "$pki/live.pem"
cp "$pki/server.key" "$pki/live.key"
kill -HUP "$nginx_pid"

# --- the system store; http://; no server at all ------------------------------------------------
cat >"$work/local2.json" <<EOF
{
  "local_address": "127.0.0.1", "local_port": $local2_port, "state_dir": "",
  "server": "127.0.0.1", "server_port": $ours_port, "method": "aes-256-gcm",
  "password": "$ours_pw",
  "online_config": {"config_url": "$url", "update_interval": 3600}
}
EOF
start "$work/local2.log" "$local2_port" "$bin_dir/ss-local" -c "$work/local2.json"
if grep -q "first fetch of https://127.0.0.1:$tls_port/... failed: .*certificate" \
  "$work/local2.log" &&
  [[ $(curl -sS --max-time 10 --socks5-hostname "127.0.0.1:$local2_port" \
    "http://127.0.0.1:$small_port/small.txt") == "small file" ]]; then
  pass "system store: the test's CA is not trusted; the configured server serves meanwhile"
else
  fail "first fetch with the system store"
  cat "$work/local2.log"
fi
kill -TERM "${pids[-1]}"
rc=0
printf '{"state_dir": "", "online_config": {"config_url": "%s"}}' "$url" >"$work/nostatic.json"
"$bin_dir/ss-local" -l "$dead_port" -c "$work/nostatic.json" >"$work/nostatic.log" 2>&1 || rc=$?
if [[ $rc -eq 1 ]] && grep -q "online_config: the first fetch of .* failed" "$work/nostatic.log"; then
  pass "no configured server and a failed first fetch: exit 1 naming online_config"
else
  fail "no configured server and a failed first fetch: exit $rc"
  cat "$work/nostatic.log"
fi
rc=0
printf '{"state_dir": "", "online_config": {"config_url": "http://127.0.0.1:%s/x.json"}}' \
  "$http_port" \
  >"$work/http.json"
"$bin_dir/ss-local" -l "$dead_port" -c "$work/http.json" >"$work/http.log" 2>&1 || rc=$?
if [[ $rc -eq 1 ]] && grep -q "online_config.config_url: must be an https:// URL" "$work/http.log"; then
  pass "an http:// URL is refused, naming online_config.config_url"
else
  fail "an http:// URL: exit $rc"
  cat "$work/http.log"
fi

# --- a clean exit ---------------------------------------------------------------------------------
kill -TERM "$local_pid"
rc=0
wait "$local_pid" || rc=$?
if [[ $rc -eq 0 ]] && ! grep -q "live handles" "$work/local.log"; then
  pass "ss-local with online_config exits 0 on SIGTERM, no handle left"
else
  fail "ss-local's exit on SIGTERM: $rc"
fi
if grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$work"/*.log; then
  fail "a sanitizer report in a log"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
