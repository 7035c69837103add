#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the whole test suite N times in a row (default 10) beside two CPU hogs (busy loops at normal
# priority, one per core of the CI machine): the suite must not depend on an idle machine. Builds
# first, then never rebuilds between runs. Prints one line per run and a summary; each run's
# testlog.json is kept as build/meson-logs/loaded-run-K.json. Exit status: 0 only if every run passed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bash scripts/build.sh
bash tests/compat/setup.sh || echo "WARNING: tests/compat/setup.sh failed: the compat_* tests will be skipped" >&2
hogs=()
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
for _ in 1 2; do
  bash -c 'while :; do :; done' &
  hogs+=($!)
done
failed=0
for ((k = 1; k <= runs; k++)); do
  started=$(date +%s)
  status=0
  meson test -C build --no-rebuild --num-processes 2 >"build/meson-logs/loaded-run-$k.txt" 2>&1 || status=$?
  cp build/meson-logs/testlog.json "build/meson-logs/loaded-run-$k.json"
  report=$(/usr/bin/python3 scripts/test-report.py build/meson-logs/testlog.json 0) || status=1
  echo "run $k: ${report%%$'\n'*} in $(($(date +%s) - started)) s, load $(cut -d' ' -f1 /proc/loadavg)$([ $status = 0 ] || echo ', FAILED')"
  [ $status = 0 ] || { failed=$((failed + 1)); grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT) ' "build/meson-logs/loaded-run-$k.txt" || true; }
done
echo "loaded-suite: $((runs - failed)) of $runs runs passed beside two CPU hogs"
[ $failed = 0 ]
