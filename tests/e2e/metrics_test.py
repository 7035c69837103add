#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# E2E: the metrics listener of a real tools-server, scraped over HTTP and read with prometheus_client's parser.
"""Starts tools-server with TOOLS_METRICS_ADDR=127.0.0.1:0, scrapes /metrics before and after a
set of calls (allowed, refused, unknown twin, timed out, a limit hit, a bad request, a stream;
the audit log is /dev/full, so every record fails),
and checks that each figure moved by exactly what the calls explain, that the whole text parses
with prometheus_client's parser, that no twin id or execution id appears, that other paths are
404, that a policy reload is counted, and that a metrics port in use stops the start-up, and that neither a flood of idle connections nor a
client trickling its request keeps a scrape out.

Needs TOOLS_SERVER_BIN and TOOLS_PROTO_PATH (set by tests/e2e/meson.build). Exits 77 (skipped)
when grpc for Python, protoc, its grpc plugin or python3-prometheus-client is missing.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

SKIP = 77
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
TWIN = "twin-metrics-7f3a"
UNKNOWN_TWIN = "twin-unknown-91bc"
POLICY = f"""always_refused = ["rm"]
[twins.{TWIN}]
allow = ["*"]
"""


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def check(condition, what):
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


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


def server_env(work_dir, policy_file, metrics_addr):
    # /dev/full takes the audit log open and fails every write (ENOSPC): each record is a failure.
    return {"TOOLS_AUDIT_LOG": "/dev/full", "PATH": "/usr/bin:/bin", "SANDBOX_DIR": os.path.join(work_dir, "sandbox"), "TOOLS_ISOLATION": "cwd",
            "TOOLS_POLICY_FILE": policy_file, "TOOLS_EXEC_TIMEOUT_MS": "1000", "TOOLS_FILE_SIZE_LIMIT_MB": "1",
            "TOOLS_METRICS_ADDR": metrics_addr}


def read_line(proc, seconds=10):
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    return proc.stdout.readline().decode() if ready else ""


def start_server(binary, work_dir, policy_file):
    """Returns (process, gRPC address, metrics URL) from its first two stdout lines."""
    stderr = open(os.path.join(work_dir, "server.stderr"), "wb")
    # Unbuffered: readline takes one line and leaves the next in the pipe, where select sees it.
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], env=server_env(work_dir, policy_file, "127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, bufsize=0)
    first, second = read_line(proc), read_line(proc)
    if not first.startswith("listening on ") or not second.startswith("metrics on http://"):
        proc.kill()
        proc.wait()
        with open(os.path.join(work_dir, "server.stderr")) as err:
            sys.exit(f"server did not start: stdout {first!r} {second!r}, stderr {err.read()!r}")
    return proc, first[len("listening on "):].strip(), second[len("metrics on "):].strip()


def get(url):
    """(status, content type, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def scrape(url):
    """The text and its samples as {(name, ((label, value), ...)): value}, parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families
    status, content_type, text = get(url)
    check(status == 200, "GET /metrics answers 200")
    check(content_type.startswith("text/plain; version=0.0.4"), f"the content type is the text format's ({content_type})")
    samples = {}
    families = list(text_string_to_metric_families(text))  # raises on anything malformed
    check(families and all(f.documentation and f.type != "unknown" for f in families),
          f"all {len(families)} families parse, each with HELP and TYPE")
    for family in families:
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def run_calls(address, twin_ids, execution_ids):
    import grpc
    from google.protobuf import empty_pb2
    import tools_pb2
    import tools_pb2_grpc

    def request(command, args=(), twin=TWIN):
        return tools_pb2.ExecutionRequest(command=command, args=list(args), twin_id=twin)

    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = tools_pb2_grpc.ToolExecutorServiceStub(channel)
        answers = {
            "allowed": stub.RequestExecution(request("echo", ["hi"]), timeout=30),
            "refused": stub.RequestExecution(request("rm", ["-rf", "/tmp/x"]), timeout=30),
            "unknown twin": stub.RequestExecution(request("echo", ["hi"], UNKNOWN_TWIN), timeout=30),
            "timed out": stub.RequestExecution(request("sleep", ["30"]), timeout=30),
            "file size limit": stub.RequestExecution(
                request("command_exec", ["head -c 3000000 /dev/zero > big"]), timeout=30),
            "bad request": stub.RequestExecution(request(""), timeout=30),
        }
        check(answers["allowed"].success, "echo succeeds")
        check(not answers["refused"].success and answers["refused"].exit_code == 1, "rm is refused")
        check(answers["unknown twin"].exit_code == 1, "an unknown twin is refused")
        check(answers["timed out"].exit_code == 124, "sleep 30 times out")
        check(answers["file size limit"].limit_hit == "file_size_limit", "a 3 MB file hits the 1 MiB file size limit")
        check(answers["bad request"].exit_code == 2, "an empty command is a usage error")
        execution_ids.extend(a.execution_id for a in answers.values())
        events = list(stub.StreamExecution(request("echo", ["streamed"]), timeout=30))
        execution_ids.extend(e.started.execution_id for e in events if e.HasField("started"))
        check(events and events[-1].finished.exit_code == 0, "a streamed echo succeeds")
        raw = channel.unary_unary("/tools.ToolExecutorService/RequestExecution")
        try:
            raw(b"\x0a\x04echo\x1a\x02\xff\xfe", timeout=20)
            check(False, "invalid UTF-8 is refused")
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "bytes that do not parse are INVALID_ARGUMENT")
        stub.HealthCheck(empty_pb2.Empty(), timeout=10)
        stub.CheckPolicy(request("echo"), timeout=10)
    twin_ids.extend([TWIN, UNKNOWN_TWIN])


def check_moves(before, after):
    """Every figure the calls move, by exactly what they explain."""
    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    expected = [
        (("pagi_exec_requests_total", {"rpc": "RequestExecution", "code": "OK"}), 6),
        (("pagi_exec_requests_total", {"rpc": "RequestExecution", "code": "INVALID_ARGUMENT"}), 1),
        (("pagi_exec_requests_total", {"rpc": "StreamExecution", "code": "OK"}), 1),
        (("pagi_exec_requests_total", {"rpc": "HealthCheck", "code": "OK"}), 1),
        (("pagi_exec_requests_total", {"rpc": "CheckPolicy", "code": "OK"}), 1),
        (("pagi_exec_decisions_total", {"kind": "twins.allow_all", "outcome": "allowed"}), 4),
        (("pagi_exec_decisions_total", {"kind": "always_refused", "outcome": "refused"}), 1),
        (("pagi_exec_decisions_total", {"kind": "default_deny", "outcome": "refused"}), 1),
        (("pagi_exec_decisions_total", {"kind": "invalid_request", "outcome": "refused"}), 1),
        (("pagi_exec_executions_total", {"isolation": "cwd", "outcome": "succeeded"}), 2),
        (("pagi_exec_executions_total", {"isolation": "cwd", "outcome": "timed_out"}), 1),
        (("pagi_exec_executions_total", {"isolation": "cwd", "outcome": "failed"}), 1),
        (("pagi_exec_limits_hit_total", {"limit": "execution_timeout"}), 1),
        (("pagi_exec_limits_hit_total", {"limit": "file_size_limit"}), 1),
        (("pagi_exec_limits_hit_total", {"limit": "memory_limit_exceeded"}), 0),
        (("pagi_exec_execution_duration_seconds_count", {"isolation": "cwd"}), 4),
        (("pagi_exec_execution_duration_seconds_bucket", {"isolation": "cwd", "le": "+Inf"}), 4),
        (("pagi_exec_sandbox_startup_seconds_count", {"isolation": "cwd"}), 4),
        # A decision record for each of the 7 execution requests, an end record for the 4 that ran.
        (("pagi_exec_audit_write_failures_total", {}), 11),
    ]
    for (name, labels), delta in expected:
        got = moved(name, **labels)
        check(got == delta, f"{name}{labels} moved by {delta} (got {got})")
    check(moved("pagi_exec_execution_duration_seconds_sum", isolation="cwd") >= 1.0,
          "the duration sum holds the 1 s timeout")
    for name, labels in [("pagi_exec_decisions_total", {"kind": "twins.allow", "outcome": "allowed"}),
                         ("pagi_exec_executions_total", {"isolation": "native", "outcome": "succeeded"})]:
        check(moved(name, **labels) == 0, f"{name}{labels} did not move")
    check(value(after, "pagi_exec_requests_in_flight", rpc="RequestExecution") == 0, "no RequestExecution in flight")
    check(value(after, "pagi_exec_executions_running") == 0, "no execution running")


def check_process(families, samples):
    names = {f.name for f in families}
    for name in ["process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds", "process_threads"]:
        check(name in names, f"{name} is reported")
    check(value(samples, "process_open_fds") > 0, "process_open_fds counts the listeners")
    check(value(samples, "process_resident_memory_bytes") > 1 << 20, "process_resident_memory_bytes is over 1 MiB")


def wait_for(url, what, reached):
    """Scrapes until reached(samples) (a SIGHUP is handled on another thread); bounded. A scrape reads
    the policy in effect before the counters, so one taken during a reload may count it and still
    name the old revision: wait for what the check needs, not for the counter alone."""
    for _ in range(200):
        _, _, samples = scrape(url)
        if reached(samples):
            return samples
        select.select([], [], [], 0.05)
    sys.exit(f"FAIL: never reached: {what}")


def revision_of(samples):
    revisions = [dict(labels)["revision"] for (name, labels) in samples if name == "pagi_exec_policy_info"]
    check(len(revisions) == 1, "one policy_info sample")
    return revisions[0]


def check_reloads(proc, url, policy_file):
    _, _, first = scrape(url)
    old_revision = revision_of(first)
    with open(policy_file, "a") as f:
        f.write("# a new revision\n")
    proc.send_signal(signal.SIGHUP)
    reloaded = wait_for(url, "a reload counted and its new revision in policy_info",
                        lambda s: value(s, "pagi_exec_policy_reloads_total", result="success") >= 1
                        and revision_of(s) != old_revision)
    check(revision_of(reloaded) != old_revision, "policy_info names the new revision after a reload")
    with open(policy_file, "w") as f:
        f.write("this is not toml [\n")
    proc.send_signal(signal.SIGHUP)
    failed = wait_for(url, "a failed reload counted",
                      lambda s: value(s, "pagi_exec_policy_reloads_total", result="failure") >= 1)
    check(value(failed, "pagi_exec_policy_reloads_total", result="success") == 1, "the failure is not a success")
    check(revision_of(failed) == revision_of(reloaded), "a failed reload keeps the revision in effect")


def check_flood(proc, url):
    """Connections that send nothing: the listener holds at most metrics_max_connections (64) of
    them, closing the one open longest when another comes, so a scrape still gets in while they
    stay; and one that trickles its head a byte at a time is cut at the request deadline (5 s)."""
    import socket
    host, port = url[len("http://"):].split("/")[0].rsplit(":", 1)
    fds = lambda: len(os.listdir(f"/proc/{proc.pid}/fd"))
    before = fds()
    clients = []
    try:
        for _ in range(100):  # not waiting for each: those past the kernel's backlog retry their SYN
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            client.connect_ex((host, int(port)))
            clients.append(client)
        most = 0
        for _ in range(100):  # a while for the server to accept what it will
            most = max(most, fds())
            select.select([], [], [], 0.01)
        # 4 of slack for descriptors grpc may open meanwhile; an unbounded listener would hold 100.
        check(most - before <= 64 + 4, f"100 idle connections hold at most 64 descriptors of the server ({most - before})")
        check(scrape(url)[0] != "", "a scrape is answered while they are all still open")
    finally:
        for client in clients:
            client.close()
    trickler = socket.create_connection((host, int(port)), timeout=10)
    try:
        trickler.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        cut = False
        for i in range(120):  # a header byte every 0.25 s, for 30 s at most
            try:
                trickler.sendall(b"X-Slow: yes\r\n"[i % 13:i % 13 + 1])
            except OSError:
                cut = True
                break
            readable, _, _ = select.select([trickler], [], [], 0.25)
            try:
                if readable and trickler.recv(1) == b"":
                    cut = True
                    break
            except OSError:  # reset
                cut = True
                break
        check(cut, "a client that trickles its request a byte at a time is cut (at the 5 s request deadline)")
    finally:
        trickler.close()
    check(scrape(url)[0] != "", "a scrape is answered once they are gone")


def check_port_in_use(binary, work_dir, policy_file, metrics_url):
    busy = metrics_url[len("http://"):].split("/")[0]
    other = subprocess.run([binary, "--listen", "127.0.0.1:0"], env=server_env(work_dir, policy_file, busy),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    check(other.returncode != 0, f"a second server on the busy metrics port {busy} does not start")
    check(b"TOOLS_METRICS_ADDR" in other.stderr and b"cannot listen" in other.stderr,
          f"and says why: {other.stderr.decode().strip()!r}")
    check(b"listening on" not in other.stdout, "nor claims to listen")


def main():
    binary = os.environ.get("TOOLS_SERVER_BIN")
    proto_path = os.environ.get("TOOLS_PROTO_PATH")
    if not binary or not proto_path:
        sys.exit("TOOLS_SERVER_BIN and TOOLS_PROTO_PATH must be set (run via meson test)")
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
        from prometheus_client.parser import text_string_to_metric_families  # noqa: F401
    except ImportError as e:
        skip(f"a Python package is missing ({e}); install python3-grpcio, python3-protobuf, python3-prometheus-client")

    with tempfile.TemporaryDirectory(prefix="pagi-e2e-metrics-") as work_dir:
        os.chmod(work_dir, 0o711)  # commands run as an unprivileged uid: the sandbox dir must be reachable
        generate_stubs(proto_path, os.path.join(work_dir, "gen"))
        policy_file = os.path.join(work_dir, "policy.toml")
        with open(policy_file, "w") as f:
            f.write(POLICY)
        proc, address, url = start_server(binary, work_dir, policy_file)
        try:
            base = url[:-len("/metrics")]
            for path in ["/", "/metrics/x", "/nope"]:
                check(get(base + path)[0] == 404, f"GET {path} is 404")
            _, _, before = scrape(url)
            twin_ids, execution_ids = [], []
            run_calls(address, twin_ids, execution_ids)
            text, families, after = scrape(url)
            check_moves(before, after)
            check_process(families, after)
            for secret in twin_ids + [i for i in execution_ids if i]:
                check(secret not in text, f"{secret} appears nowhere in the metrics")
            check(len(execution_ids) >= 7, "the calls' execution ids were collected")
            check_port_in_use(binary, work_dir, policy_file, url)
            check_flood(proc, url)
            check_reloads(proc, url, policy_file)
        finally:
            proc.terminate()
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        check(code == 0, f"SIGTERM stops the server, metrics listener included, with exit code 0 (got {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
