#!/usr/bin/env bash
# A fleet of two ss-servers sharing users and quota counters through a redis-server the test
# starts on loopback (issue 14 item 7, server/fleet/fleet.h):
# - a user added in Redis (HSET ss:users + PUBLISH ss:users:changed) is applied by both servers
#   within 1 s (their logs), and works through shadowsocks-libev's ss-local and ours;
# - a removed user is refused by both within 1 s;
# - a quota is enforced on the fleet's sum: a rate-limited user downloading through both servers
#   at once stops near the shared quota, not at twice it (granularity: each server's rate for one
#   sync period, 1 s, plus a round trip);
# - Redis killed (SIGKILL) mid-run: a transfer in progress completes, users still connect, bytes
#   are counted locally; Redis restarted (from its last snapshot): each server's counter field
#   then holds exactly its count before plus what it relayed during the outage.
#
# Usage: tests/scripts/fleet_redis_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/scripts/fleet_lib.sh
source "$here/fleet_lib.sh"
script_test_args "$0" "$@"

require_tools redis-server redis-cli curl python3
libev_local=$(command -v ss-local || true)

setup_work ss-fleet-redis
read -r rport s1 s2 origin a1 a2 c1 c2 d1 d2 e1 < <(free_ports 11)
method=aes-256-gcm
rcli() { redis-cli -p "$rport" "$@"; }

# The origin: files of known sizes.
mkdir -p "$work/www"
head -c 65536 /dev/urandom >"$work/www/64k"
head -c 102400 /dev/urandom >"$work/www/100k"
head -c 1048576 /dev/urandom >"$work/www/1m"
start "$work/origin.log" "$origin" python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$origin"

start_redis "$rport" "$work"
SECONDS=0

for i in 1 2; do
  port_var="s$i"
  cat >"$work/server$i.json" <<JSON
{"server": "127.0.0.1", "server_port": ${!port_var}, "method": "$method",
 "users_url": "redis://127.0.0.1:$rport/0", "allow_private_targets": true, "state_dir": "",
 "workers": 1}
JSON
  start "$work/server$i.log" "${!port_var}" "$bin_dir/ss-server" -c "$work/server$i.json" -v
done
server1_pid=${pids[-2]}
server2_pid=${pids[-1]}

# client LOG LOCAL_PORT SERVER_PORT PASSWORD [libev]: an ss-local for one user and one server.
client() {
  local prog=ss-local
  [[ "${5:-}" == libev ]] && prog=libev:ss-local
  fleet_client "$prog" "$1" "$2" "$3" "$method" "$4"
}
# fetch LOCAL_PORT FILE: the bytes curl got (0 on a refused connection: the server drains it
# without an answer, so curl gives up after 1.5 s; a served 100 KB fetch takes 0.5 s at the
# slowest, carol's rate).
fetch() {
  curl -s -o /dev/null -w '%{size_download}' --max-time 1.5 --socks5-hostname "127.0.0.1:$1" \
    "http://127.0.0.1:$origin/$2" || true
}
# fetch2 PORT1 PORT2 FILE: both at once, "BYTES1 BYTES2".
fetch2() {
  fetch "$1" "$3" >"$work/f2.a" &
  fetch "$2" "$3" >"$work/f2.b"
  wait $!
  echo "$(cat "$work/f2.a") $(cat "$work/f2.b")"
}
publish() { rcli PUBLISH ss:users:changed "$1" >/dev/null; }

for i in 1 2; do
  if wait_log "$work/server$i.log" "fleet: users from redis" 5000; then
    pass "server $i reads its users from redis"
  else
    fail "server $i does not log its redis connection"
  fi
done

if [[ -n "$libev_local" ]]; then
  client a1.log "$a1" "$s1" pw-alice libev
else
  client a1.log "$a1" "$s1" pw-alice
fi
client a2.log "$a2" "$s2" pw-alice

# ---- a user added, then removed -----------------------------------------------------------
[[ $(fetch "$a1" 64k) == 65536 ]] && fail "alice works before she is in redis" || pass "alice refused before she is in redis"
rcli HSET ss:users alice '{"password": "pw-alice"}' >/dev/null
publish alice
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "users added alice" 1000 || ok=0; done
((ok)) && pass "alice added on both servers within 1 s" || fail "alice not added on both within 1 s"
read -r got1 got2 < <(fetch2 "$a1" "$a2" 64k)
which=ours
[[ -n "$libev_local" ]] && which=libev
[[ $got1 == 65536 ]] && pass "alice fetches through server 1 ($which ss-local)" || fail "alice through server 1: $got1 bytes"
[[ $got2 == 65536 ]] && pass "alice fetches through server 2 (our ss-local)" || fail "alice through server 2: $got2 bytes"

rcli HDEL ss:users alice >/dev/null
publish alice
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "users removed alice" 1000 || ok=0; done
((ok)) && pass "alice removed on both servers within 1 s" || fail "alice not removed on both within 1 s"
read -r got1 got2 < <(fetch2 "$a1" "$a2" 64k)
[[ $got1 == 0 && $got2 == 0 ]] && pass "removed alice is refused on both servers" || fail "removed alice got $got1 and $got2 bytes"

# ---- a quota summed over the fleet -------------------------------------------------------
quota=1000000
rate=200000
rcli HSET ss:users carol "{\"password\": \"pw-carol\", \"quota_bytes\": $quota, \"rate_limit_bytes_per_second\": $rate}" \
  dave '{"password": "pw-dave", "quota_bytes": 1000000000000}' \
  erin '{"password": "pw-erin"}' >/dev/null
