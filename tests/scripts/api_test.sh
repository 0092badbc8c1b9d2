#!/usr/bin/env bash
# The management API (api_address) and its status page through the real binaries:
#   * ss-server with two ports that have users: a 2022 one (alice) and a classic one (dave), the
#     token in a file; GET / (apiVersion v1); no token and a wrong one: 401, with a warning that
#     names the source; malformed JSON: 400; an unknown user: 404; a name that exists: 400;
#   * POST /users adds bob (2022) and carol (classic); GET /users lists the four; at once, bob's
#     connection through our ss-local and carol's through shadowsocks-libev's ss-local move exact
#     byte counts (a target that reads U bytes and answers D), which GET /users/:name and
#     GET /stats report exactly; GET /stats?clear=true clears them;
#   * the status page in headless Chromium with one-time tickets: the DOM lists the users, bob's
#     ss:// link is the one expected, its QR code (inline SVG) has the modules that the qrencode
#     CLI makes for that link (and zbarimg decodes the screenshot);
#     a ticket used twice: 401; the screenshot is a PNG of the window's size that is not blank;
#   * PATCH gives carol a new key (the same key again: 400); DELETE /users/bob: 204, then bob's
#     new connections are refused while carol's go on;
#   * UDP (both ports serve it): erin (2022, through our ss-tunnel -U) and frank (classic, key
#     trial, through libev's ss-tunnel -U), added at run time, pass datagrams to an echo; their
#     stats count exactly the datagrams, payload bytes and associations (udpSessions); after
#     DELETE their datagrams are dropped;
#   * SIGHUP with a config that removes the classic port and adds a UDP-only one: the removed
#     port's UDP socket closes, the new one's binds and echoes through libev's ss-tunnel.
#
# Usage: tests/scripts/api_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
# Needs chromium, qrencode, zbarimg, shadowsocks-libev's ss-local, curl and python3 (scripts/setup.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
require_tools zbarimg qrencode
setup_work ss-api

read -r p22 pcl api loc22 loclibev loclibev2 target echo tun22 tuncl <<<"$(free_ports 10)"
token=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
printf '%s\n' "$token" >"$work/token"
ipsk=$(head -c 16 /dev/urandom | base64)
alice=$(head -c 16 /dev/urandom | base64)
bob=$(head -c 16 /dev/urandom | base64)
cat >"$work/server.json" <<JSON
{"servers": [
   {"server": "127.0.0.1", "server_port": $p22, "method": "2022-blake3-aes-128-gcm",
    "password": "$ipsk", "users": [{"name": "alice", "password": "$alice"}], "mode": "tcp_and_udp"},
   {"server": "127.0.0.1", "server_port": $pcl, "method": "aes-256-gcm", "mode": "tcp_and_udp",
    "users": [{"name": "dave", "password": "dave-pw"}]}],
 "allow_private_targets": true, "state_dir": "", "workers": 2,
 "api_address": "127.0.0.1:$api", "api_token_file": "$work/token"}
JSON

# The target: reads the U bytes of the first line's count, answers D bytes, closes. The client
# sends "U D\n" then U-len(line) more bytes through SOCKS5 and prints how many bytes came back.
cat >"$work/target.py" <<'PY'
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(16)
def serve(c):
    buf = b""
    while b"\n" not in buf:
        d = c.recv(65536)
        if not d: return c.close()
        buf += d
    up, down = map(int, buf.split(b"\n")[0].split())
    got = len(buf)
    while got < up:
        d = c.recv(65536)
        if not d: break
        got += len(d)
    c.sendall(b"x" * down); c.close()
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat >"$work/client.py" <<'PY'
import socket, struct, sys
socks, target, up, down = (int(a) for a in sys.argv[1:5])
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 20
try:
    s = socket.create_connection(("127.0.0.1", socks), timeout=timeout)
    s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", target))
    r = s.recv(10)
    if len(r) < 2 or r[1] != 0: print(-1); sys.exit()
    line = b"%d %d\n" % (up, down)
    s.sendall(line + b"u" * (up - len(line)))
    n = 0
    while True:
        d = s.recv(65536)
        if not d: break
        n += len(d)
    print(n)
except Exception:
    print(-1)
PY

