#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Faults against real tools-server processes (needs root; exit 77 otherwise):

- kill -9 of the server while native, bwrap and cwd runs are in flight: every process of theirs dies
  (the spawn helper and each run's root have PR_SET_PDEATHSIG, a native run is PID 1 of its own
  PID namespace, a cwd run's supervisor is a subreaper), their network and mount namespaces go
  with them, their cgroups are left empty and removed by the next server's start, and the audit
  log verifies;
- a restart on the same SANDBOX_DIR serves at once: health SERVING, a run works;
- SANDBOX_DIR removed, or a read-only bind mount over it, at run time: runs fail with INTERNAL
  naming the folder and the errno, HealthCheck says degraded and why, grpc.health.v1 says
  NOT_SERVING; all of it recovers once the folder is back;
- the workspaces' file system full (SANDBOX_DIR on a 2 MiB tmpfs): writes are refused, runs go on;
- the audit log's file system full: TOOLS_AUDIT_REQUIRED refuses runs (UNAVAILABLE, health
  NOT_SERVING), without it the server serves and says degraded; both recover once there is room;
- the SQLite history's file system full (TOOLS_STATE_DIR on a small tmpfs): runs are served, the
  records wait in the write queue, HealthCheck says degraded; once there is room every record
  reaches the database, in order, and health is back;
- the server's cgroup at its pids limit: runs fail with INTERNAL naming EAGAIN (or
  RESOURCE_EXHAUSTED when a worker thread is what meets the limit), and work once it is lifted; the pool's idle groups, then its parent groups, removed under it: runs go on
  (the parents are made again).

Every mount is made inside the server's own private mount namespace (unshare -m), so it goes
away with the server whatever happens to the test.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
import harness  # noqa: E402
from harness import check  # noqa: E402

TWIN = "twin-aegis"
PRIVATE_MOUNTS = ["unshare", "--mount", "--propagation", "private", "--"]


def tools():
    import tools_pb2
    import tools_pb2_grpc
    return tools_pb2, tools_pb2_grpc


def stub_for(server):
    import grpc
    channel = grpc.insecure_channel(server.address)
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel, tools()[1].ToolExecutorServiceStub(channel)


def run(stub, command, args, twin=TWIN):
    """(response, None) or (None, RpcError)."""
    import grpc
    tools_pb2, _ = tools()
    try:
        return stub.RequestExecution(tools_pb2.ExecutionRequest(command=command, args=args, twin_id=twin),
                                     timeout=60), None
    except grpc.RpcError as error:
        return None, error


def health(channel):
    """grpc.health.v1 status name of the whole server, or the RPC error's code name."""
    import grpc
    import health_pb2
    import health_pb2_grpc
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    except grpc.RpcError as error:
        return error.code().name


def schema_health(stub):
    from google.protobuf import empty_pb2
    return stub.HealthCheck(empty_pb2.Empty(), timeout=10)


def echo_works(stub, word="hello"):
    answer, error = run(stub, "echo", [word])
    return error is None and answer.success and list(answer.stdout_logs) == [word]


def describe(answer, error):
    if error is not None:
        return f"RPC {error.code().name}: {error.details()}"
    return f"exit {answer.exit_code} success={answer.success} message={answer.message!r} stderr={list(answer.stderr_logs)[:2]}"


def start_runs(stub, marker, count):
    """`count` streamed runs that print 'ready' and then sleep; returns once every one has printed
    (each is running), with the calls (kept open) and a thread per call draining it."""
    import grpc
    tools_pb2, _ = tools()
    calls = []
    ready = threading.Semaphore(0)

    def drain(call):
        try:
            for event in call:
                if event.WhichOneof("event") == "stdout":
                    ready.release()
        except grpc.RpcError:
            pass

    threads = []
    for _ in range(count):
        call = stub.StreamExecution(tools_pb2.ExecutionRequest(
            command="sh", args=["-c", f"echo ready; sleep 3600; : {marker}"], twin_id=TWIN), timeout=3600)
        calls.append(call)
        t = threading.Thread(target=drain, args=(call,), daemon=True)
        t.start()
        threads.append(t)
    for _ in range(count):
        check(ready.acquire(timeout=60), f"{marker}: a run printed ready")
    return calls


