#!/usr/bin/env bash
# The balancer's hysteresis through the real binaries: two of our ss-servers, each behind a delay
# proxy (a small python3 TCP relay that holds every chunk from the server back): server A's
# answers take 100 ms, server B's alternate between 85 ms and 118 ms every 1.2 s, around A's.
# ss-local probes both every 200 ms through the tunnel to a local HTTP origin. For 12 s each:
# - without hysteresis (switch_margin 0, switch_rounds 1, min_switch_interval 0) it follows every
#   crossing: the number of switches is reported and must be at least 4 (the test can fail);
# - with the defaults (a margin of 20 %, 3 rounds, at most one switch per 5 s here) the number of
#   switches is reported and must be at most 12 s / 5 s + 1 = 3, and fewer than without.
#
# Usage: tests/scripts/fleet_hysteresis_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
#
# Everything listens on 127.0.0.1, on free ports; every process started is stopped at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"

setup_work ss-hysteresis
read -r origin_port sa sb pa pb l1 l2 < <(free_ports 7)

cat >"$work/origin.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
start "$work/origin.log" "$origin_port" python3 "$work/origin.py" "$origin_port"

# delay.py LISTEN UPSTREAM LOW_MS HIGH_MS PERIOD_S: each chunk from upstream is held back by LOW
# or HIGH ms, alternating every PERIOD seconds (LOW == HIGH: constant).
cat >"$work/delay.py" <<'PY'
import asyncio, sys, time
listen, upstream = int(sys.argv[1]), int(sys.argv[2])
low, high, period = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000, float(sys.argv[5])
t0 = time.monotonic()
def delay():
    return low if int((time.monotonic() - t0) / period) % 2 == 0 else high
async def pipe(r, w, hold):
    try:
        while True:
            d = await r.read(65536)
            if not d: break
            if hold: await asyncio.sleep(delay())
            w.write(d)
            await w.drain()
    except Exception:
        pass
    finally:
        try: w.close()
        except Exception: pass
async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    except Exception:
        cw.close(); return
    await asyncio.gather(pipe(cr, uw, False), pipe(ur, cw, True))
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with srv: await srv.serve_forever()
asyncio.run(main())
PY

pw_a="server a password"
pw_b="server b password"
start "$work/sa.log" "$sa" "$bin_dir/ss-server" -s 127.0.0.1 -p "$sa" -m aes-128-gcm -k "$pw_a" \
  --allow-private-targets
start "$work/sb.log" "$sb" "$bin_dir/ss-server" -s 127.0.0.1 -p "$sb" -m aes-128-gcm -k "$pw_b" \
  --allow-private-targets
start "$work/pa.log" "$pa" python3 "$work/delay.py" "$pa" "$sa" 100 100 1000
start "$work/pb.log" "$pb" python3 "$work/delay.py" "$pb" "$sb" 85 118 1.2

# run NAME PORT BALANCER_EXTRA: ss-local for 12 s; prints the number of switches.
run() {
  local name=$1 port=$2 extra=$3
  cat >"$work/$name.json" <<JSON
{
  "local_address": "127.0.0.1", "local_port": $port,
  "servers": [
    {"server": "127.0.0.1", "server_port": $pa, "method": "aes-128-gcm", "password": "$pw_a"},
    {"server": "127.0.0.1", "server_port": $pb, "method": "aes-128-gcm", "password": "$pw_b"}
  ],
  "balancer": {"mode": "best", "check_interval_ms": 200, "max_server_rtt": 1, "window": 3,
               "probe_target": "127.0.0.1:$origin_port"$extra}
}
JSON
  start "$work/$name.log" "$port" "$bin_dir/ss-local" -c "$work/$name.json"
  local pid=${pids[-1]}
  sleep 12
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  grep -c "balancer: switched" "$work/$name.log" || true
}

flapping=$(run flapping "$l1" ', "switch_margin": 0, "switch_rounds": 1, "min_switch_interval": 0')
steady=$(run steady "$l2" ', "min_switch_interval": 5')
echo "switches in 12 s: $flapping without hysteresis, $steady with it"
if [[ $flapping -ge 4 ]]; then
  pass "without hysteresis the balancer follows the alternating latency ($flapping switches)"
else
  fail "without hysteresis only $flapping switches: the delay proxy does not make B cross A"
fi
if [[ $steady -le 3 && $steady -lt $flapping ]]; then
  pass "with hysteresis $steady switches in 12 s (bound 3)"
else
  fail "with hysteresis $steady switches in 12 s (bound 3, and fewer than $flapping)"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
