#!/usr/bin/env bash
# A live UDP association fails over (issue 13), through the real binaries, and the balancer's
# state in the client's metrics. Two cases, each with two servers, a UDP echo target on
# 127.0.0.1 and one client socket sending a numbered datagram every 50 ms through a UDP tunnel
# to the echo; 1 s in, the client kills (SIGKILL, by its PID) the server its association uses:
#   1. ss-local ("locals": a tunnel) over our ss-server -u (aes-256-gcm) and shadowsocks-libev's
#      ss-server -u (chacha20-ietf-poly1305), with UDP probes (udp_probe_target: the echo);
#   2. ss-tunnel -u over two of our ss-servers with 2022-blake3-aes-256-gcm (different keys; no
#      UDP probes: UDP follows the TCP health).
# The balancer probes every 200 ms ("best", switch_rounds high so only a failure switches).
# Checked: every datagram before the kill is echoed; after it, the same client socket's
# datagrams are echoed again, through the other server, and all those of the last 1.5 s are;
# the client logs the move at -v (once); the gap and the datagrams lost are printed. The
# client's /metrics (promtool check metrics) before the kill: both servers up, the first
# current, no move; after: the killed server's up gauge 0 (case 1: its UDP gauge 0 too), the
# other up and current, one switch, one association move, an RTT for the survivor.
#
# Usage: tests/scripts/udp_failover_test.sh BIN_DIR   (BIN_DIR holds ss-local, ss-tunnel, ss-server)
#
# Needs python3, curl, promtool and shadowsocks-libev's ss-server (scripts/setup.sh). Everything
# listens on 127.0.0.1, on free ports; every process started is stopped at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
require_tools python3 curl promtool /usr/bin/ss-server
setup_work ss-udpfail

# The echo target: every datagram back to its sender.
cat >"$work/echo.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()  # ready
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
PY

# The client: one socket, a datagram numbered n every 50 ms for SECONDS to the tunnel; at KILL_AT
# s it sends SIGKILL to PID. Prints "sent received lost_before gap_ms lost_after tail_missing":
# lost_before counts datagrams sent more than 0.2 s before the kill and not echoed; gap_ms runs
# from the kill to the first echo of a datagram sent after it; lost_after counts datagrams sent
# after the kill and never echoed; tail_missing those of the last 1.5 s not echoed.
cat >"$work/client.py" <<'PY'
import os, select, signal, socket, struct, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
kill_at, seconds = float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.setblocking(False)
t0 = time.monotonic()
sent, echoed = {}, {}
killed = None
next_send = t0
seq = 0
while True:
    now = time.monotonic()
    if killed is None and now - t0 >= kill_at:
        os.kill(pid, signal.SIGKILL)
        killed = now - t0
    if now - t0 >= seconds + 0.5:
        break
    if now >= next_send and now - t0 < seconds:
        try:
            s.send(struct.pack(">I", seq) + b"u" * 60)
        except OSError:
            pass
        sent[seq] = now - t0
        seq += 1
        next_send += 0.05
    r, _, _ = select.select([s], [], [], max(0.0, next_send - time.monotonic()))
    if r:
        try:
            data = s.recv(2048)
        except OSError:
            continue
        if len(data) == 64:
            echoed.setdefault(struct.unpack(">I", data[:4])[0], time.monotonic() - t0)
after = [q for q in sent if sent[q] >= killed]
lost_before = sum(1 for q in sent if sent[q] < killed - 0.2 and q not in echoed)
resumed = [echoed[q] for q in after if q in echoed]
gap_ms = int((min(resumed) - killed) * 1000) if resumed else -1
lost_after = sum(1 for q in after if q not in echoed)
tail = sum(1 for q in sent if sent[q] >= seconds - 1.5 and q not in echoed)
print(len(sent), len(echoed), lost_before, gap_ms, lost_after, tail)
PY

# metric FILE NAME: the value of the series NAME (with its labels) in FILE, or "none".
metric() {
  awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print "none" }' "$1"
}

# scrape PORT FILE: /metrics into FILE, checked by promtool.
scrape() {
  curl -s "http://127.0.0.1:$1/metrics" >"$2"
  if promtool check metrics <"$2" >"$2.promtool" 2>&1; then
    pass "promtool check metrics accepts ${2##*/}"
  else
    fail "promtool check metrics on ${2##*/}: $(cat "$2.promtool")"
  fi
}

