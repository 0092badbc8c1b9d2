# Shell helpers for the tests that build network namespaces of their own (sourced, not run):
# tests/scripts/{tun,redir_netns,host_guard_netns}_test.sh and scripts/bench/tun.sh.
# The caller sets `tmp` (its scratch directory) and defines the array `pids`, and its EXIT trap
# calls netns_cleanup.

netns_created=()

# netns_add NAME...: creates the namespaces, each with its loopback up; 1 if one cannot be made.
netns_add() {
  local n
  for n in "$@"; do
    ip netns add "$n" 2>/dev/null || return 1
    netns_created+=("$n")
    ip netns exec "$n" ip link set lo up || return 1
  done
}

# netns_cleanup: stops the processes in `pids`, then anything still running in the namespaces
# (all started by the caller), and deletes the namespaces with their /etc/netns/NAME files (the
# resolv.conf a test gives a namespace).
netns_cleanup() {
  local p n
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for n in "${netns_created[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
    rm -rf "/etc/netns/$n"
  done
  return 0
}

# netns_run NS NAME CMD...: CMD in namespace NS, in the background, in $tmp, with its output in
# $tmp/NAME.log. $pid is CMD's own pid (`ip netns exec` execs CMD, so kill reaches CMD itself).
netns_run() {
  local ns=$1 name=$2
  shift 2
  (cd "$tmp" && exec ip netns exec "$ns" "$@") >"$tmp/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
}

# netns_wait_tcp NS PORT [PID] / netns_wait_udp NS PORT [PID]: until a socket in NS listens on
# TCP PORT (is bound to UDP PORT), for 10 s at most, and only while PID (if given) lives.
netns_wait_tcp() { netns_wait_socket -Hltn "$@"; }
netns_wait_udp() { netns_wait_socket -Hlun "$@"; }
netns_wait_socket() {
  local flags=$1 ns=$2 port=$3 owner=${4:-} i
  for ((i = 0; i < 200; i++)); do
    [[ -n $(ip netns exec "$ns" ss "$flags" "sport = :$port") ]] && return 0
    if [[ -n $owner ]] && ! kill -0 "$owner" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}
