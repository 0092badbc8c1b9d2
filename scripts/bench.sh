#!/usr/bin/env bash
# Benchmarks our ss-tunnel/ss-server against shadowsocks-libev's on loopback and writes
# docs/BENCHMARKS.md (medians of alternating runs: ours, libev, libev, ours, ...).
#
# Usage: scripts/bench.sh [--quick] [--cipher NAME] [--reps N] [--workers N] [--conns LIST]
#                         [--slow LIST] [--sections LIST] [--out FILE]
#   --quick          3 ciphers, 1 s iperf3 tests, 2 s wrk tests, 2 repetitions, 2,000 idle
#                    connections
#   --cipher NAME    only this cipher (throughput, CPU/GB, UDP, HTTP and idle-connection sections).
#                    A Shadowsocks 2022 method selects its classic counterpart, and a classic
#                    method with a 2022 counterpart brings it along: either name runs both
#   --reps N         repetitions per measurement (default 3; 2 with --quick); the median is reported
#   --workers N      pass --workers N to our binaries (default: not passed, so one per CPU)
#   --conns LIST     idle-connection counts for the RSS section, comma-separated (default
#                    2000,10000)
#   --slow LIST      slow-reader counts for section g, comma-separated (default 20,1000)
#   --udp-rate RATE  section f's fixed offered rate for the loss rows, as iperf3 -b takes it
#                    (default 250M: about 26,000 datagrams/s of 1,200 bytes)
#   --udp-assoc N    section f's UDP associations for RSS per association (default 19000; 5000
#                    with --quick; a process here may hold 20,000 descriptors, 1 per association)
#   --sections LIST  only these sections, comma-separated from a,b,c,d,e,f,g,h (udp is another
#                    name for f); default all. The report then has only these sections, so give --out
#                    too. E.g. `--quick --sections udp --out /tmp/udp.md`: the UDP rows alone
#   --out FILE       where to write the report (default docs/BENCHMARKS.md)
#
# Sections: (a) single-stream iperf3 throughput both ways per cipher, plus raw loopback and ours
# with the 'none' method when ss-server accepts it; (b) 8 parallel streams; (c) wrk through
# ss-tunnel to nginx: new connections/s (Connection: close) and keep-alive req/s with p50/p99,
# and what each request costs the two proxies: their CPU (utime + stime from /proc) divided by the
# requests served, and on the first repetition their system calls per request (strace -f -c), for
# ours with its default workers, ours with --workers 1 and libev;
# (d) RSS per idle relayed connection; (e) CPU seconds per GB relayed; (a), (c) and (e) also run
# ours alone with the 2022 method of each classic cipher that has one (aes-128-gcm, aes-256-gcm,
# chacha20-ietf-poly1305; libev has no 2022 methods), next to ours with the classic one and
# alternating with it, for the ratio 2022/classic; (f) UDP: iperf3 -u with
# 1,200-byte datagrams at an unlimited rate through ss-tunnel -u and ss-server -u, datagrams/s and
# Mbit/s received, both ways; (g) RSS per slow-reading connection: N clients read 1 KB/s each
# from a source that writes as fast as it can, through ss-tunnel and ss-server, fresh processes
# for each N; (h) tun mode (scripts/bench/tun.sh, in network namespaces, root only): iperf3 one
# stream and -P 8 both ways through ss-local's TUN against through ss-tunnel, new flows/s and RSS
# per idle flow through the TUN against ss-local's SOCKS5 port, as ratios tun/other. Everything
# else runs on 127.0.0.1 with ports picked free; every process
# started is stopped on exit. A full run takes about 24 minutes on 2 CPUs, --quick about 11
# (plus the build); section g alone about 5.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# nginx_origin
# shellcheck source=scripts/bench/common.sh
source "$root/scripts/bench/common.sh"
cd "$root"

all_ciphers=(aes-128-gcm aes-192-gcm aes-256-gcm chacha20-ietf-poly1305 xchacha20-ietf-poly1305)
target_ciphers=(aes-128-gcm aes-256-gcm chacha20-ietf-poly1305)
# classic cipher -> its Shadowsocks 2022 counterpart, run by ours only (libev 3.3.5 has none)
declare -A edition2022=([aes-128-gcm]=2022-blake3-aes-128-gcm [aes-256-gcm]=2022-blake3-aes-256-gcm
  [chacha20-ietf-poly1305]=2022-blake3-chacha20-poly1305)

quick=0
only_cipher=""
reps=""
workers=""
conns_arg=""
slow_arg=20,1000
udp_rate=250M
udp_assoc=""
sections_arg=a,b,c,d,e,f,g,h
out=docs/BENCHMARKS.md
command_line="scripts/bench.sh${*:+ $*}"

