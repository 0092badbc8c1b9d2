#!/usr/bin/env bash
# SIP003 plugins started and retired at run time (issue 13 item 6, issue 14 items 2 and 5),
# through the real binaries with Debian's simple-obfs:
#   * ss-manager: "add" with plugin obfs-server (obfs=http) serves the port through it: 2 MiB
#     byte-exact through shadowsocks-libev's ss-local (--plugin obfs-local) and ours; ping counts
#     the port's bytes; the plugin killed is restarted; an add of the same port with obfs=tls
#     replaces the plugin while a slow download through the old one goes on (it finishes whole;
#     the old obfs-server is gone after it, and the new one serves); "remove": the obfs-server
#     process is gone (/proc) and the port closed; a plugin that does not exist: "err", the
#     manager still answers; libev's ss-manager gives the same reply to the same add; SIGKILL to
#     our ss-manager leaves no obfs-server.
#   * ss-server SIGHUP: a port with a plugin added, its options changed under a live download
#     (finishes whole), the same config again (the plugin process kept), removed (its plugin
#     stops); a missing plugin program is refused, naming the key, and the running ports go on.
#
# Usage: tests/scripts/plugin_runtime_test.sh BIN_DIR   (BIN_DIR holds ss-manager, ss-server and
# ss-local)
# Needs obfs-local, obfs-server, shadowsocks-libev (ss-local, ss-manager, ss-server), curl,
# python3 and socat (scripts/setup.sh). Everything listens on 127.0.0.1, on free ports.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
require_tools obfs-local obfs-server /usr/bin/ss-local /usr/bin/ss-manager /usr/bin/ss-server \
  curl python3 socat

setup_work ss-plugrt
read -r web mgr p1 loc_l loc_o loc_t libev_mgr libev_p a b loc_a loc_b loc_b2 p9 \
  <<<"$(free_ports 14)"
size=$((2 << 20))
head -c "$size" /dev/urandom >"$work/file.bin"
# The origin: GET /slow sends file.bin in 128 KiB pieces 0.1 s apart (about 1.6 s), so that a
# download keeps its connection through the plugin open that long (a fast one would sit in socket
# buffers); any other path sends it at once.
cat >"$work/origin.py" <<'PY'
import socket, sys, threading, time
data = open(sys.argv[2], "rb").read()
def serve(c):
    slow = c.recv(65536).startswith(b"GET /slow ")
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
    step = 131072 if slow else len(data)
    for i in range(0, len(data), step):
        c.sendall(data[i:i + step])
        time.sleep(0.1 if slow else 0)
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
PY
start "$work/origin.log" "$web" python3 "$work/origin.py" "$web" "$work/file.bin"
# slow_fetch SOCKS OUT: the slow origin's file through SOCKS5 port SOCKS, in the background.
slow_fetch() {
  curl -sf --max-time 60 --socks5-hostname "127.0.0.1:$1" "http://127.0.0.1:$web/slow" -o "$2" &
}

