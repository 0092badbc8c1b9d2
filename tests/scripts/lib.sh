# Shell helpers shared by the script tests that start our binaries on loopback (sourced, not run).
# The caller defines the array `pids`; every process `start` runs is appended to it.

# wait_listening PORT: until something accepts TCP on 127.0.0.1:PORT (10 s at most).
wait_listening() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start LOG PORT PROGRAM ARGS...: runs PROGRAM in the background with its output in LOG and waits
# for PORT; if nothing listens there, prints LOG and fails the whole test.
start() {
  local log=$1 port=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  if ! wait_listening "$port"; then
    echo "FAIL: $1 does not listen on $port; its log:"
    cat "$log"
    echo "0 passed, 1 failed"
    exit 1
  fi
}