# ---- kill -9 and restart ----------------------------------------------------------------------

def kill9_and_restart(binary, cli, work_dir, mode):
    base = os.path.join(work_dir, f"kill9-{mode}")
    sandbox = os.path.join(base, "sandbox")
    os.makedirs(sandbox)
    audit = os.path.join(base, "audit.jsonl")
    env = {"SANDBOX_DIR": sandbox, "TOOLS_ISOLATION": mode, "TOOLS_REQUIRE_ISOLATION": "true",
           "TOOLS_AUDIT_LOG": audit, "TOOLS_AUDIT_SYNC": "every"}
    server = harness.Server(binary, base, env, name="first")
    channel, stub = stub_for(server)
    check(echo_works(stub), f"{mode}: a run works before the kill")
    marker = f"pagi-faults-{os.getpid()}-{random.randrange(1 << 30)}"
    calls = start_runs(stub, marker, 3)
    check(len(harness.with_marker(marker)) >= 3, f"{mode}: the three runs are visible by their marker")
    family = harness.descendants(server.pid)
    own_net = {harness._ns(os.getpid(), "net"), harness._ns(1, "net")}
    own_mnt = {harness._ns(os.getpid(), "mnt"), harness._ns(1, "mnt")}
    nets = harness.namespaces_held([server.pid] + list(family), "net") - own_net
    mnts = harness.namespaces_held([server.pid] + list(family), "mnt") - own_mnt
    groups = harness.cgroup_dirs(server.pid)
    check(len(harness.cgroup_procs(groups)) >= 3, f"{mode}: the runs are in the server's cgroups ({len(groups)} folders)")
    if mode == "native":
        check(len(nets) >= 3, f"{mode}: the runs hold network namespaces of their own ({len(nets)})")
    server.kill9()
    for call in calls:
        call.cancel()
    channel.close()
    check(harness.wait_until(lambda: not harness.still_running(family), 30),
          f"{mode}: after kill -9 no process the server had started is left "
          f"({harness.still_running(family)})")
    check(not harness.with_marker(marker), f"{mode}: no process with the runs' marker is left")
    check(harness.wait_until(lambda: not harness.cgroup_procs(groups), 30),
          f"{mode}: the dead server's cgroups hold no process")
    check(harness.wait_until(lambda: not harness.holders_of(nets, "net"), 30),
          f"{mode}: no process holds the runs' network namespaces ({len(nets)})")
    check(harness.wait_until(lambda: not harness.holders_of(mnts, "mnt"), 30),
          f"{mode}: no process holds the runs' mount namespaces ({len(mnts)})")
    check(not harness.mounts_under(base), f"{mode}: nothing is mounted under the sandbox dir")
    verify = subprocess.run([cli, "audit", "verify", audit], capture_output=True, text=True)
    check(verify.returncode == 0, f"{mode}: the audit log verifies after kill -9 ({verify.stderr.strip()[-300:]})")

    second = harness.Server(binary, base, env, name="second")
    channel, stub = stub_for(second)
    try:
        check(health(channel) == "SERVING", f"{mode}: a restart on the same SANDBOX_DIR is SERVING at once")
        check(echo_works(stub), f"{mode}: a run works after the restart")
        left = [g for g in groups if os.path.isdir(g)]
        check(not left, f"{mode}: the restarted server removed the dead one's cgroups ({left[:3]})")
    finally:
        channel.close()
        code = second.stop()
    check(code == 0, f"{mode}: the restarted server stops with exit code 0")
    verify = subprocess.run([cli, "audit", "verify", audit], capture_output=True, text=True)
    check(verify.returncode == 0, f"{mode}: the audit chain verifies across the crash and restart")


# ---- SANDBOX_DIR removed or read-only ---------------------------------------------------------

