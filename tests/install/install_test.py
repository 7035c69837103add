#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`meson install` into a scratch root, then the installed tree as an operator gets it.

Checks every file the install must hold; starts the installed tools-server with an empty
environment (it must find the installed pagi-spawner by itself) and calls HealthCheck and
RequestExecution through stubs generated from the installed tools.proto; renders both man pages
with groff, warnings fatal, and finds every flag and environment variable of --help in them;
resolves the installed pagi_exec.pc. (tests/consumer builds a program against it.)

    install_test.py BUILD_DIR SOURCE_DIR   (MAN_PAGES=1 when help2man was found at configure time)
"""
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import checks
from checks import check, exit_status, meson_install

SKIP = 77
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"


def check_tree(p, man_pages):
    expected = [
        (p["bindir"], "tools-server"), (p["bindir"], "pagi-exec"),
        (p["libexecdir"], "pagi-exec/pagi-spawner"),
        (p["includedir"], "pagi_exec/pagi_exec.hpp"), (p["includedir"], "pagi_exec/version.hpp"),
        (p["includedir"], "pagi_exec/detail/policy_decide.hpp"),
        (p["libdir"], "libpagi_exec.a"), (p["libdir"], "pkgconfig/pagi_exec.pc"),
        (p["datadir"], "pagi-exec/tools.proto"), (p["datadir"], "pagi-exec/examples/policy.toml"),
        (p["datadir"], "doc/pagi-exec/tools-server.env"),
        (p["prefix"], "lib/systemd/system/tools-server.service"),
    ]
    if man_pages:
        expected += [(p["mandir"], "man1/tools-server.1"), (p["mandir"], "man1/pagi-exec.1")]
    for folder, name in expected:
        check(os.path.isfile(os.path.join(folder, name)), f"installed {os.path.join(folder, name)}")
    for program in ("bindir/tools-server", "bindir/pagi-exec", "libexecdir/pagi-exec/pagi-spawner"):
        kind, name = program.split("/", 1)
        path = os.path.join(p[kind], name)
        if os.path.exists(path):
            mode = os.stat(path).st_mode
            check(mode & stat.S_IXUSR and not mode & (stat.S_IWGRP | stat.S_IWOTH),
                  f"{name} is executable and writable by its owner only")
    check(not os.path.exists(os.path.join(p["bindir"], "pagi-spawner")), "pagi-spawner is not in the bin folder")


def generate_stubs(proto, out_dir):
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    if not os.access(GRPC_PYTHON_PLUGIN, os.X_OK) or not os.access(protoc, os.X_OK):
        return False
    subprocess.run([protoc, f"--proto_path={os.path.dirname(proto)}", f"--python_out={out_dir}",
                    f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}", proto],
                   check=True)
    sys.path.insert(0, out_dir)
    return True


def helper_program(server_pid):
    """What the server's spawn helper (its child named pagi-spawner) runs, from /proc."""
    for task in os.listdir(f"/proc/{server_pid}/task"):
        with open(f"/proc/{server_pid}/task/{task}/children") as children:
            for child in children.read().split():
                with open(f"/proc/{child}/comm") as comm:
                    if comm.read().strip() == "pagi-spawner":
                        return os.readlink(f"/proc/{child}/exe")
    return None


def check_server(p, work):
    """The installed server, started with nothing but PATH and a sandbox folder, from another folder."""
    server = os.path.join(p["bindir"], "tools-server")
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work, "sandbox")}
    stderr_path = os.path.join(work, "server.stderr")
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([server, "--listen", "127.0.0.1:0"], env=env, cwd="/", stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=stderr)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().decode() if ready else ""
        if not check(line.startswith("listening on "), f"the installed server listens (first line {line!r})"):
            return
        address = line[len("listening on "):].strip()
        installed_spawner = os.path.realpath(os.path.join(p["libexecdir"], "pagi-exec", "pagi-spawner"))
        check(helper_program(proc.pid) == installed_spawner,
              f"its spawn helper runs the installed {installed_spawner}, found with no environment")
        if not generate_stubs(os.path.join(p["datadir"], "pagi-exec", "tools.proto"), work):
            print(f"SKIP part: no gRPC call, {GRPC_PYTHON_PLUGIN} or protoc is not installed")
            return
        import grpc
        from google.protobuf import empty_pb2
        import tools_pb2
        import tools_pb2_grpc
        with grpc.insecure_channel(address) as channel:
            stub = tools_pb2_grpc.ToolExecutorServiceStub(channel)
            health = stub.HealthCheck(empty_pb2.Empty(), timeout=20)
            check(health.status == "healthy", f"HealthCheck through the installed tools.proto: {health.status}")
            echo = stub.RequestExecution(
                tools_pb2.ExecutionRequest(command="echo", args=["installed"], twin_id="twin-aegis"), timeout=30)
            check(echo.success and list(echo.stdout_logs) == ["installed"],
                  f"a run through the installed spawner answers ({echo.isolation}: {echo.message})")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        check(code == 0, f"SIGTERM stops it with exit code 0 (got {code})")
        if checks.failures:
            with open(stderr_path) as err:
                print("server stderr:\n" + err.read())


