#!/usr/bin/env bash
# Builds shadowsocks-uv, starts our ss-server and ss-local on loopback from config.example.json,
# plus a small local web server, and fetches a page through the SOCKS5 port with curl.
#
# Usage: scripts/demo.sh [--once]
#   --once   exit after the check (status 0 if the page came through, non-zero otherwise);
#            without it the proxy keeps serving until Ctrl-C.
#
# If a port from the config is taken, a free one is used instead (flags override the file).
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    -h | --help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

bash scripts/setup.sh
cmake -S . -B build -DSS_WERROR=ON >/dev/null
cmake --build build -j2 --target ss-server ss-local ss-tunnel >/dev/null
bin=$PWD/build/bin
config=$PWD/config.example.json

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-demo.XXXXXX")
pids=()
# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

read -r server_port local_port method < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(c["server_port"], c["local_port"], c["method"])' "$config")
[[ -n "${method:-}" ]] || { echo "demo: cannot read $config" >&2; exit 1; }

port_is_free() {
  python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is fine
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}
free_port() {
  python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The demo page is on loopback, which ss-server refuses by default (SSRF guard).
# The replay state files go in the demo's own directory, not the repository.
server_flags=(--allow-private-targets --state-dir "$work/state")
local_flags=(--state-dir "$work/state")
if ! port_is_free "$server_port"; then
  new=$(free_port)
  echo "demo: port $server_port is taken, ss-server listens on $new instead"
  server_port=$new
  server_flags+=(-p "$server_port")
  local_flags+=(-p "$server_port")
fi
if ! port_is_free "$local_port"; then
  new=$(free_port)
  echo "demo: port $local_port is taken, ss-local listens on $new instead"
  local_port=$new
  local_flags+=(-l "$local_port")
fi
web_port=$(free_port)

# start LABEL COMMAND...: runs it in the background with its output in $work/LABEL.log.
start() {
  local label=$1
  shift
  "$@" >"$work/$label.log" 2>&1 &
  pids+=($!)
}

# wait_port LABEL PORT: until 127.0.0.1:PORT accepts a connection (10 s), or the process exits.
wait_port() {
  local label=$1 port=$2 pid=${pids[-1]} i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $label exited before listening on port $port:" >&2
      cat "$work/$label.log" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1 # nothing to wait on for "a port started listening": poll with connects
  done
  echo "demo: $label is not listening on port $port after 10 s:" >&2
  cat "$work/$label.log" >&2
  return 1
}

mkdir -p "$work/www"
page="Hello from shadowsocks-uv: this page came through ss-local and ss-server."
echo "$page" >"$work/www/index.html"

start ss-server "$bin/ss-server" -c "$config" "${server_flags[@]}"
wait_port ss-server "$server_port"
start ss-local "$bin/ss-local" -c "$config" "${local_flags[@]}"
wait_port ss-local "$local_port"
start web python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$web_port"
wait_port web "$web_port"

url="http://127.0.0.1:$web_port/"
echo "demo: ss-server on 127.0.0.1:$server_port, ss-local (SOCKS5, SOCKS4, HTTP) on 127.0.0.1:$local_port," \
  "method $method, web server on 127.0.0.1:$web_port"
echo "demo: \$ curl --socks5-hostname 127.0.0.1:$local_port $url"
if ! body=$(curl --silent --show-error --fail --max-time 10 --noproxy '' \
  --socks5-hostname "127.0.0.1:$local_port" "$url"); then
  echo "demo: FAILED: curl could not fetch the page through the proxy" >&2
  for label in ss-local ss-server web; do
    echo "--- $label log:" >&2
    cat "$work/$label.log" >&2
  done
  exit 1
fi
echo "$body"
if [[ "$body" != "$page" ]]; then
  echo "demo: FAILED: the page differs from what the web server serves" >&2
  exit 1
fi
echo "demo: OK, the page came through the proxy."

if [[ $once -eq 1 ]]; then exit 0; fi

cat <<EOF

The proxy is running. Use it as a SOCKS5, SOCKS4 or HTTP proxy at 127.0.0.1:$local_port, for example:
  curl --socks5-hostname 127.0.0.1:$local_port $url
  curl -x http://127.0.0.1:$local_port $url
  curl --socks5-hostname 127.0.0.1:$local_port https://example.com/   (if this machine has internet)
  or set 127.0.0.1:$local_port as the SOCKS5 proxy of a browser (with remote DNS).
Server and client settings are in config.example.json. Press Ctrl-C to stop.
EOF
set +e
wait -n "${pids[@]}"
status=$?
echo "demo: a process exited (status $status), stopping" >&2
exit 1