def sandbox_dir_faults(binary, work_dir):
    base = os.path.join(work_dir, "sandbox-faults")
    sandbox = os.path.join(base, "sandbox")
    os.makedirs(sandbox)
    for mode in ["native", "cwd"]:
        server = harness.Server(binary, base, {"SANDBOX_DIR": sandbox, "TOOLS_ISOLATION": mode,
                                               "TOOLS_REQUIRE_ISOLATION": "true"},
                                wrapper=PRIVATE_MOUNTS, name=f"sandbox-{mode}")
        channel, stub = stub_for(server)
        try:
            check(echo_works(stub), f"{mode}: a run works")
            shutil.rmtree(sandbox)
            answer, error = run(stub, "echo", ["gone"])
            print(f"{mode}: SANDBOX_DIR removed: {describe(answer, error)}", flush=True)
            check(harness.wait_until(lambda: health(channel) == "NOT_SERVING", 10),
                  f"{mode}: grpc.health.v1 says NOT_SERVING with SANDBOX_DIR removed")
            said = schema_health(stub)
            check(said.status == "degraded" and f"no run can start: sandbox dir {sandbox}: No such file or directory"
                  in said.message, f"{mode}: HealthCheck says degraded and why")
            check(error is not None and error.code().name == "INTERNAL" and
                  f"sandbox_setup: open sandbox dir {sandbox}: No such file or directory" in error.details(),
                  f"{mode}: a run with SANDBOX_DIR removed fails with INTERNAL naming the folder and ENOENT")
            check(server.alive(), f"{mode}: the server lives on with SANDBOX_DIR removed")
            os.makedirs(sandbox)
            check(echo_works(stub, "back"), f"{mode}: runs work again once SANDBOX_DIR is back")
            check(harness.wait_until(lambda: health(channel) == "SERVING" and schema_health(stub).status == "healthy", 10),
                  f"{mode}: health is SERVING and healthy again")

            ro = subprocess.run(["nsenter", "-t", str(server.pid), "-m", "--", "mount", "--bind", "-o", "ro",
                                 sandbox, sandbox], capture_output=True, text=True)
            check(ro.returncode == 0, f"{mode}: a read-only bind mount over SANDBOX_DIR in the server's namespace ({ro.stderr})")
            for twin in [TWIN, "twin-sentinel"]:
                shutil.rmtree(os.path.join(sandbox, twin), ignore_errors=True)  # the host's view stays writable
            answer, error = run(stub, "echo", ["ro"])
            print(f"{mode}: SANDBOX_DIR read-only: {describe(answer, error)}", flush=True)
            check(error is not None and error.code().name == "INTERNAL" and "sandbox_setup: mkdir " in error.details()
                  and "Read-only file system" in error.details(),
                  f"{mode}: a run with SANDBOX_DIR read-only fails with INTERNAL naming the folder and EROFS")
            check(server.alive(), f"{mode}: the server lives on with SANDBOX_DIR read-only")
            check(harness.wait_until(lambda: health(channel) == "NOT_SERVING", 10),
                  f"{mode}: grpc.health.v1 says NOT_SERVING with SANDBOX_DIR read-only")
            check("Read-only file system" in schema_health(stub).message, f"{mode}: HealthCheck names EROFS")
            subprocess.run(["nsenter", "-t", str(server.pid), "-m", "--", "umount", sandbox], check=True)
            check(echo_works(stub, "rw"), f"{mode}: runs work again once SANDBOX_DIR is writable")
            check(harness.wait_until(lambda: health(channel) == "SERVING", 10), f"{mode}: SERVING again")
        finally:
            channel.close()
            code = server.stop()
        check(code == 0, f"{mode}: the server stops with exit code 0")


# ---- full disks -------------------------------------------------------------------------------

def mounting_tmpfs(*points, size="2m"):
    """A wrapper that mounts a small tmpfs on each of `points` in the server's private mount
    namespace, then execs the server."""
    script = " && ".join(f'mount -t tmpfs -o size={size},mode=0711 tmpfs "${i}"' for i in range(1, len(points) + 1))
    return PRIVATE_MOUNTS + ["sh", "-c", script + f' && shift {len(points)} && exec "$@"', "sh"] + list(points)


def fill(server, folder):
    """Writes a file into `folder` as the server's mount namespace sees it until the disk is full;
    returns its path there."""
    path = f"/proc/{server.pid}/root{folder}/filler"
    chunk = b"f" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    return path


