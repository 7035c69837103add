#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The closing lines of a test pass, from meson's testlog.json: "N passed, N failed, N skipped", then
# every skipped test or case with its reason. A test that must run in CI (isolation, the native
# sandbox, e2e) and skipped, whole or in part, fails the pass: a skip there means the machine lacks
# what CI promises. The compat_* tests may skip (they need npm packages, which need a reachable npm
# registry). Usage: test-report.py TESTLOG ALLOW_SKIPS (1: that failure is only a warning).
import json, re, sys
MUST_RUN_SUITES = {"e2e"}
MUST_RUN_NAMES = {"isolation", "isolation_via_helper", "native_runs", "native_runs_via_helper",
                  "spawn_helper", "spawn_helper_in_process", "unprivileged", "unprivileged_via_helper",
                  "limits", "limits_via_helper", "mountns", "mountns_via_helper"}
MAY_SKIP = re.compile(r"^compat_")  # needs npm: the one allowance
# Lines the test main prints (tests/doctest_main.cpp) for cases skipped inside a binary that ran.
CASE_SKIP = re.compile(r"^(SKIPPED|PARTLY SKIPPED): .*$", re.M)
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
report, broken = [], []
for line in open(sys.argv[1]):
    test = json.loads(line)
    result, out = test["result"], test.get("stdout") or ""
    # meson names a test "project:suite+suite / name" when the project has several suites.
    pretty, _, name = test["name"].rpartition(" / ")
    suites = set(pretty.partition(":")[2].split("+")) if pretty else set()
    key = "OK" if result in ("OK", "EXPECTEDFAIL") else "SKIP" if result == "SKIP" else "FAIL"
    counts[key] += 1
    must_run = (name in MUST_RUN_NAMES or MUST_RUN_SUITES & suites) and not MAY_SKIP.match(name)
    skips = [m.group(0) for m in CASE_SKIP.finditer(out)]
    if key == "SKIP" and not skips:  # not a doctest binary: a script's own "SKIP: reason" line
        skips = [next((l for l in out.splitlines() if "SKIP" in l), "SKIPPED: (no reason printed)")]
    report += [f"  {name}{' (whole test)' if key == 'SKIP' else ''}: {s}" for s in skips]
    if must_run and (key == "SKIP" or skips):
        broken.append(name)
print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
if report:
    print("skipped tests and cases, with their reasons:")
    print("\n".join(report))
if broken:
    allowed = sys.argv[2] == "1"
    print(f"{'WARNING' if allowed else 'FAIL'}: tests that must run in CI skipped (whole or in part): "
          f"{', '.join(broken)}; see the reasons above"
          + (" (allowed by PAGI_EXEC_ALLOW_SKIPS=1)" if allowed else ""))
    sys.exit(0 if allowed else 1)
