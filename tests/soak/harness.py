# SPDX-License-Identifier: Apache-2.0
"""What the soak and fault tests share: stubs, a real tools-server process, and a census of what
a server holds (descriptors, threads, processes, cgroups, network namespaces, mounts, memory, disk).

Stdlib and Debian's python3-grpcio / python3-protobuf only; run by /usr/bin/python3.
"""
import glob
import os
import select
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
HEALTH_PROTO = "/usr/share/grpc-proto/grpc/health/v1/health.proto"


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def check(condition, what):
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}", flush=True)


def need_grpc():
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as e:
        skip(f"grpc for Python is unavailable ({e}); install python3-grpcio and python3-protobuf")


def setup(root_because):
    """The programs meson passes (server, proto, CLI), once grpc for Python and root are there."""
    binary = os.environ.get("TOOLS_SERVER_BIN")
    proto_path = os.environ.get("TOOLS_PROTO_PATH")
    cli = os.environ.get("PAGI_EXEC_CLI")
    if not binary or not proto_path or not cli:
        sys.exit("TOOLS_SERVER_BIN, TOOLS_PROTO_PATH and PAGI_EXEC_CLI must be set (run via meson test)")
    need_grpc()
    if os.geteuid() != 0:
        skip(root_because)
    return binary, proto_path, cli


def generate_stubs(proto_path, out_dir):
    """tools_pb2(_grpc) from the project's proto, health_pb2(_grpc) from Debian's grpc-proto."""
    os.makedirs(out_dir, exist_ok=True)
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    if not os.access(protoc, os.X_OK):
        skip("protoc is not installed")
    if not os.access(GRPC_PYTHON_PLUGIN, os.X_OK):
        skip(f"{GRPC_PYTHON_PLUGIN} is not installed (protobuf-compiler-grpc)")
    protos = [proto_path] + ([HEALTH_PROTO] if os.path.exists(HEALTH_PROTO) else [])
    for proto in protos:
        subprocess.run(
            [protoc, f"--proto_path={os.path.dirname(proto)}", f"--python_out={out_dir}",
             f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}", proto],
            check=True)
    sys.path.insert(0, out_dir)


def wait_until(predicate, seconds, step=0.05):
    """True once predicate() holds; False if it still does not after `seconds` (a bound on
    liveness, not a performance threshold)."""
    end = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


class Server:
    """A tools-server process on 127.0.0.1:0. `wrapper` is an argv prefix (e.g. unshare -m) that
    execs the server, so the pid is the server's."""

    def __init__(self, binary, work_dir, env, wrapper=(), name="server"):
        self.stderr_path = os.path.join(work_dir, f"{name}.stderr")
        base = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        spawner = os.environ.get("PAGI_EXEC_SPAWNER")
        if spawner is not None:
            base["PAGI_EXEC_SPAWNER"] = spawner
        base.update(env)
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(list(wrapper) + [binary, "--listen", "127.0.0.1:0"], env=base,
                                         stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait()
            sys.exit(f"FAIL: server did not start: stdout {line!r}, stderr {self.stderr()!r}")
        self.address = line[len("listening on "):].strip()
        self.pid = self.proc.pid

    def stderr(self):
        with open(self.stderr_path, errors="replace") as err:
            return err.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self):
        self.proc.kill()
        return self.proc.wait()


# ---- census --------------------------------------------------------------------------------

def _stat(pid):
    """(state, ppid, starttime) from /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root):
    """{pid: (state, starttime)} of every process below `root` (not root itself)."""
    children = {}
    info = {}
    for pid in all_pids():
        s = _stat(pid)
        if s is None:
            continue
        info[pid] = s
        children.setdefault(s[1], []).append(pid)
    found = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = (info[pid][0], info[pid][2])
        todo.extend(children.get(pid, []))
    return found


def still_running(processes):
    """Those of {pid: (state, starttime)} that still exist (same pid and start time) and are not
    zombies."""
    left = {}
    for pid, (_, start) in processes.items():
        s = _stat(pid)
        if s is not None and s[2] == start and s[0] != "Z":
            left[pid] = s[0]
    return left


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def with_marker(marker):
    """Pids (not zombies) whose command line holds `marker`, other than this process."""
    me = os.getpid()
    found = []
    for pid in all_pids():
        if pid == me or marker not in cmdline(pid):
            continue
        s = _stat(pid)
        if s is not None and s[0] != "Z":
            found.append(pid)
    return found


def cgroup_dirs(server_pid):
    """Every folder at or below /sys/fs/cgroup/**/pagi-exec-<server_pid>-*: the server's pool parents
    and the groups under them (v1 has one set per controller hierarchy)."""
    parents = glob.glob(f"/sys/fs/cgroup/**/pagi-exec-{server_pid}-*", recursive=True)
    found = []
    for parent in parents:
        for dirpath, dirnames, _ in os.walk(parent):
            found.append(dirpath)
    return found


def cgroup_procs(dirs):
    """Pids listed in the cgroup.procs of `dirs`."""
    pids = []
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.extend(int(line) for line in f if line.strip())
        except OSError:
            pass
    return pids


def _links(pid):
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    out = []
    for name in names:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return out


def _ns(pid, kind):
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def namespaces_held(pids, kind):
    """Distinct namespaces of `kind` ("net", "mnt") that `pids` are in or hold a descriptor to."""
    found = set()
    for pid in pids:
        ns = _ns(pid, kind)
        if ns:
            found.add(ns)
        found.update(link for link in _links(pid) if link.startswith(f"{kind}:["))
    return found


def holders_of(namespaces, kind):
    """Pids anywhere on the host that are in, or hold a descriptor to, one of `namespaces`."""
    holders = []
    for pid in all_pids():
        if _ns(pid, kind) in namespaces or any(link in namespaces for link in _links(pid)):
            holders.append(pid)
    return holders


def mounts_under(path, pid="self"):
    """Mount points at or below `path` in the mount namespace of `pid`."""
    found = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                point = line.split()[4]
                if point == path or point.startswith(path.rstrip("/") + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def disk_bytes(path):
    """Bytes allocated below `path` (st_blocks), folders included."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def census(pid, sandbox_dir):
    """What the server holds now. Counts that must come back exactly, and the RSS and disk figures."""
    below = descendants(pid)
    family = [pid] + list(below)
    links = _links(pid)
    groups = cgroup_dirs(pid)
    pool = [link for link in links if "/pagi-exec-" in link and link.startswith("/sys/fs/cgroup/")]
    return {
        "fds": len([link for link in links if not link.startswith("net:[")]) - len(pool),
        "pool_fds": len(pool),
        "pool_fds_of_removed_groups": len([link for link in pool if link.endswith(" (deleted)")]),
        "threads": threads(pid),
        "processes": len([p for p, (state, _) in below.items() if state != "Z"]),
        "zombies": len([p for p, (state, _) in below.items() if state == "Z"]),
        "cgroups": len(groups),
        "cgroup_parents": len(glob.glob(f"/sys/fs/cgroup/**/pagi-exec-{pid}-*", recursive=True)),
        "cgroup_members": len(cgroup_procs(groups)),
        "net_namespaces": len(namespaces_held(family, "net")),
        "mnt_namespaces": len(namespaces_held(family, "mnt")),
        "mounts": len(mounts_under(sandbox_dir, pid)),
        "rss": rss_bytes(pid),
        "disk": disk_bytes(sandbox_dir),
    }
