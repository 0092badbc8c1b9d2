#!/usr/bin/env bash
# SIP003 plugins through the real binaries, with Debian's simple-obfs (obfs-local/obfs-server,
# obfs=http and obfs=tls) and v2ray-plugin (ss-v2ray-plugin, websocket):
#   * for each plugin: ours<->ours, our ss-local<->libev's ss-server and libev's ss-local<->our
#     ss-server, each carrying a 10 MiB file byte-exact (an HTTP GET through SOCKS5) and a page;
#   * ss-tunnel through a plugin, with UDP (-U) going around it to the server's public port;
#   * an ss:// link with ?plugin= (as --url prints it) given to ss-local, and shadowsocks-rust's
#     "servers" with a plugin per entry;
#   * a plugin killed (SIGKILL) is restarted and traffic resumes; ss-local logs the restart;
#   * after SIGTERM to our ss-local and ss-server, no plugin process of theirs is left, nor after
#     SIGKILL to ss-local;
#   * a plugin program that does not exist: exit 1 at start, naming it.
#
# Usage: tests/scripts/plugins_test.sh BIN_DIR   (BIN_DIR holds ss-local, ss-server, ss-tunnel)
#
# Needs obfs-local, obfs-server, ss-v2ray-plugin, libev's ss-server and ss-local (in /usr/bin),
# python3 and curl (scripts/setup.sh installs them). Everything listens on 127.0.0.1, on free
# ports; every process started is stopped at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

require_tools obfs-local obfs-server ss-v2ray-plugin /usr/bin/ss-server /usr/bin/ss-local curl

setup_work ss-plugins
method=chacha20-ietf-poly1305
password=plugins-test-password
read -r web_port < <(free_ports 1)
mkdir -p "$work/www"
head -c $((10 << 20)) /dev/urandom >"$work/www/big.bin"
echo "plugin page" >"$work/www/page.txt"
start "$work/web.log" "$web_port" python3 -m http.server "$web_port" --bind 127.0.0.1 \
  --directory "$work/www"