start "$work/target.log" "$target" python3 "$work/target.py" "$target"
start "$work/server.log" "$api" "$bin_dir/ss-server" -c "$work/server.json"
server_pid=${pids[-1]}
url="http://127.0.0.1:$api"
auth=(-H "Authorization: Bearer $token")
# call METHOD PATH [BODY]: prints "CODE BODY"
call() {
  local args=(-s -o "$work/resp" -w '%{http_code}' -X "$1" "${auth[@]}" "$url$2")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  local code
  code=$(curl "${args[@]}")
  echo "$code $(cat "$work/resp")"
}
expect() { # expect WHAT WANT_CODE GOT: checks the status code
  local what=$1 want=$2 got=$3
  [[ ${got%% *} == "$want" ]] && pass "$what: $want" || fail "$what: got '$got', not $want"
}
json_get() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"d": d}))' "$1" "$2"; }

r=$(call GET /)
expect "GET /" 200 "$r"
[[ $(json_get "${r#* }" 'd["apiVersion"]') == v1 ]] && pass "GET /: apiVersion v1" || fail "GET /: $r"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/users")
[[ $code == 401 ]] && pass "no token: 401" || fail "no token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x$token" "$url/users")
[[ $code == 401 ]] && pass "a wrong token: 401" || fail "a wrong token: $code"
grep -q 'api: refused a request from 127.0.0.1:[0-9]*: ' "$work/server.log" &&
  pass "a refused token is logged with its source" || fail "no warning for the refused token"
expect "malformed JSON" 400 "$(call POST /users '{"username": "bob", ')"
expect "a body that is not an object" 400 "$(call POST /users '[1]')"
expect "a uPSK that is not a string" 400 "$(call POST /users '{"username": "x", "uPSK": 5, "port": '$p22'}')"
expect "an unknown user" 404 "$(call GET /users/nobody)"
expect "a name that exists" 400 "$(call POST /users '{"username": "alice", "uPSK": "'"$bob"'", "port": '$p22'}')"
expect "a 2022 uPSK of the wrong length" 400 "$(call POST /users '{"username": "x", "uPSK": "AAAA", "port": '$p22'}')"
expect "POST /users bob (2022)" 201 "$(call POST /users '{"username": "bob", "uPSK": "'"$bob"'", "port": '$p22'}')"
expect "POST /users carol (classic)" 201 "$(call POST /users '{"username": "carol", "uPSK": "carol-pw", "port": '$pcl'}')"
r=$(call GET /users)
names=$(json_get "${r#* }" '" ".join(sorted(u["username"] for u in d["users"]))')
[[ $names == "alice bob carol dave" ]] && pass "GET /users lists alice bob carol dave" || fail "GET /users: $r"

# Bob through our ss-local (2022), carol through libev's ss-local (classic), at once.
cat >"$work/local22.json" <<JSON
{"server": "127.0.0.1", "server_port": $p22, "local_address": "127.0.0.1", "local_port": $loc22,
 "method": "2022-blake3-aes-128-gcm", "password": "$ipsk:$bob", "state_dir": ""}
JSON
start "$work/local22.log" "$loc22" "$bin_dir/ss-local" -c "$work/local22.json"
start "$work/local-libev.log" "$loclibev" /usr/bin/ss-local -s 127.0.0.1 -p "$pcl" \
  -l "$loclibev" -k carol-pw -m aes-256-gcm
python3 "$work/client.py" "$loc22" "$target" 123457 654321 >"$work/bob.out" &
bob_pid=$!
python3 "$work/client.py" "$loclibev" "$target" 300001 50003 >"$work/carol.out" &
carol_pid=$!
wait "$bob_pid" "$carol_pid" || true
[[ $(cat "$work/bob.out") == 654321 ]] && pass "bob's transfer (our ss-local, 2022)" ||
  fail "bob's transfer: $(cat "$work/bob.out")"
[[ $(cat "$work/carol.out") == 50003 ]] && pass "carol's transfer (libev's ss-local, classic)" ||
  fail "carol's transfer: $(cat "$work/carol.out")"
# The counters are summed at each read; a session's last bytes are counted as it ends.
for ((i = 0; i < 50; i++)); do
  r=$(call GET /users/carol)
  [[ $(json_get "${r#* }" 'd["downlinkBytes"]') == 50003 ]] && break
  sleep 0.1
