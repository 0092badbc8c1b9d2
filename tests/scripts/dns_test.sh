#!/usr/bin/env bash
# DNS (issue 13 item 8): ss-server's target lookups through c-ares and the name servers given by
# `nameserver` / -d, against test resolvers on loopback (tests/scripts/dns_responder.py):
#  - a name resolves through the configured server (its log shows the query) and the connection
#    is relayed, ss-local's SOCKS5 with the name (curl --socks5-hostname);
#  - a name the server answers with a private address is refused by the SSRF guard;
#  - with a black-holed name server the connection fails within c-ares's bound (2 s + 4 s), not
#    sooner than its first timeout, and the black hole saw the query;
#  - an invalid `nameserver` is refused at startup (exit 1 naming the key).
#
# Usage: tests/scripts/dns_test.sh BIN_DIR   (BIN_DIR holds ss-local and ss-server)
#
# Everything listens on 127.0.0.1, on free ports; every process started is stopped at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/scripts/lib.sh
source "$here/lib.sh"
script_test_args "$0" "$@"
setup_work ss-dns

method=chacha20-ietf-poly1305
password=dns-test-password
read -r http_port s1 s2 s3 l1 l2 l3 < <(free_ports 7)

# start_responder NAME ARGS...: a responder whose port file is $work/NAME.port (see ports below).
start_responder() {
  local name=$1
  shift
  python3 "$here/dns_responder.py" "$work/$name.port" --log "$work/$name.queries" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
}
# The three python3 processes start together (each takes a while to start on a loaded machine).
: >"$work/good.queries"
: >"$work/hole.queries"
start_responder good --zone target.test=127.0.0.1 --zone private.test=10.9.8.7
start_responder hole --blackhole
mkdir -p "$work/www"
echo "dns-test-body" >"$work/www/index.html"
(cd "$work/www" && exec python3 -m http.server -b 127.0.0.1 "$http_port") >"$work/http.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 200; i++)); do
  [[ -s "$work/good.port" && -s "$work/hole.port" ]] && break
  sleep 0.05
done
good_port=$(cat "$work/good.port")
hole_port=$(cat "$work/hole.port")
wait_listening "$http_port"

server() { # server LOG PORT NAMESERVER [ARGS...]
  local log=$1 port=$2 ns=$3
  shift 3
  start "$work/$log" "$port" "$bin_dir/ss-server" -s 127.0.0.1 -p "$port" -m "$method" \
    -k "$password" -d "$ns" -v "$@"
}
local_() { # local_ LOG PORT SERVER_PORT
  start "$work/$1" "$2" "$bin_dir/ss-local" -s 127.0.0.1 -p "$3" -l "$2" -b 127.0.0.1 \
    -m "$method" -k "$password"
}
server s1.log "$s1" "127.0.0.1:$good_port" --allow-private-targets
server s2.log "$s2" "127.0.0.1:$good_port"
server s3.log "$s3" "127.0.0.1:$hole_port" --allow-private-targets
local_ l1.log "$l1" "$s1"
local_ l2.log "$l2" "$s2"
local_ l3.log "$l3" "$s3"

# 3 starts first, in the background (it takes seconds): a black-holed name server.
(
  t0=$(date +%s%N)
  curl -sS -m 20 --socks5-hostname "127.0.0.1:$l3" "http://target.test:$http_port/" >/dev/null \
    2>&1 && rc=0 || rc=$?
  echo "$rc $((($(date +%s%N) - t0) / 1000000))" >"$work/hole.result"
) &
hole_job=$!

# 1. Resolved through the configured name server and relayed.
body=$(curl -sS -m 10 --socks5-hostname "127.0.0.1:$l1" "http://target.test:$http_port/" || true)
if [[ "$body" == "dns-test-body" ]] && grep -q "^udp target.test 1$" "$work/good.queries"; then
  pass "target.test resolved through the configured name server and relayed"
else
  fail "target.test through nameserver (body '$body'); queries: $(tr '\n' ';' <"$work/good.queries")"
fi

# 2. The guard checks the address the name server gave.
if curl -sS -m 10 --socks5-hostname "127.0.0.1:$l2" "http://private.test:$http_port/" \
  >/dev/null 2>&1; then
  fail "private.test (10.9.8.7) was relayed"
elif grep -q "^udp private.test" "$work/good.queries" && grep -q "10.9.8.7" "$work/s2.log"; then
  pass "a name resolving to a private address is refused by the guard"
else
  fail "private.test: no lookup or no refusal logged; server log: $(tail -5 "$work/s2.log")"
fi

# 4. A nameserver that is not an address list is refused at startup.
if out=$("$bin_dir/ss-server" -s 127.0.0.1 -p "$s1" -m "$method" -k "$password" \
  -d "not an address" 2>&1); then
  fail "an invalid nameserver was accepted"
elif [[ "$out" == *"-d: "*"not a list of addresses"* ]]; then
  pass "an invalid nameserver is refused: $out"
else
  fail "invalid nameserver: unexpected message: $out"
fi

# 3. The black hole: the lookup failed within c-ares's bound.
wait "$hole_job" || true
read -r rc ms <"$work/hole.result"
if [[ $rc -ne 0 && $ms -ge 1900 && $ms -le 9000 ]] && grep -q "^udp target.test" "$work/hole.queries"; then
  pass "a black-holed name server fails the connection in $ms ms"
else
  fail "black hole: curl rc $rc after $ms ms; queries: $(tr '\n' ';' <"$work/hole.queries")"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