def flags_and_variables(help_text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text)) | set(re.findall(r"Env:(\w+)", help_text))


def check_man_page(page, program, subcommands):
    """Renders without a groff warning and names every flag and variable of each --help."""
    if shutil.which("groff") is None:
        print("SKIP part: groff is not installed, man pages not rendered")
        return
    rendered = subprocess.run(["groff", "-man", "-Tutf8", "-ww", page], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    check(rendered.returncode == 0 and rendered.stderr == "",
          f"groff renders {os.path.basename(page)} without warnings {rendered.stderr.strip()!r}")
    text = re.sub(r".\x08", "", rendered.stdout).replace("\u2010", "-").replace("\u2212", "-")
    if shutil.which("man") is not None:
        man = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "LC_ALL": "C.UTF-8"})
        check(man.returncode == 0 and "NAME" in man.stdout, f"man -l {os.path.basename(page)} shows it")
    for sub in [None] + subcommands:
        argv = [program] + ([sub] if sub else []) + ["--help"]
        help_text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        missing = sorted(name for name in flags_and_variables(help_text) if name not in text)
        check(not missing, f"{os.path.basename(page)} names every flag and variable of {' '.join(argv[1:])}: "
                           f"missing {missing}")


def check_env_file(p):
    """The example environment file lists every variable tools-server reads, with its default."""
    server = os.path.join(p["bindir"], "tools-server")
    help_text = subprocess.run([server, "--help"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(p["datadir"], "doc/pagi-exec/tools-server.env")) as env_file:
        listed = set(re.findall(r"^#?(\w+)=", env_file.read(), re.M))
    missing = sorted(set(re.findall(r"Env:(\w+)", help_text)) - listed)
    check(not missing, f"tools-server.env lists every variable of tools-server --help: missing {missing}")


def check_pkg_config(p):
    """The installed pagi_exec.pc, found by PKG_CONFIG_PATH alone, names the installed headers and library
    (it is relocatable: meson.build). tests/consumer builds and runs a program with these flags."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "pagi_exec"], capture_output=True, text=True,
                           env=dict(os.environ, PKG_CONFIG_PATH=os.path.join(p["libdir"], "pkgconfig")))
    words = flags.stdout.split()
    includes = {os.path.realpath(w[2:]) for w in words if w.startswith("-I")}
    libdirs = {os.path.realpath(w[2:]) for w in words if w.startswith("-L")}
    check(flags.returncode == 0 and os.path.realpath(p["includedir"]) in includes
          and os.path.realpath(p["libdir"]) in libdirs and "-lpagi_exec" in words,
          f"pkg-config finds the installed headers and library from the staged pagi_exec.pc: "
          f"{flags.stdout.strip()} {flags.stderr.strip()}")


def main():
    build_dir, source_dir = sys.argv[1:3]
    man_pages = os.environ.get("MAN_PAGES") == "1"
    with tempfile.TemporaryDirectory(prefix="pagi-install-") as work:
        root = os.path.join(work, "root")
        p = meson_install(build_dir, root)
        check_tree(p, man_pages)
        check_server(p, work)
        check_env_file(p)
        if man_pages:
            for name, subs in (("tools-server", []), ("pagi-exec", ["check", "run", "audit"])):
                check_man_page(os.path.join(p["mandir"], "man1", name + ".1"), os.path.join(p["bindir"], name), subs)
        else:
            print("SKIP part: help2man was not found at configure time, so no man pages were made")
        check_pkg_config(p)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