done
r=$(call GET /users/bob)
got=$(json_get "${r#* }" '"%d %d %d" % (d["uplinkBytes"], d["downlinkBytes"], d["tcpSessions"])')
[[ $got == "123457 654321 1" ]] && pass "GET /users/bob: uplink 123457, downlink 654321, 1 session" ||
  fail "GET /users/bob: $r"
r=$(call GET /stats)
got=$(json_get "${r#* }" '" ".join("%s=%d/%d" % (u["username"], u["uplinkBytes"], u["downlinkBytes"]) for u in sorted(d["users"], key=lambda u: u["username"])) + " total=%d/%d" % (d["uplinkBytes"], d["downlinkBytes"])')
[[ $got == "alice=0/0 bob=123457/654321 carol=300001/50003 dave=0/0 total=423458/704324" ]] &&
  pass "GET /stats: exact bytes per user and in total" || fail "GET /stats: $got"
expect "GET /stats?clear=true" 200 "$(call GET '/stats?clear=true')"
r=$(call GET /stats)
[[ $(json_get "${r#* }" 'd["uplinkBytes"] + d["downlinkBytes"] + d["tcpSessions"]') == 0 ]] &&
  pass "the stats are 0 after clear=true" || fail "after clear=true: $r"

# The status page in headless Chromium, through one-time tickets.
ticket() { call POST /status/ticket | sed 's/^[0-9]* //' | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'; }
chromium_run() { # chromium_run OUT ARGS...: headless Chromium in a process group of its own
  local out=$1 profile=$work/chromium-profile pid i
  shift
  rm -rf "$profile"
  setsid chromium --headless=new --no-sandbox --user-data-dir="$profile" --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-extensions --disable-default-apps --disable-crash-reporter --disable-breakpad \
    --no-pings --disable-gpu --hide-scrollbars --timeout=10000 "$@" >"$out" 2>>"$work/chromium.log" &
  pid=$!
  for ((i = 0; i < 300; i++)); do # at most 30 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Helpers that left the group: ours are the ones with this profile on their command line.
  for d in /proc/[0-9]*; do
    grep -qaF -- "--user-data-dir=$profile" "$d/cmdline" 2>/dev/null && kill -KILL "${d#/proc/}" 2>/dev/null
  done
  rm -rf "$profile"
  return 0
}
page=$(ticket)
# One load both dumps the DOM and takes the screenshot (headless=new does both).
chromium_run "$work/dom.html" --dump-dom --screenshot="$work/status.png" --window-size=900,1300 \
  "$url$page"
rows=$(grep -o '<td class="name">[a-z]*</td>' "$work/dom.html" | sed 's/<[^>]*>//g' | sort | tr '\n' ' ')
[[ $rows == "alice bob carol dave " ]] && pass "the status page (Chromium's DOM) lists the four users" ||
  fail "the status page's users: '$rows'; chromium's log: $(tail -3 "$work/chromium.log")"
grep -q '<td>auth</td>' "$work/dom.html" && pass "the status page shows the rejects by reason" ||
  fail "no rejects table"
# SIP002 with the 2022 methods: "method:password" percent-encoded (our escapes are lower-case).
want=$(python3 -c 'import re, sys, urllib.parse as u; print("ss://2022-blake3-aes-128-gcm:" + re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), u.quote(sys.argv[1] + ":" + sys.argv[2], safe="")) + "@127.0.0.1:" + sys.argv[3] + "/#bob")' "$ipsk" "$bob" "$p22")
python3 - "$work/dom.html" "$want" >"$work/qr.out" <<'PY' || true
import html, re, subprocess, sys
dom = open(sys.argv[1]).read()
want = sys.argv[2]
block = re.search(r'<div class="user"><h3>bob</h3>(.*?)</div>', dom, re.S)
if not block: print("no block for bob"); sys.exit(1)
link = html.unescape(re.search(r'<p class="link">(.*?)</p>', block.group(1)).group(1))
if link != want: print("link %r, not %r" % (link, want)); sys.exit(1)
path = re.search(r'<path fill="#000" d="([^"]*)"', block.group(1)).group(1)
cli = subprocess.run(["qrencode", "-l", "M", "-m", "0", "-t", "ASCII", link],
                     capture_output=True, text=True, check=True).stdout.splitlines()
n = len(cli)
ref = [[cli[y][2 * x] == "#" for x in range(n)] for y in range(n)]
ours = [[False] * n for _ in range(n)]
for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path):
    for i in range(int(run)):
        ours[int(y) - 4][int(x) - 4 + i] = True
