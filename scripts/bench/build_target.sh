#!/usr/bin/env bash
# Sourced by the micro-benchmark scripts (bench_acl.sh, bench_keytrial.sh): configures build/ as
# scripts/test.sh does (ccache when present) and builds one target there, quietly.
#
# Usage (from a script): source "$root/scripts/bench/build_target.sh"; build_target "$root" TARGET
build_target() {
  local root=$1 target=$2
  local launcher=()
  command -v ccache >/dev/null &&
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$root/build" "${launcher[@]}" >/dev/null
  cmake --build "$root/build" -j2 --target "$target" >/dev/null
}
