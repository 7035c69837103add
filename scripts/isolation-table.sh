#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates README.md's isolation table from the escape-attempt tests: runs
# tests/integration/isolation_test.cpp (as root, like CI) and splices the table it writes
# between the ISOLATION-TABLE markers. The README never claims more than the tests show.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
table=$(mktemp)
trap 'rm -f "$table"' EXIT
PAGI_EXEC_BWRAP=/usr/bin/bwrap PAGI_EXEC_ISOLATION_TABLE="$table" ./build/tests/isolation_test >/dev/null
/usr/bin/python3 - "$table" <<'PY'
import re, sys
table = open(sys.argv[1]).read().strip()
readme = open("README.md").read()
start, end = "<!-- ISOLATION-TABLE:BEGIN -->", "<!-- ISOLATION-TABLE:END -->"
pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
if not pattern.search(readme):
    sys.exit("README.md has no ISOLATION-TABLE markers")
open("README.md", "w").write(pattern.sub(lambda _: f"{start}\n{table}\n{end}", readme))
print("README.md isolation table updated")
PY
