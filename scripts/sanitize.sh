#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds pagi-exec with AddressSanitizer + UndefinedBehaviorSanitizer (meson's b_sanitize, gcc)
# into ./build-asan and runs the whole test suite there. Extra arguments go to `meson test`
# (e.g. --suite unit). Any sanitizer report fails the test it happens in: UBSan stops at its first
# finding, ASan at every error, LeakSanitizer when a test process exits with memory still lost.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/install-deps.sh
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --wrap-mode=nodownload -Dwerror=true -Db_sanitize=address,undefined -Dbench=false
fi
ninja -C build-asan
built=$(date +%s)
bash tests/compat/setup.sh || echo "WARNING: tests/compat/setup.sh failed: the compat_* tests will be skipped" >&2

# halt_on_error: UBSan's findings are otherwise printed and the test passes on. quarantine_size_mb:
# ASan keeps 256 MiB of freed memory by default, which the tests that bound the server's memory
# (request_e2e) would count as growth. LSan reads the suppressions file (each line says why).
# The e2e fixture passes these variables on to the servers it starts.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:strict_init_order=1:quarantine_size_mb=8
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
status=0
# Sanitized code runs about 2-3 times slower: the tests' own time limits stretch with it.
meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@" || status=$?
finished=$(date +%s)
echo "sanitize.sh: build $((built - started)) s, tests $((finished - built)) s"
/usr/bin/python3 - build-asan/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    result = json.loads(line)["result"]
    key = "OK" if result in ("OK", "EXPECTEDFAIL") else "SKIP" if result == "SKIP" else "FAIL"
    counts[key] += 1
print(f"sanitizers: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $status
