#!/usr/bin/env bash
# Real clients through ss-local's mixed port, our ss-server and a local web server:
#   * proxychains4 runs programs that know nothing of proxies (curl without proxy flags, python3
#     urllib) with `socks5 127.0.0.1 PORT`, `http 127.0.0.1 PORT`, and with credentials
#     (`socks5 ... alice secret`, `http ... alice secret`) against ss-local with a user file;
#     every file arrives byte-exact, wrong credentials and a dead proxy fail;
#   * headless Chromium loads a page over --proxy-server=socks5://... and http://... and the
#     dumped DOM holds the text the page's JavaScript wrote.
# ss-local's log must show each request to the web server, so nothing went around the proxy.
#
# Usage: tests/scripts/real_clients_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
#
# Everything runs in a network namespace of its own with only a loopback interface, and a PID
# namespace: Chromium's background requests (update and account services, which no flag turns
# off entirely) reach ss-server as targets but can go nowhere, and no Chromium process can
# outlive the test (the kernel ends every process of the namespace when the script, its first
# process, exits). Needs root or unprivileged user namespaces, proxychains4, chromium, curl,
# python3 and ip (scripts/setup.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

if [[ -z ${SS_REAL_CLIENTS_INSIDE:-} ]]; then
  export SS_REAL_CLIENTS_INSIDE=1
  # --kill-child: if the test is killed (a CTest timeout), the namespace goes with it.
  ns=(unshare --net --pid --fork --kill-child --mount-proc)
  [[ $(id -u) -eq 0 ]] || ns+=(--map-root-user)
  if ! "${ns[@]}" true 2>/dev/null; then
    echo "FAIL: cannot create network and PID namespaces (${ns[*]}): run as root"
    echo "0 passed, 1 failed"
    exit 1
  fi
  exec "${ns[@]}" -- bash "$0" "$bin_dir"
fi

# --- inside the namespaces ---

ip link set lo up

work=$(mktemp -d /tmp/ss-real-clients.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Fixed ports: the namespace is ours alone.
web_port=18080
server_port=18388
local_port=11080      # no authentication
auth_port=11081       # with the user file
dead_port=11099       # nothing listens
method=aes-128-gcm
password=real-clients-password

mkdir -p "$work/www"
head -c $((1 << 20)) /dev/urandom >"$work/www/file.bin"
# The marker "js-42-ran" appears only once the script has run (the source never spells it).
cat >"$work/www/page.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>ss-uv</title></head>
<body><p id="marker">not yet</p>
<script>document.getElementById("marker").textContent = "js-" + (6 * 7) + "-ran";</script>
</body></html>
EOF
printf '{"password": {"users": [{"user_name": "alice", "password": "secret"},
  {"user_name": "bob", "password": "hunter2"}]}}\n' >"$work/users.json"
printf '{"socks5_auth_config_path": "%s"}\n' "$work/users.json" >"$work/local-auth.json"

start "$work/web.log" "$web_port" python3 -m http.server "$web_port" --bind 127.0.0.1 \
  --directory "$work/www"
start "$work/server.log" "$server_port" "$bin_dir/ss-server" -s 127.0.0.1 -p "$server_port" \
  -k "$password" -m "$method" --allow-private-targets
start "$work/local.log" "$local_port" "$bin_dir/ss-local" -s 127.0.0.1 -p "$server_port" \
  -b 127.0.0.1 -l "$local_port" -k "$password" -m "$method" -v
start "$work/local-auth.log" "$auth_port" "$bin_dir/ss-local" -s 127.0.0.1 -p "$server_port" \
  -b 127.0.0.1 -l "$auth_port" -k "$password" -m "$method" -v -c "$work/local-auth.json"

# How many connections to the web server ss-local (log $1) has finished, for user $2 if given
# (its -v line: "local: 127.0.0.1:18080 user alice closed: done, ...").
relayed() {
  grep -c "local: 127.0.0.1:$web_port${2:+ user $2} closed: done" "$1" || true
}
# Waits until that count exceeds $3.
relayed_more_than() {
  local log=$1 user=$2 before=$3 i
  for ((i = 0; i < 50; i++)); do
    [[ $(relayed "$log" "$user") -gt $before ]] && return 0
    sleep 0.1
  done
  return 1
}