# ask ADDR MESSAGE: the manager's reply to one datagram ("<no reply>" after 1 s).
ask() {
  local r
  r=$(printf '%s' "$2" | socat -T 1 - "UDP:$1" 2>/dev/null) || true
  echo "${r:-<no reply>}"
}
expect() {
  if [[ "$2" == "$3" ]]; then pass "$1: $3"; else fail "$1: got '$2', want '$3'"; fi
}
# fetch SOCKS OUT [CURL ARGS]: the 2 MiB file through SOCKS5 port SOCKS, retried for 10 s (a
# plugin needs a moment to listen); 0 if it arrives whole.
fetch() {
  local port=$1 out=$2 i
  shift 2
  for ((i = 0; i < 50; i++)); do
    if curl -sf --max-time 30 "$@" --socks5-hostname "127.0.0.1:$port" \
      "http://127.0.0.1:$web/fast" -o "$out"; then
      cmp -s "$out" "$work/file.bin"
      return
    fi
    sleep 0.2
  done
  return 1
}
# plugin_pid LOG PORT: the pid of the last plugin started for listener 127.0.0.1:PORT.
plugin_pid() {
  grep -o "(pid [0-9]*) for listener 127.0.0.1:$2:" "$1" | tail -1 | grep -o '[0-9]\+' | head -1
}
# gone PID: waits (10 s at most) until no process PID is left in /proc.
gone() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -d "/proc/$1" ]] || return 0
    sleep 0.1
  done
  return 1
}
closed() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}
obfs_http="obfs=http;obfs-host=www.example.com"
# after_change WHAT OLD OUT: a change was made while slow_fetch ran ($slow_pid, into OUT) through
# the plugin OLD: it runs on while the download does, the download finishes byte-exact, then OLD
# is gone.
after_change() {
  sleep 0.5
  [[ -d "/proc/$2" ]] && pass "$1: the old obfs-server runs on while its download does" ||
    fail "$1: the old obfs-server was stopped under a live download"
  wait "$slow_pid" && cmp -s "$3" "$work/file.bin" &&
    pass "$1: the download through the old plugin finished byte-exact" ||
    fail "$1: the download through the old plugin was cut"
  gone "$2" && pass "$1: the old obfs-server is gone once its connection ended" ||
    fail "$1: the old obfs-server (pid $2) still runs"
}
# tls_local LOG PORT SERVER_PORT PASSWORD: libev's ss-local through obfs-local with obfs=tls.
tls_local() {
  start "$1" "$2" /usr/bin/ss-local -s 127.0.0.1 -p "$3" -l "$2" -k "$4" -m aes-256-gcm \
    --plugin obfs-local --plugin-opts "obfs=tls;obfs-host=www.example.com"
}

# --- ss-manager ---
"$bin_dir/ss-manager" --manager-address "127.0.0.1:$mgr" -s 127.0.0.1 -m aes-256-gcm \
  --workers 2 --allow-private-targets -v >"$work/manager.log" 2>&1 &
manager_pid=$!
pids+=("$manager_pid")
for ((i = 0; i < 50; i++)); do [[ "$(ask "127.0.0.1:$mgr" ping)" == "<no reply>" ]] || break; done
add_http="add: {\"server_port\": $p1, \"password\": \"pw1\", \"plugin\": \"obfs-server\", \"plugin_opts\": \"obfs=http\"}"
expect "add with plugin obfs-server" "$(ask "127.0.0.1:$mgr" "$add_http")" ok
wait_listening "$p1" || fail "the plugin does not listen on the added port $p1"
old=$(plugin_pid "$work/manager.log" "$p1")
[[ -n "$old" && -d "/proc/$old" && "$(cat "/proc/$old/comm")" == obfs-server ]] &&
  pass "obfs-server runs for the port (pid $old)" || fail "no obfs-server for $p1: $old"
start "$work/local-libev.log" "$loc_l" /usr/bin/ss-local -s 127.0.0.1 -p "$p1" -l "$loc_l" \
  -k pw1 -m aes-256-gcm --plugin obfs-local --plugin-opts "$obfs_http"
start "$work/local-ours.log" "$loc_o" "$bin_dir/ss-local" -s 127.0.0.1 -p "$p1" -l "$loc_o" \
  -k pw1 -m aes-256-gcm --plugin obfs-local --plugin-opts "$obfs_http"
fetch "$loc_l" "$work/got.l" && pass "2 MiB byte-exact through libev's ss-local + obfs-local" ||
  fail "download through libev's ss-local and the added port's plugin"
fetch "$loc_o" "$work/got.o" && pass "2 MiB byte-exact through our ss-local + obfs-local" ||
  fail "download through our ss-local and the added port's plugin"
