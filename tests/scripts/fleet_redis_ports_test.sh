#!/usr/bin/env bash
# The Redis fleet with UDP, 2022 users, several ports and the management API (issue 14 item 7,
# server/fleet/fleet.h): two ss-servers, each with two ports from "servers" entries (aes-256-gcm,
# and 2022-blake3-aes-128-gcm whose password is the server's iPSK), both TCP and UDP, and an API;
# a redis-server the test starts on loopback.
# - Every port takes every user whose password suits its method: a short password is left out of
#   the 2022 port with a warning naming it, and works on the classic port.
# - UDP: a user added in Redis gets datagrams echoed through our ss-tunnel -u and
#   shadowsocks-libev's; after HDEL + PUBLISH its new associations are refused on both servers.
#   A user's UDP bytes count in the fleet's sum: a quota neither server reaches alone stops its
#   datagrams on both.
# - 2022: two Redis users (base64 uPSKs) through our ss-local (iPSK:uPSK), TCP and UDP; one removed
#   is refused, the other still served; the iPSK alone opens nothing.
# - API: POST /users on server 1 answers once Redis has the user, who then connects through
#   server 2 within a second; PATCH and DELETE on server 2 reach server 1; a second POST of the
#   same name is 400; with Redis down, POST is 503 with the reason.
#
# Usage: tests/scripts/fleet_redis_ports_test.sh BIN_DIR   (BIN_DIR holds ss-local, ss-tunnel and
# ss-server)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/scripts/fleet_lib.sh
source "$here/fleet_lib.sh"
script_test_args "$0" "$@"

require_tools redis-server redis-cli curl python3
libev_local=$(command -v ss-local || true)
libev_tunnel=$(command -v ss-tunnel || true)

setup_work ss-fleet-ports
# shellcheck disable=SC2034 # api1, api2: used as ${!aport}
read -r rport c1 c2 t1 t2 api1 api2 origin echo_port l1 l2 l3 l4 l5 l6 u1 u2 u3 u4 u5 u6 \
  < <(free_ports 21)
classic=aes-256-gcm
m2022=2022-blake3-aes-128-gcm
key16() { head -c 16 /dev/urandom | base64; }
ipsk=$(key16)
psk_bob=$(key16)
psk_carol=$(key16)
psk_frank=$(key16)
token=fleet-ports-test-token
rcli() { redis-cli -p "$rport" "$@"; }

mkdir -p "$work/www"
head -c 65536 /dev/urandom >"$work/www/64k"
start "$work/origin.log" "$origin" python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$origin"
# A UDP echo on 127.0.0.1:$echo_port.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)' "$echo_port" "$work/echo.ready" &
pids+=($!)
start_redis "$rport" "$work"
SECONDS=0

for i in 1 2; do
  cport="c$i" tport="t$i" aport="api$i"
  cat >"$work/server$i.json" <<JSON
{"users_url": "redis://127.0.0.1:$rport/0", "allow_private_targets": true, "state_dir": "",
 "workers": 1, "api_address": "127.0.0.1:${!aport}", "api_token": "$token",
 "servers": [
  {"server": "127.0.0.1", "server_port": ${!cport}, "method": "$classic", "mode": "tcp_and_udp"},
  {"server": "127.0.0.1", "server_port": ${!tport}, "method": "$m2022", "password": "$ipsk",
   "mode": "tcp_and_udp"}]}
JSON
  start "$work/server$i.log" "${!cport}" "$bin_dir/ss-server" -c "$work/server$i.json" -v
done
server1_pid=${pids[-2]}
server2_pid=${pids[-1]}