# expect FILE NAME VALUE: the series NAME is VALUE in FILE.
expect() {
  local got
  got=$(metric "$1" "$2")
  if [[ $got == "$3" ]]; then
    pass "${1##*/}: $2 = $3"
  else
    fail "${1##*/}: $2 = $got, expected $3"
  fi
}

# run_case NAME LOCAL_LOG TUNNEL_PORT METRICS_PORT KILLED_PID KILLED SURVIVOR UDP_PROBED
run_case() {
  local name=$1 log=$2 tport=$3 mport=$4 kpid=$5 killed=$6 survivor=$7 probed=$8
  local up=shadowsocks_balancer_server_up cur=shadowsocks_balancer_server_current
  local udp=shadowsocks_balancer_server_udp_up
  sleep 0.6  # a probe round or two
  scrape "$mport" "$work/$name-before.txt"
  expect "$work/$name-before.txt" "$up{server=\"$killed\"}" 1
  expect "$work/$name-before.txt" "$up{server=\"$survivor\"}" 1
  expect "$work/$name-before.txt" "$cur{server=\"$killed\"}" 1
  expect "$work/$name-before.txt" shadowsocks_udp_association_moves_total 0
  local sent=0 echoed=0 lost_before=-1 gap=-1 lost_after=-1 tail=-1
  read -r sent echoed lost_before gap lost_after tail < <(python3 "$work/client.py" "$tport" "$kpid" 1 3.5) || true
  wait "$kpid" 2>/dev/null || true
  echo "$name: $sent datagrams sent, $echoed echoed; after the kill: gap $gap ms, $lost_after lost"
  if [[ $lost_before -eq 0 && $gap -ge 0 && $tail -eq 0 ]]; then
    pass "$name: echoes before the kill, again $gap ms after it ($lost_after lost), none missing in the last 1.5 s"
  else
    fail "$name: $lost_before lost before the kill, gap $gap ms, $tail missing in the last 1.5 s ($sent sent, $echoed echoed)"
  fi
  local moves
  moves=$(grep -c "udp: an association moved from server $killed to $survivor" "$log" || true)
  if [[ $moves -eq 1 ]]; then
    pass "$name: the client logged the association's move once"
  else
    fail "$name: $moves move lines in the client's log"
    grep -E "balancer|moved" "$log" || true
  fi
  scrape "$mport" "$work/$name-after.txt"
  expect "$work/$name-after.txt" "$up{server=\"$killed\"}" 0
  expect "$work/$name-after.txt" "$up{server=\"$survivor\"}" 1
  expect "$work/$name-after.txt" "$cur{server=\"$killed\"}" 0
  expect "$work/$name-after.txt" "$cur{server=\"$survivor\"}" 1
  expect "$work/$name-after.txt" shadowsocks_balancer_switches_total 1
  expect "$work/$name-after.txt" shadowsocks_udp_association_moves_total 1
  if [[ $probed == yes ]]; then
    expect "$work/$name-after.txt" "$udp{server=\"$killed\"}" 0
    expect "$work/$name-after.txt" "$udp{server=\"$survivor\"}" 1
  elif [[ $(metric "$work/$name-after.txt" "$udp{server=\"$survivor\"}") == none ]]; then
    pass "$name: no UDP gauge without UDP probes"
  else
    fail "$name: a UDP gauge without UDP probes"
  fi
  local rtt
  rtt=$(metric "$work/$name-after.txt" "shadowsocks_balancer_server_rtt_seconds{server=\"$survivor\"}")
  if awk -v r="$rtt" 'BEGIN { exit !(r + 0 > 0 && r + 0 < 1) }'; then
    pass "$name: the survivor's last probe RTT is $rtt s"
  else
    fail "$name: the survivor's last probe RTT is $rtt"
  fi
}

read -r echo_port s0 s1 s2 s3 local_port tunnel_port met1 tun2_port met2 < <(free_ports 10)
python3 "$work/echo.py" "$echo_port" "$work/echo.ready" &
pids+=($!)
for ((i = 0; i < 50; i++)); do [[ -e $work/echo.ready ]] && break; sleep 0.1; done

