#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Soak: drives a real tools-server per isolation mode with a mix of calls, then checks that the
server is back where it was after its warm-up.

  soak.py [--isolation cwd,bwrap,native] [--seconds 10] [--warmup 3] [--concurrency 8]
          [--rss-margin-mb 24] [--json FILE]

Needs TOOLS_SERVER_BIN, TOOLS_PROTO_PATH and PAGI_EXEC_CLI (set by meson test). The mix, each call
checked against what it must answer: allowed (echo), refused (a twin the policy refuses), failing
(exit 3), timing out (sleep past the server's 3 s limit), flooding (1 MiB of output, kept to
the caps), cancelled (a stream cancelled by the client once the command has written its first
line). Any other answer is an unexplained error and fails the run.

Afterwards, once every call has returned and the server's clean-up has settled: descriptors,
threads, child processes, cgroups (pagi-exec-<pid>-*), network and mount namespaces held, mounts
below the sandbox dir and bytes on disk below it must equal the baseline taken after the warm-up;
no zombie; RSS within --rss-margin-mb of it. The warm-up runs the same mix, so what a server keeps
on purpose is in the baseline: the pool of idle cgroups (lib/sys/cgroup.cpp keeps the groups of
finished runs for reuse), the pool of network namespaces (lib/sys/netns.cpp keeps 8 fresh ones
and the twins' returned ones, as descriptors), the spawn helper process, the worker threads and
grpc's. Modes that cannot run here (bwrap missing, native without namespaces) are skipped and
named; exit 77 when none can.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TWIN = "twin-aegis"
REFUSED_TWIN = "twin-nobody"
FLOOD_BYTES = 1 << 20
KINDS = ["allowed", "refused", "failing", "timeout", "flood", "cancelled"]
# lib/sys/netns.cpp: 8 spare namespaces plus at most 4 per spare kept for their twins.
NETNS_KEPT = 8 + 4 * 8
# Counts that must come back exactly (descriptors other than the pools' cgroup files and namespaces).
EXACT = ["fds", "processes", "zombies", "cgroup_members", "mnt_namespaces", "mounts", "disk"]


def request(kind):
    import tools_pb2
    if kind == "allowed":
        return tools_pb2.ExecutionRequest(command="echo", args=["soak"], twin_id=TWIN)
    if kind == "refused":
        return tools_pb2.ExecutionRequest(command="echo", args=["soak"], twin_id=REFUSED_TWIN)
    if kind == "failing":
        return tools_pb2.ExecutionRequest(command="sh", args=["-c", "exit 3"], twin_id=TWIN)
    if kind == "timeout":
        return tools_pb2.ExecutionRequest(command="sleep", args=["3600"], twin_id=TWIN)
    if kind == "flood":
        return tools_pb2.ExecutionRequest(
            command="sh", args=["-c", f"head -c {FLOOD_BYTES} /dev/zero | tr '\\0' x"], twin_id=TWIN)
    return tools_pb2.ExecutionRequest(command="sh", args=["-c", "echo ready; exec sleep 3600"], twin_id=TWIN)


def judge(kind, answer):
    """None when the answer is the one `kind` must get, else what is wrong."""
    a = answer
    if kind == "allowed" and a.success and a.exit_code == 0 and list(a.stdout_logs) == ["soak"]:
        return None
    if kind == "refused" and not a.success and a.exit_code == 1 and a.stderr_logs and \
            a.stderr_logs[0].startswith("Policy violation: "):
        return None
    if kind == "failing" and not a.success and a.exit_code == 3 and not a.timed_out:
        return None
    if kind == "timeout" and a.timed_out and a.exit_code == 124:
        return None
    if kind == "flood" and a.success and a.stdout_truncated:
        return None
    return f"{kind}: success={a.success} exit={a.exit_code} timed_out={a.timed_out} message={a.message!r}"


def cancelled_call(stub):
    """Streams a run, waits for its first output (it is running), cancels. None when the call
    ended as cancelled."""
    import grpc
    call = stub.StreamExecution(request("cancelled"), timeout=60)
    try:
        for event in call:
            if event.WhichOneof("event") == "stdout":
                call.cancel()
            elif event.WhichOneof("event") == "finished":
                return f"cancelled: finished before it was cancelled ({event.finished.reason!r})"
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED:
            return None
        return f"cancelled: {error.code()} {error.details()}"
    return "cancelled: the stream ended without an event"


def drive(channels, seconds, seed):
    """Runs the mix from one thread per channel for `seconds`; (counts by kind, errors). The
    channels stay open across the warm-up, the run and the censuses, so the server's connections
    are the same in each."""
    import grpc
    import tools_pb2_grpc
    counts = {kind: 0 for kind in KINDS}
    errors = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n):
        rng = random.Random(seed * 1000 + n)
        stub = tools_pb2_grpc.ToolExecutorServiceStub(channels[n])
        while time.monotonic() < deadline:
            kind = rng.choice(KINDS)
            try:
                if kind == "cancelled":
                    wrong = cancelled_call(stub)
                else:
                    wrong = judge(kind, stub.RequestExecution(request(kind), timeout=60))
            except grpc.RpcError as error:
                wrong = f"{kind}: {error.code()} {error.details()}"
            with lock:
                counts[kind] += 1
                if wrong:
                    errors.append(wrong)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(len(channels))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts, errors


