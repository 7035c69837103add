#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command to build and run the whole test suite (unit, integration, e2e, compat).
# Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The compatibility suite's client: node, npm and its pinned npm packages (once). Without them
# (no npm registry reachable) the compat_* tests are skipped and say why; nothing else needs them.
bash tests/compat/setup.sh || echo "WARNING: tests/compat/setup.sh failed: the compat_* tests will be skipped" >&2
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
# The closing lines CI reads (scripts/test-report.py): counts, then every skipped test or case
# with its reason; a test that must run in CI and skipped fails the run. PAGI_EXEC_ALLOW_SKIPS=1
# turns that failure into a warning, for a developer's machine that is not root; CI never sets it.
/usr/bin/python3 scripts/test-report.py build/meson-logs/testlog.json "${PAGI_EXEC_ALLOW_SKIPS:-0}" || status=1
exit $status