def full_workspace_disk(binary, work_dir):
    base = os.path.join(work_dir, "full-workspaces")
    sandbox = os.path.join(base, "sandbox")
    os.makedirs(sandbox)
    for mode in ["native", "cwd"]:
        server = harness.Server(binary, base, {"SANDBOX_DIR": sandbox, "TOOLS_ISOLATION": mode,
                                               "TOOLS_REQUIRE_ISOLATION": "true"},
                                wrapper=mounting_tmpfs(sandbox), name=f"disk-{mode}")
        channel, stub = stub_for(server)
        try:
            check(echo_works(stub), f"{mode}: a run works with SANDBOX_DIR on a small tmpfs")
            filler = fill(server, sandbox)
            answer, error = run(stub, "file_write", ["notes.txt", "x" * 4096])
            print(f"{mode}: file_write on a full disk: {describe(answer, error)}", flush=True)
            check(error is not None and error.code().name == "INTERNAL" and
                  "io: write notes.txt: No space left on device" in error.details(),
                  f"{mode}: file_write on a full disk fails with INTERNAL naming the file and ENOSPC")
            check(echo_works(stub, "full"), f"{mode}: runs still work on a full workspace disk")
            os.unlink(filler)
            answer, error = run(stub, "file_write", ["notes.txt", "x" * 4096])
            check(error is None and answer.success, f"{mode}: file_write works once there is room ({describe(answer, error)})")
        finally:
            channel.close()
            code = server.stop()
        check(code == 0, f"{mode}: the server stops with exit code 0")


def full_audit_disk(binary, cli, work_dir):
    for required in ["true", "false"]:
        base = os.path.join(work_dir, f"full-audit-{required}")
        logs = os.path.join(base, "logs")
        os.makedirs(logs)
        os.makedirs(os.path.join(base, "sandbox"))
        audit = os.path.join(logs, "audit.jsonl")
        server = harness.Server(binary, base, {"SANDBOX_DIR": os.path.join(base, "sandbox"), "TOOLS_ISOLATION": "cwd",
                                               "TOOLS_AUDIT_LOG": audit, "TOOLS_AUDIT_REQUIRED": required},
                                wrapper=mounting_tmpfs(logs, size="1m"), name="audit")
        channel, stub = stub_for(server)
        what = f"audit required={required}"
        try:
            check(echo_works(stub), f"{what}: a run works with the audit log on a small tmpfs")
            filler = fill(server, logs)
            # The log's last page may still have room for a few records: run until one is not
            # recorded. A run whose decision was recorded but whose end was not is answered as
            # usual (docs/audit.md: TOOLS_AUDIT_REQUIRED refuses runs whose decision cannot be
            # recorded); the next run is refused.
            for _ in range(64):
                answer, error = run(stub, "echo", ["full"])
                if error is not None or (required == "false" and schema_health(stub).status != "healthy"):
                    break
            print(f"{what}: a run with the audit disk full: {describe(answer, error)}", flush=True)
            message = schema_health(stub).message
            print(f"{what}: HealthCheck then: {schema_health(stub).status} {message[message.find('audit'):][:200]!r}",
                  flush=True)
            if required == "true":
                import grpc
                check(error is not None and error.code() == grpc.StatusCode.UNAVAILABLE,
                      f"{what}: a run the audit log cannot record is refused with UNAVAILABLE")
                check(harness.wait_until(lambda: health(channel) == "NOT_SERVING", 10),
                      f"{what}: grpc.health.v1 says NOT_SERVING")
            else:
                check(error is None and answer.success, f"{what}: the run is served")
                check(schema_health(stub).status == "degraded", f"{what}: HealthCheck says degraded")
                check(health(channel) == "SERVING", f"{what}: grpc.health.v1 stays SERVING")
            os.unlink(filler)
            check(harness.wait_until(lambda: echo_works(stub, "room"), 10, step=0.5),
                  f"{what}: runs are recorded again once there is room")
            check(harness.wait_until(lambda: health(channel) == "SERVING" and schema_health(stub).status == "healthy", 10),
                  f"{what}: health is back to SERVING and healthy")
            # The tmpfs goes with the server's mount namespace: keep a copy of the log to verify.
            shutil.copyfile(f"/proc/{server.pid}/root{audit}", os.path.join(base, "audit.jsonl"))
            audit = os.path.join(base, "audit.jsonl")
        finally:
            channel.close()
            code = server.stop()
        check(code == 0, f"{what}: the server stops with exit code 0")
        with open(audit, "rb") as f:
            lines = f.read().count(b"\n")
        print(f"{what}: audit log: {lines} lines", flush=True)
        verify = subprocess.run([cli, "audit", "verify", audit], capture_output=True, text=True)
        check(verify.returncode == 0, f"{what}: the audit log verifies after the full disk "
                                      f"({verify.stdout.strip()[-300:]} {verify.stderr.strip()[-300:]})")


