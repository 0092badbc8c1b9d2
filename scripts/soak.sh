#!/usr/bin/env bash
# Soak test: our ss-server and ss-local on loopback under connection churn with random resets
# and a few long byte-exact streams, then resource checks.
#
# Usage: scripts/soak.sh MINUTES [--bin-dir DIR] [--method M] [--workers N] [--timeout S]
#                                [--rate N] [--concurrency N] [--seed N] [--keep-logs]
#   MINUTES        load time in minutes (decimals allowed), warm-up included; the run also
#                  waits up to timeout + 15 s at the end for connections to drain
#   --bin-dir DIR  use ss-server and ss-local from DIR instead of building build/
#   --method M     cipher (default chacha20-ietf-poly1305)
#   --workers N    worker threads of each binary (default 2)
#   --timeout S    idle timeout (-t) of both binaries in seconds (default 10)
#   --rate N       new proxied connections per second, at most (default 100)
#   --concurrency N  churning clients at once (default 16)
#   --seed N       seed of the load generator (printed, so a run can be repeated)
#   --keep-logs    keep the work folder (logs, summary) even when every check passed
#
# The load generator (scripts/soak/load.py, Python 3 stdlib) serves its own target and describes
# the workload and the checks. Exit status 0 only if every transfer was byte-exact, both binaries
# stayed up, came back to their descriptor baseline exactly and to their RSS baseline within the
# tolerance below, and shut down cleanly on SIGTERM.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

minutes=""
bin_dir=""
method=chacha20-ietf-poly1305
workers=2
timeout_s=10
rate=100
concurrency=16
seed=""
keep_logs=0
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a folder}; shift ;;
    --method) method=${2:?--method needs a name}; shift ;;
    --workers) workers=${2:?--workers needs a number}; shift ;;
    --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
    --rate) rate=${2:?--rate needs a number}; shift ;;
    --concurrency) concurrency=${2:?--concurrency needs a number}; shift ;;
    --seed) seed=${2:?--seed needs a number}; shift ;;
    --keep-logs) keep_logs=1 ;;
    -*) echo "soak.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *)
      [[ -z "$minutes" ]] || { echo "soak.sh: one MINUTES argument only" >&2; exit 2; }
      minutes=$1
      ;;
  esac
  shift
done
if ! [[ "$minutes" =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ "$minutes" =~ ^0+(\.0*)?$ ]]; then
  echo "soak.sh: MINUTES must be a positive number (try --help)" >&2
  exit 2
fi
for n in "$workers" "$timeout_s" "$rate" "$concurrency"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: '$n' is not a positive integer" >&2; exit 2; }
done
seconds=$(python3 -c 'import sys; print(round(float(sys.argv[1]) * 60, 1))' "$minutes")

if [[ -z "$bin_dir" ]]; then
  bash scripts/setup.sh
  cmake -S . -B build -DSS_WERROR=ON >/dev/null
  cmake --build build -j2 --target ss-server ss-local >/dev/null
  bin_dir=$root/build/bin
fi
for b in ss-server ss-local; do
  [[ -x "$bin_dir/$b" ]] || { echo "soak.sh: no executable $bin_dir/$b" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-soak.XXXXXX")
pids=()
ok=0
# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((ok && !keep_logs)); then
    rm -rf "$work"
  else
    echo "soak: logs and summary kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$1 accepts a connection (there is no notification to wait on) while the
# process $2 is alive.
wait_listening() {
  local port=$1 pid=$2 i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
started_pid=""
start() {  # name port args...: starts $bin_dir/name in the background, sets started_pid
  local name=$1 port=$2
  shift 2
  "$bin_dir/$name" "$@" >"$work/$name.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  if ! wait_listening "$port" "$started_pid"; then
    echo "soak: $name did not start listening on 127.0.0.1:$port; its log:" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
}

server_port=$(free_port)
local_port=$(free_port)
common=(-k "$password" -m "$method" -t "$timeout_s" -v --workers "$workers")
start ss-server "$server_port" -s 127.0.0.1 -p "$server_port" "${common[@]}" \
  --allow-private-targets
server_pid=$started_pid
start ss-local "$local_port" -s 127.0.0.1 -p "$server_port" -b 127.0.0.1 -l "$local_port" \
  "${common[@]}"
local_pid=$started_pid
echo "soak: $bin_dir, $method, $workers workers, -t $timeout_s; ss-server pid $server_pid" \
  "port $server_port, ss-local pid $local_pid port $local_port; $minutes min" >&2

# RSS tolerance. After the warm-up (same workload) the baseline already holds the allocator's
# working set; what can legitimately stay above it at the end is what the per-thread block pools
# (relay/buffer_pool.h) keep for reuse: up to kMaxFree = 64 free blocks of ~134 KiB per worker
# thread, if the main phase happened to reach a higher peak of blocks in flight than the warm-up.
# Plus 4 MiB for allocator fragmentation. A leak shows up as growth beyond that over thousands of
# connections (the summary prints the actual delta and the connection count).
rss_tolerance_kib=$((workers * 64 * 134 + 4096))

load_args=(--socks-port "$local_port" --seconds "$seconds" --watch "ss-server=$server_pid"
  --watch "ss-local=$local_pid" --rate "$rate" --concurrency "$concurrency"
  --settle $((timeout_s + 15)) --rss-tolerance-kib "$rss_tolerance_kib")
[[ -z "$seed" ]] || load_args+=(--seed "$seed")
load_status=0
python3 scripts/soak/load.py "${load_args[@]}" >"$work/summary.json" 2> >(tee "$work/load.log" >&2) ||
  load_status=$?

# Graceful shutdown: both must exit with 0 (or the SIGTERM status) and report no sanitizer error.
shutdown_ok=1
for name in ss-local ss-server; do
  pid=$local_pid
  [[ "$name" == ss-server ]] && pid=$server_pid
  kill -TERM "$pid" 2>/dev/null || true
  status=0
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "soak: FAIL  $name still running 15 s after SIGTERM" >&2
    shutdown_ok=0
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  if ((status != 0 && status != 143)); then
    echo "soak: FAIL  $name exited with status $status" >&2
    shutdown_ok=0
  fi
  if grep -q -e 'Sanitizer' -e 'runtime error:' "$work/$name.log"; then
    echo "soak: FAIL  $name log has a sanitizer report" >&2
    shutdown_ok=0
  fi
done

summary_status=0
python3 scripts/soak/summary.py "$work/summary.json" "$work/ss-server.log" "$work/ss-local.log" \
  "$shutdown_ok" || summary_status=$?
if ((load_status == 0 && summary_status == 0 && shutdown_ok)); then
  ok=1
  exit 0
fi
exit 1
