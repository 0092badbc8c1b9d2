#!/usr/bin/env bash
# Installs what is missing, builds with -Werror and runs every test through CTest.
#
# Usage: scripts/test.sh [--sanitize | --full] [extra ctest arguments...]
#   --sanitize   AddressSanitizer + UBSan build in build-sanitize/ instead of build/
#   --full       what CI runs: the suite, then the suite again under ASan + UBSan, every fuzz
#                target for 30 s (scripts/fuzz.sh all 30) and a 2-minute soak (scripts/soak.sh 2)
#   e.g.         scripts/test.sh -R interop      (only tests whose name contains "interop")
#
# Unit tests and integration tests (real processes on loopback) run in parallel, two at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DSS_WERROR=ON)
ctest_args=()
if [ "${1:-}" = "--full" ]; then
  # Every stage runs even if an earlier one failed, so one run reports everything; the exit
  # status is non-zero if any failed. CI (.ci/run) runs this.
  shift
  stage_names=()
  stage_results=()
  failed=0
  stage() {
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "=== test.sh --full: $name"
    "$@" || rc=$?
    stage_names+=("$name")
    if [ "$rc" -eq 0 ]; then
      stage_results+=("passed in $((SECONDS - t0)) s")
    else
      stage_results+=("FAILED (exit $rc) after $((SECONDS - t0)) s")
      failed=$((failed + 1))
    fi
  }
  stage "suite (build/, -Werror)" bash "$0" "$@"
  stage "suite under ASan + UBSan (build-sanitize/)" bash "$0" --sanitize "$@"
  stage "every fuzz target for 30 s (scripts/fuzz.sh all 30)" bash scripts/fuzz.sh all 30
  stage "2-minute soak (scripts/soak.sh 2)" bash scripts/soak.sh 2 --bin-dir "$PWD/build/bin"
  echo "=== test.sh --full: summary"
  for i in "${!stage_names[@]}"; do echo "  ${stage_names[$i]}: ${stage_results[$i]}"; done
  echo "stages: $((${#stage_names[@]} - failed)) passed, $failed failed (${SECONDS} s in all)"
  [ "$failed" -eq 0 ]
  exit
fi

for arg in "$@"; do
  case "$arg" in
    --sanitize)
      build_dir=build-sanitize
      # (GCC 12's false -Wmaybe-uninitialized reports in <regex> under ASan are silenced for the
      # test code only, in tests/CMakeLists.txt.)
      cmake_args+=(-DSS_SANITIZE=ON)
      ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) ctest_args+=("$arg") ;;
  esac
done

bash scripts/setup.sh

cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j2

# Sanitizer reports must fail the run, also inside the child processes the tests start.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

ctest --test-dir "$build_dir" --output-on-failure -j2 "${ctest_args[@]}"