# --- 1: ss-local over ours and shadowsocks-libev's, with UDP probes -----------------------------
start "$work/s0.log" "$s0" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s0" -m aes-256-gcm \
  -k "udp failover one" --allow-private-targets -u -v
s0_pid=${pids[-1]}
start "$work/s1.log" "$s1" /usr/bin/ss-server -s 127.0.0.1 -p "$s1" -m chacha20-ietf-poly1305 \
  -k "udp failover two" -u
cat >"$work/local.json" <<JSON
{"locals": [{"protocol": "tunnel", "mode": "tcp_and_udp", "local_address": "127.0.0.1",
             "local_port": $tunnel_port,
             "forward_address": "127.0.0.1", "forward_port": $echo_port},
            {"protocol": "socks", "local_address": "127.0.0.1", "local_port": $local_port}],
 "servers": [
   {"server": "127.0.0.1", "server_port": $s0, "method": "aes-256-gcm",
    "password": "udp failover one"},
   {"server": "127.0.0.1", "server_port": $s1, "method": "chacha20-ietf-poly1305",
    "password": "udp failover two"}],
 "mode": "tcp_and_udp", "metrics_address": "127.0.0.1:$met1",
 "balancer": {"mode": "best", "check_interval_ms": 200, "max_server_rtt": 1,
              "switch_rounds": 1000, "udp_probe_target": "127.0.0.1:$echo_port"}}
JSON
start "$work/local.log" "$local_port" "$bin_dir/ss-local" -c "$work/local.json" -v
local_pid=${pids[-1]}
wait_listening "$met1" || fail "ss-local does not serve metrics on $met1"
run_case classic "$work/local.log" "$tunnel_port" "$met1" "$s0_pid" "127.0.0.1:$s0" \
  "127.0.0.1:$s1" yes

# --- 2: ss-tunnel -u over two of ours, 2022 ----------------------------------------------------
k2=$("$bin_dir/ss-server" --genkey 2022-blake3-aes-256-gcm)
k3=$("$bin_dir/ss-server" --genkey 2022-blake3-aes-256-gcm)
start "$work/s2.log" "$s2" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s2" \
  -m 2022-blake3-aes-256-gcm -k "$k2" --allow-private-targets -u -v
s2_pid=${pids[-1]}
start "$work/s3.log" "$s3" "$bin_dir/ss-server" -s 127.0.0.1 -p "$s3" \
  -m 2022-blake3-aes-256-gcm -k "$k3" --allow-private-targets -u -vv
cat >"$work/tunnel.json" <<JSON
{"local_address": "127.0.0.1", "local_port": $tun2_port,
 "tunnel_address": "127.0.0.1:$echo_port", "metrics_address": "127.0.0.1:$met2",
 "servers": [
   {"server": "127.0.0.1", "server_port": $s2, "method": "2022-blake3-aes-256-gcm",
    "password": "$k2"},
   {"server": "127.0.0.1", "server_port": $s3, "method": "2022-blake3-aes-256-gcm",
    "password": "$k3"}],
 "balancer": {"mode": "best", "check_interval_ms": 200, "max_server_rtt": 1,
              "switch_rounds": 1000}}
JSON
start "$work/tunnel.log" "$tun2_port" "$bin_dir/ss-tunnel" -c "$work/tunnel.json" -u -v
tunnel_pid=${pids[-1]}
wait_listening "$met2" || fail "ss-tunnel does not serve metrics on $met2"
run_case aead2022 "$work/tunnel.log" "$tun2_port" "$met2" "$s2_pid" "127.0.0.1:$s2" \
  "127.0.0.1:$s3" no
# The survivor took a new session: ours logs it as a new UDP association.
if grep -q "udp: new association" "$work/s3.log"; then
  pass "aead2022: the surviving server saw a new association (a new 2022 session)"
else
  fail "aead2022: no new association in the surviving server's log"
fi

# Both clients end cleanly on SIGTERM, no handle left; no sanitizer report in any log.
for p in "$local_pid" "$tunnel_pid"; do
  kill -TERM "$p"
  rc=0
  wait "$p" || rc=$?
  [[ $rc -eq 0 ]] && pass "client $p exits 0 on SIGTERM" || fail "client $p exit status $rc"
done
! grep -l "live handles" "$work"/local.log "$work"/tunnel.log || fail "a loop closed with live handles"
no_sanitizer_reports "$work"/*.log

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