def history_ids(stub):
    """The execution ids the server's history holds, newest first (every page)."""
    tools_pb2, _ = tools()
    ids, token = [], ""
    while True:
        page = stub.ListExecutions(tools_pb2.ListExecutionsRequest(page_size=100, page_token=token), timeout=10)
        ids += [r.execution_id for r in page.executions]
        token = page.next_page_token
        if not token:
            return ids


def full_store_disk(binary, work_dir):
    base = os.path.join(work_dir, "full-store")
    state = os.path.join(base, "state")
    os.makedirs(state)
    os.makedirs(os.path.join(base, "sandbox"))
    server = harness.Server(binary, base, {"SANDBOX_DIR": os.path.join(base, "sandbox"), "TOOLS_ISOLATION": "cwd",
                                           "TOOLS_STATE_DIR": state},
                            wrapper=mounting_tmpfs(state, size="1m"), name="store")
    channel, stub = stub_for(server)
    try:
        check(echo_works(stub), "store: a run works with the SQLite history on a small tmpfs")
        filler = fill(server, state)
        answered = []
        for i in range(64):  # the last pages of the database may still have room for some
            answer, error = run(stub, "echo", [f"full-{i}"])
            check(error is None and answer.success, f"store: run {i} is served with the history's disk full "
                                                    f"({describe(answer, error)})")
            answered.append(answer.execution_id)
            if schema_health(stub).status != "healthy":
                break
        message = schema_health(stub).message
        print(f"store: HealthCheck with the disk full: {message[message.find('history'):][:240]!r}", flush=True)
        check(schema_health(stub).status == "degraded", "store: HealthCheck says degraded while records cannot be written")
        check(health(channel) == "SERVING", "store: grpc.health.v1 stays SERVING (runs are served)")
        os.unlink(filler)
        check(harness.wait_until(lambda: schema_health(stub).status == "healthy", 30, step=0.2),
              "store: health is back to healthy once there is room")
        ids = history_ids(stub)
        missing = [i for i in answered if i not in ids]
        check(not missing, f"store: every record answered while the disk was full reached the database ({missing[:3]})")
        order = [ids.index(i) for i in answered]
        check(order == sorted(order, reverse=True), "store: in the order they were answered")
    finally:
        channel.close()
        code = server.stop()
    check(code == 0, "store: the server stops with exit code 0")


# ---- cgroups ---------------------------------------------------------------------------------

