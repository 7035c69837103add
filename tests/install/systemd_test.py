#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The systemd unit as installed, and the server's side of it.

1. `systemd-analyze verify` passes the installed unit with no warning (ExecStart pointed at the
   installed binary in the scratch root, since the real prefix holds none here).
2. The unit's CapabilityBoundingSet and NoNewPrivileges are enough for native and bwrap isolation:
   the built server, started under setpriv with that bounding set and no_new_privs, starts with
   each required and runs a command in it.
3. sd_notify: the built server, given NOTIFY_SOCKET (a datagram socket made here), sends READY=1
   once it printed its listening line and STOPPING=1 after SIGTERM.

    systemd_test.py BUILD_DIR SERVER   (SYSTEMD_NOTIFY=1 when the server was built with libsystemd)
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from checks import check, exit_status, meson_install



def installed_unit(build_dir, root):
    p = meson_install(build_dir, root)
    with open(os.path.join(p["prefix"], "lib/systemd/system/tools-server.service")) as unit:
        return unit.read(), p["bindir"]


def verify(unit_text, bindir, work):
    if shutil.which("systemd-analyze") is None:
        print("SKIP part: systemd-analyze is not installed (package systemd)")
        return
    exec_start = re.search(r"^ExecStart=(\S+)", unit_text, re.M).group(1)
    check(os.path.basename(exec_start) == "tools-server", f"ExecStart runs tools-server ({exec_start})")
    copy = os.path.join(work, "tools-server.service")
    with open(copy, "w") as out:
        out.write(unit_text.replace(exec_start, os.path.join(bindir, "tools-server")))
    # Documentation=man:tools-server(1) is checked with man: the installed page must be found.
    mandir = os.path.join(os.path.dirname(bindir), "share", "man")
    result = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True,
                            env=dict(os.environ, MANPATH=mandir + ":"))
    output = (result.stdout + result.stderr).strip()
    check(result.returncode == 0 and output == "", f"systemd-analyze verify: no warning ({output!r})")


def start(argv, env, work, name):
    """A server; (process, listening line) once it printed it, or (process, what it printed instead)."""
    stderr = open(os.path.join(work, name + ".stderr"), "wb")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    return proc, proc.stdout.readline().decode() if ready else ""


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def stderr_of(work, name):
    with open(os.path.join(work, name + ".stderr")) as err:
        return err.read()


def bounding_set(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^CapBnd:\s+(\w+)", status.read(), re.M).group(1), 16)


def bounded(unit_text, server, work, isolation):
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        print("SKIP part: the capability set is checked as root with setpriv (util-linux)")
        return
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit_text, re.M).group(1).split()
    check(re.search(r"^NoNewPrivileges=yes$", unit_text, re.M) is not None, "the unit sets NoNewPrivileges")
    bounding = "-all," + ",".join("+" + cap.removeprefix("CAP_").lower() for cap in caps)
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work, "bounded-" + isolation),
           "TOOLS_ISOLATION": isolation, "TOOLS_REQUIRE_ISOLATION": "true"}
    probe, line = start([server, "--listen", "127.0.0.1:0"], env, work, "unbounded-" + isolation)
    stop(probe)
    if not line.startswith("listening on "):
        print(f"SKIP part: {isolation} isolation does not work here even with every capability: "
              + stderr_of(work, "unbounded-" + isolation)[-400:])
        return
    argv = [setpriv, f"--bounding-set={bounding}", "--inh-caps=-all", "--no-new-privs", "--", server,
            "--listen", "127.0.0.1:0"]
    proc, line = start(argv, env, work, "bounded-" + isolation)
    try:
        if not check(line.startswith("listening on "),
                     f"{isolation} isolation starts with the unit's capabilities {caps} and no_new_privs"):
            print(stderr_of(work, "bounded-" + isolation)[-2000:])
            return
        # What setpriv makes of the list, read the same way from a process it starts.
        expected = subprocess.run([setpriv, f"--bounding-set={bounding}", "--", "cat", "/proc/self/status"],
                                  capture_output=True, text=True, check=True).stdout
        expected_set = int(re.search(r"^CapBnd:\s+(\w+)", expected, re.M).group(1), 16)
        check(bounding_set(proc.pid) == expected_set,
              f"the server really runs with the unit's bounding set ({bounding_set(proc.pid):#x})")
        call_echo(line[len("listening on "):].strip(), work, isolation)
    finally:
        check(stop(proc) == 0, "the bounded server stops on SIGTERM with exit code 0")


def call_echo(address, work, isolation):
    """RequestExecution through stubs generated from TOOLS_PROTO_PATH (once per test)."""
    plugin = "/usr/bin/grpc_python_plugin"
    proto = os.environ.get("TOOLS_PROTO_PATH", "")
    if not os.access(plugin, os.X_OK) or not os.path.isfile(proto):
        print("SKIP part: no gRPC call (grpc_python_plugin or TOOLS_PROTO_PATH missing)")
        return
    gen = os.path.join(work, "gen")
    if not os.path.isdir(gen):
        os.makedirs(gen)
        subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}", f"--python_out={gen}",
                        f"--grpc_python_out={gen}", f"--plugin=protoc-gen-grpc_python={plugin}", proto], check=True)
        sys.path.insert(0, gen)
    run_echo(address, isolation)


def run_echo(address, isolation):
    import grpc
    import tools_pb2
    import tools_pb2_grpc
    with grpc.insecure_channel(address) as channel:
        stub = tools_pb2_grpc.ToolExecutorServiceStub(channel)
        # A pipeline, so the run forks inside its sandbox too (the pids cgroup, the init's reaping).
        echo = stub.RequestExecution(tools_pb2.ExecutionRequest(command="sh", args=["-c", "echo bounded | cat"],
                                                                twin_id="twin-aegis"), timeout=30)
        check(echo.success and echo.isolation == isolation and list(echo.stdout_logs) == ["bounded"],
              f"a {isolation} run answers under the unit's capabilities ({echo.isolation}: {echo.message})")


def receive(sock, seconds):
    ready, _, _ = select.select([sock], [], [], seconds)
    return sock.recv(4096).decode() if ready else ""


def notify(server, work):
    if os.environ.get("SYSTEMD_NOTIFY") != "1":
        print("SKIP part: the server was built without libsystemd (no sd_notify; the unit is Type=simple)")
        return
    path = os.path.join(work, "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work, "notify"), "NOTIFY_SOCKET": path}
        proc, line = start([server, "--listen", "127.0.0.1:0"], env, work, "notify")
        try:
            if not check(line.startswith("listening on "), f"the server listens ({line!r})"):
                print(stderr_of(work, "notify")[-2000:])
                return
            ready = receive(sock, 30)
            check("READY=1" in ready.split("\n"), f"READY=1 arrives after the listening line ({ready!r})")
            check(f"STATUS={line.strip()}" in ready.split("\n"), "with STATUS= the listening line")
        finally:
            code = stop(proc)
        stopping = receive(sock, 5)
        check("STOPPING=1" in stopping.split("\n"), f"STOPPING=1 arrives after SIGTERM ({stopping!r})")
        check(code == 0, f"the server exits 0 (got {code})")


def main():
    build_dir, server = sys.argv[1:3]
    with tempfile.TemporaryDirectory(prefix="pagi-systemd-") as work:
        os.chmod(work, 0o711)  # runs are another uid: the sandbox folders must be reachable
        unit_text, bindir = installed_unit(build_dir, os.path.join(work, "root"))
        verify(unit_text, bindir, work)
        bounded(unit_text, server, work, "native")
        bounded(unit_text, server, work, "bwrap")
        notify(server, work)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
