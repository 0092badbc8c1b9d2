#!/usr/bin/env bash
# Builds one libFuzzer target (or all) with clang + ASan + UBSan and fuzzes it for SECONDS.
#
# Usage: scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh fuzz_socks5 60
#        scripts/fuzz.sh all SECONDS        every target, two at a time (SS_FUZZ_JOBS=N to change)
#        scripts/fuzz.sh --list             the target names
#
# Installs clang and libFuzzer if missing (through scripts/setup.sh), configures build-fuzz/
# (SS_FUZZ_BUILD_DIR to change) and runs the fuzzer on a working copy of the committed seeds,
# build-fuzz/corpus/TARGET/, which keeps what earlier runs found. tests/fuzz/regressions/TARGET/
# is replayed too. Exits non-zero if any target crashes, leaks, times out or fails a check, and
# prints the path of the input that did it (under build-fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(fuzz_socks5 fuzz_address fuzz_host_port fuzz_config fuzz_aead_stream fuzz_udp_packet
  fuzz_base64 fuzz_tcp2022 fuzz_udp2022 fuzz_2022_password fuzz_socks4 fuzz_socks5_auth
  fuzz_users_file fuzz_http1 fuzz_inbounds fuzz_acl fuzz_http_request fuzz_sip008
  fuzz_tun_packet fuzz_dns_message fuzz_fake_dns)
build_dir=${SS_FUZZ_BUILD_DIR:-build-fuzz}
jobs_max=${SS_FUZZ_JOBS:-2}

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

# Largest input per target: room for the longest message and some trailing bytes.
max_len() {
  case "$1" in
    fuzz_address) echo 600 ;;
    fuzz_socks5 | fuzz_host_port | fuzz_base64 | fuzz_2022_password) echo 1024 ;;
    fuzz_socks4 | fuzz_socks5_auth) echo 1024 ;;
    fuzz_http1 | fuzz_inbounds) echo 20480 ;; # past the 16 KiB head bound
    fuzz_udp_packet | fuzz_udp2022 | fuzz_tun_packet) echo 2048 ;;
    fuzz_dns_message) echo 1024 ;;
    fuzz_tcp2022) echo 8192 ;;
    *) echo 8192 ;;
  esac
}

case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  --list)
    printf '%s\n' "${targets[@]}"
    exit 0
    ;;
esac
if [[ $# -ne 2 ]]; then
  usage >&2
  exit 2
fi
target=$1
seconds=$2
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi
if [[ $target == all ]]; then
  # Every target in tests/fuzz must be in the list above, or "all" (what CI runs) would skip it.
  have=$(find tests/fuzz -maxdepth 1 -name 'fuzz_*.cpp' -printf '%f\n' | sed 's/\.cpp$//' | sort)
  listed=$(printf '%s\n' "${targets[@]}" | sort)
  if [[ $have != "$listed" ]]; then
    echo "fuzz.sh: the targets list and tests/fuzz/fuzz_*.cpp differ:" >&2
    diff <(echo "$listed") <(echo "$have") >&2 || true
    exit 2
  fi
  selected=("${targets[@]}")
else
  known=0
  for t in "${targets[@]}"; do [[ $t == "$target" ]] && known=1; done
  if [[ $known -eq 0 ]]; then
    echo "fuzz.sh: unknown target '$target' (one of: ${targets[*]}, all)" >&2
    exit 2
  fi
  selected=("$target")
fi

# --- toolchain ---

have_libfuzzer() {
  command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1 || return 1
  local tmp
  tmp=$(mktemp -d)
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$tmp/t.cpp"
  local ok=0
  clang++ -fsanitize=fuzzer,address,undefined "$tmp/t.cpp" -o "$tmp/t" >/dev/null 2>&1 || ok=1
  rm -rf "$tmp"
  return $ok
}

if ! have_libfuzzer || ! command -v llvm-symbolizer >/dev/null 2>&1; then
  if [[ -x scripts/setup.sh ]] && grep -q 'libclang-rt-14-dev' scripts/setup.sh; then
    bash scripts/setup.sh
  else
    echo "fuzz.sh: installing clang, libFuzzer and llvm-symbolizer"
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev llvm
  fi
  if ! have_libfuzzer; then
    echo "fuzz.sh: clang still cannot link a -fsanitize=fuzzer program" >&2
    exit 1
  fi
fi

# --- build ---

if ! grep -qs '^SS_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DSS_FUZZ=ON -DSS_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build_dir" -j2 --target "${selected[@]}"

# --- run ---

# Every sanitizer report is a failure; libFuzzer turns it into an artifact.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

log_dir=$build_dir/logs
mkdir -p "$log_dir"

# run_one TARGET: fuzzes TARGET for $seconds; writes its log, and its exit status to TARGET.rc.
run_one() {
  local t=$1
  local corpus=$build_dir/corpus/$t artifacts=$build_dir/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  local seed
  for seed in tests/fuzz/corpus/"$t"/*; do
    [[ -e $corpus/${seed##*/} ]] || cp "$seed" "$corpus"/
  done
  local inputs=("$corpus")
  [[ -d tests/fuzz/regressions/$t ]] && inputs+=("tests/fuzz/regressions/$t")
  local rc=0
  echo 1 >"$log_dir/$t.rc"
  "$build_dir/fuzz/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "${inputs[@]}" \
    >"$log_dir/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$log_dir/$t.rc"
}

# One line per target: executions, speed, corpus, and the artifact if it failed.
report() {
  local t=$1 rc
  rc=$(cat "$log_dir/$t.rc")
  local execs speed corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_dir/$t.log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log_dir/$t.log" | tail -1)
  corpus=$(find "$build_dir/corpus/$t" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    echo "fuzz.sh: $t: OK, ${seconds} s, ${execs:-?} runs, ${speed:-?} exec/s, corpus $corpus"
    return 0
  fi
  echo "fuzz.sh: $t: FAILED (exit $rc), log $log_dir/$t.log"
  local pattern='^(==[0-9]+==ERROR|SUMMARY|terminate called|  what\(\)|.*FUZZ_CHECK failed'
  pattern+='|.*runtime error)'
  grep -E "$pattern" "$log_dir/$t.log" | head -5 | sed 's/^/    /'
  local artifact
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log_dir/$t.log" | tail -1)
  echo "    crash input: ${artifact:-none written (see the log)}"
  return 1
}

pids=()
for t in "${selected[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $jobs_max ]]; do wait -n || true; done
  echo "fuzz.sh: $t for ${seconds} s (log $log_dir/$t.log)"
  run_one "$t" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done

failed=0
for t in "${selected[@]}"; do report "$t" || failed=1; done
exit $failed
