#!/usr/bin/env bash
# Section h of scripts/bench.sh: tun mode against our proxy path without a TUN, in two network
# namespaces of its own (client: ss-local with a TUN device, ss-tunnel; server: ss-server and the
# targets on its lo). Prints a Markdown section on stdout, progress on stderr.
#
#   throughput  iperf3 (one stream, -P 8, both directions with -R) to the server namespace's
#               iperf3, through the TUN against through ss-tunnel (iperf3 cannot speak SOCKS5;
#               ss-tunnel is our same relay and outbound behind a plain TCP listener), alternating;
#               the ratio tun/ss-tunnel of the medians.
#   new flows   sequential connections for SECONDS (connect, 1 byte each way, close) through the
#               TUN and through ss-local's SOCKS5 port; flows/s and ss-local's CPU ms per flow.
#   idle flows  N connections held open through each path; ss-local's RSS growth per flow (TUN
#               first, then SOCKS5, in the same process).
#
# Usage: scripts/bench/tun.sh BIN_DIR [SECONDS] [REPS] [N]   (defaults 5, 3, 1000). Needs root,
# /dev/net/tun, iperf3 and python3; exits 77 with the reason otherwise. Removes what it creates.
set -uo pipefail
bin=$(cd "${1:?usage: tun.sh BIN_DIR [SECONDS] [REPS] [N]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
secs=${2:-5}
reps=${3:-3}
nidle=${4:-1000}
skip() {
  echo "tun bench skipped: $*" >&2
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root"
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"
for t in ip iperf3 python3; do command -v "$t" >/dev/null || skip "no $t"; done

ns_c=ssbt-c-$$
ns_s=ssbt-s-$$
tmp=$(mktemp -d /tmp/ss-tun-bench.XXXXXX)
pids=()
# shellcheck source=tests/scripts/netns_lib.sh
source "$here/../../tests/scripts/netns_lib.sh"
cleanup() {
  netns_cleanup
  [[ -n ${KEEP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
in_c() { ip netns exec "$ns_c" "$@"; }
in_s() { ip netns exec "$ns_s" "$@"; }
say() { echo "tun bench: $*" >&2; }

target=10.221.0.1
mark=21331
netns_add "$ns_c" "$ns_s" || skip "cannot create network namespaces"
ip link add c0 netns "$ns_c" type veth peer name s0 netns "$ns_s" || skip "no veth"
in_c ip addr add 10.220.0.2/30 dev c0 && in_c ip link set c0 up
in_s ip addr add 10.220.0.1/30 dev s0 && in_s ip link set s0 up
in_s ip addr add "$target/32" dev lo
in_c ip rule add fwmark "$mark" lookup 100 && in_c ip route add default via 10.220.0.1 table 100

pw='tun bench password'
method=${TUN_BENCH_METHOD:-chacha20-ietf-poly1305}
netns_run "$ns_s" server "$bin/ss-server" -s 10.220.0.1 -p 8388 -k "$pw" -m "$method" \
  --allow-private-targets -n 8192
netns_wait_tcp "$ns_s" 8388 || skip "ss-server did not start"
netns_run "$ns_s" iperf iperf3 -s -B "$target" -p 5201
server_py='
import resource, socket, sys, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7010))
l.listen(4096)
while True:
    c, a = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
netns_run "$ns_s" echo python3 -c "$server_py" "$target"
netns_wait_tcp "$ns_s" 5201 && netns_wait_tcp "$ns_s" 7010 || skip "the targets did not start"
cat >"$tmp/local.json" <<JSON
{"server": "10.220.0.1", "server_port": 8388, "password": "$pw", "method": "$method",
 "outbound_fwmark": $mark, "nofile": 8192,
 "locals": [{"protocol": "tun", "tun_interface_name": "ssbt0",
             "tun_interface_address": "10.254.0.1/24"},
            {"protocol": "socks", "local_address": "127.0.0.1", "local_port": 1080}]}
JSON
netns_run "$ns_c" local "$bin/ss-local" -c "$tmp/local.json"
local_pid=$pid
netns_run "$ns_c" tunnel "$bin/ss-tunnel" -s 10.220.0.1 -p 8388 -k "$pw" -m "$method" -b 127.0.0.1 \
  -l 5202 -L "$target:5201"
netns_wait_tcp "$ns_c" 1080 && netns_wait_tcp "$ns_c" 5202 || skip "ss-local or ss-tunnel did not start"
in_c ip route add 10.221.0.0/24 dev ssbt0 || skip "cannot route into the TUN"
say "ss-local, ss-tunnel, ss-server up ($method); load: $(cut -d' ' -f1-3 /proc/loadavg)"

# gbps ARGS...: iperf3 in the client namespace; Gbit/s received, or nothing.
gbps() {
  in_c iperf3 -J --connect-timeout 5000 -t "$secs" "$@" 2>/dev/null | python3 -c '
import json, sys
try:
    print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception:
    pass'
}
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }

rows=()
for streams in 1 8; do
  for dir in fwd rev; do
    extra=()
    [[ $streams == 8 ]] && extra+=(-P 8)
    [[ $dir == rev ]] && extra+=(-R)
    : >"$tmp/t.tun"
    : >"$tmp/t.tunnel"
    for ((r = 0; r < reps; r++)); do
      order=(tun tunnel)
      ((r % 2)) && order=(tunnel tun)
      for path in "${order[@]}"; do
        if [[ $path == tun ]]; then
          v=$(gbps -c "$target" -p 5201 "${extra[@]}")
        else
          v=$(gbps -c 127.0.0.1 -p 5202 "${extra[@]}")
        fi
        [[ -n $v ]] && echo "$v" >>"$tmp/t.$path"
        say "iperf3 P$streams $dir $path: ${v:-failed} Gbit/s"
      done
    done
    a=$(median <"$tmp/t.tun")
    b=$(median <"$tmp/t.tunnel")
    ratio=$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {print ((b > 0 && a > 0) ? sprintf("%.2f", a / b) : "-")}')
    rows+=("| iperf3 $([[ $streams == 1 ]] && echo "1 stream" || echo "-P 8"), $([[ $dir == fwd ]] && echo upload || echo "download (-R)") | ${a:--} Gbit/s | ${b:--} Gbit/s | $ratio |")
  done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A fps cpu
for path in tun socks; do
  t0=$(ticks "$local_pid")
  read -r rate n < <(in_c python3 "$here/tun_flows.py" rate "$target" "$secs" "$path")
  t1=$(ticks "$local_pid")
  fps[$path]=${rate:-0}
  cpu[$path]=$(awk -v d=$((t1 - t0)) -v n="${n:-0}" -v hz="$hz" 'BEGIN {print n ? sprintf("%.3f", d * 1000 / hz / n) : "-"}')
  say "new flows through $path: ${rate:-?}/s, ss-local ${cpu[$path]} ms CPU per flow"
done
rows+=("| new flows/s (sequential: connect, 1 byte each way, close; tun vs SOCKS5) | ${fps[tun]} | ${fps[socks]} | $(awk -v a="${fps[tun]}" -v b="${fps[socks]}" 'BEGIN {print (b > 0 ? sprintf("%.2f", a / b) : "-")}') |")
rows+=("| ss-local CPU ms per new flow | ${cpu[tun]} | ${cpu[socks]} | $(awk -v a="${cpu[tun]}" -v b="${cpu[socks]}" 'BEGIN {print (b > 0 ? sprintf("%.2f", a / b) : "-")}') |")

declare -A per
for path in tun socks; do
  per[$path]=$(in_c python3 "$here/tun_flows.py" hold "$target" "$nidle" "$local_pid" "$path" 2>"$tmp/hold.err")
  say "$nidle idle flows through $path: ${per[$path]:-failed} bytes of ss-local RSS per flow"
done
rows+=("| ss-local RSS per idle flow ($nidle open; TUN measured first) | ${per[tun]:--} B | ${per[socks]:--} B | $(awk -v a="${per[tun]:-0}" -v b="${per[socks]:-0}" 'BEGIN {print (b > 0 ? sprintf("%.2f", a / b) : "-")}') |")

echo "## (h) tun mode against the path without a TUN"
echo
echo "scripts/bench/tun.sh, $method, ${secs} s per iperf3 run, median of $reps alternating runs;"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs. Throughput's other"
echo "path is ss-tunnel (iperf3 speaks no SOCKS5); new flows and RSS use ss-local's SOCKS5 port."
echo
echo "| measure | through the TUN | without (ss-tunnel / SOCKS5) | ratio tun/other |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
