#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""pagi-load against bare-server and against tools-server: the figures it writes add up, and each
kind of call comes back as it should (refused ones refused, failing ones exit 3, ...).

Usage: load_test.py PAGI_LOAD BARE_SERVER TOOLS_SERVER (bench/load/meson.build passes the built ones).
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile


def check(condition, what):
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


def start(argv, env, work_dir, name):
    """Starts a server; returns (process, address from its first stdout line)."""
    stderr_path = os.path.join(work_dir, name + ".stderr")
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        with open(stderr_path) as err:
            sys.exit(f"FAIL: {name} did not start: stdout {line!r}, stderr {err.read()!r}")
    return proc, line[len("listening on "):].strip()


def stop(proc, name):
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=30) == 0, f"{name} exits 0 on SIGTERM")


def load(pagi_load, work_dir, address, *extra):
    """Runs pagi-load with --json; returns the parsed figures."""
    json_path = os.path.join(work_dir, "load.json")
    argv = [pagi_load, "--target", address, "--warmup", "0", "--json", json_path, *extra]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    print(run.stdout, end="")
    check(run.returncode == 0, f"pagi-load {' '.join(extra)} exits 0 (stderr: {run.stderr.strip()!r})")
    with open(json_path) as file:
        return json.load(file)


def check_adds_up(figures, expected_per_kind):
    """The total is the sum of the kinds, each kind got its share of the mix, and every count is
    of a request that was made."""
    kinds = figures["by_kind"]
    total = figures["total"]
    check({k: v["requests"] for k, v in kinds.items()} == expected_per_kind,
          f"requests per kind follow the mix: {expected_per_kind}")
    check(total["requests"] == sum(expected_per_kind.values()), "the total counts every request")
    for name, kind in [("total", total)] + list(kinds.items()):
        check(sum(kind["by_status"].values()) == kind["requests"], f"{name}: statuses add up to its requests")
        check(sum(kind["by_outcome"].values()) == kind["requests"], f"{name}: outcomes add up to its requests")
        check(0 < kind["p50_ms"] <= kind["p90_ms"] <= kind["p99_ms"] <= kind["max_ms"], f"{name}: percentiles ordered")
    check(figures["seconds"] > 0 and total["rps"] > 0, "wall time and throughput are reported")


def test_usage(pagi_load):
    check(subprocess.run([pagi_load, "--help"], capture_output=True).returncode == 0, "pagi-load --help exits 0")
    bad = subprocess.run([pagi_load, "--target", "127.0.0.1:1", "--mix", "allowed=1,bogus=2"],
                         capture_output=True, text=True)
    check(bad.returncode != 0 and "unknown kind 'bogus'" in bad.stderr, "a bad --mix is a usage error naming it")
    missing = subprocess.run([pagi_load], capture_output=True, text=True)
    check(missing.returncode != 0 and "--target" in missing.stderr, "a missing --target is a usage error naming it")


def test_bare_server(pagi_load, bare_server, work_dir):
    proc, address = start([bare_server, "--listen", "127.0.0.1:0"], {"PATH": "/usr/bin:/bin"}, work_dir, "bare-server")
    try:
        figures = load(pagi_load, work_dir, address, "--concurrency", "4", "--requests", "40",
                       "--mix", "allowed=2,failing=1,health=1,check=1")
        check_adds_up(figures, {"allowed": 16, "failing": 8, "health": 8, "check": 8})
        check(figures["total"]["by_status"] == {"OK": 40}, "bare-server answers every call OK")
        kinds = figures["by_kind"]
        check(kinds["allowed"]["by_outcome"] == {"succeeded": 16}, "echo succeeds")
        check(kinds["failing"]["by_outcome"] == {"failed": 8}, "sh -c 'exit 3' fails")
        check(kinds["failing"]["by_exit_code"] == {"3": 8}, "with exit code 3")
        check(kinds["health"]["by_outcome"] == {"succeeded": 8}, "HealthCheck answers")
        check(kinds["check"]["by_outcome"] == {"succeeded": 8}, "CheckPolicy allows")
    finally:
        stop(proc, "bare-server")


def test_tools_server(pagi_load, tools_server, work_dir):
    sandbox = os.path.join(work_dir, "sandbox")
    os.chmod(work_dir, 0o711)  # the run uid must reach SANDBOX_DIR (README, Isolation)
    env = {"PATH": "/usr/bin:/bin", "TOOLS_GRPC_ADDR": "127.0.0.1:0", "SANDBOX_DIR": sandbox,
           "TOOLS_ISOLATION": "cwd", "TOOLS_AUTH": "none", "LOG_LEVEL": "warn", "TOOLS_EXEC_TIMEOUT_MS": "1000"}
    proc, address = start([tools_server], env, work_dir, "tools-server")
    try:
        figures = load(pagi_load, work_dir, address, "--concurrency", "4", "--requests", "32",
                       "--mix", "allowed=1,refused=1,failing=1,timeout=1")
        check_adds_up(figures, {"allowed": 8, "refused": 8, "failing": 8, "timeout": 8})
        check(figures["total"]["by_status"] == {"OK": 32}, "tools-server answers every call OK")
        kinds = figures["by_kind"]
        check(kinds["allowed"]["by_outcome"] == {"succeeded": 8}, "twin-aegis runs echo")
        check(kinds["refused"]["by_outcome"] == {"refused": 8}, "twin-nobody is refused")
        check(kinds["failing"]["by_outcome"] == {"failed": 8}, "sh -c 'exit 3' fails")
        check(kinds["failing"]["by_exit_code"] == {"3": 8}, "with exit code 3")
        check(kinds["timeout"]["by_outcome"] == {"timed_out": 8}, "sleep 3600 ends at the time limit")
        check(kinds["timeout"]["by_exit_code"] == {"124": 8}, "with exit code 124")

        streamed = load(pagi_load, work_dir, address, "--stream", "--concurrency", "2", "--requests", "9",
                        "--mix", "allowed=1,refused=1,failing=1")
        check_adds_up(streamed, {"allowed": 3, "refused": 3, "failing": 3})
        check(streamed["stream"] and streamed["total"]["by_status"] == {"OK": 9}, "StreamExecution: every call OK")
        check([streamed["by_kind"][k]["by_outcome"] for k in ("allowed", "refused", "failing")]
              == [{"succeeded": 3}, {"refused": 3}, {"failed": 3}], "StreamExecution: each kind's finished event")
        check(streamed["by_kind"]["failing"]["by_exit_code"] == {"3": 3}, "StreamExecution: exit code 3")
    finally:
        stop(proc, "tools-server")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pagi_load, bare_server, tools_server = sys.argv[1:]
    test_usage(pagi_load)
    with tempfile.TemporaryDirectory(prefix="pagi-load-test-") as work_dir:
        test_bare_server(pagi_load, bare_server, work_dir)
        test_tools_server(pagi_load, tools_server, work_dir)


if __name__ == "__main__":
    main()