def pids_hierarchy():
    """The mount point of the cgroup v1 pids hierarchy, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            if fields[dash + 1] == "cgroup" and "pids" in fields[dash + 3].split(","):
                return fields[4]
    return None


def remove_group(path):
    """rmdir of a cgroup folder, once the run that used it last has left it (the answer comes
    before the group is recycled)."""
    def removed():
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False
    check(harness.wait_until(removed, 30), f"{path} removed")


def cgroup_faults(binary, work_dir):
    mount = pids_hierarchy()
    if mount is None:
        print("SKIP cgroup faults: no cgroup v1 pids hierarchy here", flush=True)
        return
    with open("/proc/self/cgroup") as f:
        own = next(line.strip().split(":", 2)[2] for line in f if line.split(":")[1] == "pids")
    group = os.path.join(mount, own.lstrip("/"), f"pagi-faults-{os.getpid()}")
    os.makedirs(group)
    base = os.path.join(work_dir, "cgroups")
    os.makedirs(os.path.join(base, "sandbox"))
    joining = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"]
    server = None
    try:
        for mode in ["native", "cwd"]:
            server = harness.Server(binary, base, {"SANDBOX_DIR": os.path.join(base, "sandbox"), "TOOLS_ISOLATION": mode,
                                                   "TOOLS_REQUIRE_ISOLATION": "true"}, wrapper=joining, name=f"cgroup-{mode}")
            channel, stub = stub_for(server)
            try:
                check(echo_works(stub), f"{mode}: a run works in the test's pids group")
                with open(os.path.join(group, "pids.current")) as f:
                    current = f.read().strip()
                with open(os.path.join(group, "pids.max"), "w") as f:
                    f.write(current)
                answer, error = run(stub, "echo", ["pids"])
                print(f"{mode}: the server's group at its pids limit: {describe(answer, error)}", flush=True)
                # Whichever fork or thread meets the limit first: the run's clone (INTERNAL, EAGAIN)
                # or a new worker thread of the server (RESOURCE_EXHAUSTED).
                check(error is not None and (
                    (error.code().name == "INTERNAL" and "Resource temporarily unavailable" in error.details()) or
                    (error.code().name == "RESOURCE_EXHAUSTED" and "no worker thread is free" in error.details())),
                      f"{mode}: a run at the server group's pids limit fails with INTERNAL naming EAGAIN "
                      "or RESOURCE_EXHAUSTED naming the worker thread")
                check(server.alive(), f"{mode}: the server lives on at its pids limit")
                with open(os.path.join(group, "pids.max"), "w") as f:
                    f.write("max")
                check(harness.wait_until(lambda: echo_works(stub, "again"), 10, step=0.5),
                      f"{mode}: runs work again once the limit is lifted")
                idle = [d for d in harness.cgroup_dirs(server.pid)
                        if not os.path.basename(d).startswith("pagi-exec-")]
                for d in sorted(idle, key=len, reverse=True):
                    remove_group(d)
                print(f"{mode}: removed {len(idle)} idle pool groups under the server", flush=True)
                check(echo_works(stub, "regrouped"), f"{mode}: a run works after the pool's idle groups were removed")
                parents = sorted(harness.cgroup_dirs(server.pid), key=len, reverse=True)
                for d in parents:
                    remove_group(d)
                answer, error = run(stub, "echo", ["orphaned"])
                print(f"{mode}: the server's cgroup parents removed: {describe(answer, error)}", flush=True)
                check(error is None and answer.success, f"{mode}: a run works after the pool's parents were removed")
                check(any(os.path.isdir(d) for d in parents), f"{mode}: the parent of the group it ran in was made again")
            finally:
                with open(os.path.join(group, "pids.max"), "w") as f:
                    f.write("max")  # room to shut down, whatever failed
                channel.close()
                code = server.stop()
            check(code == 0, f"{mode}: the server stops with exit code 0")
    finally:
        with open(os.path.join(group, "pids.max"), "w") as f:
            f.write("max")
        remove_group(group)


def main():
    binary, proto_path, cli = harness.setup("the fault tests mount file systems and inspect cgroups: they need root")
    for tool in ["unshare", "nsenter", "mount"]:
        if not shutil.which(tool):
            harness.skip(f"{tool} is not installed (util-linux, mount)")
    with tempfile.TemporaryDirectory(prefix="pagi-faults-") as work_dir:
        os.chmod(work_dir, 0o711)
        harness.generate_stubs(proto_path, os.path.join(work_dir, "gen"))
        selected = sys.argv[1:] or ["kill9", "sandbox", "disk", "audit", "store", "cgroup"]
        if "kill9" in selected:
            for mode in ["native", "bwrap", "cwd"]:
                kill9_and_restart(binary, cli, work_dir, mode)
        if "sandbox" in selected:
            sandbox_dir_faults(binary, work_dir)
        if "disk" in selected:
            full_workspace_disk(binary, work_dir)
        if "audit" in selected:
            full_audit_disk(binary, cli, work_dir)
        if "store" in selected:
            full_store_disk(binary, work_dir)
        if "cgroup" in selected:
            cgroup_faults(binary, work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
