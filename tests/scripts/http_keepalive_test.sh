#!/usr/bin/env bash
# HTTP proxy keep-alive through ss-local's mixed port and our ss-server, with real clients and
# origins: one curl invocation with -x http://127.0.0.1:PORT sends nine requests on one proxy
# connection to two origins (nginx from Debian, started here with its own configuration on a
# free port, and a small python3 origin that echoes POST bodies): GETs byte-exact, a gzip'ed
# chunked response, HEAD, 304 (If-None-Match), POST with a Content-Length body (echoed
# byte-exact), POST with a chunked body, and a GET afterwards. curl -v must show it re-used the
# proxy connection for every request after the first, and ss-server's log must show a new
# Shadowsocks stream each time the origin changed (and only then). Hostile origins and clients:
# a bad chunk size from the origin closes the client connection; an oversized request head gets
# 431 and the connection ends; a pipelined second request to a dead port is held until the
# first response is complete, then answered 502, and the connection ends.
#
# Usage: tests/scripts/http_keepalive_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
#
# Everything listens on 127.0.0.1, on free ports; every process started is stopped at the end.
# Needs curl, nginx and python3 (scripts/setup.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
require_tools curl python3 "$nginx_bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-http-keepalive.XXXXXX")
chmod 755 "$work" # nginx's workers may run as another user
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_ports() { # free_ports N: N distinct free TCP ports on 127.0.0.1
  python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
read -r nginx_port py_port server_port local_port dead_port < <(free_ports 5)
method=aes-128-gcm
password=http-keepalive-password

# --- the origins ---

www=$work/nginx/www
mkdir -p "$www" "$work/nginx/tmp" "$work/py"
head -c $((3 << 20)) /dev/urandom >"$www/big.bin"
head -c $((1 << 20)) /dev/urandom >"$work/py/b.bin"
head -c $((300 << 10)) /dev/urandom >"$work/post.bin"
python3 -c 'import sys; sys.stdout.write("".join("line %d of a text nginx gzips on the fly\n" % i for i in range(20000)))' >"$www/text.txt"
chmod -R a+rX "$work/nginx"
start_nginx "$work/nginx" "$nginx_port" "$nginx_bin" "
  types { text/plain txt; application/octet-stream bin; }
  keepalive_timeout 60s;
  gzip on;
  gzip_types text/plain;
  gzip_min_length 1;
  server {
    listen 127.0.0.1:$nginx_port;
    root $www;
    location = /post { return 200 \"posted\\n\"; }
  }"

cat >"$work/origin.py" <<'EOF'
# A keep-alive HTTP/1.1 origin: GET /b.bin, POST /echo (the body back), GET /badchunk (a chunked
# response with a chunk size that is not hex, and the connection left open).
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, body, ctype="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/b.bin":
            with open(sys.argv[2], "rb") as f:
                self.reply(f.read())
        elif self.path == "/badchunk":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\nzz\r\nmore\r\n")
            self.wfile.flush()
            time.sleep(30)
        else:
            self.send_error(404)
    def do_POST(self):
        self.reply(self.rfile.read(int(self.headers["Content-Length"])))
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
start "$work/origin.log" "$py_port" python3 "$work/origin.py" "$py_port" "$work/py/b.bin"

# --- the proxy ---

start "$work/server.log" "$server_port" "$bin_dir/ss-server" -s 127.0.0.1 -p "$server_port" \
  -k "$password" -m "$method" --allow-private-targets -v
server_pid=${pids[-1]}
start "$work/local.log" "$local_port" "$bin_dir/ss-local" -s 127.0.0.1 -p "$server_port" \
  -b 127.0.0.1 -l "$local_port" -k "$password" -m "$method" -v

# --- nine requests, two origins, one proxy connection ---

n=http://127.0.0.1:$nginx_port
p=http://127.0.0.1:$py_port
etag=$(printf '"%x-%x"' "$(stat -c %Y "$www/big.bin")" "$(stat -c %s "$www/big.bin")")
o=$work/out
mkdir -p "$o"
common=(--silent --show-error --max-time 30 --noproxy "" -x "http://127.0.0.1:$local_port")
set +e
curl -v "${common[@]}" "$n/big.bin" -o "$o/1" \
  --next "${common[@]}" "$p/b.bin" -o "$o/2" \
  --next "${common[@]}" "$n/big.bin" -o "$o/3" \
  --next "${common[@]}" --compressed "$n/text.txt" -o "$o/4" \
  --next "${common[@]}" --head "$n/big.bin" -o "$o/5" \
  --next "${common[@]}" -H "If-None-Match: $etag" "$n/big.bin" -o "$o/6" -w '%{http_code}\n' \
  --next "${common[@]}" --data-binary "@$work/post.bin" -H "Content-Type: application/x-test" \
  "$p/echo" -o "$o/7" \
  --next "${common[@]}" -H "Transfer-Encoding: chunked" --data-binary "@$work/post.bin" \
  "$n/post" -o "$o/8" \
  --next "${common[@]}" "$n/big.bin" -o "$o/9" >"$work/curl.out" 2>"$work/curl.log"
curl_status=$?
set -e
if [[ $curl_status -eq 0 ]]; then pass "curl ran nine requests (exit 0)"; else fail "curl exit $curl_status"; fi

same() { # same FILE EXPECTED LABEL
  if cmp -s "$1" "$2"; then pass "$3 byte-exact"; else fail "$3 differs"; fi
}
same "$o/1" "$www/big.bin" "nginx GET"
same "$o/2" "$work/py/b.bin" "python origin GET"
same "$o/3" "$www/big.bin" "nginx GET again (a new Shadowsocks stream)"
same "$o/4" "$www/text.txt" "gzip'ed chunked response, decoded"
same "$o/7" "$work/post.bin" "POST body echoed"
same "$o/9" "$www/big.bin" "nginx GET after the POSTs"
if grep -q '^< Transfer-Encoding: chunked' "$work/curl.log"; then
  pass "the text came chunked"
else
  fail "no chunked response seen"
fi
if grep -q '^HTTP/1.1 200' "$o/5" && grep -qi "^Content-Length: $(stat -c %s "$www/big.bin")" "$o/5"; then
  pass "HEAD: the head alone"
else
  fail "HEAD: $(head -c 300 "$o/5")"
fi
if grep -qx 304 "$work/curl.out" && [[ ! -s $o/6 ]]; then
  pass "If-None-Match: 304 without a body"
else
  fail "If-None-Match: $(cat "$work/curl.out")"
fi
if [[ $(cat "$o/8") == posted ]]; then pass "chunked POST answered"; else fail "chunked POST: $(head -c 100 "$o/8")"; fi

connected=$(grep -c '^\* Connected to' "$work/curl.log" || true)
reused=$(grep -c '^\* Re-using existing connection' "$work/curl.log" || true)
if [[ $connected -eq 1 && $reused -eq 8 ]]; then
  pass "one proxy connection, re-used for requests 2 to 9"
else
  fail "curl connected $connected times and re-used a connection $reused times (want 1 and 8)"
fi

# Shadowsocks streams: a new one for each change of origin (nginx, python, nginx, python, nginx).
sleep 0.5
kill "${pids[-1]}" 2>/dev/null || true # ss-local: its connections end, ss-server logs them
wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'
for ((i = 0; i < 50; i++)); do
  [[ $(grep -c 'server: 127.0.0.1:.* closed' "$work/server.log" || true) -ge 5 ]] && break
  sleep 0.1
done
to_nginx=$(grep -c "server: 127.0.0.1:$nginx_port closed" "$work/server.log" || true)
to_py=$(grep -c "server: 127.0.0.1:$py_port closed" "$work/server.log" || true)
if [[ $to_nginx -eq 3 && $to_py -eq 2 ]]; then
  pass "five Shadowsocks streams: three to nginx, two to the python origin"
else
  fail "Shadowsocks streams: $to_nginx to nginx, $to_py to python (want 3 and 2)"
fi
requests=$(grep -c '"' "$work/nginx/access.log" || true)
if [[ $requests -eq 7 ]]; then pass "nginx served 7 requests"; else fail "nginx served $requests requests"; fi

# --- hostile ---

start "$work/local2.log" "$local_port" "$bin_dir/ss-local" -s 127.0.0.1 -p "$server_port" \
  -b 127.0.0.1 -l "$local_port" -k "$password" -m "$method" -v
local2_pid=${pids[-1]}

# raw REQUEST_FILE OUT: sends the request through the proxy, reads until the proxy closes (at
# most 10 s); the status is timeout's (124 if the connection stayed open).
raw() {
  timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except ConnectionResetError:
    out += b"[reset]"
open(sys.argv[3], "wb").write(out)' "$local_port" "$1" "$2"
}

printf 'GET %s/badchunk HTTP/1.1\r\nHost: x\r\n\r\n' "$p" >"$work/bad.req"
if raw "$work/bad.req" "$work/bad.out"; then
  pass "a bad chunk size from the origin closes the client connection"
else
  fail "the client connection stayed open after a bad chunk size"
fi

{
  printf 'GET %s/b.bin HTTP/1.1\r\nX-Big: ' "$p"
  head -c 20000 /dev/zero | tr '\0' a
  printf '\r\n\r\n'
} >"$work/big.req"
if raw "$work/big.req" "$work/big.out" && grep -q '^HTTP/1.1 431 ' "$work/big.out"; then
  pass "an oversized request head gets 431 and the connection ends"
else
  fail "oversized request head: $(head -c 200 "$work/big.out" 2>/dev/null)"
fi

printf 'GET %s/b.bin HTTP/1.1\r\n\r\nGET http://127.0.0.1:%s/ HTTP/1.1\r\n\r\n' "$p" \
  "$dead_port" >"$work/two.req"
if raw "$work/two.req" "$work/two.out" &&
  python3 -c '
import sys
out, body = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
first = b"HTTP/1.1 200 OK\r\n"
assert out.startswith(first), out[:100]
head_end = out.index(b"\r\n\r\n") + 4
assert out[head_end:head_end + len(body)] == body
assert out[head_end + len(body):].startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), out[head_end + len(body):]
' "$work/two.out" "$work/py/b.bin"; then
  pass "a pipelined request to a dead port: the first response whole, then 502 and the end"
else
  fail "pipelined request to a dead port: $(head -c 200 "$work/two.out" 2>/dev/null)"
fi

# SIGTERM: a client connection idle between two requests is closed at once (it is not relaying).
if timeout 10 python3 -c '
import os, signal, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\n\r\n" % sys.argv[3]).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, _, body = buf.partition(b"\r\n\r\n")
length = [l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
while len(body) < int(length[0]):
    body += s.recv(65536)
os.kill(int(sys.argv[2]), signal.SIGTERM)
s.settimeout(5)  # the graceful shutdown would give a relaying connection 10 s
assert s.recv(1) == b""' "$local_port" "$local2_pid" "$p/b.bin"; then
  pass "SIGTERM closes a keep-alive connection idle between requests at once"
else
  fail "SIGTERM left a keep-alive connection idle between requests open"
fi

# Our binaries end cleanly on SIGTERM, and (in a sanitizer build) their logs hold no report.
kill "$local2_pid" "$server_pid" 2>/dev/null || true
wait "$local2_pid" "$server_pid" 2>/dev/null || true
if grep -lE 'Sanitizer|runtime error:' "$work/local.log" "$work/local2.log" "$work/server.log"; then
  fail "a sanitizer report in the logs above"
else
  pass "no sanitizer report in ss-local's and ss-server's logs"
fi

echo "$passed passed, $failed failed"
if [[ $failed -ne 0 ]]; then
  for f in curl.log local.log local2.log server.log nginx/error.log; do
    echo "--- $f"
    tail -n 40 "$work/$f" 2>/dev/null || true
  done
  exit 1
fi