# --- proxychains4 ---

# A proxychains4 configuration with one proxy line. No `localnet`: it would exempt the loopback
# web server from proxying. No `proxy_dns` is needed for the IP literal the URLs use; the run
# with `localhost` has it, and proxychains4 answers that name from /etc/hosts and proxies the
# connection to the address.
pc_conf() { # pc_conf NAME PROXY_LINE [proxy_dns]
  local f=$work/$1.conf
  {
    echo strict_chain
    echo quiet_mode
    [[ ${3:-} == proxy_dns ]] && echo proxy_dns
    echo tcp_read_time_out 15000
    echo tcp_connect_time_out 8000
    echo '[ProxyList]'
    echo "$2"
  } >"$f"
  echo "$f"
}

unproxied_env=(env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy
  -u ALL_PROXY -u no_proxy -u NO_PROXY)

fetch_curl() { # fetch_curl CONF URL OUT
  "${unproxied_env[@]}" timeout -k 5 40 proxychains4 -f "$1" \
    curl --silent --show-error --fail --max-time 30 -o "$3" "$2" >>"$work/clients.log" 2>&1
}

fetch_python() { # fetch_python CONF URL OUT
  "${unproxied_env[@]}" timeout -k 5 40 proxychains4 -f "$1" python3 -c '
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy of its own
with opener.open(sys.argv[1], timeout=30) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
' "$2" "$3" >>"$work/clients.log" 2>&1
}

# expect_fetch WHAT LOCAL_LOG USER FETCHER CONF URL: the file arrives byte-exact through the
# ss-local of LOCAL_LOG, which relayed it for USER (empty: no authentication).
expect_fetch() {
  local what=$1 log=$2 user=$3 fetcher=$4 conf=$5 url=$6
  local out=$work/got.bin before
  rm -f "$out"
  before=$(relayed "$log" "$user")
  echo "== $what" >>"$work/clients.log"
  if ! "$fetcher" "$conf" "$url" "$out"; then
    fail "$what: the client failed (see below)"
    tail -5 "$work/clients.log"
  elif ! cmp -s "$out" "$work/www/file.bin"; then
    fail "$what: the file differs ($(stat -c %s "$out") bytes received)"
  elif ! relayed_more_than "$log" "$user" "$before"; then
    fail "$what: ss-local relayed no connection to the web server${user:+ for $user}"
  else
    pass "$what"
  fi
}

# expect_refused WHAT FETCHER CONF URL: the client fails and gets no file.
expect_refused() {
  local what=$1 fetcher=$2 conf=$3 url=$4
  local out=$work/got.bin
  rm -f "$out"
  echo "== $what" >>"$work/clients.log"
  if "$fetcher" "$conf" "$url" "$out"; then
    fail "$what: the fetch succeeded"
  elif [[ -s $out ]] && cmp -s "$out" "$work/www/file.bin"; then
    fail "$what: the file arrived"
  else
    pass "$what"
  fi
}

url=http://127.0.0.1:$web_port/file.bin
socks=$(pc_conf socks "socks5 127.0.0.1 $local_port")
http=$(pc_conf http "http 127.0.0.1 $local_port")
socks_dns=$(pc_conf socks-dns "socks5 127.0.0.1 $local_port" proxy_dns)
socks_auth=$(pc_conf socks-auth "socks5 127.0.0.1 $auth_port alice secret")
http_auth=$(pc_conf http-auth "http 127.0.0.1 $auth_port bob hunter2")
socks_wrong=$(pc_conf socks-wrong "socks5 127.0.0.1 $auth_port alice wrong")
http_wrong=$(pc_conf http-wrong "http 127.0.0.1 $auth_port alice wrong")
socks_none=$(pc_conf socks-none "socks5 127.0.0.1 $auth_port")
dead=$(pc_conf dead "socks5 127.0.0.1 $dead_port")

