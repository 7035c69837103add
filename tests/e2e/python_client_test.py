#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# E2E: an existing Python client (stubs generated from tools.proto at test time) talks to tools-server.
"""Starts the built tools-server and checks RequestExecution and HealthCheck from Python.

Needs TOOLS_SERVER_BIN and TOOLS_PROTO_PATH (set by tests/e2e/meson.build). Exits 77 (skipped)
when grpc for Python, protoc or the grpc Python plugin is missing.
"""
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def generate_stubs(proto_path, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    if not os.access(protoc, os.X_OK):
        skip("protoc is not installed")
    if not os.access(GRPC_PYTHON_PLUGIN, os.X_OK):
        skip(f"{GRPC_PYTHON_PLUGIN} is not installed (protobuf-compiler-grpc)")
    subprocess.run(
        [protoc, f"--proto_path={os.path.dirname(proto_path)}", f"--python_out={out_dir}",
         f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}", proto_path],
        check=True)
    sys.path.insert(0, out_dir)


def start_server(binary, work_dir):
    """The server in a clean environment; returns (process, address from its first stdout line)."""
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work_dir, "sandbox")}
    stderr = open(os.path.join(work_dir, "server.stderr"), "wb")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                            stderr=stderr, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        with open(os.path.join(work_dir, "server.stderr")) as err:
            sys.exit(f"server did not start: stdout {line!r}, stderr {err.read()!r}")
    return proc, line[len("listening on "):].strip()


def check(condition, what):
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


def run_checks(address):
    import grpc
    from google.protobuf import empty_pb2
    import tools_pb2
    import tools_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = tools_pb2_grpc.ToolExecutorServiceStub(channel)

        echo = stub.RequestExecution(
            tools_pb2.ExecutionRequest(command="echo", args=["hello", "python"], twin_id="twin-aegis"), timeout=20)
        check(echo.success and echo.exit_code == 0, "echo succeeds with exit code 0")
        check(list(echo.stdout_logs) == ["hello python"], "echo's stdout comes back as lines")
        check(UUID_V4.match(echo.execution_id) is not None, "execution_id is a uuid v4")

        refused = stub.RequestExecution(
            tools_pb2.ExecutionRequest(command="rm", args=["-rf", "/"], twin_id="twin-aegis"), timeout=20)
        check(not refused.success and refused.exit_code == 1, "rm is refused in-band with exit code 1")
        check(len(refused.stderr_logs) >= 1 and refused.stderr_logs[0].startswith("Policy violation: "),
              "the refusal's first stderr line starts with 'Policy violation: '")
        check(refused.message != "" and refused.stderr_logs[0] == "Policy violation: " + refused.message,
              "the refusal's message is its reason")

        health = stub.HealthCheck(empty_pb2.Empty(), timeout=10)
        check(health.status == "healthy", "HealthCheck says healthy")
        check(health.message.startswith("Tool executor service is operational"),
              "HealthCheck's message starts with the original's sentence")
        check(health.version != "", "HealthCheck names a version")
        check("isolation=" in health.message, "HealthCheck states the isolation in effect")

        # A mistake in a tool's arguments is an answer the caller can correct, not an RPC error.
        usage = stub.RequestExecution(
            tools_pb2.ExecutionRequest(command="file_write", args=["only-a-path"], twin_id="twin-sentinel"), timeout=20)
        check(not usage.success and usage.exit_code == 2, "file_write with one argument answers exit_code 2 in-band")
        check(list(usage.stderr_logs) == [usage.message] and "file_write needs exactly 2 arguments" in usage.message,
              "the usage error's message is its first stderr line, without 'Policy violation: '")

        # Bytes that are not a valid ExecutionRequest (invalid UTF-8 in twin_id): INVALID_ARGUMENT naming it.
        raw = channel.unary_unary("/tools.ToolExecutorService/RequestExecution")
        try:
            raw(b"\x0a\x04echo\x1a\x02\xff\xfe", timeout=20)
            check(False, "invalid UTF-8 is refused")
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "invalid UTF-8 in a string field is INVALID_ARGUMENT")
            check("twin_id is not valid UTF-8" in error.details(), "the status message names the field")


def main():
    binary = os.environ.get("TOOLS_SERVER_BIN")
    proto_path = os.environ.get("TOOLS_PROTO_PATH")
    if not binary or not proto_path:
        sys.exit("TOOLS_SERVER_BIN and TOOLS_PROTO_PATH must be set (run via meson test)")
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as e:
        skip(f"grpc for Python is unavailable ({e}); install python3-grpcio and python3-protobuf")

    with tempfile.TemporaryDirectory(prefix="pagi-e2e-py-") as work_dir:
        os.chmod(work_dir, 0o711)  # commands run as an unprivileged uid: the sandbox dir must be reachable
        generate_stubs(proto_path, os.path.join(work_dir, "gen"))
        proc, address = start_server(binary, work_dir)
        try:
            run_checks(address)
        finally:
            proc.terminate()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        check(code == 0, f"SIGTERM stops the server with exit code 0 (got {code})")
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    result = main()
    print(f"python client checks passed in {time.monotonic() - start:.1f}s")
    sys.exit(result)
