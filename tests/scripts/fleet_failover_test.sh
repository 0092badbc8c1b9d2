#!/usr/bin/env bash
# Failover and re-admission through the real binaries: three of our ss-servers, one ss-local
# with all three in "servers" (the balancer probing every 300 ms through the tunnel to a local
# HTTP origin), and a client making 20 connections a second through SOCKS5 to that origin, each
# one a GET checked byte for byte. The server in use is killed (SIGKILL) mid-run: no connection
# may fail after the failover window (1 s), and at most 1 % of all may fail inside it. ss-local
# must log the server down and the switch. Then the killed server is started again: ss-local
# must log it up again, and once the other two are killed, connections still succeed, through
# it (its log shows them). A server that accepts and closes without answering (the default
# handshake probe finds it healthy) costs no connection: each is retried on the next server.
# Also `-s ss://` end to end against our ss-server and, if installed, shadowsocks-libev's, and
# `--url` output used as the server list.
#
# Usage: tests/scripts/fleet_failover_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
#
# Everything listens on 127.0.0.1, on free ports; every process started is stopped at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

setup_work ss-fleet
read -r origin_port s0 s1 s2 local_port local2_port libev_port closer_port local4_port < <(free_ports 9)

# The origin: a small HTTP server whose body names the request path.
cat >"$work/origin.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
start "$work/origin.log" "$origin_port" python3 "$work/origin.py" "$origin_port"

# The client: RATE connections a second for SECONDS through SOCKS5; one line per connection:
# "<time since start> ok|fail".
cat >"$work/client.py" <<'PY'
import socket, struct, sys, time, threading
socks_port, origin_port, rate, seconds = map(float, sys.argv[1:5])
out = open(sys.argv[5], "w", buffering=1)
lock = threading.Lock()
t0 = time.monotonic()
def one(i):
    start = time.monotonic() - t0
    ok = False
    try:
        s = socket.create_connection(("127.0.0.1", int(socks_port)), timeout=10)
        s.settimeout(10)
        s.sendall(b"\x05\x01\x00")
        if s.recv(2) != b"\x05\x00": raise Exception("greeting")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", int(origin_port)))
        rep = b""
        while len(rep) < 10:
            d = s.recv(10 - len(rep))
            if not d: raise Exception("reply")
            rep += d
        if rep[1] != 0: raise Exception("refused")
        s.sendall(("GET /c%d HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n" % i).encode())
        data = b""
        while True:
            d = s.recv(4096)
            if not d: break
            data += d
        ok = data.startswith(b"HTTP/1.1 200") and data.endswith(("hello /c%d\n" % i).encode())
        s.close()
    except Exception:
        ok = False
    with lock:
        out.write("%.3f %s\n" % (start, "ok" if ok else "fail"))
threads = []
n = int(rate * seconds)
for i in range(n):
    target = t0 + i / rate
    d = target - time.monotonic()
    if d > 0: time.sleep(d)
    t = threading.Thread(target=one, args=(i,))
    t.start()
    threads.append(t)
for t in threads: t.join()
PY

key() { "$bin_dir/ss-server" --genkey "$1"; }
k0=$(key 2022-blake3-aes-128-gcm)
pw1="classic password one"
pw2="classic password two"
start "$work/s0.log" "$s0" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s0" -m 2022-blake3-aes-128-gcm \
  -k "$k0" --allow-private-targets -v
start "$work/s1.log" "$s1" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s1" -m aes-256-gcm -k "$pw1" \
  --allow-private-targets -v
start "$work/s2.log" "$s2" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s2" -m chacha20-ietf-poly1305 \
  -k "$pw2" --allow-private-targets -v
s0_pid=${pids[1]}
s1_pid=${pids[2]}
s2_pid=${pids[3]}

cat >"$work/local.json" <<JSON
{
  "local_address": "127.0.0.1", "local_port": $local_port, "timeout": 30,
  "servers": [
    {"server": "127.0.0.1", "server_port": $s0, "method": "2022-blake3-aes-128-gcm",
     "password": "$k0"},
    {"address": "127.0.0.1", "port": $s1, "method": "aes-256-gcm", "password": "$pw1"},
    {"server": "127.0.0.1", "server_port": $s2, "method": "chacha20-ietf-poly1305",
     "password": "$pw2"}
  ],
  "balancer": {"mode": "best", "check_interval_ms": 300, "max_server_rtt": 1,
               "connect_timeout": 2, "probe_target": "127.0.0.1:$origin_port",
               "min_switch_interval": 60}
}
JSON
start "$work/local.log" "$local_port" "$bin_dir/ss-local" -c "$work/local.json" -v
local_pid=${pids[-1]}

