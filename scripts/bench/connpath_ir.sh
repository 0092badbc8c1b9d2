#!/usr/bin/env bash
# The connection path's cost as instruction counts, which do not depend on the machine's load:
# ss-tunnel and ss-server each run under `valgrind --tool=callgrind` (ours with --workers 1), a
# small client drives requests through them to nginx (a 1 KB file), and each proxy's instructions
# (Ir) are divided by the requests. Two runs per case, with N0 and N0 + N requests; the difference
# divided by N is the cost of one request, so start-up, warm-up and exit cancel out.
# Then, without valgrind, `strace -f -c` attached to each proxy counts its system calls over N
# requests.
#   close:     a new connection per request (Connection: close), one at a time
#   keepalive: N requests one after another on one connection
#
# Usage: scripts/bench/connpath_ir.sh [--n N] [--method M] [--configs "ours libev"]
#                                     [--modes "close keepalive"] [--bin DIR] [--no-strace]
#                                     [--keep DIR] [--no-callgrind]
#   --keep DIR  keep the callgrind output files in DIR (callgrind.CONFIG.MODE.ROLE.n0 and .n1: the
#               runs of N0 and N0 + N requests), for callgrind_annotate, and strace's tables
#               (strace.CONFIG.MODE.ROLE)
# Ours runs with --state-dir "" (no replay state file; libev has none): the file's writes, every
# 60 s and on exit, grow with the salts remembered, so the longer run would pay more for them, and
# the 60 s timer fires more often in it (callgrind runs the proxies some 50 times slower).
# Prints a Markdown table: per request, Ir of ss-tunnel and ss-server (and their sum), ours/libev,
# and system calls of each.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=2000 method=aes-128-gcm configs="ours libev" modes="close keepalive" bin=$root/build/bin
use_strace=1 use_cg=1 keep=
while [[ $# -gt 0 ]]; do
  case $1 in
    --n) n=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --no-strace) use_strace=0; shift ;;
    --no-callgrind) use_cg=0; shift ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "connpath_ir.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
n0=$((n / 10 > 50 ? n / 10 : 50))
# shellcheck source=scripts/bench/common.sh
source "$root/scripts/bench/common.sh"
bench_work connpath-ir

ng_port=$(free_tcp_port)
nginx_origin "$work" "$ng_port" 4096
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log" >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_port "$ng_port" 60

# The client: COUNT requests for /1k.bin, each answer read whole (Content-Length) and checked.
cat >"$work/drive.py" <<'PY'
import socket, sys
port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def request(s, close):
    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            sys.exit("connection ended inside the header")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        d = s.recv(4096)
        if not d:
            sys.exit("connection ended inside the body")
        body += d
    if length != 1024 or not head.startswith(b"HTTP/1.1 200"):
        sys.exit("unexpected answer: " + head.decode(errors="replace"))
if mode == "close":
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        request(s, True)
        while s.recv(4096):
            pass
        s.close()
else:
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(count):
        request(s, False)
    s.close()
PY