# fetch SOCKS_PORT PATH OUT: GET through SOCKS5, retried for 10 s (a plugin needs a moment to
# listen after its process starts).
fetch() {
  local i
  for ((i = 0; i < 50; i++)); do
    if curl -sf --max-time 20 --socks5-hostname "127.0.0.1:$1" \
      "http://127.0.0.1:$web_port/$2" -o "$3"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# check_pair NAME SOCKS_PORT: a page and the 10 MiB file through SOCKS_PORT, byte-exact.
check_pair() {
  local name=$1 port=$2
  if fetch "$port" page.txt "$work/page.out" && cmp -s "$work/page.out" "$work/www/page.txt" &&
    fetch "$port" big.bin "$work/big.out" && cmp -s "$work/big.out" "$work/www/big.bin"; then
    pass "$name: a page and 10 MiB byte-exact"
  else
    fail "$name: transfer through the plugin"
  fi
  rm -f "$work/big.out" "$work/page.out"
}

# stop PID...: SIGTERM and wait.
stop() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# The plugins: name, client program and options, server program and options.
plugin_names=(obfs-http obfs-tls v2ray-ws)
client_plugin=(obfs-local obfs-local ss-v2ray-plugin)
client_opts=("obfs=http;obfs-host=www.example.com" "obfs=tls;obfs-host=www.example.com"
  "mode=websocket;host=www.example.com")
server_plugin=(obfs-server obfs-server ss-v2ray-plugin)
server_opts=("obfs=http" "obfs=tls" "server;mode=websocket;host=www.example.com")

for i in "${!plugin_names[@]}"; do
  name=${plugin_names[$i]}
  read -r our_server libev_server our_local our_local2 libev_local < <(free_ports 5)
  common=(-k "$password" -m "$method")
  # Our ss-server and libev's, each behind the server-side plugin.
  "$bin_dir/ss-server" -s 127.0.0.1 -p "$our_server" "${common[@]}" --allow-private-targets \
    --state-dir "" --plugin "${server_plugin[$i]}" --plugin-opts "${server_opts[$i]}" \
    >"$work/$name-our-server.log" 2>&1 &
  our_server_pid=$!
  pids+=("$our_server_pid")
  /usr/bin/ss-server -s 127.0.0.1 -p "$libev_server" "${common[@]}" \
    --plugin "${server_plugin[$i]}" --plugin-opts "${server_opts[$i]}" \
    >"$work/$name-libev-server.log" 2>&1 &
  pids+=($!)
  libev_server_pid=$!
  # Our ss-local to each, and libev's ss-local to ours.
  "$bin_dir/ss-local" -s 127.0.0.1 -p "$our_server" -l "$our_local" "${common[@]}" \
    --state-dir "" --plugin "${client_plugin[$i]}" --plugin-opts "${client_opts[$i]}" \
    >"$work/$name-our-local.log" 2>&1 &
  our_local_pid=$!
  pids+=("$our_local_pid")
  "$bin_dir/ss-local" -s 127.0.0.1 -p "$libev_server" -l "$our_local2" "${common[@]}" \
    --state-dir "" --plugin "${client_plugin[$i]}" --plugin-opts "${client_opts[$i]}" \
    >"$work/$name-our-local2.log" 2>&1 &
  our_local2_pid=$!
  pids+=("$our_local2_pid")
  /usr/bin/ss-local -s 127.0.0.1 -p "$our_server" -l "$libev_local" "${common[@]}" \
    --plugin "${client_plugin[$i]}" --plugin-opts "${client_opts[$i]}" \
    >"$work/$name-libev-local.log" 2>&1 &
  pids+=($!)
  libev_local_pid=$!
  for p in "$our_local" "$our_local2" "$libev_local"; do
    wait_listening "$p" || fail "$name: nothing listens on $p"
  done

  check_pair "$name: our ss-local -> our ss-server" "$our_local"
  check_pair "$name: our ss-local -> libev ss-server" "$our_local2"
  check_pair "$name: libev ss-local -> our ss-server" "$libev_local"
  # Our ss-server's TCP came through the plugin: it listens on a loopback port of its own.
  if grep -q "plugin ${server_plugin[$i]} (pid [0-9]*) for listener 127.0.0.1:$our_server" \
    "$work/$name-our-server.log"; then
    pass "$name: our ss-server started its plugin on the public port"
  else
    fail "$name: our ss-server's plugin line"
    cat "$work/$name-our-server.log"
  fi

  if [[ $name == obfs-http ]]; then
    # A crash: the plugin is restarted and traffic resumes.
    plugin_pid=$(pgrep -P "$our_local_pid" -x obfs-local || true)
    if [[ -n $plugin_pid ]]; then
      kill -KILL "$plugin_pid"
      sleep 0.3
      if fetch "$our_local" page.txt "$work/page.out" && cmp -s "$work/page.out" \
        "$work/www/page.txt" && grep -q "plugin obfs-local (pid $plugin_pid) .* was killed by signal 9; restarting" \
        "$work/$name-our-local.log"; then
        pass "$name: a killed plugin is restarted and traffic resumes"
      else
        fail "$name: restart after a crash"
        cat "$work/$name-our-local.log"
      fi
      new_pid=$(pgrep -P "$our_local_pid" -x obfs-local || true)
      [[ -n $new_pid && $new_pid != "$plugin_pid" ]] && pass "$name: a new plugin process runs" ||
        fail "$name: no new plugin process"
    else
      fail "$name: our ss-local has no obfs-local child"
    fi
  fi

  # SIGTERM: our processes exit 0 and leave no plugin behind.
  children=()
  for p in "$our_local_pid" "$our_local2_pid" "$our_server_pid"; do
    mapfile -t -O "${#children[@]}" children < <(pgrep -P "$p" || true)
  done
  if [[ ${#children[@]} -ne 3 ]]; then
    fail "$name: expected 3 plugin processes of ours, found ${#children[@]}"
  fi
  status=0
  for p in "$our_local_pid" "$our_local2_pid" "$our_server_pid"; do kill -TERM "$p"; done
  for p in "$our_local_pid" "$our_local2_pid" "$our_server_pid"; do
    wait "$p" || status=$?
  done
  left=0
  for c in "${children[@]}"; do
    if kill -0 "$c" 2>/dev/null; then left=$((left + 1)); fi
  done
  if [[ $status -eq 0 && $left -eq 0 ]]; then
    pass "$name: after SIGTERM our processes exit 0 and no plugin process is left"
  else
    fail "$name: exit status $status, $left plugin process(es) left: $(ps -o pid,ppid,cmd -p "${children[*]}" 2>&1 | tail -n +2)"
  fi
  stop "$libev_local_pid" "$libev_server_pid"
done

# ss-tunnel through obfs, and UDP around the plugin: -u on both ends, a UDP echo as the target.
read -r server_port tunnel_port udp_port udp_tunnel < <(free_ports 4)
cat >"$work/echo.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(b"echo:" + data, peer)
PY
python3 "$work/echo.py" "$udp_port" &
pids+=($!)
start "$work/t-server.log" "$server_port" "$bin_dir/ss-server" -s 127.0.0.1 -p "$server_port" \
  -k "$password" -m "$method" -u --allow-private-targets --state-dir "" --plugin obfs-server \
  --plugin-opts obfs=http
start "$work/t-tunnel.log" "$tunnel_port" "$bin_dir/ss-tunnel" -s 127.0.0.1 -p "$server_port" \
  -l "$tunnel_port" -L "127.0.0.1:$web_port" -k "$password" -m "$method" --state-dir "" \
  --plugin obfs-local --plugin-opts obfs=http
"$bin_dir/ss-tunnel" -s 127.0.0.1 -p "$server_port" -l "$udp_tunnel" -L "127.0.0.1:$udp_port" \
  -k "$password" -m "$method" -U --state-dir "" --plugin obfs-local --plugin-opts obfs=http \
  >"$work/u-tunnel.log" 2>&1 &
pids+=($!)
ok=0
for ((n = 0; n < 50; n++)); do
  if curl -sf --max-time 5 "http://127.0.0.1:$tunnel_port/page.txt" -o "$work/t.out" 2>/dev/null &&
    cmp -s "$work/t.out" "$work/www/page.txt"; then
    ok=1
    break
  fi
  sleep 0.2
done
[[ $ok -eq 1 ]] && pass "ss-tunnel through obfs-local/obfs-server" || fail "ss-tunnel through a plugin"
reply=$(python3 - "$udp_tunnel" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for _ in range(20):
    s.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
    try:
        print(s.recvfrom(100)[0].decode()); break
    except OSError:
        time.sleep(0.2)
PY
)
if [[ $reply == "echo:ping" ]] && grep -q "listening on UDP 127.0.0.1 port $server_port" \
  "$work/t-server.log"; then
  pass "UDP goes around the plugin to the server's public port"
else
  fail "UDP with a plugin (reply: '$reply')"
  cat "$work/t-server.log"
fi

# An ss:// link with ?plugin= (printed by --url) as ss-local's argument, to the same server.
read -r uri_port < <(free_ports 1)
uri=$("$bin_dir/ss-local" -s 127.0.0.1 -p "$server_port" -l 1 -k "$password" -m "$method" \
  --plugin obfs-local --plugin-opts "obfs=http;obfs-host=www.example.com" --url)
if [[ $uri == *"/?plugin=obfs-local%3bobfs%3dhttp%3bobfs-host%3dwww.example.com" ]]; then
  pass "--url prints the plugin"
else
  fail "--url: $uri"
fi
start "$work/uri-local.log" "$uri_port" "$bin_dir/ss-local" -l "$uri_port" --state-dir "" "$uri"
if fetch "$uri_port" page.txt "$work/u.out" && cmp -s "$work/u.out" "$work/www/page.txt" &&
  grep -q "plugin obfs-local (pid [0-9]*) for server 127.0.0.1:$server_port" \
    "$work/uri-local.log"; then
  pass "an ss:// link's ?plugin= starts the plugin and carries the traffic"
else
  fail "ss:// link with a plugin"
  cat "$work/uri-local.log"
fi

# shadowsocks-rust's "servers": each entry its own plugin (here two to the same server with
# different obfs-host options), round robin, with probes through them.
read -r rust_port < <(free_ports 1)
cat >"$work/rust.json" <<EOF
{"local_address": "127.0.0.1", "local_port": $rust_port, "state_dir": "",
 "servers": [
  {"server": "127.0.0.1", "server_port": $server_port, "method": "$method",
   "password": "$password", "plugin": "obfs-local", "plugin_opts": "obfs=http;obfs-host=a.example"},
  {"server": "127.0.0.1", "server_port": $server_port, "method": "$method",
   "password": "$password", "plugin": "obfs-local", "plugin_opts": "obfs=http;obfs-host=b.example",
   "plugin_args": ["-v"], "plugin_mode": "tcp_only"}],
 "balancer": {"mode": "round_robin", "probe_target": "127.0.0.1:$web_port"}}
EOF
start "$work/rust-local.log" "$rust_port" "$bin_dir/ss-local" -c "$work/rust.json"
ok=1
for n in 1 2 3 4; do
  fetch "$rust_port" page.txt "$work/r.out" && cmp -s "$work/r.out" "$work/www/page.txt" || ok=0
done
plugins=$(grep -c "plugin obfs-local (pid [0-9]*) for server 127.0.0.1:$server_port" \
  "$work/rust-local.log" || true)
if [[ $ok -eq 1 && $plugins -eq 2 ]] && grep -q "obfuscating hostname: b.example" \
  "$work/rust-local.log"; then
  pass "\"servers\" entries each start their own plugin with its options; traffic flows"
else
  fail "\"servers\" with plugins (ok=$ok, $plugins plugin lines)"
  cat "$work/rust-local.log"
fi

# SIGKILL to ss-local cannot be handled, but its plugin still ends (setpriv --pdeathsig).
read -r p1 p2 < <(free_ports 2)
"$bin_dir/ss-local" -s 127.0.0.1 -p "$p1" -l "$p2" -k x --state-dir "" --plugin obfs-local \
  --plugin-opts obfs=http >"$work/kill.log" 2>&1 &
kill_pid=$!
pids+=("$kill_pid")
wait_listening "$p2" || true
child=""
for ((n = 0; n < 50; n++)); do
  child=$(pgrep -P "$kill_pid" -x obfs-local || true)
  [[ -z $child ]] || break
  sleep 0.1
done
{
  kill -KILL "$kill_pid"
  wait "$kill_pid" || true
} 2>/dev/null  # no "Killed" line from bash
gone=0
for ((n = 0; n < 30; n++)); do
  if [[ -n $child ]] && ! kill -0 "$child" 2>/dev/null; then
    gone=1
    break
  fi
  sleep 0.1
done
if [[ $gone -eq 1 ]]; then
  pass "after SIGKILL to ss-local its plugin ends too"
else
  fail "after SIGKILL to ss-local its plugin (pid '${child}') is left"
  [[ -n $child ]] && kill "$child" 2>/dev/null
fi

# A plugin that does not exist: exit 1 at start, naming it.
read -r p1 p2 < <(free_ports 2)
set +e
out=$("$bin_dir/ss-local" -s 127.0.0.1 -p "$p1" -l "$p2" -k x --state-dir "" \
  --plugin no-such-plugin-ss-uv 2>&1)
rc=$?
set -e
if [[ $rc -eq 1 && $out == *'plugin: cannot start "no-such-plugin-ss-uv"'* ]]; then
  pass "a missing plugin program: exit 1 naming it"
else
  fail "a missing plugin program: exit $rc: $out"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
