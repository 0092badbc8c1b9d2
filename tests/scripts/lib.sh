# Shell helpers shared by the script tests that start our binaries on loopback (sourced, not run).
# The caller defines the array `pids`; every process `start` runs is appended to it.

# script_test_args "$0" "$@": a script test's one argument, BIN_DIR, as $bin_dir (absolute).
# Without it, the script's header comment (its usage) goes to stderr and the script exits 2.
script_test_args() {
  local script=$1
  shift
  if [[ $# -ne 1 ]]; then
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$script" >&2
    exit 2
  fi
  bin_dir=$(cd "$1" && pwd)
}

# require_tools PROGRAM...: fails the whole test (exit 1) naming the first one not installed.
require_tools() {
  local t
  for t in "$@"; do
    if ! command -v "$t" >/dev/null; then
      echo "FAIL: $t is not installed (scripts/setup.sh installs it)"
      echo "0 passed, 1 failed"
      exit 1
    fi
  done
}

# pass TEXT / fail TEXT: one result line, counted in $passed / $failed.
passed=0
failed=0
pass() {
  echo "ok: $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

# wait_listening PORT: until something accepts TCP on 127.0.0.1:PORT (10 s at most).
wait_listening() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start LOG PORT PROGRAM ARGS...: runs PROGRAM in the background with its output in LOG and waits
# for PORT; if nothing listens there, prints LOG and fails the whole test.
start() {
  local log=$1 port=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  if ! wait_listening "$port"; then
    echo "FAIL: $1 does not listen on $port; its log:"
    cat "$log"
    echo "0 passed, 1 failed"
    exit 1
  fi
}

# setup_work NAME: a new directory in $work (under $TMPDIR) and an empty `pids`; at exit every
# process in `pids` is stopped and the directory removed (kept if KEEP is set, for debugging).
setup_work() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pids=()
  trap cleanup_work EXIT
}
cleanup_work() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}

# no_sanitizer_reports LOG...: one result: fail (naming the logs) if one holds a sanitizer report.
no_sanitizer_reports() {
  if grep -lE 'Sanitizer|runtime error:' "$@"; then
    fail "a sanitizer report in the logs above"
  else
    pass "no sanitizer report in the logs"
  fi
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, on one line.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "$1"
}

# start_libev_manager PORT: shadowsocks-libev's ss-manager on UDP 127.0.0.1:PORT (aes-256-gcm,
# its ss-servers from /usr/bin on 127.0.0.1, their pid files in $work/libev, its log in
# $work/libev-manager.log), in `pids`; its pid in $libev_pid. The caller waits for its socket.
start_libev_manager() {
  mkdir -p "$work/libev"
  /usr/bin/ss-manager --manager-address "127.0.0.1:$1" --executable /usr/bin/ss-server \
    -D "$work/libev" -m aes-256-gcm -s 127.0.0.1 >"$work/libev-manager.log" 2>&1 &
  libev_pid=$!
  pids+=("$libev_pid")
}

# start_nginx DIR PORT BIN HTTP_LINES: Debian's nginx as an origin the test owns. Writes
# DIR/nginx.conf (foreground; pid, logs and temp paths under DIR) whose http { } block holds the
# common lines, then HTTP_LINES; starts it through `start` (so it stops with the test, its output
# in DIR/../nginx.log) and waits for PORT.
start_nginx() {
  local dir=$1 port=$2 nginx_bin=$3 lines=$4
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
$lines
}
EOF
  start "$dir/../nginx.log" "$port" "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}