# AddressSanitizer's allocator holds freed memory in quarantine and caches per thread, so a
# sanitized server's RSS after a run is no measure of what it keeps (LeakSanitizer checks that at
# its exit): such a server gets SANITIZED_RSS_MARGIN_MB, and the output says so.
SANITIZED_RSS_MARGIN_MB = 64


def rss_margin_mb(pid, asked):
    with open(f"/proc/{pid}/maps") as maps:
        sanitized = "libasan" in maps.read()
    if not sanitized or asked >= SANITIZED_RSS_MARGIN_MB:
        return asked
    print(f"note: the server is built with AddressSanitizer: RSS margin {SANITIZED_RSS_MARGIN_MB} MiB, "
          f"not {asked}", flush=True)
    return SANITIZED_RSS_MARGIN_MB


def settled(pid, sandbox_dir, baseline, margin, peak_threads):
    """The census once it matches the baseline (clean-up runs behind the answers: a folder's
    removal, a namespace's check), or the last one taken when it does not within 30 s."""
    last = {}

    def matches():
        last.clear()
        last.update(harness.census(pid, sandbox_dir))
        return all(last[k] == baseline[k] for k in EXACT) and last["rss"] <= baseline["rss"] + margin and \
            last["threads"] <= peak_threads

    harness.wait_until(matches, 30, step=0.25)
    return dict(last)


