# Shell helpers for the benchmark scripts (sourced, not run): scripts/bench/connpath.sh,
# scripts/bench/connpath_ir.sh, and the nginx origin of scripts/bench.sh.
# The caller sets `work` (its scratch directory) and defines the array `pids`, or calls bench_work.

# The tests' shell helpers: setup_work / cleanup_work make and remove the scratch directory.
# shellcheck source=tests/scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/scripts/lib.sh"

# bench_work NAME: a new scratch directory $work (under $TMPDIR) and an empty `pids`; both go at
# exit (the tests' setup_work, tests/scripts/lib.sh).
bench_work() {
  setup_work "$1"
}

# free_tcp_port: a TCP port free on 127.0.0.1.
free_tcp_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1's TCP PORT (from /proc/net/tcp),
# 10 s by default; otherwise prints the logs in $work and fails.
wait_port() {
  local hex i tries=$((${2:-10} * 10))
  hex=$(printf ':%04X' "$1")
  for ((i = 0; i < tries; i++)); do
    awk -v h="$hex" '$4 == "0A" && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
      /proc/net/tcp && return 0
    sleep 0.1
  done
  echo "${0##*/}: port $1 did not listen" >&2
  cat "$work"/*.log >&2 2>/dev/null
  return 1
}

# nginx_origin PREFIX PORT WORKER_CONNECTIONS: PREFIX/nginx.conf for one nginx worker on
# 127.0.0.1:PORT serving PREFIX/www/1k.bin (1,024 random bytes), with keep-alive requests
# unlimited and idle keep-alive connections kept 600 s; its pid, logs and temporary files stay
# under PREFIX. Run it with `nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/error.log`.
nginx_origin() {
  local prefix=$1 port=$2 conns=$3
  mkdir -p "$prefix/www" "$prefix/tmp"
  head -c 1024 /dev/urandom >"$prefix/www/1k.bin"
  chmod -R a+rX "$prefix"
  cat >"$prefix/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections $conns; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  server { listen 127.0.0.1:$port; root $prefix/www; }
}
NGINX
}
