#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) and runs each for a while.
#   scripts/fuzz.sh [--time SECONDS] [--build-dir DIR] [--no-build] [TARGET...]
# TARGET: request policy_file shell_scan audit_log wire_request settings (default: all).
# Each target starts from its seeds (tests/fuzz/corpus/TARGET) plus what earlier runs found
# (DIR/fuzz-corpus/TARGET); a crash, a hang (an input slower than 10 s) or a leak is saved as
# DIR/fuzz-artifacts/TARGET-* and fails the run. The closing lines give each target's executions
# per second and coverage (libFuzzer's cov: edges and ft: features). docs/TESTING.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
source_root=$PWD

seconds=60
build_dir=build-fuzz
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) seconds=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(request policy_file shell_scan audit_log wire_request settings)
fi

if [ "$build" -eq 1 ]; then
  if [ ! -f "$build_dir/build.ninja" ]; then
    # Only the library, the server's adapter and the fuzzers: the suites are the normal build's.
    CC=clang-14 CXX=clang++-14 meson setup "$build_dir" --wrap-mode=nodownload \
      -Dfuzz=true -Dtests=false -Dbench=false
  fi
  ninja -C "$build_dir" "${targets[@]/#/tests/fuzz/fuzz_}"
fi

mkdir -p "$build_dir/fuzz-artifacts"
status=0
summary=()
for name in "${targets[@]}"; do
  fuzzer=$build_dir/tests/fuzz/fuzz_$name
  found=$build_dir/fuzz-corpus/$name
  log=$build_dir/fuzz-artifacts/$name.log
  mkdir -p "$found"
  echo "== fuzz_$name for ${seconds}s"
  # -timeout: an input slower than this is a hang; -rss_limit_mb: more memory is a failure;
  # -max_len: 64 KiB reaches every size limit the targets can shrink (request's 'l' flag).
  if "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build_dir/fuzz-artifacts/$name-" \
      "$found" "$source_root/tests/fuzz/corpus/$name" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    grep -E 'ERROR|property violated|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
  fi
  # The last status line: "#N DONE cov: C ft: F corp: ... exec/s: E rss: R"
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  summary+=("$(printf '%-14s %-6s runs %-10s %s' "$name" "$result" "${runs:-?}" \
    "$(grep -oE 'cov: [0-9]+ ft: [0-9]+|exec/s: [0-9]+' <<<"$last" | tr '\n' ' ')")")
done
printf '%s\n' "== ${seconds}s each, log in $build_dir/fuzz-artifacts/TARGET.log" "${summary[@]}"
exit $status