# local_for LOG LOCAL_PORT SERVER_PORT METHOD PASSWORD [libev]: an ss-local.
local_for() {
  local prog=ss-local
  [[ "${6:-}" == libev ]] && prog=libev:ss-local
  fleet_client "$prog" "$@"
}
# tunnel_for LOG LOCAL_PORT SERVER_PORT METHOD PASSWORD [libev]: an ss-tunnel -u to the echo.
tunnel_for() {
  local prog=ss-tunnel
  [[ "${6:-}" == libev ]] && prog=libev:ss-tunnel
  fleet_client "$prog" "${@:1:5}" -u -L "127.0.0.1:$echo_port"
}
# fetch LOCAL_PORT: the bytes of the 64 KiB file curl got (0 when refused: 1.5 s at most).
fetch() {
  curl -s -o /dev/null -w '%{size_download}' --max-time 1.5 --socks5-hostname "127.0.0.1:$1" \
    "http://127.0.0.1:$origin/64k" || true
}
# udp LOCAL_PORT:COUNT:SIZE...: for each, at once (one thread each, one Python for all: it
# starts slowly on a loaded machine), COUNT datagrams of SIZE random bytes from a new socket (a
# new association), one at a time; prints how many came back intact for each, stopping at the
# first that does not within 1 s.
udp() {
  python3 -c '
import os, socket, sys, threading
out = [0] * (len(sys.argv) - 1)
def run(i, port, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        for _ in range(count):
            data = os.urandom(size)
            s.sendto(data, ("127.0.0.1", port))
            while s.recv(65535) != data:
                pass
            out[i] += 1
    except socket.timeout:
        pass
threads = [threading.Thread(target=run, args=(i, *map(int, a.split(":"))))
           for i, a in enumerate(sys.argv[1:])]
for t in threads: t.start()
for t in threads: t.join()
print(*out)' "$@"
}
# api METHOD PATH SERVER [BODY]: "STATUS BODY" of one API request to server 1 or 2.
api() {
  local port="api$3" data=()
  [[ $# -ge 4 ]] && data=(-H 'Content-Type: application/json' --data "$4")
  curl -s -o "$work/api.body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" \
    "${data[@]}" "http://127.0.0.1:${!port}$2" || true
  printf ' %s\n' "$(tr -d '\n' <"$work/api.body" 2>/dev/null)"
}
publish() { rcli PUBLISH ss:users:changed "$1" >/dev/null; }
for ((i = 0; i < 100; i++)); do [[ -e "$work/echo.ready" ]] && break; sleep 0.05; done

for i in 1 2; do
  wait_log "$work/server$i.log" "fleet: users from redis" 5000 || fail "server $i does not log its redis connection"
done

# ---- users on every port whose method takes them -----------------------------------------------
# The iPSK alone (single-user 2022) never opens a fleet's 2022 port.
local_for ipsk.log "$l5" "$t1" "$m2022" "$ipsk"
rcli HSET ss:users alice '{"password": "pw-alice"}' bob "{\"password\": \"$psk_bob\"}" \
  carol "{\"password\": \"$psk_carol\"}" dan '{"password": "short"}' \
  erin '{"password": "pw-erin", "quota_bytes": 60000}' >/dev/null
publish alice
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "users added alice bob carol dan erin" 1000 || ok=0; done
((ok)) && pass "the users reach both servers within 1 s" || fail "the users did not reach both servers within 1 s"
warned=0
for i in 1 2; do
  tport="t$i"
  grep -qF "alice: port ${!tport}: password: " "$work/server$i.log" &&
    grep -qF "dan: port ${!tport}: password: " "$work/server$i.log" && warned=$((warned + 1))
done
((warned == 2)) && pass "passwords that are not uPSKs are left out of the 2022 port, named in a warning" || fail "no warning naming alice and dan on the 2022 ports"

if [[ -n "$libev_local" ]]; then
  local_for a1.log "$l1" "$c1" "$classic" pw-alice libev
else
  local_for a1.log "$l1" "$c1" "$classic" pw-alice
fi
local_for b2.log "$l2" "$t2" "$m2022" "$ipsk:$psk_bob"
local_for c1.log "$l3" "$t1" "$m2022" "$ipsk:$psk_carol"
local_for d2.log "$l4" "$c2" "$classic" short
jobs_=()
fetch "$l5" >"$work/f.ipsk" &
jobs_+=($!)
fetch "$l1" >"$work/f.alice" &
jobs_+=($!)
fetch "$l2" >"$work/f.bob" &
jobs_+=($!)
fetch "$l3" >"$work/f.carol" &
jobs_+=($!)
fetch "$l4" >"$work/f.dan"
wait "${jobs_[@]}"
[[ $(cat "$work/f.ipsk") == 0 ]] && pass "the iPSK alone is refused on a fleet's 2022 port" || fail "the iPSK alone got $(cat "$work/f.ipsk") bytes"
[[ $(cat "$work/f.alice") == 65536 ]] && pass "alice (classic) fetches through server 1's classic port (${libev_local:+libev }ss-local)" || fail "alice: $(cat "$work/f.alice") bytes"
[[ $(cat "$work/f.bob") == 65536 ]] && pass "bob (2022 uPSK from redis) fetches through server 2's 2022 port" || fail "bob: $(cat "$work/f.bob") bytes"
[[ $(cat "$work/f.carol") == 65536 ]] && pass "carol (2022 uPSK from redis) fetches through server 1's 2022 port" || fail "carol: $(cat "$work/f.carol") bytes"
[[ $(cat "$work/f.dan") == 65536 ]] && pass "dan (left out of the 2022 port) fetches through server 2's classic port" || fail "dan: $(cat "$work/f.dan") bytes"

# ---- UDP -----------------------------------------------------------------------------------
tunnel_for ua1.log "$u1" "$c1" "$classic" pw-alice
if [[ -n "$libev_tunnel" ]]; then
  tunnel_for ua2.log "$u2" "$c2" "$classic" pw-alice libev
else
  tunnel_for ua2.log "$u2" "$c2" "$classic" pw-alice
fi
tunnel_for ub.log "$u3" "$t2" "$m2022" "$ipsk:$psk_bob"
tunnel_for ue1.log "$u4" "$c1" "$classic" pw-erin
tunnel_for ue2.log "$u5" "$c2" "$classic" pw-erin
tunnel_for uc.log "$u6" "$t1" "$m2022" "$ipsk:$psk_carol"
read -r x1 x2 x3 < <(udp "$u1:3:500" "$u2:3:500" "$u3:3:500")
[[ $x1 == 3 ]] && pass "alice's datagrams are echoed through server 1 (our ss-tunnel -u)" || fail "alice's datagrams through server 1: $x1 of 3 echoed"
[[ $x2 == 3 ]] && pass "alice's datagrams are echoed through server 2 (${libev_tunnel:+libev }ss-tunnel -u)" || fail "alice's datagrams through server 2: $x2 of 3 echoed"
[[ $x3 == 3 ]] && pass "bob's datagrams are echoed through server 2's 2022 port" || fail "bob's datagrams (2022): $x3 of 3 echoed"
# erin (a 60 KB quota): 12 datagrams of 1000 bytes each way through each server at once (about
# 2 KB counted per datagram: 25 KB per server, 49 KB summed, all relayed); once the servers have
# merged the sum, 10 more through server 1 alone pass only until the fleet's sum reaches the
# quota (server 1's own count, 45 KB, would let all 10 through), then server 2 drops hers too.
read -r e1 e2 < <(udp "$u4:12:1000" "$u5:12:1000")
[[ "$e1 $e2" == "12 12" ]] && pass "erin's 12 + 12 datagrams are echoed through both servers" || fail "erin: $e1 and $e2 of 12 echoed"
fields=""
for ((i = 0; i < 40; i++)); do
  fields=$(rcli --raw HVALS ss:used:erin:0 | sort -n | tr '\n' ' ')
  read -r f1 f2 <<<"$fields"
  [[ -n "${f2:-}" ]] && ((f1 >= 20000 && f2 >= 20000)) && break
  sleep 0.1
done
read -r f1 f2 <<<"$fields"
if [[ -n "${f2:-}" ]] && ((f1 >= 20000 && f1 < 30000 && f2 >= 20000 && f2 < 30000)); then
  pass "each server writes erin's UDP bytes to redis ($f1 and $f2 bytes)"
else
  fail "erin's counters in redis: '$fields'"
fi
sleep 1.2 # one sync: each server reads the sum back
e1=$(udp "$u4:10:1000")
if ((e1 >= 1 && e1 <= 8)); then
  pass "server 1 stops erin's datagrams at the fleet's sum ($e1 of 10 relayed)"
else
  fail "server 1 relayed $e1 of erin's 10 datagrams (want 1 to 8)"
fi
sleep 1.2
e2=$(udp "$u5:1:1000")
[[ $e2 == 0 ]] && pass "then server 2 drops erin's datagrams too" || fail "server 2 still relays erin's datagrams over the fleet's quota"

rcli HDEL ss:users alice carol >/dev/null
publish alice
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "users removed alice carol" 1000 || ok=0; done
((ok)) && pass "alice and carol removed on both servers within 1 s" || fail "alice and carol not removed within 1 s"
jobs_=()
fetch "$l3" >"$work/f.carol" &
jobs_+=($!)
fetch "$l2" >"$work/f.bob" &
jobs_+=($!)
read -r x1 x2 x3 < <(udp "$u1:1:500" "$u2:1:500" "$u6:1:500")
wait "${jobs_[@]}"
[[ "$x1 $x2" == "0 0" ]] && pass "removed alice's new UDP associations are refused on both servers" || fail "removed alice's datagrams echoed: $x1 $x2"
[[ $x3 == 0 ]] && pass "removed carol's 2022 datagrams are dropped" || fail "removed carol's 2022 datagrams echoed"
[[ $(cat "$work/f.carol") == 0 ]] && pass "removed carol (2022) is refused" || fail "removed carol got $(cat "$work/f.carol") bytes"
[[ $(cat "$work/f.bob") == 65536 ]] && pass "bob (2022) is still served" || fail "bob got $(cat "$work/f.bob") bytes after carol's removal"

# ---- the management API writes to redis --------------------------------------------------------
body="{\"username\": \"frank\", \"uPSK\": \"$psk_frank\"}"
read -r status answer < <(api POST /users 1 "$body")
added_at=$SECONDS
[[ $status == 201 ]] && pass "POST /users on server 1: 201 once redis has frank" || fail "POST /users on server 1: $status $answer"
[[ $(rcli HEXISTS ss:users frank) == 1 ]] && pass "frank is in redis's ss:users" || fail "frank is not in redis"
wait_log "$work/server2.log" "users added frank" 1000 && pass "frank reaches server 2 within 1 s" || fail "frank did not reach server 2 within 1 s"
local_for f2.log "$l6" "$t2" "$m2022" "$ipsk:$psk_frank"
[[ $(fetch "$l6") == 65536 ]] && pass "frank fetches through server 2 ($((SECONDS - added_at)) s after the API's answer)" || fail "frank refused by server 2"
read -r status answer < <(api POST /users 2 "$body")
[[ $status == 400 ]] && pass "a second POST of frank (server 2) is 400" || fail "a second POST of frank: $status $answer"
read -r status answer < <(api POST /users 2 '{"username": "gina", "uPSK": "not-a-key"}')
[[ $status == 201 ]] && pass "a password only the classic port takes is accepted" || fail "gina (classic only): $status $answer"
read -r status answer < <(api GET /users 2)
[[ $status == 200 && $answer == *'"frank"'* ]] && pass "GET /users on server 2 lists frank" || fail "GET /users on server 2: $status $answer"
read -r status answer < <(api PATCH /users/gina 2 '{"uPSK": "gina-2"}')
[[ $status == 204 ]] && pass "PATCH /users/gina on server 2: 204" || fail "PATCH on server 2: $status $answer"
[[ $(rcli HGET ss:users gina) == '{"password":"gina-2"}' ]] && pass "gina's new password is in redis" || fail "gina in redis: $(rcli HGET ss:users gina)"
for ((i = 0; i < 50; i++)); do
  read -r status answer < <(api GET /users/gina 1)
  [[ $answer == *'"gina-2"'* ]] && break
  sleep 0.02
done
[[ $answer == *'"gina-2"'* ]] && pass "server 1 serves gina's new password within 1 s" || fail "server 1's gina: $status $answer"
read -r status answer < <(api DELETE /users/frank 2)
[[ $status == 204 ]] && pass "DELETE /users/frank on server 2: 204" || fail "DELETE on server 2: $status $answer"
wait_log "$work/server1.log" "users removed frank" 1000 && pass "frank's removal reaches server 1 within 1 s" || fail "frank's removal did not reach server 1"
[[ $(rcli HEXISTS ss:users frank) == 0 ]] && pass "frank is gone from redis" || fail "frank still in redis"
read -r status answer < <(api DELETE /users/frank 1)
[[ $status == 404 ]] && pass "DELETE of a removed user is 404" || fail "DELETE of a removed user: $status $answer"

kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
wait_log "$work/server1.log" "unreachable" 3000 || true
read -r status answer < <(api POST /users 1 "{\"username\": \"hal\", \"uPSK\": \"$(key16)\"}")
[[ $status == 503 && $answer == *unreachable* ]] && pass "POST /users with redis down: 503 ($answer)" || fail "POST /users with redis down: $status $answer"
[[ $(fetch "$l2") == 65536 ]] && pass "bob is still served with redis down" || fail "bob refused with redis down"

kill "$server1_pid" "$server2_pid"
sleep 0.1
kill "$server1_pid" "$server2_pid" 2>/dev/null || true
wait "$server1_pid" "$server2_pid" 2>/dev/null || true
echo "$passed passed, $failed failed (${SECONDS} s)"
if ((failed > 0)); then
  for i in 1 2; do echo "--- server $i"; tail -40 "$work/server$i.log"; done
fi
((failed == 0))
