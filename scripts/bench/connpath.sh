#!/usr/bin/env bash
# The connection path's cost, measured on the proxies themselves rather than as a rate (robust on a
# shared machine): wrk through ss-tunnel -> ss-server -> nginx (a 1 KB file), then the CPU both
# proxies used (utime + stime from /proc) divided by the requests served, and optionally (--strace)
# their system calls per request counted by `strace -f -c`.
#
# Usage: scripts/bench/connpath.sh [--config ours|ours-w1|ours-nopin|libev] [--mode close|keepalive]
#                                  [--secs N] [--conns N] [--method M] [--strace] [--bin DIR]
#   --config   ours: our binaries with their default workers; ours-w1: --workers 1; ours-nopin:
#              --no-pin-workers (default workers, neither pinned nor steered by CPU); libev:
#              shadowsocks-libev's (default ours)
#   --mode     close: a new connection per request (Connection: close); keepalive (default close)
#   --strace   attach `strace -f -c` to both proxies; CPU figures then include strace's cost
#   --perf     record both proxies with `perf record -g` into $CONNPATH_OUT/perf-CONFIG-MODE-{tunnel,server}.data
#   --switches also print both proxies' context switches per request (all threads, /proc)
# Prints one line: config mode requests tunnel_us server_us [tunnel_syscalls server_syscalls]
# (per request), and with --strace the per-call tables in $CONNPATH_OUT (default /tmp).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
config=ours mode=close secs=4 conns=16 method=aes-128-gcm use_strace=0 use_perf=0 use_sw=0
bin=$root/build/bin
while [[ $# -gt 0 ]]; do
  case $1 in
    --config) config=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    --strace) use_strace=1; shift ;;
    --perf) use_perf=1; shift ;;
    --switches) use_sw=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "connpath.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out=${CONNPATH_OUT:-/tmp}
# shellcheck source=scripts/bench/common.sh
source "$root/scripts/bench/common.sh"
bench_work connpath
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'; }

ng_port=$(free_tcp_port)
nginx_origin "$work" "$ng_port" 4096
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log" >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_port "$ng_port"

srv_port=$(free_tcp_port)
tun_port=$(free_tcp_port)
key=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
extra=()
case $config in
  ours) srv=("$bin/ss-server" --allow-private-targets) tun=("$bin/ss-tunnel") ;;
  ours-w1) srv=("$bin/ss-server" --allow-private-targets) tun=("$bin/ss-tunnel") extra=(--workers 1) ;;
  ours-nopin) srv=("$bin/ss-server" --allow-private-targets) tun=("$bin/ss-tunnel") extra=(--no-pin-workers) ;;
  libev) srv=(/usr/bin/ss-server) tun=(/usr/bin/ss-tunnel) ;;
  *) echo "connpath.sh: unknown config $config" >&2; exit 2 ;;
esac
"${srv[@]}" -s 127.0.0.1 -p "$srv_port" -k "$key" -m "$method" -t 600 "${extra[@]}" \
  >"$work/srv.log" 2>&1 &
srv_pid=$!
pids+=("$srv_pid")
wait_port "$srv_port"
"${tun[@]}" -s 127.0.0.1 -p "$srv_port" -b 127.0.0.1 -l "$tun_port" -L "127.0.0.1:$ng_port" \
  -k "$key" -m "$method" -t 600 "${extra[@]}" >"$work/tun.log" 2>&1 &
tun_pid=$!
pids+=("$tun_pid")
wait_port "$tun_port"

args=(-t1 "-c$conns" "-d${secs}s")
[[ $mode == close ]] && args+=(-H 'Connection: close')
# A short warm-up (pools, first mappings), not counted.
wrk -t1 -c"$conns" -d1s "${args[@]:3}" "http://127.0.0.1:$tun_port/1k.bin" >/dev/null 2>&1 || true
if ((use_strace)); then
  strace -f -c -o "$out/connpath-$config-$mode-tunnel.strace" -p "$tun_pid" 2>/dev/null &
  st1=$!
  strace -f -c -o "$out/connpath-$config-$mode-server.strace" -p "$srv_pid" 2>/dev/null &
  st2=$!
  sleep 1
elif ((use_perf)); then
  perf record -q -F 1999 -g -o "$out/perf-$config-$mode-tunnel.data" -p "$tun_pid" >/dev/null 2>&1 &
  st1=$!
  perf record -q -F 1999 -g -o "$out/perf-$config-$mode-server.data" -p "$srv_pid" >/dev/null 2>&1 &
  st2=$!
  sleep 1
fi
t0=$(ticks "$tun_pid")
s0=$(ticks "$srv_pid")
w0=$(($(switches "$tun_pid") + $(switches "$srv_pid")))
wrk "${args[@]}" "http://127.0.0.1:$tun_port/1k.bin" >"$work/wrk.out" 2>&1
t1=$(ticks "$tun_pid")
s1=$(ticks "$srv_pid")
w1=$(($(switches "$tun_pid") + $(switches "$srv_pid")))
if ((use_strace || use_perf)); then
  kill -INT "$st1" "$st2"
  wait "$st1" "$st2" 2>/dev/null || true
fi
cp "$work/wrk.out" "$out/connpath-wrk.out"
requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
errors=$(awk '/Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} /Non-2xx/ {e += $NF} END {print e + 0}' "$work/wrk.out")
hz=$(getconf CLK_TCK)
line=$(awk -v r="$requests" -v t=$((t1 - t0)) -v s=$((s1 - s0)) -v hz="$hz" \
  'BEGIN { printf "%.1f %.1f", t * 1e6 / hz / r, s * 1e6 / hz / r }')
if ((use_strace)); then
  calls() { awk '$NF == "total" {print $(NF - 2)}' "$1"; }
  tc=$(calls "$out/connpath-$config-$mode-tunnel.strace")
  sc=$(calls "$out/connpath-$config-$mode-server.strace")
  line+=$(awk -v r="$requests" -v a="$tc" -v b="$sc" 'BEGIN { printf " %.2f %.2f", a / r, b / r }')
fi
((use_sw)) && line+=$(awk -v r="$requests" -v w=$((w1 - w0)) 'BEGIN { printf " switches=%.2f", w / r }')
echo "$config $mode $requests $line errors=$errors"
