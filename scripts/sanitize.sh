#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds pagi-exec with AddressSanitizer + UndefinedBehaviorSanitizer (meson's b_sanitize, gcc)
# into ./build-asan and runs the whole test suite there. Extra arguments go to `meson test`
# (e.g. --suite unit). Any sanitizer report fails the test it happens in: UBSan stops at its first
# finding, ASan at every error, LeakSanitizer when a test process exits with memory still lost.
#
# --library: everything but the gRPC server (-Dserver=disabled) into ./build-asan-lib: the library,
# the CLI, pagi-spawner and every unit and integration test of them. About a third of the full
# build's time (grpc's generated code and headers are most of it): the pass CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
setup=()
if [ "${1:-}" = "--library" ]; then
  shift
  build=build-asan-lib
  setup=(-Dserver=disabled)
fi
started=$(date +%s)
bash scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dwerror=true -Db_sanitize=address,undefined -Dbench=false "${setup[@]}"
fi
ninja -C "$build"
built=$(date +%s)
if [ "$build" = build-asan ]; then
  bash tests/compat/setup.sh || echo "WARNING: tests/compat/setup.sh failed: the compat_* tests will be skipped" >&2
fi

# halt_on_error: UBSan's findings are otherwise printed and the test passes on. quarantine_size_mb:
# ASan keeps 256 MiB of freed memory by default, which the tests that bound the server's memory
# (request_e2e) would count as growth. LSan reads the suppressions file (each line says why).
# The e2e fixture passes these variables on to the servers it starts.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:strict_init_order=1:quarantine_size_mb=8
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
status=0
# Sanitized code runs about 2-3 times slower: the tests' own time limits stretch with it.
meson test -C "$build" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@" || status=$?
finished=$(date +%s)
echo "sanitize.sh: build $((built - started)) s, tests $((finished - built)) s"
echo -n "sanitizers: "
/usr/bin/python3 scripts/test-report.py "$build/meson-logs/testlog.json" "${PAGI_EXEC_ALLOW_SKIPS:-0}" || status=1
exit $status