usage() { sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
  echo "bench.sh: $*" >&2
  exit 2
}
positive_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
in_list() {
  local x=$1 y
  shift
  for y in "$@"; do [[ $x == "$y" ]] && return 0; done
  return 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --cipher | --reps | --workers | --conns | --slow | --udp-rate | --udp-assoc | --sections | --out)
      [[ $# -ge 2 ]] || die "$1 needs a value (try --help)"
      case "$1" in
        --cipher) only_cipher=$2 ;;
        --reps) reps=$2 ;;
        --workers) workers=$2 ;;
        --conns) conns_arg=$2 ;;
        --slow) slow_arg=$2 ;;
        --udp-rate) udp_rate=$2 ;;
        --udp-assoc) udp_assoc=$2 ;;
        --sections) sections_arg=$2 ;;
        --out) out=$2 ;;
      esac
      shift
      ;;
    --cipher=*) only_cipher=${1#*=} ;;
    --reps=*) reps=${1#*=} ;;
    --workers=*) workers=${1#*=} ;;
    --conns=*) conns_arg=${1#*=} ;;
    --slow=*) slow_arg=${1#*=} ;;
    --udp-rate=*) udp_rate=${1#*=} ;;
    --udp-assoc=*) udp_assoc=${1#*=} ;;
    --sections=*) sections_arg=${1#*=} ;;
    --out=*) out=${1#*=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done

if [[ $quick -eq 1 ]]; then
  ciphers=("${target_ciphers[@]}")
  : "${reps:=2}"
  iperf_secs=1
  iperf_secs_b=1
  wrk_secs=2
  cpu_size=256M
  conns_arg=${conns_arg:-2000}
  udp_assoc=${udp_assoc:-5000}
else
  ciphers=("${all_ciphers[@]}")
  : "${reps:=3}"
  iperf_secs=3
  iperf_secs_b=2
  wrk_secs=4
  cpu_size=512M
  conns_arg=${conns_arg:-2000,10000}
  udp_assoc=${udp_assoc:-19000}
fi
wrk_conns=32
udp_len=1200 # iperf3 -u payload: libev 3.3.5 drops datagrams much over 1,400 bytes without --mtu
positive_int "$reps" || die "--reps: expected a positive integer, got '$reps'"
[[ -z $workers ]] || positive_int "$workers" || die "--workers: expected a positive integer"
positive_int "$udp_assoc" || die "--udp-assoc: expected a positive integer, got '$udp_assoc'"
[[ $udp_rate =~ ^[1-9][0-9]*[KMG]?$ ]] || die "--udp-rate: expected a rate like 250M, got '$udp_rate'"
IFS=, read -r -a conns <<<"$conns_arg"
for n in "${conns[@]}"; do positive_int "$n" || die "--conns: expected counts like 2000,10000"; done
IFS=, read -r -a slow_counts <<<"$slow_arg"
for n in "${slow_counts[@]}"; do positive_int "$n" || die "--slow: expected counts like 20,1000"; done
declare -A want=() # section letter -> 1 when it runs
IFS=, read -r -a section_list <<<"$sections_arg"
for x in "${section_list[@]}"; do
  [[ $x == udp ]] && x=f
  [[ $x =~ ^[a-h]$ ]] || die "--sections: expected letters from a,b,c,d,e,f,g,h (or udp), got '$x'"
  want[$x]=1
done
[[ ${#want[@]} -gt 0 ]] || die "--sections: no section given"
wants() { [[ -n ${want[$1]:-} ]]; }
sections=$(printf '%s\n' "${!want[@]}" | sort | tr '\n' ' ')
sections=${sections% }
wants_any() {
  local x
  for x in "$@"; do wants "$x" && return 0; done
  return 1
}
if [[ -n $only_cipher ]]; then
  methods_2022=()
  for c in "${target_ciphers[@]}"; do
    methods_2022+=("${edition2022[$c]}")
    [[ ${edition2022[$c]} == "$only_cipher" ]] && only_cipher=$c # runs both
  done
  in_list "$only_cipher" "${all_ciphers[@]}" ||
    die "--cipher: unknown cipher '$only_cipher' (${all_ciphers[*]} ${methods_2022[*]})"
  ciphers=("$only_cipher")
fi
# (b) and (e) use the ciphers with targets (or the one asked for); (c) and (d) use one cipher.
core_ciphers=()
for c in "${ciphers[@]}"; do
  for t in "${target_ciphers[@]}"; do [[ $c == "$t" ]] && core_ciphers+=("$c"); done
done
[[ ${#core_ciphers[@]} -gt 0 ]] || core_ciphers=("${ciphers[@]}")
conn_cipher=${ciphers[0]}
for c in "${ciphers[@]}"; do [[ $c == chacha20-ietf-poly1305 ]] && conn_cipher=$c; done
conn_2022=${edition2022[$conn_cipher]:-} # (c) also runs ours with this, when set
[[ $out == /* ]] || out=$root/$out

# ---------------------------------------------------------------------------------------------
# Packages and build.

bash scripts/setup.sh
if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then as_root=(); else as_root=(sudo); fi
  echo "bench.sh: installing wrk"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
for tool in iperf3 wrk /usr/bin/ss-server /usr/bin/ss-tunnel; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing after setup"
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx) # /usr/sbin may not be in a user's PATH
[[ -x $nginx_bin ]] || die "nginx is missing after setup"
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3)

build_dir=$root/build-bench
echo "bench.sh: building into build-bench/ (Release)"
build_log=$(mktemp "${TMPDIR:-/tmp}/ss-bench-build.XXXXXX")
if ! { cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSS_BUILD_TESTS=OFF &&
  cmake --build "$build_dir" -j2 --target ss-local ss-server ss-tunnel; } >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  rm -f "$build_log"
  die "build failed"
fi
rm -f "$build_log"
bin=$build_dir/bin

# ---------------------------------------------------------------------------------------------
# Processes: every one started is recorded and stopped on exit.

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-bench.XXXXXX")
chmod 755 "$work" # nginx workers may run as another user
logs=$work/logs
mkdir -p "$logs"
results=$work/results.tsv
meta=$work/meta.tsv
notes=$work/notes.txt
: >"$results"
: >"$meta"
: >"$notes"
declare -A live=() # pid -> label, for processes started and not yet reaped
log_seq=0
last_pid=""
last_log=""

is_running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# stop PID: SIGTERM (ours drains, a second SIGTERM closes everything), then SIGKILL; reaps it.
stop() {
  local pid=$1 i
  [[ -n ${live[$pid]:-} ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    is_running "$pid" || break
    [[ $i -eq 15 ]] && kill -TERM "$pid" 2>/dev/null
    sleep 0.1
  done
  is_running "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  unset "live[$pid]"
}

# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
  local pid
  for pid in "${!live[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.2
  for pid in "${!live[@]}"; do stop "$pid"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

# start LABEL COMMAND...: runs it in the background; sets last_pid and last_log.
start() {
  local label=$1
  shift
  log_seq=$((log_seq + 1))
  last_log=$logs/$(printf '%04d' "$log_seq")-$label.log
  "$@" >"$last_log" 2>&1 &
  last_pid=$!
  live[$last_pid]=$label
}

# run_bounded SECONDS OUTFILE COMMAND...: runs a client in the background, bounded in time, with
# its output in OUTFILE, and waits for it (a signal to this script interrupts the wait and the
# exit trap stops the client too).
run_bounded() {
  local limit=$1 outfile=$2 pid status=0
  shift 2
  timeout "$limit" "$@" >"$outfile" 2>&1 &
  pid=$!
  live[$pid]=client
  wait "$pid" || status=$?
  unset "live[$pid]"
  return "$status"
}

# free_port: a port number free on 127.0.0.1 for both TCP and UDP (-u binds both).
free_port() {
  "$py" -c '
import socket
while True:
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", t.getsockname()[1]))
    except OSError:
        continue
    print(t.getsockname()[1])
    break'
}

# port_listening PORT [udp]: a TCP socket listens on PORT (udp: a UDP socket is bound to it).
port_listening() {
  local hex table=/proc/net/tcp state=0A
  hex=$(printf ':%04X' "$1")
  [[ ${2:-} == udp ]] && table=/proc/net/udp && state=07
  awk -v h="$hex" -v st="$state" \
    '$4 == st && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' "$table"
}

# wait_listen PORT PID LOG [udp]: until PORT listens (10 s), or fails if the process exits first.
# With udp, until it listens on TCP and is bound on UDP.
wait_listen() {
  local port=$1 pid=$2 log=$3 proto=${4:-} i
  for ((i = 0; i < 100; i++)); do
    if ! is_running "$pid"; then
      wait "$pid" 2>/dev/null || true
      unset "live[$pid]"
      return 1
    fi
    if port_listening "$port" && { [[ $proto != udp ]] || port_listening "$port" udp; }; then
      return 0
    fi
    sleep 0.1 # nothing to wait on for "a port started listening": poll
  done
  echo "bench.sh: nothing listens on port $port after 10 s ($log)" >&2
  return 1
}

started_at=$(date +%s)
say() { printf '[%4ds] %s\n' $(($(date +%s) - started_at)) "$*" >&2; }
note() { echo "$*" >>"$notes"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; } # section key config rep value
meta() { printf '%s\t%s\n' "$1" "$2" >>"$meta"; }

# ---------------------------------------------------------------------------------------------
# Our flags and the proxy pair.

have_workers=0
[[ $("$bin/ss-server" --help 2>&1) == *--workers* ]] && have_workers=1
ncpu=$(nproc)
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
# 2022 methods take a base64 key of the method's size as the password.
declare -A keys=() # method -> password, when not $password
for c in "${ciphers[@]}"; do
  m=${edition2022[$c]:-}
  [[ -z $m ]] && continue
  keys[$m]=$("$bin/ss-server" --genkey "$m") || die "ss-server --genkey $m failed"
done

# pair_start CONFIG METHOD TARGET_PORT [udp]: starts ss-server and ss-tunnel
# (-L 127.0.0.1:TARGET); with udp both relay TCP and UDP (-u) on their ports.
# CONFIG: ours (default workers, or --workers N), ours-w1 (--workers 1) or libev.
# Sets srv_pid, tun_pid, tun_port, srv_log, tun_log.
pair_start() {
  local config=$1 method=$2 target=$3 proto=${4:-} srv_port
  local -a srv_cmd tun_cmd extra=()
  srv_port=$(free_port)
  tun_port=$(free_port)
  case "$config" in
    ours | ours-w1)
      srv_cmd=("$bin/ss-server" --allow-private-targets)
      tun_cmd=("$bin/ss-tunnel")
      if [[ $have_workers -eq 1 && $config == ours-w1 ]]; then
        extra=(--workers 1)
      elif [[ $have_workers -eq 1 && -n $workers ]]; then
        extra=(--workers "$workers")
      fi
      ;;
    libev)
      srv_cmd=(/usr/bin/ss-server)
      tun_cmd=(/usr/bin/ss-tunnel)
      ;;
  esac
  [[ $proto == udp ]] && extra+=(-u)
  start "$config-$method-server" "${srv_cmd[@]}" -s 127.0.0.1 -p "$srv_port" \
    -k "${keys[$method]:-$password}" -m "$method" -t 600 "${extra[@]}"
  srv_pid=$last_pid
  srv_log=$last_log
  tun_pid=""
  wait_listen "$srv_port" "$srv_pid" "$srv_log" "$proto" || return 1
  start "$config-$method-tunnel" "${tun_cmd[@]}" -s 127.0.0.1 -p "$srv_port" -b 127.0.0.1 \
    -l "$tun_port" -L "127.0.0.1:$target" -k "${keys[$method]:-$password}" -m "$method" -t 600 \
    "${extra[@]}"
  tun_pid=$last_pid
  tun_log=$last_log
  if ! wait_listen "$tun_port" "$tun_pid" "$tun_log" "$proto"; then
    stop "$srv_pid"
    return 1
  fi
}

# pair_stop WHAT: stops both; a process that died on its own is reported as a crash.
pair_stop() {
  local what=$1 pid log
  for pid in "$tun_pid" "$srv_pid"; do
    [[ -n $pid ]] || continue
    [[ $pid == "$tun_pid" ]] && log=$tun_log || log=$srv_log
    if ! is_running "$pid"; then
      local status=0
      wait "$pid" 2>/dev/null || status=$?
      unset "live[$pid]"
      say "CRASH: ${log##*/} exited on its own (status $status) during $what"
      note "CRASH: \`${log##*/}\` exited on its own (status $status) during $what; last lines: $(tail -n 3 "$log" | tr '\n' ' ')"
      continue
    fi
    stop "$pid"
  done
  tun_pid=""
  srv_pid=""
}

pair_start_or_note() {
  if ! pair_start "$@"; then
    say "could not start $1 $2: $(tail -n 2 "$last_log" | tr '\n' ' ')"
    note "could not start $1 with $2: $(tail -n 2 "$last_log" | tr '\n' ' ')"
    return 1
  fi
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
have_strace=0
command -v strace >/dev/null 2>&1 && have_strace=1
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"; }
clk_tck=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Targets: iperf3 server, nginx with a 1 KB file, the idle-connection holder.

iperf_port=""
iperf_pid=""
iperf_server() {
  if [[ -n $iperf_pid ]] && is_running "$iperf_pid"; then return 0; fi
  if [[ -n $iperf_pid ]]; then
    wait "$iperf_pid" 2>/dev/null || true
    unset "live[$iperf_pid]"
    note "the iperf3 server exited during the run and was restarted"
  fi
  iperf_port=$(free_port)
  start iperf3-server iperf3 -s -B 127.0.0.1 -p "$iperf_port"
  iperf_pid=$last_pid
  wait_listen "$iperf_port" "$iperf_pid" "$last_log" || die "iperf3 server did not start"
}

# iperf PORT ARGS...: sets iperf_result to "Gbit/s bytes" received, or "" if the test failed;
# with -u, "Gbit/s bytes datagrams/s loss%" (datagrams received per second, loss as iperf3 counts
# it), all as the receiving end saw them.
iperf() {
  local port=$1
  shift
  iperf_server
  run_bounded 120 "$work/iperf.json" iperf3 -c 127.0.0.1 -p "$port" --connect-timeout 5000 -J "$@" ||
    true
  iperf_result=$("$py" -c '
import json, sys
try:
    e = json.loads(sys.stdin.read())["end"]["sum_received"]
    if e["bytes"] > 0 and "lost_packets" in e:
        print("%.4f %d %.1f %.2f" % (e["bits_per_second"] / 1e9, e["bytes"],
                                     (e["packets"] - e["lost_packets"]) / e["seconds"],
                                     e["lost_percent"]))
    elif e["bytes"] > 0:
        print("%.4f %d" % (e["bits_per_second"] / 1e9, e["bytes"]))
except (ValueError, KeyError, TypeError):
    pass' <"$work/iperf.json")
}

nginx_port=""
nginx_start() {
  local prefix=$work/nginx
  nginx_port=$(free_port)
  nginx_origin "$prefix" "$nginx_port" 16384
  start nginx "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
  wait_listen "$nginx_port" "$last_pid" "$last_log" || {
    cat "$last_log" "$prefix/error.log" >&2 || true
    die "nginx did not start"
  }
}

# wrk_run PORT close|keepalive: sets wrk_result to "req/s p50_ms p99_ms errors requests", or "".
wrk_run() {
  local port=$1 mode=$2
  local -a args=(-t1 "-c$wrk_conns" "-d${wrk_secs}s" --latency)
  [[ $mode == close ]] && args+=(-H 'Connection: close')
  run_bounded $((wrk_secs + 30)) "$work/wrk.out" wrk "${args[@]}" "http://127.0.0.1:$port/1k.bin" ||
    true
  wrk_result=$(awk '
    function ms(v) {
      if (v ~ /us$/) return v * 0.001
      if (v ~ /ms$/) return v * 1
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v * 1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    / requests in / { n = $1 }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx/ { err += $NF }
    END { if (rps > 0) printf "%.1f %.3f %.3f %d %d\n", rps, p50, p99, err, n }' "$work/wrk.out")
}

# proxy_cost CONFIG MODE REP: wrk through the running pair (tun_port), with the CPU both proxies
# used (utime + stime) divided by the requests served: c MODE/cpu (µs per request). On the first
# repetition, a second run under `strace -f -c` counts each proxy's system calls per request:
# c MODE/syscalls (tunnel server). Records the wrk figures as c MODE too.
proxy_cost() {
  local config=$1 mode=$2 rep=$3 t0 s0 t1 s1 n
  t0=$(ticks "$tun_pid")
  s0=$(ticks "$srv_pid")
  wrk_run "$tun_port" "$mode"
  t1=$(ticks "$tun_pid")
  s1=$(ticks "$srv_pid")
  local r=$wrk_result
  if [[ -z $r ]]; then
    note "wrk failed: $mode, $config, repetition $rep"
    return 0
  fi
  record c "$mode" "$config" "$rep" "$r"
  n=$(awk '{print $5}' <<<"$r")
  local cpu
  cpu=$(awk -v t=$((t1 - t0 + s1 - s0)) -v hz="$clk_tck" -v n="$n" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n }')
  [[ -n $cpu ]] && record c "$mode/cpu" "$config" "$rep" "$cpu"
  say "rep $rep  c  $mode  $config: $r (req/s p50 p99 errors requests), proxies' CPU $cpu µs per request"
  if [[ $rep -eq 1 && $have_strace -eq 1 ]]; then
    strace -f -c -o "$work/strace.tun" -p "$tun_pid" 2>/dev/null &
    local st1=$!
    strace -f -c -o "$work/strace.srv" -p "$srv_pid" 2>/dev/null &
    local st2=$!
    sleep 1
    wrk_run "$tun_port" "$mode"
    kill -INT "$st1" "$st2" 2>/dev/null || true
    wait "$st1" "$st2" 2>/dev/null || true
    n=$(awk '{print $5}' <<<"$wrk_result")
    local calls
    calls=$(awk -v n="${n:-0}" '$NF == "total" { v[++k] = $(NF - 2) }
      END { if (n > 0 && k == 2) printf "%.2f %.2f", v[1] / n, v[2] / n }' "$work/strace.tun" "$work/strace.srv")
    if [[ -n $calls ]]; then
      record c "$mode/syscalls" "$config" "$rep" "$calls"
      say "rep $rep  c  $mode  $config: system calls per request: $calls (tunnel server)"
    else
      note "strace count failed: $mode, $config"
    fi
  fi
}

hold_port=""
hold_start() {
  hold_port=$(free_port)
  start hold "$py" "$root/scripts/bench/hold.py" serve "$hold_port"
  wait_listen "$hold_port" "$last_pid" "$last_log" || die "the connection holder did not start"
}

slow_port=""
slow_start() {
  slow_port=$(free_port)
  start slow-source "$py" "$root/scripts/bench/slow.py" serve "$slow_port"
  wait_listen "$slow_port" "$last_pid" "$last_log" || die "the fast source did not start"
}

# ---------------------------------------------------------------------------------------------
# Limits and metadata.

hard_nofile=$(ulimit -Hn)
[[ $hard_nofile == unlimited ]] && hard_nofile=1048576
ulimit -n "$hard_nofile"
# ss-tunnel and ss-server each hold two descriptors per relayed connection.
max_conns=$(((hard_nofile - 256) / 2 / 100 * 100))
for i in "${!slow_counts[@]}"; do
  if wants g && ((slow_counts[i] > max_conns)); then
    note "Slow-reader section: ${slow_counts[i]} connections asked for, ${max_conns} measured (descriptor hard limit $hard_nofile)."
    slow_counts[i]=$max_conns
  fi
done
for i in "${!conns[@]}"; do
  if wants d && ((conns[i] > max_conns)); then
    note "RSS section: ${conns[i]} connections asked for, ${max_conns} measured: the descriptor hard limit is $hard_nofile (ulimit -Hn; raising it needs CAP_SYS_RESOURCE) and ss-tunnel and ss-server need two descriptors per connection."
    conns[i]=$max_conns
  fi
done

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta command "$command_line"
meta cpu "$(lscpu | awk -F: '$1 == "Model name" {gsub(/^ +/, "", $2); print $2; exit}')"
meta cores "$ncpu"
meta kernel "$(uname -sr)"
meta memory "$(awk '$1 == "MemTotal:" {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
meta virt "$(lscpu | awk -F: '$1 == "Hypervisor vendor" {gsub(/^ +/, "", $2); print $2; exit}')"
meta ours "$(git describe --always --dirty --tags 2>/dev/null || echo '?') (Release, build-bench/)"
meta libev "$(/usr/bin/ss-server -h 2>&1 | awk '/shadowsocks-libev/ {print $2; exit}') (Debian $(pkg_version shadowsocks-libev))"
meta openssl "$(pkg_version libssl3)"
meta libuv "$(pkg_version libuv1)"
meta libsodium "$(pkg_version libsodium23)"
meta mbedtls "$(dpkg-query -W -f='${Version}' 'libmbedcrypto*' 2>/dev/null | head -n 1)"
meta iperf3 "$(iperf3 --version | awk 'NR == 1 {print $2}')"
meta wrk "$(pkg_version wrk)"
meta nginx "$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')"
meta workers_flag "$have_workers"
meta workers "${workers:-}"
meta ncpu "$ncpu"
meta reps "$reps"
meta quick "$quick"
meta iperf_secs "$iperf_secs"
meta iperf_secs_b "$iperf_secs_b"
meta wrk_secs "$wrk_secs"
meta wrk_conns "$wrk_conns"
meta udp_len "$udp_len"
meta udp_rate "$udp_rate"
meta udp_assoc "$udp_assoc"
meta sections "$sections"
meta cpu_size "$cpu_size"
meta conn_cipher "$conn_cipher"
meta conn_2022 "$conn_2022"
meta ciphers "${ciphers[*]}"
meta core_ciphers "${core_ciphers[*]}"
meta conns "${conns[*]}"
meta slow "${slow_counts[*]}"
meta nofile "$hard_nofile"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# Does our ss-server accept -m none (the relay ceiling)? Only the TCP sections use it.
have_none=0
iperf_server
if ! wants_any a b e; then
  :
elif pair_start ours none "$iperf_port" 2>/dev/null; then
  have_none=1
  pair_stop "the 'none' check"
else
  meta none_note "$(grep -v '^ *$' "$last_log" | head -n 1)"
fi
meta none "$have_none"
# ours --workers 1 runs in (a) and (e) only.
configs_a=(ours)
none_configs=(ours)
if [[ $have_workers -eq 1 ]] && wants_any a e; then
  configs_a+=(ours-w1)
  none_configs+=(ours-w1)
fi
configs_a+=(libev)

# order REP ITEMS...: the items, reversed on even repetitions (ours, libev, libev, ours, ...).
order() {
  local rep=$1 i
  shift
  local -a items=("$@")
  if ((rep % 2 == 1)); then
    printf '%s\n' "${items[@]}"
  else
    for ((i = ${#items[@]} - 1; i >= 0; i--)); do printf '%s\n' "${items[$i]}"; done
  fi
}

# throughput SECTION KEY CONFIG REP PORT ARGS...: one iperf3 run, recorded in Gbit/s. Section f
# runs UDP (-u) at an unlimited rate (-b 0, unless ARGS give -b) with udp_len-byte datagrams and
# records "datagrams/s Mbit/s loss% CPU-us" received, CPU-us being both proxies' user+system CPU
# per datagram received (0 for the raw row).
throughput() {
  local section=$1 key=$2 config=$3 rep=$4 port=$5 r gbps pps loss mbps bytes t0=0 s0=0 cpu=0
  shift 5
  if [[ $section == f && -n ${tun_pid:-} && -n ${srv_pid:-} ]]; then
    t0=$(ticks "$tun_pid")
    s0=$(ticks "$srv_pid")
  fi
  local secs=$iperf_secs
  [[ $section == b ]] && secs=$iperf_secs_b
  [[ $section == f ]] && set -- -u -b 0 -l "$udp_len" "$@"
  iperf "$port" -t "$secs" "$@"
  r=$iperf_result
  if [[ -n $r && $section == f ]]; then
    read -r gbps bytes pps loss <<<"$r"
    mbps=$(awk -v g="$gbps" 'BEGIN { printf "%.1f", g * 1000 }')
    if [[ $t0 != 0 ]]; then
      cpu=$(awk -v d=$(($(ticks "$tun_pid") - t0 + $(ticks "$srv_pid") - s0)) -v b="$bytes" \
        -v l="$udp_len" 'BEGIN { printf "%.2f", (b > 0 ? d * 10000 / (b / l) : 0) }')
    fi
    record f "$key" "$config" "$rep" "$pps $mbps $loss $cpu"
    say "rep $rep  f  $key  $config: $pps datagrams/s, $mbps Mbit/s received, $loss % lost, $cpu us CPU per datagram"
  elif [[ -n $r ]]; then
    record "$section" "$key" "$config" "$rep" "${r%% *}"
    say "rep $rep  $section  $key  $config: ${r%% *} Gbit/s"
  else
    say "rep $rep  $section  $key  $config: iperf3 failed"
    note "iperf3 failed: section $section, $key, $config, repetition $rep"
  fi
}

# cpu_per_gb KEY CONFIG REP: fixed-size upload; user+sys of ss-tunnel and ss-server per GB.
cpu_per_gb() {
  local key=$1 config=$2 rep=$3 t0 s0 t1 s1 r bytes
  t0=$(ticks "$tun_pid")
  s0=$(ticks "$srv_pid")
  iperf "$tun_port" -n "$cpu_size"
  r=$iperf_result
  t1=$(ticks "$tun_pid")
  s1=$(ticks "$srv_pid")
  if [[ -z $r ]]; then
    note "iperf3 -n $cpu_size failed: $key, $config, repetition $rep"
    return 0
  fi
  bytes=${r##* }
  read -r tun_s srv_s < <(awk -v a=$((t1 - t0)) -v b=$((s1 - s0)) -v hz="$clk_tck" -v n="$bytes" \
    'BEGIN { printf "%.4f %.4f\n", a / hz / (n / 1e9), b / hz / (n / 1e9) }')
  record e "$key" "$config" "$rep" "$(awk -v a="$tun_s" -v b="$srv_s" 'BEGIN {printf "%.4f", a + b}')"
  record e-tunnel "$key" "$config" "$rep" "$tun_s"
  record e-server "$key" "$config" "$rep" "$srv_s"
  say "rep $rep  e  $key  $config: tunnel $tun_s + server $srv_s CPU s/GB"
}

# ---------------------------------------------------------------------------------------------
# The runs.

wants d && hold_start
wants g && slow_start
wants c && nginx_start
say "sections: $sections; ciphers: ${ciphers[*]}; reps $reps;" \
  "our workers: ${workers:-default ($ncpu CPUs)}; none: $have_none"

for ((rep = 1; rep <= reps; rep++)); do
  # Reference: iperf3 straight to the iperf3 server.
  if wants a; then
    throughput a raw/fwd raw "$rep" "$iperf_port"
    throughput a raw/rev raw "$rep" "$iperf_port" -R
  fi
  if wants b; then
    throughput b raw/fwd raw "$rep" "$iperf_port" -P 8
    throughput b raw/rev raw "$rep" "$iperf_port" -P 8 -R
  fi

  if [[ $have_none -eq 1 ]]; then
    mapfile -t cfgs < <(order "$rep" "${none_configs[@]}")
    for config in "${cfgs[@]}"; do
      pair_start_or_note "$config" none "$iperf_port" || continue
      if wants a; then
        throughput a none/fwd "$config" "$rep" "$tun_port"
        throughput a none/rev "$config" "$rep" "$tun_port" -R
      fi
      if wants b && [[ $config == ours ]]; then
        throughput b none/fwd "$config" "$rep" "$tun_port" -P 8
        throughput b none/rev "$config" "$rep" "$tun_port" -P 8 -R
      fi
      wants e && cpu_per_gb none "$config" "$rep"
      pair_stop "none, $config"
    done
  fi

  for cipher in "${ciphers[@]}"; do
    # (b) and (e) measure the core ciphers only.
    wants a || { wants_any b e && in_list "$cipher" "${core_ciphers[@]}"; } || continue
    # Runs as CONFIG:METHOD; ours with the 2022 counterpart (a and e only) next to ours.
    runs=("${configs_a[@]/%/:$cipher}")
    if [[ -n ${edition2022[$cipher]:-} ]] && wants_any a e; then
      runs=("${runs[0]}" "ours:${edition2022[$cipher]}" "${runs[@]:1}")
    fi
    mapfile -t ordered < <(order "$rep" "${runs[@]}")
    for run in "${ordered[@]}"; do
      config=${run%%:*}
      method=${run#*:}
      pair_start_or_note "$config" "$method" "$iperf_port" || continue
      if wants a; then
        throughput a "$method/fwd" "$config" "$rep" "$tun_port"
        throughput a "$method/rev" "$config" "$rep" "$tun_port" -R
      fi
      if in_list "$cipher" "${core_ciphers[@]}"; then
        if wants b && [[ $config != ours-w1 && $method == "$cipher" ]]; then
          throughput b "$cipher/fwd" "$config" "$rep" "$tun_port" -P 8
          throughput b "$cipher/rev" "$config" "$rep" "$tun_port" -P 8 -R
        fi
        wants e && cpu_per_gb "$method" "$config" "$rep"
      fi
      pair_stop "$method, $config"
    done
  done

  mapfile -t cfgs < <(order "$rep" ours libev)
  # (c) HTTP through ss-tunnel to nginx.
  if wants c; then
    for mode in close keepalive; do
      wrk_run "$nginx_port" "$mode"
      r=$wrk_result
      if [[ -n $r ]]; then
        record c "$mode" raw "$rep" "$r"
        say "rep $rep  c  $mode  raw: $r"
      fi
    done
    # Ours with the 2022 counterpart is recorded as ours-2022, run next to ours; ours with
    # --workers 1 as ours-w1.
    runs=(ours libev)
    [[ $have_workers -eq 1 && -z $workers ]] && runs+=(ours-w1)
    [[ -n $conn_2022 ]] && runs+=(ours-2022)
    mapfile -t c_cfgs < <(order "$rep" "${runs[@]}")
    for config in "${c_cfgs[@]}"; do
      if [[ $config == ours-2022 ]]; then
        pair_start_or_note ours "$conn_2022" "$nginx_port" || continue
      else
        pair_start_or_note "$config" "$conn_cipher" "$nginx_port" || continue
      fi
      for mode in close keepalive; do
        proxy_cost "$config" "$mode" "$rep"
      done
      pair_stop "wrk, $config"
    done
  fi

  # (d) RSS per idle relayed connection.
  if wants d; then
    for n in "${conns[@]}"; do
      for config in "${cfgs[@]}"; do
        pair_start_or_note "$config" "$conn_cipher" "$hold_port" || continue
        run_bounded 400 "$work/hold.out" "$py" "$root/scripts/bench/hold.py" open "$tun_port" "$n" \
          "$tun_pid,$srv_pid" --time-limit 300 || true
        r=$(grep '^{' "$work/hold.out" || true)
        if [[ -n $r ]]; then
          read -r ok failed tun_kib srv_kib < <("$py" -c '
import json, sys
d = json.loads(sys.argv[1]); t, s = sys.argv[2], sys.argv[3]
ok = max(d["ok"], 1)
print(d["ok"], d["failed"], (d["after"][t] - d["before"][t]) / ok,
      (d["after"][s] - d["before"][s]) / ok)' "$r" "$tun_pid" "$srv_pid")
          record d "$n/tunnel" "$config" "$rep" "$tun_kib"
          record d "$n/server" "$config" "$rep" "$srv_kib"
          record d "$n/ok" "$config" "$rep" "$ok"
          ((failed == 0)) || note "RSS section: $failed of $n connections failed ($config, repetition $rep)"
          say "rep $rep  d  $n  $config: tunnel $(printf %.2f "$tun_kib") KiB, server $(printf %.2f "$srv_kib") KiB per connection ($ok ok)"
        else
          note "RSS section: the holder failed ($n, $config, repetition $rep)"
        fi
        pair_stop "idle connections, $n, $config"
      done
    done
  fi

  # (f) UDP: iperf3 -u through ss-tunnel -u, which carries iperf3's TCP control connection too.
  if wants f; then
    throughput f raw/fwd raw "$rep" "$iperf_port"
    throughput f raw/rev raw "$rep" "$iperf_port" -R
    for cipher in "${core_ciphers[@]}"; do
      for config in "${cfgs[@]}"; do
        pair_start_or_note "$config" "$cipher" "$iperf_port" udp || continue
        throughput f "$cipher/fwd" "$config" "$rep" "$tun_port"
        throughput f "$cipher/rev" "$config" "$rep" "$tun_port" -R
        throughput f "$cipher/fwd4" "$config" "$rep" "$tun_port" -P 4
        throughput f "$cipher/rev4" "$config" "$rep" "$tun_port" -P 4 -R
        throughput f "$cipher/fwd@" "$config" "$rep" "$tun_port" -b "$udp_rate"
        throughput f "$cipher/rev@" "$config" "$rep" "$tun_port" -b "$udp_rate" -R
        pair_stop "UDP, $cipher, $config"
      done
    done
    # RSS per UDP association: udp_assoc.py opens udp_assoc of them through ss-tunnel -u (one per
    # source port), each answered by its own echo target, in a network namespace of its own (3
    # ports per association: more than the host's ephemeral range gives); ours also expires them
    # (15 s) to show what is given back. Then 250, below libev's caps (256 in ss-tunnel, 512 in
    # ss-server: beyond them it evicts, so it never holds udp_assoc).
    for n in "$udp_assoc" 250; do
      for config in "${cfgs[@]}"; do
        key=$conn_cipher
        if [[ $config == libev ]]; then
          ((n <= 256)) || continue
          srv_cmd="/usr/bin/ss-server -s 127.0.0.1 -p {srv} -k ${keys[$key]:-$password} -m $key -u"
          tun_cmd="/usr/bin/ss-tunnel -s 127.0.0.1 -p {srv} -l {tun} -L 127.0.0.1:{echo} -k ${keys[$key]:-$password} -m $key -u"
          expire=()
        else
          more="-u --udp-timeout 15 --udp-max-associations $((n * 2))"
          [[ $config == ours-w1 ]] && more+=" --workers 1"
          [[ $config == ours && -n $workers ]] && more+=" --workers $workers"
          srv_cmd="$bin/ss-server --allow-private-targets -s 127.0.0.1 -p {srv} -k ${keys[$key]:-$password} -m $key $more"
          tun_cmd="$bin/ss-tunnel -s 127.0.0.1 -p {srv} -l {tun} -L 127.0.0.1:{echo} -k ${keys[$key]:-$password} -m $key $more"
          expire=(--expire=20)
        fi
        run_bounded 300 "$work/assoc.out" "$py" "$root/scripts/bench/udp_assoc.py" --netns "$n" \
          "$srv_cmd" "$tun_cmd" "${expire[@]}" || true
        r=$(grep '^{' "$work/assoc.out" || true)
        if [[ -z $r ]]; then
          note "UDP associations: udp_assoc.py failed ($n, $config, repetition $rep)"
          continue
        fi
        read -r answered tun_kib srv_kib tun_after srv_after < <("$py" -c '
import json, sys
d = json.loads(sys.argv[1]); r = d["roles"]; b, u, h = d["before"], d["during"], d["held"]
a = d.get("after", {})
per = lambda p: (u[p] - b[p]) / max(h[p], 1)
left = lambda p: (a[p] - b[p]) / 1024 if a else -1
print(d["answered"], per(r["tunnel"]), per(r["server"]), left(r["tunnel"]), left(r["server"]))' "$r")
        record f "assoc$n/tunnel" "$config" "$rep" "$tun_kib $tun_after"
        record f "assoc$n/server" "$config" "$rep" "$srv_kib $srv_after"
        ((answered == n)) || note "UDP associations: $answered of $n answered ($config, repetition $rep)"
        say "rep $rep  f  $n associations  $config: tunnel $(printf %.2f "$tun_kib") + server $(printf %.2f "$srv_kib") KiB each ($answered answered)"
      done
    done
  fi

  # (g) RSS per slow-reading connection: the proxies' queues towards readers of 1 KB/s fill up.
  if wants g; then
    # fresh: the processes' first connections; warm: after 64 connections that each received a
    # few hundred KiB and closed (one-time pages, such as the replay filters', are resident).
    for n in "${slow_counts[@]}"; do
      for start in fresh:0 warm:64; do
        for config in "${cfgs[@]}"; do
          pair_start_or_note "$config" "$conn_cipher" "$slow_port" || continue
          run_bounded 200 "$work/slow.out" "$py" "$root/scripts/bench/slow.py" open "$tun_port" "$n" \
            "$tun_pid,$srv_pid" --warmup "${start#*:}" --time-limit 150 || true
          r=$(grep '^{' "$work/slow.out" || true)
          if [[ -n $r ]]; then
            read -r ok failed tun_kib srv_kib kern_kib settled < <("$py" -c '
import json, sys
d = json.loads(sys.argv[1]); t, s = sys.argv[2], sys.argv[3]
ok = max(d["ok"], 1); k = d["kernel_pages"]
print(d["ok"], d["failed"], (d["after"][t] - d["before"][t]) / ok,
      (d["after"][s] - d["before"][s]) / ok, (k["after"] - k["before"]) * 4 / ok, d["settled_s"])' \
              "$r" "$tun_pid" "$srv_pid")
            key=$n/${start%%:*}
            record g "$key/tunnel" "$config" "$rep" "$tun_kib"
            record g "$key/server" "$config" "$rep" "$srv_kib"
            record g "$key/both" "$config" "$rep" "$(awk -v a="$tun_kib" -v b="$srv_kib" 'BEGIN {printf "%.2f", a + b}')"
            record g "$key/kernel" "$config" "$rep" "$kern_kib"
            ((failed == 0)) || note "Slow-reader section: $failed of $n connections failed ($config, ${start%%:*}, repetition $rep)"
            say "rep $rep  g  $n ${start%%:*}  $config: tunnel $(printf %.1f "$tun_kib") + server $(printf %.1f "$srv_kib") KiB per connection, kernel TCP $(printf %.0f "$kern_kib") KiB ($ok ok, steady after $settled s)"
          else
            note "Slow-reader section: the readers failed ($n, $config, ${start%%:*}, repetition $rep)"
          fi
          pair_stop "slow readers, $n, $config"
        done
      done
    done
  fi
done

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta elapsed "$(($(date +%s) - started_at))"
mkdir -p "$(dirname "$out")"
"$py" "$root/scripts/bench/report.py" "$meta" "$results" "$notes" "$out"
# (h) tun mode, after the rest: its own namespaces and processes; appended to the report.
if wants h; then
  say "h: tun mode (scripts/bench/tun.sh)"
  tun_secs=10
  [[ $quick -eq 1 ]] && tun_secs=2
  if bash "$root/scripts/bench/tun.sh" "$bin" "$tun_secs" "$reps" 1000 >"$work/tun.md" 2>"$work/tun.log"; then
    { echo; cat "$work/tun.md"; } >>"$out"
  else
    { echo; echo "## (h) tun mode"; echo; echo "Not run: $(tail -1 "$work/tun.log")"; } >>"$out"
  fi
fi
say "wrote $out"