cp /usr/bin/ss-server "$work/libev-ss-server"
cp /usr/bin/ss-tunnel "$work/libev-ss-tunnel"
key=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
srv_pid= tun_pid= tun_port=
# start CONFIG PREFIX...: both proxies, each behind PREFIX (e.g. valgrind) with %s replaced by its role
start() {
  local config=$1 srv tun extra=() srv_port
  shift
  case $config in
    ours) srv=("$bin/ss-server" --allow-private-targets) tun=("$bin/ss-tunnel")
      extra=(--workers 1 --state-dir "") ;;
    ours-w2) srv=("$bin/ss-server" --allow-private-targets) tun=("$bin/ss-tunnel")
      extra=(--workers 2 --state-dir "") ;;
    # copies: Debian's binaries carry a file capability (cap_net_bind_service), which valgrind
    # refuses to run; a copy has none
    libev) srv=("$work/libev-ss-server") tun=("$work/libev-ss-tunnel") ;;
    *) echo "connpath_ir.sh: unknown config $config" >&2; exit 2 ;;
  esac
  srv_port=$(free_tcp_port)
  tun_port=$(free_tcp_port)
  local p=("$@")
  (cd "$work" && exec "${p[@]//%s/server}" "${srv[@]}" -s 127.0.0.1 -p "$srv_port" -k "$key" -m "$method" -t 600 \
    "${extra[@]}") >"$work/srv.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  wait_port "$srv_port" 60
  (cd "$work" && exec "${p[@]//%s/tunnel}" "${tun[@]}" -s 127.0.0.1 -p "$srv_port" -b 127.0.0.1 -l "$tun_port" \
    -L "127.0.0.1:$ng_port" -k "$key" -m "$method" -t 600 "${extra[@]}") >"$work/tun.log" 2>&1 &
  tun_pid=$!
  pids+=("$tun_pid")
  wait_port "$tun_port" 60
}
stop() {
  kill -TERM "$tun_pid" "$srv_pid" 2>/dev/null || true
  wait "$tun_pid" "$srv_pid" 2>/dev/null || true
}
# Ir of one callgrind output file (all threads)
ir_of() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# utime and stime ticks of the given processes, summed
cpu_of() { for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ u += $14; k += $15 } END { print u, k }'; }
declare -A ir calls cpu
for config in $configs; do
  for mode in $modes; do
    for count in "$n0" $((n0 + n)); do
      ((use_cg)) || break
      rm -f "$work"/cg.*
      start "$config" valgrind -q --tool=callgrind "--callgrind-out-file=$work/cg.%s.%p"
      python3 "$work/drive.py" "$tun_port" "$mode" "$count"
      stop
      for role in tunnel server; do
        ir[$config.$mode.$role.$count]=$(ir_of "$(ls "$work"/cg."$role".* | head -1)")
      done
      if [[ -n $keep ]]; then
        mkdir -p "$keep"
        suffix=n1
        [[ $count == "$n0" ]] && suffix=n0
        for role in tunnel server; do
          cp "$(ls "$work"/cg."$role".* | head -1)" "$keep/callgrind.$config.$mode.$role.$suffix"
        done
      fi
    done
    # CPU time (user and system, both proxies, all threads, from /proc): measured, not counted,
    # so it varies with the machine's load
    start "$config"
    python3 "$work/drive.py" "$tun_port" "$mode" "$n0"
    read -r u0 k0 < <(cpu_of "$tun_pid" "$srv_pid")
    python3 "$work/drive.py" "$tun_port" "$mode" "$n"
    read -r u1 k1 < <(cpu_of "$tun_pid" "$srv_pid")
    stop
    cpu[$config.$mode]=$(awk -v u=$((u1 - u0)) -v k=$((k1 - k0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f | %.1f", u * 1e6 / hz / n, k * 1e6 / hz / n }')
    if ((use_strace)); then
      start "$config"
      python3 "$work/drive.py" "$tun_port" "$mode" "$n0"
      strace -f -c -o "$work/st.tunnel" -p "$tun_pid" 2>/dev/null &
      st1=$!
      strace -f -c -o "$work/st.server" -p "$srv_pid" 2>/dev/null &
      st2=$!
      sleep 1
      python3 "$work/drive.py" "$tun_port" "$mode" "$n"
      kill -INT "$st1" "$st2"
      wait "$st1" "$st2" 2>/dev/null || true
      stop
      for role in tunnel server; do
        calls[$config.$mode.$role]=$(awk '$NF == "total" {print $(NF - 2)}' "$work/st.$role")
        [[ -n $keep ]] && mkdir -p "$keep" && cp "$work/st.$role" "$keep/strace.$config.$mode.$role"
      done
    fi
  done
done

per() { [[ -z $1 ]] && { echo 0; return; }; awk -v a="$1" -v b="$2" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / n }'; }
echo "Instructions (callgrind Ir) and system calls per request, $method, N = $n (Ir: runs of $n0 and $((n0 + n)) requests, the difference / N)"
echo
echo "| mode | config | ss-tunnel Ir | ss-server Ir | both | both / libev | ss-tunnel syscalls | ss-server syscalls | both: user µs | both: system µs |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in $modes; do
  base=
  if ((use_cg)) && [[ " $configs " == *" libev "* ]]; then
    base=$(($(per "${ir[libev.$mode.tunnel.$n0]}" "${ir[libev.$mode.tunnel.$((n0 + n))]}") + \
      $(per "${ir[libev.$mode.server.$n0]}" "${ir[libev.$mode.server.$((n0 + n))]}")))
  fi
  for config in $configs; do
    t=$(per "${ir[$config.$mode.tunnel.$n0]:-}" "${ir[$config.$mode.tunnel.$((n0 + n))]:-}")
    s=$(per "${ir[$config.$mode.server.$n0]:-}" "${ir[$config.$mode.server.$((n0 + n))]:-}")
    ratio=
    [[ -n $base ]] && ratio=$(awk -v a=$((t + s)) -v b="$base" 'BEGIN { printf "%.2f×", a / b }')
    tc= sc=
    if ((use_strace)); then
      tc=$(awk -v a="${calls[$config.$mode.tunnel]}" -v n="$n" 'BEGIN { printf "%.2f", a / n }')
      sc=$(awk -v a="${calls[$config.$mode.server]}" -v n="$n" 'BEGIN { printf "%.2f", a / n }')
    fi
    echo "| $mode | $config | $t | $s | $((t + s)) | $ratio | $tc | $sc | ${cpu[$config.$mode]} |"
  done
done