stat=$(ask "127.0.0.1:$mgr" ping)
if [[ "$stat" =~ \"$p1\":([0-9]+) ]] && ((BASH_REMATCH[1] >= 2 * size)); then
  pass "ping counts the plugin port's bytes (${BASH_REMATCH[1]})"
else
  fail "ping: $stat (want >= $((2 * size)) for $p1)"
fi

# A plugin started at run time that dies is restarted (the back-off's first step: 1 s).
kill -KILL "$old"
for ((i = 0; i < 50; i++)); do
  [[ "$(plugin_pid "$work/manager.log" "$p1")" != "$old" ]] && break
  sleep 0.1
done
restarted=$(plugin_pid "$work/manager.log" "$p1")
[[ "$restarted" != "$old" ]] && grep -q "was killed by signal 9; restarting it" "$work/manager.log" &&
  fetch "$loc_l" "$work/got.r" && pass "a killed plugin is restarted (pid $restarted) and serves" ||
  fail "the killed plugin was not restarted ($restarted)"
old=$restarted

# Replace: obfs=tls on the same port while a slow download goes through the old plugin.
slow_fetch "$loc_l" "$work/slow.out"
slow_pid=$!
sleep 0.5
add_tls="add: {\"server_port\": $p1, \"password\": \"pw1\", \"plugin\": \"obfs-server\", \"plugin_opts\": \"obfs=tls\"}"
expect "add of the same port with obfs=tls (replace)" "$(ask "127.0.0.1:$mgr" "$add_tls")" ok
after_change "replace" "$old" "$work/slow.out"
tls_local "$work/local-tls.log" "$loc_t" "$p1" pw1
fetch "$loc_t" "$work/got.t" && pass "the new plugin (obfs=tls) serves the port" ||
  fail "download through the replacing plugin"
new=$(plugin_pid "$work/manager.log" "$p1")
[[ -n "$new" && "$new" != "$old" ]] || fail "no new plugin pid ($new)"

expect "remove" "$(ask "127.0.0.1:$mgr" "remove: {\"server_port\": $p1}")" ok
gone "$new" && pass "remove: the obfs-server process is gone (/proc/$new)" ||
  fail "remove: obfs-server $new still runs"
closed "$p1" && pass "remove: port $p1 is closed" || fail "remove: $p1 still accepts"

expect "add with a plugin that does not exist" \
  "$(ask "127.0.0.1:$mgr" "add: {\"server_port\": $p9, \"password\": \"x\", \"plugin\": \"no-such-plugin-$$\"}")" err
[[ "$(ask "127.0.0.1:$mgr" ping)" == stat:* ]] && pass "the manager still answers" ||
  fail "no answer after the missing plugin"
grep -q "no-such-plugin-$$.*no such program" "$work/manager.log" &&
  pass "the log names the missing plugin" || fail "no log line for the missing plugin"

# libev's ss-manager: the same add, the same reply.
start_libev_manager "$libev_mgr"
for ((i = 0; i < 50; i++)); do
  [[ -n "$(ss -Hunl "sport = :$libev_mgr")" ]] && break
  sleep 0.1
done
expect "libev's ss-manager gives the same reply to the add with a plugin" \
  "$(ask "127.0.0.1:$libev_mgr" "${add_http//$p1/$libev_p}")" \
  "$(ask "127.0.0.1:$mgr" "$add_http")"
wait_listening "$libev_p" || fail "libev's ss-server with obfs-server did not listen"
children=$(cat "$work"/libev/.shadowsocks_*.pid 2>/dev/null || true)
# shellcheck disable=SC2086 # one pid per word
kill "$libev_pid" $children
wait "$libev_pid" 2>/dev/null || true

# SIGKILL of our ss-manager: its plugin ends too (setpriv --pdeathsig).
wait_listening "$p1" || fail "the port added again does not listen"
last=$(plugin_pid "$work/manager.log" "$p1")
kill -KILL "$manager_pid"
wait "$manager_pid" 2>/dev/null || true
gone "$last" && pass "SIGKILL to ss-manager: its obfs-server ($last) is gone" ||
  fail "obfs-server $last outlived ss-manager"

# --- ss-server: SIGHUP with plugin changes ---
conf() { # conf B_PLUGIN_JSON: port a without plugin; port b with the given plugin keys, if any
  local b_entry=""
  [[ -n "$1" ]] && b_entry=", {\"server\": \"127.0.0.1\", \"server_port\": $b, \"method\": \"aes-256-gcm\", \"password\": \"pwb\", $1}"
  cat >"$work/server.json" <<EOF
{"servers": [{"server": "127.0.0.1", "server_port": $a, "method": "aes-256-gcm", "password": "pwa"}$b_entry]}
EOF
}
conf ""
start "$work/server.log" "$a" "$bin_dir/ss-server" -c "$work/server.json" --workers 2 \
  --allow-private-targets -v
srv_pid=${pids[-1]}
start "$work/local-a.log" "$loc_a" /usr/bin/ss-local -s 127.0.0.1 -p "$a" -l "$loc_a" -k pwa \
  -m aes-256-gcm
hup() { # hup WHAT: SIGHUP, then waits for the reload's log line
  local n
  n=$(grep -c "reload: applied\|reload: refused" "$work/server.log" || true)
  kill -HUP "$srv_pid"
  for ((i = 0; i < 50; i++)); do
    (($(grep -c "reload: applied\|reload: refused" "$work/server.log" || true) > n)) && return
    sleep 0.1
  done
  fail "$1: no reload line"
}
conf '"plugin": "obfs-server", "plugin_opts": "obfs=http"'
hup "add b with a plugin"
wait_listening "$b" || fail "reload: the plugin does not listen on $b"
start "$work/local-b.log" "$loc_b" /usr/bin/ss-local -s 127.0.0.1 -p "$b" -l "$loc_b" -k pwb \
  -m aes-256-gcm --plugin obfs-local --plugin-opts "$obfs_http"
fetch "$loc_b" "$work/got.b" && pass "reload added a port with obfs-server: 2 MiB byte-exact" ||
  fail "download through the port a reload added with a plugin"
old=$(plugin_pid "$work/server.log" "$b")
slow_fetch "$loc_b" "$work/slow2.out"
slow_pid=$!
sleep 0.5
conf '"plugin": "obfs-server", "plugin_opts": "obfs=tls"'
hup "b's plugin options changed"
grep -q "reload: refused" "$work/server.log" && fail "reload refused: $(grep refused "$work/server.log")"
grep -q "reload: applied .*no port or user changed; plugins started 1, retired 1" \
  "$work/server.log" && pass "the reload's log line counts the plugins started and retired" ||
  fail "no plugin counts in the reload's log line"
after_change "reload with new plugin options" "$old" "$work/slow2.out"
tls_local "$work/local-b2.log" "$loc_b2" "$b" pwb
fetch "$loc_b2" "$work/got.b2" && pass "the new plugin options serve" ||
  fail "download after the plugin options changed"
kept=$(plugin_pid "$work/server.log" "$b")
hup "the same config again"
[[ "$(plugin_pid "$work/server.log" "$b")" == "$kept" && -d "/proc/$kept" ]] &&
  fetch "$loc_b2" "$work/got.same" && pass "a reload that keeps the plugin keeps its process" ||
  fail "a reload with the same plugin restarted it"
conf '"plugin": "no-such-plugin-'$$'"'
hup "a missing plugin"
grep -q "reload: refused: plugin: cannot start \"no-such-plugin-$$\"" "$work/server.log" &&
  pass "a missing plugin program: reload refused, naming the key" ||
  fail "no refusal for the missing plugin: $(tail -3 "$work/server.log")"
fetch "$loc_b2" "$work/got.b3" && pass "the running plugin still serves after the refusal" ||
  fail "download after the refused reload"
last=$(plugin_pid "$work/server.log" "$b")
conf ""
hup "b removed"
gone "$last" && pass "reload removed the port: its plugin is gone" ||
  fail "the removed port's plugin ($last) still runs"
closed "$b" && pass "the removed port is closed" || fail "$b still accepts"
fetch "$loc_a" "$work/got.a" && pass "port a served throughout" || fail "port a"
kill "$srv_pid"
wait "$srv_pid" && pass "ss-server exits 0 on SIGTERM" || fail "ss-server's exit status"
grep -q "live handles" "$work/server.log" "$work/manager.log" && fail "live handles at exit"

echo "$passed passed, $failed failed"
((failed == 0))