def soak_mode(binary, cli, mode, args, work_dir):
    sandbox_dir = os.path.join(work_dir, mode, "sandbox")
    os.makedirs(sandbox_dir)
    audit_log = os.path.join(work_dir, mode, "audit.jsonl")
    server = harness.Server(binary, os.path.join(work_dir, mode), {
        "SANDBOX_DIR": sandbox_dir,
        "TOOLS_ISOLATION": mode,
        "TOOLS_REQUIRE_ISOLATION": "true",
        "TOOLS_EXEC_TIMEOUT_MS": "3000",
        "TOOLS_MEMORY_LIMIT_MB": "64",
        "TOOLS_MAX_CONCURRENCY": str(4 * args.concurrency),
        "TOOLS_MAX_CONCURRENCY_PER_TWIN": str(4 * args.concurrency),
        "TOOLS_AUDIT_LOG": audit_log,
        "TOOLS_AUDIT_SYNC": "interval",
        "LOG_LEVEL": "warn",
    })
    import grpc
    channels = [grpc.insecure_channel(server.address) for _ in range(args.concurrency)]
    try:
        peak_threads = [harness.threads(server.pid)]
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.1):
                peak_threads[0] = max(peak_threads[0], harness.threads(server.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            warm_counts, warm_errors = drive(channels, args.warmup, 1)
        finally:
            sampling.set()
            sampler.join()
        harness.check(not warm_errors, f"{mode}: warm-up answers as expected ({sum(warm_counts.values())} calls)"
                      + (f": {warm_errors[:5]}" if warm_errors else ""))
        # The baseline: the first census with no run left in the server's cgroups in which nothing
        # moves for 2 s (five looks). Clean-up runs behind the answers (a pooled supervisor is kept
        # busy until the server lets go of its run), and on a loaded machine it can lag by more than
        # one look: a baseline taken inside that lag counted 2 supervisors more than the server keeps.
        baseline = {}
        unchanged = [0]

        def still():
            now = harness.census(server.pid, sandbox_dir)
            same = baseline and now["cgroup_members"] == 0 and all(now[k] == baseline[k] for k in EXACT)
            unchanged[0] = unchanged[0] + 1 if same else 0
            baseline.clear()
            baseline.update(now)
            return unchanged[0] >= 4

        harness.wait_until(still, 60, step=0.5)
        print(f"{mode}: baseline {json.dumps(baseline)}", flush=True)
        started = time.monotonic()
        counts, errors = drive(channels, args.seconds, 2)
        elapsed = time.monotonic() - started
        total = sum(counts.values())
        print(f"{mode}: {total} calls in {elapsed:.1f} s ({total / elapsed:.0f}/s) at concurrency "
              f"{args.concurrency}: {json.dumps(counts)}", flush=True)
        harness.check(not errors, f"{mode}: zero unexplained errors" + (f": {len(errors)}, {errors[:5]}" if errors else ""))
        harness.check(all(counts[k] > 0 for k in KINDS), f"{mode}: every kind of call was made")
        margin_mb = rss_margin_mb(server.pid, args.rss_margin_mb)
        margin = margin_mb << 20
        after = settled(server.pid, sandbox_dir, baseline, margin, peak_threads[0])
        print(f"{mode}: after    {json.dumps(after)}", flush=True)
        for key in EXACT:
            harness.check(after[key] == baseline[key], f"{mode}: {key} back to baseline ({baseline[key]} -> {after[key]})")
        harness.check(after["threads"] <= peak_threads[0],
                      f"{mode}: threads no more than during the warm-up ({after['threads']} <= {peak_threads[0]}; "
                      f"baseline {baseline['threads']}: grpc's pool grows and shrinks with the load)")
        # Idle groups stay for reuse: at most one per execution that can run at once, per hierarchy.
        parents = max(after["cgroup_parents"], 1)
        idle = (after["cgroups"] - after["cgroup_parents"]) // parents
        harness.check(idle <= 4 * args.concurrency,
                      f"{mode}: the idle cgroup pool holds at most TOOLS_MAX_CONCURRENCY groups per hierarchy "
                      f"({idle} <= {4 * args.concurrency}; baseline {(baseline['cgroups'] - baseline['cgroup_parents']) // parents})")
        harness.check(after["pool_fds_of_removed_groups"] == 0,
                      f"{mode}: the pool's open control files ({baseline['pool_fds']} -> {after['pool_fds']}) "
                      "all belong to groups that still exist")
        harness.check(after["net_namespaces"] <= NETNS_KEPT + 1,  # + the host's
                      f"{mode}: network namespaces held no more than the pool keeps ({after['net_namespaces']}; "
                      f"baseline {baseline['net_namespaces']})")
        harness.check(after["rss"] <= baseline["rss"] + margin,
                      f"{mode}: RSS within {margin_mb} MiB of baseline "
                      f"({baseline['rss'] >> 20} -> {after['rss'] >> 20} MiB)")
        harness.check(server.alive(), f"{mode}: the server is still running")
    finally:
        for channel in channels:
            channel.close()
        code = server.stop()
    harness.check(code == 0, f"{mode}: SIGTERM stops the server with exit code 0 (got {code})")
    left = harness.cgroup_dirs(server.pid)
    harness.check(not left, f"{mode}: no cgroup of the server is left after it stops ({left[:3]})")
    verify = subprocess.run([cli, "audit", "verify", audit_log], capture_output=True, text=True)
    harness.check(verify.returncode == 0, f"{mode}: the audit log verifies ({verify.stdout.strip()[-200:]} {verify.stderr.strip()})")
    return {"calls": total, "seconds": round(elapsed, 1), "by_kind": counts,
            "baseline": baseline, "after": after}


def mode_available(binary, mode, work_dir):
    """None when the server starts with `mode` required, else why not."""
    probe_dir = os.path.join(work_dir, f"probe-{mode}")
    os.makedirs(os.path.join(probe_dir, "sandbox"))
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(probe_dir, "sandbox"), "TOOLS_ISOLATION": mode,
           "TOOLS_REQUIRE_ISOLATION": "true", "LOG_LEVEL": "error"}
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    return None if line.startswith("listening on ") else err.decode(errors="replace").strip()[-300:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isolation", default="cwd,bwrap,native")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rss-margin-mb", type=int, default=24)
    parser.add_argument("--json")
    args = parser.parse_args()
    binary, proto_path, cli = harness.setup("the soak checks cgroups and runs as other uids: it needs root")
    results = {}
    with tempfile.TemporaryDirectory(prefix="pagi-soak-") as work_dir:
        os.chmod(work_dir, 0o711)  # commands run as unprivileged uids: the sandbox dir must be reachable
        harness.generate_stubs(proto_path, os.path.join(work_dir, "gen"))
        for mode in args.isolation.split(","):
            why_not = mode_available(binary, mode, work_dir)
            if why_not:
                print(f"SKIP {mode}: {why_not}", flush=True)
                results[mode] = {"skipped": why_not}
                continue
            results[mode] = soak_mode(binary, cli, mode, args, work_dir)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    if all("skipped" in r for r in results.values()):
        harness.skip("no isolation mode works here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
