#!/usr/bin/env bash
# scripts/setup.sh installs what is missing and nothing else: a shadowsocks-libev ss-server that
# an operator started by hand (/usr/bin/ss-server, which Debian's init script would take for its
# service and stop) is still running, and still listening, after setup.sh has run.
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -x /usr/bin/ss-server ]] || { echo "FAIL: /usr/bin/ss-server (shadowsocks-libev) is missing"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/ss-server -s 127.0.0.1 -p "$port" -k hand-started -m aes-256-gcm >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "FAIL: the hand-started ss-server does not listen"; exit 1; }

bash scripts/setup.sh

state=$(ps -o stat= -p "$pid" 2>/dev/null || true)  # a killed child stays a zombie until reaped
if [[ -z $state || $state == Z* ]]; then
  echo "FAIL: setup.sh ended the hand-started /usr/bin/ss-server (pid $pid)"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "FAIL: the hand-started ss-server no longer listens on $port"
  echo "0 passed, 1 failed"
  exit 1
fi
# And setup.sh never disables a service: the script has no such command at all.
if grep -nE '(systemctl|service|update-rc\.d|invoke-rc\.d|pkill|killall|kill) ' scripts/setup.sh | grep -v '^ *[0-9]*: *#'; then
  echo "FAIL: setup.sh contains a command that stops, disables or kills"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "ok: pid $pid still runs and listens on 127.0.0.1:$port"
echo "1 passed, 0 failed"