publish carol
for i in 1 2; do wait_log "$work/server$i.log" "users added carol dave erin" 1000 || fail "carol, dave, erin not added on server $i"; done
client c1.log "$c1" "$s1" pw-carol
if [[ -n "$libev_local" ]]; then client c2.log "$c2" "$s2" pw-carol libev; else client c2.log "$c2" "$s2" pw-carol; fi
# Both servers at once, 100 KB at a time, until each is refused.
drain() {
  local total=0 got n
  for ((n = 0; n < 40; n++)); do
    got=$(fetch "$1" 100k)
    total=$((total + got))
    [[ $got == 102400 ]] || break
  done
  echo "$total" >"$work/drain.$1"
}
drain "$c1" &
drain_a=$!
drain "$c2" &
drain_b=$!
wait "$drain_a" "$drain_b"
total=$(($(cat "$work/drain.$c1") + $(cat "$work/drain.$c2")))
# Worst case over the quota: each server's rate for a sync period plus a round trip (1.2 s), and
# its burst (a tenth of a second), both servers.
slack=$((2 * rate * 12 / 10 + 2 * rate / 10))
echo "carol got $total bytes through both servers (quota $quota, slack $slack)"
if ((total <= quota + slack && total >= quota * 9 / 10)); then
  pass "carol's transfers stop at the fleet's quota ($total bytes for $quota)"
else
  fail "carol got $total bytes for a quota of $quota (slack $slack)"
fi
[[ $(fetch2 "$c1" "$c2" 64k) == "0 0" ]] && pass "carol refused on both once over quota" || fail "carol still served over quota"

# ---- Redis killed mid-run, then restarted ------------------------------------------------
client d1.log "$d1" "$s1" pw-dave
client d2.log "$d2" "$s2" pw-dave
client e1.log "$e1" "$s1" pw-erin
# field SERVER_PID: that server's count for dave ("" if none yet).
field() {
  rcli --raw HGETALL "ss:used:dave:0" | paste - - | awk -v p=":$1:" 'index($1, p) { print $2 }'
}
# settled PID1 PID2: waits until both servers' fields have not changed for 1.2 s (a sync every
# second), prints them.
settled() {
  local last="" now i same=0
  for ((i = 0; i < 60; i++)); do
    now="$(field "$1") $(field "$2")"
    if [[ "$now" != *" " && "$now" != " "* && "$now" == "$last" ]]; then
      same=$((same + 1))
      ((same >= 5)) && { echo "$now"; return 0; }
    else
      same=0
    fi
    last=$now
    sleep 0.25
  done
  echo "$now"
}
fetch2 "$d1" "$d2" 64k >/dev/null
read -r x0 y0 < <(settled "$server1_pid" "$server2_pid")
fetch2 "$d1" "$d2" 64k >/dev/null
read -r x1 y1 < <(settled "$server1_pid" "$server2_pid")
per1=$((x1 - x0))
per2=$((y1 - y0))
echo "dave: one 64 KiB fetch counts $per1 bytes on server 1, $per2 on server 2"
((per1 > 65536 && per2 > 65536)) && pass "each server's own count is in redis" || fail "dave's counts: $x0 $x1 / $y0 $y1"

rcli SAVE >/dev/null
curl -s -o "$work/slow.out" --limit-rate 700k --max-time 30 --socks5-hostname "127.0.0.1:$e1" \
  "http://127.0.0.1:$origin/1m" &
slow=$!
sleep 0.3
kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "unreachable" 3000 || ok=0; done
((ok)) && pass "both servers warn of the outage" || fail "no outage warning"
outage_fetches=3
bad=0
for ((n = 0; n < outage_fetches; n++)); do
  [[ $(fetch2 "$d1" "$d2" 64k) == "65536 65536" ]] || bad=$((bad + 1))
done
((bad == 0)) && pass "dave connects and fetches on both servers during the outage" || fail "$bad fetches failed during the outage"
wait "$slow" || true
cmp -s "$work/slow.out" "$work/www/1m" && pass "a transfer running when redis died completes" || fail "the transfer running when redis died did not complete"
warnings=$(grep -c "unreachable" "$work/server1.log" || true)
((warnings == 1)) && pass "one warning per outage" || fail "$warnings outage warnings on server 1"

start_redis "$rport" "$work"
ok=1
for i in 1 2; do wait_log "$work/server$i.log" "reachable again" 5000 || ok=0; done
((ok)) && pass "both servers log the recovery" || fail "no recovery line"
read -r x2 y2 < <(settled "$server1_pid" "$server2_pid")
want1=$((x1 + outage_fetches * per1))
want2=$((y1 + outage_fetches * per2))
if [[ "$x2" == "$want1" && "$y2" == "$want2" ]]; then
  pass "counts merged after the outage, exact: server 1 $x2, server 2 $y2 bytes"
else
  fail "after the outage: server 1 $x2 (want $want1), server 2 $y2 (want $want2)"
fi
total=$(rcli --raw HVALS "ss:used:dave:0" | awk '{ s += $1 } END { print s }')
[[ "$total" == $((x2 + y2)) ]] && pass "the fleet's total is the two servers' sum" || fail "total $total != $x2 + $y2"
[[ $(fetch "$d1" 64k) == 65536 ]] && pass "dave still served after the recovery" || fail "dave refused after the recovery"

# Refused clients are still being drained: a second signal closes them at once.
kill "$server1_pid" "$server2_pid"
sleep 0.1
kill "$server1_pid" "$server2_pid" 2>/dev/null || true
wait "$server1_pid" "$server2_pid" 2>/dev/null || true
echo "$passed passed, $failed failed (${SECONDS} s)"
if ((failed > 0)); then
  for i in 1 2; do echo "--- server $i"; tail -30 "$work/server$i.log"; done
fi
((failed == 0))