plain=$work/local.log
expect_fetch "proxychains4 socks5: curl" "$plain" "" fetch_curl "$socks" "$url"
expect_fetch "proxychains4 http: curl" "$plain" "" fetch_curl "$http" "$url"
expect_fetch "proxychains4 socks5: python3 urllib" "$plain" "" fetch_python "$socks" "$url"
expect_fetch "proxychains4 http: python3 urllib" "$plain" "" fetch_python "$http" "$url"
expect_fetch "proxychains4 socks5 proxy_dns: python3 urllib to localhost" "$plain" "" \
  fetch_python "$socks_dns" "http://localhost:$web_port/file.bin"
expect_fetch "proxychains4 socks5 alice secret: curl" "$work/local-auth.log" alice fetch_curl \
  "$socks_auth" "$url"
expect_fetch "proxychains4 http bob hunter2: python3 urllib" "$work/local-auth.log" bob \
  fetch_python "$http_auth" "$url"
expect_refused "proxychains4 socks5 with a wrong password" fetch_curl "$socks_wrong" "$url"
expect_refused "proxychains4 http with a wrong password" fetch_curl "$http_wrong" "$url"
expect_refused "proxychains4 socks5 without credentials to the port that needs them" fetch_curl \
  "$socks_none" "$url"
# The control: with no proxy there, proxychains4 fails (so the passes above went through it).
expect_refused "proxychains4 with a dead proxy" fetch_curl "$dead" "$url"

# --- headless Chromium ---

chromium_pids() { # every live Chromium process in this PID namespace (by its executable)
  local d exe
  for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    [[ $exe == /usr/lib/chromium/* ]] && echo "${d#/proc/}"
  done
  return 0
}

# load_page PROXY: Chromium loads page.html through PROXY; the DOM goes to $work/dom.html.
load_page() {
  local proxy=$1 profile=$work/chromium-profile pid i rc=0
  rm -rf "$profile"
  : >"$work/dom.html"
  # setsid: a process group of its own, so what is left of it can be ended at once.
  setsid chromium --headless=new --no-sandbox --user-data-dir="$profile" \
    --proxy-server="$proxy" --proxy-bypass-list="<-loopback>" \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-extensions --disable-default-apps --no-pings \
    --disable-gpu --timeout=20000 \
    --dump-dom "http://127.0.0.1:$web_port/page.html" >"$work/dom.html" 2>>"$work/chromium.log" &
  pid=$!
  for ((i = 0; i < 600; i++)); do # at most 60 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  # Helpers that left the group (crashpad's handler makes a session of its own) are ended by id.
  for ((i = 0; i < 50; i++)); do
    [[ -z $(chromium_pids) ]] && break
    sleep 0.1
  done
  local left
  left=$(chromium_pids)
  if [[ -n $left ]]; then
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.5
  fi
  rm -rf "$profile"
  return "$rc"
}

for proxy in "socks5://127.0.0.1:$local_port" "http://127.0.0.1:$local_port"; do
  what="chromium --proxy-server=$proxy"
  before=$(relayed "$work/local.log" "")
  echo "== $what" >>"$work/chromium.log"
  rc=0
  load_page "$proxy" || rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "$what: exit status $rc; the end of its log:"
    tail -5 "$work/chromium.log"
  elif ! grep -q 'id="marker">js-42-ran<' "$work/dom.html"; then
    fail "$what: the DOM lacks the text the page's script writes:"
    head -c 2000 "$work/dom.html"
  elif ! relayed_more_than "$work/local.log" "" "$before"; then
    fail "$what: ss-local relayed no connection to the web server (went around the proxy?)"
  else
    pass "$what"
  fi
  if [[ -n $(chromium_pids) ]]; then
    fail "$what: Chromium processes survived: $(chromium_pids)"
  fi
  if [[ -e $work/chromium-profile ]]; then
    fail "$what: the profile directory was not removed"
  fi
done

# --- our processes end cleanly, with no sanitizer report ---

for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
for log in server local local-auth; do
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/$log.log"; then
    fail "ss $log: sanitizer report in its log:"
    grep -E -A5 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/$log.log" | head -20
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
