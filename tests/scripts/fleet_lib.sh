# shellcheck shell=bash disable=SC2034,SC2154 # pids, work, bin_dir: lib.sh and the caller; redis_pid: for the caller
# Shell helpers of the Redis fleet's script tests (sourced after lib.sh, not run).

# start_redis PORT DIR: a redis-server on 127.0.0.1:PORT without persistence but for an explicit
# SAVE (to DIR/dump.rdb), started through `start`; its pid in $redis_pid.
start_redis() {
  start "$2/redis.log" "$1" redis-server --port "$1" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$2" --dbfilename dump.rdb
  redis_pid=${pids[-1]}
}

# wait_log FILE TEXT MS: until FILE holds TEXT (MS milliseconds at most).
wait_log() {
  local i
  for ((i = 0; i < $3 / 20; i++)); do
    grep -qF -- "$2" "$1" && return 0
    sleep 0.02
  done
  return 1
}

# fleet_client PROGRAM LOG LOCAL_PORT SERVER_PORT METHOD PASSWORD [ARGS...]: our PROGRAM (ss-local,
# ss-tunnel) from $bin_dir, or shadowsocks-libev's for "libev:ss-local", to 127.0.0.1:SERVER_PORT,
# listening on 127.0.0.1:LOCAL_PORT, its output in $work/LOG.
fleet_client() {
  local prog="$bin_dir/$1"
  [[ $1 == libev:* ]] && prog=$(command -v "${1#libev:}")
  start "$work/$2" "$3" "$prog" -s 127.0.0.1 -p "$4" -l "$3" -b 127.0.0.1 -m "$5" -k "$6" "${@:7}"
}