# --- the server in use is killed while connections arrive at 20/s ------------------------------
python3 "$work/client.py" "$local_port" "$origin_port" 20 12 "$work/run1.txt" &
client_pid=$!
sleep 4
kill_at=$(python3 -c 'import time; print(time.monotonic())')
kill -KILL "$s0_pid"
wait "$s0_pid" 2>/dev/null || true
wait "$client_pid"
total=$(wc -l <"$work/run1.txt")
# The kill came ~4 s after the client started: the failover window is [4, 5) s.
read -r inside after < <(awk '$2 == "fail" { if ($1 >= 3.8 && $1 < 5.0) i++; else if ($1 >= 5.0) a++ }
  END { print i + 0, a + 0 }' "$work/run1.txt")
echo "run 1: $total connections, $inside failed inside the failover window, $after after it"
early=$(awk '$2 == "fail" && $1 < 3.8' "$work/run1.txt" | wc -l)
if [[ $total -ge 230 && $early -eq 0 && $after -eq 0 && $((inside * 100)) -le $total ]]; then
  pass "killed server: 0 failures after the failover window, $inside of $total inside it"
else
  fail "killed server: $early failures before the kill, $inside inside the window, $after after ($total connections)"
fi
if grep -q "balancer: server 127.0.0.1:$s0 is down" "$work/local.log" &&
  grep -q "balancer: switched from server 127.0.0.1:$s0 to" "$work/local.log"; then
  pass "ss-local logged the server down and the switch"
else
  fail "no down/switch line in ss-local's log"
  grep balancer "$work/local.log" || true
fi

# --- restarted: re-admitted after its probes pass ------------------------------------------------
start "$work/s0b.log" "$s0" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s0" -m 2022-blake3-aes-128-gcm \
  -k "$k0" --allow-private-targets -v
for ((i = 0; i < 50; i++)); do
  grep -q "balancer: server 127.0.0.1:$s0 is up again" "$work/local.log" && break
  sleep 0.1
done
if grep -q "balancer: server 127.0.0.1:$s0 is up again" "$work/local.log"; then
  pass "the restarted server is logged up again"
else
  fail "the restarted server was not re-admitted"
fi
kill -KILL "$s1_pid" "$s2_pid"
wait "$s1_pid" "$s2_pid" 2>/dev/null || true
sleep 1
python3 "$work/client.py" "$local_port" "$origin_port" 20 2 "$work/run2.txt"
ok2=$(grep -c ' ok$' "$work/run2.txt" || true)
through=$(grep -c "127.0.0.1:$origin_port closed: done" "$work/s0b.log" || true)
if [[ $ok2 -eq 40 && $through -ge 40 ]]; then
  pass "with the other two gone, 40 of 40 connections went through the re-admitted server"
else
  fail "after re-admission: $ok2 of 40 succeeded, $through reached the restarted server"
fi

# --- a server that accepts and closes before answering: the request goes to the next one ---------
cat >"$work/closer.py" <<'PY'
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
while True:
    c, _ = srv.accept()
    c.settimeout(2)
    try: c.recv(65536)
    except Exception: pass
    c.close()
PY
start "$work/closer.log" "$closer_port" python3 "$work/closer.py" "$closer_port"
# The default probe (a TCP handshake) finds the closer healthy: only failover saves the request.
start "$work/local4.log" "$local4_port" "$bin_dir/ss-local" -l "$local4_port" -v \
  -s "ss://2022-blake3-aes-128-gcm:$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$k0")@127.0.0.1:$closer_port" \
  -s "ss://2022-blake3-aes-128-gcm:$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$k0")@127.0.0.1:$s0"
python3 "$work/client.py" "$local4_port" "$origin_port" 20 1 "$work/run5.txt"
retried=$(grep -c "server 127.0.0.1:$closer_port closed before answering; trying server 127.0.0.1:$s0" "$work/local4.log" || true)
if [[ $(grep -c ' ok$' "$work/run5.txt" || true) -eq 20 && $retried -ge 1 ]]; then
  pass "a server that closes before answering: 20 of 20 connections succeeded, $retried retried on the next"
else
  fail "a server that closes before answering: $(grep -c ' ok$' "$work/run5.txt" || true) of 20, $retried retried"
fi

# --- ss:// URIs end to end ------------------------------------------------------------------------
uri=$("$bin_dir/ss-local" -s 127.0.0.1 -p "$s0" -m 2022-blake3-aes-128-gcm -k "$k0" -l 1 --url)
start "$work/local2.log" "$local2_port" "$bin_dir/ss-local" -s "$uri" -l "$local2_port"
python3 "$work/client.py" "$local2_port" "$origin_port" 20 0.5 "$work/run3.txt"
if [[ $(grep -c ' ok$' "$work/run3.txt" || true) -eq 10 ]]; then
  pass "ss-local -s <its own --url output> (2022) reaches our ss-server"
else
  fail "ss-local -s ss://... (2022) against our ss-server"
fi
if command -v ss-server >/dev/null && [[ -x /usr/bin/ss-server ]]; then
  local3_port=$(free_ports 1)
  start "$work/libev.log" "$libev_port" /usr/bin/ss-server -s 127.0.0.1 -p "$libev_port" \
    -m chacha20-ietf-poly1305 -k "libev pass:word/1"
  uri=$("$bin_dir/ss-local" -s 127.0.0.1 -p "$libev_port" -m chacha20-ietf-poly1305 \
    -k "libev pass:word/1" -l 1 --url)
  # As a positional argument this time.
  start "$work/local3.log" "$local3_port" "$bin_dir/ss-local" -l "$local3_port" "$uri"
  python3 "$work/client.py" "$local3_port" "$origin_port" 20 0.5 "$work/run4.txt"
  if [[ $(grep -c ' ok$' "$work/run4.txt" || true) -eq 10 ]]; then
    pass "ss-local ss://... (positional, classic) reaches shadowsocks-libev's ss-server"
  else
    fail "ss-local ss://... against shadowsocks-libev's ss-server"
  fi
else
  echo "skip: shadowsocks-libev's ss-server is not installed"
fi

# ss-local ends cleanly on SIGTERM with its probes running (exit 0, no live handle left), and (in
# a sanitizer build) no log holds a report.
kill -TERM "$local_pid"
rc=0
wait "$local_pid" || rc=$?
if [[ $rc -eq 0 ]] && ! grep -q "live handles" "$work/local.log"; then
  pass "ss-local with the balancer exits 0 on SIGTERM, no handle left"
else
  fail "ss-local exit status $rc on SIGTERM; $(grep "live handles" "$work/local.log" || true)"
fi
no_sanitizer_reports "$work"/*.log

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