print("ok" if ours == ref else "modules differ (%d x %d)" % (n, n))
PY
[[ $(cat "$work/qr.out") == ok ]] && pass "bob's link is the expected ss:// URI and its QR code has qrencode's modules" ||
  fail "bob's QR code: $(cat "$work/qr.out")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url$page")
[[ $code == 401 ]] && pass "a ticket used twice: 401" || fail "a ticket used twice: $code"
got=$(python3 - "$work/status.png" <<'PY' || true
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n": print("not a PNG"); sys.exit()
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack("!I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR": ihdr = struct.unpack("!IIBBBBB", body)
    if kind == b"IDAT": idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
bpp = {2: 3, 6: 4}.get(ctype)
if depth != 8 or bpp is None: print("%dx%d depth %d type %d" % (w, h, depth, ctype)); sys.exit()
raw, stride = zlib.decompress(idat), w * bpp + 1
if len(raw) != h * stride: print("%dx%d with %d bytes of pixels" % (w, h, len(raw))); sys.exit()
# A blank page filters to a few distinct rows; text, tables and QR codes make many.
rows = len({raw[y * stride:(y + 1) * stride] for y in range(h)})
print("%dx%d rows=%s" % (w, h, "many" if rows >= 100 else rows))
PY
)
if [[ $got == "900x1300 rows=many" ]]; then
  pass "the status page's screenshot: a 900x1300 PNG, not blank ($got)"
else
  fail "the status page's screenshot: $got"
fi
zbarimg -q --raw "$work/status.png" >"$work/zbar.out" 2>/dev/null || true
grep -qxF "$want" "$work/zbar.out" && pass "zbarimg decodes bob's link from the screenshot" ||
  fail "zbarimg: $(head -c 300 "$work/zbar.out")"

# PATCH and DELETE.
expect "PATCH carol with her current key" 400 "$(call PATCH /users/carol '{"uPSK": "carol-pw"}')"
expect "PATCH carol" 204 "$(call PATCH /users/carol '{"uPSK": "carol-pw2"}')"
# A refused client gets no answer (the server's probe resistance): 3 s without one is enough.
got=$(python3 "$work/client.py" "$loclibev" "$target" 1000 1000 3)
[[ $got != 1000 ]] && pass "carol's old key is refused after PATCH" || fail "carol's old key still works after PATCH"
expect "DELETE /users/bob" 204 "$(call DELETE /users/bob)"
expect "GET /users/bob after DELETE" 404 "$(call GET /users/bob)"
got=$(python3 "$work/client.py" "$loc22" "$target" 1000 1000 3)
[[ $got != 1000 ]] && pass "bob's new connection is refused after DELETE" || fail "bob still connects after DELETE"
start "$work/local-libev2.log" "$loclibev2" /usr/bin/ss-local -s 127.0.0.1 -p "$pcl" \
  -l "$loclibev2" -k carol-pw2 -m aes-256-gcm
got=$(python3 "$work/client.py" "$loclibev2" "$target" 1000 2000)
[[ $got == 2000 ]] && pass "carol's new key works (libev's ss-local) after bob's removal" ||
  fail "carol's new key: $got"
grep -q "users removed bob" "$work/server.log" && pass "the server logged bob's removal" ||
  fail "no log line for bob's removal"

# UDP: users added at run time on the ports' UDP side.
socat UDP4-RECVFROM:"$echo",bind=127.0.0.1,fork PIPE >"$work/echo.log" 2>&1 &
pids+=($!)
erin=$(head -c 16 /dev/urandom | base64)
expect "POST /users erin (2022, UDP)" 201 "$(call POST /users '{"username": "erin", "uPSK": "'"$erin"'", "port": '$p22'}')"
expect "POST /users frank (classic, UDP)" 201 "$(call POST /users '{"username": "frank", "uPSK": "frank-pw", "port": '$pcl'}')"
"$bin_dir/ss-tunnel" -s 127.0.0.1 -p "$p22" -l "$tun22" -k "$ipsk:$erin" -m 2022-blake3-aes-128-gcm \
  -L "127.0.0.1:$echo" -U --state-dir "" >"$work/tunnel22.log" 2>&1 &
pids+=($!)
/usr/bin/ss-tunnel -s 127.0.0.1 -p "$pcl" -l "$tuncl" -k frank-pw -m aes-256-gcm \
  -L "127.0.0.1:$echo" -U >"$work/tunnel-libev.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 50; i++)); do
  [[ -n "$(ss -Hunl "sport = :$tun22")" && -n "$(ss -Hunl "sport = :$tuncl")" ]] && break
  sleep 0.1
done
# udp_echo PORT N SIZE WAIT: sends N datagrams of SIZE bytes from one socket, one at a time,
# each waiting up to WAIT s for its echo; prints how many came back.
udp_echo() {
  python3 -c '
import socket, sys
port, n, size, wait = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(wait)
got = 0
for i in range(n):
    msg = bytes([65 + i]) * size
    s.sendto(msg, ("127.0.0.1", port))
    try:
        got += s.recv(65536) == msg
    except socket.timeout:
        pass
print(got)' "$@"
}
got="$(udp_echo "$tun22" 3 1000 3) $(udp_echo "$tuncl" 2 700 3)"
[[ $got == "3 2" ]] && pass "UDP of users added at run time: erin (2022, ours) and frank (classic, libev's)" ||
  fail "UDP echoes erin/frank: $got, want 3 2"
# The reply's count is made as it is sent: poll briefly.
for ((i = 0; i < 20; i++)); do
  r=$(call GET /stats)
  got=$(json_get "${r#* }" '" ".join("%s=%d/%d/%d/%d/%d" % (u["username"], u["uplinkPackets"], u["downlinkPackets"], u["uplinkBytes"], u["downlinkBytes"], u["udpSessions"]) for u in sorted(d["users"], key=lambda u: u["username"]) if u["username"] in ("erin", "frank"))')
  [[ $got == "erin=3/3/3000/3000/1 frank=2/2/1400/1400/1" ]] && break
  sleep 0.1
done
[[ $got == "erin=3/3/3000/3000/1 frank=2/2/1400/1400/1" ]] &&
  pass "GET /stats: UDP packets, bytes and sessions per user, exactly ($got)" || fail "UDP stats: $got"
expect "DELETE /users/erin" 204 "$(call DELETE /users/erin)"
expect "DELETE /users/frank" 204 "$(call DELETE /users/frank)"
got="$(udp_echo "$tun22" 1 100 1) $(udp_echo "$tuncl" 1 100 1)"
[[ $got == "0 0" ]] && pass "deleted users' datagrams are dropped" || fail "after DELETE, echoes: $got"

# SIGHUP: UDP ports follow the file.
read -r p3 tun3 <<<"$(free_ports 2)"
cat >"$work/server.json" <<JSON
{"servers": [
   {"server": "127.0.0.1", "server_port": $p22, "method": "2022-blake3-aes-128-gcm",
    "password": "$ipsk", "users": [{"name": "alice", "password": "$alice"}], "mode": "tcp_and_udp"},
   {"server": "127.0.0.1", "server_port": $p3, "method": "aes-256-gcm", "password": "pw3",
    "mode": "udp_only"}],
 "allow_private_targets": true, "state_dir": "", "workers": 2,
 "api_address": "127.0.0.1:$api", "api_token_file": "$work/token"}
JSON
kill -HUP "$server_pid"
for ((i = 0; i < 50; i++)); do
  [[ -n "$(ss -Hunl "sport = :$p3")" && -z "$(ss -Hunl "sport = :$pcl")" ]] && break
  sleep 0.1
done
[[ -n "$(ss -Hunl "sport = :$p3")" && -z "$(ss -Hunl "sport = :$pcl")" ]] &&
  pass "SIGHUP: the added port's UDP socket is bound, the removed port's closed" ||
  fail "SIGHUP: UDP sockets: $(ss -Hunl) $(grep reload "$work/server.log")"
/usr/bin/ss-tunnel -s 127.0.0.1 -p "$p3" -l "$tun3" -k pw3 -m aes-256-gcm \
  -L "127.0.0.1:$echo" -U >"$work/tunnel3.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 50; i++)); do
  [[ -n "$(ss -Hunl "sport = :$tun3")" ]] && break
  sleep 0.1
done
[[ $(udp_echo "$tun3" 2 500 3) == 2 ]] && pass "SIGHUP: UDP through the added udp_only port" ||
  fail "SIGHUP: no UDP through port $p3"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
